"""The exact projection onto the fixed effects, from sums over the rows.

Absorbing factors f = 1..m from the columns Z (n × c) with weights w means replacing Z
by its residual from the weighted least-squares fit Z ≈ Σ_f D_f A_f (D_f the n × L_f
indicator matrix of factor f, A_f its L_f × c effects). The normal equations involve
only sums over the rows: per factor the level weights W_f = D_fᵀw and sums D_fᵀWZ, and
per pair of factors the weighted cross-tabulation D_fᵀWD_g. One pass over the data
gathers them (:class:`FactorSums`, mergeable chunk by chunk); a second pass subtracts
the effects (:func:`subtract_effects`).

Solving: let b be the factor with most levels (firms) and r the others (years,
industries; K levels together). Eliminating b's effects, A_b = W_b⁻¹(S_b − C A_r) with C
= D_bᵀWD_r (L_b × K), leaves the K × K system (G − Cᵀ W_b⁻¹ C) A_r = S_r − Cᵀ W_b⁻¹ S_b,
G = D_rᵀWD_r. It is singular (a constant can move between factors: one redundant level
per further factor in a connected panel, more where the panel splits into parts), and
any solution gives the same projection; it is solved by a symmetric eigendecomposition
of the Jacobi-scaled matrix, the minimum-norm solution on the eigenvalues above the
rounding level. Its rank deficiency is the exact number of redundant levels.

This is exact (no iteration) when K is small, as it is for a firm × year panel. Where
it is not (two factors of 100,000 levels each), :mod:`.alternating` iterates instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

# Largest cross-tabulation kept dense (cells), and largest K solved directly.
MAX_CELLS = 1 << 24
MAX_REST_LEVELS = 4096


def _grow(t: torch.Tensor, rows: int, cols: int | None = None) -> torch.Tensor:
    """``t`` padded with zeros to ``rows`` (and ``cols``)."""
    shape = (rows,) + tuple(t.shape[1:]) if cols is None else (rows, cols)
    if tuple(t.shape) == shape:
        return t
    out = t.new_zeros(shape)
    out[tuple(slice(0, s) for s in t.shape)] = t
    return out


@dataclass
class FactorSums:
    """Level weights, level sums and pairwise cross-tabulations of the factors, over
    the rows added so far (levels may grow chunk by chunk). ``tables`` is None once a
    cross-tabulation would exceed :data:`MAX_CELLS`: the direct solve is then out of
    reach and the caller iterates."""

    n_columns: int
    n_factors: int
    weights: list[torch.Tensor] = field(default_factory=list)
    sums: list[torch.Tensor] = field(default_factory=list)
    tables: dict[tuple[int, int], torch.Tensor] | None = field(default_factory=dict)

    def __post_init__(self) -> None:
        f64 = torch.float64
        self.weights = [torch.zeros(0, dtype=f64) for _ in range(self.n_factors)]
        self.sums = [torch.zeros(0, self.n_columns, dtype=f64) for _ in range(self.n_factors)]

    def add(
        self,
        Z: torch.Tensor,
        w: torch.Tensor | None,
        codes: list[torch.Tensor],
        n_levels: list[int],
    ) -> None:
        """Fold rows in: Z (n × c, float64), weights (n,) or None, one code vector per
        factor, and each factor's number of levels so far."""
        wz = Z if w is None else Z * w.unsqueeze(1)
        ones = torch.ones(Z.shape[0], dtype=torch.float64) if w is None else w
        for f, (c, L) in enumerate(zip(codes, n_levels, strict=True)):
            self.weights[f] = _grow(self.weights[f], L).index_add_(0, c, ones)
            self.sums[f] = _grow(self.sums[f], L).index_add_(0, c, wz)
        if self.tables is None:
            return
        for f in range(self.n_factors):
            for g in range(f + 1, self.n_factors):
                if n_levels[f] * n_levels[g] > MAX_CELLS:
                    self.tables = None  # too large to solve directly: iterate
                    return
                old = self.tables.get((f, g), torch.zeros(0, 0, dtype=torch.float64))
                table = _grow(old, n_levels[f], n_levels[g])
                flat = table.view(-1)
                flat.index_add_(0, codes[f] * n_levels[g] + codes[g], ones)
                self.tables[(f, g)] = table

    def table(self, f: int, g: int) -> torch.Tensor:
        """D_fᵀ W D_g (L_f × L_g)."""
        assert self.tables is not None
        if f < g:
            return self.tables[(f, g)]
        return self.tables[(g, f)].T


