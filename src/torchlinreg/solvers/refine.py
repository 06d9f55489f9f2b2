"""Iterative refinement with residuals in double-double, for when accuracy is at risk.

A backward-stable QR solve is accurate to about κ·ε + κ²·ε·tanθ (θ the angle between y
and the column space): on large-residual, ill-conditioned problems (NIST Wampler5) that
is 6 digits. Refinement recovers the rest by computing residuals of the *original*
float64 data in double-double, which needs the data again:

* corrected semi-normal equations with the state's R: one pass over the data per step,
  no extra memory beyond a block; converges when κ²·ε < 1, so it is used when
  κ²·ε < 0.01, from memory or from a re-readable chunk stream;
* beyond that, in memory only, Björck's refinement of the augmented system
  [I A; Aᵀ 0][r; x] = [b; 0] with the Householder QR of A (a copy of the data and its
  Q); it converges when κ·ε < 1.

Residuals are those of the data exactly as given, [1, X] and Y, never of the state's
shifted copy: X − x₀ is rounded, and for a nearly collinear design that rounding alone
moves the solution. So refinement runs in the data's own coordinates, with the state's
R carried back to them (R·T for the unit-triangular shift T) as the preconditioner, and
with columns (and each target) scaled by exact powers of two, so the problem keeps its
solution bits and the double-double splitting cannot overflow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from ..data.chunks import Chunk
from ..errors import InputError
from . import dd
from .fingerprint import Fingerprint
from .qr import augmented_block
from .scaling import column_scale
from .solve import EPS, scaled_condition
from .state import LeastSquaresState

_MAX_STEPS = 6
# Bytes of double-double temporaries per block (A·x products, Aᵀr products).
_BLOCK_BYTES = 64 << 20


def _block_rows(p: int, k: int) -> int:
    return max(256, _BLOCK_BYTES // (8 * 8 * max(p * k, 1)))


def _design(chunk: Chunk, state: LeastSquaresState) -> tuple[torch.Tensor, torch.Tensor]:
    """(√w·[1, X], √w·Y) in float64: the data as given, unshifted."""
    device = state.device
    sqrt_w = None if chunk.sample_weight is None else chunk.sample_weight.sqrt().to(device)
    M = augmented_block(chunk.X.to(device), chunk.Y.to(device), sqrt_w, state.fit_intercept)
    p = state.n_params
    return M[:, :p], M[:, p:]


def design_condition(state: LeastSquaresState) -> float:
    """κ₂ of the unshifted, column-scaled design: what governs the refinement."""
    return scaled_condition(state.unshifted_R()[: state.n_params, : state.n_params])


def _seminormal_converges(state: LeastSquaresState) -> bool:
    # Corrected semi-normal equations converge when κ²·ε < 1; a margin for safety.
    return design_condition(state) ** 2 * EPS < 0.01


def _accumulate(
    A: torch.Tensor, x: torch.Tensor, b: torch.Tensor, r: torch.Tensor | None, want_f: bool
) -> tuple[torch.Tensor | None, tuple[torch.Tensor, torch.Tensor]]:
    """Over row blocks, in double-double: f = b − r − A x (rounded, if ``want_f``) and
    Aᵀf as a double-double pair (with ``r`` given, Aᵀr instead, as the augmented
    iteration needs). The pair stays unrounded so that sums over chunks, which may
    cancel, keep their accuracy."""
    rows = _block_rows(A.shape[1], b.shape[1])
    f = torch.empty_like(b) if want_f else None
    g_hi = torch.zeros_like(x)
    g_lo = torch.zeros_like(x)
    for start in range(0, A.shape[0], rows):
        sl = slice(start, start + rows)
        if r is None:
            v_hi, v_lo = dd.residual(A[sl], x, b[sl])
        else:
            if f is not None:
                f_hi, f_lo = dd.residual(A[sl], x, b[sl], r[sl])
                f[sl] = f_hi + f_lo
            v_hi, v_lo = r[sl], torch.zeros_like(r[sl])
        if f is not None and r is None:
            f[sl] = v_hi + v_lo
        h, lo = dd.rmatvec(A[sl], v_hi, v_lo)
        g_hi, err = dd.two_sum(g_hi, h)
        g_lo = g_lo + (err + lo)
    return f, dd.two_sum(g_hi, g_lo)


def _scales(R: torch.Tensor, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Power-of-two scales of the design columns and of each target, from an R factor
    (its columns have the norms of the data's columns)."""
    return column_scale(R[:p, :p]), column_scale(R[:, p:])


