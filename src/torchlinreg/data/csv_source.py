"""CSV and TSV, plain or gzip, from a file or standard input (``-``), parsed by pyarrow
in blocks; parse errors are traced back to a line by :mod:`.diagnose`."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from ..errors import InputError
from .exact import EXACT_BELOW
from .options import option
from .source_base import Batch, Source, _check_names, _numeric_type, numbered, one_line

# Bytes pyarrow parses per CSV block: one block is one batch of rows in memory. Small
# blocks parse in parallel and stay in cache (1 MiB measured fastest, bench/files.py).
CSV_BLOCK_BYTES = 1 << 20
# Text pyarrow reads as an integer but that is hexadecimal, not a number here.
_HEX = r"^\s*[+-]?0[xX]"


def check_delimiter(delimiter: str | None) -> None:
    """pyarrow splits fields on one ASCII byte; a quote or line break cannot be one."""
    if delimiter is not None and (
        len(delimiter) != 1 or not delimiter.isascii() or delimiter in '\0\r\n"'
    ):
        raise InputError(
            f"{option('delimiter')} must be one character (ASCII, not a quote, line break or NUL); "
            f"got {delimiter!r}"
        )


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
                f"is the delimiter right? Use {option('delimiter')} (now {self.delimiter!r})"
            )
        self._hex_is_text()

    def _hex_is_text(self) -> None:
        """pyarrow infers hexadecimal ("0x10") as an integer; here it is text, as pandas
        reads it. The first block's integer columns are read again as text to look.
        (Standard input is read once: there pyarrow's reading stands.)"""
        import pyarrow as pa
        import pyarrow.compute as pc

        integers = [c for c, t in self.types.items() if pa.types.is_integer(t)]
        if not integers or self._first is None or not self.reiterable:
            return
        with self._errors({}):
            first = self._open({c: pa.string() for c in integers}, None).read_next_batch()
        for c in integers:
            if pc.any(pc.match_substring_regex(first.column(c), _HEX)).as_py():
                self.types[c] = pa.string()
        self._first = first

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
        import pyarrow as pa

        types = types or {}
        # Integers pyarrow would round on parsing them as float64 are read as text and
        # converted exactly (or refused) with every other source's integers: columns
        # inferred as integers, and a float column once a batch holds a value beyond
        # 2^53 (an integer too long for int64 is inferred as a float): the file is then
        # read again with that column as text, skipping the rows already given. Below 2^53
        # an integer parsed as a float is exact, so float files keep the fast path.
        text = {
            c
            for c, t in types.items()
            if pa.types.is_float64(t) and pa.types.is_integer(self.types[c])
        }
        done = 0  # rows already given
        while True:
            read = {**types, **{c: pa.string() for c in text}}
            floats = {c for c, t in read.items() if pa.types.is_float64(t)}
            with self._errors(read):
                blocks = (_blank_is_null(b, text) for b in self._blocks(columns, read))
                for batch in numbered(blocks, self, types):
                    table, start = batch.table, batch.start
                    if start + table.num_rows <= done:
                        continue
                    large = _beyond_exact(table, floats, finite=not self.reiterable)
                    if large:
                        if not self.reiterable:
                            raise InputError(
                                f"{self.name}, column {large[0]!r}: a value beyond 2^53 read "
                                "from standard input cannot be checked to be exact; "
                                "read the data from a file"
                            )
                        text.update(large)
                        break
                    if start < done:
                        table, start = table.slice(done - start), done
                    yield Batch(table, start)
                    done = start + table.num_rows
                else:
                    return

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

    def typed(self, column: str, values: Any) -> Any:
        """A column read as text (a kept column), as the number or boolean the file's
        first block shows it to be, its missing-value tokens missing; still text where
        a cell is not one (an id column with a letter, or in hexadecimal, further on)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        kind = self.types[column]
        if not pa.types.is_string(values.type) or not (
            pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
        ):
            return values
        cells = pc.utf8_trim_whitespace(_tokens_null(values))
        if pc.any(pc.match_substring_regex(cells, _HEX)).as_py():
            return values
        try:
            return pc.cast(cells, pa.float64() if pa.types.is_floating(kind) else kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return values

    @property
    def empty(self) -> bool:
        return self._first is None or self._first.num_rows == 0


def _beyond_exact(table: Any, columns: set[str], finite: bool) -> list[str]:
    """The float64 columns of ``table`` holding a value of magnitude 2^53 or more
    (infinite ones too, unless ``finite``): written as an integer, it may be rounded."""
    import numpy as np

    large = []
    for c, column in zip(table.schema.names, table.columns, strict=True):
        if c not in columns:
            continue
        values = column.to_numpy(zero_copy_only=False)
        # numpy's max and min are the fast path (a few % of parsing); a NaN or a
        # missing value (NaN here) hides the others from them, as may an infinity.
        low, high = values.min(initial=0.0), values.max(initial=0.0)
        if not np.isfinite(high - low):
            kept = values[~np.isnan(values)]
            if finite:
                kept = kept[np.isfinite(kept)]
            low, high = kept.min(initial=0.0), kept.max(initial=0.0)
        if max(high, -low) >= EXACT_BELOW:
            large.append(c)
    return large


def _blank_is_null(table: Any, numbers: Collection[str] = ()) -> Any:
    """An empty cell of a CSV text column is a missing value; any other text, "NA"
    included, is kept as written (ids, labels). In ``numbers`` (number columns read as
    text) pyarrow's missing-value tokens are missing, as in any number column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not any(pa.types.is_string(t) for t in table.schema.types):
        return table
    arrays = []
    for name, c in zip(table.schema.names, table.columns, strict=True):
        if pa.types.is_string(c.type):
            c = _tokens_null(c) if name in numbers else pc.if_else(pc.equal(c, ""), None, c)
        arrays.append(c)
    return pa.RecordBatch.from_arrays(arrays, names=table.schema.names)


def _tokens_null(column: Any) -> Any:
    """A number column read as text, pyarrow's missing-value tokens ("", "NA", ...)
    made missing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from .diagnose import null_tokens

    tokens = pa.array(sorted(null_tokens()))
    return pc.if_else(pc.is_in(column, tokens), pa.scalar(None, column.type), column)
