"""Parquet: a file, a directory of files or a list of files (a glob's matches), streamed
in batches; the row count comes from the files' metadata, and so does a rank's share of
the row groups (:meth:`ParquetSource.share`)."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import InputError
from .source_base import BATCH_ROWS, Source, _check_names, one_line


class ParquetSource(Source):
    """A Parquet file, a directory of Parquet files or a list of them, streamed in batches.

    Each file is read with buffered, non-prefetching I/O: memory stays a few batches
    (~100 MiB measured on 20-column files) instead of whole row groups. ``files`` (sorted
    paths) replaces the discovery of ``path``'s files; ``path`` then only names them.
    """

    def __init__(self, path: str, files: Sequence[str] | None = None) -> None:
        import pyarrow as pa
        import pyarrow.dataset as ds

        self.path = self.name = path
        try:
            dataset = ds.dataset(list(files) if files else path, format="parquet")
            schema = dataset.schema
            self.files = sorted(dataset.files)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path} could not be read as Parquet: {one_line(str(exc))}") from None
        self.columns = list(schema.names)
        self.types = {f.name: f.type for f in schema}
        if not self.columns or not self.files:
            raise InputError(f"{path} holds no Parquet data (no files or no columns)")
        _check_names(self)
        # Rows of each row group of each file, from the footers (no data is read).
        self.row_groups = [self._row_groups(f) for f in self.files]
        # The row groups this source reads, per file; None: all of them (the whole data).
        self.selected: list[list[int]] | None = None
        self._rows = sum(map(sum, self.row_groups))

    def _row_groups(self, file: str) -> list[int]:
        metadata = self._open(file).metadata
        return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]

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

    @property
    def layout(self) -> list[tuple[str, list[int]]]:
        """Every file and the rows of its row groups: what the ranks must agree on."""
        return list(zip(self.files, self.row_groups, strict=True))

    def share(self, rank: int, size: int) -> ParquetSource:
        """Rank ``rank`` of ``size``'s share: a contiguous block of the row groups of the
        files in sorted order (see :func:`.shards.split`), numbered from its first row."""
        from .shards import split

        sizes = [n for groups in self.row_groups for n in groups]
        low, high = split(sizes, size)[rank]
        part = copy.copy(self)
        part.selected, index = [], 0
        for groups in self.row_groups:
            part.selected.append([i for i in range(len(groups)) if low <= index + i < high])
            index += len(groups)
        part.first_row = sum(sizes[:low])
        part._rows = sum(sizes[low:high])
        return part

    def _record_batches(self, columns: Sequence[str]) -> Iterator[Any]:
        import pyarrow as pa

        for j, file in enumerate(self.files):
            groups = None if self.selected is None else self.selected[j]
            if groups == []:
                continue  # another rank's file
            reader = self._open(file)
            missing = [c for c in columns if c not in reader.schema_arrow.names]
            if missing:
                raise InputError(f"{file}: no column {', '.join(map(repr, missing))}")
            try:
                yield from reader.iter_batches(
                    batch_size=BATCH_ROWS, row_groups=groups, columns=list(columns)
                )
            except (pa.ArrowInvalid, OSError) as exc:
                raise InputError(f"{file} could not be read: {one_line(str(exc))}") from None
