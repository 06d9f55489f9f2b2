"""pyfixest as the oracle of the fixed-effects tests: ``feols`` with no singletons
removed (we keep every row) and its alternating projections run to 1e-13, so that its
own demeaning error stays far below the tests' 1e-8."""

from __future__ import annotations

import warnings
from typing import Any


def feols(df: Any, formula: str, vcov: Any, weights: str | None) -> Any:
    """``pyfixest.feols(formula, df, vcov=vcov, weights=weights)``, quietly."""
    import pyfixest as pf
    from pyfixest.demeaners import MapDemeaner

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pf.feols(
            formula, df, vcov=vcov, weights=weights, fixef_rm="none",
            demeaner=MapDemeaner(fixef_tol=1e-13),
        )  # fmt: skip
