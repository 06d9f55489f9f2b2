"""The covariance types a summary can give, and the cluster labels the ``"cluster"``
type takes, checked at the boundary. numpy only: model files are checked against these
names without torch."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError

COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster", "HAC", "CRV3")
ROBUST = COV_TYPES[1:]
# The types that take cluster labels (groups=).
CLUSTERED = ("cluster", "CRV3")


def check_cov_type(cov_type: Any, what: str = "cov_type") -> str:
    """``cov_type`` if it is one of :data:`COV_TYPES`; else an error listing them."""
    if not isinstance(cov_type, str) or cov_type not in COV_TYPES:
        raise InputError(f"unknown {what} {cov_type!r}; choose one of {', '.join(COV_TYPES)}")
    return cov_type


def missing_label(label: Any) -> bool:
    """None, a NaN (unequal to itself) or pandas' NA (whose comparisons are NA)."""
    if label is None or type(label).__name__ == "NAType":
        return True
    try:
        return bool(label != label)
    except (TypeError, ValueError):
        return False


class LabelPair:
    """Two columns of cluster labels (two-way clustering), one label of each per row,
    sliced together."""

    def __init__(self, a: np.ndarray, b: np.ndarray) -> None:
        self.a, self.b = a, b

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, rows: Any) -> LabelPair:
        return LabelPair(self.a[rows], self.b[rows])


def two_columns(groups: Any) -> list[Any] | None:
    """The two label columns of two-way cluster labels: a pair (tuple or list) of 1-D
    label arrays, a 2-D array of two columns or a two-column DataFrame; else None."""
    if isinstance(groups, LabelPair):
        return [groups.a, groups.b]
    if isinstance(groups, (tuple, list)) and len(groups) == 2:
        if all(np.ndim(g) == 1 for g in groups):
            return list(groups)
        return None
    columns = getattr(groups, "columns", None)
    if columns is not None and hasattr(groups, "iloc"):  # a pandas DataFrame
        return [groups.iloc[:, j] for j in range(len(columns))] if len(columns) == 2 else None
    shape = getattr(groups, "shape", None)
    if shape is not None and len(shape) == 2 and shape[1] == 2:
        array = np.asarray(groups)
        return [array[:, 0], array[:, 1]]
    return None


def group_labels(groups: Any, n_rows: int, *, row_offset: int = 0) -> Any:
    """``groups`` checked (:func:`one_way_labels`), or for two-way clustering (two label
    columns, :func:`two_columns`) a :class:`LabelPair` of two checked columns."""
    pair = two_columns(groups)
    if pair is None:
        return one_way_labels(groups, n_rows, row_offset=row_offset)
    a, b = (one_way_labels(g, n_rows, row_offset=row_offset) for g in pair)
    return LabelPair(a, b)


def missing_rows(labels: np.ndarray) -> np.ndarray:
    """The positions of the missing labels (:func:`missing_label`) in a 1-D array."""
    if labels.dtype.kind == "f":
        return np.flatnonzero(np.isnan(labels))
    if labels.dtype == object:
        return np.flatnonzero([missing_label(v) for v in labels.tolist()])
    return np.empty(0, dtype=np.intp)


def one_way_labels(groups: Any, n_rows: int, *, row_offset: int = 0) -> np.ndarray:
    """``groups`` as a 1-D array of one cluster label per row, checked: as many labels
    as rows, none missing (the first missing one is named by its row, counted from
    ``row_offset`` in the whole data)."""
    labels = np.asarray(groups.to_numpy() if hasattr(groups, "to_numpy") else groups)
    if labels.ndim != 1:
        raise InputError(f"groups must be 1-D, one label per row; got shape {labels.shape}")
    if len(labels) != n_rows:
        raise InputError(
            f"groups has {len(labels)} labels for {n_rows} rows; give one group label per row"
        )
    missing = missing_rows(labels)
    if len(missing):
        row = row_offset + int(missing[0])
        raise InputError(
            f"groups holds missing labels: the cluster label of row {row} is missing "
            f"({len(missing)} missing in all); fill them in or drop those rows"
        )
    return labels
