"""HAC, two-way cluster and CRV3 covariances, use_t and the small-sample factor:
equal to statsmodels and pyfixest (1e-8 relative: each side's covariance is a sandwich
of well-conditioned matrices, κ(design) < 10 here, so both are good to ~1e-13), and to
Stata's printed numbers shipped with statsmodels' tests (within their printed digits);
streamed = in memory; kept at fit time and in the model file; bad input refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats import sandwich_covariance as sw

import torchlinreg as tl
from torchlinreg.errors import InputError

RTOL = 1e-8


def _data(n=240, seed=0, weighted=False):
    """MA(3), heteroskedastic errors with effects of both cluster labels a and b (so that
    the two-way covariance is positive definite, as it is where clustering matters)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 15, n)
    b = rng.integers(0, 11, n)
    X = rng.normal(size=(n, 3)) + np.c_[rng.normal(size=15)[a], rng.normal(size=11)[b], 0 * a]
    e = np.convolve(rng.normal(size=n + 3), [1, 0.6, 0.3, 0.2], "valid")  # MA(3) errors
    e += 2 * rng.normal(size=15)[a] + 2 * rng.normal(size=11)[b]
    y = X @ [1.0, -2.0, 0.5] + 0.3 + e * (1 + np.abs(X[:, 0]))
    w = rng.uniform(0.5, 2.0, n) if weighted else None
    return X, y, a, b, w


def _oracle(X, y, w=None):
    exog = sm.add_constant(X)
    return sm.OLS(y, exog) if w is None else sm.WLS(y, exog, weights=w)


def _close(actual, expected, rtol=RTOL):
    expected = np.asarray(expected)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * np.abs(expected).max())


def _clip(V):
    """V with negative eigenvalues set to 0 where it has any (V itself otherwise)."""
    vals, vecs = np.linalg.eigh(V)
    return V if vals[0] >= 0 else (vecs * np.maximum(vals, 0)) @ vecs.T


@pytest.mark.parametrize("lags", [0, 1, 4, 17])
@pytest.mark.parametrize("weighted", [False, True])
def test_hac_equals_statsmodels(lags, weighted):
    X, y, _, _, w = _data(weighted=weighted)
    m = tl.LinearRegression().fit(X, y, sample_weight=w)
    for correction in (False, True):
        s = m.summary(cov_type="HAC", lags=lags, X=X, y=y, sample_weight=w, small_sample=correction)
        o = _oracle(X, y, w).fit(
            cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": correction}
        )
        _close(s.cov, o.cov_params())
        _close([c.p_value for c in s.coefficients], o.pvalues)  # normal, as statsmodels
    assert f"{lags} lags" in " ".join(s.notes)


def test_hac_automatic_lag_and_use_t():
    X, y, _, _, _ = _data(n=500)
    m = tl.LinearRegression().fit(X, y)
    s = m.summary(cov_type="HAC", X=X, y=y, use_t=True)
    res = _oracle(X, y).fit()
    _close(s.cov, sw.cov_hac(res, nlags=None, use_correction=False))  # ⌊4(n/100)^(2/9)⌋ = 5
    assert "with 5 lags" in " ".join(s.notes)
    o = _oracle(X, y).fit(cov_type="HAC", cov_kwds={"maxlags": 5}, use_t=True)
    _close([c.p_value for c in s.coefficients], o.pvalues)
    _close([c.ci_lower for c in s.coefficients], o.conf_int()[:, 0])
    assert s.df_inference == 500 - 4 and s.use_t
    assert "P>|t|" in str(s)


