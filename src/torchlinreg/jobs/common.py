"""What the jobs share: opening a data file, and the coefficient table as reports show
it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.sources import Source, open_source
from ..errors import InputError


def open_data(path: str, delimiter: str | None) -> Source:
    """The source at ``path``, refused when it holds no data rows."""
    source = open_source(path, delimiter=delimiter)
    if source.empty:
        raise InputError(f"{source.name} has a header but no data rows")
    return source


def coefficients(
    coef: Any, intercept: Any, features: Sequence[str], targets: Sequence[str]
) -> dict[str, dict[str, float]]:
    """``{target: {"intercept": b, feature: w, ...}}`` from coefficients shaped (p,) or
    (k, p) and intercepts shaped () or (k,)."""
    coef, intercept = np.atleast_2d(coef), np.atleast_1d(intercept)
    return {
        t: {
            "intercept": float(intercept[j]),
            **{f: float(coef[j, i]) for i, f in enumerate(features)},
        }
        for j, t in enumerate(targets)
    }
