"""Cluster-robust covariances against Stata's printed results on the Grunfeld panel,
as shipped with statsmodels' tests (``results_grunfeld_ols_robust_cluster``):

- ``regress invest mvalue kstock, vce(cluster company)``: one-way, small-sample factor
  G/(G − 1)·(n − 1)/(n − k), t(G − 1);
- ``ivreg2 invest mvalue kstock, cluster(company time)``: two-way (Cameron–Gelbach–
  Miller), no small-sample factor, normal inference.

Tolerance 1e-6 relative: Stata holds these data in single precision (relative rounding
≈ 6e-8 per value), and the covariance is a sandwich of the design and the residuals, each
moved by that rounding times the design's condition number (≈ 10 after scaling); the
results are printed to 9 digits. A wrong small-sample factor or degrees of freedom moves
the covariance by ≥ 1/G = 10% (one-way) or the p-values by far more than 1e-6.

Not compared: ``ivreg2 ..., cluster(company time) small`` multiplies all three parts
of the two-way covariance by min(G)/(min(G) − 1)·(n − 1)/(n − k) (pyfixest's default
too); torchlinreg follows statsmodels and gives each part its own G (see
``src/torchlinreg/stats/cluster2.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

import torchlinreg as tl

RTOL = 1e-6
ORDER = [1, 2, 0]  # Stata lists mvalue, kstock, _cons


@pytest.fixture(scope="module")
def grunfeld():
    from statsmodels.datasets import grunfeld
    from statsmodels.regression.tests.results import results_grunfeld_ols_robust_cluster

    data = grunfeld.load_pandas()
    exog = data.exog[:200]  # Stata's copy of the data has the first ten firms
    X = exog[["value", "capital"]].to_numpy(dtype=float)
    y = data.endog[:200].to_numpy(dtype=float)
    firm = np.unique(exog["firm"].astype(str), return_inverse=True)[1]
    year = exog["year"].to_numpy().astype(int)
    model = tl.LinearRegression().fit(X, y)
    return model, X, y, firm, year, results_grunfeld_ols_robust_cluster


def _check(summary, ref, normal: bool) -> None:
    np.testing.assert_allclose(summary.cov[np.ix_(ORDER, ORDER)], ref.cov, rtol=RTOL)
    table = ref.params_table
    rows = [summary.coefficients[i] for i in ORDER]
    np.testing.assert_allclose([c.estimate for c in rows], table[:, 0], rtol=RTOL)
    np.testing.assert_allclose([c.std_error for c in rows], table[:, 1], rtol=RTOL)
    np.testing.assert_allclose([c.p_value for c in rows], table[:, 3], rtol=RTOL)
    np.testing.assert_allclose([c.ci_lower for c in rows], table[:, 4], rtol=RTOL)
    np.testing.assert_allclose([c.ci_upper for c in rows], table[:, 5], rtol=RTOL)
    if not normal:
        assert summary.df_inference == ref.params_table[0, 6]


def test_one_way_cluster_equals_stata_regress(grunfeld) -> None:
    model, X, y, firm, _, stata = grunfeld
    s = model.summary(cov_type="cluster", X=X, y=y, groups=firm, use_t=True)
    _check(s, stata.results_cluster, normal=False)


def test_two_way_cluster_equals_stata_ivreg2(grunfeld) -> None:
    model, X, y, firm, year, stata = grunfeld
    s = model.summary(
        cov_type="cluster", X=X, y=y, groups=(firm, year), small_sample=False, use_t=False
    )
    _check(s, stata.results_cluster_2groups_large, normal=True)