def test_hac_stata_newey_macro():
    """Stata's ivreg2 ..., robust bw(5) small on statsmodels' macrodata (4 lags, n/(n−k),
    t(n−k)), printed to ~14 digits."""
    from statsmodels.datasets import macrodata
    from statsmodels.regression.tests.results import results_macro_ols_robust as stata

    d = macrodata.load_pandas().data
    g_gdp = 400 * np.diff(np.log(d["realgdp"].to_numpy()))
    g_inv = 400 * np.diff(np.log(d["realinv"].to_numpy()))
    X = np.c_[g_gdp, d["realint"].to_numpy()[:-1]]
    m = tl.LinearRegression().fit(X, g_inv)
    s = m.summary(cov_type="HAC", lags=4, X=X, y=g_inv, small_sample=True, use_t=True)
    ref = stata.results_ivhac4_small
    order = [1, 2, 0]  # Stata: g_realgdp, L.realint, _cons
    cov = s.cov[np.ix_(order, order)]
    np.testing.assert_allclose(cov, ref.cov, rtol=1e-10)
    table = ref.params_table
    np.testing.assert_allclose(
        [s.coefficients[i].std_error for i in order], table[:, 1], rtol=1e-10
    )
    np.testing.assert_allclose([s.coefficients[i].p_value for i in order], table[:, 3], rtol=1e-8)
    np.testing.assert_allclose([s.coefficients[i].ci_lower for i in order], table[:, 4], rtol=1e-10)


def test_hac_streamed_carries_lags_across_chunks():
    """Chunks of 7 rows with 10 lags: every lag product crosses chunk boundaries."""
    from torchlinreg.data.chunks import validate_chunk
    from torchlinreg.stats.inference import model_meat, model_summaries

    X, y, _, _, w = _data(n=150, weighted=True)
    m = tl.LinearRegression().fit(X, y, sample_weight=w)
    whole = m.summary(cov_type="HAC", lags=10, X=X, y=y, sample_weight=w)
    pairs = [
        (validate_chunk(X[i : i + 7], y[i : i + 7], w[i : i + 7], whole=False), None)
        for i in range(0, 150, 7)
    ]
    meat = model_meat(m, "HAC", pairs, lags=10)
    (streamed,) = model_summaries(m, cov_type="HAC", meat=meat)
    _close(streamed.cov, whole.cov, 1e-12)


def test_hac_fit_time_streamed_and_model_file(tmp_path):
    X, y, _, _, _ = _data(n=300)
    chunks = [(X[i : i + 50], y[i : i + 50]) for i in range(0, 300, 50)]
    m = tl.LinearRegression(cov_type="HAC").fit_chunks(chunks)
    expected = tl.LinearRegression().fit(X, y).summary(cov_type="HAC", X=X, y=y)
    _close(m.summary().cov, expected.cov, 1e-12)
    path = tmp_path / "hac.tlr"
    tl.save_model(path, m)
    loaded = tl.load_model(path).estimator
    _close(loaded.summary(small_sample=True).cov, m.summary(small_sample=True).cov, 1e-15)
    with pytest.raises(InputError, match="computed with 5 lags"):
        loaded.summary(lags=2)


@pytest.mark.parametrize("weighted", [False, True])
def test_two_way_cluster_equals_statsmodels(weighted):
    X, y, a, b, w = _data(weighted=weighted)
    m = tl.LinearRegression().fit(X, y, sample_weight=w)
    s = m.summary(cov_type="cluster", X=X, y=y, sample_weight=w, groups=(a, b), use_t=True)
    o = _oracle(X, y, w).fit(cov_type="cluster", cov_kwds={"groups": np.c_[a, b]}, use_t=True)
    assert not any("semi-definite" in note for note in s.notes)
    _close(s.cov, o.cov_params())
    _close([c.p_value for c in s.coefficients], o.pvalues)  # t(min(G) − 1)
    assert s.df_inference == min(len(set(a)), len(set(b))) - 1
    np.testing.assert_allclose(s.f_statistic, o.fvalue, rtol=1e-8)
    off = m.summary(cov_type="cluster", X=X, y=y, sample_weight=w, groups=(a, b),
                    small_sample=False)  # fmt: skip
    raw = _oracle(X, y, w).fit(
        cov_type="cluster", cov_kwds={"groups": np.c_[a, b], "use_correction": False}
    )
    _close(off.cov, _clip(raw.cov_params()))  # without the factors it may not be PSD