@dataclass(frozen=True)
class Effects:
    """The fitted effects of each factor (L_f × c), and the number of redundant levels
    (the rank deficiency of the indicator columns of all the factors together)."""

    tables: list[torch.Tensor]
    redundant: int


def solvable(sums: FactorSums) -> bool:
    """Whether the direct solve applies (the cross-tabulations fit, K is small)."""
    if sums.tables is None:
        return False
    levels = [len(w) for w in sums.weights]
    return sum(levels) - max(levels) <= MAX_REST_LEVELS


def _inverse(w: torch.Tensor) -> torch.Tensor:
    # A level with no weight (only zero-weight rows) has no effect to estimate.
    return torch.where(w > 0, 1 / torch.where(w > 0, w, 1), 0)


def solve_effects(sums: FactorSums) -> Effects:
    """The effects from the sums (see the module docstring)."""
    levels = [len(w) for w in sums.weights]
    b = max(range(len(levels)), key=lambda f: levels[f])
    inv_b = _inverse(sums.weights[b])
    rest = [f for f in range(len(levels)) if f != b]
    if not rest:
        return Effects([sums.sums[b] * inv_b.unsqueeze(1)], 0)
    C = torch.cat([sums.table(b, g) for g in rest], dim=1)  # L_b × K
    G = torch.block_diag(*[torch.diag(sums.weights[g]) for g in rest])
    offsets = [0]
    for g in rest:
        offsets.append(offsets[-1] + levels[g])
    for i, f in enumerate(rest):
        for j, g in enumerate(rest[i + 1 :], start=i + 1):
            block = sums.table(f, g)
            G[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]] = block
            G[offsets[j] : offsets[j + 1], offsets[i] : offsets[i + 1]] = block.T
    Cs = C * inv_b.sqrt().unsqueeze(1)
    A = G - Cs.T @ Cs
    rhs = torch.cat([sums.sums[g] for g in rest]) - C.T @ (sums.sums[b] * inv_b.unsqueeze(1))
    gamma, rank = _min_norm_solve(A, rhs)
    alpha_b = (sums.sums[b] - C @ gamma) * inv_b.unsqueeze(1)
    tables: list[torch.Tensor] = [torch.empty(0)] * len(levels)
    tables[b] = alpha_b
    for i, g in enumerate(rest):
        tables[g] = gamma[offsets[i] : offsets[i + 1]]
    return Effects(tables, A.shape[0] - rank)


def _min_norm_solve(A: torch.Tensor, rhs: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The minimum-norm solution (in Jacobi-scaled coordinates) of the symmetric
    positive semidefinite A x = rhs, and A's numerical rank: eigenvalues of the scaled
    matrix (unit diagonal, so the largest is ≥ 1) below K·ε·λ_max·64 are rounding."""
    d = torch.diagonal(A).clamp_min(0).sqrt()
    d = torch.where(d > 0, d, 1)
    As = A / d.unsqueeze(0) / d.unsqueeze(1)
    values, vectors = torch.linalg.eigh(As)
    cut = values.max().clamp_min(0) * A.shape[0] * torch.finfo(A.dtype).eps * 64
    keep = values > cut
    V = vectors[:, keep]
    x = V @ ((V.T @ (rhs / d.unsqueeze(1))) / values[keep].unsqueeze(1))
    return x / d.unsqueeze(1), int(keep.sum())


def subtract_effects(Z: torch.Tensor, codes: list[torch.Tensor], effects: Effects) -> torch.Tensor:
    """Z − Σ_f A_f[codes_f]: the rows with the fixed effects taken out (a new tensor)."""
    out = Z.clone()
    for c, table in zip(codes, effects.tables, strict=True):
        out -= table[c]
    return out
