"""Minimum-norm solutions of rank-deficient designs against exact rational arithmetic.

On integer designs scaled by powers of two the data are exactly representable and
exactly rank deficient, so the minimum-norm solution (over the slopes, the intercept
not penalised, in the data's units) is rational: G⁺h with G = XcᵀWXc, h = XcᵀWyc for the
weighted-centred design. The solver must reach it to rounding: the bound is a few
units of p·ε·κ, κ the condition number of the kept (nonzero) singular values of the
column-scaled design, whatever the scales of the columns.
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pytest

from torchlinreg import LinearRegression, RankDeficientWarning

EPS = np.finfo(np.float64).eps


def exact_min_norm(X, y, w, fit_intercept):  # type: ignore[no-untyped-def]
    """(slopes, intercept, rank) of the minimum-norm weighted least-squares solution, in
    rationals: β = G⁺h, found as β = G·c for any c with G·G·c = h."""
    n, p = X.shape
    w = [Fraction(1)] * n if w is None else [Fraction(v) for v in w]
    A = [[Fraction(v) for v in row] for row in X.tolist()]
    b = [Fraction(v) for v in y.tolist()]
    xm, ym = [Fraction(0)] * p, Fraction(0)
    if fit_intercept:
        total = sum(w)
        xm = [sum(w[i] * A[i][j] for i in range(n)) / total for j in range(p)]
        ym = sum(w[i] * b[i] for i in range(n)) / total
    A = [[A[i][j] - xm[j] for j in range(p)] for i in range(n)]
    b = [v - ym for v in b]
    G = [[sum(w[i] * A[i][r] * A[i][c] for i in range(n)) for c in range(p)] for r in range(p)]
    h = [sum(w[i] * A[i][r] * b[i] for i in range(n)) for r in range(p)]
    M = [[sum(G[r][k] * G[k][c] for k in range(p)) for c in range(p)] + [h[r]] for r in range(p)]
    pivots: list[int] = []
    for c in range(p):  # reduced row echelon form; free unknowns are zero
        r = len(pivots)
        k = next((i for i in range(r, p) if M[i][c] != 0), None)
        if k is None:
            continue
        M[r], M[k] = M[k], M[r]
        M[r] = [v / M[r][c] for v in M[r]]
        for i in range(p):
            if i != r and M[i][c] != 0:
                f = M[i][c]
                M[i] = [a - f * q for a, q in zip(M[i], M[r], strict=True)]
        pivots.append(c)
    c_vec = [Fraction(0)] * p
    for i, c in enumerate(pivots):
        c_vec[c] = M[i][p]
    beta = [sum(G[r][k] * c_vec[k] for k in range(p)) for r in range(p)]
    intercept = ym - sum(xm[j] * beta[j] for j in range(p))
    return np.array([float(v) for v in beta]), float(intercept), len(pivots)


def error_bound(X, y, w, fit_intercept, rank, coef):  # type: ignore[no-untyped-def]
    """A few units of m·ε·(κ + κ²·tan θ), the first-order error of a backward-stable
    least-squares solve: m = p + 2 columns of the [1, X, y] the QR factors, κ of the
    nonzero singular values of the weighted-centred, column-normalised X, and
    tan θ = ‖residual‖ / ‖fitted‖ of the exact solution."""
    s = np.sqrt(np.ones(len(X)) if w is None else w)
    mean = (lambda a: np.average(a, axis=0, weights=s**2)) if fit_intercept else (lambda a: 0)
    A = (X - mean(X)) * s[:, None]
    b = (y - mean(y)) * s
    norms = np.linalg.norm(A, axis=0)
    sv = np.linalg.svd(A[:, norms > 0] / norms[norms > 0], compute_uv=False)
    kappa = sv[0] / sv[rank - 1]
    fitted = A @ coef
    tan = np.linalg.norm(b - fitted) / np.linalg.norm(fitted)
    return 10 * (X.shape[1] + 2) * EPS * (kappa + kappa**2 * tan)


def design(seed: int, wide: bool):  # type: ignore[no-untyped-def]
    """Integer base columns, repeated (as is or times −3), columns scaled by powers of
    two spanning 2^±30 (tall: the base columns independent over the rows of positive
    weight, so every dependency is a repetition) or 2^±5 (wide, p > n: generic
    dependencies, whose minimum-norm answer is as sensitive as the scales are spread).
    Targets are distinct integers, so the answer is never zero."""
    rng = np.random.default_rng(seed)
    if wide:
        n = int(rng.integers(3, 7))
        k = int(rng.integers(n + 1, n + 6))
    else:
        k = int(rng.integers(2, 5))
        n = int(rng.integers(k + 2, 12))
    base = rng.integers(-5, 6, size=(n, k)).astype(float)
    cols = [base[:, j] for j in range(k)]
    for _ in range(int(rng.integers(1, 6))):
        cols.append(cols[int(rng.integers(0, k))] * (1.0 if rng.random() < 0.5 else -3.0))
    X = np.column_stack(cols)[:, rng.permutation(len(cols))]
    span = 5 if wide else 30
    X = X * 2.0 ** rng.integers(-span, span, size=X.shape[1])
    y = rng.permutation(np.arange(-9.0, 10.0))[:n]
    w = rng.integers(0, 4, size=n).astype(float)
    w[rng.permutation(n)[: 2 if wide else k + 2]] += 1.0  # enough observations
    return X, y, w


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_minimum_norm_matches_exact_rationals(seed, wide, fit_intercept, weighted) -> None:
    X, y, w = design(seed, wide)
    w = w if weighted else None
    coef, intercept, rank = exact_min_norm(X, y, w, fit_intercept)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficientWarning)
        model = LinearRegression(fit_intercept=fit_intercept).fit(X, y, sample_weight=w)
    assert model.rank_ == rank + int(fit_intercept)
    bound = error_bound(X, y, w, fit_intercept, rank, coef)
    size = np.abs(coef).max()
    assert np.abs(model.coef_ - coef).max() <= bound * size
    # The intercept is a mean minus x̄ᵀβ: its error is that of the slopes times |x̄|.
    scale = abs(intercept) + size * np.abs(X).max()
    assert abs(model.intercept_ - intercept) <= bound * scale


def test_duplicates_at_scales_2_to_the_plus_minus_30_are_solved_to_rounding() -> None:
    # The 1e-6 truncation of the null vectors this replaces was off by 1e-4 here: rounding
    # in the null space of the scaled design, multiplied by the 2^59 range of the scales.
    rng = np.random.default_rng(1)
    a, b, c = rng.integers(-5, 6, size=(3, 9)).astype(float)
    X = np.c_[b * 2.0**23, a * 2.0**-14, c * 2.0**28, -3 * b * 2.0**-20,
              -3 * a * 2.0**12, c * 2.0**31, b * 2.0**-22, -3 * b * 2.0**-28]  # fmt: skip
    y = rng.integers(-9, 10, size=9).astype(float)
    coef, _, _ = exact_min_norm(X, y, None, True)
    with pytest.warns(RankDeficientWarning, match="rank 4 of 9"):
        model = LinearRegression().fit(X, y)
    bound = error_bound(X, y, None, True, 3, coef)
    assert np.abs(model.coef_ - coef).max() <= bound * np.abs(coef).max()
    # Each group of copies shares its coefficient in proportion to the column sizes, so
    # even the tiny coefficients of the small copies are right to rounding.
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-13)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_wide_design_matches_numpy_lstsq_on_the_centred_design(seed, fit_intercept) -> None:
    rng = np.random.default_rng(seed)
    n, p = 8, 20
    X = rng.normal(size=(n, p)) * 2.0 ** rng.integers(-3, 4, size=p) + 5.0
    X[:, 3] = X[:, 0]  # and a repeated column
    y = rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, size=n)
    s = np.sqrt(w)
    Xc = X - np.average(X, axis=0, weights=w) if fit_intercept else X
    yc = y - np.average(y, weights=w) if fit_intercept else y
    A = Xc * s[:, None]
    ref = np.linalg.lstsq(A, yc * s, rcond=None)[0]
    with pytest.warns(RankDeficientWarning):
        model = LinearRegression(fit_intercept=fit_intercept).fit(X, y, sample_weight=w)
    bound = error_bound(X, y, w, fit_intercept, n - int(fit_intercept), ref)
    assert np.abs(model.coef_ - ref).max() <= bound * np.abs(ref).max()


def test_only_the_columns_in_a_dependency_are_named() -> None:
    rng = np.random.default_rng(3)
    a, b, c, d = rng.normal(size=(4, 40))
    # Two duplicated pairs (their null-space basis is not unique) and independent columns
    # at scales 2^±40: only the pairs are dependent, whichever basis the SVD returns.
    X = np.c_[a, 2.0**40 * c, a, b * 2.0**-40, b * 2.0**-40, d]
    y = rng.normal(size=40)
    with pytest.warns(RankDeficientWarning, match=r"dependent: x0, x2, x3, x4\."):
        LinearRegression().fit(X, y)
