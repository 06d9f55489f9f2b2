"""Cross-tabulations kept sparse, and the effects solved from them by conjugate
gradients: the streamed absorption's route where the dense tables of
:mod:`.projection` are out of reach (two factors of many levels each).

A cross-tabulation D_fᵀWD_g has one entry per pair of levels seen together, so kept as
coordinates it holds at most as many numbers as there are distinct pairs (never more
than the rows, and no more than L_f·L_g). :class:`CrossTabs` gathers them chunk by
chunk: each chunk's pairs are coalesced, and the partial tables are merged whenever
they outgrow the merged one (so each entry is merged O(log) times).

The system is that of :mod:`.projection`: with b the factor of most levels and r the
others, (G − Cᵀ W_b⁻¹ C) A_r = S_r − Cᵀ W_b⁻¹ S_b, then A_b = W_b⁻¹ (S_b − C A_r).
Conjugate gradients solve it (Jacobi-preconditioned, each column of Z on its own),
with products by the sparse tables only: no pass over the rows. The matrix is
positive semidefinite and singular (redundant levels); the right-hand side lies in
its range, so the iterates converge to a solution and any solution gives the same
projection. CG minimises the error in the matrix's energy norm, which is exactly the
extra sum of squares the demeaned columns keep: the stopping rule (the residual of
each column at most :data:`CG_TOL` times its right-hand side) bounds what is left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .projection import Effects

# Relative residual at which CG stops: near the rounding level of the right-hand
# side, as the direct solve is (its iterations cost no pass over the data).
CG_TOL = 1e-13
# Partial tables are merged once they hold this many entries beyond the merged ones.
MERGE_ENTRIES = 1 << 20
_SHIFT = 32  # a pair of codes (each < 2³¹) packed in one int64 key


@dataclass
class CrossTabs:
    """The weighted cross-tabulations D_fᵀWD_g (f < g) of the rows added so far, as
    coalesced coordinates (keys code_f·2³² + code_g and weights)."""

    n_factors: int
    merged: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    pending: dict[tuple[int, int], list[tuple[torch.Tensor, torch.Tensor]]] = field(
        default_factory=dict
    )

    def add(self, w: torch.Tensor | None, codes: list[torch.Tensor]) -> None:
        """Fold in rows: their weights (None: ones) and one code vector per factor."""
        for f in range(self.n_factors):
            for g in range(f + 1, self.n_factors):
                keys = (codes[f] << _SHIFT) | codes[g]
                ones = torch.ones(len(keys), dtype=torch.float64) if w is None else w
                self._push((f, g), *_coalesce(keys, ones))

    def _push(self, pair: tuple[int, int], keys: torch.Tensor, values: torch.Tensor) -> None:
        parts = self.pending.setdefault(pair, [])
        parts.append((keys, values))
        merged = self.merged.get(pair)
        size = 0 if merged is None else len(merged[0])
        if sum(len(k) for k, _ in parts) > max(size, MERGE_ENTRIES):
            self._merge(pair)

    def _merge(self, pair: tuple[int, int]) -> None:
        parts = self.pending.pop(pair, [])
        if pair in self.merged:
            parts.append(self.merged[pair])
        if parts:
            keys = torch.cat([k for k, _ in parts])
            values = torch.cat([v for _, v in parts])
            self.merged[pair] = _coalesce(keys, values)

    def coordinates(self, f: int, g: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """D_fᵀWD_g (f < g) as (row codes, column codes, weights)."""
        self._merge((f, g))
        keys, values = self.merged.get((f, g), (torch.zeros(0, dtype=torch.int64),) * 2)
        return keys >> _SHIFT, keys & ((1 << _SHIFT) - 1), values.to(torch.float64)

    def dense(self, f: int, g: int, rows: int, cols: int) -> torch.Tensor:
        """D_fᵀWD_g (f < g) as a dense rows × cols table."""
        i, j, values = self.coordinates(f, g)
        table = torch.zeros(rows * cols, dtype=torch.float64)
        table.index_add_(0, i * cols + j, values)
        return table.view(rows, cols)


def _coalesce(keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    unique, inverse = torch.unique(keys, return_inverse=True)
    summed = torch.zeros(len(unique), dtype=torch.float64).index_add_(0, inverse, values)
    return unique, summed


@dataclass(frozen=True)
class Solved:
    """The effects (``redundant`` is not known: reported as None), the CG iterations
    and whether the stopping rule was met in every column."""

    effects: Effects
    iterations: int
    converged: bool


class _Tables:
    """Products by the cross-tabulations, in either orientation."""

    def __init__(self, tabs: CrossTabs, levels: list[int]) -> None:
        self.levels = levels
        self.coo = {
            (f, g): tabs.coordinates(f, g)
            for f in range(len(levels))
            for g in range(f + 1, len(levels))
        }

    def times(self, f: int, g: int, v: torch.Tensor) -> torch.Tensor:
        """(D_fᵀWD_g) v, v of L_g rows."""
        if f < g:
            i, j, values = self.coo[(f, g)]
        else:
            j, i, values = self.coo[(g, f)]
        out = torch.zeros(self.levels[f], v.shape[1], dtype=v.dtype)
        return out.index_add_(0, i, values.unsqueeze(1) * v[j])


def _inverse(w: torch.Tensor) -> torch.Tensor:
    # A level with no weight has no effect to estimate.
    return torch.where(w > 0, 1 / torch.where(w > 0, w, 1), 0)


def solve_by_cg(
    weights: list[torch.Tensor],
    sums: list[torch.Tensor],
    tabs: CrossTabs,
    *,
    tol: float = CG_TOL,
    max_iter: int = 10_000,
) -> Solved:
    """The effects from the level weights W_f, level sums S_f (L_f × c) and the sparse
    cross-tabulations (module docstring)."""
    levels = [len(w) for w in weights]
    b = max(range(len(levels)), key=lambda f: levels[f])
    rest = [f for f in range(len(levels)) if f != b]
    tables = _Tables(tabs, levels)
    inv_b = _inverse(weights[b]).unsqueeze(1)
    offsets = [0]
    for g in rest:
        offsets.append(offsets[-1] + levels[g])
    blocks = [slice(offsets[i], offsets[i + 1]) for i in range(len(rest))]

    def C(v: torch.Tensor) -> torch.Tensor:  # L_b × c from K × c
        return sum((tables.times(b, g, v[s]) for g, s in zip(rest, blocks, strict=True)),
                   torch.zeros(levels[b], v.shape[1], dtype=v.dtype))  # fmt: skip

    def Ct(u: torch.Tensor) -> torch.Tensor:  # K × c from L_b × c
        return torch.cat([tables.times(g, b, u) for g in rest])

    diag_r = torch.cat([weights[g] for g in rest]).unsqueeze(1)

    def M(v: torch.Tensor) -> torch.Tensor:
        out = diag_r * v - Ct(inv_b * C(v))
        for i, f in enumerate(rest):
            for j, g in enumerate(rest):
                if i != j:
                    out[blocks[i]] += tables.times(f, g, v[blocks[j]])
        return out

    rhs = torch.cat([sums[g] for g in rest]) - Ct(inv_b * sums[b])
    # The rounding of rhs (it may cancel: a column's mean is absorbed by every factor)
    # lies partly in the matrix's null space, where CG cannot reduce it: a floor.
    magnitude = torch.cat([sums[g].abs() for g in rest]) + Ct(inv_b * sums[b].abs())
    floor = 64 * torch.finfo(torch.float64).eps * torch.linalg.vector_norm(magnitude, dim=0)
    precond = _jacobi(weights, tables, b, rest, inv_b)
    gamma, iterations, converged = _pcg(M, rhs, precond, tol, floor, max_iter)
    out: list[torch.Tensor] = [torch.empty(0)] * len(levels)
    out[b] = (sums[b] - C(gamma)) * inv_b
    for g, s in zip(rest, blocks, strict=True):
        out[g] = gamma[s]
    return Solved(Effects(out, 0), iterations, converged)


def _jacobi(
    weights: list[torch.Tensor], tables: _Tables, b: int, rest: list[int], inv_b: torch.Tensor
) -> torch.Tensor:
    """The inverse diagonal of G − Cᵀ W_b⁻¹ C (0 where it vanishes: a level whose
    effect the largest factor's determines entirely)."""
    parts = []
    for g in rest:
        i, j, values = tables.coo[(min(b, g), max(b, g))]
        rows, cols = (i, j) if b < g else (j, i)  # rows: b's levels, cols: g's
        taken = torch.zeros(len(weights[g]), dtype=torch.float64)
        taken.index_add_(0, cols, values**2 * inv_b[rows, 0])
        parts.append(weights[g] - taken)
    d = torch.cat(parts)
    scale = torch.cat([weights[g] for g in rest])
    keep = d > 1e-12 * scale
    return torch.where(keep, 1 / torch.where(keep, d, 1), 0).unsqueeze(1)


def _pcg(
    M: Callable[[torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    precond: torch.Tensor,
    tol: float,
    floor: torch.Tensor,
    max_iter: int,
) -> tuple[torch.Tensor, int, bool]:
    """Preconditioned conjugate gradients on every column at once (each its own step
    lengths); a column stops once its residual is at most ``tol`` times its
    right-hand side's norm, or at most ``floor`` (its rounding level)."""
    x = torch.zeros_like(rhs)
    r = rhs.clone()
    target = torch.maximum(tol * torch.linalg.vector_norm(rhs, dim=0), floor)
    z = precond * r
    p = z.clone()
    rz = (r * z).sum(0)
    for iteration in range(1, max_iter + 1):
        active = torch.linalg.vector_norm(r, dim=0) > target
        if not bool(active.any()):
            return x, iteration - 1, True
        q = M(p)
        pq = (p * q).sum(0)
        alpha = torch.where(active & (pq > 0), rz / torch.where(pq > 0, pq, 1), 0)
        x += alpha * p
        r -= alpha * q
        z = precond * r
        rz_next = (r * z).sum(0)
        beta = torch.where(rz > 0, rz_next / torch.where(rz > 0, rz, 1), 0)
        p = z + beta * p
        rz = rz_next
    done = bool((torch.linalg.vector_norm(r, dim=0) <= target).all())
    return x, max_iter, done
