"""Wald and F tests of linear restrictions, nested-model comparison and AICc/HQIC:
equal to statsmodels' f_test / wald_test / compare_f_test / compare_lr_test / anova_lm
and eval_measures (1e-8 relative: the statistics are quadratic forms in a
well-conditioned covariance, good to ~1e-13 on both sides; p-values in the tails are
compared relative to themselves, which scipy's incomplete beta/gamma keep to ~1e-14);
refusals one line each."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.anova import anova_lm
from statsmodels.tools import eval_measures

import torchlinreg as tl
from torchlinreg.errors import InputError

RTOL = 1e-8


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["x1", "x2", "x3", "x4"])
    X["color=red"] = (rng.integers(0, 3, n) == 1).astype(float)
    X["color=blue"] = (rng.integers(0, 3, n) == 2).astype(float)
    noise = rng.normal(size=n) * (1 + np.abs(X["x1"].to_numpy()))
    y = X.to_numpy() @ [1.0, 1.0, 0.2, 0.0, 0.3, -0.1] + 0.5 + noise
    groups = rng.integers(0, 20, n)
    return X, y, groups


def _oracle(X, y):
    return sm.OLS(y, sm.add_constant(X).rename(columns={"const": "intercept"}))


# statsmodels' restriction syntax: "*" between a number and a name, commas between
RESTRICTIONS = [
    ("x1 = x2", "x1 = x2"),
    ("x1 = 0, x2 = 0", "x1 = 0, x2 = 0"),
    ("2*x1 + x2 = 1", "2*x1 + x2 = 1"),
    ("x1 - 0.5 x3 + intercept = 2; x2 = 1", "x1 - 0.5*x3 + intercept = 2, x2 = 1"),
    ("color=red = color=blue", "color=red = color=blue"),
    ("x4", "x4 = 0"),
]


@pytest.mark.parametrize(
    "cov_type, kwds",
    [("nonrobust", {}), ("HC1", {}), ("cluster", {"groups": None}), ("HAC", {"maxlags": 3})],
)
def test_tests_equal_statsmodels(cov_type, kwds):
    X, y, groups = _data()
    m = tl.LinearRegression().fit(X, y)
    options = {} if cov_type == "nonrobust" else {"cov_type": cov_type, "X": X, "y": y}
    if cov_type == "cluster":
        options["groups"], kwds = groups, {"groups": groups}
    if cov_type == "HAC":
        options["lags"] = 3
    o = _oracle(X, y).fit(cov_type=cov_type, cov_kwds=kwds or None)
    names = o.model.exog_names
    for ours, theirs in RESTRICTIONS:
        # statsmodels cannot parse names holding "="; give it the matrix
        if "color=" in ours:
            r = np.zeros(len(names))
            r[names.index("color=red")], r[names.index("color=blue")] = 1, -1
            theirs = r
        f, ff = m.f_test(ours, **options), o.f_test(theirs)
        np.testing.assert_allclose(f.statistic, float(np.squeeze(ff.fvalue)), rtol=RTOL)
        np.testing.assert_allclose(f.p_value, float(ff.pvalue), rtol=RTOL)
        assert f.df_denom == ff.df_denom and f.df_num == ff.df_num
        w, ww = m.wald_test(ours, **options), o.wald_test(theirs, use_f=False, scalar=True)
        np.testing.assert_allclose(w.statistic, float(ww.statistic), rtol=RTOL)
        np.testing.assert_allclose(w.p_value, float(ww.pvalue), rtol=RTOL)


def test_matrix_and_columns():
    X, y, _ = _data()
    m = tl.LinearRegression().fit(X, y)
    o = _oracle(X, y).fit()
    R = np.zeros((2, 7))
    R[0, 1], R[1, 2], R[1, 3] = 1.0, 1.0, -1.0
    q = [1.0, 0.5]
    f, ff = m.f_test(R, q), o.f_test((R, q))
    np.testing.assert_allclose(f.statistic, float(np.squeeze(ff.fvalue)), rtol=RTOL)
    # the one-hot levels of one column, jointly zero: by a prefix or by names
    f = m.f_test(columns="color=")
    names = o.model.exog_names
    Rc = np.zeros((2, 7))
    Rc[0, names.index("color=red")] = Rc[1, names.index("color=blue")] = 1
    ff = o.f_test(Rc)
    np.testing.assert_allclose(f.statistic, float(np.squeeze(ff.fvalue)), rtol=RTOL)
    assert f.restrictions == ["color=red = 0", "color=blue = 0"]
    same = m.f_test(columns=["color=red", "color=blue"])
    assert same.statistic == f.statistic
    assert "F(2, 193)" in str(f)


def test_robust_summary_f_equals_statsmodels_fvalue():
    """The summary's own F (all slopes zero) is the same Wald F."""
    X, y, groups = _data()
    m = tl.LinearRegression().fit(X, y)
    s = m.summary(cov_type="CRV3", X=X, y=y, groups=groups)
    f = m.f_test(columns=list(X.columns), cov_type="CRV3", X=X, y=y, groups=groups)
    np.testing.assert_allclose(f.statistic, s.f_statistic, rtol=1e-8)


