"""Zero-weight rows are seen (``n_samples_seen_``) but are not observations (R's ``lm``):
they determine nothing, so nothing that counts observations may count them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from torchlinreg import InputError, LeastSquaresState, LinearRegression, RankDeficientWarning


def data(rng, n=12, p=5):  # type: ignore[no-untyped-def]
    X = rng.normal(size=(n, p))
    y = X @ rng.normal(size=p) + rng.normal(size=n)
    return X, y


def test_rank_warning_counts_observations_not_rows(rng) -> None:
    X, y = data(rng)
    w = np.zeros(12)
    w[:4] = 1.0  # 12 rows, 4 observations, 6 parameters
    with pytest.warns(RankDeficientWarning, match=r"only 4 observations .* for 6 parameters"):
        model = LinearRegression().fit(X, y, sample_weight=w)
    assert model.n_samples_seen_ == 12 and model.rank_ == 4
    assert model.state_.n_observations == 4
    # The same as fitting the four rows alone: zero-weight rows change nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficientWarning)
        alone = LinearRegression().fit(X[:4], y[:4])
    np.testing.assert_allclose(model.coef_, alone.coef_, rtol=1e-12)
    np.testing.assert_allclose(model.intercept_, alone.intercept_, rtol=1e-12)


def test_enough_rows_but_enough_observations_is_what_counts(rng) -> None:
    X, y = data(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RankDeficientWarning)
        LinearRegression().fit(X, y, sample_weight=np.r_[np.zeros(2), np.ones(10)])


def test_partial_fit_waits_for_enough_observations_before_warning(rng) -> None:
    X, y = data(rng, n=40)
    w = np.r_[np.zeros(10), np.ones(30)]
    model = LinearRegression()
    with warnings.catch_warnings():
        # 10 rows seen, none an observation: early in a stream, no rank warning yet.
        warnings.simplefilter("error", RankDeficientWarning)
        with pytest.raises(InputError, match="zero for every row seen"):
            model.partial_fit(X[:10], y[:10], sample_weight=w[:10])
        model = LinearRegression().partial_fit(X[:12], y[:12], sample_weight=w[:12])
    assert model.n_samples_seen_ == 12 and model.state_.n_observations == 2
    model.partial_fit(X[12:], y[12:], sample_weight=w[12:])
    ref = LinearRegression().fit(X[10:], y[10:])
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-10)


@pytest.mark.parametrize("path", ["qr", "cholesky"])
def test_every_fitting_path_counts_observations(rng, path) -> None:
    X = rng.normal(size=(40000, 3))
    y = X @ [1.0, 2.0, 3.0] + rng.normal(size=40000)
    w = rng.uniform(0.5, 2.0, size=40000)
    w[::4] = 0.0
    model = LinearRegression(solver=path).fit(X, y, sample_weight=w)
    assert model.solver_used_ == path
    counts = model.state_.counts
    assert (counts.n_samples, counts.n_observations) == (40000, 30000)
    assert counts.weight_sum == pytest.approx(w.sum(), rel=1e-12)
    assert counts.log_weight_sum == pytest.approx(np.log(w[w > 0]).sum(), rel=1e-12)
    merged = LeastSquaresState(3).update(X[:100], y[:100], w[:100])
    merged.merge(LeastSquaresState(3).update(X[100:], y[100:], w[100:]))
    whole = LeastSquaresState(3).update(X, y, w).counts
    assert (merged.n_samples, merged.n_observations) == (whole.n_samples, whole.n_observations)
    assert merged.weight_sum == pytest.approx(whole.weight_sum, rel=1e-13)
