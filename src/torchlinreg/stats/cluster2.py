"""Two-way cluster-robust meat (Cameron, Gelbach and Miller 2011).

With cluster scores s_g = Σ_{i∈g} zᵢẽᵢ by the first labels (a), the second (b) and
their intersection (a × b),

    V = c_a·V_a + c_b·V_b − c_ab·V_ab,   c = G/(G − 1)·(n − 1)/(n − k)

each with its own number of clusters G, as statsmodels' ``cov_type="cluster"`` with two
group columns (and pyfixest's ``vcov={"CRV1": "a+b"}`` with ``ssc(G_df="conventional")``;
pyfixest's default uses min(G_a, G_b) in all three factors). t and F use
min(G_a, G_b) − 1 degrees of freedom. V need not be positive semi-definite: where it is
not, :func:`psd` sets its negative eigenvalues to 0 (CGM 2011, §2.3; fixest does the
same) and the summary says so; where it is, nothing is changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from .cov_types import LabelPair
from .scores import Block, LabelIds, observed


class _Scores:
    """Cluster scores (G, k, p') by label, grown as labels appear."""

    def __init__(self, k: int, p: int, **zeros: Any) -> None:
        self.ids = LabelIds()
        self.sums = torch.zeros(0, k, p, **zeros)

    def add(self, ids: np.ndarray, scores: torch.Tensor) -> None:
        if len(self.ids) > self.sums.shape[0]:
            grow = self.sums.new_zeros(len(self.ids) - self.sums.shape[0], *self.sums.shape[1:])
            self.sums = torch.cat([self.sums, grow])
        self.sums.index_add_(0, torch.as_tensor(ids, device=self.sums.device), scores)

    def meat(self) -> torch.Tensor:
        s = self.sums.transpose(0, 1)  # (k, G, p')
        return s.transpose(1, 2) @ s


def two_way_meats(
    blocks: Iterable[Block], k: int, p: int, **zeros: Any
) -> tuple[list[torch.Tensor], list[int]]:
    """The meats Σ_g s_g s_gᵀ (k, p', p') by a, b and a × b, and their cluster counts
    (clusters holding an observation: zero-weight rows are left out)."""
    parts = [_Scores(k, p, **zeros) for _ in range(3)]
    for block in blocks:
        block = observed(block)
        pair: LabelPair = block.labels
        scores = block.E.unsqueeze(2) * block.Z.unsqueeze(1)  # (b, k, p')
        ids_a = parts[0].ids.map(pair.a)
        ids_b = parts[1].ids.map(pair.b)
        parts[0].add(ids_a, scores)
        parts[1].add(ids_b, scores)
        # the intersection: a pair of ids as one integer (ids < 2³¹ in any real data)
        parts[2].add(parts[2].ids.map(ids_a * (1 << 31) + ids_b), scores)
    return [part.meat() for part in parts], [len(part.ids) for part in parts]


def combine(meats: list[torch.Tensor], counts: list[int], n: int, rank: int) -> torch.Tensor:
    """c_a·M_a + c_b·M_b − c_ab·M_ab (the small-sample factors c of the module)."""
    a, b, ab = (_factor(g, n, rank) * m for g, m in zip(counts, meats, strict=True))
    return a + b - ab


def _factor(groups: int, n: int, rank: int) -> float:
    return groups / (groups - 1) * (n - 1) / (n - rank) if groups > 1 else 1.0


def psd(cov: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``cov`` with negative eigenvalues set to 0, and whether any was (cov unchanged
    when none is)."""
    vals, vecs = torch.linalg.eigh(cov)
    if float(vals.min()) >= 0:
        return cov, False
    fixed = (vecs * vals.clamp(min=0)) @ vecs.T
    return (fixed + fixed.T) / 2, True
