"""Goodness of fit of any coefficients, from a least-squares state alone."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputError


def fit_statistics(state: Any, coef: Any, intercept: Any) -> dict[str, Any]:
    """n (observations: rows of positive weight), residual sum of squares, MSE, RMSE and
    R² per target for ``coef``/``intercept`` (scikit-learn layout) on the rows folded
    into ``state``.

    R² is centred with an intercept and uncentred without one (as R and NIST define it).
    The total sum of squares comes from R: the target column of R (centred part when the
    first column is the intercept) has the norm of the (centred) target. Weights whose
    sums of squares would overflow are scaled by a power of four first
    (:mod:`.scaling`): R², MSE and RMSE do not change, RSS is scaled back.
    """
    import torch

    from .scaling import scale_weights

    scaled = scale_weights(state)
    state = scaled.state
    theta = torch.as_tensor(np.atleast_2d(coef).T, dtype=torch.float64)
    if state.fit_intercept:
        b = torch.as_tensor(np.atleast_1d(intercept), dtype=torch.float64)
        theta = torch.cat([b.unsqueeze(0), theta])
    rss = state.rss_of(theta.to(state.R.device)).cpu()
    c = int(state.fit_intercept)
    tss = ((state.R_target[c:] ** 2).sum(0) + (state.R_residual**2).sum(0)).cpu()
    weight_sum = scaled.weight_sum
    if weight_sum is None:
        raise InputError(
            "the sample weights sum beyond float64 (about 1.8e308); divide them by a power "
            "of ten: no statistic but the residual sum of squares changes"
        )
    mse = rss / weight_sum
    r2 = [
        1.0 - float(a) / float(t) if float(t) > 0 else math.nan
        for a, t in zip(rss, tss, strict=True)
    ]
    try:
        rss_as_given = [math.ldexp(float(v), 2 * scaled.exponent) for v in rss]
    except OverflowError:
        raise InputError(
            "the weighted residual sum of squares overflows float64 (weights near 1e308); "
            "divide the weights by a power of ten: no statistic but the residual sum of "
            "squares changes"
        ) from None
    return {
        "n": state.n_observations,  # zero-weight rows are not observations
        "rss": rss_as_given,
        "mse": mse.tolist(),
        "rmse": mse.sqrt().tolist(),
        "r2": r2,
    }
