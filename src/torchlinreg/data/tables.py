"""One entry point for data in the library: a path or an in-memory table.

``load_data`` reads a file (CSV/TSV/Parquet/.npy, as the CLI does) or takes a pandas or
polars DataFrame or a pyarrow Table, applies the same column rules (targets, features,
weights, one-hot, missing values), and returns numpy arrays ready for any estimator.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import InputError
from .design import Design, chunks, plan, require_columns
from .named import NamedArray
from .options import keywords
from .sources import Source, _check_names, open_source

_BATCH_ROWS = 1 << 17


class TableSource(Source):
    """An in-memory pyarrow Table (pandas and polars frames are converted to one)."""

    def __init__(self, table: Any, name: str = "the table") -> None:
        self.table, self.name = table, name
        self.columns = [str(c) for c in table.column_names]
        self.types = {f.name: f.type for f in table.schema}
        _check_names(self)

    def _record_batches(self, columns: Sequence[str]) -> Iterator[Any]:
        return iter(self.table.select(list(columns)).to_batches(max_chunksize=_BATCH_ROWS))

    @property
    def empty(self) -> bool:
        return self.table.num_rows == 0


def as_source(data: Any, *, delimiter: str | None = None) -> Source:
    """A :class:`Source` for a path, a pandas/polars DataFrame or a pyarrow Table."""
    import pyarrow as pa

    if isinstance(data, (str, os.PathLike)):
        return open_source(os.fspath(data), delimiter=delimiter)
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        return TableSource(
            pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
        )
    module = type(data).__module__
    if module.startswith("polars"):
        return TableSource(data.to_arrow(), "the DataFrame")
    if module.startswith("pandas"):
        return TableSource(pa.Table.from_pandas(data, preserve_index=False), "the DataFrame")
    raise InputError(
        f"cannot read data from a {type(data).__name__}; give a path, a pandas or polars "
        "DataFrame, or a pyarrow Table (arrays go straight to an estimator's fit)"
    )


@dataclass
class Dataset:
    """Numbers ready for ``fit(X, y, sample_weight)``, with the names they came from.

    ``X`` and ``y`` are numpy arrays that carry their names (:class:`NamedArray`): an
    estimator fitted on them records ``feature_names_in_`` (``feature_names``, one-hot
    columns as ``color=red``) and ``target_names_``, as from a DataFrame."""

    X: NamedArray
    y: NamedArray
    sample_weight: np.ndarray | None
    feature_names: list[str]
    design: Design
    dropped: int


def load_data(
    data: Any,
    *,
    target: str | Sequence[str],
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    weights: str | None = None,
    one_hot: Sequence[str] = (),
    missing: str = "error",
    delimiter: str | None = None,
    drop_reference: bool = True,
) -> Dataset:
    """Read ``data`` (a path or a table) into memory as a :class:`Dataset`.

    Columns as the CLI takes them: ``target`` (one name or several), ``features``
    (default: every other numeric column), ``exclude``, ``weights``, ``one_hot`` (text
    columns to encode), ``missing`` (``"error"`` or ``"drop"``). One-hot columns drop
    their first category (the reference) unless ``drop_reference=False``, which a model
    without an intercept wants. For data larger than memory use the command line, or
    ``LinearRegression.fit_chunks``.
    """
    with keywords():  # errors name this function's keywords, not the CLI's flags
        return _load(
            _rows(data, delimiter),
            [target] if isinstance(target, str) else list(target),
            features=features,
            exclude=exclude,
            weights=weights,
            one_hot=one_hot,
            missing=missing,
            drop_reference=drop_reference,
            one_target=isinstance(target, str),
        )


def _load(
    source: Source, targets: list[str], *, drop_reference: bool, one_target: bool, **columns: Any
) -> Dataset:
    design, _ = plan(source, targets=targets, **columns)
    design.drop_reference = drop_reference
    parts = _read(source, design, with_targets=True)
    X = np.concatenate([p.X for p in parts])
    Y = np.concatenate([p.Y for p in parts])  # type: ignore[misc]
    w = np.concatenate([p.w for p in parts]) if design.weights else None  # type: ignore[misc]
    y = NamedArray(Y[:, 0], targets) if one_target else NamedArray(Y, targets)
    X = NamedArray(X, design.feature_names)
    return Dataset(X, y, w, design.feature_names, design, sum(p.dropped for p in parts))


def design_matrix(data: Any, design: Design, *, delimiter: str | None = None) -> np.ndarray:
    """The feature matrix of new ``data`` (a path or a table with the raw columns) as
    ``design`` built it when fitting: its columns, its one-hot categories. Every row
    gets a row of X, so a missing value is an error here whatever the design says."""
    with keywords():
        source = _rows(data, delimiter)
        require_columns(source, design.inputs, "feature")
        every_row = replace(design, missing="error")
        parts = _read(source, every_row, with_targets=False)
        return np.concatenate([p.X for p in parts])


def _rows(data: Any, delimiter: str | None) -> Source:
    source = as_source(data, delimiter=delimiter)
    if source.empty:
        raise InputError(f"{source.name} has no data rows")
    return source


def _read(source: Source, design: Design, *, with_targets: bool) -> list[Any]:
    return [c for c, _ in chunks(source, design, with_targets=with_targets)]
