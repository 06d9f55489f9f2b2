"""The exact reference of a gradient fit: the least-squares answer on the same rows
and how far a gradient fit's coefficients and cost are from it (``GDRegressor.exact_``)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._types import ArrayLike

if TYPE_CHECKING:
    import torch

    from ..distributed.group import Group


@dataclass
class ExactGap:
    """How far a gradient fit is from the exact least-squares answer on the same data.

    ``coef``/``intercept`` are the exact solution (scikit-learn layout), ``cost`` its
    mean squared error and ``gd_cost`` that of the gradient coefficients (after the last
    epoch); ``coef_gap`` is the largest absolute difference over coefficients and
    intercepts, ``cost_gap = gd_cost - cost`` (≥ 0 up to rounding). ``null_cost`` is
    the cost of the best constant model (the weighted variance of y; the mean of y²
    without an intercept), so ``relative_cost_gap = cost_gap / null_cost`` is the share
    of y's variance the gradient fit gives up: the R² it is short of the exact fit's.
    """

    coef: np.ndarray
    intercept: float | np.ndarray
    cost: float
    gd_cost: float
    coef_gap: float
    cost_gap: float
    null_cost: float = float("nan")

    @property
    def relative_cost_gap(self) -> float:
        return self.cost_gap / self.null_cost if self.null_cost > 0 else float(self.cost_gap > 0)


def exact_gap(
    X: ArrayLike,
    y: ArrayLike,
    sample_weight: ArrayLike | None,
    coef: ArrayLike,
    intercept: ArrayLike,
    fit_intercept: bool,
    group: Group | None = None,
) -> ExactGap:
    """Solve the same problem exactly and compare (costs from the exact state alone).

    With a ``group``, ``X``, ``y`` and ``sample_weight`` are this rank's rows and the
    exact problem is that of every rank's rows."""
    exact = exact_fit(X, y, sample_weight, fit_intercept, group)
    return gap_to(exact, coef, intercept)


def exact_fit(
    X: ArrayLike,
    y: ArrayLike,
    sample_weight: ArrayLike | None,
    fit_intercept: bool,
    group: Group | None = None,
) -> Any:
    """The exact least-squares fit of the same rows (every rank's with a ``group``),
    its own diagnostics silenced: they are not the user's question here."""
    from .linear import LinearRegression

    exact = LinearRegression(fit_intercept=fit_intercept)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if group is None:
            exact.fit(X, y, sample_weight)
        else:
            exact.fit(X, y, sample_weight, distributed=group)
    return exact


def gap_to(exact: Any, coef: ArrayLike, intercept: ArrayLike) -> ExactGap:
    """How far ``coef``/``intercept`` are from the fitted exact model ``exact``."""
    gap = max(
        float(np.max(np.abs(np.asarray(coef, np.float64) - exact.coef_))),
        float(np.max(np.abs(np.asarray(intercept, np.float64) - exact.intercept_))),
    )
    cost, gd_cost = exact.cost_of(exact.coef_, exact.intercept_), exact.cost_of(coef, intercept)
    return ExactGap(
        exact.coef_, exact.intercept_, cost, gd_cost, gap, gd_cost - cost, _null_cost(exact.state_)
    )


def _null_cost(state: Any) -> float:
    """The mean cost of the best constant model, from the state (as ``cost_of``)."""
    theta = _null_theta(state)
    return float(state.rss_of(theta).sum() / (state.weight_sum * state.n_targets))


def _null_theta(state: Any) -> torch.Tensor:
    """The best constant model ``[ȳ_w; 0]`` (``0`` without an intercept), float64, from
    the state: ``R[0, p:]/R[0, 0]`` is the weighted mean of ``y − y₀``."""
    import torch

    theta = torch.zeros(state.n_params, state.n_targets, dtype=torch.float64)
    if state.fit_intercept:
        R = state.R.detach().cpu().double()
        theta[0] = state.shift_y.detach().cpu().double() + R[0, state.n_params :] / R[0, 0]
    return theta
