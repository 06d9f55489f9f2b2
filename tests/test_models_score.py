"""R² of a constant target is decided exactly, not by the rounding of ȳ_w.

scikit-learn's ``r2_score`` divides by Σ w (y − ȳ_w)², which for a constant target is
~1e-30 rather than 0 whenever the rounded weighted mean ȳ_w is not the constant itself,
and returns numbers like −1e27. Its own rule for a target without variation is 1.0 for
an exact prediction and 0.0 otherwise: these tests hold ``r2_score`` and ``score`` to
that rule, and to scikit-learn itself wherever its arithmetic is exact.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

metrics = pytest.importorskip("sklearn.metrics")

from torchlinreg import LinearRegression  # noqa: E402
from torchlinreg.stats.metrics import r2_score  # noqa: E402


def inexact_constants():  # type: ignore[no-untyped-def]
    """Constant targets whose (weighted) mean scikit-learn rounds away from the constant."""
    rng = np.random.default_rng(3)
    return {
        "0.1 under uneven weights": (np.full(40, 0.1), rng.uniform(0.1, 3, size=40)),
        "123.456 unweighted": (np.full(40, 123.456), None),
    }


@pytest.mark.parametrize("case", list(inexact_constants()))
def test_constant_target_predicted_off_scores_zero(case) -> None:
    y, w = inexact_constants()[case]
    # The case is the one at issue: scikit-learn's own answer is far from finite sense.
    assert metrics.r2_score(y, y + 1e-3, sample_weight=w) < -1e20
    assert r2_score(y, y + 1e-3, w) == 0.0


@pytest.mark.parametrize("case", list(inexact_constants()))
def test_constant_target_predicted_exactly_scores_one(case) -> None:
    y, w = inexact_constants()[case]
    assert r2_score(y, y.copy(), w) == 1.0


def test_constant_target_beside_a_varying_one_averages_its_zero() -> None:
    """Targets average uniformly: the varying target's R² is scikit-learn's (the same
    arithmetic), the constant one's is 0.0."""
    y, w = inexact_constants()["0.1 under uneven weights"]
    varying = np.random.default_rng(4).normal(size=40)
    Y, pred = np.c_[varying, y], np.c_[varying + 0.1, y + 1e-3]
    raw = metrics.r2_score(Y, pred, sample_weight=w, multioutput="raw_values")
    assert raw[1] < -1e20
    assert r2_score(Y, pred, w) == (raw[0] + 0.0) / 2


def test_constancy_counts_rows_of_nonzero_weight_only() -> None:
    """A zero-weight row is no observation: the target is constant without it. The
    oracle is scikit-learn where its arithmetic is exact (a dyadic constant, weights
    that are powers of two), which zero-weight rows do not change."""
    y = np.r_[5.0, np.full(20, 0.375)]
    w = np.r_[0.0, 2.0 ** np.random.default_rng(5).integers(-3, 4, size=20)]
    pred = y + 0.25
    assert metrics.r2_score(y, pred, sample_weight=w) == 0.0
    assert r2_score(y, pred, w) == 0.0
    # With the row counted (any positive weight) the target varies: an ordinary R².
    w[0] = 1.0
    np.testing.assert_equal(r2_score(y, pred, w), metrics.r2_score(y, pred, sample_weight=w))
    # Where ȳ_w rounds away from the constant, the zero-weight row must not hide it.
    y_flat, w_flat = inexact_constants()["0.1 under uneven weights"]
    y, w = np.r_[5.0, y_flat], np.r_[0.0, w_flat]
    assert r2_score(y, y + 1e-3, w) == 0.0


def test_one_row_is_undefined() -> None:
    with pytest.warns(UserWarning, match="fewer than two samples"):
        assert np.isnan(r2_score(np.array([0.1]), np.array([0.2]), np.array([0.7])))


def test_mismatched_rows_are_refused_in_one_line() -> None:
    from torchlinreg import InputError

    with pytest.raises(InputError, match="must describe the same rows"):
        r2_score(np.arange(4.0), np.arange(4.0), np.ones(3))
    with pytest.raises(InputError, match="must describe the same rows"):
        r2_score(np.arange(4.0), np.arange(5.0))


def test_score_of_a_weighted_constant_test_set_is_finite() -> None:
    """The issue's case: a model scored on a constant test target with uneven weights
    gets scikit-learn's rule for a target without variation (0.0, as the model does not
    predict the constant), not a number near −1e35."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(50, 2))
    model = LinearRegression().fit(X, X @ [1.0, -2.0] + rng.normal(size=50))
    X_test = rng.normal(size=(30, 2))
    y_test, w = np.full(30, 0.1), rng.uniform(0.1, 3, size=30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model.score(X_test, y_test, sample_weight=w) == 0.0
