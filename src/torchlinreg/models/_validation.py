"""Checks of constructor parameters, run at ``fit`` time (scikit-learn's contract)."""

from __future__ import annotations

import math
import numbers
from typing import Any

from ..errors import InputError

# The values the estimators' parameters may take, here (torch-free) because model files
# are checked against them without loading torch (``torchlinreg._model_meta``).
EXACT_SOLVERS = ("auto", "qr", "svd", "cholesky")
RIDGE_SOLVERS = ("auto", "qr", "cholesky")
REFINE = ("auto", True, False)
INITS = ("zeros", "random")
LOSSES = ("squared_error", "huber")
SEED_LIMIT = 2**64  # torch.Generator takes 64-bit seeds; the CLI's --seed has the same range


def check_int(name: str, value: Any, *, low: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        none = " or None" if allow_none else ""
        raise InputError(f"{name} must be an integer >= {low}{none}, got {value!r}")


def check_positive(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InputError(f"{name} must be a finite number > 0, got {value!r}")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def seed_from(random_state: Any) -> int | None:
    """An int seed from ``None`` (fresh entropy), an int, or a numpy ``RandomState``."""
    if random_state is None:
        return None
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if not 0 <= int(random_state) < SEED_LIMIT:
            raise InputError(
                f"random_state must be an int from 0 to 2**64 - 1, got {int(random_state)}"
            )
        return int(random_state)
    if hasattr(random_state, "randint"):
        return int(random_state.randint(0, 2**31 - 1))
    raise InputError(
        f"random_state must be None, an int or a numpy RandomState, got {random_state!r}"
    )
