"""``Source``: a tabular data set read in bounded memory, the interface every kind of
file implements (:mod:`.csv_source`, :mod:`.parquet_source`, :mod:`.npy_source`), and
what they share: record batches numbered by their first row and cast to the wanted
types, with every bad value named by its row (:class:`~torchlinreg.errors.InputError`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .exact import exact_float64
from .options import keywords_in_use

# Rows per batch where the reader chooses them (Parquet, .npy).
BATCH_ROWS = 1 << 17


def one_line(message: str) -> str:
    return " ".join(str(message).split())


@dataclass
class Batch:
    """Columns of consecutive rows; ``start`` is the 0-based index of the first row."""

    table: Any  # pyarrow.RecordBatch or Table
    start: int


def _nested_type(kind: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_nested(kind)
        or (pa.types.is_dictionary(kind) and pa.types.is_nested(kind.value_type))
    )


def check_plain(source: Source, columns: Sequence[str]) -> None:
    """Refuse nested (list, struct, map) columns: they hold no single value per row."""
    nested = [c for c in columns if c in source.types and _nested_type(source.types[c])]
    if nested:
        c = nested[0]
        raise InputError(
            f"{source.name}: column {c!r} has the nested type {source.types[c]}; features, "
            f"targets, weights{'' if keywords_in_use() else ', --cluster and --keep'} take "
            "plain columns (numbers or text): flatten it first"
        )


def _numeric_type(kind: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
        or pa.types.is_decimal(kind)
    )


class Source:
    """A tabular data set: ``columns`` (names, in order), ``types`` (pyarrow types), and
    ``batches(columns)`` streaming the chosen columns. ``reiterable`` tells whether the
    data can be read more than once (not so for standard input)."""

    name: str
    columns: list[str]
    types: dict[str, Any]
    reiterable: bool = True
    # The number of this source's first row in the whole data set: non-zero for one
    # rank's share of it (:mod:`.shards`), so that messages name rows of the whole file.
    first_row: int = 0

    def batches(
        self, columns: Sequence[str], types: dict[str, Any] | None = None
    ) -> Iterator[Batch]:
        """The chosen columns in batches of consecutive rows, cast to ``types``."""
        return numbered(self._record_batches(columns), self, types)

    def _record_batches(self, columns: Sequence[str]) -> Iterator[Any]:
        """The chosen columns as pyarrow record batches, in row order."""
        raise NotImplementedError

    def where(self, row: int) -> str:
        """Human location of a 0-based data row."""
        return f"{self.name}, row {row + 1}"

    def looks_numeric(self, column: str) -> bool:
        return _numeric_type(self.types[column])

    def typed(self, column: str, values: Any) -> Any:
        """A column's values as read, in the type the source gives the column (the
        same here; a CSV source reads kept columns as text)."""
        return values

    @property
    def empty(self) -> bool:
        return False

    @property
    def row_count(self) -> int | None:
        """Rows in the data when known without reading it (file metadata), else None."""
        return None


def numbered(
    batches: Iterable[Any], source: Source, types: dict[str, Any] | None
) -> Iterator[Batch]:
    """The non-empty record batches of a source, cast to ``types`` (see :func:`_cast`)
    and numbered by their first row (counted from ``source.first_row``)."""
    start = source.first_row
    for batch in batches:
        if batch.num_rows:
            yield Batch(_cast(batch, types or {}, source, start), start)
            start += batch.num_rows


def _check_names(source: Source) -> None:
    names = source.columns
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"{source.name}: duplicate column names {', '.join(dupes)}; rename them")


def _cast(table: Any, types: dict[str, Any], source: Source, start: int) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = []
    for name, column in zip(table.schema.names, table.columns, strict=True):
        want = types.get(name)
        if want is None or column.type == want:
            arrays.append(column)
            continue
        try:
            if pa.types.is_float64(want) and _integers_or_text(column.type):
                floats, row = exact_float64(column)
                if row is not None:
                    raise InputError(
                        f"{source.where(start + row)}, column {name!r}: the integer "
                        f"{column[row].as_py()} has no exact float64 value (beyond 2^53); "
                        "store it as a float or as text, or leave the column out"
                    )
                arrays.append(floats)
            else:
                arrays.append(pc.cast(column, want))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            from .diagnose import first_non_number

            row, value = first_non_number(column)
            raise InputError(
                f"{source.where(start + row)}, column {name!r}: {value!r} is not a number; "
                "fix the value or leave the column out"
            ) from None
    return pa.RecordBatch.from_arrays(arrays, names=table.schema.names)


def _integers_or_text(kind: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)
    )
