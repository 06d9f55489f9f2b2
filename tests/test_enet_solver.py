"""solvers/enet.py against scikit-learn's coordinate descent: the same objective, the
same minimiser (where it is unique), its duality gap, warnings and refusals.

Oracle: ``sklearn.linear_model.enet_path`` on the centred data at tol=1e-12, whose gap
bounds its objective's distance to the minimum by 1e-12·yᵀy/n. Both solutions are
compared through the objective computed directly from X and y (not from our Gram), so
an error in our Gram-based objective cannot hide one in our solver.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.datasets import load_diabetes  # noqa: E402
from sklearn.linear_model import enet_path as sk_enet_path  # noqa: E402

from torchlinreg.errors import ConvergenceWarning, InputError  # noqa: E402
from torchlinreg.solvers.enet import duality_gap, enet_path, objective  # noqa: E402


def direct_objective(X, y, coef, alpha, rho):  # type: ignore[no-untyped-def]
    """scikit-learn's ElasticNet objective from the rows themselves."""
    r = y - X @ coef
    return (
        r @ r / (2 * len(y))
        + alpha * rho * np.abs(coef).sum()
        + alpha * (1 - rho) / 2 * coef @ coef
    )


def random_design(seed: int, n: int = 200, p: int = 30):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    X[:, 1] = X[:, 0] + 0.1 * X[:, 1]  # a correlated pair: signs must be found jointly
    y = X[:, :8] @ rng.standard_normal(8) + rng.standard_normal(n) + 3.0
    return X, y


def centred(X, y):  # type: ignore[no-untyped-def]
    Xc, yc = X - X.mean(0), y - y.mean()
    return Xc, yc, Xc.T @ Xc, Xc.T @ yc, float(yc @ yc)


def diabetes():  # type: ignore[no-untyped-def]
    data = load_diabetes()
    return data.data, data.target


def grid(q, n, rho, count=50):  # type: ignore[no-untyped-def]
    alpha_max = np.abs(q).max() / (n * max(rho, 1e-3))
    return alpha_max * np.logspace(0, -3, count)


@pytest.mark.parametrize("rho", [1.0, 0.5, 0.05])
@pytest.mark.parametrize("data", ["random", "diabetes"])
def test_path_matches_scikit_learn(data: str, rho: float) -> None:
    X, y = random_design(0) if data == "random" else diabetes()
    Xc, yc, G, q, yty = centred(X, y)
    n = len(y)
    alphas = grid(q, n, rho)
    ours = enet_path(G, q, yty, n, alphas, rho, tol=1e-12, max_iter=10_000)
    _, sk_coefs, _ = sk_enet_path(Xc, yc, l1_ratio=rho, alphas=alphas, tol=1e-12, max_iter=100_000)
    for i, alpha in enumerate(alphas):
        f_ours = direct_objective(Xc, yc, ours.coefs[i], alpha, rho)
        f_sk = direct_objective(Xc, yc, sk_coefs[:, i], alpha, rho)
        assert f_ours <= f_sk + 1e-10 * abs(f_sk)
    # n > p and full-rank X: the objective is strictly convex, the minimiser unique.
    # Both gaps are <= 1e-12·yᵀy/n, so (strong convexity λmin(G)/n) the coefficients
    # agree to sqrt(2·gap·n/λmin) ≈ 1e-6·sqrt(yᵀy/λmin): scaled by the largest one.
    scale = max(1.0, np.abs(sk_coefs).max())
    np.testing.assert_allclose(ours.coefs, sk_coefs.T, rtol=0, atol=1e-6 * scale)
    assert (ours.dual_gaps <= 1e-12 * yty / n).all()
    assert (ours.dual_gaps >= -1e-9 * yty / n).all()


def test_objective_and_gap_from_the_gram() -> None:
    X, y = random_design(1)
    Xc, yc, G, q, yty = centred(X, y)
    n = len(y)
    coef = np.random.default_rng(2).standard_normal(X.shape[1])
    for alpha, rho in [(0.3, 1.0), (0.3, 0.4), (0.0, 1.0)]:
        expected = direct_objective(Xc, yc, coef, alpha, rho)
        assert objective(G, q, yty, n, coef, alpha, rho) == pytest.approx(expected, rel=1e-12)
    # At the solution the gap bounds f − min f, so it is tiny; far from it, it is not.
    path = enet_path(G, q, yty, n, [0.1], 0.7, tol=1e-12)
    assert duality_gap(G, q, yty, n, path.coefs[0], 0.1, 0.7) == pytest.approx(
        path.dual_gaps[0], abs=1e-12 * yty / n
    )
    assert duality_gap(G, q, yty, n, coef, 0.1, 0.7) > 1e-2


