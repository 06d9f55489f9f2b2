"""Pictures of a fitted model, one call each; every one returns a matplotlib
``Figure`` (save it with ``fig.savefig(path)`` or :func:`save_figure`)."""

from __future__ import annotations

from typing import Any

from .panels import ID_N


def plot_diagnostics(
    model: Any,
    data: Any,
    *,
    sample_weight: Any = None,
    sample_size: int = 2000,
    bins: int = 50,
    random_state: Any = 0,
    id_n: int = ID_N,
) -> Any:
    """R's ``plot(lm)``: residuals against fitted values, normal Q-Q, scale-location
    and residuals against leverage with Cook's distance contours 0.5 and 1, for an
    exact least-squares model and the rows it was fitted on.

    ``data`` is what :func:`~torchlinreg.stats.influence.influence_summary` takes:
    ``(X, y)`` arrays or a stream of chunks. Up to ``sample_size`` observations every
    point is drawn; beyond, a seeded sample of them with exact bands of every row
    (:func:`~.summary_panels.summary_panels`), so any number of rows draws in bounded
    memory."""
    from ..stats.influence import influence_summary
    from ._mpl import require_matplotlib
    from .draw import diagnostics_figure
    from .summary_panels import summary_panels

    require_matplotlib()
    summary = influence_summary(
        model,
        data,
        top_k=max(10, id_n),
        sample_size=sample_size,
        bins=bins,
        random_state=random_state,
        sample_weight=sample_weight,
    )
    return diagnostics_figure(summary_panels(summary, id_n=id_n))


def plot_coefficients(model: Any, *, level: float = 0.95, intercept: bool = True) -> Any:
    """Each coefficient with its ``level`` confidence interval (from
    ``model.summary(level)``; the first target's for several)."""
    from ._mpl import require_matplotlib
    from .coefficients import coefficient_intervals
    from .draw import coefficient_figure

    require_matplotlib()
    summary = model.summary(level)
    summary = summary[0] if isinstance(summary, list) else summary
    return coefficient_figure(coefficient_intervals(summary, intercept=intercept))


def plot_training_curve(model: Any) -> Any:
    """A :class:`~torchlinreg.GDRegressor`'s cost per epoch on a log scale, with the
    exact optimum's cost as a line (``exact_``); a model without ``history_`` (read
    from a file, or not trained) is refused."""
    from ._mpl import require_matplotlib
    from .draw import training_curve_figure
    from .training import training_curve

    curve = training_curve(model)
    require_matplotlib()
    return training_curve_figure(curve)


def plot_gradient_path(model: Any, X: Any, y: Any, sample_weight: Any = None) -> Any:
    """The path of (W, b) of a one- or two-parameter
    :class:`~torchlinreg.GDRegressor` over the contours of the exact cost of its
    training data ``X``, ``y``, beside its training curve."""
    from ._mpl import require_matplotlib
    from .draw import gradient_path_figure
    from .training import gradient_path, training_curve

    path = gradient_path(model, X, y, sample_weight)
    require_matplotlib()
    return gradient_path_figure(path, training_curve(model))


def save_figure(figure: Any, path: str, *, dpi: int = 120) -> None:
    """Write ``figure`` to ``path`` (.png, .svg or .pdf by its suffix), atomically."""
    from ._mpl import save

    save(figure, path, dpi)
