"""torchlinreg: PyTorch-native linear regression.

The public API is imported lazily, so ``import torchlinreg`` (and the CLI's ``--help``)
does not pay for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .errors import InputError, NotFittedError, TrainingDivergedError
    from .models.gd import GDRegressor
    from .training.history import History

__all__ = [
    "GDRegressor",
    "History",
    "InputError",
    "NotFittedError",
    "TrainingDivergedError",
    "__version__",
]

_LAZY = {
    "GDRegressor": "torchlinreg.models.gd",
    "History": "torchlinreg.training.history",
    "InputError": "torchlinreg.errors",
    "NotFittedError": "torchlinreg.errors",
    "TrainingDivergedError": "torchlinreg.errors",
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
