"""Robust covariances on designs with a large offset: x ≈ 10⁶ with x² (κ ≈ 10⁷ after
centring, no warning). Residuals must not cancel against the intercept (the data pass
computes them in double-double) and the z rows of Q come from the shifted design."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from torchlinreg import InputError, LinearRegression

from .test_inference import exact_statistics


def offset_design(weighted: bool, noise: float = 1.0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(42)
    n = 120
    x = 1e6 + rng.uniform(0, 1000, size=n)
    X = np.c_[x, x**2]
    y = 5.0 + 2e-3 * x + 3e-9 * x**2 + noise * rng.normal(size=n) * (1 + rng.uniform(size=n))
    w = rng.uniform(0.5, 2.0, size=n) if weighted else None
    groups = rng.integers(0, 15, size=n)
    return X, y, w, groups


# noise 1e-4: the residuals are ~1e-10 of the intercept (4.5e6), so float64 residuals
# y − b − Xβ lost their digits and the pass was refused as other data.
@pytest.mark.parametrize(("weighted", "noise"), [(False, 1.0), (True, 1.0), (True, 1e-4)])
@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "HC2", "HC3", "cluster"])
def test_robust_standard_errors_on_a_large_offset_to_ten_digits(cov_type, weighted, noise) -> None:
    X, y, w, groups = offset_design(weighted, noise)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: the fit itself is fine
        model = LinearRegression().fit(X, y, sample_weight=w)
    kwargs = {"X": X, "y": y, "sample_weight": w}
    if cov_type == "cluster":
        kwargs["groups"] = groups
    s = model.summary(cov_type=cov_type, **kwargs)  # was refused as other data
    # 10 digits against the exact answer for the float64 data. With noise 1e-4 the
    # coefficients themselves are good to ~4e-10 only (κ·ε·‖y‖/‖e‖), and the standard
    # errors of a cluster sum inherit that: there the covariance is judged for the
    # model's own coefficients (the residuals it reports), apart from the solve.
    theta = np.r_[model.intercept_, model.coef_] if noise < 1 else None
    ref = exact_statistics(X, y, w, True, groups, digits=50, theta=theta)
    ours = np.array([c.std_error for c in s.coefficients])
    np.testing.assert_allclose(ours, ref["se"][cov_type], rtol=1e-10, atol=0)


def test_other_data_is_still_refused_on_a_large_offset() -> None:
    X, y, _, _ = offset_design(False)
    model = LinearRegression().fit(X, y)
    changed = y.copy()
    changed[7] += 1e-3  # a change far below the offset's digits, far above rounding
    with pytest.raises(InputError, match="not the data the model was fitted on"):
        model.summary(cov_type="HC1", X=X, y=changed)
