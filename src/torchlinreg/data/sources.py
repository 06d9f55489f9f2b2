"""Tabular sources read in bounded memory: CSV/TSV (plain or gzip), Parquet (a file or a
directory), NumPy ``.npy`` and standard input (``-``).

Parsing is pyarrow's; this module picks the reader by extension, streams record batches
with their row offsets, and turns every way a file can be wrong into one
:class:`~torchlinreg.errors.InputError` that names the file (and line, when known).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

CSV_EXTENSIONS = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
PARQUET_EXTENSIONS = (".parquet", ".pq")
SUPPORTED = ", ".join((*CSV_EXTENSIONS, *PARQUET_EXTENSIONS, ".npy", "a Parquet directory", "-"))
# Bytes pyarrow parses per CSV block: one block is one batch of rows in memory. Small
# blocks parse in parallel and stay in cache (1 MiB measured fastest, bench/files.py).
CSV_BLOCK_BYTES = 1 << 20
PARQUET_BATCH_ROWS = 1 << 17


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
            "targets, weights, --cluster and --keep take plain columns (numbers or text): "
            "flatten it first"
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
    and numbered by their first row."""
    start = 0
    for batch in batches:
        if batch.num_rows:
            yield Batch(_cast(batch, types or {}, source, start), start)
            start += batch.num_rows


def _kind(path: str) -> str:
    lower = path.lower()
    if path == "-":
        return "csv"
    if os.path.isdir(path):
        return "parquet-dir"
    if lower.endswith(CSV_EXTENSIONS):
        return "csv"
    if lower.endswith(PARQUET_EXTENSIONS):
        return "parquet"
    if lower.endswith(".npy"):
        return "npy"
    raise InputError(f"{path}: unsupported file type; use one of {SUPPORTED}")


def open_source(path: str, *, delimiter: str | None = None) -> Source:
    """Open ``path`` by its extension (``-`` is CSV on standard input)."""
    if path != "-" and not os.path.exists(path):
        raise InputError(f"{path}: no such file or directory; check the path")
    kind = _kind(path)
    if kind == "csv":
        return CsvSource(path, delimiter)
    if kind == "npy":
        return NpySource(path)
    return ParquetSource(path)


def check_delimiter(delimiter: str | None) -> None:
    """pyarrow splits fields on one ASCII byte; a quote or line break cannot be one."""
    if delimiter is not None and (
        len(delimiter) != 1 or not delimiter.isascii() or delimiter in '\0\r\n"'
    ):
        raise InputError(
            f"--delimiter must be one character (ASCII, not a quote, line break or NUL); "
            f"got {delimiter!r}"
        )


def _check_names(source: Source) -> None:
    names = source.columns
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"{source.name}: duplicate column names {', '.join(dupes)}; rename them")


