"""What the fixed-effects command-line tests share: a firm × year panel whose last
rows bring firms the first batches never saw, and the check of a JSON report's
coefficients against the library's in-memory fit."""

from __future__ import annotations

from typing import Any

import numpy as np


def firm_panel(seed: int, n: int) -> tuple[Any, np.ndarray, np.random.Generator]:
    """(frame with firm, year and x1; the firm codes; the generator, for the caller's
    own columns). Firms 40–44 appear only in the last 50 rows."""
    import pandas as pd  # the tests that use it skip without pandas

    rng = np.random.default_rng(seed)
    firm = rng.integers(0, 40, n)
    firm[n - 50 :] = 40 + rng.integers(0, 5, 50)
    df = pd.DataFrame({"firm": [f"f{i:02d}" for i in firm], "year": rng.integers(2000, 2008, n)})
    df["x1"] = rng.normal(size=n) + 0.05 * firm
    return df, firm, rng


def assert_coefficients_match(got: dict[str, Any], ref: Any, summary: Any, rtol: float) -> None:
    """A report's summary (``report["summary"][0]``): estimates and standard errors
    equal to the fitted ``ref`` and its ``summary`` to ``rtol``."""
    coefficients = got["coefficients"]
    np.testing.assert_allclose([c["estimate"] for c in coefficients], ref.coef_, rtol=rtol)
    np.testing.assert_allclose(
        [c["std_error"] for c in coefficients],
        [c.std_error for c in summary.coefficients],
        rtol=rtol,
    )
