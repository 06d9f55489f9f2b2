"""Read numeric columns from a CSV file into arrays, with errors that point at the cell.

Parsing is pyarrow's (type inference included); this module only selects columns and
turns every way a file can be wrong into one :class:`~torchlinreg.errors.InputError`
naming the file, the line and the column.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass
class Columns:
    """Feature matrix ``X`` (n, p) and target ``y`` (n,), float64, with their names."""

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_name: str


def _check_path(path: str) -> None:
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file; check the path")
    if os.path.isdir(path):
        raise InputError(f"{path} is a directory; give the path of a CSV file")


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _not_numeric(column, path: str, name: str) -> InputError:  # type: ignore[no-untyped-def]
    """Why a column pyarrow could not read as numbers: one bad cell, or text throughout."""
    first_bad: tuple[int, object] | None = None
    numbers = 0
    for row, value in enumerate(column.to_pylist()):
        try:
            float(value)
            numbers += 1
        except (TypeError, ValueError):
            if first_bad is None:
                first_bad = (row, value)
        if numbers and first_bad is not None:
            break
    if first_bad is None:
        return InputError(f"{path}, column {name!r} has type {column.type}, not numbers")
    row, value = first_bad
    # Line numbers count the header as line 1; rows are one line each.
    if value is None:
        return InputError(
            f"{path}, line {row + 2}, column {name!r}: the value is missing; "
            "fill it in or remove the row"
        )
    if numbers:
        return InputError(
            f"{path}, line {row + 2}, column {name!r}: {value!r} is not a number; "
            "fix the value or leave the column out with --features"
        )
    return InputError(
        f"{path}: column {name!r} is not numeric (e.g. {value!r} on line {row + 2}); "
        "choose the feature columns with --features"
    )


def _numeric(table, path: str, name: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    import pyarrow as pa

    column = table.column(name)
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise _not_numeric(column, path, name)
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(
            f"{path}, line {row + 2}, column {name!r}: the value is missing; "
            "fill it in or remove the row"
        )
    values = column.to_numpy().astype(np.float64, copy=False)
    finite = np.isfinite(values)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise InputError(
            f"{path}, line {row + 2}, column {name!r}: {values[row]} is not a finite number; "
            "fix the value (too large for float64?) or remove the row"
        )
    return values


def read_csv_columns(
    path: str, target: str, features: Sequence[str] | None = None, delimiter: str = ","
) -> Columns:
    """Read ``target`` and ``features`` (default: every other column) from a CSV file
    with a header row."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    _check_path(path)
    try:
        table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=delimiter))
    except pa.ArrowInvalid as exc:
        message = _one_line(str(exc))
        if "Empty CSV file" in message:
            raise InputError(f"{path} is empty; it needs a header row and data rows") from None
        raise InputError(f"{path} could not be parsed as CSV: {message}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} could not be read: {_one_line(str(exc))}") from None

    names = table.column_names
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"{path}: duplicate column names {', '.join(dupes)}; rename them")
    wanted = [target, *(features or [])]
    missing = [c for c in wanted if c not in names]
    if missing:
        raise InputError(
            f"{path}: no column {', '.join(map(repr, missing))}; "
            f"the columns are: {', '.join(names)}"
        )
    if features is None:
        features = [c for c in names if c != target]
    if target in features:
        raise InputError(f"column {target!r} is the target; it cannot also be a feature")
    if not features:
        raise InputError(f"{path} has no feature columns besides the target {target!r}")
    if table.num_rows == 0:
        raise InputError(f"{path} has a header but no data rows")

    y = _numeric(table, path, target)
    X = np.column_stack([_numeric(table, path, c) for c in features])
    return Columns(X=X, y=y, feature_names=list(features), target_name=target)
