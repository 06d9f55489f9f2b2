"""The narrow designs' Gram matrix (solvers/gram.py, ``_plain_gram``): XᵀX and
Xᵀ[Y − y₀, 1] (cross products and column sums from one product) assembled into G for
M = √w·[1, X, Y − y₀], against MᵀM formed from M itself in numpy (exact-rounding
sums of a few hundred rows: agreement to a few ulps of the largest entry)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchlinreg.data.chunks import validate_chunk
from torchlinreg.solvers import gram


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_plain_gram_is_the_cross_product_of_the_augmented_rows(
    weighted: bool, fit_intercept: bool, dtype: type
) -> None:
    rng = np.random.default_rng(3)
    n, p, k = 300, 5, 2
    X = (rng.normal(size=(n, p)) * [1, 10, 0.1, 3, 1] + [0, 5, -2, 1, 100]).astype(dtype)
    Y = rng.normal(size=(n, k)) * [1, 50] + [3, -7]
    w = rng.uniform(0.1, 2.0, n) if weighted else None
    chunk = validate_chunk(X, Y, w)
    y0 = torch.tensor([2.5, -6.0], dtype=torch.float64)
    G = gram._plain_gram(chunk, fit_intercept, y0).numpy()

    M = np.hstack([X.astype(np.float64), Y - y0.numpy()])
    if fit_intercept:
        M = np.hstack([np.ones((n, 1)), M])
    if w is not None:
        M = M * np.sqrt(w)[:, None]
    expected = M.T @ M
    assert G.shape == expected.shape
    # Sums of n products: error ≲ n·ε·Σ|mᵢ||mⱼ| ≤ n·ε·(scale of the largest entry).
    assert np.abs(G - expected).max() <= 10 * n * np.finfo(float).eps * np.abs(expected).max()
    # A wrong block (the sums or the ones row misplaced) would be off by O(1).
    np.testing.assert_allclose(G, G.T, rtol=0, atol=1e-9 * np.abs(expected).max())


def test_the_factor_of_the_unscaled_gram_is_that_of_the_scaled_one_to_the_bit() -> None:
    """``_factor`` factors G as it is: for D the power-of-two scale of G's diagonal,
    chol(D·G·D) = chol(G)·D exactly while the diagonal is in the normal range, so the
    scaling (two copies of G) changed nothing. Columns graded over 120 orders."""
    from torchlinreg.solvers.scaling import power_of_two_scale

    g = torch.Generator().manual_seed(7)
    p = 150
    A = torch.randn(3 * p, p, generator=g, dtype=torch.float64)
    M = A * torch.logspace(-60, 60, p, dtype=torch.float64)
    G = M.T @ M
    D = power_of_two_scale(torch.diagonal(G).sqrt())
    scaled, info_s = torch.linalg.cholesky_ex(G * D.unsqueeze(0) * D.unsqueeze(1), upper=True)
    plain, info_p = torch.linalg.cholesky_ex(G, upper=True)
    assert int(info_s) == int(info_p) == 0
    assert torch.equal(plain * D.unsqueeze(0), scaled)  # U·D, U the factor of G
