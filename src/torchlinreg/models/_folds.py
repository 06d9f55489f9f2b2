"""Which rows each cross-validation fold holds: numpy only, no torch.

In memory, folds come as scikit-learn takes them (``cv=``: a number of folds, a
splitter with ``split(X, y)``, or an iterable of ``(train, test)`` index arrays) or as
one fold label per row. Most splits are a *partition*: every row is in exactly one test
set and trains every other fold. Those are held as one fold number per row, which is
all the one-pass fold states need; other splits (``ShuffleSplit``, test sets that
overlap or leave rows out) are kept as index arrays.

Streams cannot be shuffled or counted ahead, so their folds are a label per row (given
with each chunk) or a seeded hash of the row's position in the stream.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError


@dataclass
class Folds:
    """Either ``labels``: the fold (0 … n_folds − 1) of each row, a partition; or
    ``splits``: explicit ``(train, test)`` row indices, one pair per fold."""

    n_folds: int
    labels: np.ndarray | None = None
    splits: list[tuple[np.ndarray, np.ndarray]] | None = None


def check_n_folds(cv: Any, n_rows: int | None = None) -> int:
    """``cv`` as a number of folds: an integer ≥ 2, and at most the rows when known."""
    if not isinstance(cv, numbers.Integral) or isinstance(cv, bool) or int(cv) < 2:
        raise InputError(f"cv must be an integer >= 2 (the number of folds); got {cv!r}")
    if n_rows is not None and int(cv) > n_rows:
        raise InputError(
            f"cv={int(cv)} folds need at least {int(cv)} rows; got n_samples={n_rows}; "
            "use fewer folds"
        )
    return int(cv)


def check_seed(random_state: Any) -> int | None:
    """``random_state``: None or a non-negative integer below 2³²."""
    if random_state is None:
        return None
    ok = isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool)
    if not ok or not 0 <= int(random_state) < 2**32:
        raise InputError(
            f"random_state must be None or an integer in [0, 2^32); got {random_state!r}"
        )
    return int(random_state)


def kfold_labels(n_rows: int, n_folds: int, random_state: int | None = None) -> np.ndarray:
    """The folds of scikit-learn's ``KFold(n_folds)``: consecutive blocks, the first
    ``n_rows % n_folds`` one row longer; with ``random_state``, those of
    ``KFold(n_folds, shuffle=True, random_state=random_state)`` (rows permuted by
    numpy's ``RandomState(random_state)`` first)."""
    sizes = np.full(n_folds, n_rows // n_folds)
    sizes[: n_rows % n_folds] += 1
    labels = np.repeat(np.arange(n_folds), sizes)
    if random_state is None:
        return labels
    order = np.random.RandomState(random_state).permutation(n_rows)
    out = np.empty(n_rows, dtype=labels.dtype)
    out[order] = labels
    return out


# splitmix64's constants: a bijective mix of 64-bit integers whose output bits all
# depend on every input bit, so consecutive rows land in unrelated folds.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def hash_folds(first_row: int, n_rows: int, n_folds: int, seed: int = 0) -> np.ndarray:
    """Folds of rows ``first_row`` … ``first_row + n_rows − 1`` of a stream: splitmix64
    of (row + 1 + seed·2³²)·golden, modulo ``n_folds``. Each row's fold depends only on
    its position and the seed, so any chunking gives the same folds; the folds are
    balanced in expectation (sizes vary by about √(n / n_folds))."""
    rows = np.arange(first_row, first_row + n_rows, dtype=np.uint64)
    return hash_rows(rows, n_folds, seed)


def hash_rows(rows: np.ndarray, n_folds: int, seed: int = 0) -> np.ndarray:
    """:func:`hash_folds` of the rows numbered ``rows`` (any order, gaps allowed: the
    kept rows of a file, numbered as in the file)."""
    with np.errstate(over="ignore"):  # arithmetic modulo 2^64 is the point
        z = np.asarray(rows, dtype=np.uint64) + np.uint64(1)
        z = (z + np.uint64(seed) * np.uint64(1 << 32)) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(n_folds)).astype(np.int64)


@dataclass
class RowNumbers:
    """Rows of a chunk named by their numbers (for :func:`hash_rows`), where the fold
    comes from the row's number in the whole data, not its place in the stream."""

    rows: np.ndarray


def kfold_share(
    n_rows: int, n_folds: int, first_row: int, n_share: int, random_state: int | None = None
) -> np.ndarray:
    """The :func:`kfold_labels` of rows ``first_row`` … ``first_row + n_share − 1`` of
    ``n_rows``: one rank's share. Unshuffled, computed for the share alone; shuffled,
    from the permutation of all ``n_rows`` (8 bytes a row, on each rank)."""
    if random_state is not None:
        return kfold_labels(n_rows, n_folds, random_state)[first_row : first_row + n_share]
    sizes = np.full(n_folds, n_rows // n_folds)
    sizes[: n_rows % n_folds] += 1
    ends = np.cumsum(sizes)
    rows = np.arange(first_row, first_row + n_share)
    return np.searchsorted(ends, rows, side="right").astype(np.int64)


def check_labels(folds: Any, n_rows: int, *, row_offset: int = 0) -> np.ndarray:
    """Fold labels as a 1-D array, one per row, none missing (the first missing one
    named by its row, counted from ``row_offset``)."""
    from ..stats.cov_types import missing_rows

    labels = np.asarray(folds.to_numpy() if hasattr(folds, "to_numpy") else folds)
    if labels.ndim != 1 or len(labels) != n_rows:
        raise InputError(
            f"folds must hold one fold label per row ({n_rows}); got shape {labels.shape}"
        )
    missing = missing_rows(labels)
    if len(missing):
        raise InputError(
            f"folds holds missing labels: the fold of row {row_offset + int(missing[0])} "
            f"is missing ({len(missing)} in all); give every row a fold"
        )
    return labels


def labels_to_folds(folds: Any, n_rows: int) -> Folds:
    """Folds from one label per row (any values; folds in sorted order of the labels)."""
    levels, codes = np.unique(check_labels(folds, n_rows), return_inverse=True)
    check_levels(levels)
    return Folds(len(levels), labels=codes.reshape(-1))


def check_levels(levels: Any) -> None:
    """At least two folds: one fold would leave nothing to train on."""
    if len(levels) < 2:
        shown = levels.tolist() if isinstance(levels, np.ndarray) else list(levels)
        which = f" ({shown[0]!r})" if shown else ""
        raise InputError(
            f"the fold labels have {len(levels)} level{which}; cross-validation needs at "
            "least 2 folds (each fold is scored by a model trained on the others)"
        )


def resolve_folds(
    cv: Any,
    X: Any,
    y: Any,
    n_rows: int,
    *,
    folds: Any = None,
    random_state: Any = None,
    groups: Any = None,
) -> Folds:
    """The folds of an in-memory fit: ``folds`` (labels) if given, else from ``cv``
    (a splitter is called as ``cv.split(X, y, groups)``)."""
    if folds is not None:
        if not isinstance(cv, numbers.Integral):
            raise InputError("give the folds either as fold labels (folds=) or as cv=, not both")
        return labels_to_folds(folds, n_rows)
    if cv is None:
        cv = 5
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        k = check_n_folds(cv, n_rows)
        return Folds(k, labels=kfold_labels(n_rows, k, check_seed(random_state)))
    if hasattr(cv, "split"):
        return splits_to_folds(cv.split(X, y, groups), n_rows)
    if groups is not None:
        raise InputError("groups= are for a splitter given as cv= (GroupKFold, ...)")
    if isinstance(cv, Iterable) and not isinstance(cv, (str, bytes)):
        return splits_to_folds(cv, n_rows)
    raise InputError(
        f"cv must be a number of folds, a splitter (with split(X, y)) or an iterable of "
        f"(train, test) index arrays; got {type(cv).__name__}"
    )


def splits_to_folds(splits: Iterable[Any], n_rows: int) -> Folds:
    """Explicit splits, as fold labels where they are a partition of the rows."""
    pairs = [_split_pair(pair, n_rows, i) for i, pair in enumerate(splits)]
    if len(pairs) < 2:
        raise InputError(f"cv gave {len(pairs)} split(s); cross-validation needs at least 2")
    labels = _partition(pairs, n_rows)
    if labels is not None:
        return Folds(len(pairs), labels=labels)
    return Folds(len(pairs), splits=pairs)


def _partition(pairs: list[tuple[np.ndarray, np.ndarray]], n_rows: int) -> np.ndarray | None:
    """Each row's fold where the test sets partition the rows and each training set is
    exactly the other rows (KFold, GroupKFold, ...); else None."""
    labels = np.full(n_rows, -1, dtype=np.int64)
    for k, (_, test) in enumerate(pairs):
        if (labels[test] != -1).any() or len(np.unique(test)) != len(test):
            return None  # overlapping test sets
        labels[test] = k
    if (labels < 0).any():
        return None  # rows in no test set
    for k, (train, _) in enumerate(pairs):
        others = n_rows - int((labels == k).sum())
        if len(train) != others or (labels[train] == k).any() or len(np.unique(train)) != others:
            return None
    return labels


def _split_pair(pair: Any, n_rows: int, i: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        train, test = pair
    except (TypeError, ValueError):
        raise InputError(f"cv split {i} is not a (train, test) pair of index arrays") from None
    out = []
    for name, idx in (("train", train), ("test", test)):
        a = np.asarray(idx)
        if a.dtype == bool and a.shape == (n_rows,):
            a = np.flatnonzero(a)
        if a.ndim != 1 or a.dtype.kind not in "iu" or len(a) == 0:
            raise InputError(
                f"cv split {i}: the {name} rows must be a non-empty 1-D array of row indices"
            )
        if a.min() < 0 or a.max() >= n_rows:
            raise InputError(f"cv split {i}: {name} row index out of range for {n_rows} rows")
        out.append(a.astype(np.intp))
    return out[0], out[1]
