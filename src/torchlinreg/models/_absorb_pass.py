"""The first pass of a streamed absorption (:mod:`._absorb_stream`): what the effects
are solved from, gathered chunk by chunk in memory bounded by the factors' levels.

Per factor the level weights and the level sums of [X, y] (:class:`FactorSums`), per
pair of factors the weighted cross-tabulation kept sparse (:class:`CrossTabs`: one
entry per pair of levels seen together), each column's weighted sum of squares (to
tell an absorbed regressor), and with cluster labels the smallest and largest cluster
of each level (a factor is nested in the clusters when they agree for every level).
Labels are coded by one :class:`LevelIndex` per factor, growing as new levels appear
(a level may first appear in any chunk); later passes code them with the same index,
frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import InputError

if TYPE_CHECKING:
    from ..data.chunks import Chunk
    from ..solvers.absorb.projection import Effects, FactorSums
    from ..solvers.absorb.sparse import CrossTabs

_INT64_MAX = torch.iinfo(torch.int64).max


@dataclass(frozen=True)
class AbsorbRows:
    """Rows of a stream with what absorbing needs besides the numbers: each factor's
    labels, the cluster labels (or None) and the first row's number in the stream."""

    chunk: Chunk
    labels: list[np.ndarray]
    groups: np.ndarray | None
    start: int


def z_of(chunk: Chunk) -> tuple[torch.Tensor, torch.Tensor | None]:
    """[X, Y] as float64 on the CPU (where the demeaning runs) and the weights."""
    Z = torch.cat([chunk.X.to(torch.float64).cpu(), chunk.Y.to(torch.float64).cpu()], dim=1)
    w = None if chunk.sample_weight is None else chunk.sample_weight.to(torch.float64).cpu()
    return Z, w


