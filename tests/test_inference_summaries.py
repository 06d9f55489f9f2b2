"""Summaries: zero-weight rows are not observations, each target has its own notes,
every missing statistic says why, and the text says what its numbers are."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sm = pytest.importorskip("statsmodels.api")

from torchlinreg import LinearRegression, Ridge  # noqa: E402

from .test_inference import exact_statistics, our_tolerance  # noqa: E402


def weighted_data():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(12)
    n = 90
    X = rng.normal(size=(n, 3)) * [1, 5, 0.2] + [3, -2, 1]
    y = 1 + X @ [0.5, -0.2, 3.0] + rng.normal(size=n) * (1 + np.abs(X[:, 0]))
    w = rng.uniform(0.3, 3, size=n)
    groups = rng.integers(0, 12, size=n)
    zero = rng.random(n) < 0.2
    zero |= groups == 4  # a whole group of zero weight: not a cluster of observations
    w[zero] = 0.0
    return X, y, w, groups, ~zero


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster"])
def test_zero_weight_rows_are_not_observations(cov_type) -> None:
    """The oracle: the same fit with the zero-weight rows removed (R's lm). statsmodels'
    WLS counts them in nobs, which moves df_resid, σ, the likelihood and HC1/cluster."""
    X, y, w, groups, kept = weighted_data()
    kwargs = {} if cov_type == "nonrobust" else {"X": X, "y": y, "sample_weight": w}
    if cov_type == "cluster":
        kwargs["groups"] = groups
    s = LinearRegression().fit(X, y, sample_weight=w).summary(cov_type=cov_type, **kwargs)
    d = s.to_dict()
    cut = (X[kept], y[kept], w[kept], groups[kept])
    model = LinearRegression().fit(*cut[:3])
    ref = exact_statistics(cut[0], cut[1], cut[2], True, cut[3], digits=40)
    tol = our_tolerance(model, ref)
    sm_kept = sm.WLS(cut[1], sm.add_constant(cut[0]), weights=cut[2]).fit()
    assert d["n"] == sm_kept.nobs == kept.sum() and d["df_resid"] == sm_kept.df_resid
    assert sm.WLS(y, sm.add_constant(X), weights=w).fit().nobs == len(y)  # the difference
    np.testing.assert_allclose([c["std_error"] for c in d["coefficients"]], ref["se"][cov_type], rtol=tol)  # fmt: skip
    np.testing.assert_allclose(d["sigma"], ref["sigma"], rtol=tol)
    np.testing.assert_allclose(d["f_statistic"], ref["f"][cov_type], rtol=4 * tol)
    # ℓ = −n/2·log(RSS/n) + …: its error is n/2 times RSS's relative one.
    for key, value in (("log_likelihood", ref["llf"]), ("aic", ref["aic"]), ("bic", ref["bic"])):
        assert abs(d[key] - value) <= tol * len(y), key
    if cov_type == "cluster":
        assert d["f_df_denominator"] == len(np.unique(cut[3])) - 1  # the group of zeros is gone


def test_adding_zero_weight_rows_changes_nothing(rng) -> None:
    X = rng.normal(size=(40, 2))
    y = X @ [1.0, -1.0] + rng.normal(size=40)
    w = rng.uniform(0.5, 2, size=40)
    X0, y0 = np.r_[X, rng.normal(size=(7, 2)) * 100], np.r_[y, rng.normal(size=7) * 100]
    w0, g0 = np.r_[w, np.zeros(7)], np.r_[np.arange(40) % 6, np.full(7, 99)]
    for cov_type in ("nonrobust", "HC1", "HC3", "cluster"):
        kw = {} if cov_type == "nonrobust" else {"X": X, "y": y, "sample_weight": w}
        kw0 = {} if cov_type == "nonrobust" else {"X": X0, "y": y0, "sample_weight": w0}
        if cov_type == "cluster":
            kw["groups"], kw0["groups"] = g0[:40], g0
        a = LinearRegression().fit(X, y, sample_weight=w).summary(cov_type=cov_type, **kw)
        b = LinearRegression().fit(X0, y0, sample_weight=w0).summary(cov_type=cov_type, **kw0)
        da, db = a.to_dict(), b.to_dict()
        for key in ("n", "df_resid", "f_df_denominator"):
            assert da[key] == db[key], key
        # Both are backward-stable solves of the same problem (well conditioned here).
        for key in ("sigma", "r_squared", "f_statistic", "log_likelihood", "aic", "bic"):
            np.testing.assert_allclose(db[key], da[key], rtol=1e-12, err_msg=key)
        np.testing.assert_allclose(
            [c.std_error for c in b.coefficients], [c.std_error for c in a.coefficients], 1e-12
        )
    model = LinearRegression().fit(X0, y0, sample_weight=w0)
    new = rng.normal(size=(5, 2))
    frame = sm.WLS(y, sm.add_constant(X), weights=w).fit().get_prediction(sm.add_constant(new))
    pred = model.predict(new, interval="prediction", level=0.9)
    np.testing.assert_allclose(pred.upper, frame.summary_frame(alpha=0.1)["obs_ci_upper"], 1e-10)


def test_each_target_has_its_own_notes(rng) -> None:
    """A constant target's note (no F, likelihood) is its own, not the next target's."""
    X = rng.normal(size=(50, 2))
    fitted, flat = X @ [1.0, 2.0] + rng.normal(size=50), np.full(50, 3.0)
    for Y, constant in ((np.c_[flat, fitted], 0), (np.c_[fitted, flat], 1)):
        out = LinearRegression().fit(X, Y).summary()
        for j, s in enumerate(out):
            exact_note = any("are undefined" in note for note in s.notes)
            assert exact_note == (j == constant), (j, s.notes)
            assert (s.f_statistic is None) == (j == constant)


NULL_REASONS = {  # a null statistic and a word its note must contain
    "df_resid": "degrees of freedom", "sigma": "sigma", "adj_r_squared": "adjusted R²",
    "r_squared": "constant", "f_statistic": "F", "f_p_value": "F",
    "log_likelihood": "log-likelihood", "aic": "AIC", "bic": "BIC",
}  # fmt: skip


def degenerate_summaries():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, 2.0, -1.0] + rng.normal(size=40)
    g3 = np.arange(40) % 3  # 3 groups: 2 denominator DF for 3 slopes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield "ridge", Ridge(alpha=1.0).fit(X, y).summary()
        yield "rank deficient", LinearRegression().fit(np.c_[X, X[:, 0]], y).summary()
        yield "no residual df", LinearRegression().fit(X[:4], y[:4]).summary()
        yield "exact fit", LinearRegression().fit(X, X @ [1.0, 2.0, 3.0]).summary()
        yield "constant target", LinearRegression().fit(X, np.ones(40)).summary()
        yield (
            "few clusters",
            LinearRegression().fit(X, y).summary(cov_type="cluster", X=X, y=y, groups=g3),
        )
        lev = np.r_[X, [[50.0, 0, 0]]], np.r_[y, 1.0]
        lev_X = np.c_[lev[0], np.r_[np.zeros(40), 1.0]]  # a column only the last row has
        yield (
            "leverage 1",
            LinearRegression().fit(lev_X, lev[1]).summary(cov_type="HC3", X=lev_X, y=lev[1]),
        )


@pytest.mark.parametrize("case", [name for name, _ in degenerate_summaries()])
def test_every_null_statistic_carries_its_note(case) -> None:
    s = dict(degenerate_summaries())[case]
    d = s.to_dict()
    notes = " | ".join(d["notes"])
    missing = [k for k in NULL_REASONS if d[k] is None]
    assert missing, "the case must null something"
    for key in missing:
        assert NULL_REASONS[key] in notes, (key, notes)
    if any(c["std_error"] is None for c in d["coefficients"]):
        assert "standard errors" in notes
    text = str(s)
    if d["f_statistic"] is None:  # no test, no degrees of freedom
        assert "F-statistic: n/a\n" in text and d["f_df_denominator"] is None
    assert all(f"Note: {note}" in text for note in d["notes"])


def test_f_line_prints_the_degrees_of_freedom_it_used(rng) -> None:
    X = rng.normal(size=(200, 3))
    y = X @ [1.0, 0.0, 0.5] + rng.normal(size=200)
    g = np.arange(200) % 11
    s = LinearRegression().fit(X, y).summary(cov_type="cluster", X=X, y=y, groups=g)
    assert s.f_df_denominator == 10
    assert "on 3 and 10 DF, p-value:" in str(s)
    assert any("uses 10 denominator degrees of freedom" in note for note in s.notes)
    plain = LinearRegression().fit(X, y).summary()
    assert plain.f_df_denominator == plain.df_resid == 196
    assert "on 3 and 196 DF" in str(plain)


def test_condition_numbers_are_labelled(rng) -> None:
    """The summary's κ is the unscaled design's (statsmodels' Cond. No.); the note on
    bad conditioning quotes the fit's, after scaling columns: each says which."""
    x = 1e3 + rng.uniform(size=60)
    X = np.c_[x, x**2, x**3]
    y = X @ [1.0, 1e-3, 1e-7] + rng.normal(size=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LinearRegression().fit(X, y)
    s = model.summary()
    text = str(s)
    assert f"Condition number (design as given, unscaled): {s.condition_number:.3g}" in text
    assert s.condition_number != pytest.approx(model.condition_number_, rel=0.5)
    assert any(
        f"condition number {model.condition_number_:.2g} after scaling columns" in note
        for note in s.notes
    )


def test_f_test_with_fewer_residual_than_model_degrees_of_freedom() -> None:
    # 5 rows, 4 parameters: df_resid = 1 < df_model = 3; the classical F is defined.
    X = np.array([[1.0, 2, 4], [2, 3, 1], [3, 5, 7], [4, 4, 2], [5, 1, 1]])
    y = np.array([3.0, 5, 6, 9, 1])
    s = LinearRegression().fit(X, y).summary()
    ref = sm.OLS(y, sm.add_constant(X)).fit()
    assert (s.df_model, s.df_resid) == (3, 1)
    # The F statistic is a ratio of sums of squares of a κ ≈ 20 design: 1e-10 is loose.
    np.testing.assert_allclose(s.f_statistic, ref.fvalue, rtol=1e-10)
    np.testing.assert_allclose(s.f_p_value, ref.f_pvalue, rtol=1e-10)
