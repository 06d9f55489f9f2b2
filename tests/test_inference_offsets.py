"""Robust covariances on designs with a large offset: x ≈ 10⁶ or 10⁷ with x² (κ up to
1.7e7 after centring, no warning), against the exact statistics of the float64 data.

Where digits go and what keeps them (stats/meat.py): residuals cancel against the
intercept (double-double); the model's float64 coefficients are not the exact solution
(rounding θ alone moves the residuals by ε·Σ|aⱼθⱼ|, 3e-6 of them at x ≈ 10⁷), so the
pass projects them onto the complement of the column space, which is what the
least-squares residuals are; z rows from R⁻¹ carry ε·κ (3.7e-9 at κ = 1.7e7), so they are
refined in double-double and the meat is taken relative to S = Σ zᵀz; the intercept row
of the covariance is carried back from the shifted coordinates in double-double.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

from torchlinreg import InputError, LinearRegression

from .test_inference import exact_statistics

COV_TYPES = ["HC0", "HC1", "HC2", "HC3", "cluster"]


def offset_design(weighted: bool, noise: float = 1.0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(42)
    n = 120
    x = 1e6 + rng.uniform(0, 1000, size=n)
    X = np.c_[x, x**2]
    y = 5.0 + 2e-3 * x + 3e-9 * x**2 + noise * rng.normal(size=n) * (1 + rng.uniform(size=n))
    w = rng.uniform(0.5, 2.0, size=n) if weighted else None
    groups = rng.integers(0, 15, size=n)
    return X, y, w, groups


def narrow_design(offset: float, weighted: bool):  # type: ignore[no-untyped-def]
    """x = offset + U(0, 10), X = [x, x²]: κ 1.7e6 (offset 1e6) and 1.6e7 (1e7)."""
    rng = np.random.default_rng(3)
    n = 60
    x = offset + rng.uniform(0, 10, n)
    X = np.c_[x, x**2]
    y = 5 + 2 * x - 1e-7 * x**2 + rng.normal(size=n) * (1 + rng.uniform(0, 3, n))
    w = rng.uniform(0.5, 2, n) if weighted else None
    return X, y, w, rng.integers(0, 10, n)


@functools.cache
def narrow_reference(offset: float, weighted: bool) -> dict:  # type: ignore[type-arg]
    X, y, w, groups = narrow_design(offset, weighted)
    return exact_statistics(X, y, w, True, groups, digits=50)


def robust_se(model, cov_type, X, y, w, groups):  # type: ignore[no-untyped-def]
    kwargs = {"X": X, "y": y, "sample_weight": w}
    if cov_type == "cluster":
        kwargs["groups"] = groups
    s = model.summary(cov_type=cov_type, **kwargs)
    return np.array([c.std_error for c in s.coefficients])


def fit_quietly(X, y, w):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: the fit itself is fine
        return LinearRegression().fit(X, y, sample_weight=w)


# noise 1e-4: the residuals are ~1e-10 of the intercept (4.5e6), so float64 residuals
# y − b − Xβ lost their digits and the pass was refused as other data; the model's
# coefficients are good to ~4e-10 only (κ·ε·‖y‖/‖e‖), which the projection removes.
@pytest.mark.parametrize(("weighted", "noise"), [(False, 1.0), (True, 1.0), (True, 1e-4)])
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_robust_standard_errors_on_a_large_offset_to_ten_digits(cov_type, weighted, noise) -> None:
    X, y, w, groups = offset_design(weighted, noise)
    model = fit_quietly(X, y, w)
    ours = robust_se(model, cov_type, X, y, w, groups)  # was refused as other data
    ref = exact_statistics(X, y, w, True, groups, digits=50)
    np.testing.assert_allclose(ours, ref["se"][cov_type], rtol=1e-10, atol=0)


# Before: 1.9e-8 (HC0, offset 1e6) to 8e-5 (cluster, weighted, offset 1e7) — the
# rounding of θ to float64 alone moves these residuals by up to 1.4e-4 (1e7).
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("offset", [1e6, 1e7])
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_robust_standard_errors_on_a_narrow_large_offset_to_ten_digits(
    cov_type, offset, weighted
) -> None:
    X, y, w, groups = narrow_design(offset, weighted)
    model = fit_quietly(X, y, w)
    assert model.condition_number_ > 1e6  # the hard case, yet no warning is due
    ours = robust_se(model, cov_type, X, y, w, groups)
    ref = narrow_reference(offset, weighted)
    np.testing.assert_allclose(ours, ref["se"][cov_type], rtol=1e-10, atol=0)


def test_other_data_is_still_refused_on_a_large_offset() -> None:
    X, y, _, _ = offset_design(False)
    model = LinearRegression().fit(X, y)
    changed = y.copy()
    changed[7] += 1e-3  # a change far below the offset's digits, far above rounding
    with pytest.raises(InputError, match="not the data the model was fitted on"):
        model.summary(cov_type="HC1", X=X, y=changed)
