"""Small in-memory exact fits run on one torch thread and restore the setting after.

Thread pool wake-ups cost milliseconds per kernel on a busy machine, more than a small
fit's arithmetic (docs/benchmarks.md, Small fits); the setting is process-wide, so a
fit must leave it as it found it, also when it warns or fails.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from torchlinreg import LinearRegression, RankDeficientWarning, Ridge


@pytest.fixture
def two_threads():  # type: ignore[no-untyped-def]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("model", [LinearRegression(), Ridge(alpha=0.5)])
def test_a_small_fit_leaves_the_thread_count_as_it_was(two_threads, model) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 10))
    y = X @ rng.standard_normal(10) + rng.standard_normal(1000)
    model.fit(X, y)
    assert torch.get_num_threads() == 2
    # The same coefficients as numpy's least squares (ridge: its normal equations).
    A = np.column_stack([np.ones(1000), X])
    if isinstance(model, Ridge):
        Xc, yc = X - X.mean(0), y - y.mean()
        expected = np.linalg.solve(Xc.T @ Xc + 0.5 * np.eye(10), Xc.T @ yc)
    else:
        expected = np.linalg.lstsq(A, y, rcond=None)[0][1:]
    np.testing.assert_allclose(model.coef_, expected, rtol=1e-10, atol=1e-12)


def test_a_warning_inside_a_small_fit_points_at_the_caller(two_threads) -> None:  # type: ignore[no-untyped-def]
    X = np.column_stack([np.arange(20.0), 2 * np.arange(20.0)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LinearRegression().fit(X, np.arange(20.0))
    rank = [w for w in caught if issubclass(w.category, RankDeficientWarning)]
    assert rank and rank[0].filename == __file__
    assert torch.get_num_threads() == 2


def test_a_failed_solve_restores_the_thread_count(two_threads, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def fail(self, state):  # type: ignore[no-untyped-def]
        raise RuntimeError("solve failed")

    monkeypatch.setattr(LinearRegression, "_solve", fail)
    with pytest.raises(RuntimeError, match="solve failed"):
        LinearRegression().fit(np.arange(20.0).reshape(10, 2), np.arange(10.0))
    assert torch.get_num_threads() == 2
