"""Fixed effects in a formula, as fixest and pyfixest write them: ``y ~ x1 + x2 | firm
+ year``. The text after a top-level ``|`` names the factor columns absorbed; the part
before it is an ordinary formula, which formulaic builds. The factors absorb the
intercept, so the model has none (formulaic's ``Intercept`` column is built, which
keeps categorical terms reduced-rank as with an intercept, then left out).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..errors import InputError

_OPEN, _CLOSE = "([{", ")]}"
_QUOTED = re.compile(r"""^(?:`([^`]+)`|Q\(\s*(['"])(.+)\2\s*\))$""")


def _top_level(text: str, char: str) -> list[int]:
    """Positions of ``char`` outside brackets and quotes."""
    depth, quote, found = 0, "", []
    for i, c in enumerate(text):
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"`":
            quote = c
        elif c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif c == char and depth == 0:
            found.append(i)
    return found


def split_absorbed(formula: str) -> tuple[str, list[str]]:
    """``(model formula, factor columns)``: the formula before a top-level ``|`` and
    the columns named after it (none without one)."""
    bars = _top_level(formula, "|")
    if not bars:
        return formula, []
    if len(bars) > 1:
        raise InputError(
            f"the formula {formula!r} has {len(bars) + 1} parts separated by '|'; write "
            "'y ~ x1 + x2 | firm + year' (one '|', the fixed effects after it)"
        )
    model, fixed = formula[: bars[0]], formula[bars[0] + 1 :]
    cuts = [-1, *_top_level(fixed, "+"), len(fixed)]
    factors = [
        _factor(formula, fixed[a + 1 : b].strip()) for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]
    if len(set(factors)) != len(factors):
        raise InputError(f"the formula {formula!r} names a fixed effect twice")
    return model.rstrip(), factors


def _factor(formula: str, term: str) -> str:
    """A fixed effect's column: a name, or one quoted as `my col` or Q("my col")."""
    quoted = _QUOTED.match(term)
    if quoted:
        return quoted.group(1) or quoted.group(3)
    if term.isidentifier():
        return term
    what = "nothing" if not term else repr(term)
    raise InputError(
        f"the formula {formula!r} has {what} where a fixed effect's column belongs "
        "(after '|': column names joined by '+', such as 'firm + year'; combine columns "
        "into one to absorb their interaction)"
    )


def factor_labels(data: Any, factors: list[str], missing: str, where: Any) -> Any:
    """The factor columns of ``data`` (a pandas DataFrame); a missing label is an
    error naming its row and column unless ``missing="drop"`` leaves the row out."""
    from .frames import as_frame

    frame = as_frame(data, factors)
    if missing == "error":
        isna = frame.isna().to_numpy()
        if isna.any():
            row = int(np.flatnonzero(isna.any(axis=1))[0])
            column = factors[int(np.flatnonzero(isna[row])[0])]
            raise InputError(
                f"{where(row)}, column {column!r}: the fixed effect's label is missing; "
                "fill it in, remove the row, or leave such rows out with missing='drop'"
            )
    return frame