class CsvSource(Source):
    """CSV with a header row, read in blocks by pyarrow's streaming reader.

    Line numbers in messages count the header as line 1 and assume one line per row
    (a quoted field with a line break shifts them).
    """

    def __init__(self, path: str, delimiter: str | None) -> None:
        self.path = path
        self.name = "<stdin>" if path == "-" else path
        self.reiterable = path != "-"
        lower = path.lower()
        check_delimiter(delimiter)
        self.delimiter = delimiter or ("\t" if lower.endswith((".tsv", ".tsv.gz")) else ",")
        self._stdin_reader: Any = None
        reader = self._open({}, None)
        schema = reader.schema
        self._first: Any = None  # the first block, for judging inferred text columns
        try:
            self._first = reader.read_next_batch()
        except StopIteration:
            self._first = None
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types here
            raise self._explain(exc, {}) from None
        if path == "-":
            self._stdin_reader = reader  # standard input can only be opened once
        try:
            self.columns = list(schema.names)
        except UnicodeDecodeError:
            raise InputError(
                f"{self.name} is not a text CSV file (its header is not UTF-8); "
                "check that this is the right file"
            ) from None
        self.types = {f.name: f.type for f in schema}
        _check_names(self)
        if len(self.columns) == 1 and any(d in self.columns[0] for d in ",;\t|"):
            raise InputError(
                f"{self.name}: the header has a single column {self.columns[0]!r}; "
                f"is the delimiter right? Use --delimiter (now {self.delimiter!r})"
            )

    def _options(self, types: dict[str, Any], columns: Sequence[str] | None) -> dict[str, Any]:
        import pyarrow.csv as pacsv

        return {
            "read_options": pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            "parse_options": pacsv.ParseOptions(delimiter=self.delimiter),
            # Text columns are read verbatim ("NA" is an id like any other); only an
            # empty cell is missing there (see _blank_is_null). Number columns take
            # pyarrow's missing-value tokens (NA, null, ...).
            "convert_options": pacsv.ConvertOptions(
                column_types=types,
                include_columns=list(columns) if columns else None,
                strings_can_be_null=False,
            ),
        }

    def _open(self, types: dict[str, Any], columns: Sequence[str] | None) -> Any:
        """A streaming reader (standard input, and the first block of a file)."""
        import pyarrow.csv as pacsv

        source: Any = sys.stdin.buffer if self.path == "-" else self.path
        with self._errors(types):
            return pacsv.open_csv(source, **self._options(types, columns))

    @contextlib.contextmanager
    def _errors(self, types: dict[str, Any]) -> Iterator[None]:
        """pyarrow's parse and read errors as one InputError naming the file (and the
        line, where :mod:`.diagnose` finds it)."""
        import pyarrow as pa

        try:
            yield
        except pa.ArrowInvalid as exc:
            raise self._explain(exc, types) from None
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            raise InputError(f"{self.name} could not be read: {one_line(str(exc))}") from None

    def _explain(self, exc: Exception, types: dict[str, Any]) -> InputError:
        from .diagnose import diagnose_csv

        message = one_line(str(exc))
        if "Empty CSV file" in message:
            return InputError(f"{self.name} is empty; it needs a header row and data rows")
        found = diagnose_csv(self, message, types) if self.reiterable else None
        if found is not None:
            return found
        return InputError(f"{self.name} could not be parsed as CSV: {message}")

    def batches(
        self, columns: Sequence[str], types: dict[str, Any] | None = None
    ) -> Iterator[Batch]:
        types = types or {}
        with self._errors(types):
            yield from numbered(map(_blank_is_null, self._blocks(columns, types)), self, types)

    def _blocks(self, columns: Sequence[str], types: dict[str, Any]) -> Iterator[Any]:
        """A file through pyarrow's dataset scanner, which parses blocks in parallel
        (about twice the streaming reader's speed here) and yields them in order;
        standard input through the reader opened (before the types were known) to read
        its header, its first block first."""
        import itertools

        import pyarrow.dataset as ds

        if self.path != "-":
            fmt = ds.CsvFileFormat(**self._options(types, None))
            return ds.dataset(self.path, format=fmt).to_batches(columns=list(columns))
        if self._stdin_reader is None:
            raise InputError("standard input can only be read once")
        reader, self._stdin_reader = self._stdin_reader, None
        first, self._first = self._first, None
        blocks = itertools.chain([] if first is None else [first], reader)
        return (batch.select(list(columns)) for batch in blocks)

    def where(self, row: int) -> str:
        """The line of a data row. Only ever asked on the way to an error, so it may
        re-read the file to count real lines (blank lines, line breaks in quotes)."""
        from .diagnose import line_of_row

        line = line_of_row(self, row) if self.reiterable else None
        return f"{self.name}, line {row + 2 if line is None else line}"

    def looks_numeric(self, column: str) -> bool:
        """A column pyarrow inferred as text from the first block is still numeric when
        some of its values are numbers: then one bad cell is an error to name."""
        import pyarrow as pa

        kind = self.types[column]
        if not pa.types.is_string(kind) or self._first is None:
            return _numeric_type(kind)
        from .diagnose import _is_number

        return any(
            isinstance(v, str) and _is_number(v) for v in self._first.column(column).to_pylist()
        )

    @property
    def empty(self) -> bool:
        return self._first is None or self._first.num_rows == 0


