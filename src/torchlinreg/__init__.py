"""torchlinreg: PyTorch-native linear regression.

The public API is imported lazily, so ``import torchlinreg`` (and the CLI's ``--help``)
does not pay for importing torch.
"""

from __future__ import annotations

from ._version import __version__

# Not typing's: importing typing takes 20 ms of the command line's start, while Ctrl-C
# cannot yet be caught (torchlinreg.cli.main catches it from there on).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .data.tables import Dataset, load_data
    from .errors import (
        AccuracyWarning,
        ConvergenceWarning,
        IllConditionedWarning,
        InputError,
        NotFittedError,
        RankDeficientWarning,
        TrainingDivergedError,
    )
    from .formula.api import ols
    from .models.cv import ElasticNetCV, LassoCV, RidgeCV
    from .models.gd import ExactGap, GDRegressor
    from .models.huber import HuberRegressor
    from .models.linear import LinearRegression
    from .models.penalized import ElasticNet, Lasso
    from .models.ridge import Ridge
    from .persistence import load_model, save_model
    from .solvers.state import LeastSquaresState
    from .stats.compare import compare
    from .stats.etable import etable
    from .stats.intervals import Prediction
    from .stats.summary import Summary
    from .torch_io import from_torch
    from .training.history import History

__all__ = [
    "AccuracyWarning",
    "ConvergenceWarning",
    "Dataset",
    "ExactGap",
    "GDRegressor",
    "History",
    "IllConditionedWarning",
    "InputError",
    "LeastSquaresState",
    "LinearRegression",
    "NotFittedError",
    "Prediction",
    "RankDeficientWarning",
    "Ridge",
    "RidgeCV",
    "LassoCV",
    "ElasticNetCV",
    "ElasticNet",
    "Lasso",
    "HuberRegressor",
    "Summary",
    "TrainingDivergedError",
    "__version__",
    "from_torch",
    "load_data",
    "ols",
    "load_model",
    "save_model",
    "compare",
    "etable",
]

_LAZY = {
    "Dataset": "torchlinreg.data.tables",
    "load_data": "torchlinreg.data.tables",
    "load_model": "torchlinreg.persistence",
    "ols": "torchlinreg.formula.api",
    "save_model": "torchlinreg.persistence",
    "ExactGap": "torchlinreg.models.gd",
    "GDRegressor": "torchlinreg.models.gd",
    "LinearRegression": "torchlinreg.models.linear",
    "Ridge": "torchlinreg.models.ridge",
    "RidgeCV": "torchlinreg.models.cv",
    "LassoCV": "torchlinreg.models.cv",
    "ElasticNetCV": "torchlinreg.models.cv",
    "ElasticNet": "torchlinreg.models.penalized",
    "Lasso": "torchlinreg.models.penalized",
    "HuberRegressor": "torchlinreg.models.huber",
    "LeastSquaresState": "torchlinreg.solvers.state",
    "Prediction": "torchlinreg.stats.intervals",
    "Summary": "torchlinreg.stats.summary",
    "History": "torchlinreg.training.history",
    "AccuracyWarning": "torchlinreg.errors",
    "ConvergenceWarning": "torchlinreg.errors",
    "IllConditionedWarning": "torchlinreg.errors",
    "InputError": "torchlinreg.errors",
    "NotFittedError": "torchlinreg.errors",
    "RankDeficientWarning": "torchlinreg.errors",
    "TrainingDivergedError": "torchlinreg.errors",
    "from_torch": "torchlinreg.torch_io",
    "compare": "torchlinreg.stats.compare",
    "etable": "torchlinreg.stats.etable",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'torchlinreg' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