def test_two_way_not_psd_clipped():
    """Heteroskedasticity without cluster effects: V_a + V_b − V_ab has a negative
    eigenvalue; its negative eigenvalues are set to 0 (and said), the rest is kept."""
    rng = np.random.default_rng(4)  # a seed whose V has a negative eigenvalue
    n = 240
    X = rng.normal(size=(n, 3))
    y = X @ [1.0, -2.0, 0.5] + rng.normal(size=n) * (1 + np.abs(X[:, 0]))
    a, b = rng.integers(0, 15, n), rng.integers(0, 11, n)
    s = tl.LinearRegression().fit(X, y).summary(cov_type="cluster", X=X, y=y, groups=(a, b))
    V = _oracle(X, y).fit(cov_type="cluster", cov_kwds={"groups": np.c_[a, b]}).cov_params()
    assert np.linalg.eigvalsh(V)[0] < 0
    _close(s.cov, _clip(V))
    assert any("not positive semi-definite" in note for note in s.notes)


def test_two_way_and_crv3_equal_pyfixest():
    pf = pytest.importorskip("pyfixest")
    X, y, a, b, _ = _data()
    df = pd.DataFrame({"y": y, "x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2], "a": a, "b": b})
    m = tl.LinearRegression().fit(X, y)
    two = pf.feols("y ~ x1 + x2 + x3", df, vcov={"CRV1": "a+b"},
                   ssc=pf.ssc(G_df="conventional"))  # fmt: skip
    s = m.summary(cov_type="cluster", X=X, y=y, groups=df[["a", "b"]])
    _close(s.cov, two._vcov)
    crv3 = pf.feols("y ~ x1 + x2 + x3", df, vcov={"CRV3": "a"},
                    ssc=pf.ssc(k_adj=False, G_adj=False))  # fmt: skip
    s3 = m.summary(cov_type="CRV3", X=X, y=y, groups=a, small_sample=False)
    _close(s3.cov, crv3._vcov)


@pytest.mark.parametrize("weighted", [False, True])
def test_crv3_equals_statsmodels(weighted):
    X, y, a, _, w = _data(weighted=weighted)
    m = tl.LinearRegression().fit(X, y, sample_weight=w)
    s = m.summary(cov_type="CRV3", X=X, y=y, sample_weight=w, groups=a, use_t=True)
    o = _oracle(X, y, w).fit(cov_type="cluster-crv3", cov_kwds={"groups": a}, use_t=True)
    _close(s.cov, o.cov_params())
    _close([c.p_value for c in s.coefficients], o.pvalues)  # t(G − 1)
    assert s.df_inference == len(set(a)) - 1


def test_one_way_cluster_small_sample_and_use_t():
    X, y, a, _, _ = _data()
    m = tl.LinearRegression().fit(X, y)
    for correction in (True, False):
        s = m.summary(cov_type="cluster", X=X, y=y, groups=a, small_sample=correction, use_t=True)
        o = _oracle(X, y).fit(
            cov_type="cluster", cov_kwds={"groups": a, "use_correction": correction}, use_t=True
        )
        _close(s.cov, o.cov_params())
        _close([c.p_value for c in s.coefficients], o.pvalues)
    hc1 = m.summary(cov_type="HC1", X=X, y=y, use_t=True)
    o = _oracle(X, y).fit(cov_type="HC1", use_t=True)
    _close([c.p_value for c in hc1.coefficients], o.pvalues)  # t(n − k)
    normal = m.summary(use_t=False)
    o = _oracle(X, y).fit(use_t=False)
    _close([c.p_value for c in normal.coefficients], o.pvalues)


def test_fit_time_crv3_and_two_way_kept_in_model_file(tmp_path):
    X, y, a, b, _ = _data()
    plain = tl.LinearRegression().fit(X, y)
    m3 = tl.LinearRegression(cov_type="CRV3").fit(X, y, groups=a)
    _close(m3.summary().cov, plain.summary(cov_type="CRV3", X=X, y=y, groups=a).cov, 1e-13)
    m2 = tl.LinearRegression(cov_type="cluster").fit(X, y, groups=np.c_[a, b])
    expected = plain.summary(cov_type="cluster", X=X, y=y, groups=(a, b))
    _close(m2.summary().cov, expected.cov, 1e-13)
    for model in (m3, m2):
        path = tmp_path / "m.tlr"
        tl.save_model(path, model)
        loaded = tl.load_model(path).estimator
        _close(loaded.summary().cov, model.summary().cov, 1e-15)
        _close(loaded.summary(small_sample=False).cov, model.summary(small_sample=False).cov, 1e-15)


def test_refusals():
    X, y, a, b, _ = _data(n=60)
    m = tl.LinearRegression().fit(X, y)
    for lags in (-1, 60, 1000):
        with pytest.raises(InputError, match="lags must be between 0 and n − 1 = 59"):
            m.summary(cov_type="HAC", lags=lags, X=X, y=y)
    with pytest.raises(InputError, match="whole number"):
        m.summary(cov_type="HAC", lags=2.5, X=X, y=y)
    with pytest.raises(InputError, match="lags= is for cov_type='HAC'"):
        m.summary(cov_type="HC1", lags=2, X=X, y=y)
    with pytest.raises(InputError, match="needs groups="):
        m.summary(cov_type="CRV3", X=X, y=y)
    with pytest.raises(InputError, match="at least 2 clusters"):
        m.summary(cov_type="CRV3", X=X, y=y, groups=np.zeros(60))
    with pytest.raises(InputError, match="use_t must be True, False or None"):
        m.summary(use_t="yes")
    # a regressor that only one cluster moves: leaving that cluster out unidentifies it
    X2 = np.c_[X, (a == 3).astype(float)]
    m2 = tl.LinearRegression().fit(X2, y)
    with pytest.raises(InputError, match="without cluster 3 the coefficients are not identified"):
        m2.summary(cov_type="CRV3", X=X2, y=y, groups=a)


def _csv(tmp_path):
    X, y, a, b, _ = _data(n=120)
    frame = pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2], "a": a, "b": b, "y": y})
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    return path, X, y, a, b


