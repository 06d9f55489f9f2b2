"""Categories of one-hot columns: found once before fitting, replayed on new data.

A category is named by text, whatever the column holds: text as written, integers as
digits, integer-valued floats as the integer (codes 1.0-6.0, as a pandas integer column
with missing values stores them, are the categories "1"-"6"), so the same categories are
found in a CSV file, a Parquet file and a DataFrame. Real numbers are refused: they are
measurements, not categories. A missing value (null, NaN, or in a text column one of
pyarrow's tokens such as "NA") is not a category.

Order: a categorical column (pandas ``Categorical``, an Arrow dictionary) keeps its
declared order; numbers sort as numbers; text sorts as text. The first category is the
reference level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from .diagnose import null_tokens
from .options import option
from .sources import Source

# One feature per level: a 1,000-level column already makes 1,000 columns of every
# chunk (1 GiB per 131,072-row Parquet batch) and a 1,000² triangular state.
MAX_LEVELS = 1000


def _label(value: Any, column: str, numeric_text: bool, nulls: frozenset[str]) -> str | None:
    """The category a value names, or None when it is missing."""
    if isinstance(value, str):
        if value in nulls:
            return None
        if not numeric_text:
            return value
        try:
            value = float(value)  # a column of numbers that pyarrow read as text
        except ValueError:
            return value
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if not value.is_integer():
            raise InputError(
                f"{option('one-hot')} column {column!r} holds real numbers such as {value!r}; "
                "one-hot encoding is for categories (text or integer codes)"
            )
        return str(int(value))
    return str(value)


def encode(column: Any, name: str, numeric_text: bool = False) -> tuple[np.ndarray, list[Any]]:
    """``(codes, labels)``: each row's index into ``labels``, the category names (None
    for missing). Labels are computed once per distinct value, not per row.

    ``numeric_text``: the column holds numbers read as text (CSV), named as numbers."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    nulls = null_tokens() if pa.types.is_string(column.type.value_type) else frozenset()
    labels = [_label(v, name, numeric_text, nulls) for v in column.dictionary.to_pylist()]
    labels.append(None)  # the code of a null entry
    codes = column.indices.fill_null(len(labels) - 1).to_numpy(zero_copy_only=False)
    return codes.astype(np.int64, copy=False), labels


def numeric_text(source: Source, column: str) -> bool:
    """Whether a column read as text holds numbers (as the source inferred them)."""
    import pyarrow as pa

    kind = source.types[column]
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def read_types(source: Source, columns: Sequence[str]) -> dict[str, Any]:
    """How to read one-hot columns: CSV as text (so that any cell is a category), other
    sources in their own type (a Categorical keeps its declared order)."""
    import pyarrow as pa

    from .sources import CsvSource

    return {c: pa.string() for c in columns if isinstance(source, CsvSource)}


def find_categories(source: Source, columns: list[str]) -> dict[str, list[str]]:
    """The categories of each one-hot column, in a pre-pass over those columns.

    Refuses, as soon as it is known, a column with more than :data:`MAX_LEVELS`
    categories; at the end, one with fewer than 2 or more than half as many categories as
    rows (an id, not a category)."""
    return decide_categories(seen_levels(source, columns))


def seen_levels(source: Source, columns: list[str]) -> dict[str, Any]:
    """What a pass over ``source``'s one-hot columns finds: for each column the rank of
    each category (its place in a declared order, else its first appearance), whether
    the order is declared, and the rows read. Several sources' (ranks' shares) combine
    with :func:`merge_levels`."""
    import pyarrow as pa

    if not source.reiterable:
        raise InputError(
            f"{option('one-hot')} needs to read its columns before fitting, which standard input "
            "cannot do; write the data to a file first"
        )
    seen: dict[str, dict[str, int]] = {c: {} for c in columns}
    declared = {c: pa.types.is_dictionary(source.types[c]) for c in columns}
    rows = 0
    for batch in source.batches(columns, read_types(source, columns)):
        rows += batch.table.num_rows
        for c in columns:
            codes, labels = encode(batch.table.column(c), c, numeric_text(source, c))
            levels = seen[c]
            for i in np.unique(codes).tolist():
                label = labels[i]
                if label is not None:
                    rank = i if declared[c] else len(levels)
                    levels[label] = min(levels.get(label, rank), rank)
            _refuse_many(c, len(levels), rows)
    return {"levels": seen, "declared": declared, "rows": rows}


def _refuse_many(column: str, levels: int, rows: int) -> None:
    if levels > MAX_LEVELS:
        raise InputError(
            f"{option('one-hot')} column {column!r} has more than {MAX_LEVELS:,} distinct "
            f"values (seen in the first {rows:,} rows); one-hot encoding is for "
            "categories, one feature each"
        )


def merge_levels(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """:func:`seen_levels` of consecutive parts of the data, in order, as one pass over
    all of them would have found (a category keeps its lowest rank)."""
    first = parts[0]
    seen: dict[str, dict[str, int]] = {c: {} for c in first["levels"]}
    for part in parts:
        for c, levels in part["levels"].items():
            merged = seen[c]
            for label, rank in levels.items():
                if not first["declared"][c]:
                    rank = len(merged)  # appearance order, across the parts in order
                merged[label] = min(merged.get(label, rank), rank)
    rows = sum(part["rows"] for part in parts)
    for c, levels in seen.items():
        _refuse_many(c, len(levels), rows)
    return {"levels": seen, "declared": first["declared"], "rows": rows}


def decide_categories(found: dict[str, Any]) -> dict[str, list[str]]:
    """The categories of each column from what :func:`seen_levels` found, in order;
    refused if too few (< 2) or too many (more than half the rows: an id)."""
    rows, declared = found["rows"], found["declared"]
    out = {}
    for c, levels in found["levels"].items():
        if len(levels) > max(20, rows // 2):
            raise InputError(
                f"{option('one-hot')} column {c!r} has {len(levels):,} distinct values in "
                f"{rows:,} rows: it would add a feature for almost every row; it is meant for "
                "categories"
            )
        if len(levels) < 2:
            raise InputError(
                f"{option('one-hot')} column {c!r} has {len(levels)} distinct value(s); "
                "it needs at least 2"
            )
        out[c] = sorted(levels, key=_order(levels, declared[c]))
    return out


def _order(levels: dict[str, int], declared: bool) -> Any:
    if declared:
        return levels.__getitem__
    try:
        numbers = {label: float(label) for label in levels}
    except ValueError:
        return str  # text: sorted as text
    return numbers.__getitem__


def one_hot_block(
    codes: np.ndarray, labels: list[Any], categories: list[str], levels: list[str]
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """``(X, missing, unknown_row)``: 0/1 columns for ``levels`` (a reference level
    has none), the rows whose value is missing, and the first row whose category was
    not among ``categories`` (None when every one was)."""
    column = {level: j for j, level in enumerate(levels)}
    known = set(categories)
    # Per distinct value: its feature column, -1 for the reference, -2 missing, -3 unknown.
    target = np.array(
        [
            -2 if label is None else column.get(label, -1) if label in known else -3
            for label in labels
        ],
        dtype=np.int64,
    )
    where = target[codes]
    unknown = np.flatnonzero(where == -3)
    X = np.zeros((len(codes), len(levels)))
    hot = np.flatnonzero(where >= 0)
    X[hot, where[hot]] = 1.0
    return X, where == -2, int(unknown[0]) if len(unknown) else None