def test_weights_enter_through_the_gram() -> None:
    """Σ w (yᵢ − xᵢᵀβ)² / (2 Σ w) is the unweighted objective of rows repeated wᵢ times."""
    X, y = random_design(3, n=60, p=8)
    w = np.random.default_rng(4).integers(1, 4, size=len(y)).astype(float)
    Xr, yr = np.repeat(X, w.astype(int), axis=0), np.repeat(y, w.astype(int))
    mx, my = np.average(X, axis=0, weights=w), np.average(y, weights=w)
    Xc, yc = X - mx, y - my
    G, q, yty = Xc.T @ (w[:, None] * Xc), Xc.T @ (w * yc), float(yc @ (w * yc))
    alphas = grid(q, w.sum(), 0.5, 20)
    weighted = enet_path(G, q, yty, w.sum(), alphas, 0.5, tol=1e-12)
    _, _, Gr, qr, ytyr = centred(Xr, yr)
    repeated = enet_path(Gr, qr, ytyr, len(yr), alphas, 0.5, tol=1e-12)
    np.testing.assert_allclose(weighted.coefs, repeated.coefs, rtol=0, atol=1e-8)


def test_warm_start_and_zero_alpha() -> None:
    X, y = random_design(5)
    Xc, yc, G, q, yty = centred(X, y)
    n = len(y)
    # Above alpha_max every coefficient is zero, with no pass needed.
    top = enet_path(G, q, yty, n, [np.abs(q).max() / n * 1.01])
    assert not top.coefs.any() and top.n_iters[0] == 0
    # alpha = 0 is least squares.
    ols = enet_path(G, q, yty, n, [0.0], tol=1e-14)
    np.testing.assert_allclose(ols.coefs[0], np.linalg.solve(G, q), rtol=1e-9)
    # Started at the solution, a solve needs no pass.
    again = enet_path(G, q, yty, n, [0.05], coef_init=enet_path(G, q, yty, n, [0.05]).coefs[0])
    assert again.n_iters[0] == 0


def test_non_convergence_warns_with_the_gap() -> None:
    # More columns than rows: the working-set systems are singular, so the solver must
    # fall back to coordinate sweeps, and one sweep cannot reach tol=1e-14.
    rng = np.random.default_rng(6)
    X = rng.standard_normal((20, 60))
    y = X[:, :5].sum(1) + rng.standard_normal(20)
    _, _, G, q, yty = centred(X, y)
    with pytest.warns(ConvergenceWarning, match=r"max_iter=1 .*duality gap .* > tolerance"):
        path = enet_path(G, q, yty, 20, [1e-4], tol=1e-14, max_iter=1)
    assert path.dual_gaps[0] > 1e-14 * yty / 20
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        converged = enet_path(G, q, yty, 20, [1e-1], tol=1e-8, max_iter=100_000)
    assert converged.dual_gaps[0] <= 1e-8 * yty / 20


@pytest.mark.parametrize(
    ("alphas", "rho", "message"),
    [
        ([-0.1], 1.0, "alpha must be a finite number >= 0"),
        ([np.nan], 1.0, "alpha must be a finite number >= 0"),
        ([0.1], 1.5, r"l1_ratio must lie in \[0, 1\]"),
        ([0.1], -0.1, r"l1_ratio must lie in \[0, 1\]"),
        ([0.1, 0.2], 1.0, "decreasing order"),
        ([], 1.0, "non-empty"),
    ],
)
def test_bad_penalties_are_refused(alphas: list[float], rho: float, message: str) -> None:
    G, q = np.eye(2), np.ones(2)
    with pytest.raises(InputError, match=message):
        enet_path(G, q, 2.0, 10, alphas, rho)


def test_bad_problem_is_refused() -> None:
    with pytest.raises(InputError, match="one target at a time"):
        enet_path(np.eye(2), np.ones((2, 2)), 1.0, 10, [0.1])
    with pytest.raises(InputError, match="sum of the weights"):
        enet_path(np.eye(2), np.ones(2), 1.0, 0, [0.1])
    with pytest.raises(InputError, match="max_iter"):
        enet_path(np.eye(2), np.ones(2), 1.0, 10, [0.1], max_iter=0)
