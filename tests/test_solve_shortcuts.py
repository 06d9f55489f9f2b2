"""Shortcuts in the exact solve that must not change a bit of its answer
(solvers/solve.py, solvers/conditioning.py):

- the triangular solve on R itself instead of the copy R·D (D powers of two): the same
  bits as the scaled solve, for factors graded over 16 orders of magnitude;
- the condition bracket of R·D from R and D (the scale applied to the vectors): the
  same bracket as from the copy; the panelled triangular products equal R·v and Rᵀ·u;
- the solution cached per R: each caller gets its own tensors.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from torchlinreg import LinearRegression
from torchlinreg.solvers import conditioning
from torchlinreg.solvers.conditioning import Conditioning
from torchlinreg.solvers.scaling import column_scale
from torchlinreg.solvers.solve import _triangular_solve, solve_ols


def graded_factor(p: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(2 * p, p, generator=g, dtype=torch.float64)
    return torch.linalg.qr(A * torch.logspace(-8, 8, p, dtype=torch.float64), mode="r").R


@pytest.mark.parametrize("p", [3, 40, 300, 700])
def test_the_unscaled_solve_has_the_bits_of_the_scaled_one(p: int) -> None:
    R = graded_factor(p)
    D = column_scale(R)
    b = torch.randn(p, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    scaled = D.unsqueeze(1) * torch.linalg.solve_triangular(R * D, b, upper=True)
    assert torch.equal(_triangular_solve(R, b, D), scaled)


def test_the_bracket_from_r_and_its_scale_is_the_bracket_of_the_copy(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(conditioning, "PANEL", 64)  # several panels at p = 200
    R = graded_factor(200, seed=2)
    D = column_scale(R)
    copied, scaled = Conditioning(R * D), Conditioning(R, lambda: D)
    assert copied.kappa == scaled.kappa  # the same numbers to the bit
    assert not scaled.exact
    restored = pickle.loads(pickle.dumps(scaled))  # the function is not pickled
    np.testing.assert_array_equal(restored.singular_values, copied.singular_values)


def test_the_panelled_products_are_the_triangular_products(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(conditioning, "PANEL", 7)
    g = torch.Generator().manual_seed(3)
    R = torch.randn(30, 30, generator=g, dtype=torch.float64).triu()
    v = torch.randn(30, generator=g, dtype=torch.float64)
    torch.testing.assert_close(conditioning._mv(R, v), R @ v, rtol=1e-14, atol=1e-13)
    torch.testing.assert_close(conditioning._mv_t(R, v), R.T @ v, rtol=1e-14, atol=1e-13)


def test_the_cached_solution_hands_out_copies() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 6))
    model = LinearRegression().fit(X, X @ np.arange(6.0) + 1.0)
    first = solve_ols(model.state_)
    first.coef.zero_()
    again = solve_ols(model.state_)
    np.testing.assert_allclose(again.coef[:, 0].numpy(), np.arange(6.0), atol=1e-10)
    model.coef_[:] = 0.0  # a user writing into coef_ changes no later solve either
    np.testing.assert_allclose(
        solve_ols(model.state_).coef[:, 0].numpy(), np.arange(6.0), atol=1e-10
    )
