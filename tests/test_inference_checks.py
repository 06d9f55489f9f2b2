"""Decisions the summary makes about its data: the robust pass sees the fitted rows,
paired as they were; an exact fit is told from rounding; weights near the top of
float64 give the statistics of weights near 1."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from torchlinreg import InputError, LinearRegression
from torchlinreg.stats.fit import fit_statistics

from .test_inference_offsets import narrow_design, offset_design

REFUSED = "not paired as they were"


def well_conditioned(weighted: bool):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2))
    y = X @ [1.0, 2.0] + rng.normal(size=50)
    w = rng.uniform(0.5, 2.0, size=50) if weighted else None
    return X, y, w


def designs():  # type: ignore[no-untyped-def]
    yield "well conditioned", well_conditioned(False)
    yield "well conditioned, weighted", well_conditioned(True)
    yield "offset 1e6, spread 1000", offset_design(False)[:3]
    for offset in (1e6, 1e7):
        yield f"offset {offset:g}, weighted", narrow_design(offset, True)[:3]
        yield f"offset {offset:g}", narrow_design(offset, False)[:3]


CASES = dict(designs())


@pytest.mark.parametrize("case", list(CASES))
def test_y_rows_exchanged_are_refused(case) -> None:
    X, y, w = CASES[case]
    if w is not None:  # rows 0 and 1 of equal weight: the exchange keeps Σ w·a² too
        w = w.copy()
        w[1] = w[0]
    model = LinearRegression().fit(X, y, sample_weight=w)
    # An exchange keeps every column's sum of squares: only the pairing check sees it.
    swapped = y.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    with pytest.raises(InputError, match=REFUSED):
        model.summary(cov_type="HC1", X=X, y=swapped, sample_weight=w)
    moved = X.copy()
    moved[[0, 1]] = moved[[1, 0]]
    with pytest.raises(InputError, match=REFUSED):
        model.summary(cov_type="HC1", X=moved, y=y, sample_weight=w)


@pytest.mark.parametrize("case", list(CASES))
def test_the_fitted_data_are_accepted_in_any_row_order(case) -> None:
    """No false refusal, on well- and ill-conditioned designs, with weights (zero ones
    too), and with whole rows (x, y, w together) in another order."""
    X, y, w = CASES[case]
    if w is not None:
        w = w.copy()
        w[::7] = 0.0
    model = LinearRegression().fit(X, y, sample_weight=w)
    se = [
        c.std_error for c in model.summary(cov_type="HC0", X=X, y=y, sample_weight=w).coefficients
    ]
    order = np.random.default_rng(1).permutation(len(y))
    wo = None if w is None else w[order]
    s = model.summary(cov_type="HC0", X=X[order], y=y[order], sample_weight=wo)
    # HC0 is a sum over rows: the order changes only rounding (≤ the 1e-10 of the offsets)
    np.testing.assert_allclose([c.std_error for c in s.coefficients], se, rtol=1e-10)


def test_an_exact_fit_is_decided_against_the_rounding_of_y() -> None:
    """y = 2x exactly: the state's √RSS is ~1e-16·‖y‖, which is rounding, so σ, standard
    errors, t and p are null with the exact-fit note (they were 3e-16, t = 2e16,
    p < 1e-16). Residuals of 1e-9 relative are far above rounding: a normal fit."""
    x = np.arange(1.0, 21.0)
    for cov in ("nonrobust", "HC1"):
        kwargs = {} if cov == "nonrobust" else {"X": x[:, None], "y": 2 * x}
        s = LinearRegression().fit(x[:, None], 2 * x).summary(cov_type=cov, **kwargs)
        assert s.sigma is None and s.log_likelihood is None and s.f_statistic is None
        assert all(c.std_error is c.t is c.p_value is c.ci_lower is None for c in s.coefficients)
        assert s.r_squared == 1.0
        assert any(n.startswith("the fit is exact") for n in s.notes)
    rng = np.random.default_rng(2)
    y = 2 * x * (1 + 1e-9 * rng.normal(size=x.size))
    s = LinearRegression().fit(x[:, None], y).summary()
    assert s.sigma is not None and s.sigma > 0 and s.coefficients[1].std_error is not None
    assert not any(n.startswith("the fit is exact") for n in s.notes)


def _is_exact(summary) -> bool:  # type: ignore[no-untyped-def]
    return any(n.startswith("the fit is exact") for n in summary.notes)


@pytest.mark.parametrize("n", [21, 150_000])
def test_exact_polynomials_stay_exact_at_any_number_of_rows(n) -> None:
    """Wampler1's model (y = 1 + x + … + x⁵ on x = 0…20, every value an exact integer)
    repeated to n rows, and y = 3 − 7.25x on x of spread 1e3 over several blocks of
    rows: √RSS is rounding alone, below the level that does not grow with the rows."""
    x = np.arange(n, dtype=float) % 21
    X = np.column_stack([x**k for k in range(1, 6)])
    assert _is_exact(LinearRegression().fit(X, X.sum(axis=1) + 1).summary())
    rng = np.random.default_rng(n)
    x = 5 + 1e3 * rng.normal(size=n)
    assert _is_exact(LinearRegression().fit(x[:, None], 3 - 7.25 * x).summary())


def test_small_real_residuals_on_many_rows_are_not_an_exact_fit() -> None:
    """y = 1 + x + 1e-12·N(0, 1) on 20,000 rows: the RMS residual 1e-12 is ~5,000 times
    the per-row rounding of y and xθ (ε·|values| ≈ 2e-16); the old level grew with √n
    relative to the norms and called it exact. Standard errors against statsmodels: the
    residuals of size 1e-12 formed from values of order 1 carry ε/1e-12 ≈ 2e-4 relative
    rounding each, which averages out in RSS over the rows, so 1e-3 is a safe margin."""
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(5)
    x = rng.normal(size=20_000)
    y = 1 + x + 1e-12 * rng.normal(size=x.size)
    s = LinearRegression().fit(x[:, None], y).summary()
    assert not _is_exact(s) and s.sigma is not None
    oracle = sm.OLS(y, sm.add_constant(x)).fit()
    np.testing.assert_allclose(s.sigma, math.sqrt(oracle.scale), rtol=1e-3)
    np.testing.assert_allclose([c.std_error for c in s.coefficients], oracle.bse, rtol=1e-3)


@pytest.mark.parametrize("weight", [1e307, 1e308])
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC1"])
def test_huge_equal_weights_give_the_unweighted_statistics(weight, cov_type) -> None:
    """Equal weights c change no statistic but σ (by √c): the unweighted fit is the
    oracle. Σ w y² overflowed: R² nan, standard errors inf, a false exact-fit note."""
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([2.0, 4.0, 5.0, 9.0, 9.5])
    w = np.full(5, weight)
    kwargs = {"X": x[:, None], "y": y} if cov_type != "nonrobust" else {}
    plain = LinearRegression().fit(x[:, None], y).summary(cov_type=cov_type, **kwargs)
    if kwargs:
        kwargs["sample_weight"] = w
    model = LinearRegression().fit(x[:, None], y, sample_weight=w)
    s = model.summary(cov_type=cov_type, **kwargs)
    assert s.notes == plain.notes
    for key in ("r_squared", "adj_r_squared", "f_statistic", "f_p_value", "log_likelihood"):
        assert math.isclose(getattr(s, key), getattr(plain, key), rel_tol=1e-13), key
    assert math.isclose(s.sigma, plain.sigma * math.sqrt(weight), rel_tol=1e-13)
    for ours, theirs in zip(s.coefficients, plain.coefficients, strict=True):
        for key in ("std_error", "t", "p_value"):
            assert math.isclose(getattr(ours, key), getattr(theirs, key), rel_tol=1e-12), key


def test_fit_statistics_of_huge_weights() -> None:
    x = np.array([[1.0], [2.0], [3.0], [4.0]])
    y = np.array([2.0, 4.0, 5.0, 9.0])
    plain = LinearRegression().fit(x, y)
    ref = fit_statistics(plain.state_, plain.coef_, plain.intercept_)
    model = LinearRegression().fit(x, y, sample_weight=np.full(4, 1e307))
    stats = fit_statistics(model.state_, model.coef_, model.intercept_)
    for key in ("r2", "mse", "rmse"):  # invariant under scaling every weight
        assert math.isclose(stats[key][0], ref[key][0], rel_tol=1e-13), key
    assert math.isclose(stats["rss"][0], ref["rss"][0] * 1e307, rel_tol=1e-13)
    # With weights of 1e308 the RSS itself (1.8e308) is beyond float64: said, not inf.
    model = LinearRegression().fit(x, y, sample_weight=np.full(4, 1e308))
    with pytest.raises(InputError, match="residual sum of squares overflows float64"):
        fit_statistics(model.state_, model.coef_, model.intercept_)


def test_cli_refuses_overflowing_statistics_with_exit_2(tmp_path, capsys) -> None:
    from torchlinreg.cli import main

    data = tmp_path / "h.csv"
    data.write_text("x,y,w\n1,2,1e308\n2,4,1e308\n3,5,1e308\n4,9,1e308\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["fit", str(data), "--target", "y", "--weights", "w", "--summary"])
    err = capsys.readouterr().err
    assert code == 2 and "overflows float64" in err and len(err.strip().splitlines()) == 1
