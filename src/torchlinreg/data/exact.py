"""Integers to float64 exactly or not at all.

float64 holds every integer up to 2^53, and beyond that only multiples of a power of two
(2^60 is exact, 2^53 + 1 becomes 2^53). A silently rounded value is a wrong number, so
every way data comes in (CSV, Parquet, ``.npy``, tables, arrays) converts integers
through :func:`first_inexact`, and its caller refuses the value it finds, naming it.
Text written as a decimal fraction or with an exponent ("1.5", "1e20") is a float by
its own choice and is rounded as floats are; text written as an integer is an integer.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

# Below this magnitude every integer is exact in float64.
EXACT_BELOW = 2.0**53
_INTEGER_TEXT = re.compile(r"\s*[+-]?\d+\s*")


def first_inexact(ints: np.ndarray) -> int | None:
    """The flat index of the first integer of ``ints`` that float64 cannot hold
    exactly, or None when all convert exactly."""
    if ints.dtype.kind not in "iu" or ints.dtype.itemsize < 8:
        return None  # 32-bit integers and smaller are all exact
    flat = ints.reshape(-1)
    floats = flat.astype(np.float64)
    large = np.flatnonzero(np.abs(floats) >= EXACT_BELOW)
    if large.size == 0:
        return None
    big, original = floats[large], flat[large]
    # A value rounded up to the type's bound (2^63 for int64, 2^64 for uint64) does not
    # convert back; any value that does must give back the integer it came from.
    beyond = big >= 2.0 ** (ints.dtype.itemsize * 8 - (ints.dtype.kind == "i"))
    back = np.where(beyond, 0, big).astype(ints.dtype)
    inexact = np.flatnonzero(beyond | (back != original))
    return int(large[inexact[0]]) if inexact.size else None


def exact_float64(column: Any) -> tuple[Any, int | None]:
    """An arrow column of integers, or of text holding numbers, as float64, and the
    first row whose integer has no exact float64 value (the array is None then).

    Text that is not a number raises ``pyarrow.ArrowInvalid`` (the caller names it)."""
    import pyarrow as pa

    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return _text_floats(column)
    nulls = column.is_null().to_numpy(zero_copy_only=False)
    ints = column.fill_null(0).to_numpy(zero_copy_only=False)
    row = first_inexact(ints)
    if row is not None:
        return None, row
    return pa.array(ints.astype(np.float64), mask=nulls if nulls.any() else None), None


def _text_floats(column: Any) -> tuple[Any, int | None]:
    """Numbers written as text, as float64: spaces around a number are trimmed (as the
    CSV reader does for number columns), hexadecimal ("0x10") is not a number, and an
    integer beyond 2^53 must be exact. Parsing as float64 is exact below 2^53, so only
    the values beyond are looked at again as integers."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        floats = pc.cast(column, pa.float64())
    except pa.ArrowInvalid:
        column = pc.utf8_trim_whitespace(column)
        floats = pc.cast(column, pa.float64())
    values = floats.fill_null(0).to_numpy(zero_copy_only=False)
    large = np.flatnonzero(np.abs(values) >= EXACT_BELOW)
    if large.size == 0:
        return floats, None
    try:  # the common case (ids written as integers): all checked at once
        ints = pc.cast(column.take(pa.array(large)), pa.int64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:  # fractions, exponents or integers beyond int64 among them
        texts = ((row, column[row].as_py()) for row in large.tolist())
        inexact = next(
            (r for r, t in texts if _INTEGER_TEXT.fullmatch(t) and not _equal(t, values[r])),
            None,
        )
        return (None, inexact) if inexact is not None else (floats, None)
    row = first_inexact(ints)
    return (None, int(large[row])) if row is not None else (floats, None)


def _equal(integer: str, value: float) -> bool:
    try:  # an integer of thousands of digits is inf, or beyond int()'s digit limit
        return bool(np.isfinite(value)) and int(integer) == int(value)
    except ValueError:
        return False
