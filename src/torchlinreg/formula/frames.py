"""Tables as the pandas frames formulaic reads: only the columns a formula reads, from a
pandas or polars DataFrame, a pyarrow Table or a file; a column the formula names but
the data lack is refused, naming it and listing the columns there are."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..errors import InputError


def table_columns(data: Any) -> list[str]:
    """The column names of a table (pandas, polars, pyarrow)."""
    names = getattr(data, "column_names", None)  # pyarrow
    if names is None:
        names = getattr(data, "columns", None)
    if names is None:
        raise InputError(
            f"a formula reads a table (a pandas or polars DataFrame, a pyarrow Table or a "
            f"file path), not a {type(data).__name__}"
        )
    return [str(c) for c in names]


def require_variables(formula: str, wanted: Sequence[str], columns: Sequence[str]) -> None:
    """Refuse a formula naming columns the data lack; a column whose name is not a
    Python name (spaces, dots) is written ``Q("my col")`` in a formula."""
    missing = [c for c in wanted if c not in columns]
    if not missing:
        return
    quoted = [c for c in columns if not c.isidentifier()]
    hint = (
        f"; a column whose name is not a Python name is quoted in a formula: Q({quoted[0]!r})"
        if quoted
        else ""
    )
    raise InputError(
        f"the formula {formula!r} reads column {', '.join(map(repr, missing))}, which the "
        f"data lack; the columns are: {', '.join(columns)}{hint}"
    )


def as_frame(data: Any, columns: Sequence[str]) -> Any:
    """``columns`` of ``data`` (a table or a path) as a pandas DataFrame with a fresh
    0-based index."""
    import pandas as pd

    if isinstance(data, (str, os.PathLike)):
        return _read_file(os.fspath(data), columns)
    if isinstance(data, pd.DataFrame):
        if not data.columns.is_unique:
            return data[list(columns)].reset_index(drop=True)
        # Column by column: the columns' memory is shared, where selecting columns out
        # of the order pandas stores them in copies them.
        frame = pd.DataFrame({c: data[c] for c in columns}, copy=False)
        return frame.reset_index(drop=True)
    module = type(data).__module__
    if module.startswith("polars"):
        return data.select(list(columns)).to_pandas()
    if module.startswith("pyarrow"):
        return data.select(list(columns)).to_pandas()
    table_columns(data)  # the error for what is not a table
    raise InputError(f"cannot read a {type(data).__name__} as a table")


def _read_file(path: str, columns: Sequence[str]) -> Any:
    """A file's columns in memory (as the command line reads them)."""
    import pyarrow as pa

    from ..data.sources import open_source

    source = open_source(path)
    types = {c: source.types[c] for c in columns if c in source.types}
    batches = [b.table for b in source.batches(list(columns), types)]
    if not batches:
        raise InputError(f"{source.name} has no data rows")
    return pa.Table.from_batches(batches).to_pandas()


def file_columns(path: str) -> list[str]:
    from ..data.sources import open_source

    return list(open_source(os.fspath(path)).columns)
