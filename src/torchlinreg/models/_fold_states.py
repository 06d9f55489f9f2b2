"""Cross-validation from per-fold least-squares states, in one pass over the rows.

Each row is folded into the state of its fold (the R factor of √w·[1, X, y] over that
fold's rows). The training state of fold k is the merge of the other folds' states, and
the weighted squared error of any coefficients on fold k is a quadratic form in fold
k's own R: with θ = (b, β) and R the factor of √w·[1, X − x₀, y − y₀],

    Σ_k w (y − b − Xβ)² = ‖R·[b − y₀ + x₀ᵀβ; β; −1]‖²

(Q is orthogonal). So a whole CV curve costs O(p²) per fold and alpha after the pass,
never O(n).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..data.chunks import Chunk, validate_chunk
from ..errors import InputError
from ..solvers.state import LeastSquaresState
from ._folds import Folds, RowNumbers, check_labels, check_levels, hash_folds, hash_rows

if TYPE_CHECKING:
    from ._stream import ChunkSource


@dataclass
class FoldStates:
    """For each fold, the state of its training rows and of its test rows; and the
    state of every row (for the alpha grid and the final refit)."""

    train: list[LeastSquaresState]
    test: list[LeastSquaresState]
    full: LeastSquaresState
    target_1d: bool

    @property
    def n_folds(self) -> int:
        return len(self.test)


def merged(states: Iterable[LeastSquaresState]) -> LeastSquaresState:
    """One state of the rows of all ``states`` (which are left unchanged)."""
    it = iter(states)
    out = next(it).copy()
    for s in it:
        out.merge(s)
    return out


def from_partition(parts: list[LeastSquaresState], target_1d: bool) -> FoldStates:
    """Fold states from the states of a partition's parts: fold k trains on the merge
    of the others (K small: K − 1 merges of (m × m) factors each)."""
    for k, part in enumerate(parts):
        if part.n_observations == 0:
            raise InputError(
                f"fold {k} has no rows of positive weight: its error cannot be measured; "
                "give it rows, or use fewer folds"
            )
    train = [merged(p for j, p in enumerate(parts) if j != k) for k in range(len(parts))]
    return FoldStates(train, parts, merged(parts), target_1d)


def _rows_state(chunk: Chunk, rows: np.ndarray | slice, fit_intercept: bool) -> LeastSquaresState:
    """The state of some rows of ``chunk``: from their Gram matrix where that is
    accurate (:func:`~torchlinreg.solvers.gram.gram_state`), else by the QR fold."""
    from ..solvers.gram import gram_state

    index: Any = rows if isinstance(rows, slice) else torch.from_numpy(rows)
    w = chunk.sample_weight
    part = Chunk(chunk.X[index], chunk.Y[index], None if w is None else w[index],
                 chunk.target_1d, chunk.finite)  # fmt: skip
    state = gram_state(part, fit_intercept)
    if state is None:
        state = LeastSquaresState(
            part.X.shape[1], part.Y.shape[1], fit_intercept=fit_intercept, device=part.X.device
        ).update_chunk(part)
    return state


def _as_rows(index: np.ndarray) -> np.ndarray | slice:
    """A slice (a view, no copy) where the rows are consecutive."""
    if len(index) and index[-1] - index[0] + 1 == len(index) and (np.diff(index) == 1).all():
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def in_memory(chunk: Chunk, folds: Folds, fit_intercept: bool) -> FoldStates:
    """Fold states of in-memory rows: one state per fold of a partition (each row
    read once), else a training and a test state per split."""
    if folds.labels is not None:
        order = np.argsort(folds.labels, kind="stable")
        bounds = np.searchsorted(folds.labels[order], np.arange(folds.n_folds + 1))
        parts = [
            _rows_state(chunk, _as_rows(order[bounds[k] : bounds[k + 1]]), fit_intercept)
            for k in range(folds.n_folds)
        ]
        return from_partition(parts, chunk.target_1d)
    assert folds.splits is not None
    train, test = [], []
    for k, (tr, te) in enumerate(folds.splits):
        train.append(_rows_state(chunk, _as_rows(np.sort(tr)), fit_intercept))
        test.append(_rows_state(chunk, _as_rows(np.sort(te)), fit_intercept))
        if test[-1].n_observations == 0:
            raise InputError(f"cv split {k}: no test row has a positive weight")
    full = _rows_state(chunk, slice(0, chunk.X.shape[0]), fit_intercept)
    return FoldStates(train, test, full, chunk.target_1d)


def _stream_items(chunks: ChunkSource, with_labels: bool) -> Iterator[tuple[Chunk, Any]]:
    """(validated chunk, its fold labels or None) for each item of the stream."""
    made = chunks() if callable(chunks) else chunks
    if not isinstance(made, Iterable):
        raise InputError(
            f"fit_chunks takes an iterable of chunks or a function returning one; got "
            f"{type(made).__name__}"
        )
    sizes = (4,) if with_labels else (2, 3)
    shape = "(X, y, sample_weight, folds)" if with_labels else "(X, y) or (X, y, sample_weight)"
    rows = 0
    for item in made:
        if not isinstance(item, (tuple, list)) or len(item) not in sizes:
            raise InputError(f"each chunk must be a tuple {shape}")
        chunk = validate_chunk(*item[:3], row_offset=rows, whole=False)
        labels = None
        if with_labels:
            labels = check_labels(item[3], chunk.X.shape[0], row_offset=rows)
        rows += chunk.X.shape[0]
        yield chunk, labels


# Fold labels a stream may hold: each fold's state keeps a buffer of rows (a few MiB),
# so a column of row ids mistaken for folds is refused before it fills the memory.
MAX_STREAM_FOLDS = 100


@dataclass
class StreamParts:
    """A stream folded: the state of each fold label's rows, the rows read, and the
    shape of the problem (features, targets, 1-D target) where a chunk gave it."""

    parts: dict[Any, LeastSquaresState]
    rows: int
    shape: tuple[int, int, bool] | None
    hashed: bool


def fold_stream(
    items: Iterable[tuple[Chunk, Any]],
    n_folds: int,
    seed: int,
    fit_intercept: bool,
    *,
    max_folds: int = MAX_STREAM_FOLDS,
    first_row: int = 0,
) -> StreamParts:
    """Each chunk's rows folded into the state of their fold: a label given with the
    chunk (any values, at most ``max_folds`` of them), or for ``None`` labels
    :func:`~._folds.hash_folds` of the row's position (the stream's rows numbered from
    ``first_row``), or for :class:`~._folds.RowNumbers` the hash of those numbers."""
    parts: dict[Any, LeastSquaresState] = {}
    rows, shape, hashed = 0, None, False
    for chunk, labels in items:
        n = chunk.X.shape[0]
        if shape is None:
            shape = (chunk.X.shape[1], chunk.Y.shape[1], chunk.target_1d)
        if labels is None or isinstance(labels, RowNumbers):
            hashed = True
            labels = (
                hash_folds(first_row + rows, n, n_folds, seed)
                if labels is None
                else hash_rows(labels.rows, n_folds, seed)
            )
        _fold_chunk(parts, chunk, labels, fit_intercept, max_folds)
        rows += n
    return StreamParts(parts, rows, shape, hashed)


def _fold_chunk(
    parts: dict[Any, LeastSquaresState],
    chunk: Chunk,
    labels: np.ndarray,
    fit_intercept: bool,
    max_folds: int,
) -> None:
    """The rows of ``chunk`` into ``parts``, by their ``labels``."""
    levels, codes = np.unique(labels, return_inverse=True)
    for j, level in enumerate(levels.tolist()):
        idx = np.flatnonzero(codes.reshape(-1) == j)
        w = chunk.sample_weight
        index = torch.from_numpy(idx)
        part = Chunk(chunk.X[index], chunk.Y[index], None if w is None else w[index],
                     chunk.target_1d, chunk.finite)  # fmt: skip
        state = parts.get(level)
        if state is None and len(parts) == max_folds:
            raise too_many_folds(max_folds, level)
        if state is None:
            state = parts[level] = LeastSquaresState(
                part.X.shape[1], part.Y.shape[1], fit_intercept=fit_intercept,
                device=part.X.device,
            )  # fmt: skip
        state.update_chunk(part)


def too_many_folds(max_folds: int, level: Any) -> InputError:
    return InputError(
        f"the fold labels hold more than {max_folds} distinct values (the "
        f"{max_folds + 1}th is {level!r}); give fold labels, not row ids"
    )


def too_few_rows(n_folds: int, rows: int) -> InputError:
    return InputError(
        f"cv={n_folds} folds need at least {n_folds} rows, but the stream held {rows}; "
        "use fewer folds"
    )


def streamed(
    items: Iterable[tuple[Chunk, Any]],
    n_folds: int,
    seed: int,
    fit_intercept: bool,
    *,
    max_folds: int = MAX_STREAM_FOLDS,
) -> FoldStates:
    """Fold states of a stream, read once (:func:`fold_stream`; folds in the sorted
    order of their labels)."""
    found = fold_stream(items, n_folds, seed, fit_intercept, max_folds=max_folds)
    return partition_states(found, n_folds)


def partition_states(found: StreamParts, n_folds: int) -> FoldStates:
    """Fold states from one stream's folded parts (``n_folds``: the hashed folds)."""
    if found.hashed and found.rows < n_folds:
        raise too_few_rows(n_folds, found.rows)
    names = sorted(found.parts)
    check_levels(names)
    target_1d = True if found.shape is None else found.shape[2]
    return from_partition([found.parts[name] for name in names], target_1d)


def fold_mse(state: LeastSquaresState, coef: torch.Tensor, intercept: torch.Tensor) -> np.ndarray:
    """Weighted mean squared error on ``state``'s rows of each model (column) of
    ``coef`` (p, a) with ``intercept`` (a,): ‖R·[b_s; β; −1]‖² / Σw, one target."""
    R = state.R
    coef = coef.to(R)
    rows = [coef, -torch.ones(1, coef.shape[1], dtype=R.dtype, device=R.device)]
    if state.fit_intercept:
        b_s = intercept.to(R) - state.shift_y + state.shift_x @ coef
        rows.insert(0, b_s.unsqueeze(0))
    V = torch.cat(rows)
    rss = ((R @ V) ** 2).sum(0)
    return (rss / state.weight_sum).cpu().numpy()
