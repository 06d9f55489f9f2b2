"""Least-squares states combined across ranks: a binary tree of merges in rank order,
then the result broadcast, so every rank holds the identical state.

Each rank sends its state at most once up the tree and receives the result once: 2·m²
float64 numbers per rank (m = columns of [1, X, Y]) and O(log P) rounds of messages,
whatever the number of rows. The tree is fixed by the ranks (level ℓ: rank r with
r mod 2^(ℓ+1) = 0 merges the state of rank r + 2^ℓ after its own), so the rows are
combined in rank order and the answer does not depend on timing.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from ..solvers.state import OVERFLOW, LeastSquaresState, RowCounts
from .group import Group


def pack(state: LeastSquaresState) -> tuple[torch.Tensor, torch.Tensor]:
    """(float64 [R, x₀, y₀, Σw, Σlog w], int64 [rows, observations, weighted])."""
    c = state.counts
    numbers = torch.cat(
        [
            state.R.reshape(-1),
            state.shift_x,
            state.shift_y,
            torch.tensor([c.weight_sum, c.log_weight_sum], dtype=torch.float64).to(state.device),
        ]
    )
    counts = torch.tensor([c.n_samples, c.n_observations, int(c.weighted)], dtype=torch.int64)
    return numbers, counts


def unpack(
    numbers: torch.Tensor, counts: torch.Tensor, like: LeastSquaresState
) -> LeastSquaresState:
    """The state :func:`pack` packed, for a problem shaped as ``like``."""
    m, p, k = like.R.shape[0], like.n_features, like.n_targets
    R = numbers[: m * m].reshape(m, m).clone()
    shift_x = numbers[m * m : m * m + p].clone()
    shift_y = numbers[m * m + p : m * m + p + k].clone()
    weight_sum, log_weight_sum = (float(v) for v in numbers[m * m + p + k :])
    n, n_obs, weighted = (int(v) for v in counts)
    row_counts = RowCounts(n, n_obs, weight_sum, log_weight_sum, bool(weighted))
    return LeastSquaresState.from_parts(
        R, shift_x, shift_y, row_counts, fit_intercept=like.fit_intercept
    )


def merge_tree(states: list[LeastSquaresState]) -> LeastSquaresState:
    """The states of ranks 0, 1, … merged as :func:`merge_across` merges them, in one
    process (for tests and for simulating many ranks)."""
    level = [s.copy() for s in states]
    while len(level) > 1:
        merged = []
        for i in range(0, len(level), 2):
            if i + 1 < len(level):
                level[i].merge(level[i + 1])
            merged.append(level[i])
        level = merged
    return level[0]


def merge_across(group: Group, state: LeastSquaresState) -> LeastSquaresState:
    """Every rank's state merged, on every rank (collective: every rank calls it with a
    state of the same problem, its pending rows already folded). A merge whose sums
    overflow is found on every rank after the broadcast, not where it happened."""

    merged = group.reduce(
        state.copy(),
        merge_or_mark,
        lambda s: list(pack(s)),
        lambda parts: unpack(parts[0], parts[1], state),
    )
    if not _finite(merged):
        raise InputError(OVERFLOW)
    return merged


def merge_or_mark(mine: LeastSquaresState, theirs: LeastSquaresState) -> LeastSquaresState:
    """``mine`` merged with ``theirs``; never raises (a reduction's combine must not):
    a failed merge is marked by a non-finite R, carried to every rank and refused there."""
    if _finite(mine) and _finite(theirs):
        try:
            return mine.merge(theirs)
        except (InputError, RuntimeError):  # overflow, or LAPACK on what overflowed
            pass
    mine.R.fill_(float("inf"))
    return mine


def _finite(state: LeastSquaresState) -> bool:
    return bool(torch.isfinite(state.R).all())
