"""Influence statistics (torchlinreg.stats.influence) against statsmodels' OLSInfluence,
an exact rational oracle on longley, and the in-memory path for the one-pass summary.

Tolerances. Our statistics come from z = ã R⁻¹ of the shifted, column-scaled design,
so their relative error is a small multiple of ε·κ, κ that design's condition number
(≤ 40 for the random designs and stackloss here): ~1e-14. statsmodels takes hat values
from the pseudo-inverse of the unscaled design (error ~ε·κ_unscaled: 2e-12 for
stackloss's κ = 1.8e3) and β − β₍ᵢ₎ by subtracting two refits, each good to ε·κ·‖β‖
(absolute): relative to the largest |DFBETAS| of a column that is ≲ n·ε·κ ≈ 1e-11. So
1e-8 leaves three orders of margin on both sides, and is still far below any error of
a formula (a wrong degree of freedom moves values by 1/n ≥ 1e-3). DFBETAS entries near
zero are compared against the largest of their column (absolute tolerance 1e-8 of
it): a difference of two refits carries no relative accuracy near zero.
"""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.stats.outliers_influence import OLSInfluence

from torchlinreg import LinearRegression, Ridge
from torchlinreg.errors import InputError, NotFittedError
from torchlinreg.stats.influence import influence, influence_summary, thresholds

RTOL = 1e-8
FIELDS = {
    "leverage": "hat_matrix_diag",
    "student_resid_internal": "resid_studentized_internal",
    "student_resid_external": "resid_studentized_external",
    "cooks_distance": "cooks_distance",
    "dffits": "dffits",
    "dfbetas": "dfbetas",
}


def reference(results: object) -> dict[str, np.ndarray]:
    """statsmodels' statistics, named as ours."""
    inf = OLSInfluence(results)
    out = {}
    for ours, theirs in FIELDS.items():
        value = getattr(inf, theirs)
        out[ours] = np.asarray(value[0] if isinstance(value, tuple) else value)
    return out


def assert_matches(ours: object, ref: dict[str, np.ndarray], rtol: float = RTOL) -> None:
    for name, expected in ref.items():
        got = getattr(ours, name)
        columns = zip(got.T, expected.T, strict=True) if expected.ndim == 2 else [(got, expected)]
        for a, b in columns:  # DFBETAS column by column
            atol = rtol * np.abs(b).max()
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=name)


def design(seed: int, n: int = 80, p: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 20, p) + rng.normal(0, 5, p)
    y = X @ rng.normal(size=p) + 3 + rng.standard_t(4, size=n)  # heavy tails: outliers
    X[0] *= 6  # a high-leverage row
    return X, y