def _blank_is_null(table: Any) -> Any:
    """An empty cell of a CSV text column is a missing value; any other text, "NA"
    included, is kept as written (ids, labels)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not any(pa.types.is_string(t) for t in table.schema.types):
        return table
    arrays = [
        pc.if_else(pc.equal(c, ""), pa.scalar(None, c.type), c) if pa.types.is_string(c.type) else c
        for c in table.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, names=table.schema.names)


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
            arrays.append(pc.cast(column, want))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            if pa.types.is_integer(column.type) and pa.types.is_float64(want):
                floats, row = _exact_floats(column)
                if row is None:
                    arrays.append(floats)
                    continue
                raise InputError(
                    f"{source.where(start + row)}, column {name!r}: the integer "
                    f"{column[row].as_py()} has no exact float64 value (beyond 2^53); store it "
                    "as a float or as text, or leave the column out"
                ) from None
            from .diagnose import first_non_number

            row, value = first_non_number(column)
            raise InputError(
                f"{source.where(start + row)}, column {name!r}: {value!r} is not a number; "
                "fix the value or leave the column out"
            ) from None
    return pa.RecordBatch.from_arrays(arrays, names=table.schema.names)


def _exact_floats(column: Any) -> tuple[Any, int | None]:
    """Integers as float64, and the first row whose integer has no exact float64 value
    (None when all do). pyarrow refuses every integer beyond 2^53, but multiples of a
    power of two (2^60, ...) are exact; any other would be silently rounded."""
    import numpy as np
    import pyarrow as pa

    ints = column.fill_null(0).to_numpy(zero_copy_only=False)
    floats = ints.astype(np.float64)
    # Only values beyond 2^53 can be inexact; compare those as Python ints (float(2^63)
    # does not fit int64 again).
    large = np.flatnonzero(np.abs(floats) >= 2.0**53).tolist()
    inexact = [row for row in large if int(floats[row]) != int(ints[row])]
    if inexact:
        return None, inexact[0]
    nulls = column.is_null().to_numpy(zero_copy_only=False)
    return pa.array(floats, mask=nulls if nulls.any() else None), None


class ParquetSource(Source):
    """A Parquet file or a directory of Parquet files, streamed in batches.

    Each file is read with buffered, non-prefetching I/O: memory stays a few batches
    (~100 MiB measured on 20-column files) instead of whole row groups.
    """

    def __init__(self, path: str) -> None:
        import pyarrow as pa
        import pyarrow.dataset as ds

        self.path = self.name = path
        try:
            dataset = ds.dataset(path, format="parquet")
            schema = dataset.schema
            self.files = sorted(dataset.files)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path} could not be read as Parquet: {one_line(str(exc))}") from None
        self.columns = list(schema.names)
        self.types = {f.name: f.type for f in schema}
        if not self.columns or not self.files:
            raise InputError(f"{path} holds no Parquet data (no files or no columns)")
        _check_names(self)
        self._rows = sum(self._open(f).metadata.num_rows for f in self.files)

    def _open(self, file: str) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(file, pre_buffer=False, buffer_size=1 << 20)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{file} could not be read as Parquet: {one_line(str(exc))}") from None

    @property
    def empty(self) -> bool:
        return self._rows == 0

    @property
    def row_count(self) -> int | None:
        return int(self._rows)

    def _record_batches(self, columns: Sequence[str]) -> Iterator[Any]:
        import pyarrow as pa

        for file in self.files:
            reader = self._open(file)
            missing = [c for c in columns if c not in reader.schema_arrow.names]
            if missing:
                raise InputError(f"{file}: no column {', '.join(map(repr, missing))}")
            try:
                yield from reader.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=list(columns))
            except (pa.ArrowInvalid, OSError) as exc:
                raise InputError(f"{file} could not be read: {one_line(str(exc))}") from None


class NpySource(Source):
    """A 2-D ``.npy`` array (memory-mapped); its columns are named "0", "1", ..."""

    def __init__(self, path: str) -> None:
        import numpy as np
        import pyarrow as pa

        self.path = self.name = path
        try:
            self.array = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - numpy's header parser raises many types
            # numpy checks the magic, the header dict, the dtype (no objects without
            # pickle) and that the shape fits the file; a damaged header fails there.
            raise InputError(f"{path} could not be read as .npy: {one_line(str(exc))}") from None
        if not isinstance(self.array, np.ndarray) or self.array.ndim != 2:
            raise InputError(
                f"{path}: expected a 2-D array (rows × columns), got {np.ndim(self.array)}-D"
            )
        if self.array.dtype.kind not in "biuf" or self.array.dtype.itemsize > 8:
            raise InputError(f"{path}: expected numbers, got dtype {self.array.dtype}")
        self.columns = [str(j) for j in range(self.array.shape[1])]
        self.types = {c: pa.from_numpy_dtype(self._dtype) for c in self.columns}

    @property
    def _dtype(self) -> Any:
        import numpy as np

        # Native byte order (arrow takes no other); float16 as float32 (arrow cannot cast it).
        kind = self.array.dtype.newbyteorder("=")
        return np.dtype(np.float32) if kind == np.float16 else kind

    @property
    def empty(self) -> bool:
        return self.array.shape[0] == 0

    @property
    def row_count(self) -> int | None:
        return int(self.array.shape[0])

    def _record_batches(self, columns: Sequence[str]) -> Iterator[Any]:
        import numpy as np
        import pyarrow as pa

        index = [int(c) for c in columns]
        for start in range(0, self.array.shape[0], PARQUET_BATCH_ROWS):
            block = np.asarray(self.array[start : start + PARQUET_BATCH_ROWS][:, index])
            block = block.astype(self._dtype, copy=False)
            arrays = [pa.array(block[:, j]) for j in range(len(index))]
            yield pa.RecordBatch.from_arrays(arrays, names=list(columns))
