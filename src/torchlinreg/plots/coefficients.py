"""The numbers behind the coefficient plot: each estimate and its confidence interval,
from a model's statistical summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CoefficientIntervals:
    """Estimates and their ``level`` confidence intervals, in the summary's order
    (NaN where the summary has none: an aliased column)."""

    names: list[str]
    estimate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float
    target: str


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def coefficient_intervals(summary: Any, *, intercept: bool = True) -> CoefficientIntervals:
    """The intervals of a :class:`~torchlinreg.stats.summary.Summary` (one target's:
    ``model.summary()``, or one entry of its list); ``intercept=False`` leaves the
    intercept out (its scale often dwarfs the slopes')."""
    rows = [c for c in summary.coefficients if intercept or c.name != "intercept"]
    return CoefficientIntervals(
        [c.name for c in rows],
        np.array([_number(c.estimate) for c in rows]),
        np.array([_number(c.ci_lower) for c in rows]),
        np.array([_number(c.ci_upper) for c in rows]),
        float(summary.level),
        str(summary.target),
    )
