"""Lasso and ElasticNet against scikit-learn's: the same objective minimised to the
same point (in memory, weighted, several targets, streamed, from merged states, over
ranks), the estimator contract, and refusals.

Oracle: scikit-learn's estimators at tol=1e-12 (a duality gap of at most 1e-12·yᵀy/n).
The objective is computed from the rows directly. Where n > p and X has full rank the
objective is strictly convex, so the coefficients must agree too: both gaps are below
1e-12·yᵀy/n, and strong convexity (λmin(XᵀX)/n, O(1) on these designs) turns that into a
coefficient error of order sqrt(1e-12) relative to the scale of y: 1e-6 holds with room.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn import linear_model as sk  # noqa: E402
from sklearn.datasets import load_diabetes  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from torchlinreg import ConvergenceWarning, InputError, LeastSquaresState  # noqa: E402
from torchlinreg.models.penalized import ElasticNet, Lasso  # noqa: E402

from .ranks import Ranks, check  # noqa: E402

TIGHT = {"tol": 1e-12, "max_iter": 100_000}


def objective(X, y, w, coef, intercept, alpha, rho):  # type: ignore[no-untyped-def]
    """scikit-learn's objective, from the rows."""
    w = np.ones(len(y)) if w is None else w
    r = y - X @ coef - intercept
    return (
        (w * r) @ r / (2 * w.sum())
        + alpha * rho * np.abs(coef).sum()
        + alpha * (1 - rho) / 2 * coef @ coef
    )


def random_data(seed: int = 0, n: int = 300, p: int = 25):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * rng.uniform(0.5, 3, p) + rng.uniform(-5, 5, p)
    X[:, 1] = X[:, 0] + 0.2 * rng.standard_normal(n)  # correlated columns
    k = min(p, 6)
    y = X[:, :k] @ rng.standard_normal(k) + rng.standard_normal(n) + 10
    return X, y, rng.uniform(0, 3, n)


def diabetes():  # type: ignore[no-untyped-def]
    data = load_diabetes()
    return data.data, data.target, np.random.default_rng(1).uniform(0, 3, len(data.target))


def ours_and_theirs(rho: float, alpha: float, **params):  # type: ignore[no-untyped-def]
    if rho == 1.0:
        return Lasso(alpha, **params), sk.Lasso(alpha=alpha, **params)
    return ElasticNet(alpha, l1_ratio=rho, **params), sk.ElasticNet(alpha, l1_ratio=rho, **params)


def assert_same_fit(ours, theirs, X, y, w, alpha, rho) -> None:  # type: ignore[no-untyped-def]
    f_ours = objective(X, y, w, ours.coef_, ours.intercept_, alpha, rho)
    f_theirs = objective(X, y, w, theirs.coef_, theirs.intercept_, alpha, rho)
    assert f_ours <= f_theirs + 1e-10 * abs(f_theirs)
    scale = max(1.0, np.abs(theirs.coef_).max())
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-6 * scale)
    assert ours.intercept_ == pytest.approx(theirs.intercept_, abs=1e-6 * max(1, abs(y).max()))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("rho", [1.0, 0.5])
@pytest.mark.parametrize("data", ["random", "diabetes"])
def test_fit_equals_scikit_learn_along_a_path(data: str, rho: float, weighted: bool) -> None:
    X, y, w = random_data() if data == "random" else diabetes()
    w = w if weighted else None
    Xc = X - np.average(X, axis=0, weights=w)
    alpha_max = np.abs(Xc.T @ ((1 if w is None else w) * (y - y.mean()))).max()
    alpha_max /= (len(y) if w is None else w.sum()) * rho
    # 50 alphas: every fit from scratch here (the path's warm starts are
    # tests/test_enet_solver.py's); the intercept is recovered from the state.
    for alpha in alpha_max * np.logspace(0, -3, 50)[::7]:
        ours, theirs = ours_and_theirs(rho, alpha, **TIGHT)
        ours.fit(X, y, sample_weight=w)
        theirs.fit(X, y, sample_weight=w)
        assert_same_fit(ours, theirs, X, y, w, alpha, rho)
        assert ours.dual_gap_ <= 1e-12 * np.average((y - np.average(y, weights=w)) ** 2, weights=w)


def test_no_intercept_and_several_targets() -> None:
    X, y, w = random_data(2)
    Y = np.c_[y, -2 * y + X[:, 3]]
    ours = ElasticNet(0.05, l1_ratio=0.7, fit_intercept=False, **TIGHT).fit(X, Y, w)
    theirs = sk.ElasticNet(alpha=0.05, l1_ratio=0.7, fit_intercept=False, **TIGHT).fit(X, Y, w)
    assert ours.coef_.shape == theirs.coef_.shape == (2, X.shape[1])
    scale = np.abs(theirs.coef_).max()
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-6 * scale)
    np.testing.assert_array_equal(ours.intercept_, [0.0, 0.0])
    assert len(ours.n_iter_) == 2 and ours.dual_gap_.shape == (2,)