def test_compare_equals_statsmodels():
    X, y, _ = _data()
    sets = (["x1"], ["x1", "x2"], list(X.columns))
    ours = [tl.LinearRegression().fit(X[c], y) for c in sets]
    theirs = [_oracle(X[c], y).fit() for c in sets]
    table = tl.compare(ours[2], ours[0], ours[1], names=["big", "small", "mid"])
    assert table.names == ["small", "mid", "big"]
    anova = anova_lm(*theirs)
    np.testing.assert_allclose(table.ssr, anova["ssr"], rtol=RTOL)
    np.testing.assert_allclose(table.df_resid, anova["df_resid"])
    np.testing.assert_allclose(table.f[1:], anova["F"][1:], rtol=RTOL)
    # statsmodels refers each row to its own df_resid; R and this one to the largest
    # model's (whose σ² the F uses): the last row is the same either way
    np.testing.assert_allclose(table.f_p_value[-1], anova["Pr(>F)"].iloc[-1], rtol=RTOL)
    two = tl.compare(ours[0], ours[2])
    f, p, df = theirs[2].compare_f_test(theirs[0])
    np.testing.assert_allclose([two.f[1], two.f_p_value[1], two.df_diff[1]], [f, p, df], rtol=RTOL)
    lr, lp, ldf = theirs[2].compare_lr_test(theirs[0])
    np.testing.assert_allclose([two.lr[1], two.lr_p_value[1]], [lr, lp], rtol=RTOL)
    frame = two.to_frame()
    assert list(frame.index) == ["model 1", "model 2"] and "Pr(>Chi2)" in str(two)
    assert two.to_dict()["models"][1]["f"] == two.f[1]


def test_aicc_hqic_equal_statsmodels():
    X, y, _ = _data()
    s = tl.LinearRegression().fit(X, y).summary()
    o = _oracle(X, y).fit()
    k = o.df_model + 1
    np.testing.assert_allclose(s.aicc, eval_measures.aicc(o.llf, o.nobs, k), rtol=1e-12)
    np.testing.assert_allclose(s.hqic, eval_measures.hqic(o.llf, o.nobs, k), rtol=1e-12)
    assert "AICc" in str(s) and s.to_dict()["hqic"] == s.hqic


def test_refusals():
    X, y, groups = _data()
    m = tl.LinearRegression().fit(X, y)
    with pytest.raises(InputError, match="unknown coefficient 'x9'.*intercept, x1, x2"):
        m.f_test("x1 = x9")
    with pytest.raises(InputError, match="linearly dependent"):
        m.f_test("x1 = x2, 2*x2 = 2*x1")
    with pytest.raises(InputError, match="involves no coefficient"):
        m.f_test("x1 = x1")
    with pytest.raises(InputError, match="a term is missing"):
        m.f_test("x1 +")
    with pytest.raises(InputError, match="more than one '='"):
        m.f_test("x1 = x2 = x3")
    with pytest.raises(InputError, match="one column per coefficient"):
        m.f_test(np.eye(3))
    with pytest.raises(InputError, match="unknown coefficient"):
        m.f_test(columns=["nope"])
    with pytest.raises(InputError, match="either restrictions"):
        m.f_test()
    # 3 clusters, 6 restrictions: the cluster covariance cannot test them
    few = groups % 3
    with pytest.raises(InputError, match="needs at least 7 clusters"):
        m.f_test(columns=list(X.columns), cov_type="cluster", X=X, y=y, groups=few)
    # a singular R V Rᵀ: a restriction on a coefficient the covariance gives no variance
    from torchlinreg.stats.wald import test

    s = m.summary()
    s.cov = s.cov.copy()
    s.cov[1, :] = s.cov[:, 1] = 0
    with pytest.raises(InputError, match="singular"):
        test(s, "x1 = 0")
    small = tl.LinearRegression().fit(X[["x1"]], y)
    with pytest.raises(InputError, match="not nested"):
        tl.compare(small, tl.LinearRegression().fit(X[["x2", "x3"]], y))
    with pytest.raises(InputError, match="same target values"):
        tl.compare(small, tl.LinearRegression().fit(X, 2 * y))
    with pytest.raises(InputError, match="at least two"):
        tl.compare(small)


def test_cli_test_and_compare(tmp_path, capsys):
    import json

    from .test_cli import run

    X, y, groups = _data()
    frame = X[["x1", "x2", "x3"]].assign(y=y, g=groups)
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    base = ["fit", path, "--target", "y", "--quiet"]
    small, big = tmp_path / "small.safetensors", tmp_path / "big.safetensors"
    code, out, err = run([*base, "--features", "x1", "-o", small], capsys)
    assert code == 0, err
    code, out, err = run(
        [*base, "--features", "x1,x2,x3", "--cov-type", "HC1", "--test", "x1 = x2",
         "--test", "x2 = 0, x3 = 0", "-o", big, "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    tests = json.loads(out)["tests"]
    m = tl.LinearRegression().fit(frame[["x1", "x2", "x3"]], y)
    options = {"cov_type": "HC1", "X": frame[["x1", "x2", "x3"]], "y": y}
    for found, text in zip(tests, ["x1 = x2", "x2 = 0, x3 = 0"], strict=True):
        np.testing.assert_allclose(
            found["statistic"], m.f_test(text, **options).statistic, rtol=1e-12
        )
    code, out, err = run(["compare", big, small, "--json"], capsys)
    assert code == 0, err
    rows = json.loads(out)["comparison"]["models"]
    expected = tl.compare(tl.LinearRegression().fit(frame[["x1"]], y), m)
    np.testing.assert_allclose(rows[1]["f"], expected.f[1], rtol=1e-12)
    assert rows[0]["model"] == str(small)
    code, out, err = run(["compare", big, small], capsys)
    assert code == 0 and "Pr(>F)" in out and "Observations" in out
    code, out, err = run(
        [*base, "--features", "x1,x2", "--test", "x1 = x9", "-o", tmp_path / "no"], capsys
    )
    assert code == 2 and "unknown coefficient 'x9'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "no").exists()
