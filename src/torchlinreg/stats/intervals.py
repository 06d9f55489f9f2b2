"""Confidence and prediction intervals for the fitted mean at new points."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..solvers.solve import column_scale
from .covariance import unshifted_design_r
from .inference import check_level

INTERVALS = ("confidence", "prediction")


@dataclass
class Prediction:
    """``mean`` ± the interval: ``se`` is the standard error of the mean (confidence)
    or of a new observation (prediction)."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    se: np.ndarray


def prediction_interval(model: Any, X: Any, interval: str, level: float) -> Prediction:
    """For rows aᵢ = [1, xᵢ]: se_mean = σ·√(aᵢᵀ(AᵀWA)⁻¹aᵢ), se_obs = √(se_mean² + σ²)
    (a new observation of unit weight), bounds mean ± t_{df}(1 − α/2)·se."""
    from scipy import special

    from ..data.arrays import as_tensor

    if interval not in INTERVALS:
        raise InputError(
            f"interval must be one of {', '.join(INTERVALS)} or None; got {interval!r}"
        )
    check_level(level)
    state = model.state_
    n, rank = state.n_observations, model.rank_  # zero-weight rows are not observations
    if n - rank <= 0:
        raise InputError(
            "intervals need more rows than parameters (no residual degrees of freedom)"
        )
    if rank < state.n_params:
        raise InputError("intervals are not identified for a rank-deficient design")
    Xt = as_tensor(X, "X", ndim=(2,), dtype=torch.float64, device=state.device)
    model._check_n_features(Xt.shape[1])
    A = (
        torch.cat([torch.ones(len(Xt), 1, dtype=Xt.dtype, device=Xt.device), Xt], 1)
        if state.fit_intercept
        else Xt
    )
    theta = model._theta().to(state.device)
    mean = A @ theta
    rss = state.rss_of(theta)
    sigma2 = rss / (n - rank)
    R = unshifted_design_r(state)
    D = column_scale(R)
    Z = torch.linalg.solve_triangular((R * D).T, (A * D).T, upper=False)
    leverage = (Z**2).sum(0).unsqueeze(1)
    var = leverage * sigma2
    if interval == "prediction":
        var = var + sigma2
    se = var.sqrt()
    q = float(special.stdtrit(n - rank, 1 - (1 - level) / 2))
    one = np.ndim(model.coef_) == 1

    def shaped(t: torch.Tensor) -> np.ndarray:
        a = t.cpu().numpy()
        return a[:, 0] if one else a

    assert math.isfinite(q)
    return Prediction(shaped(mean), shaped(mean - q * se), shaped(mean + q * se), shaped(se))
