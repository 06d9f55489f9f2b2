"""Cross-validation with the rows spread over the ranks of a ``torch.distributed`` group.

Each rank folds its own rows into one state per fold; the K fold states are merged
across the ranks in one reduction (the fixed binary tree of
:mod:`torchlinreg.distributed.states`, rank order = row order), so every rank holds the
identical fold states; the curves, the choice and the refit are then computed from
them on every rank, and rank 0's fitted attributes are kept by all (bit for bit).

A row's fold never depends on how the rows are spread: it is the row's label
(``folds=``), or a function of its *global* position, the rows of rank 0 first, then
those of rank 1, and so on (each rank's first position comes from an all-gather of the
ranks' row counts): ``KFold``'s blocks for an in-memory ``cv=K``, the seeded hash of
:func:`~._folds.hash_folds` for a stream. So the fit on R ranks has the folds of the
one-process fit of the concatenated rows.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch

from ..errors import InputError
from ..solvers.state import OVERFLOW, LeastSquaresState
from ._fold_states import (
    FoldStates,
    StreamParts,
    fold_stream,
    from_partition,
    too_few_rows,
    too_many_folds,
)
from ._folds import check_labels, check_levels, check_n_folds, check_seed, kfold_share

if TYPE_CHECKING:
    from ..data.chunks import Chunk
    from ..distributed.group import Group
    from ._stream import ChunkSource
    from .cv import _CrossValidated

    M = TypeVar("M", bound=_CrossValidated)

# Fitted attributes that are not tensors: rank 0's are kept by every rank.
_FITTED = ("alpha_", "alphas_", "mse_path_", "coef_", "intercept_", "best_score_",
           "l1_ratio_", "dual_gap_", "n_iter_", "n_folds_", "n_features_in_",
           "n_samples_seen_", "feature_names_in_")  # fmt: skip

_SPLITTERS = (
    "under distributed=, cv must be a number of folds (KFold on the global row order) or "
    "the folds given as fold labels (folds=); splitters and (train, test) index arrays "
    "index one process's rows"
)


def fit(
    model: M,
    group: Group,
    X: Any,
    y: Any,
    sample_weight: Any,
    folds: Any,
    groups: Any,
) -> M:
    """``model.fit`` on this rank's rows, collectively (see the module's docstring)."""
    from ._distributed import _local_chunk
    from .cv import _one_target, _warn_column_y

    group.agree(lambda: _check_in_memory(model, folds, groups))
    chunk = group.agree(lambda: _local_chunk(X, y, sample_weight, None))
    group.agree(lambda: _one_target(chunk.Y.shape[1]))
    if not chunk.target_1d:
        _warn_column_y()
    model._set_feature_names(X, y)
    names = getattr(model, "feature_names_in_", None)
    _agree_on_problem(group, model, (chunk.X.shape[1], 1), names)
    counts = group.gather_objects(int(chunk.X.shape[0]))
    offset, total = sum(counts[: group.rank]), sum(counts)
    codes, n_folds = _fold_codes(group, model, folds, chunk.X.shape[0], offset, total)
    fit_intercept = bool(model.fit_intercept)
    parts = group.agree(lambda: _local_parts(chunk, codes, n_folds, fit_intercept))
    merged = merge_folds_across(group, parts)
    states = group.agree(lambda: from_partition(merged, bool(chunk.target_1d)))
    group.agree(lambda: model._select(states))
    return _same_everywhere(group, model)


def _check_in_memory(model: _CrossValidated, folds: Any, groups: Any) -> None:
    model._check_params()
    model._check_grid()
    cv = model.cv
    counted = isinstance(cv, numbers.Integral) and not isinstance(cv, bool)
    if folds is None and cv is not None and not counted:
        raise InputError(_SPLITTERS)
    if folds is not None and cv is not None and not isinstance(cv, numbers.Integral):
        raise InputError("give the folds either as fold labels (folds=) or as cv=, not both")
    if groups is not None:
        raise InputError(f"groups= are for a splitter; {_SPLITTERS}")


def _fold_codes(
    group: Group, model: _CrossValidated, folds: Any, n: int, offset: int, total: int
) -> tuple[np.ndarray, int]:
    """Each local row's fold (0 … K − 1) and K: the labels' levels over every rank in
    sorted order, or ``KFold``'s blocks of the global positions."""
    if folds is None:
        cv = 5 if model.cv is None else model.cv
        k = group.agree(lambda: check_n_folds(cv, total))
        seed = check_seed(model.random_state)
        return kfold_share(total, k, offset, n, seed), k
    labels = group.agree(lambda: check_labels(folds, n, row_offset=offset))
    levels = group.agree(lambda: _union(group.gather_objects(np.unique(labels))))
    codes = np.searchsorted(levels, labels) if n else np.zeros(0, dtype=np.int64)
    return np.asarray(codes, dtype=np.int64), len(levels)


