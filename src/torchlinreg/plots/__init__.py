"""Pictures of fitted models (needs the ``plot`` extra: ``pip install
'torchlinreg[plot]'``, matplotlib, imported only when a figure is drawn).

* :func:`plot_diagnostics`: R's ``plot.lm`` panels, for any number of rows;
* :func:`plot_coefficients`: estimates with confidence intervals;
* :func:`plot_training_curve`: a gradient fit's cost per epoch against the exact optimum;
* :func:`plot_gradient_path`: the tutorial's picture, (W, b) over the cost's contours.

The numbers behind every panel come from plain functions (:mod:`.panels`,
:mod:`.summary_panels`, :mod:`.training`, :mod:`.coefficients`, :mod:`.smooth`), with
no matplotlib, so they can be checked or drawn with another tool.
"""

from .api import (
    plot_coefficients,
    plot_diagnostics,
    plot_gradient_path,
    plot_training_curve,
    save_figure,
)
from .coefficients import CoefficientIntervals, coefficient_intervals
from .panels import (
    Band,
    Line,
    Panel,
    cook_contours,
    most_extreme,
    normal_qq,
    normal_quantiles,
    quartile_line,
    residuals_fitted,
    residuals_leverage,
    scale_location,
)
from .smooth import lowess
from .summary_panels import summary_panels
from .training import (
    GradientPath,
    TrainingCurve,
    contour_levels,
    gradient_path,
    quadratic_cost,
    training_curve,
)

__all__ = [
    "Band",
    "CoefficientIntervals",
    "GradientPath",
    "Line",
    "Panel",
    "TrainingCurve",
    "coefficient_intervals",
    "contour_levels",
    "cook_contours",
    "gradient_path",
    "lowess",
    "most_extreme",
    "normal_qq",
    "normal_quantiles",
    "plot_coefficients",
    "plot_diagnostics",
    "plot_gradient_path",
    "plot_training_curve",
    "quadratic_cost",
    "quartile_line",
    "residuals_fitted",
    "residuals_leverage",
    "save_figure",
    "scale_location",
    "summary_panels",
    "training_curve",
]