def test_streamed_and_merged_states_equal_the_in_memory_fit() -> None:
    X, y, w = random_data(3)
    reference = Lasso(0.05, **TIGHT).fit(X, y, w)
    chunks = [(X[i : i + 37], y[i : i + 37], w[i : i + 37]) for i in range(0, len(y), 37)]
    streamed = Lasso(0.05, **TIGHT).fit_chunks(chunks)
    # States of three parts, folded separately and merged (as ranks or folds would).
    parts = []
    for rows in np.array_split(np.arange(len(y)), 3):
        parts.append(LeastSquaresState(X.shape[1]).update(X[rows], y[rows], w[rows]))
    merged = parts[0].merge(parts[1]).merge(parts[2])
    from_state = Lasso(0.05, **TIGHT).fit_state(merged)
    partial = Lasso(0.05, **TIGHT)
    for Xc, yc, wc in chunks:
        partial.partial_fit(Xc, yc, wc)
    # The states hold the same rows; only rounding in R differs (κ of these designs is
    # below 1e3), and the solver's result is a continuous function of G here.
    for other in (streamed, from_state, partial):
        np.testing.assert_allclose(other.coef_, reference.coef_, rtol=0, atol=1e-9)
        assert other.intercept_ == pytest.approx(reference.intercept_, abs=1e-9)


def test_warm_start_starts_from_the_previous_fit() -> None:
    X, y, _ = random_data(4)
    model = Lasso(0.01, warm_start=True, tol=1e-8).fit(X, y)
    again = model.fit(X, y)
    assert again.n_iter_ == 0  # started at the solution, the gap already met the tolerance
    cold = Lasso(0.01, tol=1e-8).fit(X, y)
    assert cold.n_iter_ >= 1


def test_path_method_matches_single_fits() -> None:
    X, y, _ = random_data(5)
    alphas = [0.5, 0.1, 0.02]
    path = ElasticNet(l1_ratio=0.3, **TIGHT).path(X, y, alphas)
    for alpha, coef in zip(alphas, path.coefs, strict=True):
        single = ElasticNet(alpha, l1_ratio=0.3, **TIGHT).fit(X, y)
        np.testing.assert_allclose(coef, single.coef_, rtol=0, atol=1e-9)


def _lasso_share(rank: int, world: int) -> dict[str, np.ndarray]:
    X, y, w = random_data(6)
    rows = np.array_split(np.arange(len(y)), world)[rank]
    model = Lasso(0.05, **TIGHT).fit(X[rows], y[rows], w[rows], distributed=True)
    return {"coef": model.coef_, "intercept": np.array(model.intercept_)}


def test_distributed_fit_equals_one_process() -> None:
    ranks = Ranks(2)
    try:
        results = check(ranks.run(_lasso_share))
    finally:
        ranks.close()
    X, y, w = random_data(6)
    reference = Lasso(0.05, **TIGHT).fit(X, y, w)
    for r in results:
        np.testing.assert_array_equal(r["coef"], results[0]["coef"])  # identical on ranks
        np.testing.assert_allclose(r["coef"], reference.coef_, rtol=0, atol=1e-9)
        assert float(r["intercept"]) == pytest.approx(reference.intercept_, abs=1e-9)


def test_non_convergence_warns_with_the_duality_gap() -> None:
    rng = np.random.default_rng(7)
    X = rng.standard_normal((20, 60))  # p > n: sign-pattern solves are singular
    y = X[:, :5].sum(1) + rng.standard_normal(20)
    with pytest.warns(ConvergenceWarning, match=r"duality gap \S+ > tolerance") as caught:
        model = Lasso(1e-4, max_iter=1, tol=1e-14).fit(X, y)
    assert caught[0].filename == __file__  # points at the user's call
    assert model.dual_gap_ > 0 and model.n_iter_ == 1


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (Lasso(-1.0), "alpha must be a finite number >= 0"),
        (ElasticNet(1.0, l1_ratio=1.5), r"l1_ratio must lie in \[0, 1\]"),
        (ElasticNet(1.0, l1_ratio=-0.2), r"l1_ratio must lie in \[0, 1\]"),
        (Lasso("a"), "alpha must be a number"),  # type: ignore[arg-type]
        (Lasso(max_iter=0), "max_iter must be an integer >= 1"),
        (Lasso(tol=-1.0), "tol must be a finite number >= 0"),
    ],
)
def test_bad_parameters_are_refused(model, message: str) -> None:  # type: ignore[no-untyped-def]
    X, y, _ = random_data(8, n=20, p=3)
    with pytest.raises(InputError, match=message):
        model.fit(X, y)


def test_inference_is_refused() -> None:
    X, y, _ = random_data(9, n=30, p=3)
    model = Lasso(0.1).fit(X, y)
    with pytest.raises(InputError, match="no classical standard errors"):
        model.summary()


ESTIMATORS = [Lasso(alpha=0.1), ElasticNet(alpha=0.1, l1_ratio=0.5)]
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Estimator .* does not inherit from")
    checks = parametrize_with_checks(ESTIMATORS)


@pytest.mark.filterwarnings("ignore:Estimator .* does not inherit from")
@checks
def test_scikit_learn_check(estimator, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)
