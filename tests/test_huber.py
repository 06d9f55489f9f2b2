"""HuberRegressor against scikit-learn's: the same objective minimised to the same
point, in memory and streamed; the estimator contract; refusals.

Both solvers run L-BFGS-B to a projected gradient below 1e-10 on a jointly convex
objective with a unique minimiser (n ≫ p, full rank, ε = 1.35 leaves most rows inliers
with a positive-definite Hessian), so their coefficients agree to far better than the
1e-5 relative the issue asks; 1e-5 is asserted, as the ceiling the two gradient
tolerances allow on these well-conditioned designs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn import linear_model as sk  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from torchlinreg import ConvergenceWarning, HuberRegressor, InputError  # noqa: E402

TIGHT = {"tol": 1e-10, "max_iter": 10_000}


def data(seed: int = 0, n: int = 400, p: int = 6):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * rng.uniform(0.5, 3, p) + rng.uniform(-2, 2, p)
    y = X @ rng.standard_normal(p) + rng.standard_normal(n) + 3
    y[: n // 10] += 30 * rng.standard_normal(n // 10)  # 10% gross outliers
    return X, y, rng.uniform(0, 3, n)


def assert_same(ours, theirs) -> None:  # type: ignore[no-untyped-def]
    scale = np.abs(theirs.coef_).max()
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-5 * scale)
    assert ours.intercept_ == pytest.approx(theirs.intercept_, rel=1e-5, abs=1e-5 * scale)
    assert ours.scale_ == pytest.approx(theirs.scale_, rel=1e-5)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("epsilon", [1.35, 2.5])
def test_fit_equals_scikit_learn(weighted: bool, fit_intercept: bool, epsilon: float) -> None:
    X, y, w = data()
    w = w if weighted else None
    params = {"epsilon": epsilon, "alpha": 0.01, "fit_intercept": fit_intercept, **TIGHT}
    ours = HuberRegressor(**params).fit(X, y, w)
    theirs = sk.HuberRegressor(**params).fit(X, y, sample_weight=w)
    assert_same(ours, theirs)
    np.testing.assert_array_equal(ours.outliers_, theirs.outliers_)
    assert ours.n_outliers_ == theirs.outliers_.sum() > 0


def test_streamed_fit_equals_scikit_learn() -> None:
    X, y, w = data(1)
    chunks = [(X[i : i + 64], y[i : i + 64], w[i : i + 64]) for i in range(0, len(y), 64)]
    ours = HuberRegressor(**TIGHT).fit_chunks(chunks, feature_names=[f"f{j}" for j in range(6)])
    theirs = sk.HuberRegressor(**TIGHT).fit(X, y, sample_weight=w)
    assert_same(ours, theirs)
    assert ours.n_outliers_ == theirs.outliers_.sum()
    assert list(ours.feature_names_in_) == [f"f{j}" for j in range(6)]
    assert not hasattr(ours, "outliers_")  # no per-row mask for a stream
    # A function returning fresh iterators is read once per evaluation, like a list.
    again = HuberRegressor(**TIGHT).fit_chunks(lambda: iter(chunks))
    np.testing.assert_array_equal(again.coef_, ours.coef_)


def test_one_shot_stream_and_several_targets_are_refused() -> None:
    X, y, _ = data(2, n=50)
    with pytest.raises(InputError, match="once per iteration; pass a re-iterable"):
        HuberRegressor().fit_chunks(iter([(X, y)]))
    with pytest.raises(InputError, match="fits one target; y has 2 columns"):
        HuberRegressor().fit(X, np.c_[y, y])


def test_non_convergence_warns() -> None:
    X, y, _ = data(3)
    with pytest.warns(ConvergenceWarning, match="L-BFGS-B stopped after 1 iterations") as got:
        model = HuberRegressor(max_iter=1).fit(X, y)
    assert got[0].filename == __file__
    assert model.n_iter_ == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"epsilon": 0.5}, "epsilon must be a finite number >= 1"),
        ({"alpha": -1.0}, "alpha must be a finite number >= 0"),
        ({"tol": -1e-3}, "tol must be a finite number >= 0"),
        ({"max_iter": 0}, "max_iter must be an integer >= 1"),
        ({"fit_intercept": "yes"}, "fit_intercept must be True or False"),
    ],
)
def test_bad_parameters_are_refused(params, message: str) -> None:  # type: ignore[no-untyped-def]
    X, y, _ = data(4, n=30)
    with pytest.raises(InputError, match=message):
        HuberRegressor(**params).fit(X, y)


with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Estimator .* does not inherit from")
    # max_iter=5 as scikit-learn's own suite runs its HuberRegressor through these checks:
    # on their tiny data sets the scale σ can shrink towards its bound for many
    # iterations, and comparing two fits (weights vs repeated rows) needs both to stop
    # at the same iterate rather than wherever rounding leaves an unconverged run.
    checks = parametrize_with_checks([HuberRegressor(max_iter=5)])


@pytest.mark.filterwarnings("ignore:Estimator .* does not inherit from")
@pytest.mark.filterwarnings("ignore::torchlinreg.errors.ConvergenceWarning")  # max_iter=5
@checks
def test_scikit_learn_check(estimator, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)
