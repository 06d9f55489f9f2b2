"""Demeaning by the fixed effects, in memory: the direct solve where it applies (one
factor, or one large factor and small others), alternating projections otherwise."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .alternating import DEFAULT_MAX_ITER, DEFAULT_TOL, alternating_projections
from .projection import FactorSums, solvable, solve_effects, subtract_effects


@dataclass(frozen=True)
class Demeaned:
    """The columns with the effects taken out and how: ``method`` is ``"direct"`` (exact,
    :mod:`.projection`) or ``"alternating"`` (:mod:`.alternating`, ``iterations``
    sweeps, ``converged`` whether its stopping rule was met); ``redundant`` the exact
    number of redundant levels where the direct solve ran (None otherwise)."""

    residuals: torch.Tensor
    method: str
    iterations: int
    converged: bool
    redundant: int | None


def demean(
    Z: torch.Tensor,
    w: torch.Tensor | None,
    codes: list[torch.Tensor],
    n_levels: list[int],
    *,
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
) -> Demeaned:
    """Z (n × c, float64) less its weighted projection on the factors' indicators."""
    sums = FactorSums(Z.shape[1], len(codes))
    if len(codes) > 1:  # one factor: the level sums alone, no cross-tabulation
        sums.add(Z, w, codes, n_levels)
    else:
        sums.tables = None
        sums.add(Z, w, codes, n_levels)
    if len(codes) == 1 or solvable(sums):
        effects = solve_effects(sums)
        return Demeaned(subtract_effects(Z, codes, effects), "direct", 1, True, effects.redundant)
    sweeps = alternating_projections(Z, w, codes, n_levels, tol=tol, max_iter=max_iter)
    return Demeaned(sweeps.residuals, "alternating", sweeps.iterations, sweeps.converged, None)


def absorbed_columns(
    original: torch.Tensor, demeaned: torch.Tensor, w: torch.Tensor | None, rtol: float
) -> list[int]:
    """Columns the factors absorb entirely: weighted norm after demeaning at most
    ``rtol`` times before (a firm-level variable with firm effects). A column that is
    zero to begin with is left to the rank check of the solve."""
    weights = None if w is None else w.sqrt().unsqueeze(1)
    before = torch.linalg.vector_norm(original if weights is None else original * weights, dim=0)
    after = torch.linalg.vector_norm(demeaned if weights is None else demeaned * weights, dim=0)
    return [j for j in range(original.shape[1]) if before[j] > 0 and after[j] <= rtol * before[j]]
