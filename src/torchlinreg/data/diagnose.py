"""Find the cell behind a pyarrow error: pyarrow names the column and the value of a bad
CSV cell, or the field counts of a bad row, but not the line. This slow path re-reads
the file with the standard csv module, only after an error, to name the line."""

from __future__ import annotations

import csv
import gzip
import io
import re
from typing import Any

from ..errors import InputError

_CONVERSION = re.compile(
    r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to (\w+): invalid value '(.*)'"
)
_RAGGED = re.compile(r"Expected (\d+) columns, got (\d+)")


def _null_values() -> set[str]:
    import pyarrow.csv as pacsv

    return set(pacsv.ConvertOptions().null_values)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _rows(source: Any) -> Any:
    opener = gzip.open if source.path.lower().endswith(".gz") else open
    handle = opener(source.path, "rt", encoding="utf-8-sig", newline="")
    return handle, csv.reader(handle, delimiter=source.delimiter)


def diagnose_csv(source: Any, message: str, types: dict[str, Any]) -> InputError | None:
    """An error naming the line, or ``None`` when the scan cannot explain ``message``."""
    conversion, ragged = _CONVERSION.search(message), _RAGGED.search(message)
    if not (conversion or ragged):
        return None
    try:
        handle, reader = _rows(source)
    except (OSError, UnicodeDecodeError):
        return None
    with handle:
        try:
            header = next(reader)
            nulls = _null_values()
            for row in reader:
                line = reader.line_num  # real line numbers, blank lines and all
                if not row:  # pyarrow skips blank lines too
                    continue
                if ragged and len(row) != len(header):
                    return InputError(
                        f"{source.name}, line {line}: {len(row)} fields where the header has "
                        f"{len(header)}; fix the row (or the --delimiter)"
                    )
                if conversion:
                    j = int(conversion.group(1))
                    if j < len(row) and row[j] not in nulls and not _is_number(row[j]):
                        return InputError(
                            f"{source.name}, line {line}, column {header[j]!r}: {row[j]!r} is "
                            "not a number; fix the value or leave the column out "
                            "(--features/--exclude)"
                        )
        except (csv.Error, UnicodeDecodeError, io.UnsupportedOperation, EOFError, OSError):
            return None
    return None


def first_non_number(column: Any) -> tuple[int, Any]:
    """(row, value) of the first non-null value of an arrow column that is not a number."""
    for row, value in enumerate(column.to_pylist()):
        if value is None:
            continue
        if isinstance(value, (int, float)) or (isinstance(value, str) and _is_number(value)):
            continue
        return row, value
    return 0, None


def line_of_row(source: Any, row: int) -> int | None:
    """The file line on which 0-based data row ``row`` ends (pyarrow skips blank lines
    and lets quoted fields span lines), or ``None`` if the file cannot be re-read."""
    try:
        handle, reader = _rows(source)
    except (OSError, UnicodeDecodeError):
        return None
    with handle:
        try:
            next(reader)  # header
            seen = -1
            for fields in reader:
                if not fields:
                    continue
                seen += 1
                if seen == row:
                    return int(reader.line_num)
        except (csv.Error, UnicodeDecodeError, EOFError, OSError):
            return None
    return None
