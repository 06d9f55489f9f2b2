"""Write record batches as CSV or Parquet, to a path or a binary stream."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import InputError

KINDS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}


class TableWriter:
    def __init__(self, target: Any, kind: str) -> None:
        self.target, self.kind = target, kind

    @staticmethod
    def kind_of(path: str) -> str:
        lower = path.lower()
        for ext, kind in KINDS.items():
            if lower.endswith(ext):
                return kind
        raise InputError(
            f"{path}: unsupported output type; use {', '.join(KINDS)} (or no -o for stdout)"
        )

    def write_all(self, batches: Iterable[Any]) -> None:
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        writer: Any = None
        try:
            for batch in batches:
                if writer is None:
                    if self.kind == "parquet":
                        writer = pq.ParquetWriter(self.target, batch.schema)
                    else:
                        delimiter = "\t" if self.kind == "tsv" else ","
                        # pyarrow quotes every header name unless told not to; only names
                        # holding a delimiter, quote or line break need it.
                        plain = not any(
                            ch in name
                            for name in batch.schema.names
                            for ch in (delimiter, '"', "\n", "\r")
                        )
                        writer = pacsv.CSVWriter(
                            self.target,
                            batch.schema,
                            write_options=pacsv.WriteOptions(
                                delimiter=delimiter,
                                quoting_style="needed",
                                quoting_header="none" if plain else "needed",
                                # One column: a missing value as an empty line would be
                                # skipped by readers (pandas, pyarrow), shifting the rows.
                                null_string="NA" if batch.num_columns == 1 else "",
                            ),
                        )
                writer.write(batch)
        finally:
            if writer is not None:
                writer.close()
