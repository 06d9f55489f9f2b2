"""Fixed effects absorbed (``fit(X, y, absorb=...)``): coefficients, standard errors
(nonrobust, HC1, cluster) and R² equal pyfixest's ``feols("y ~ x | f1 + f2")`` with
its default small-sample rules, and the coefficients equal statsmodels' OLS with dummy
columns.

Tolerance 1e-8: the designs are well conditioned (κ of the demeaned X below 1e2 here),
both sides solve to ~1e-14, and pyfixest's alternating projections are run to 1e-13;
what is left is far below 1e-8, while any wrong degrees-of-freedom rule moves the
standard errors by ≥ 1/n ≈ 1e-3 (one parameter in n rows).
"""

from __future__ import annotations

import numpy as np
import pytest

from torchlinreg import LinearRegression
from torchlinreg.errors import InputError, RankDeficientWarning

from .pyfixest_ref import feols as _pyfixest

pd = pytest.importorskip("pandas")
pf = pytest.importorskip("pyfixest")
sm = pytest.importorskip("statsmodels.api")

RTOL = 1e-8
VCOVS = [("nonrobust", "iid"), ("HC1", "hetero"), ("cluster", {"CRV1": "f1"})]


def _panel(seed: int, n: int = 1500, weighted: bool = True) -> pd.DataFrame:
    """An unbalanced panel: 120 firms of uneven size, 12 years, two regressors
    correlated with the firm effects."""
    rng = np.random.default_rng(seed)
    f1 = rng.choice(120, size=n, p=rng.dirichlet(np.ones(120)))
    f2 = rng.integers(0, 12, n)
    df = pd.DataFrame({"f1": f1, "f2": f2})
    df["x1"] = rng.normal(size=n) + 0.05 * f1
    df["x2"] = rng.normal(size=n) + 0.2 * f2
    df["y"] = 2 * df.x1 - df.x2 + rng.normal(size=120)[f1] + rng.normal(size=12)[f2]
    df["y"] += rng.normal(size=n) * (1 + 0.5 * np.abs(df.x1))
    df["w"] = rng.uniform(0.2, 3.0, n) if weighted else 1.0
    return df


def _ours(df, xs, factors, cov_type, weights, cluster):  # type: ignore[no-untyped-def]
    groups = df[cluster] if cov_type == "cluster" else None
    w = None if weights is None else df[weights]
    model = LinearRegression(cov_type=cov_type)
    return model.fit(df[xs], df["y"], sample_weight=w, groups=groups, absorb=df[factors])


def _check(model, ref) -> None:  # type: ignore[no-untyped-def]
    s = model.summary()
    np.testing.assert_allclose(model.coef_, ref.coef().values, rtol=RTOL)
    se = np.array([c.std_error for c in s.coefficients])
    np.testing.assert_allclose(se, ref.se().values, rtol=RTOL)
    assert s.r_squared == pytest.approx(ref._r2, rel=RTOL)
    assert s.r_squared_within == pytest.approx(ref._r2_within, rel=RTOL)
    assert s.adj_r_squared == pytest.approx(ref._adj_r2, rel=RTOL)
    assert model.intercept_ == 0.0


@pytest.mark.parametrize("cov_type,vcov", VCOVS)
@pytest.mark.parametrize("weighted", [True, False])
def test_random_panels_equal_pyfixest(cov_type: str, vcov: object, weighted: bool) -> None:
    df = _panel(3 if weighted else 4, weighted=weighted)
    weights = "w" if weighted else None
    ref = _pyfixest(df, "y ~ x1 + x2 | f1 + f2", vcov, weights)
    _check(_ours(df, ["x1", "x2"], ["f1", "f2"], cov_type, weights, "f1"), ref)


@pytest.mark.parametrize("cov_type,vcov", VCOVS)
def test_three_factors_one_factor_equal_pyfixest(cov_type: str, vcov: object) -> None:
    df = _panel(5)
    df["f3"] = np.random.default_rng(6).integers(0, 7, len(df))
    ref = _pyfixest(df, "y ~ x1 + x2 | f1 + f2 + f3", vcov, "w")
    _check(_ours(df, ["x1", "x2"], ["f1", "f2", "f3"], cov_type, "w", "f1"), ref)
    ref = _pyfixest(df, "y ~ x1 + x2 | f1", vcov, "w")
    _check(_ours(df, ["x1", "x2"], ["f1"], cov_type, "w", "f1"), ref)


@pytest.mark.parametrize("cov_type,vcov", VCOVS)
def test_grunfeld_equals_pyfixest(cov_type: str, vcov: object) -> None:
    from statsmodels.datasets import grunfeld

    df = grunfeld.load_pandas().data.rename(columns={"invest": "y", "firm": "f1", "year": "f2"})
    ref = _pyfixest(df, "y ~ value + capital | f1 + f2", vcov, None)
    _check(_ours(df, ["value", "capital"], ["f1", "f2"], cov_type, None, "f1"), ref)


