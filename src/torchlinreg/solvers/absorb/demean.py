"""Demeaning by the fixed effects, in memory: the direct solve where it applies (one
factor, or one large factor and small others), alternating projections otherwise.

:func:`demean_xy` takes X and Y apart and returns them apart (no copies of
concatenating them and splitting the result).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import projection
from .alternating import DEFAULT_MAX_ITER, DEFAULT_TOL, alternating_projections
from .projection import (
    Effects,
    FactorSums,
    solvable,
    solve_effects,
)


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


@dataclass(frozen=True)
class DemeanedXY:
    """X and Y with the effects taken out (each n × its columns, contiguous) and how:
    ``method`` is ``"direct"`` (exact, :mod:`.projection`) or ``"alternating"``
    (:mod:`.alternating`, ``iterations`` sweeps, ``converged`` whether its stopping rule
    was met); ``redundant`` the exact number of redundant levels where the direct solve
    ran (None otherwise); each factor's level weights (levels without weight: 0)."""

    X: torch.Tensor
    Y: torch.Tensor
    method: str
    iterations: int
    converged: bool
    redundant: int | None
    level_weights: tuple[torch.Tensor, ...]


def demean_xy(
    X: torch.Tensor,
    Y: torch.Tensor,
    w: torch.Tensor | None,
    codes: list[torch.Tensor],
    n_levels: list[int],
    *,
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
) -> DemeanedXY:
    """X (n × p) and Y (n × k), float64, less their weighted projections on the
    factors' indicators (the direct solve where it applies: one factor, or one large
    factor and small others; alternating projections otherwise)."""
    sums = level_sums(X, Y, w, codes, n_levels)
    weights = tuple(sums.weights)
    if len(codes) == 1 or solvable(sums):
        effects = solve_effects(sums)
        p = X.shape[1]
        Xd = subtract_columns(X, codes, effects, slice(0, p))
        Yd = subtract_columns(Y, codes, effects, slice(p, p + Y.shape[1]))
        return DemeanedXY(Xd, Yd, "direct", 1, True, effects.redundant, weights)
    Z = torch.cat([X, Y], dim=1)
    sweeps = alternating_projections(Z, w, codes, n_levels, tol=tol, max_iter=max_iter)
    R = sweeps.residuals
    Xd, Yd = R[:, : X.shape[1]].contiguous(), R[:, X.shape[1] :].contiguous()
    return DemeanedXY(Xd, Yd, "alternating", sweeps.iterations, sweeps.converged, None, weights)


def level_sums(
    X: torch.Tensor,
    Y: torch.Tensor,
    w: torch.Tensor | None,
    codes: list[torch.Tensor],
    n_levels: list[int],
) -> FactorSums:
    """:class:`FactorSums` of the columns [X, Y] over all the rows at once: the level
    sums one scatter of X and one of Y per factor; unweighted, the cross-tabulations
    and level weights are counts (an integer bincount, exact as the float sums of ones
    are; a factor's counts are then its table's margins, no further pass). The
    cross-tabulations are left out (``tables`` None) where the direct solve is out of
    reach, as :meth:`FactorSums.add` does."""
    f64 = torch.float64
    sums = FactorSums(X.shape[1] + Y.shape[1], len(codes))
    sums.tables = _cross_tables(w, codes, n_levels)
    Xw = X if w is None else X * w.unsqueeze(1)
    Yw = Y if w is None else Y * w.unsqueeze(1)
    for f, (c, L) in enumerate(zip(codes, n_levels, strict=True)):
        if w is None and sums.tables is not None:
            g = 1 if f == 0 else 0
            sums.weights[f] = sums.table(f, g).sum(1)  # integers: exact in any order
        else:
            sums.weights[f] = _counts(c, L, w)
        level_x = torch.zeros(L, X.shape[1], dtype=f64).index_add_(0, c, Xw)
        level_y = torch.zeros(L, Y.shape[1], dtype=f64).index_add_(0, c, Yw)
        sums.sums[f] = torch.cat([level_x, level_y], dim=1)
    return sums


def _cross_tables(
    w: torch.Tensor | None, codes: list[torch.Tensor], n_levels: list[int]
) -> dict[tuple[int, int], torch.Tensor] | None:
    """D_fᵀWD_g for each pair f < g, or None (one factor, or the direct solve out of
    reach)."""
    rest = sum(n_levels) - max(n_levels)
    if len(codes) == 1 or not _direct_in_reach(n_levels, rest):
        return None
    tables = {}
    for f in range(len(codes)):
        for g in range(f + 1, len(codes)):
            cells = codes[f] * n_levels[g]
            cells += codes[g]
            flat = _counts(cells, n_levels[f] * n_levels[g], w)
            tables[(f, g)] = flat.view(n_levels[f], n_levels[g])
    return tables


def _direct_in_reach(n_levels: list[int], rest: int) -> bool:
    """Whether every cross-tabulation fits (:data:`~.projection.MAX_CELLS`) and the
    others' levels are few enough to solve for directly (:func:`solvable`'s rule,
    before the tables are formed: they would not be used otherwise)."""
    pairs = [
        n_levels[f] * n_levels[g] for f in range(len(n_levels)) for g in range(f + 1, len(n_levels))
    ]
    return rest <= projection.MAX_REST_LEVELS and all(c <= projection.MAX_CELLS for c in pairs)


def _counts(c: torch.Tensor, L: int, w: torch.Tensor | None) -> torch.Tensor:
    """Σ w per level (float64); unweighted, the counts."""
    if w is None:
        return torch.bincount(c, minlength=L).to(torch.float64)
    return torch.zeros(L, dtype=torch.float64).index_add_(0, c, w)


def subtract_columns(
    M: torch.Tensor, codes: list[torch.Tensor], effects: Effects, columns: slice
) -> torch.Tensor:
    """M − Σ_f A_f[codes_f] for the effects' ``columns`` (M's columns), a new
    contiguous tensor: the gathers written into reused buffers, subtracted in the
    factors' order (as :func:`subtract_effects` does, so the same numbers)."""
    out: torch.Tensor | None = None
    gathered = None
    for c, table in zip(codes, effects.tables, strict=True):
        part = table[:, columns].contiguous()
        if out is None:
            out = torch.index_select(part, 0, c)
            torch.sub(M, out, out=out)
            continue
        gathered = torch.index_select(part, 0, c, out=gathered)
        out -= gathered
    assert out is not None
    return out