def squares(Z: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """Σ w z² of each column."""
    return (Z * Z if w is None else Z * Z * w.unsqueeze(1)).sum(0)


class FirstPass:
    """The sums of the first pass (module docstring); :meth:`add` each chunk's rows."""

    def __init__(self, names: list[str], clustered: bool) -> None:
        from ..solvers.absorb.factors import LevelIndex
        from ..solvers.absorb.sparse import CrossTabs

        self.names = names
        self.index = [LevelIndex(name) for name in names]
        self.clusters = LevelIndex("groups") if clustered else None
        self.tabs: CrossTabs | None = CrossTabs(len(names)) if len(names) > 1 else None
        self.sums: FactorSums | None = None
        self.squares = torch.zeros(0, dtype=torch.float64)
        self.spans = [(torch.zeros(0, dtype=torch.int64),) * 2 for _ in names]
        self.rows = 0
        self.n_features = self.n_targets = 0
        self.target_1d = True

    def add(self, rows: AbsorbRows) -> None:
        from ..solvers.absorb.projection import FactorSums

        chunk = rows.chunk
        p, k = chunk.X.shape[1], chunk.Y.shape[1]
        if self.sums is None:
            self.n_features, self.n_targets, self.target_1d = p, k, chunk.target_1d
            self.sums = FactorSums(p + k, len(self.names))
            self.sums.tables = None  # the cross-tabulations are kept sparse (self.tabs)
            self.squares = torch.zeros(p + k, dtype=torch.float64)
        elif (p, k) != (self.n_features, self.n_targets):
            raise InputError(
                f"the chunk at row {rows.start} has {p} feature(s) and {k} target(s), the "
                f"first had {self.n_features} and {self.n_targets}"
            )
        codes = self.codes(rows)
        Z, w = z_of(chunk)
        self.sums.add(Z, w, codes, [index.n_levels for index in self.index])
        if self.tabs is not None:
            self.tabs.add(w, codes)
        self.squares += squares(Z, w)
        if self.clusters is not None:
            assert rows.groups is not None
            self._spans(codes, self.clusters.encode(rows.groups, rows.start))
        self.rows += chunk.X.shape[0]

    def codes(self, rows: AbsorbRows) -> list[torch.Tensor]:
        """The rows' level codes, one vector per factor."""
        return [
            index.encode(labels, rows.start)
            for index, labels in zip(self.index, rows.labels, strict=True)
        ]

    def _spans(self, codes: list[torch.Tensor], cluster: torch.Tensor) -> None:
        for f, c in enumerate(codes):
            low, high = self.spans[f]
            grow = self.index[f].n_levels - len(low)
            if grow:
                low = torch.cat([low, torch.full((grow,), _INT64_MAX, dtype=torch.int64)])
                high = torch.cat([high, torch.full((grow,), -1, dtype=torch.int64)])
            low.scatter_reduce_(0, c, cluster, "amin")
            high.scatter_reduce_(0, c, cluster, "amax")
            self.spans[f] = (low, high)

    def nested(self) -> tuple[bool, ...]:
        """Whether each factor is nested in the clusters (every level in one)."""
        if self.clusters is None:
            return (False,) * len(self.names)
        return tuple(bool(torch.equal(low, high)) for low, high in self.spans)

    def freeze(self) -> None:
        """Later passes must find no new level (the data would have changed)."""
        for index in self.index:
            index.frozen = True

    def positive_levels(self) -> tuple[int, ...]:
        """Each factor's levels with positive weight."""
        assert self.sums is not None
        return tuple(int((w > 0).sum()) for w in self.sums.weights)

    def y_mean(self) -> torch.Tensor:
        """The weighted mean of each target."""
        assert self.sums is not None
        total = self.sums.weights[0].sum()
        if not total > 0:
            raise InputError(
                "sample_weight is zero for every row seen; give at least one positive weight"
            )
        return self.sums.sums[0][:, self.n_features :].sum(0) / total

    def effects(self, max_iter: int) -> tuple[Effects, str, int, int | None]:
        """The fitted effects and how: (effects, method, iterations, redundant levels)."""
        from ..solvers.absorb.projection import MAX_CELLS, solvable, solve_effects
        from ..solvers.absorb.sparse import solve_by_cg

        sums = self.sums
        assert sums is not None
        levels = [len(w) for w in sums.weights]
        pairs = [(f, g) for f in range(len(levels)) for g in range(f + 1, len(levels))]
        if self.tabs is not None and all(levels[f] * levels[g] <= MAX_CELLS for f, g in pairs):
            sums.tables = {(f, g): self.tabs.dense(f, g, levels[f], levels[g]) for f, g in pairs}
        if len(levels) == 1 or solvable(sums):
            effects = solve_effects(sums)
            return effects, "direct", 1, effects.redundant
        sums.tables = None
        assert self.tabs is not None
        solved = solve_by_cg(sums.weights, sums.sums, self.tabs, max_iter=max_iter)
        if not solved.converged:
            _warn_unconverged(self.names, solved.iterations)
        return solved.effects, "cg", solved.iterations, None


def _warn_unconverged(names: list[str], iterations: int) -> None:
    import warnings

    from ..errors import ConvergenceWarning

    warnings.warn(
        f"the fixed effects {', '.join(names)} were solved by conjugate gradients, which "
        f"stopped after {iterations} iterations short of their tolerance: the demeaning "
        "may keep a little of the effects (the panel may be poorly connected)",
        ConvergenceWarning,
        stacklevel=5,
    )


def check_names(names: Any) -> list[str]:
    """``absorb=`` of a stream: the factors' names, each once."""
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not names:
        raise InputError(
            "fit_chunks(absorb=...) takes the factors' names, e.g. absorb=['firm', 'year'] "
            f"(each chunk then carries their labels); got {names!r}"
        )
    out = [str(n) for n in names]
    if len(set(out)) != len(out):
        raise InputError(f"absorb names a factor twice: {out}; name each factor once")
    return out