def _union(levels: list[np.ndarray]) -> np.ndarray:
    """The sorted union of the ranks' fold labels, at least two of them."""
    present = [np.asarray(v) for v in levels if len(v)]
    if not present:
        raise InputError("no rank has any row; give at least one row")
    try:
        union = np.unique(np.concatenate(present))
    except (TypeError, ValueError):
        kinds = sorted({str(v.dtype) for v in present})
        raise InputError(
            f"the ranks' fold labels cannot be ordered together (types {', '.join(kinds)}); "
            "give labels of one type on every rank"
        ) from None
    check_levels(union)
    return union


def _local_parts(
    chunk: Chunk, codes: np.ndarray, n_folds: int, fit_intercept: bool
) -> list[LeastSquaresState]:
    """The state of this rank's rows of each fold (an empty state for a fold it has no
    rows of), the rows already folded."""
    from ._fold_states import _as_rows, _rows_state

    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_folds + 1))
    parts = []
    for k in range(n_folds):
        rows = order[bounds[k] : bounds[k + 1]]
        if len(rows):
            state = _rows_state(chunk, _as_rows(rows), fit_intercept)
        else:
            state = _empty(chunk.X.shape[1], chunk.Y.shape[1], fit_intercept, chunk.X.device)
        state.R  # noqa: B018 - folds the rows still buffered, where errors are agreed on
        parts.append(state)
    return parts


def _empty(p: int, k: int, fit_intercept: bool, device: Any) -> LeastSquaresState:
    return LeastSquaresState(p, k, fit_intercept=fit_intercept, device=device)


def fit_chunks(
    model: M,
    group: Group,
    chunks: ChunkSource,
    folds: str | None,
    feature_names: Sequence[str] | None,
) -> M:
    """``model.fit_chunks`` on this rank's stream, collectively. Hashed folds need each
    rank's first global row: the stream is read twice (counted, then folded), so it must
    be re-iterable (a list, or a function returning a fresh iterator)."""
    from ._fold_states import _stream_items

    n_folds = group.agree(lambda: model._stream_folds(folds))
    with_labels = folds == "chunks"
    offset = 0
    if not with_labels:
        offset, counted = _stream_offset(group, chunks)
    seed = check_seed(model.random_state) or 0
    fit_intercept = bool(model.fit_intercept)
    found = group.agree(
        lambda: fold_stream(
            _stream_items(chunks, with_labels), n_folds, seed, fit_intercept, first_row=offset
        )  # fmt: skip
    )
    if not with_labels:
        group.agree(lambda: _same_count(counted, found.rows))
    states = stream_fold_states(group, found, n_folds, fit_intercept, max_folds=None)
    return select(group, model, states, feature_names)


def select(group: Group, model: M, states: FoldStates, feature_names: Sequence[str] | None) -> M:
    """``model.fit_fold_states`` on the fold states every rank holds (merged), with
    rank 0's fitted attributes kept by every rank."""
    _agree_on_problem(group, model, (states.full.n_features, 1), feature_names)
    group.agree(lambda: model.fit_fold_states(states, feature_names=feature_names))
    return _same_everywhere(group, model)


def _stream_offset(group: Group, chunks: ChunkSource) -> tuple[int, int]:
    """(this rank's first global row, its row count) from a counting pass."""
    if any(group.gather_objects(group.agree(lambda: _one_shot(chunks)))):
        raise InputError(
            "hashed folds of rows spread over ranks need each rank's row count first, so "
            "every rank's stream is read twice: give a list or a function returning a "
            "fresh iterator (not a one-shot iterator), or fold labels (folds='chunks')"
        )
    counted = group.agree(lambda: _count_rows(chunks))
    counts = group.gather_objects(counted)
    return sum(counts[: group.rank]), counted


def _one_shot(chunks: ChunkSource) -> bool:
    """Whether ``chunks`` can be read once only (a generator, an iterator)."""
    if callable(chunks):
        return False
    if not isinstance(chunks, Iterable):
        raise InputError(
            f"fit_chunks takes an iterable of chunks or a function returning one; got "
            f"{type(chunks).__name__}"
        )
    return iter(chunks) is chunks


