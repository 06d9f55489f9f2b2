"""The Gram path's residual block: kept as the Cholesky gives it only where the
cancellation SSR = ỹᵀỹ − fitted² costs less than GRAM_ACCURACY (solvers/gram.py,
``residual_block_accurate``), else recomputed from the residuals.

Oracle: the QR fold of the same rows (Householder, backward stable), which gives the
residual sum of squares of any coefficients θ̂ accurately whatever the fit; the SSR a
fit reports is that of its own θ̂. The noise levels run from a loose fit (kept) to a fit
within 1e-6 of exact, where the Gram's own SSR has lost most of its digits.
"""

from __future__ import annotations

import numpy as np
import torch

from torchlinreg.data.chunks import validate_chunk
from torchlinreg.solvers import gram
from torchlinreg.solvers.gram import GRAM_ACCURACY, gram_state, residual_block_accurate
from torchlinreg.solvers.solve import EPS, solve_ols
from torchlinreg.solvers.state import BLOCK_ROWS, LeastSquaresState, RowCounts

NOISE = (1.0, 1e-1, 1e-2, 1e-4, 1e-6)


def design(n: int, p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 5.0, p) + rng.uniform(-3.0, 3.0, p)
    return X, X @ rng.normal(size=p) + 1.5


def raw_gram_state(X: np.ndarray, Y: np.ndarray, w: np.ndarray | None = None):  # type: ignore[no-untyped-def]
    """The state exactly as the Cholesky of the shifted Gram gives it (no recompute)."""
    chunk = validate_chunk(X, Y, w)
    shift_x, shift_y = chunk.X[:BLOCK_ROWS].mean(0), chunk.Y[:BLOCK_ROWS].mean(0)
    G = gram._gram(chunk, True, shift_x, shift_y)
    state = gram._factor(G, shift_x, shift_y, RowCounts.of(chunk), True)
    assert state is not None  # well conditioned: the normal equations are accepted
    return state, chunk


def exact_ssr(
    X: np.ndarray, Y: np.ndarray, w: np.ndarray | None, theta: torch.Tensor
) -> np.ndarray:
    """Σ wᵢ(yᵢ − b − xᵢβ)² per target in extended precision (64-bit significand): its
    rounding, ~1e-19·Σ|xᵢⱼβⱼ| per residual, is far below what is checked here."""
    th = theta.numpy().astype(np.longdouble)
    Yl = np.asarray(Y, dtype=np.longdouble).reshape(len(X), -1)
    r = Yl - th[0] - X.astype(np.longdouble) @ th[1:]
    wl = np.ones(len(X), dtype=np.longdouble) if w is None else w.astype(np.longdouble)
    return np.asarray((wl[:, None] * r * r).sum(0), dtype=np.float64)


def ssr_error(
    state: LeastSquaresState, X: np.ndarray, Y: np.ndarray, w: np.ndarray | None = None
) -> np.ndarray:
    """Relative error of each target's SSR as ``state`` tells it, against the exact SSR
    of its own coefficients θ̂ (what a summary reports for θ̂)."""
    ours = state.R_residual.pow(2).sum(0).numpy()
    ref = exact_ssr(X, Y, w, solve_ols(state).theta)
    return np.abs(ours - ref) / ref


def stable_limit(state: LeastSquaresState) -> np.ndarray:
    """A backward-stable residual (the QR fold's, or residuals recomputed in float64)
    is off by ~ε·‖ỹ‖ absolutely: SSR relative 2ε·‖ỹ‖/√SSR; never asked below
    GRAM_ACCURACY."""
    c = state.n_params
    total = torch.linalg.vector_norm(state.R[:, c:], dim=0)
    root = torch.linalg.vector_norm(state.R_residual, dim=0)
    return np.maximum(GRAM_ACCURACY, (2 * EPS * total / root).numpy())


def test_the_gram_block_is_kept_exactly_where_its_ssr_is_accurate() -> None:
    X, signal = design(5000, 50)
    rng = np.random.default_rng(1)
    kept = []
    for noise in NOISE:
        y = signal + noise * rng.normal(size=len(signal))
        raw, chunk = raw_gram_state(X, y)
        accurate = residual_block_accurate(raw)
        kept.append(accurate)
        if accurate:
            assert float(ssr_error(raw, X, y)[0]) <= GRAM_ACCURACY, noise
        # Whichever way, the state the fit uses is as accurate as a stable method's.
        final = gram_state(chunk, True)
        assert final is not None
        assert float(ssr_error(final, X, y)[0]) <= float(stable_limit(final)[0]), noise
    # The loose fit keeps the Gram's block, the close ones do not ...
    assert kept[0] and not any(kept[2:])
    # ... and rightly: within 1e-6 of an exact fit the Gram's own SSR is far off.
    assert float(ssr_error(raw, X, y)[0]) > 1e-4


def test_one_close_target_recomputes_the_block_of_all() -> None:
    """Weighted, two targets: a loose fit and a close one. The block is one triangle,
    so it is recomputed whole; both targets' SSR are as accurate as a stable method's,
    and the whole block agrees with the QR fold's."""
    X, signal = design(4000, 20, seed=2)
    rng = np.random.default_rng(3)
    Y = np.column_stack([signal + rng.normal(size=4000), signal + 1e-6 * rng.normal(size=4000)])
    w = rng.uniform(0.2, 3.0, size=4000)
    raw, chunk = raw_gram_state(X, Y, w)
    assert not residual_block_accurate(raw)
    loose, _ = raw_gram_state(X, Y[:, :1], w)
    assert residual_block_accurate(loose)
    final = gram_state(chunk, True)
    assert final is not None
    assert bool((ssr_error(final, X, Y, w) <= stable_limit(final)).all())
    qr = LeastSquaresState(20, n_targets=2).update_chunk(chunk)
    ref = qr.R_residual.abs()
    # Column j of either block is off by ~ε·‖ỹⱼ‖ (stable) and 1e-11·√SSRⱼ at most.
    total = torch.linalg.vector_norm(final.R[:, final.n_params :], dim=0)
    limit = 4 * EPS * total + 1e-10 * torch.linalg.vector_norm(ref, dim=0)
    assert bool(((final.R_residual.abs() - ref).abs() <= limit).all())


def test_the_panelled_product_is_the_gram_matrix(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """BᵀB from the upper block triangle (panels of 7 columns, the last one short),
    summed over blocks: numpy's BᵀB to rounding; and a fit through it gives the QR
    fold's R (same shift) to the accuracy the Gram rule promises (κ ≈ 3 here)."""
    monkeypatch.setattr(gram, "_PANEL", 7)
    rng = np.random.default_rng(5)
    blocks = [rng.normal(size=(rows, 30)) for rows in (50, 13)]
    update = gram._accumulator(30, torch.device("cpu"))
    for B in blocks:
        update(torch.as_tensor(B))
    ref = sum(B.T @ B for B in blocks)
    # The upper triangle is the sum (the factorization reads nothing else).
    np.testing.assert_allclose(
        np.triu(update(None).numpy()), np.triu(ref), rtol=0, atol=1e-13 * np.abs(ref).max()
    )
    X, signal = design(3000, 70, seed=6)
    y = signal + rng.normal(size=3000)
    chunk = validate_chunk(X, y)
    final = gram_state(chunk, True)  # 73 columns: the shifted Gram, 8 panels of 10
    assert final is not None
    qr = LeastSquaresState(70).update_chunk(chunk)
    torch.testing.assert_close(
        final.R.abs(), qr.R.abs(), rtol=1e-9, atol=1e-9 * float(qr.R.abs().max())
    )
