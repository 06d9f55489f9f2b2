"""Single-pass accuracy: ``partial_fit`` keeps the rows' cross products in double-double.

Oracles: the NIST StRD certified values (tests/data/nist), exact rational arithmetic
(fractions) for the Gram matrix, and the least-squares solution of the float64 data
computed at 60 digits (mpmath). Error bounds follow from the analysis in
src/torchlinreg/solvers/dd_gram.py and single_pass.py: the Gram is exact to 2⁻¹⁰³ of
‖e_j‖·‖e_k‖, and the double-double normal equations leave ≈ κ²·2⁻¹⁰⁵ (times a factor p
for the elimination's own rounding).
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from torchlinreg import AccuracyWarning, LinearRegression
from torchlinreg.solvers import dd_gram
from torchlinreg.solvers.single_pass import EPS_DD

from .test_nist import NAMES, REQUIRED, load, lre, params

EPS = float(np.finfo(np.float64).eps)


def _partial_fit(model, X, y, size, sample_weight=None):  # type: ignore[no-untyped-def]
    """Feed the rows in chunks of ``size``; returns the warnings of the last call only
    (earlier calls see too few rows for the final conditioning)."""
    last: list[warnings.WarningMessage] = []
    for i in range(0, len(y), size):
        w = None if sample_weight is None else sample_weight[i : i + size]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.partial_fit(X[i : i + size], y[i : i + size], sample_weight=w)
        last = caught
    return [c for c in last if issubclass(c.category, AccuracyWarning)]


@pytest.mark.parametrize("size", [1, 5, 7])
@pytest.mark.parametrize("name", NAMES)
def test_partial_fit_reaches_the_certified_digits(name: str, size: int) -> None:
    X, y, intercept, cert = load(name)
    model = LinearRegression(fit_intercept=intercept)
    accuracy_warnings = _partial_fit(model, X, y, size)
    assert lre(params(model, intercept), np.asarray(cert["coef"])) >= REQUIRED.get(name, 10.0)
    assert model.n_samples_seen_ == len(y)
    # Filip's estimate κ²·2⁻¹⁰⁵ ≈ 7e-13 is within the 1e-12 the estimator promises.
    assert not accuracy_warnings


def _exact_lstsq(A: np.ndarray, Y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """argmin Σ w (Y − Aθ)² of the float64 data, by the normal equations at 60 digits."""
    with mpmath.workdps(60):
        Am = mpmath.matrix([[mpmath.mpf(float(v)) for v in row] for row in A])
        AtW = Am.T * mpmath.diag([mpmath.mpf(float(v)) for v in w])
        normal = AtW * Am
        columns = []
        for y in Y.T:
            theta = mpmath.lu_solve(normal, AtW * mpmath.matrix([mpmath.mpf(float(v)) for v in y]))
            columns.append([float(v) for v in theta])
        return np.array(columns).T


@pytest.mark.parametrize("name", ["Filip", "Longley", "Wampler5"])
def test_partial_fit_is_as_accurate_as_the_double_double_bound(name: str) -> None:
    # Against the exact solution of the float64 data (not the certified values, which
    # Filip's rounded inputs cannot reach): relative error ≤ p·κ²·2⁻¹⁰⁵, or rounding.
    X, y, intercept, _ = load(name)
    model = LinearRegression(fit_intercept=intercept)
    _partial_fit(model, X, y, 5)
    A = np.column_stack([np.ones(len(y)), X]) if intercept else X
    exact = _exact_lstsq(A, y[:, None], np.ones(len(y)))[:, 0]
    bound = max(A.shape[1] * EPS_DD * model.condition_number_**2, 2 * EPS)
    assert model.refined_
    np.testing.assert_allclose(params(model, intercept), exact, rtol=bound, atol=0)


def test_weights_and_several_targets_single_pass() -> None:
    # Wampler5's design (large residual, κ ≈ 2.5e3) with random weights, zero weights
    # and a second target: the QR answer alone keeps ~7 digits here.
    X, y, _, _ = load("Wampler5")
    rng = np.random.default_rng(0)
    w = rng.uniform(0.1, 3.0, len(y))
    w[::6] = 0.0
    Y = np.column_stack([y, 1e5 * rng.standard_normal(len(y)) + X @ rng.standard_normal(5)])
    model = LinearRegression()
    assert not _partial_fit(model, X, Y, 5, sample_weight=w)
    A = np.column_stack([np.ones(len(y)), X])
    exact = _exact_lstsq(A, Y, w)
    got = np.vstack([model.intercept_, model.coef_.T])
    bound = max(A.shape[1] * EPS_DD * model.condition_number_**2, 2 * EPS)
    assert model.refined_
    np.testing.assert_allclose(got, exact, rtol=bound, atol=0)


def test_large_offset_costs_no_digits() -> None:
    # x ≈ 1e6 with x² (κ ≈ 1e5 after the shift, 1e7 before): the rows are shifted
    # exactly in double-double and the intercept shifted back in double-double.
    rng = np.random.default_rng(5)
    x = 1e6 + rng.uniform(0.0, 100.0, 400)
    X = np.column_stack([x, x**2])
    y = 3.0 - 2e-3 * x + 1e-9 * x**2 + rng.standard_normal(400)
    model = LinearRegression()
    assert not _partial_fit(model, X, y, 5)
    A = np.column_stack([np.ones(400), X])
    exact = _exact_lstsq(A, y[:, None], np.ones(400))[:, 0]
    bound = max(A.shape[1] * EPS_DD * model.condition_number_**2, 2 * EPS)
    assert model.refined_
    np.testing.assert_allclose(params(model, True), exact, rtol=bound, atol=0)


def test_partial_fit_equals_fit_on_well_conditioned_data() -> None:
    # No regression where QR alone is accurate: both agree to a few ε·κ (κ ≈ 2 here).
    rng = np.random.default_rng(1)
    X = rng.standard_normal((500, 4)) + 100.0
    Y = X @ rng.standard_normal((4, 2)) + rng.standard_normal((500, 2))
    w = rng.uniform(0.5, 2.0, 500)
    streamed = LinearRegression()
    assert not _partial_fit(streamed, X, Y, 7, sample_weight=w)
    whole = LinearRegression().fit(X, Y, sample_weight=w)
    # Norm-wise per target; the intercept carries the error of x̄ᵀβ (x̄ ≈ 100).
    tol = 100 * EPS * whole.condition_number_
    size = np.linalg.norm(whole.coef_, axis=1)
    np.testing.assert_array_less(np.abs(streamed.coef_ - whole.coef_).max(1), tol * size)
    np.testing.assert_array_less(
        np.abs(streamed.intercept_ - whole.intercept_), tol * 100 * np.abs(whole.coef_).sum(1)
    )


def test_warns_when_even_double_double_cannot_guarantee_the_digits() -> None:
    # A degree-10 polynomial on [1, 2]: κ ≈ 1e11, so κ²·2⁻¹⁰⁵ ≈ 3e-10 > 1e-12.
    x = np.linspace(1.0, 2.0, 200)
    X = np.column_stack([x**k for k in range(1, 11)])
    y = np.sin(7 * x) + np.random.default_rng(0).standard_normal(200)
    model = LinearRegression()
    caught = _partial_fit(model, X, y, 5)
    assert model.condition_number_**2 * EPS_DD > 1e-12
    assert len(caught) == 1
    assert "condition number² · 2⁻¹⁰⁵" in str(caught[0].message)


def test_warns_for_designs_too_wide_for_the_gram() -> None:
    # A Wampler-like large-residual quintic (κ ≈ 2.6e3, tan θ ≈ 1e3: QR keeps ~8 digits)
    # padded with noise columns past MAX_COLUMNS.
    rng = np.random.default_rng(2)
    x = np.linspace(0.0, 20.0, 300)
    pad = rng.standard_normal((300, dd_gram.MAX_COLUMNS - 4))
    X = np.column_stack([x**k for k in range(1, 6)] + [pad])
    y = X[:, :5].sum(1) + 1e7 * rng.standard_normal(300)
    model = LinearRegression()
    caught = _partial_fit(model, X, y, 5)
    assert X.shape[1] + 2 > dd_gram.MAX_COLUMNS
    assert not model.refined_
    assert len(caught) == 1 and "MAX_COLUMNS" in str(caught[0].message)


def test_continuing_a_fit_model_warns_instead_of_using_a_stale_gram() -> None:
    # The Gram kept by an earlier partial_fit run does not describe the rows of a model
    # fitted since by fit() (same row count, other data): it must not be used.
    X, y, _, _ = load("Wampler5")
    model = LinearRegression()
    _partial_fit(model, X, y, 7)
    model.fit(X, y[::-1].copy())
    with pytest.warns(AccuracyWarning, match="did not see one by one"):
        model.partial_fit(X[:3], y[:3])
    assert not model.refined_


@pytest.mark.parametrize("weighted", [False, True])
def test_exact_gram_is_exact_to_double_double(weighted: bool) -> None:
    # Rows spanning magnitudes 1e-3..1e9, shifted off their mean (x − x₀ inexact in
    # float64), with weights: G = Σ w e eᵀ to 2⁻¹⁰³ of ‖√w e_j‖·‖√w e_k‖ (the
    # worst case of the splitting, solvers/dd_gram.py), against rational arithmetic.
    from torchlinreg.data.chunks import validate_chunk
    from torchlinreg.solvers.state import LeastSquaresState

    rng = np.random.default_rng(3)
    n = 2 * dd_gram.ROWS + 500  # several blocks of the batched product, one padded
    X = rng.standard_normal((n, 3)) * np.array([1e-3, 1.0, 1e9]) + np.array([0.0, 1e4, 3e9])
    y = rng.standard_normal(n) * 1e3
    w = rng.uniform(0.0, 5.0, n) if weighted else np.ones(n)
    state = LeastSquaresState(3, 1)
    gram = dd_gram.DDGram(state)
    for i in range(0, n, 700):
        part = slice(i, i + 700)
        chunk = validate_chunk(X[part], y[part], w[part] if weighted else None)
        state.update_chunk(chunk)
        gram.update_chunk(chunk)
    G = gram.gram()
    assert G is not None
    shift = [0.0, *state.shift_x.tolist(), *state.shift_y.tolist()]
    rows = [
        [Fraction(v) - Fraction(c) for v, c in zip([1.0, *r, t], shift, strict=True)]
        for r, t in zip(X.tolist(), y.tolist(), strict=True)
    ]
    weights = [Fraction(v) for v in w.tolist()]
    E = np.array([[float(v) for v in r] for r in rows]) * np.sqrt(w)[:, None]
    norms = np.linalg.norm(E, axis=0)
    for j in range(5):
        for k in range(5):
            exact = sum((c * r[j] * r[k] for r, c in zip(rows, weights, strict=True)), Fraction(0))
            err = Fraction(G[0][j, k].item()) + Fraction(G[1][j, k].item()) - exact
            assert abs(float(err)) <= 2.0**-103 * norms[j] * norms[k]
