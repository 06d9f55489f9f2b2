"""The fast path for well-conditioned in-memory data: the state from the Gram matrix.

Forming G = MᵀM (M = √w·[1, X, Y − y₀]) is one matrix multiply, about twice as fast as a
Householder QR, and a Cholesky factor of G is an R factor of M: the same state the QR
fold builds, so every solve applies unchanged. Its price is accuracy: errors grow with
κ² instead of κ. So the result is accepted only when the condition number of the
(column-scaled) design keeps ε·κ² small, when no column is so small or large that its
squares leave the normal range, and the residual block of R, which the Gram matrix
would get by cancellation (yᵀy − fitted²), is recomputed from the residuals.

X is used as it is (no copy for float64 unweighted data); large column offsets make κ
large and send the problem to the QR fold, which shifts X. The targets are shifted by
y₀ (a copy of Y only) so that a large mean of y does not swamp its variation.
"""

from __future__ import annotations

import torch

from ..data.chunks import Chunk
from .scaling import power_of_two_scale
from .solve import EPS, design_conditioning, solve_ols
from .state import BLOCK_ROWS, LeastSquaresState, RowCounts
from .theta import split_theta

# Rows per block when X must be converted (float32) or weighted; float64 unweighted
# data are multiplied in one go, without any copy.
_BLOCK = 1 << 16
# Accept the Gram-built state when ε·κ² stays below this (about 11 correct digits).
GRAM_ACCURACY = 1e-11
# The same rule on κ itself: ε·κ² ≤ GRAM_ACCURACY ⇔ κ ≤ GRAM_KAPPA.
GRAM_KAPPA = (GRAM_ACCURACY / EPS) ** 0.5
# Squares of entries must stay in the normal float64 range (no subnormal underflow).
_SAFE = (1e-280, 1e280)


def _blocks(chunk: Chunk, device: torch.device, shift_y: torch.Tensor):  # type: ignore[no-untyped-def]
    """(X, Y − y₀, w) as float64 blocks: the whole data when no conversion is needed."""
    X, Y, w = chunk.X, chunk.Y, chunk.sample_weight
    whole = X.dtype == torch.float64 and w is None
    step = max(X.shape[0], 1) if whole else _BLOCK
    for start in range(0, X.shape[0], step):
        rows = slice(start, start + step)
        Xb = X[rows].to(device=device, dtype=torch.float64)
        Yb = Y[rows].to(device=device, dtype=torch.float64) - shift_y
        wb = None if w is None else w[rows].to(device=device, dtype=torch.float64).unsqueeze(1)
        yield Xb, Yb, wb


def _gram(chunk: Chunk, fit_intercept: bool, shift_y: torch.Tensor) -> torch.Tensor:
    device = chunk.X.device
    p, k = chunk.X.shape[1], chunk.Y.shape[1]
    f64 = torch.float64
    XtX = torch.zeros(p, p, dtype=f64, device=device)
    XtY = torch.zeros(p, k, dtype=f64, device=device)
    YtY = torch.zeros(k, k, dtype=f64, device=device)
    sx = torch.zeros(p, dtype=f64, device=device)
    sy = torch.zeros(k, dtype=f64, device=device)
    for Xb, Yb, wb in _blocks(chunk, device, shift_y):
        Xw, Yw = (Xb, Yb) if wb is None else (Xb * wb, Yb * wb)
        XtX += Xw.T @ Xb
        XtY += Xw.T @ Yb
        YtY += Yw.T @ Yb
        sx += Xw.sum(0)
        sy += Yw.sum(0)
    if not fit_intercept:
        return torch.cat([torch.cat([XtX, XtY], 1), torch.cat([XtY.T, YtY], 1)])
    total = (
        float(chunk.X.shape[0]) if chunk.sample_weight is None else float(chunk.sample_weight.sum())
    )
    t = torch.tensor([[total]], dtype=f64, device=device)
    return torch.cat(
        [
            torch.cat([t, sx.unsqueeze(0), sy.unsqueeze(0)], 1),
            torch.cat([sx.unsqueeze(1), XtX, XtY], 1),
            torch.cat([sy.unsqueeze(1), XtY.T, YtY], 1),
        ]
    )


def gram_state(chunk: Chunk, fit_intercept: bool) -> LeastSquaresState | None:
    """The state of ``chunk`` via G = MᵀM and Cholesky, or ``None`` when that would not
    be accurate (non-finite or out-of-range sums, failed Cholesky, ε·κ² > GRAM_ACCURACY)."""
    device = chunk.X.device
    p, k = chunk.X.shape[1], chunk.Y.shape[1]
    shift_x = torch.zeros(p, dtype=torch.float64, device=device)
    shift_y = torch.zeros(k, dtype=torch.float64, device=device)
    if fit_intercept and chunk.X.shape[0]:
        shift_y = chunk.Y[:BLOCK_ROWS].to(device=device, dtype=torch.float64).mean(0)
    G = _gram(chunk, fit_intercept, shift_y)
    diag = torch.diagonal(G)
    if not bool(torch.isfinite(G).all()):
        return None  # the QR path finds and names the bad value
    if bool(((diag > 0) & ((diag < _SAFE[0]) | (diag > _SAFE[1]))).any()):
        return None
    D = power_of_two_scale(diag.sqrt())
    L, info = torch.linalg.cholesky_ex(G * D.unsqueeze(0) * D.unsqueeze(1))
    if int(info) != 0:
        return None
    counts = RowCounts.of(chunk)
    state = LeastSquaresState.from_parts(
        L.T / D.unsqueeze(0), shift_x, shift_y, counts, fit_intercept=fit_intercept
    )
    if design_conditioning(state).kappa_exceeds(GRAM_KAPPA):
        return None
    R = state.R.clone()
    c = state.n_params
    R[c:, c:] = _residual_block(state, chunk)
    final = LeastSquaresState.from_parts(R, shift_x, shift_y, counts, fit_intercept=fit_intercept)
    final.share_design_memo(state)  # same design block: its conditioning is known
    return final


def _residual_block(state: LeastSquaresState, chunk: Chunk) -> torch.Tensor:
    """R's residual block recomputed from the residuals themselves (one multiply over X):
    the Cholesky factor of EᵀWE, E = (Y − y₀) − Aθ, which the Gram matrix would give only
    by cancellation (yᵀy − fitted²)."""
    coef, b = split_theta(state.to_shifted(solve_ols(state).theta), state.fit_intercept)
    k = state.n_targets
    cross = torch.zeros(k, k, dtype=torch.float64, device=state.device)
    for Xb, Yb, wb in _blocks(chunk, state.device, state.shift_y):
        E = Yb - Xb @ coef
        if b is not None:
            E -= b
        Ew = E if wb is None else E * wb
        cross += Ew.T @ E
    L, info = torch.linalg.cholesky_ex(cross)
    return L.T if int(info) == 0 else torch.diag(torch.diagonal(cross).clamp(min=0).sqrt())
