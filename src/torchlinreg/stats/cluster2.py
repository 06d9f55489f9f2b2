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

# Intersections of ids i_a < G_a and i_b < G_b are looked up in a G_a × G_b table while
# it has at most this many entries (8 bytes each), else mapped by sorting.
_PAIR_TABLE = 1 << 21


class _Scores:
    """Cluster scores by label, one coordinate a row (k·p', G), grown as labels appear."""

    def __init__(self, k: int, p: int, **zeros: Any) -> None:
        self.ids = LabelIds()
        self.k, self.p = k, p
        self.sums = torch.zeros(k * p, 0, **zeros)

    def add(self, ids: np.ndarray, scores: torch.Tensor) -> None:
        """``scores`` (k·p', b): the rows' scores, one coordinate a row."""
        if len(self.ids) > self.sums.shape[1]:
            grow = self.sums.new_zeros(self.sums.shape[0], len(self.ids) - self.sums.shape[1])
            self.sums = torch.cat([self.sums, grow], dim=1)
        self.sums.index_add_(1, torch.as_tensor(ids, device=self.sums.device), scores)

    def meat(self) -> torch.Tensor:
        s = self.sums.view(self.k, self.p, -1)  # (k, p', G)
        return s @ s.transpose(1, 2)


class _PairIds(LabelIds):
    """Ids of the intersections (i_a, i_b) of two id columns, as :class:`LabelIds` of
    the key i_a·2³¹ + i_b (ids < 2³¹ in any real data), through a table by (i_a, i_b)
    while it is small."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: np.ndarray = np.full((0, 0), -1, dtype=np.int64)

    def map_pairs(self, ids_a: np.ndarray, ids_b: np.ndarray) -> np.ndarray:
        if not len(ids_a):
            return np.zeros(0, dtype=np.int64)
        shape = (int(ids_a.max()) + 1, int(ids_b.max()) + 1)
        if shape[0] * shape[1] > _PAIR_TABLE:
            return self.map(ids_a * (1 << 31) + ids_b)
        if shape[0] > self.pairs.shape[0] or shape[1] > self.pairs.shape[1]:
            rows, cols = max(shape[0], self.pairs.shape[0]), max(shape[1], self.pairs.shape[1])
            grown = np.full((rows, cols), -1, dtype=np.int64)
            grown[: self.pairs.shape[0], : self.pairs.shape[1]] = self.pairs
            self.pairs = grown
        ids = self.pairs[ids_a, ids_b]
        unseen = ids < 0
        if unseen.any():
            a, b = ids_a[unseen], ids_b[unseen]
            self.pairs[a, b] = self.map(a * (1 << 31) + b)
            ids = self.pairs[ids_a, ids_b]
        return ids


def two_way_meats(
    blocks: Iterable[Block], k: int, p: int, **zeros: Any
) -> tuple[list[torch.Tensor], list[int]]:
    """The meats Σ_g s_g s_gᵀ (k, p', p') by a, b and a × b, and their cluster counts
    (clusters holding an observation: zero-weight rows are left out)."""
    parts = [_Scores(k, p, **zeros) for _ in range(3)]
    pairs = parts[2].ids = _PairIds()
    for block in blocks:
        block = observed(block)
        pair: LabelPair = block.labels
        scores = (block.E.T.unsqueeze(1) * block.Z.T.unsqueeze(0)).reshape(k * p, -1)
        ids_a = parts[0].ids.map(pair.a)
        ids_b = parts[1].ids.map(pair.b)
        parts[0].add(ids_a, scores)
        parts[1].add(ids_b, scores)
        parts[2].add(pairs.map_pairs(ids_a, ids_b), scores)
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