def test_equals_statsmodels_with_dummy_columns() -> None:
    """Coefficients and nonrobust standard errors: the dummy regression's (a connected
    panel: its rank counts Σ L − 1 dummies, the rule of the absorbed fit)."""
    df = _panel(7, n=600)
    dummies = pd.get_dummies(df[["f1", "f2"]].astype(str), drop_first=True, dtype=float)
    exog = sm.add_constant(pd.concat([df[["x1", "x2"]], dummies], axis=1))
    ref = sm.WLS(df["y"], exog, weights=df["w"]).fit()
    model = _ours(df, ["x1", "x2"], ["f1", "f2"], "nonrobust", "w", None)
    np.testing.assert_allclose(model.coef_, ref.params[["x1", "x2"]], rtol=RTOL)
    se = [c.std_error for c in model.summary().coefficients]
    np.testing.assert_allclose(se, ref.bse[["x1", "x2"]], rtol=RTOL)


def test_alternating_projections_equal_the_direct_solve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forced onto alternating projections (as for two large factors), the fit is the
    direct solve's to the stopping rule's accuracy (tol 1e-10 of the column scale)."""
    from torchlinreg.solvers.absorb import projection

    df = _panel(8)
    direct = _ours(df, ["x1", "x2"], ["f1", "f2"], "HC1", "w", None)
    monkeypatch.setattr(projection, "MAX_REST_LEVELS", 0)
    iterated = _ours(df, ["x1", "x2"], ["f1", "f2"], "HC1", "w", None)
    assert direct.absorbed_.method == "direct" and iterated.absorbed_.method == "alternating"
    assert iterated.absorbed_.iterations > 1
    np.testing.assert_allclose(iterated.coef_, direct.coef_, rtol=1e-8)
    se = [[c.std_error for c in m.summary().coefficients] for m in (direct, iterated)]
    np.testing.assert_allclose(se[1], se[0], rtol=1e-8)


def test_absorbed_regressor_is_dropped_and_named() -> None:
    df = _panel(9)
    df["size"] = np.random.default_rng(1).normal(size=120)[df.f1]  # constant within firm
    with pytest.warns(RankDeficientWarning, match="size"):
        model = _ours(df, ["x1", "size", "x2"], ["f1", "f2"], "nonrobust", "w", None)
    assert model.absorbed_.dropped == ("size",)
    assert list(model.feature_names_in_) == ["x1", "x2"]
    plain = _ours(df, ["x1", "x2"], ["f1", "f2"], "nonrobust", "w", None)
    np.testing.assert_allclose(model.coef_, plain.coef_, rtol=1e-12)


def test_every_regressor_absorbed_is_refused_naming_them() -> None:
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(20, 2)), rng.normal(size=20)
    with pytest.raises(InputError, match=r"absorb every regressor \(x0, x1\)"):
        LinearRegression().fit(X, y, absorb=np.arange(20))  # one level a row


def test_intercept_is_absorbed() -> None:
    df = _panel(10)
    with_b = LinearRegression().fit(df[["x1", "x2"]], df.y, absorb=df[["f1", "f2"]])
    without = LinearRegression(fit_intercept=False).fit(
        df[["x1", "x2"]], df.y, absorb=df[["f1", "f2"]]
    )
    assert with_b.intercept_ == 0.0 and not with_b.state_.fit_intercept
    np.testing.assert_allclose(with_b.coef_, without.coef_, rtol=1e-14)
    # A later fit without absorb forgets the fixed effects.
    assert not hasattr(with_b.fit(df[["x1", "x2"]], df.y), "absorbed_")


def test_factor_labels_may_be_text_or_arrays() -> None:
    df = _panel(11)
    named = _ours(df, ["x1", "x2"], ["f1", "f2"], "nonrobust", None, None)
    text = df[["f1", "f2"]].astype(str).radd("level ")
    as_text = LinearRegression().fit(df[["x1", "x2"]], df.y, absorb=text)
    as_array = LinearRegression().fit(df[["x1", "x2"]], df.y, absorb=df[["f1", "f2"]].to_numpy())
    for other in (as_text, as_array):
        np.testing.assert_allclose(other.coef_, named.coef_, rtol=1e-12)
    assert as_array.absorbed_.factors == ("fe0", "fe1")
    assert named.absorbed_.n_levels == (df.f1.nunique(), df.f2.nunique())


def test_bad_input_is_one_line_error() -> None:
    df = _panel(12, n=200)
    X, y = df[["x1", "x2"]], df.y
    labels = np.array(df.f1, dtype=float)
    labels[17] = np.nan
    with pytest.raises(InputError, match="missing.*row 17"):
        LinearRegression().fit(X, y, absorb=labels)
    with pytest.raises(InputError, match="199 labels for 200 rows"):
        LinearRegression().fit(X, y, absorb=df.f1.to_numpy()[:-1])
    with pytest.raises(InputError, match="not supported"):
        LinearRegression(cov_type="HAC").fit(X, y, absorb=df.f1)
    model = LinearRegression().fit(X, y, absorb=df.f1)
    with pytest.raises(InputError, match="partial_fit"):
        model.partial_fit(X, y)
