"""Tabular sources read in bounded memory: CSV/TSV (plain or gzip), Parquet (a file, a
directory or a glob such as ``data/part-*.parquet``), NumPy ``.npy`` and standard input
(``-``).

Parsing is pyarrow's; :func:`open_source` picks the reader by extension (one module
per kind: :mod:`.csv_source`, :mod:`.parquet_source`, :mod:`.npy_source`), each a
:class:`Source` (:mod:`.source_base`) that streams record batches with their row
offsets and turns every way a file can be wrong into one
:class:`~torchlinreg.errors.InputError` that names the file (and line, when known).
The names of those modules are importable from here too.
"""

from __future__ import annotations

import glob
import os

from ..errors import InputError
from .csv_source import CsvSource, check_delimiter
from .npy_source import NpySource
from .parquet_source import ParquetSource
from .source_base import Batch, Source, _check_names, check_plain, numbered, one_line

__all__ = ["Batch", "CsvSource", "NpySource", "ParquetSource", "Source", "_check_names",
           "check_delimiter", "check_plain", "numbered", "one_line", "open_source"]  # fmt: skip

CSV_EXTENSIONS = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
PARQUET_EXTENSIONS = (".parquet", ".pq")
SUPPORTED = ", ".join(
    (*CSV_EXTENSIONS, *PARQUET_EXTENSIONS, ".npy", "a Parquet directory or glob", "-")
)


def kind_of(path: str) -> str:
    """The reader a path takes, by its extension: csv, parquet, parquet-dir or npy."""
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
    """Open ``path`` by its extension (``-`` is CSV on standard input); a path that is
    not a file but a glob pattern (``*``, ``?``, ``[``) names the Parquet files it matches."""
    if path != "-" and not os.path.exists(path):
        if glob.has_magic(path):
            return _parquet_glob(path)
        raise InputError(f"{path}: no such file or directory; check the path")
    kind = kind_of(path)
    if kind == "csv":
        return CsvSource(path, delimiter)
    if kind == "npy":
        return NpySource(path)
    return ParquetSource(path)


def _parquet_glob(pattern: str) -> Source:
    """The Parquet files a pattern matches, in sorted order."""
    files = sorted(f for f in glob.glob(pattern) if os.path.isfile(f))
    if not files:
        raise InputError(f"{pattern}: no file matches this pattern; check the path")
    other = [f for f in files if not f.lower().endswith(PARQUET_EXTENSIONS)]
    if other:
        raise InputError(
            f"{pattern} matches {other[0]}, which is not Parquet; a pattern may only "
            f"match Parquet files ({', '.join(PARQUET_EXTENSIONS)})"
        )
    return ParquetSource(pattern, files)