def test_cli_hac_two_way_crv3_equal_the_library(tmp_path, capsys):
    import json

    from .test_cli import run

    path, X, y, a, b = _csv(tmp_path)
    plain = tl.LinearRegression().fit(X, y)
    base = ["fit", path, "--target", "y", "--features", "x1,x2,x3", "--json", "--quiet"]
    cases = [
        (["--cov-type", "hac", "--lags", "4"], {"cov_type": "HAC", "lags": 4}),
        (["--cluster", "a,b"], {"cov_type": "cluster", "groups": (a, b)}),
        (["--cov-type", "CRV3", "--cluster", "a"], {"cov_type": "CRV3", "groups": a}),
    ]
    for flags, options in cases:
        code, out, err = run([*base, *flags], capsys)
        assert code == 0, err
        (summary,) = json.loads(out)["summary"]
        _close(np.array(summary["cov"]), plain.summary(X=X, y=y, **options).cov, 1e-12)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--cov-type", "HAC", "--lags", "-1"], "--lags must be 0 or more"),
        (["--cov-type", "HAC", "--lags", "120"], "lags must be between 0 and n − 1 = 119"),
        (["--cov-type", "HC1", "--lags", "2"], "--lags is for --cov-type HAC"),
        (["--cov-type", "CRV3"], "CRV3 needs --cluster COL"),
        (["--cov-type", "CRV3", "--cluster", "a,b"], "CRV3 takes one cluster column"),
        (["--cluster", "a,zz"], "no cluster column 'zz'"),
        (["--cluster", "a,b,x1"], "one column or two"),
    ],
)
def test_cli_refusals_one_line_no_model_written(tmp_path, capsys, flags, message):
    from .test_cli import run

    path = _csv(tmp_path)[0]
    out_model = tmp_path / "m.safetensors"
    code, out, err = run(
        ["fit", path, "--target", "y", "--features", "x1,x2,x3", "-o", out_model, *flags], capsys
    )
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out_model.exists()
