"""The one layout of the parameters on the exact side: θ (p', k), intercept FIRST.

Row 0 is the intercept b (when there is one), rows 1.. the slopes β, one column per
target: the order of the columns of the design [1, X] the state factors.
"""

from __future__ import annotations

import torch


def stack_theta(coef: torch.Tensor, intercept: torch.Tensor | None) -> torch.Tensor:
    """θ = [b; β] from β (p, k) and b (k,), or θ = β without an intercept."""
    if intercept is None:
        return coef
    return torch.cat([intercept.reshape(1, -1).to(coef), coef])


def split_theta(
    theta: torch.Tensor, fit_intercept: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(β (p, k), b (k,) or None) from θ (p', k): the inverse of :func:`stack_theta`.

    Leading dimensions are kept: a stack of θ (…, p', k) gives β (…, p, k), b (…, k)."""
    if not fit_intercept:
        return theta, None
    return theta[..., 1:, :], theta[..., 0, :]
