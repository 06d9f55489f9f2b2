"""Each rank's share of a data set, for the command line under ``torchrun``: no rank
reads everything, and the shares taken in rank order are the rows in file order.

- Parquet (a file, a directory, a glob): the row groups of the files in sorted order
  are split into contiguous blocks of about equal rows (a row group goes to the rank
  whose even share of the rows holds its middle row). A rank may get none: one row
  group, two ranks.
- ``.npy``: contiguous blocks of rows (the file is memory-mapped).
- CSV: read by rank 0 alone; the other ranks get no rows (:class:`NoRows`). A CSV file
  cannot be split without scanning it: a line break inside quotes makes any byte
  offset ambiguous. Parquet spreads the reading.

Each rank computes the same split from the files' metadata (the footers: a few KB per
file), with no exchange; the caller checks that every rank saw the same files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import InputError
from .csv_source import CsvSource
from .npy_source import NpySource
from .parquet_source import ParquetSource
from .source_base import Source
from .sources import kind_of, open_source


def split(sizes: Sequence[int], ranks: int) -> list[tuple[int, int]]:
    """Contiguous blocks ``[low, high)`` of ``sizes``' indices, one per rank in order:
    an item goes to the rank whose even share of the rows holds its middle row."""
    total = sum(sizes)
    owner, start = [], 0
    for n in sizes:
        middle = start + max(n - 1, 0) // 2  # of rows start .. start + n - 1
        owner.append(middle * ranks // total if total else 0)
        start += n
    return [(sum(1 for o in owner if o < r), sum(1 for o in owner if o <= r)) for r in range(ranks)]


class NoRows(Source):
    """A rank's empty share of a source another rank reads (a CSV file): the whole
    source's columns, types and numeric columns, as that rank found them, and no rows."""

    def __init__(self, described: dict[str, Any]) -> None:
        self.name = described["name"]
        self.columns = list(described["columns"])
        self.types = dict(described["types"])
        self.numeric = dict(described["numeric"])

    def _record_batches(self, columns: Sequence[str]) -> Iterator[Any]:
        return iter(())

    def looks_numeric(self, column: str) -> bool:
        return bool(self.numeric[column])

    @property
    def empty(self) -> bool:
        return True

    @property
    def row_count(self) -> int | None:
        return 0


def describe(source: Source) -> dict[str, Any]:
    """What the other ranks' :class:`NoRows` need of ``source`` (picklable)."""
    return {
        "name": source.name,
        "columns": source.columns,
        "types": source.types,
        "numeric": {c: source.looks_numeric(c) for c in source.columns},
    }


def open_share(path: str, delimiter: str | None, rank: int, ranks: int) -> Source | None:
    """Rank ``rank`` of ``ranks``'s share of the data at ``path``; None for a rank that
    reads none of a CSV file (it gets :class:`NoRows` from rank 0's description)."""
    if path == "-":
        raise InputError(
            "standard input cannot be shared between the ranks of torchrun; write the data "
            "to a file (Parquet spreads the reading over the ranks)"
        )
    if kind_of(path) == "csv" and rank != 0:
        return None  # not even opened: rank 0 reads the file, and tells its columns
    source = open_source(path, delimiter=delimiter)
    if isinstance(source, CsvSource):
        return source
    if isinstance(source, ParquetSource):
        return source.share(rank, ranks)
    assert isinstance(source, NpySource)
    n = source.array.shape[0]
    return source.rows(rank * n // ranks, (rank + 1) * n // ranks)


def layout(source: Source) -> Any:
    """What every rank must see alike for the shares to fit together."""
    if isinstance(source, ParquetSource):
        return source.layout
    if isinstance(source, NpySource):
        return list(source.array.shape)
    return None
