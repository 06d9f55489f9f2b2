"""Absorbing several large factors by alternating projections (in memory).

Where the direct solve of :mod:`.projection` is out of reach (two factors of many levels
each: workers and firms), the projection onto the span of all the factors' indicators
is the limit of projecting onto one factor after another (von Neumann's alternating
projections; a Gauss–Seidel sweep over the factors of the normal equations): each step
subtracts the weighted group means of the current residuals by one factor. A sweep
visits every factor once.

Stopping rule: a sweep stops the iteration when no group mean it subtracted exceeds
``tol`` times the largest absolute value of that column at the start (per column). The
remaining error of the residuals is then of the order of ``tol`` times that scale
(times a factor that grows as the panel is less connected; the sweeps converge
linearly at a rate set by the angle between the factors' spans).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DEFAULT_TOL = 1e-10
DEFAULT_MAX_ITER = 10_000


@dataclass(frozen=True)
class Sweeps:
    """The residuals, the sweeps made and whether the stopping rule was met."""

    residuals: torch.Tensor
    iterations: int
    converged: bool


def alternating_projections(
    Z: torch.Tensor,
    w: torch.Tensor | None,
    codes: list[torch.Tensor],
    n_levels: list[int],
    *,
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
) -> Sweeps:
    """Z (n × c) with the factors' effects taken out, to ``tol`` (module docstring)."""
    R = Z.clone()
    ones = torch.ones(Z.shape[0], dtype=Z.dtype) if w is None else w
    inverse = []
    for c, L in zip(codes, n_levels, strict=True):
        level_w = torch.zeros(L, dtype=Z.dtype).index_add_(0, c, ones)
        inverse.append(torch.where(level_w > 0, 1 / level_w.clamp_min(1e-300), 0))
    scale = Z.abs().amax(0).clamp_min(torch.finfo(Z.dtype).tiny)
    wcol = None if w is None else w.unsqueeze(1)
    for sweep in range(1, max_iter + 1):
        step = torch.zeros_like(scale)
        for c, inv, L in zip(codes, inverse, n_levels, strict=True):
            weighted = R if wcol is None else R * wcol
            means = torch.zeros(L, Z.shape[1], dtype=Z.dtype).index_add_(0, c, weighted)
            means *= inv.unsqueeze(1)
            R -= means[c]
            step = torch.maximum(step, means.abs().amax(0))
        if bool((step <= tol * scale).all()) or len(codes) == 1:
            return Sweeps(R, sweep, True)
    return Sweeps(R, max_iter, False)
