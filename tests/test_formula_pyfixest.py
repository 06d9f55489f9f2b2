"""Formulas against pyfixest.feols as the oracle: ``torchlinreg.ols`` gives the same
coefficients, names and standard errors (iid, HC1, CRV1 by a cluster column; the robust
ones computed at fit time) on a random dataset with a categorical column and on
statsmodels' grunfeld (firms as categories, clusters by year).

Small-sample conventions, set explicitly on pyfixest's side (``ssc``) so that both
compute the same quantity: ``k_adj=True`` scales by (N − 1)/(N − k), which pyfixest
0.60 applies to iid (σ² = RSS/(N − k)) and to CRV1, whose ``G_adj=True`` adds G/(G − 1):
G/(G − 1)·(N − 1)/(N − k), statsmodels' and our cluster factor; its HC1 is
N/(N − k)·HC0, ours.

Tolerance: pyfixest solves the normal equations (XᵀX)β = Xᵀy, whose relative error is of
order ε·κ² for κ the condition number of the column-scaled design; ours is of order
ε·κ. Each design here has ε·κ² < 1e-10 (asserted), so agreement to 1e-8 relative tests
the formula, the names and the statistics, not the rounding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("formulaic")
pf = pytest.importorskip("pyfixest")
sm = pytest.importorskip("statsmodels.api")

import torchlinreg as tl  # noqa: E402

# pyfixest 0.60's own calls of pandas' deprecated inplace= (not ours to fix)
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")

RTOL = 1e-8
SSC = {"k_adj": True, "G_adj": True}  # pyfixest's small-sample factors, named (see above)


def random_data() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 600
    df = pd.DataFrame({"x1": rng.standard_normal(n), "x2": 5 + rng.standard_normal(n)})
    df["g"] = rng.choice(["north", "south", "east", "west", "centre"], n)
    df["cl"] = rng.integers(0, 30, n)
    effect = df["g"].map({"north": 0.0, "south": 1.0, "east": -0.5, "west": 2.0, "centre": 0.3})
    noise = rng.standard_normal(n) * (0.5 + np.abs(df["x1"]))  # heteroskedastic
    df["y"] = 1.0 + 2.0 * df["x1"] - df["x2"] + effect + noise
    return df


def grunfeld() -> pd.DataFrame:
    return sm.datasets.grunfeld.load_pandas().data


CASES = [
    (random_data, "y ~ x1 + x2 + C(g)", "cl"),
    (random_data, "y ~ x1 * x2 + C(g, Treatment('west'))", "cl"),
    (grunfeld, "invest ~ value + capital + C(firm)", "year"),
]


def scaled_condition(df: pd.DataFrame, formula: str) -> float:
    from formulaic import model_matrix

    X = np.asarray(model_matrix(formula, df).rhs, dtype=float)
    return float(np.linalg.cond(X / np.linalg.norm(X, axis=0)))


def frame(model: tl.LinearRegression) -> pd.DataFrame:
    """Our summary's estimates and standard errors, named as pyfixest names them."""
    s = model.summary().to_frame()
    assert list(s.index) == ["intercept", *model.feature_names_in_]
    return s.rename(index={"intercept": "Intercept"})


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c[1])
def case(request: pytest.FixtureRequest) -> tuple[pd.DataFrame, str, str]:
    make, formula, cluster = request.param
    return make(), formula, cluster


@pytest.mark.parametrize("vcov", ["iid", "HC1", "CRV1"])
def test_coefficients_names_and_standard_errors_equal_pyfixest(
    case: tuple[pd.DataFrame, str, str], vcov: str
) -> None:
    df, formula, cluster = case
    assert np.finfo(float).eps * scaled_condition(df, formula) ** 2 < 1e-10
    if vcov == "CRV1":
        model = tl.ols(formula, df, cov_type="cluster", groups=cluster)
        ref = pf.feols(formula, df, vcov={"CRV1": cluster}, ssc=pf.ssc(**SSC))
    else:
        cov_type = {"iid": "nonrobust", "HC1": "HC1"}[vcov]
        model = tl.ols(formula, df, cov_type=cov_type)
        ref = pf.feols(formula, df, vcov=vcov, ssc=pf.ssc(**SSC))
    ours = frame(model)
    assert sorted(ours.index) == sorted(ref.coef().index)  # the same names
    names = list(ours.index)
    np.testing.assert_allclose(ours["estimate"], ref.coef()[names], rtol=RTOL)
    np.testing.assert_allclose(ours["std_error"], ref.se()[names], rtol=RTOL)


def test_the_cluster_factor_is_the_one_named() -> None:
    """The test above can fail: without pyfixest's (N − 1)/(N − k) its CRV1 standard
    errors differ from ours by √((N − 1)/(N − k)), far beyond the tolerance."""
    df, formula = grunfeld(), "invest ~ value + capital + C(firm)"
    model = tl.ols(formula, df, cov_type="cluster", groups="year")
    bare = pf.feols(formula, df, vcov={"CRV1": "year"}, ssc=pf.ssc(k_adj=False, G_adj=True))
    ours = frame(model)["std_error"]
    n, k = len(df), len(ours)
    ratio = ours.to_numpy() / bare.se()[list(ours.index)].to_numpy()
    np.testing.assert_allclose(ratio, np.sqrt((n - 1) / (n - k)), rtol=RTOL)
