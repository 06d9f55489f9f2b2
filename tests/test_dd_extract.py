"""Sums, residuals and gradients in double-double by extraction (solvers/dd_extract.py).

Oracle: exact rational arithmetic (fractions) on the float64 inputs. The claim is the
accuracy of double-double: a few units of 2⁻¹⁰⁶ of the largest term of each sum (of
Σ|terms| for the residual and the gradient, as solvers/dd.py states for its own).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from torchlinreg.solvers import dd, dd_extract

U = 2.0**-106


def _exact(values: np.ndarray) -> Fraction:
    return sum((Fraction(float(v)) for v in values), Fraction(0))


def _err(pair: tuple[torch.Tensor, torch.Tensor], index: tuple[int, ...], exact: Fraction) -> float:
    got = Fraction(float(pair[0][index])) + Fraction(float(pair[1][index]))
    return abs(float(got - exact))


def _terms(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """float64 terms with full 53-bit significands over a wide range of exponents."""
    v = rng.standard_normal(n) * 2.0 ** rng.integers(-40, 40, n)
    if kind == "cancelling":  # a sum far below its terms: what refinement residuals are
        v = np.concatenate([v, -v * (1 + 2.0**-45)])
    elif kind == "zero":
        v = np.concatenate([v, -v[::-1]])
    elif kind == "one huge":
        v[0] = 2.0**300
    return v


@pytest.mark.parametrize("n", [1, 2, 11, 1000, 2046, 2047, 20000])
@pytest.mark.parametrize("kind", ["random", "cancelling", "zero", "one huge"])
def test_sum_is_exact_to_double_double(n: int, kind: str) -> None:
    rng = np.random.default_rng(n)
    v = _terms(kind, n, rng)
    pair = dd_extract.extract_sum(torch.from_numpy(v).unsqueeze(0), dim=1)
    assert _err(pair, (0,), _exact(v)) <= 4 * U * np.abs(v).max()
    # And as a normalised pair: |lo| at most half an ulp of hi.
    assert abs(float(pair[1][0])) <= np.spacing(abs(float(pair[0][0]))) / 2


def test_sums_along_any_axis_are_independent() -> None:
    # Each sum takes σ from its own terms: a column of tiny terms beside a column of
    # huge ones keeps its own accuracy.
    rng = np.random.default_rng(1)
    v = rng.standard_normal((500, 3)) * np.array([2.0**200, 1.0, 2.0**-200])
    v[:, 1] = np.concatenate([v[:250, 1], -v[:250, 1] * (1 + 2.0**-50)])
    pair = dd_extract.extract_sum(torch.from_numpy(v), dim=0)
    for j in range(3):
        assert _err(pair, (j,), _exact(v[:, j])) <= 4 * U * np.abs(v[:, j]).max()


def test_zeros_and_tiny_terms() -> None:
    zeros = torch.zeros(1, 7, dtype=torch.float64)
    hi, lo = dd_extract.extract_sum(zeros, dim=1)
    assert float(hi[0]) == 0.0 and float(lo[0]) == 0.0
    # Terms below 2⁻⁸⁵⁰: exact to about 2⁻¹⁰⁰⁰ absolute (the floor of σ), no NaN.
    tiny = np.array([2.0**-1000, 3 * 2.0**-1010, -(2.0**-1000), 2.0**-1074])
    pair = dd_extract.extract_sum(torch.from_numpy(tiny).unsqueeze(0), dim=1)
    assert _err(pair, (0,), _exact(tiny)) <= 2.0**-1000
    # The input is left alone unless overwrite is asked for.
    v = torch.from_numpy(tiny.copy())
    dd_extract.extract_sum(v.unsqueeze(0), dim=1)
    assert torch.equal(v, torch.from_numpy(tiny))


@pytest.mark.parametrize("shape", [(1000, 11, 1), (300, 4, 3), (7, 1, 1)])
def test_residual_and_gradient_match_exact_arithmetic(shape: tuple[int, int, int]) -> None:
    n, p, k = shape
    rng = np.random.default_rng(n + p)
    A = rng.standard_normal((n, p)) * 2.0 ** rng.integers(-20, 20, (n, p))
    x = rng.standard_normal((p, k))
    b = A @ x * (1 + 1e-9 * rng.standard_normal((n, k)))  # a small residual: cancellation
    At, xt, bt = (torch.from_numpy(a) for a in (A, x, b))
    r = dd_extract.residual(At, xt, bt)
    Af = [[Fraction(float(a)) for a in row] for row in A]
    xf = [[Fraction(float(v)) for v in row] for row in x]
    exact_r = [
        [Fraction(float(b[i, t])) - sum(Af[i][j] * xf[j][t] for j in range(p)) for t in range(k)]
        for i in range(n)
    ]
    for i in range(n):
        for t in range(k):
            size = abs(b[i, t]) + np.abs(A[i] * x[:, t]).sum()
            assert _err(r, (i, t), exact_r[i][t]) <= 4 * U * size
    # Aᵀr of the double-double residual, exactly as given (hi + lo), against rationals.
    r_f = [[Fraction(float(r[0][i, t])) + Fraction(float(r[1][i, t])) for t in range(k)]
           for i in range(n)]  # fmt: skip
    g = dd_extract.rmatvec(At, *r)
    for j in range(p):
        for t in range(k):
            exact_g = sum(Af[i][j] * r_f[i][t] for i in range(n))
            size = sum(abs(float(Af[i][j] * r_f[i][t])) for i in range(n))
            assert _err(g, (j, t), exact_g) <= 4 * U * size


def test_agrees_with_the_twosum_cascade() -> None:
    # The same numbers as solvers/dd.py, to its accuracy: either may serve refinement.
    rng = np.random.default_rng(3)
    A = torch.from_numpy(rng.standard_normal((2000, 6)))
    x = torch.from_numpy(rng.standard_normal((6, 2)))
    b = A @ x + 1e-8 * torch.from_numpy(rng.standard_normal((2000, 2)))
    ours, theirs = dd_extract.residual(A, x, b), dd.residual(A, x, b)
    scale = float(b.abs().max())
    assert float(((ours[0] - theirs[0]) + (ours[1] - theirs[1])).abs().max()) <= 16 * U * scale
