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


def fill_augmented(
    out: torch.Tensor,
    X: torch.Tensor,
    Y: torch.Tensor,
    sqrt_w: torch.Tensor | None,
    fit_intercept: bool,
    shift_x: torch.Tensor | None = None,
    shift_y: torch.Tensor | None = None,
) -> torch.Tensor:
    """Write √w ⊙ [1, X − x₀, Y − y₀] (float64) into ``out`` (rows × m): the rows the
    state folds in.

    The ones column goes first, so the trailing block of R is the R factor of the
    (weighted-)centred [X, Y]: centring without the cancellation of subtracting means.
    """
    c = int(fit_intercept)
    p = X.shape[1]
    if fit_intercept:
        out[:, 0] = 1.0
    # Copy and shift in one pass (torch converts float32 to float64 on the way).
    if shift_x is None:
        out[:, c : c + p] = X
    else:
        torch.sub(X, shift_x, out=out[:, c : c + p])
    if shift_y is None:
        out[:, c + p :] = Y
    else:
        torch.sub(Y, shift_y, out=out[:, c + p :])
    if sqrt_w is not None:
        out *= sqrt_w.to(torch.float64).unsqueeze(1)
    return out


def augmented_block(
    X: torch.Tensor, Y: torch.Tensor, sqrt_w: torch.Tensor | None, fit_intercept: bool
) -> torch.Tensor:
    """√w ⊙ [1, X, Y], unshifted, in a new float64 tensor (see :func:`fill_augmented`)."""
    m = X.shape[1] + Y.shape[1] + int(fit_intercept)
    out = torch.empty(X.shape[0], m, dtype=torch.float64, device=X.device)
    return fill_augmented(out, X, Y, sqrt_w, fit_intercept)
