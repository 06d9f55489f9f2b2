"""Learning a formula from a sample of rows that holds every category.

What formulaic learns from a table's values is the categories of its categorical
factors and the state of its stateful transforms (``center``, ``scale``, ``poly``).
Where the formula has no stateful transform and each categorical factor reads a column
as it is (``g``, ``C(g)``, ``C(g, Treatment("b"))``), the first rows plus one row for
each category they lack teach it the same state as every row, for a fraction of the
cost of building every row's columns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import InputError
from .design import categorical_columns

# The first rows learned from; a table not much longer is learned from whole.
HEAD = 200
# More rows than this for the categories (a column of numbers read as categories):
# learn from every row.
MAX_EXTRA = 20_000


def sample(frame: Any, learn: Callable[[Any], Any]) -> tuple[Any, Any] | None:
    """Rows of ``frame`` (a pandas DataFrame) that teach the formula what every row
    does, and the ``FormulaSpec`` learned from them; None where only every row can
    (or the table is short). ``learn`` learns a spec from rows; its errors are left
    for the whole table to raise.

    The rows: the first ones and each value's first row in every column of text,
    categories or booleans; learned from, they tell which columns the formula reads
    as categories (``C(k)`` of integers too), whose values' first rows are added."""
    if len(frame) <= 4 * HEAD:
        return None
    text = [c for c in frame.columns if frame[c].dtype.kind not in "iufc"]
    rows = _with_levels(frame, set(range(HEAD)), text)
    if rows is None:
        return None
    try:
        first = frame.iloc[rows].reset_index(drop=True)
        spec = learn(first)
    except InputError:
        return None
    columns: set[str] = set()
    for side in ("lhs", "rhs"):
        found = categorical_columns(spec._built(first, side))
        if found is None:
            return None
        columns.update(found)
    more = _with_levels(frame, set(rows), sorted(columns - set(text)))
    if more is None:
        return None
    if len(more) == len(rows):  # every category was there
        return first, spec
    rows_frame = frame.iloc[more].reset_index(drop=True)
    return rows_frame, learn(rows_frame)


def _with_levels(frame: Any, rows: set[int], columns: list[str]) -> list[int] | None:
    """``rows`` and the first row of each value of ``columns``, in order; None past
    :data:`MAX_EXTRA` rows added."""
    for c in columns:
        rows.update(np.flatnonzero(~frame[c].duplicated().to_numpy()).tolist())
        if len(rows) > HEAD + MAX_EXTRA:
            return None
    return sorted(rows)
