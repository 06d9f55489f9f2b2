"""The in-memory absorption (:func:`demean_xy`, integer codes used as they are,
cluster codes taken from the factor they equal) against independent oracles: the
residuals of numpy's ``lstsq`` on the factors' dummy columns, :func:`alternating_projections`
of the concatenated [X, Y] where the direct solve is out of reach, :class:`LevelIndex`
coding (``np.unique``), and a fit whose cluster labels are text (coded apart).

Tolerances: against ``lstsq`` the projection's rounding error is about ε·κ·‖Z‖ for each
side (κ the ratio of the largest to the smallest nonzero singular value of the weighted
dummy matrix, computed in the test), so columns agree to 100·ε·κ of their scale — far
below any change of the maths (a missed level or a wrong effect moves the columns by
O(1)). Where both sides iterate the same alternating projections on the same matrix
they agree to the last bit. Codes are integers and must agree exactly (up to
renumbering, tested as the same partition).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchlinreg import LinearRegression
from torchlinreg.solvers.absorb import projection
from torchlinreg.solvers.absorb.alternating import alternating_projections
from torchlinreg.solvers.absorb.demean import demean_xy
from torchlinreg.solvers.absorb.factors import LevelIndex, cluster_codes, encode_in_memory

EPS = float(np.finfo(np.float64).eps)


def _data(seed: int, n: int = 3000, factors: tuple[int, ...] = (150, 11, 4)):  # type: ignore[no-untyped-def]
    """X (n × 3), Y (n × 2), weights and factor codes with levels of uneven size."""
    rng = np.random.default_rng(seed)
    codes = [torch.from_numpy(rng.choice(L, size=n, p=rng.dirichlet(np.ones(L)))) for L in factors]
    X = torch.from_numpy(rng.normal(size=(n, 3)) + 0.1 * codes[0].numpy()[:, None])
    Y = torch.from_numpy(rng.normal(size=(n, 2)) + codes[-1].numpy()[:, None])
    w = torch.from_numpy(rng.uniform(0.2, 3.0, n))
    return X, Y, w, codes


def _levels(codes: list[torch.Tensor]) -> list[int]:
    return [int(c.max()) + 1 for c in codes]


def _lstsq_residuals(Z: torch.Tensor, w: torch.Tensor | None, codes: list[torch.Tensor]):  # type: ignore[no-untyped-def]
    """Z less its weighted least-squares fit on every factor's dummy columns (numpy
    ``lstsq``, minimum norm: the dummies are rank deficient), and κ of the weighted
    dummies over their nonzero singular values."""
    D = np.concatenate(
        [np.eye(L)[c.numpy()] for c, L in zip(codes, _levels(codes), strict=True)], axis=1
    )
    root = np.ones(len(D)) if w is None else np.sqrt(w.numpy())
    A, B = D * root[:, None], Z.numpy() * root[:, None]
    coef, _, rank, sv = np.linalg.lstsq(A, B, rcond=None)
    kappa = sv[0] / sv[rank - 1]
    return torch.from_numpy(Z.numpy() - D @ coef), kappa


@pytest.mark.parametrize("n_factors", [1, 2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_demean_xy_equals_demean_of_the_concatenation(n_factors: int, weighted: bool) -> None:
    X, Y, w, codes = _data(n_factors * 10 + weighted)
    codes = codes[:n_factors]
    weights = w if weighted else None
    ref, kappa = _lstsq_residuals(torch.cat([X, Y], 1), weights, codes)
    got = demean_xy(X, Y, weights, codes, _levels(codes))
    assert got.method == "direct"
    assert got.redundant == n_factors - 1  # a connected panel: one per further factor
    assert got.X.is_contiguous() and got.Y.is_contiguous()
    scale = float(torch.cat([X, Y], 1).abs().max())
    atol = 100 * EPS * kappa * scale
    torch.testing.assert_close(got.X, ref[:, :3], rtol=0, atol=atol)
    torch.testing.assert_close(got.Y, ref[:, 3:], rtol=0, atol=atol)
    for f, c in enumerate(codes):  # level weights: counts, or Σ w per level
        ones = torch.ones(len(c), dtype=torch.float64) if weights is None else weights
        expected = torch.zeros(_levels(codes)[f], dtype=torch.float64).index_add_(0, c, ones)
        torch.testing.assert_close(got.level_weights[f], expected, rtol=1e-15, atol=0)


def test_demean_xy_alternating_equals_demean(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the direct solve is out of reach both iterate on the same matrix."""
    monkeypatch.setattr(projection, "MAX_REST_LEVELS", 0)
    X, Y, w, codes = _data(5, factors=(150, 11))
    ref = alternating_projections(torch.cat([X, Y], 1), w, codes, _levels(codes))
    got = demean_xy(X, Y, w, codes, _levels(codes))
    assert got.method == "alternating"
    assert got.iterations == ref.iterations > 1
    torch.testing.assert_close(got.X, ref.residuals[:, :3], rtol=0, atol=0)
    torch.testing.assert_close(got.Y, ref.residuals[:, 3:], rtol=0, atol=0)


