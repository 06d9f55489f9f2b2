"""Shared test helpers: the tutorial's own program, as an oracle."""

from __future__ import annotations

import numpy as np
import pytest


def tutorial_trajectory(
    lr: float = 0.01, nb_epochs: int = 3000, optimizer_name: str = "SGD", **options: float
) -> list[tuple[float, float, float]]:
    """Run the tutorial's code as written (autograd + torch.optim) and return, for every
    epoch, ``(W, b, cost)`` exactly as its log line formats them: W and b after the
    step, the cost before it. ``optimizer_name`` names the torch.optim class (the tutorial's
    is SGD)."""
    import torch
    import torch.optim as optim

    torch.manual_seed(1)
    x_train = torch.FloatTensor([[1], [2], [3]])
    y_train = torch.FloatTensor([[2], [4], [6]])
    W = torch.zeros(1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    optimizer = getattr(optim, optimizer_name)([W, b], lr=lr, **options)
    rows = []
    for _epoch in range(nb_epochs + 1):
        pred = W * x_train + b
        error = torch.mean((pred - y_train) ** 2)
        optimizer.zero_grad()
        error.backward()
        optimizer.step()
        rows.append((W.item(), b.item(), error.item()))
    return rows


def tutorial_log(lr: float = 0.01, nb_epochs: int = 3000, every: int = 200) -> list[str]:
    """The tutorial's printed log: every ``every`` epochs, in its own format."""
    return [
        "Epoch {:4d}/{} W: {:.3f}, b: {:.3f} Cost: {:.6f}".format(epoch, nb_epochs, W, b, cost)
        for epoch, (W, b, cost) in enumerate(tutorial_trajectory(lr, nb_epochs))
        if epoch % every == 0
    ]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def lstsq_fit(X, y, sample_weight=None, fit_intercept=True):
    """The oracle: numpy's least squares (weighted via √w row scaling)."""
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    A = np.column_stack([np.ones(len(X)), X]) if fit_intercept else X  # θ = [b; W]
    if sample_weight is not None:
        s = np.sqrt(np.asarray(sample_weight, np.float64))
        A, y = A * s[:, None], (y.T * s).T
    theta = np.linalg.lstsq(A, y, rcond=None)[0]
    if fit_intercept:
        return theta[1:].T, theta[0]
    return theta.T, np.zeros(theta.shape[1:]) if theta.ndim > 1 else 0.0


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files read in small batches (CSV blocks of 2 KiB, Parquet batches of 64 rows),
    so that a few hundred rows make several chunks."""
    monkeypatch.setattr("torchlinreg.data.csv_source.CSV_BLOCK_BYTES", 2048)
    monkeypatch.setattr("torchlinreg.data.parquet_source.BATCH_ROWS", 64)
