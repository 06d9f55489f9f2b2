"""Minimum-norm least squares in the data's own units, for rank-deficient designs.

The rank is judged on the column-scaled block S = Rc·D (D exact powers of two), where
rounding is ~ε relative to every column; the norm to minimise is that of the slopes β
in the data's units. With Rc = S·D⁻¹, the least-squares solutions are β* + D·null(S),
and the minimum-norm one is the solution in the row space of Rc, D⁻¹·range(Sᵀ): with
an orthonormal basis Q of that space, β = Q·u where u solves the full-rank problem
(Rc·Q)·u ≈ R_cy. Solving for u directly never subtracts a large null-space component
from a large particular solution, which would cancel digits whenever D spans a wide
range.

Rounding makes the computed null space of S lean, by ~ε, into every column, and D
multiplies that leaning by its whole dynamic range. So the null space is split into
its independent groups of columns first: features i, j belong together when the
null-space projector couples them above rounding (|P_ij| > τ), and each group's
null space is taken from its own columns only. A column outside every dependency
then has exactly zero null component, as in exact arithmetic, and exact duplicates at
any scales are solved to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .scaling import column_scale


@dataclass
class NullStructure:
    """How the scaled block S splits: ``groups`` are lists of feature indices; for each,
    ``row_bases`` holds an orthonormal basis (|group| × rank of the group) of the row
    space of S restricted to its columns; ``dependent`` lists the features with a
    component in the null space (constant columns included)."""

    groups: list[list[int]]
    row_bases: list[torch.Tensor]
    dependent: list[int]


def _components(coupled: torch.Tensor) -> list[list[int]]:
    """Connected components of a symmetric boolean adjacency matrix: each feature takes
    the smallest label among its neighbours until nothing changes."""
    p = coupled.shape[0]
    labels = torch.arange(p, device=coupled.device)
    none = torch.full_like(coupled, p, dtype=labels.dtype)
    while True:
        new = torch.where(coupled, labels.unsqueeze(0), none).amin(dim=1)
        new = torch.minimum(new, labels)
        if bool((new == labels).all()):
            break
        labels = new
    groups: dict[int, list[int]] = {}
    for j, label in enumerate(labels.tolist()):
        groups.setdefault(label, []).append(j)
    return list(groups.values())


def _row_basis(S: torch.Tensor, tol: float) -> torch.Tensor:
    """Orthonormal basis of the row space of S (columns × rank), rank by ``tol``."""
    _, s, Vh = torch.linalg.svd(S, full_matrices=False)
    return Vh[: int((s > tol).sum())].T


def null_structure(
    S: torch.Tensor, Vh: torch.Tensor, s: torch.Tensor, rank: int, tol: float
) -> NullStructure:
    """Split S (p × p, scaled) of numerical ``rank`` (its SVD ``s``, ``Vh`` given) into
    independent groups of columns. Falls back to one group of every feature when the
    groups' ranks do not add up to ``rank`` (no clean split above rounding)."""
    p = S.shape[1]
    V_null = Vh[rank:].T
    P = V_null @ V_null.T  # the projector onto null(S): basis-independent
    # Rounding perturbs null(S) by about tol/σ_rank (the gap to the kept singular values).
    tau = tol / float(s[rank - 1]) if rank else 0.0
    groups = _components(P.abs() > tau)
    kept = (torch.linalg.vector_norm(S, dim=0) > tol).tolist()  # columns alone: rank 0 or 1
    bases = [
        _row_basis(S[:, group], tol)
        if len(group) > 1
        else torch.ones(1, int(kept[group[0]]), dtype=S.dtype, device=S.device)
        for group in groups
    ]
    if sum(b.shape[1] for b in bases) != rank:
        groups, bases = [list(range(p))], [Vh[:rank].T]
    dependent = (torch.diagonal(P) > tau).nonzero().flatten().tolist()
    return NullStructure(groups, bases, dependent)


def _orthonormal(W: torch.Tensor) -> torch.Tensor:
    """Q of W's QR with the rows sorted by decreasing size first: Householder QR is
    accurate row by row on graded matrices only in that order (Powell and Reid)."""
    order = torch.argsort(W.abs().amax(dim=1), descending=True)
    Q = torch.empty_like(W)
    Q[order] = torch.linalg.qr(W[order]).Q
    return Q


def min_norm_solve(
    Rc: torch.Tensor, Rcy: torch.Tensor, D: torch.Tensor, structure: NullStructure
) -> torch.Tensor:
    """β = argmin ‖β‖ over the least-squares solutions of Rc·β ≈ R_cy (p × k)."""
    p = Rc.shape[1]
    pairs = list(zip(structure.groups, structure.row_bases, strict=True))
    # A column outside every dependency spans its own unit vector, in any units.
    alone = [g[0] for g, b in pairs if len(g) == 1 and b.shape[1] == 1]
    r = len(alone) + sum(b.shape[1] for g, b in pairs if len(g) > 1)
    Q = torch.zeros(p, r, dtype=Rc.dtype, device=Rc.device)
    Q[alone, range(len(alone))] = 1.0
    col = len(alone)
    for group, basis in pairs:
        if len(group) > 1 and basis.shape[1]:
            # The row space of Rc in the data's units: D⁻¹ times that of S.
            block = _orthonormal(basis / D[group].unsqueeze(1))
            Q[group, col : col + basis.shape[1]] = block
            col += basis.shape[1]
    M = Rc @ Q  # full column rank r: the dependent directions are gone
    scale = column_scale(M)
    q, R = torch.linalg.qr(M * scale)
    u = scale.unsqueeze(1) * torch.linalg.solve_triangular(R, q.T @ Rcy, upper=True)
    return Q @ u
