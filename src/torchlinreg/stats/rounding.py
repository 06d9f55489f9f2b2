"""What rounding alone leaves in a least-squares state: the yardstick of the checks and
decisions that must tell rounding from a real difference."""

from __future__ import annotations

import math

import torch

from ..solvers.state import LeastSquaresState, block_rows

_EPS = float(torch.finfo(torch.float64).eps)


def householder_gamma(state: LeastSquaresState) -> float:
    """γ with Householder's R the exact R factor of the rows perturbed by γ·‖column‖ in
    each column (Higham, Accuracy and Stability, Thm 19.4).

    γ = 16·√(n·m)·ε for n rows and m columns of R: rounding errors grow like √(n·m)·ε
    (Higham and Mary's probabilistic analysis), not as the n·m·ε worst case, and 16
    covers the constants."""
    n, m = max(state.n_samples, 1), state.R.shape[1]
    return 16 * math.sqrt(n * m) * _EPS


def exact_fit_gamma(state: LeastSquaresState) -> float:
    """γ with γ·(‖ỹ‖ + Σⱼ |θⱼ|·‖ãⱼ‖) the √RSS that rounding leaves for data fitted
    exactly: a typical level with a margin, not :func:`householder_gamma`'s bound.

    γ = 32·m·√B·ε for m columns of R folded in B blocks of rows. Compared like with
    like, the RMS residual against the per-row rounding of ỹ and Ãθ: within one block
    the shifted columns are near zero mean, so a Householder QR's backward error per
    column does not grow with the rows (Higham and Mary, sharper probabilistic analysis
    for data of mean zero), about m·ε from m reflections; each of the B folds then
    perturbs R by ε relative to the rows so far, √B as a random walk. Measured on exact
    fits (y = 2x, Wampler1's polynomial, offsets of 1e3) from 21 to 3e6 rows: √RSS
    reached 32·ε·level at m = 3 and √B ≈ 7, below a fifth of γ; a real residual of
    RMS 1e-12 on values of order 1 stays far above it."""
    m = state.R.shape[1]
    blocks = 1 + max(state.n_samples - 1, 0) // block_rows(m)
    return 32 * m * math.sqrt(blocks) * _EPS
