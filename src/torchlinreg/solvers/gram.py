"""The fast path for well-conditioned in-memory data: the state from the Gram matrix.

Forming G = MᵀM (M = √w·[1, X, Y]) is one matrix multiply, about twice as fast as a
Householder QR, and a Cholesky factor of G is an R factor of M: the same state the QR
fold builds, so every solve applies unchanged. Its price is accuracy: errors grow with
κ² instead of κ. So the caller checks the condition number of the result and falls
back to QR when the normal equations are not accurate enough; and the residual block of
R, which would suffer cancellation (yᵀy − fitted²), is recomputed from the residuals.
"""

from __future__ import annotations

import torch

from .solve import EPS, condition_number, power_of_two_scale, solve_ols
from .state import Chunk, LeastSquaresState

# Rows per block when X must be converted (float32) or weighted; float64 unweighted
# data are multiplied in one go, without any copy.
_BLOCK = 1 << 16
# Accept the Gram-built state when ε·κ² stays below this (about 11 correct digits).
GRAM_ACCURACY = 1e-11


def _gram(chunk: Chunk, fit_intercept: bool, device: torch.device) -> torch.Tensor:
    X, Y, w = chunk.X, chunk.Y, chunk.sample_weight
    n, p = X.shape
    k = Y.shape[1]
    f64 = torch.float64
    XtX = torch.zeros(p, p, dtype=f64, device=device)
    XtY = torch.zeros(p, k, dtype=f64, device=device)
    YtY = torch.zeros(k, k, dtype=f64, device=device)
    sx = torch.zeros(p, dtype=f64, device=device)
    sy = torch.zeros(k, dtype=f64, device=device)
    whole = X.dtype == f64 and w is None
    step = n if whole else _BLOCK
    for start in range(0, n, step):
        rows = slice(start, start + step)
        Xb = X[rows].to(device=device, dtype=f64)
        Yb = Y[rows].to(device=device, dtype=f64)
        if w is None:
            Xw, Yw = Xb, Yb
        else:
            wb = w[rows].to(device=device, dtype=f64).unsqueeze(1)
            Xw, Yw = Xb * wb, Yb * wb
        XtX += Xw.T @ Xb
        XtY += Xw.T @ Yb
        YtY += Yw.T @ Yb
        sx += Xw.sum(0)
        sy += Yw.sum(0)
    total = float(n) if w is None else float(w.sum())
    top = [XtX, XtY]
    bottom = [XtY.T, YtY]
    if fit_intercept:
        t = torch.tensor([[total]], dtype=f64, device=device)
        top = [torch.cat([t, sx.unsqueeze(0), sy.unsqueeze(0)], 1)] + [
            torch.cat([sx.unsqueeze(1), XtX, XtY], 1)
        ]
        bottom = [torch.cat([sy.unsqueeze(1), XtY.T, YtY], 1)]
        return torch.cat(top + bottom)
    return torch.cat([torch.cat(top, 1), torch.cat(bottom, 1)])


def gram_state(chunk: Chunk, fit_intercept: bool) -> LeastSquaresState | None:
    """The state of ``chunk`` via G = MᵀM and Cholesky, or ``None`` when that is not
    accurate enough (Cholesky fails, or ε·κ² > ``GRAM_ACCURACY``)."""
    device = chunk.X.device
    p, k = chunk.X.shape[1], chunk.Y.shape[1]
    state = LeastSquaresState(p, k, fit_intercept=fit_intercept, device=device)
    G = _gram(chunk, fit_intercept, device)
    if not bool(torch.isfinite(G).all()):
        return None  # the QR path finds and names the bad value
    D = power_of_two_scale(torch.diagonal(G).sqrt())
    L, info = torch.linalg.cholesky_ex(G * D.unsqueeze(0) * D.unsqueeze(1))
    if int(info) != 0:
        return None
    state.R = L.T / D.unsqueeze(0)
    state.n_samples = chunk.X.shape[0]
    state.weight_sum = (
        float(chunk.X.shape[0]) if chunk.sample_weight is None else float(chunk.sample_weight.sum())
    )
    if EPS * condition_number(state) ** 2 > GRAM_ACCURACY:
        return None
    _recompute_residual_block(state, chunk)
    return state


def _recompute_residual_block(state: LeastSquaresState, chunk: Chunk) -> None:
    """Replace R's residual block by the Cholesky factor of EᵀWE, E = Y − A θ, computed
    from the residuals themselves (one multiply over X)."""
    solution = solve_ols(state)
    device = state.R.device
    k = state.n_targets
    cross = torch.zeros(k, k, dtype=torch.float64, device=device)
    step = chunk.X.shape[0] if chunk.X.dtype == torch.float64 else _BLOCK
    for start in range(0, chunk.X.shape[0], step):
        rows = slice(start, start + step)
        Xb = chunk.X[rows].to(device=device, dtype=torch.float64)
        E = chunk.Y[rows].to(device=device, dtype=torch.float64) - Xb @ solution.coef
        if solution.intercept is not None:
            E -= solution.intercept
        w = chunk.sample_weight
        Ew = E if w is None else E * w[rows].to(device).unsqueeze(1)
        cross += Ew.T @ E
    L, info = torch.linalg.cholesky_ex(cross)
    p = state.n_params
    state.R[p:, p:] = (
        L.T if int(info) == 0 else torch.diag(torch.diagonal(cross).clamp(min=0).sqrt())
    )
