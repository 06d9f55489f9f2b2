"""Tall-skinny QR, the arithmetic behind the mergeable state.

For a matrix M split into row blocks M₁, M₂, ..., the R factor of M is the R factor of
the stacked R factors of the blocks: R(M) = R([R(M₁); R(M₂); ...]) (up to row signs).
So a fold over chunks, a merge of two partial results and a tree over ranks all give
the R factor of the whole, each step a small Householder QR. Householder QR is
backward stable (columnwise), unlike forming MᵀM, which squares the condition number.
"""

from __future__ import annotations

import torch


def qr_r(M: torch.Tensor) -> torch.Tensor:
    """The square R factor (m × m) of M (rows ≥ m)."""
    return torch.linalg.qr(M, mode="r").R


def fold_rows(R: torch.Tensor, block: torch.Tensor) -> torch.Tensor:
    """R factor of [rows behind R; block]: R([R; block])."""
    return qr_r(torch.cat([R, block]))


def augmented_block(
    X: torch.Tensor, Y: torch.Tensor, sqrt_w: torch.Tensor | None, fit_intercept: bool
) -> torch.Tensor:
    """√w ⊙ [1, X, Y] in float64: the rows the state folds in.

    The ones column goes first, so the trailing block of R is the R factor of the
    (weighted-)centred [X, Y]: centring without the cancellation of subtracting means.
    """
    parts = [X.to(torch.float64), Y.to(torch.float64)]
    if fit_intercept:
        parts.insert(0, torch.ones(X.shape[0], 1, dtype=torch.float64, device=X.device))
    M = torch.cat(parts, dim=1)
    if sqrt_w is not None:
        M *= sqrt_w.to(torch.float64).unsqueeze(1)
    return M
