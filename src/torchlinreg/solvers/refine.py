"""Iterative refinement with residuals in double-double, for when accuracy is at risk.

A backward-stable QR solve is accurate to about κ·ε + κ²·ε·tanθ (θ the angle between y
and the column space): on large-residual, ill-conditioned problems (NIST Wampler5) that
is 6 digits. Refinement recovers the rest by computing residuals of the *original*
float64 data in double-double, which needs the data again:

* in memory, Björck's refinement of the augmented system [I A; Aᵀ 0][r; x] = [b; 0]
  with the Householder QR of A; it converges when κ·ε < 1;
* from a re-readable chunk stream, corrected semi-normal equations with the state's R
  (one pass per step; converges when κ²·ε < 1, so it is only tried then).

Columns are scaled by exact powers of two, so the scaled problem has the same solution
bits. Work is done in row blocks to keep the double-double temporaries small.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from . import dd
from .qr import augmented_block
from .solve import EPS, power_of_two_scale
from .state import Chunk, LeastSquaresState

_BLOCK = 1 << 16
_MAX_STEPS = 6


def _design(
    chunk: Chunk, fit_intercept: bool, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(√w·[1, X], √w·Y) in float64 on ``device``, exactly as the state folded them."""
    sqrt_w = None if chunk.sample_weight is None else chunk.sample_weight.sqrt().to(device)
    M = augmented_block(chunk.X.to(device), chunk.Y.to(device), sqrt_w, fit_intercept)
    p = M.shape[1] - chunk.Y.shape[1]
    return M[:, :p], M[:, p:]


def _converged(step: torch.Tensor, x: torch.Tensor) -> bool:
    return float(step.abs().max()) <= 4 * EPS * float(x.abs().max())


def refine_in_memory(chunk: Chunk, fit_intercept: bool, theta: torch.Tensor) -> torch.Tensor:
    """Refine θ (p', k; intercept first) for the in-memory problem ``chunk``."""
    device = theta.device
    A, b = _design(chunk, fit_intercept, device)
    D = power_of_two_scale(torch.linalg.vector_norm(A, dim=0))
    A = A * D
    Q, R = torch.linalg.qr(A)
    x = theta / D.unsqueeze(1)
    r = b - A @ x
    best, best_size = x, float("inf")
    for _ in range(_MAX_STEPS):
        f = torch.empty_like(b)
        g_hi = torch.zeros_like(x)
        g_lo = torch.zeros_like(x)
        for start in range(0, A.shape[0], _BLOCK):
            rows = slice(start, start + _BLOCK)
            f_hi, f_lo = dd.residual(A[rows], x, b[rows], r[rows])  # b − r − A x
            f[rows] = f_hi + f_lo
            h, lo = dd.rmatvec(A[rows], r[rows], torch.zeros_like(r[rows]))
            g_hi, err = dd.two_sum(g_hi, h)
            g_lo = g_lo + (err + lo)
        g = -(g_hi + g_lo)  # 0 − Aᵀ r
        # Solve [I A; Aᵀ 0][δr; δx] = [f; g] with A = Q R.
        h = torch.linalg.solve_triangular(R.T, g, upper=False)
        d = Q.T @ f
        dx = torch.linalg.solve_triangular(R, d - h, upper=True)
        size = float(dx.abs().max())
        if size >= best_size:  # not converging (κ·ε too large): keep the best iterate
            break
        x = x + dx
        r = r + (f - Q @ (d - h))
        best, best_size = x, size
        if _converged(dx, x):
            break
    return best * D.unsqueeze(1)


def refine_from_chunks(
    chunks: Callable[[], Iterable[Chunk]],
    state: LeastSquaresState,
    theta: torch.Tensor,
    condition_number: float,
) -> tuple[torch.Tensor, int]:
    """Refine θ by corrected semi-normal equations, one pass over ``chunks()`` per step.

    Returns (θ, passes made). Skipped (0 passes) when κ²·ε ≥ 0.01, where the iteration
    cannot converge; the QR solution is then the best available in this mode.
    """
    if condition_number**2 * EPS >= 0.01:
        return theta, 0
    device = state.R.device
    RA = state.R_design
    D = power_of_two_scale(torch.linalg.vector_norm(RA, dim=0))
    RS = RA * D
    x = theta / D.unsqueeze(1)
    passes = 0
    for _ in range(_MAX_STEPS):
        g_hi = torch.zeros_like(x)
        g_lo = torch.zeros_like(x)
        for chunk in chunks():
            A, b = _design(chunk, state.fit_intercept, device)
            A = A * D
            for start in range(0, A.shape[0], _BLOCK):
                rows = slice(start, start + _BLOCK)
                r_hi, r_lo = dd.residual(A[rows], x, b[rows])
                h, lo = dd.rmatvec(A[rows], r_hi, r_lo)
                g_hi, err = dd.two_sum(g_hi, h)
                g_lo = g_lo + (err + lo)
        passes += 1
        g = g_hi + g_lo
        # (RᵀR) δ = Aᵀ r
        y = torch.linalg.solve_triangular(RS.T, g, upper=False)
        dx = torch.linalg.solve_triangular(RS, y, upper=True)
        x = x + dx
        if _converged(dx, x):
            break
    return x * D.unsqueeze(1), passes