def test_too_many_cells_iterates_like_demean(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cross-tabulation over MAX_CELLS is not formed: alternating projections."""
    monkeypatch.setattr(projection, "MAX_CELLS", 100)
    X, Y, w, codes = _data(6, factors=(150, 11))
    got = demean_xy(X, Y, None, codes, _levels(codes))
    ref = alternating_projections(torch.cat([X, Y], 1), None, codes, _levels(codes))
    assert got.method == "alternating"
    torch.testing.assert_close(got.X, ref.residuals[:, :3], rtol=0, atol=0)


def _same_partition(a: torch.Tensor, b: np.ndarray) -> bool:
    """Codes that number the same levels in the same (sorted) order."""
    return bool(np.array_equal(a.numpy(), b))


@pytest.mark.parametrize(
    "labels",
    [
        np.arange(40) % 7,  # already the codes: used as they are
        (np.arange(40) % 7) * 3 - 5,  # gaps and an offset
        np.array([2**40, 3, 2**40, -(2**41), 3]),  # a range too wide: np.unique
        (np.arange(40) % 7).astype(np.int32),
    ],
)
def test_integer_codes_are_np_unique_inverse(labels: np.ndarray) -> None:
    (codes,) = encode_in_memory(["f"], [labels])
    _, inverse = np.unique(labels, return_inverse=True)
    assert codes.dtype == torch.int64
    assert _same_partition(codes, inverse.reshape(-1))


def test_cluster_codes_reuse_the_equal_factor_and_code_others() -> None:
    rng = np.random.default_rng(0)
    firm, year = rng.integers(0, 30, 500), rng.integers(0, 5, 500)
    codes = encode_in_memory(["firm", "year"], [firm, year])
    assert cluster_codes(firm.copy(), [firm, year], codes) is codes[0]
    text = np.array([f"g{v}" for v in rng.integers(0, 9, 500)], dtype=object)
    got = cluster_codes(text, [firm, year], codes)
    expected = LevelIndex("groups").encode(text)
    assert _same_partition(got, expected.numpy())


def test_cluster_by_text_labels_equals_cluster_by_the_factor() -> None:
    """Clusters given as text (coded apart, nestedness checked level by level) and as
    the factor's own integer labels (codes reused) give the same nested flags and the
    same standard errors."""
    rng = np.random.default_rng(3)
    n = 2000
    firm, year = rng.integers(0, 60, n), rng.integers(0, 8, n)
    X = rng.normal(size=(n, 2)) + 0.1 * firm[:, None]
    y = X @ [1.0, -2.0] + rng.normal(size=60)[firm] + rng.normal(size=n)
    absorb = {"firm": firm, "year": year}
    by_codes = LinearRegression(cov_type="cluster").fit(X, y, groups=firm, absorb=absorb)
    text = np.array([f"firm-{v}" for v in firm], dtype=object)
    by_text = LinearRegression(cov_type="cluster").fit(X, y, groups=text, absorb=absorb)
    assert by_codes.absorbed_.nested == by_text.absorbed_.nested == (True, False)
    se = [[c.std_error for c in m.summary().coefficients] for m in (by_codes, by_text)]
    np.testing.assert_allclose(se[1], se[0], rtol=1e-12)


def test_read_only_labels_are_copied_not_wrapped() -> None:
    """Labels that are already codes are used in place only when writable: a read-only
    column (pandas' copy-on-write) wrapped by torch would warn that torch cannot
    protect it, once per process."""
    labels = np.arange(12) % 4
    labels.flags.writeable = False
    (codes,) = encode_in_memory(["f"], [labels])
    assert not np.shares_memory(codes.numpy(), labels)
    assert np.array_equal(codes.numpy(), labels)
    strided = np.c_[labels, labels + 3][:, 1]  # a column of a 2-D array, offset 3
    (codes,) = encode_in_memory(["f"], [strided])
    assert np.array_equal(codes.numpy(), labels)
