"""Factors to absorb: each categorical column as integer codes 0..L−1, one per row.

Labels may be numbers or text. A stream's chunks are encoded by one
:class:`LevelIndex` per factor, so a label has the same code in every chunk and every
pass; a label first seen on a later pass means the data changed between passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ...errors import InputError


def _missing_rows(labels: np.ndarray) -> np.ndarray:
    """Rows whose label is missing: NaN, None, pandas' NA."""
    if labels.dtype.kind == "f":
        return np.flatnonzero(np.isnan(labels))
    if labels.dtype == object:
        bad = [v is None or type(v).__name__ == "NAType" or v != v for v in labels.tolist()]
        return np.flatnonzero(bad)
    return np.empty(0, dtype=np.intp)


def factor_columns(absorb: Any, n_rows: int) -> tuple[list[str], list[np.ndarray]]:
    """``absorb`` as (names, one 1-D label array per factor), checked: one label per
    row. ``absorb`` is a DataFrame (pandas/polars; its column names name the factors),
    a dict of name → labels, a 1-D array (one factor) or a 2-D array (a factor per
    column, named ``fe0``, ``fe1``, …)."""
    if isinstance(absorb, dict):
        names = [str(k) for k in absorb]
        columns = [_as_labels(v) for v in absorb.values()]
    elif hasattr(absorb, "columns") and hasattr(absorb, "to_numpy"):
        names = [str(c) for c in absorb.columns]
        columns = [_as_labels(absorb[c]) for c in absorb.columns]
    else:
        array = np.asarray(absorb.cpu() if isinstance(absorb, torch.Tensor) else absorb)
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2:
            raise InputError(
                f"absorb must be 1-D (one factor) or 2-D (a factor per column); got shape "
                f"{array.shape}"
            )
        names = [f"fe{j}" for j in range(array.shape[1])]
        columns = [array[:, j] for j in range(array.shape[1])]
    if not columns:
        raise InputError("absorb names no factor; give at least one column of labels")
    for name, labels in zip(names, columns, strict=True):
        if len(labels) != n_rows:
            raise InputError(
                f"absorb factor {name!r} has {len(labels)} labels for {n_rows} rows; give "
                "one label per row"
            )
    return names, columns


def _as_labels(column: Any) -> np.ndarray:
    if isinstance(column, torch.Tensor):
        return column.cpu().numpy()
    return np.asarray(column.to_numpy() if hasattr(column, "to_numpy") else column)


@dataclass
class LevelIndex:
    """The codes of one factor's labels, growing as new labels are seen (``frozen``:
    a new label is an error, the data changed since the pass that found the levels)."""

    name: str
    codes: dict[Any, int] = field(default_factory=dict)
    frozen: bool = False

    @property
    def n_levels(self) -> int:
        return len(self.codes)

    def encode(self, labels: np.ndarray, row_offset: int = 0) -> torch.Tensor:
        """One int64 code per label; a missing label is an error naming its row."""
        missing = _missing_rows(labels)
        if len(missing):
            row = row_offset + int(missing[0])
            raise InputError(
                f"absorb factor {self.name!r} holds missing labels: row {row}'s label is "
                f"missing ({len(missing)} missing in all); fill them in or drop those rows"
            )
        try:
            uniques, inverse = np.unique(labels, return_inverse=True)
        except TypeError:  # labels of mixed kinds: compare them as text
            uniques, inverse = np.unique(labels.astype(str), return_inverse=True)
        table = np.empty(len(uniques), dtype=np.int64)
        for i, label in enumerate(uniques.tolist()):
            code = self.codes.get(label)
            if code is None:
                if self.frozen:
                    raise InputError(
                        f"absorb factor {self.name!r} has a label ({label!r}, near row "
                        f"{row_offset}) not seen on the first pass: the data changed between "
                        "passes; a stream read again must give the same rows"
                    )
                code = self.codes[label] = len(self.codes)
            table[i] = code
        return torch.from_numpy(table[inverse.reshape(-1)])


def encode_in_memory(names: Sequence[str], columns: Sequence[np.ndarray]) -> list[torch.Tensor]:
    """The codes of whole columns (levels numbered in sorted order of their labels)."""
    out = []
    for name, labels in zip(names, columns, strict=True):
        index = LevelIndex(name)
        if labels.dtype.kind in "iub" and len(labels):
            out.append(_integer_codes(labels))
        else:
            out.append(index.encode(labels))
    return out


def _integer_codes(labels: np.ndarray) -> torch.Tensor:
    """Integer labels coded without sorting when their range is small (a year, a firm
    id): a table lookup instead of ``np.unique``. Labels that are already the codes
    (0..L−1, every value present) are used as they are, without a copy (read only)."""
    values = labels.astype(np.int64, copy=False)
    low, high = int(values.min()), int(values.max())
    if high - low > 4 * len(values) + 1024:
        _, inverse = np.unique(values, return_inverse=True)
        return torch.from_numpy(inverse.reshape(-1).astype(np.int64))
    # Labels from 0 are used in place, unless read-only (pandas' copy-on-write columns):
    # torch would warn that it cannot protect them, so those are copied.
    in_place = low == 0 and values.flags.writeable
    shifted = torch.from_numpy(values if in_place else values - low)
    present = torch.bincount(shifted, minlength=high - low + 1) > 0
    if bool(present.all()):  # the codes of sorted levels are the values themselves
        return shifted
    table = torch.cumsum(present, 0) - 1
    return table[shifted]


def cluster_codes(
    labels: Any, columns: Sequence[np.ndarray], codes: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Cluster labels as codes 0..G−1, taken from a factor with the very same labels
    (clusters by firm with firm effects: no second encoding), else encoded as a
    factor's are."""
    labels = np.asarray(labels)
    for column, coded in zip(columns, codes, strict=True):
        same_kind = column.dtype.kind == labels.dtype.kind and column.shape == labels.shape
        if same_kind and (column is labels or np.array_equal(column, labels)):
            return coded
    return encode_in_memory(["groups"], [labels])[0]


def nested_in(codes: torch.Tensor, n_levels: int, cluster: torch.Tensor) -> bool:
    """Whether every level of a factor lies within one cluster (the factor is nested in
    the clusters: its effects are constant within each cluster's rows)."""
    if codes is cluster:  # the clusters are the factor's own levels
        return True
    low = torch.full((n_levels,), torch.iinfo(torch.int64).max, dtype=torch.int64)
    high = torch.full((n_levels,), -1, dtype=torch.int64)
    low.scatter_reduce_(0, codes, cluster, "amin")
    high.scatter_reduce_(0, codes, cluster, "amax")
    seen = high >= 0
    return bool(torch.equal(low[seen], high[seen]))