def _iterate(
    x: torch.Tensor, correction: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[torch.Tensor, int]:
    """x += correction(x) until the step is at rounding level; stops at the best iterate
    when the steps stop shrinking (the iteration does not converge). Returns (x, steps)."""
    best, best_size = x, math.inf
    steps = 0
    for _ in range(_MAX_STEPS):
        dx = correction(x)
        steps += 1
        size = float(dx.abs().max())
        if not math.isfinite(size) or size >= best_size:
            break  # diverging: keep the best iterate
        x = x + dx
        best, best_size = x, size
        if size <= 4 * EPS * float(x.abs().max()):
            break
    return best, steps


def _seminormal(
    chunks: Callable[[], Iterable[Chunk]], state: LeastSquaresState, theta: torch.Tensor
) -> tuple[torch.Tensor, int]:
    """Corrected semi-normal equations: x += (RᵀR)⁻¹ Aᵀ(b − A x), one pass over
    ``chunks()`` per step, columns and targets scaled by powers of two. Returns (θ, passes)."""
    p = state.n_params
    Ru = state.unshifted_R()
    D, T = _scales(Ru, p)
    RS = Ru[:p, :p] * D

    def correction(x: torch.Tensor) -> torch.Tensor:
        g_hi = torch.zeros_like(x)
        g_lo = torch.zeros_like(x)
        for chunk in chunks():
            A, b = _design(chunk, state)
            _, (h, lo) = _accumulate(A * D, x, b * T, None, want_f=False)  # Aᵀ(b − A x)
            g_hi, err = dd.two_sum(g_hi, h)
            g_lo = g_lo + (err + lo)
        y = torch.linalg.solve_triangular(RS.T, g_hi + g_lo, upper=False)
        return torch.linalg.solve_triangular(RS, y, upper=True)

    x, steps = _iterate(theta.to(Ru) / D.unsqueeze(1) * T, correction)
    return x * D.unsqueeze(1) / T, steps


def _row_blocks(chunk: Chunk, rows: int) -> Iterable[Chunk]:
    w = chunk.sample_weight
    for start in range(0, chunk.X.shape[0], rows):
        sl = slice(start, start + rows)
        yield Chunk(chunk.X[sl], chunk.Y[sl], None if w is None else w[sl], chunk.target_1d)


def refine_in_memory(chunk: Chunk, state: LeastSquaresState, theta: torch.Tensor) -> torch.Tensor:
    """Refine θ (p', k; intercept first, data units) for the in-memory problem."""
    if _seminormal_converges(state):
        rows = _block_rows(state.n_params, state.n_targets)
        return _seminormal(lambda: _row_blocks(chunk, rows), state, theta)[0]
    D, T = _scales(state.unshifted_R(), state.n_params)
    A, b = _design(chunk, state)
    A, b = A * D, b * T
    Q, R = torch.linalg.qr(A)
    x = theta.to(A) / D.unsqueeze(1) * T
    r = b - A @ x

    def correction(x: torch.Tensor) -> torch.Tensor:
        nonlocal r
        f, (atr_hi, atr_lo) = _accumulate(A, x, b, r, want_f=True)  # b − r − A x; Aᵀ r
        assert f is not None
        g = -(atr_hi + atr_lo)  # 0 − Aᵀ r
        # Solve [I A; Aᵀ 0][δr; δx] = [f; g] with A = Q R.
        h = torch.linalg.solve_triangular(R.T, g, upper=False)
        d = Q.T @ f
        r = r + (f - Q @ (d - h))
        return torch.linalg.solve_triangular(R, d - h, upper=True)

    x, _ = _iterate(x, correction)
    return x * D.unsqueeze(1) / T


def refine_from_chunks(
    chunks: Callable[[], Iterable[Chunk]],
    state: LeastSquaresState,
    theta: torch.Tensor,
    first_pass: Fingerprint,
) -> tuple[torch.Tensor, int]:
    """Refine θ by corrected semi-normal equations, one pass over ``chunks()`` per step.

    Returns (θ, passes made). Skipped (0 passes) when κ²·ε ≥ 0.01 for the unshifted
    design, where the iteration cannot converge; the QR solution is then the best
    available in this mode. Every pass must read exactly the data of the first one
    (``first_pass``), else :class:`~torchlinreg.errors.InputError`.
    """
    if not _seminormal_converges(state):
        return theta, 0

    def changed() -> InputError:
        return InputError(
            f"the data changed between passes: the first pass read {first_pass.rows} rows, "
            "a second pass (for refinement) read other rows or values; do not modify the "
            "input while it is fitted, and pass a function that returns a fresh iterator "
            "over the same data"
        )

    def checked() -> Iterable[Chunk]:
        seen = Fingerprint()
        for chunk in chunks():
            if chunk.X.shape[1:] != (state.n_features,) or chunk.Y.shape[1:] != (state.n_targets,):
                raise changed()
            seen.add(chunk)
            yield chunk
        if seen != first_pass:
            raise changed()

    return _seminormal(checked, state, theta)