@pytest.mark.parametrize("seed, fit_intercept", [(0, True), (1, True), (2, False)])
def test_random_designs_equal_statsmodels(seed: int, fit_intercept: bool) -> None:
    X, y = design(seed)
    model = LinearRegression(fit_intercept=fit_intercept).fit(X, y)
    A = sm.add_constant(X) if fit_intercept else X
    results = sm.OLS(y, A).fit()
    ours = model.influence(X, y)
    assert_matches(ours, reference(results))
    np.testing.assert_allclose(ours.fitted, results.fittedvalues, rtol=1e-12)
    np.testing.assert_allclose(ours.resid, results.resid, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(ours.weighted_resid, ours.resid)
    assert (ours.n, ours.k) == (len(y), A.shape[1])
    assert ours.sigma == pytest.approx(np.sqrt(results.mse_resid), rel=1e-12)
    assert ours.leverage.sum() == pytest.approx(A.shape[1], rel=1e-12)  # trace of H


def test_stackloss_equals_statsmodels() -> None:
    data = sm.datasets.stackloss.load_pandas()
    X, y = data.exog.to_numpy(float), data.endog.to_numpy(float)
    model = LinearRegression().fit(data.exog, y)  # named columns
    ours = influence(model, data.exog, y)
    assert_matches(ours, reference(sm.OLS(y, sm.add_constant(X)).fit()))
    assert ours.names == ("intercept", *data.exog.columns)
    frame = ours.to_frame()
    assert list(frame.columns[-4:]) == [f"dfb_{name}" for name in ours.names]


def _solve(M: list[list[Fraction]], b: list[Fraction]) -> list[Fraction]:
    """M x = b exactly (Gauss-Jordan over the rationals)."""
    n = len(b)
    rows = [M[i][:] + [b[i]] for i in range(n)]
    for c in range(n):
        pivot = next(r for r in range(c, n) if rows[r][c] != 0)
        rows[c], rows[pivot] = rows[pivot], rows[c]
        for r in range(n):
            if r != c and rows[r][c] != 0:
                f = rows[r][c] / rows[c][c]
                rows[r] = [a - f * b_ for a, b_ in zip(rows[r], rows[c], strict=True)]
    return [rows[i][n] / rows[i][i] for i in range(n)]


def _exact_ols(A: list[list[Fraction]], y: list[Fraction]) -> tuple[list[Fraction], Fraction]:
    """β and RSS of least squares, exactly, from the normal equations."""
    p = len(A[0])
    G = [[sum(a[i] * a[j] for a in A) for j in range(p)] for i in range(p)]
    beta = _solve(G, [sum(a[i] * t for a, t in zip(A, y, strict=True)) for i in range(p)])
    rss = sum(
        (t - sum(b * v for b, v in zip(beta, a, strict=True))) ** 2
        for a, t in zip(A, y, strict=True)
    )
    return beta, Fraction(rss)


def exact_influence(X: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Every statistic from its definition, by leave-one-out refits in exact rational
    arithmetic (only the final square roots are rounded): no conditioning at all."""
    A = [[Fraction(1)] + [Fraction(float(v)) for v in row] for row in X]
    Y = [Fraction(float(v)) for v in y]
    n, p = len(A), len(A[0])
    beta, rss = _exact_ols(A, Y)
    G = [[sum(a[i] * a[j] for a in A) for j in range(p)] for i in range(p)]
    G_inv_diag = [_solve(G, [Fraction(int(i == j)) for i in range(p)])[j] for j in range(p)]
    out: dict[str, list] = {name: [] for name in FIELDS}
    s2 = rss / (n - p)
    for i in range(n):
        h = sum(a * g for a, g in zip(A[i], _solve(G, A[i]), strict=True))
        e = Y[i] - sum(b * v for b, v in zip(beta, A[i], strict=True))
        beta_i, rss_i = _exact_ols(A[:i] + A[i + 1 :], Y[:i] + Y[i + 1 :])
        s2_i = rss_i / (n - p - 1)
        internal = float(e) / np.sqrt(float(s2 * (1 - h)))
        external = float(e) / np.sqrt(float(s2_i * (1 - h)))
        out["leverage"].append(float(h))
        out["student_resid_internal"].append(internal)
        out["student_resid_external"].append(external)
        out["cooks_distance"].append(float(e * e * h / (p * s2 * (1 - h) ** 2)))
        out["dffits"].append(external * np.sqrt(float(h / (1 - h))))
        out["dfbetas"].append(
            [
                float(b - bi) / np.sqrt(float(s2_i * g))
                for b, bi, g in zip(beta, beta_i, G_inv_diag, strict=True)
            ]
        )
    return {name: np.asarray(values) for name, values in out.items()}


def test_longley_equals_exact_leave_one_out() -> None:
    """Longley's design has κ ≈ 4.9e9 as given; shifted and column-scaled, as the state
    holds it, κ ≈ 115 (``condition_number_``), so ours should carry ~1e-13: the exact
    oracle tests that at 1e-10 (the double-double z rows are not even needed).
    statsmodels works on the unscaled design: its errors may reach ε·κ ≈ 1e-6, which is
    the tolerance it is held to here (it does far better: ~1e-10)."""
    data = sm.datasets.longley.load_pandas()
    X, y = data.exog.to_numpy(float), data.endog.to_numpy(float)
    model = LinearRegression().fit(X, y)
    ours = model.influence(X, y)
    assert model.condition_number_ < 200
    assert_matches(ours, exact_influence(X, y), rtol=1e-10)
    assert_matches(ours, reference(sm.OLS(y, sm.add_constant(X)).fit()), rtol=1e-6)


def weighted_data(seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X, y = design(seed, n=60, p=3)
    w = np.random.default_rng(seed).uniform(0.1, 5, len(y))
    return X, y, w


def test_weighted_equals_whitened_ols_and_gaussian_glm() -> None:
    """A weighted fit is OLS on √w·[1, X], √w·y: statsmodels' OLSInfluence of that fit
    is the reference for every statistic; its GLM influence of a Gaussian GLM with
    ``var_weights`` (hat values, internally studentized residuals, Cook's distance)
    must agree too. (OLSInfluence of a WLS result is not a weighted influence: it
    mixes √w-weighted and unweighted quantities and refits without the weights.)"""
    X, y, w = weighted_data()
    model = LinearRegression().fit(X, y, sample_weight=w)
    ours = model.influence(X, y, sample_weight=w)
    A = sm.add_constant(X)
    sw = np.sqrt(w)
    assert_matches(ours, reference(sm.OLS(sw * y, sw[:, None] * A).fit()))
    glm = sm.GLM(y, A, family=sm.families.Gaussian(), var_weights=w).fit().get_influence()
    glm_ref = {
        "leverage": glm.hat_matrix_diag,
        "student_resid_internal": glm.resid_studentized,
        "cooks_distance": glm.cooks_distance[0],
    }
    assert_matches(ours, glm_ref)
    wls = sm.WLS(y, A, weights=w).fit()
    np.testing.assert_allclose(ours.resid, wls.resid, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.weighted_resid, sw * wls.resid, rtol=1e-9, atol=1e-12)
    assert ours.sigma == pytest.approx(np.sqrt(wls.mse_resid), rel=1e-12)


def test_zero_weight_rows_are_not_observations() -> None:
    X, y, w = weighted_data(4)
    w[[3, 10, 11]] = 0.0
    model = LinearRegression().fit(X, y, sample_weight=w)
    ours = model.influence(X, y, sample_weight=w)
    keep = w > 0
    sw = np.sqrt(w[keep])
    A = sm.add_constant(X[keep])
    ref = reference(sm.OLS(sw * y[keep], sw[:, None] * A).fit())
    kept = {name: getattr(ours, name)[keep] for name in FIELDS}
    assert_matches(SimpleNamespace(**kept), ref)
    assert ours.n == keep.sum()
    zero = ~keep
    np.testing.assert_array_equal(ours.leverage[zero], 0.0)
    np.testing.assert_array_equal(ours.weighted_resid[zero], 0.0)
    for name in ("student_resid_internal", "student_resid_external", "cooks_distance", "dffits"):
        assert np.isnan(getattr(ours, name)[zero]).all(), name
    assert np.isnan(ours.dfbetas[zero]).all()
    # Their response residuals are still y − ŷ (a prediction error).
    np.testing.assert_allclose(ours.resid[zero], y[zero] - model.predict(X[zero]), rtol=1e-12)


# --- The one-pass summary against the in-memory statistics -----------------------------


def chunks(X: np.ndarray, y: np.ndarray, size: int, w: np.ndarray | None = None) -> list:
    cuts = range(0, len(y), size)
    if w is None:
        return [(X[s : s + size], y[s : s + size]) for s in cuts]
    return [(X[s : s + size], y[s : s + size], w[s : s + size]) for s in cuts]


def expected_counts(inf: object) -> tuple[dict[str, int], np.ndarray]:
    """The counts from the in-memory arrays, each threshold written out."""
    n, k = inf.n, inf.k
    t = np.abs(inf.student_resid_external)
    over = np.abs(inf.dfbetas) > 2 / np.sqrt(n)
    counts = {
        "leverage": int((inf.leverage > 2 * k / n).sum()),
        "student_resid_external_2": int((t > 2).sum()),
        "student_resid_external_3": int((t > 3).sum()),
        "cooks_distance": int((inf.cooks_distance > 4 / n).sum()),
        "dffits": int((np.abs(inf.dffits) > 2 * np.sqrt(k / n)).sum()),
        "dfbetas": int(over.any(1).sum()),
    }
    return counts, over.sum(0)


@pytest.fixture(scope="module")
def big() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 30_000
    X = rng.normal(size=(n, 5))
    y = X @ rng.normal(size=5) + rng.standard_t(3, size=n)
    w = rng.uniform(0.2, 4, n)
    w[rng.choice(n, 500, replace=False)] = 0.0
    return X, y, w


@pytest.mark.parametrize("weighted", [False, True])
def test_stream_equals_in_memory(big: tuple, weighted: bool) -> None:
    X, y, w = big
    w = w if weighted else None
    model = LinearRegression().fit_chunks(chunks(X, y, 7_001, w))
    inf = model.influence(X, y, sample_weight=w)
    summary = model.influence_summary(chunks(X, y, 4_999, w), top_k=25, sample_size=1_000, bins=40)
    observed = np.ones(len(y), bool) if w is None else w > 0
    assert (summary.n, summary.n_rows, summary.k) == (observed.sum(), len(y), 6)
    assert summary.sigma == pytest.approx(inf.sigma, rel=1e-14)
    # The top rows: exactly the largest Cook's distances, with every statistic.
    order = np.argsort(-np.nan_to_num(inf.cooks_distance, nan=-1), kind="stable")[:25]
    np.testing.assert_array_equal(summary.top.row, order)
    for name in ("fitted", "resid", "leverage", "student_resid_external", "cooks_distance"):
        np.testing.assert_allclose(
            getattr(summary.top, name), getattr(inf, name)[order], rtol=1e-12
        )
    np.testing.assert_allclose(summary.top.dfbetas, inf.dfbetas[order], rtol=1e-12)
    counts, per_coef = expected_counts(inf)
    assert summary.counts == counts
    np.testing.assert_array_equal(summary.dfbetas_counts, per_coef)
    assert summary.thresholds == thresholds(inf.n, inf.k)
    # The sample: observations only, their statistics as in memory.
    rows = summary.sample.row
    assert len(rows) == 1_000 and len(np.unique(rows)) == 1_000 and observed[rows].all()
    np.testing.assert_allclose(summary.sample.leverage, inf.leverage[rows], rtol=1e-12)
    np.testing.assert_allclose(
        summary.sample.student_resid_internal, inf.student_resid_internal[rows], rtol=1e-12
    )
    check_bins(summary.bins, inf, observed)


def check_bins(bins: object, inf: object, observed: np.ndarray) -> None:
    """Exact per-bin aggregates: recompute them from the in-memory arrays."""
    f = inf.fitted[observed]
    r = inf.weighted_resid[observed]
    s = np.sqrt(np.abs(inf.student_resid_internal[observed]))
    assert bins.count.sum() == observed.sum()
    assert bins.edges[0] <= f.min() and f.max() < bins.edges[-1]
    assert 20 <= len(bins.count) <= 40 and len(np.unique(np.diff(bins.edges))) == 1
    index = np.searchsorted(bins.edges, f, side="right") - 1
    np.testing.assert_array_equal(np.bincount(index, minlength=len(bins.count)), bins.count)
    for b in np.flatnonzero(bins.count):
        sel = index == b
        assert bins.resid_mean[b] == pytest.approx(r[sel].mean(), rel=1e-9, abs=1e-12)
        assert bins.resid_std[b] == pytest.approx(r[sel].std(), rel=1e-9, abs=1e-12)
        assert bins.scale_mean[b] == pytest.approx(s[sel].mean(), rel=1e-9)
        assert bins.scale_std[b] == pytest.approx(s[sel].std(), rel=1e-9, abs=1e-12)
        assert bins.fitted_mean[b] == pytest.approx(f[sel].mean(), rel=1e-12)


def test_summary_independent_of_chunking_and_seeded(big: tuple) -> None:
    X, y, _ = big
    model = LinearRegression().fit(X, y)
    arrays = model.influence_summary((X, y), sample_size=300, random_state=5)
    streamed = model.influence_summary(
        lambda: iter(chunks(X, y, 333)), sample_size=300, random_state=5
    )
    np.testing.assert_array_equal(arrays.sample.row, streamed.sample.row)
    np.testing.assert_array_equal(arrays.bins.edges, streamed.bins.edges)
    np.testing.assert_array_equal(arrays.bins.count, streamed.bins.count)
    np.testing.assert_array_equal(arrays.top.row, streamed.top.row)
    other = model.influence_summary((X, y), sample_size=300, random_state=6)
    assert not np.array_equal(other.sample.row, arrays.sample.row)
    assert len(arrays.sample.row) == 300 and not arrays.qq.exact
    # Uniform: the sample's mean row index is that of 0..n−1 within 4 standard errors.
    n = len(y)
    assert abs(arrays.sample.row.mean() - (n - 1) / 2) < 4 * n / np.sqrt(12 * 300)


def test_small_data_sample_and_qq_are_exact() -> None:
    X, y = design(9, n=50)
    model = LinearRegression().fit(X, y)
    inf = model.influence(X, y)
    summary = influence_summary(model, (X, y), sample_size=2000)
    np.testing.assert_array_equal(summary.sample.row, np.arange(50))
    assert summary.qq.exact
    np.testing.assert_allclose(summary.qq.sample, np.sort(inf.student_resid_internal), rtol=1e-12)
    ranks = (np.arange(1, 51) - 0.5) / 50  # R's ppoints for n > 10
    from scipy import stats

    np.testing.assert_allclose(summary.qq.theoretical, stats.norm.ppf(ranks), rtol=1e-12)
    np.testing.assert_array_equal(inf.student_resid_internal[summary.qq.row], summary.qq.sample)


# --- Bad input ---------------------------------------------------------------------------


def one_line(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_bad_input_one_line_errors() -> None:
    import pandas as pd

    X, y = design(11, n=40, p=3)
    with pytest.raises(NotFittedError):
        LinearRegression().influence(X, y)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = LinearRegression().fit(frame, y)
    with pytest.raises(InputError, match="feature names") as e:
        model.influence(frame.rename(columns={"c": "d"}), y)
    one_line(e)
    plain = LinearRegression().fit(X, y)
    with pytest.raises(InputError, match="2 features") as e:
        plain.influence(X[:, :2], y)
    one_line(e)
    with pytest.raises(InputError) as e:
        plain.influence(X, y[:-1])
    one_line(e)
    with pytest.raises(InputError, match="top_k") as e:
        plain.influence_summary((X, y), top_k=0)
    one_line(e)
    with pytest.raises(InputError, match="not the data") as e:
        plain.influence(X, y + 1.0)
    one_line(e)
    with pytest.raises(InputError, match="paired") as e:
        plain.influence(X, y[::-1].copy())
    one_line(e)
    with pytest.raises(InputError, match="fitted on 40 rows") as e:
        plain.influence_summary(chunks(X, y, 7)[:-1])
    one_line(e)
    with pytest.raises(InputError, match="given twice"):
        plain.influence_summary((X, y, np.ones(40)), sample_weight=np.ones(40))


def test_refused_models() -> None:
    X, y = design(12, n=40, p=3)
    with pytest.raises(InputError, match="penalty"):
        Ridge(alpha=1.0).fit(X, y).influence(X, y)
    Y = np.column_stack([y, y])
    with pytest.raises(InputError, match="one target"):
        LinearRegression().fit(X, Y).influence(X, Y)
    Xd = np.column_stack([X, X[:, 0] + X[:, 1]])
    with pytest.warns(UserWarning):
        deficient = LinearRegression().fit(Xd, y)
    with pytest.raises(InputError, match="rank deficient"):
        deficient.influence(Xd, y)
