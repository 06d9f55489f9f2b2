"""``score`` and ``r2_score`` follow scikit-learn's ``r2_score`` on degenerate test sets.

Constant targets are compared where scikit-learn's own arithmetic is exact (a dyadic
constant under weights that are powers of two: its weighted mean is the constant to the
last bit); where it is not, tests/test_models_score.py holds the answer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

metrics = pytest.importorskip("sklearn.metrics")

from torchlinreg import InputError, LinearRegression  # noqa: E402
from torchlinreg.stats.metrics import r2_score  # noqa: E402


def cases():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    y = rng.normal(size=40)
    w = rng.uniform(0.1, 3, size=40)
    w2 = 2.0 ** rng.integers(-3, 4, size=40)
    flat = np.full(40, 0.375)
    zero_w = np.r_[np.zeros(10), rng.uniform(0.5, 2, size=30)]
    return {
        "constant target, exact prediction": (flat, flat, None),
        "constant target, off prediction": (flat, flat + 0.5, None),
        "weighted constant target (tiny float noise)": (flat, flat + 1e-3, w2),
        "weighted constant target, exact prediction": (flat, flat, w2),
        "one row": (y[:1], y[:1] + 1, None),
        "one row, weighted": (y[:1], y[:1], w[:1]),
        "two rows, one of zero weight": (y[:2], y[:2] + 1, np.array([0.0, 1.0])),
        "zero weights": (y, y + 0.1 * rng.normal(size=40), zero_w),
        "two targets, one constant": (np.c_[y, flat], np.c_[y + 0.1, flat + 0.2], w2),
    }


@pytest.mark.parametrize("case", list(cases()))
def test_r2_score_is_scikit_learns(case) -> None:
    y, pred, w = cases()[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both warn about one row
        expected = metrics.r2_score(y, pred, sample_weight=w)
        got = r2_score(y, pred, w)
    # The same formula in the same order: the same float, NaN included.
    np.testing.assert_equal(got, expected)


def test_r2_score_refuses_all_zero_weights() -> None:
    y = np.arange(5.0)
    with pytest.raises(ValueError, match="at least one non-zero"):
        metrics.r2_score(y, y + 1, sample_weight=np.zeros(5))
    with pytest.raises(InputError, match="sample_weight is zero for every row"):
        r2_score(y, y + 1, np.zeros(5))


@pytest.mark.parametrize("case", list(cases()))
def test_score_is_r2_score_of_the_predictions(case) -> None:
    """``score(X, y, w)`` = scikit-learn's r2_score(y, predict(X), w) (RegressorMixin)."""
    y, _, w = cases()[case]
    rng = np.random.default_rng(5)
    X_train = rng.normal(size=(60, 2))
    Y_train = X_train @ np.ones((2,) + y.shape[1:]) + rng.normal(size=(60,) + y.shape[1:])
    model = LinearRegression().fit(X_train, Y_train)
    X = rng.normal(size=(len(y), 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = metrics.r2_score(y, model.predict(X), sample_weight=w)
        got = model.score(X, y, sample_weight=w)
    np.testing.assert_equal(got, expected)


def test_score_of_a_weighted_constant_target_fitted_exactly() -> None:
    """A constant target is fitted exactly (ŷ = y to the last bit or nearly): score
    agrees with scikit-learn, whatever ȳ_w's rounding makes of it."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(30, 2))
    y = np.full(30, 0.1)
    w = rng.uniform(0.1, 3, size=30)
    model = LinearRegression().fit(X, y, sample_weight=w)
    expected = metrics.r2_score(y, model.predict(X), sample_weight=w)
    np.testing.assert_equal(model.score(X, y, sample_weight=w), expected)