def _count_rows(chunks: ChunkSource) -> int:
    made = chunks() if callable(chunks) else chunks
    total = 0
    for item in made:
        if not isinstance(item, (tuple, list)) or not item:
            raise InputError("each chunk must be a tuple (X, y) or (X, y, sample_weight)")
        X = item[0]
        shape = getattr(X, "shape", None)
        total += int(shape[0]) if shape is not None and len(shape) else len(X)
    return total


def _same_count(counted: int, read: int) -> None:
    if counted != read:
        raise InputError(
            f"the chunk stream gave {counted} rows when counted and {read} when folded; "
            "give a stream that yields the same rows each time it is read"
        )


def stream_fold_states(
    group: Group,
    found: StreamParts,
    n_folds: int,
    fit_intercept: bool,
    *,
    max_folds: int | None,
) -> FoldStates:
    """Fold states from each rank's folded stream: the labels of every rank (a rank
    may lack some, or have no rows), their parts merged across the ranks."""
    from ._fold_states import MAX_STREAM_FOLDS

    shapes = [s for s in group.gather_objects(found.shape) if s is not None]
    if not shapes:
        raise InputError("the chunk streams were empty on every rank; give at least one row")
    p, k, target_1d = shapes[0]
    if any(s != shapes[0] for s in shapes):
        raise InputError(
            f"the ranks' chunks have other shapes ({sorted(set(shapes))}: features, "
            "targets, 1-D target); every rank must give the same columns"
        )
    levels = group.gather_objects(sorted(found.parts))
    rows = group.gather_objects((found.rows, found.hashed))
    if any(hashed for _, hashed in rows) and sum(n for n, _ in rows) < n_folds:
        raise too_few_rows(n_folds, sum(n for n, _ in rows))
    union = _union([np.asarray(v, dtype=object) for v in levels]).tolist()
    limit = MAX_STREAM_FOLDS if max_folds is None else max_folds
    if len(union) > limit:
        raise too_many_folds(limit, union[limit])
    device = next(iter(found.parts.values())).device if found.parts else None
    local = [found.parts[v] if v in found.parts else _empty(p, k, fit_intercept, device)
             for v in union]  # fmt: skip
    merged = merge_folds_across(group, local)
    return group.agree(lambda: from_partition(merged, target_1d))


def merge_folds_across(group: Group, parts: list[LeastSquaresState]) -> list[LeastSquaresState]:
    """Each fold's state merged across the ranks, on every rank: one reduction carrying
    all K states (packed into two tensors), up the tree of
    :meth:`~torchlinreg.distributed.group.Group.reduce`. A merge that overflows is found
    on every rank after the broadcast."""
    from ..distributed.states import merge_or_mark, pack, unpack

    like = parts[0]

    def pack_all(states: list[LeastSquaresState]) -> list[torch.Tensor]:
        packed = [pack(s) for s in states]
        return [torch.cat([a for a, _ in packed]), torch.cat([b for _, b in packed])]

    def unpack_all(tensors: list[torch.Tensor]) -> list[LeastSquaresState]:
        numbers, counts = tensors[0].chunk(len(parts)), tensors[1].chunk(len(parts))
        return [unpack(a, b, like) for a, b in zip(numbers, counts, strict=True)]

    def combine(
        mine: list[LeastSquaresState], theirs: list[LeastSquaresState]
    ) -> list[LeastSquaresState]:
        return [merge_or_mark(a, b) for a, b in zip(mine, theirs, strict=True)]

    merged = group.reduce([s.copy() for s in parts], combine, pack_all, unpack_all)
    if not all(bool(torch.isfinite(s.R).all()) for s in merged):
        raise InputError(OVERFLOW)
    return merged


def _agree_on_problem(
    group: Group, model: _CrossValidated, shape: tuple[int, int], names: Any
) -> None:
    """Every rank has the same columns (count and names) and estimator parameters, or
    every rank raises naming the first rank that differs from rank 0."""
    params = {k: repr(v) for k, v in model.get_params().items()}
    mine = (shape, None if names is None else [str(v) for v in names], params)
    seen = group.gather_objects(mine)
    what = ("columns", "feature names", "parameters")
    for rank, theirs in enumerate(seen):
        for label, a, b in zip(what, seen[0], theirs, strict=True):
            if a != b:
                raise InputError(
                    f"rank {rank} of {group.size} has other {label} than rank 0 ({b!r} vs "
                    f"{a!r}); give every rank the same columns and estimator parameters"
                )


def _same_everywhere(group: Group, model: M) -> M:
    """Rank 0's fitted attributes on every rank (the states are already identical; the
    curves and refits computed from them could round differently on other hardware)."""
    mine = {name: getattr(model, name) for name in _FITTED if hasattr(model, name)}
    for name, value in group.decide(mine).items():
        setattr(model, name, value)
    return model
