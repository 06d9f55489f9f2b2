"""Find the cell behind a pyarrow error: pyarrow names the column and the value of a bad
CSV cell, or the field counts of a bad row, but not the line. This slow path re-reads
the file with the standard csv module, only after an error, to name the line."""

from __future__ import annotations

import csv
import functools
import gzip
import io
import re
from collections.abc import Iterator
from typing import Any

from ..errors import InputError
from .options import option

_CONVERSION = re.compile(
    r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to (\w+): invalid value '(.*)'"
)
_RAGGED = re.compile(r"Expected (\d+) columns, got (\d+)")


@functools.cache
def null_tokens() -> frozenset[str]:
    """The cells pyarrow reads as missing in a number column ("", "NA", "null", ...)."""
    import pyarrow.csv as pacsv

    return frozenset(pacsv.ConvertOptions().null_values)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_READ_ERRORS = (OSError, UnicodeDecodeError, csv.Error, io.UnsupportedOperation, EOFError)


def _data_rows(source: Any) -> Iterator[tuple[list[str], int, list[str]]]:
    """(header, line number, fields) for each non-blank data row, read again with the
    standard csv module; stops quietly if the file cannot be read that way."""
    opener = gzip.open if source.path.lower().endswith(".gz") else open
    try:
        with opener(source.path, "rt", encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter=source.delimiter)
            header = next(reader)
            for fields in reader:
                if fields:  # pyarrow skips blank lines too
                    yield header, reader.line_num, fields
    except (*_READ_ERRORS, StopIteration):
        return


def diagnose_csv(source: Any, message: str, types: dict[str, Any]) -> InputError | None:
    """An error naming the line, or ``None`` when the scan cannot explain ``message``."""
    conversion, ragged = _CONVERSION.search(message), _RAGGED.search(message)
    if not (conversion or ragged):
        return None
    nulls = null_tokens()
    for header, line, row in _data_rows(source):
        if ragged and len(row) != len(header):
            return InputError(
                f"{source.name}, line {line}: {len(row)} fields where the header has "
                f"{len(header)}; fix the row (or the {option('delimiter')})"
            )
        if conversion:
            j = int(conversion.group(1))
            if j < len(row) and row[j] not in nulls and not _is_number(row[j]):
                return InputError(
                    f"{source.name}, line {line}, column {header[j]!r}: {row[j]!r} is "
                    "not a number; fix the value or leave the column out "
                    f"({option('features')}/{option('exclude')})"
                )
    return None


def first_non_number(column: Any) -> tuple[int, Any]:
    """(row, value) of the first non-null value of an arrow column that is not a number."""
    import pyarrow as pa

    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        # Through bytes: a file may hold invalid UTF-8, which to_pylist() cannot decode.
        column = column.cast(pa.large_binary())
    for row, value in enumerate(column.to_pylist()):
        if value is None:
            continue
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if isinstance(value, (int, float)) or (isinstance(value, str) and _is_number(value)):
            continue
        return row, value
    return 0, None


def line_of_row(source: Any, row: int) -> int | None:
    """The file line on which 0-based data row ``row`` ends (pyarrow skips blank lines
    and lets quoted fields span lines), or ``None`` if the file cannot be re-read."""
    for seen, (_, line, _) in enumerate(_data_rows(source)):
        if seen == row:
            return line
    return None
