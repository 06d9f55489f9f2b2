"""The mini-batch epoch (training/batches.py) against the plain definition of SGD.

The oracle is the loop a PyTorch user writes: each epoch ``randperm(n)`` from the
shuffling generator (``arange(n)`` without shuffling), batch ``j`` the rows
``order[j·B:(j+1)·B]`` indexed out of the data, the batch's loss divided by a full
batch's expected weight ``Σ_batch w·loss(r) / (Σw·B/n)`` (``B`` when unweighted: the
batch's mean loss, but for the short last batch, which moves θ by its share of a step)
differentiated by autograd, one ``optimizer.step()``, batches of zero weight skipped.
The divisor makes a batch gradient an unbiased estimate of the full weighted gradient,
checked exactly below, and SGD with weights then converges to the weighted
least-squares fit (numpy lstsq), whatever the batch size. The trainer instead copies chunks of rows into buffers, binds the
loss once per batch position and takes the closed-form gradient.

Tolerance: float64, and the two differ only in how each gradient is summed (closed-form
matrix products against autograd's kernels): every step's update differs by a few units
in the last place of the gradient, ~1e-16 relative. At a stable step the iteration is
a contraction, so such differences do not grow; over the ~100 steps here they add up
to at most ~1e-14 of the parameters' size. rtol 1e-10 leaves room for other processors
and BLAS builds while a batch taken in another order, a batch skipped or a weight
misplaced moves the parameters by 1e-3 or more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from torchlinreg.training import batches
from torchlinreg.training.loop import train
from torchlinreg.training.losses import Huber, SquaredError
from torchlinreg.training.optimizers import _plain_sgd_update, plain_step

RTOL, ATOL = 1e-10, 1e-12


def problem(
    rng: np.random.Generator, n: int = 203, p: int = 4, k: int = 1, weighted: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    X = torch.tensor(rng.normal(size=(n, p)))
    y = (
        X @ torch.tensor(rng.normal(size=(p, k)))
        + 1.5
        + 0.1 * torch.tensor(rng.normal(size=(n, k)))
    )
    w = None
    if weighted:
        w = torch.tensor(rng.uniform(0.5, 2.0, size=n))
        w[:40] = 0.0  # whole batches of no weight, to be skipped
    return X, y, w


def trained(
    X: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor | None,
    *,
    loss: Any = None,
    fit_intercept: bool = True,
    optimizer: str = "sgd",
    options: dict[str, Any] | None = None,
    lr: float = 0.05,
    epochs: int = 3,
    batch_size: int = 16,
    shuffle: bool = True,
    seed: int = 7,
) -> tuple[torch.Tensor, list[float], torch.Tensor]:
    """The trainer's θ (intercept first), per-epoch costs and generator state after."""
    generator = torch.Generator().manual_seed(seed)
    q = X.shape[1] + fit_intercept
    result = train(
        X,
        y,
        w,
        theta0=torch.zeros(q, y.shape[1], dtype=X.dtype),
        fit_intercept=fit_intercept,
        target_1d=False,
        loss=loss or SquaredError(),
        optimizer=optimizer,
        lr=lr,
        optimizer_options=options,
        epochs=epochs - 1,  # train's epochs=E runs E + 1 passes
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        log_every=None,
        log=None,
    )
    return result.theta, result.history.cost, generator.get_state()


def squared(r: torch.Tensor) -> torch.Tensor:
    return r**2


def huber(r: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.huber_loss(r, torch.zeros_like(r), reduction="none", delta=0.3)


def reference(
    X: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor | None,
    *,
    per_row: Callable[[torch.Tensor], torch.Tensor] = squared,
    fit_intercept: bool = True,
    optimizer: type[torch.optim.Optimizer] = torch.optim.SGD,
    options: dict[str, Any] | None = None,
    lr: float = 0.05,
    epochs: int = 3,
    batch_size: int = 16,
    shuffle: bool = True,
    seed: int = 7,
) -> tuple[torch.Tensor, list[float], torch.Tensor]:
    """The plain loop (module docstring): θ, per-epoch mean costs, generator state."""
    n = X.shape[0]
    A = torch.cat([X.new_ones(n, 1), X], dim=1) if fit_intercept else X
    weights = torch.ones(n, dtype=X.dtype) if w is None else w
    theta = torch.zeros(A.shape[1], y.shape[1], dtype=X.dtype, requires_grad=True)
    opt = optimizer([theta], lr=lr, **(options or {}))
    generator = torch.Generator().manual_seed(seed)
    costs = []
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        summed = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            wb = weights[idx]
            if not wb.sum() > 0:
                continue
            total = (wb[:, None] * per_row(A[idx] @ theta - y[idx])).sum()
            opt.zero_grad()
            # Every batch, the short last one too, is divided by a full batch's expected
            # weight: the short batch moves θ by its share of a step.
            (total / (weights.sum() * batch_size / n)).backward()
            opt.step()
            summed += float(total.detach())
        costs.append(summed / float(weights.sum()))
    return theta.detach(), costs, generator.get_state()


def assert_same(ours: tuple[Any, ...], plain: tuple[Any, ...]) -> None:
    theta, costs, state = ours
    theta_ref, costs_ref, state_ref = plain
    torch.testing.assert_close(theta, theta_ref, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(costs, costs_ref, rtol=RTOL, atol=ATOL)
    # One randperm an epoch, nothing more: checkpoints resume with the same draws.
    assert torch.equal(state, state_ref)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 3 batches here (16 rows × 6 numbers × 8 bytes × 3), so an epoch of
    203 rows crosses chunk boundaries, ends on a short chunk and a short batch."""
    monkeypatch.setattr(batches, "CHUNK_BYTES", 16 * 6 * 8 * 3)


def test_chunks_hold_whole_batches() -> None:
    A, y = torch.zeros(1000, 5, dtype=torch.float64), torch.zeros(1000, 1, dtype=torch.float64)
    assert batches.chunk_rows(A, y, None, 16) == 48  # 3 batches of 6 × 8 bytes
    assert batches.chunk_rows(A, y, None, 10_000) == 10_000  # at least one batch


@pytest.mark.parametrize("shuffle", [True, False])
def test_plain_sgd_equals_the_plain_loop(rng, shuffle) -> None:
    X, y, _ = problem(rng)
    assert_same(trained(X, y, None, shuffle=shuffle), reference(X, y, None, shuffle=shuffle))


def test_weights_and_skipped_batches_equal_the_plain_loop(rng) -> None:
    X, y, w = problem(rng, weighted=True)
    assert_same(trained(X, y, w), reference(X, y, w))
    assert_same(trained(X, y, w, shuffle=False), reference(X, y, w, shuffle=False))


def test_no_intercept_and_several_targets_equal_the_plain_loop(rng) -> None:
    X, y, w = problem(rng, k=3, weighted=True)
    assert_same(trained(X, y, w, fit_intercept=False), reference(X, y, w, fit_intercept=False))


def test_huber_equals_the_plain_loop(rng) -> None:
    X, y, _ = problem(rng)
    y[::7] += 5.0  # outliers, so both branches of the loss are taken
    assert_same(trained(X, y, None, loss=Huber(0.3)), reference(X, y, None, per_row=huber))


@pytest.mark.parametrize(
    ("name", "cls", "options", "lr"),
    [
        ("sgd", torch.optim.SGD, {"momentum": 0.9}, 0.02),
        ("sgd", torch.optim.SGD, {"momentum": 0.5, "nesterov": True, "weight_decay": 0.1}, 0.02),
        ("adam", torch.optim.Adam, {}, 0.01),
    ],
)
def test_other_optimizers_equal_the_plain_loop(rng, name, cls, options, lr) -> None:
    X, y, w = problem(rng, weighted=True)
    assert_same(
        trained(X, y, w, optimizer=name, options=options, lr=lr),
        reference(X, y, w, optimizer=cls, options=options, lr=lr),
    )


def test_batches_are_the_rows_of_the_seeded_order(rng) -> None:
    """Batch j is rows order[j·B:(j+1)·B] of the epoch's randperm, in that order."""
    n, B = 203, 16
    A = torch.arange(n, dtype=torch.float64).reshape(n, 1)
    seen: list[list[int]] = []

    class Recording:
        def bind(self, theta, A, y, w, weight_sum):  # type: ignore[no-untyped-def]
            seen.append([int(v) for v in A[:, 0]])
            return lambda: torch.zeros((), dtype=A.dtype)

    epoch = batches.MiniBatchEpoch(
        A,
        A.clone(),
        None,
        None,
        torch.zeros(1, 1, dtype=torch.float64),
        Recording(),
        lambda evaluate: evaluate(),
        B,
        True,
        torch.Generator().manual_seed(3),
    )
    expected = torch.Generator().manual_seed(3)
    for _ in range(2):
        seen.clear()
        epoch()
        order = torch.randperm(n, generator=expected).tolist()
        assert seen == [order[s : s + B] for s in range(0, n, B)]


def test_plain_sgd_update_is_sgds_step_bit_for_bit(rng) -> None:
    theta = torch.tensor(rng.normal(size=(5, 2)), requires_grad=True)
    twin = theta.detach().clone().requires_grad_(True)
    opt, opt_twin = torch.optim.SGD([theta], lr=0.3), torch.optim.SGD([twin], lr=0.3)
    step = plain_step(opt)
    for _ in range(3):
        grad = torch.tensor(rng.normal(size=(5, 2)))
        theta.grad, twin.grad = grad.clone(), grad.clone()
        step()
        opt_twin.step()
        assert torch.equal(theta, twin)
    opt.param_groups[0]["lr"] = 0.1  # read at every step
    opt_twin.param_groups[0]["lr"] = 0.1
    step()
    opt_twin.step()
    assert torch.equal(theta, twin)


@pytest.mark.parametrize(
    "options",
    [{"momentum": 0.9}, {"weight_decay": 0.1}, {"maximize": True}, {"foreach": True}],
)
def test_sgd_with_more_than_a_plain_step_is_left_to_torch(options) -> None:
    theta = torch.zeros(3, 1, requires_grad=True)
    theta.grad = torch.ones(3, 1)
    assert not _plain_sgd_update(torch.optim.SGD([theta], lr=0.1, **options))
    assert torch.equal(theta, torch.zeros(3, 1))
    opt = torch.optim.SGD([theta], lr=torch.tensor(0.1))
    assert not _plain_sgd_update(opt)


def test_adam_does_not_take_the_sgd_update() -> None:
    theta = torch.zeros(3, 1, requires_grad=True)
    theta.grad = torch.ones(3, 1)
    adam = torch.optim.Adam([theta], lr=0.1)
    plain_step(adam)()
    assert adam.state[theta]["step"] == 1  # Adam's own step ran


@pytest.mark.parametrize("batch_size", [1, 7])
def test_weighted_batch_gradients_average_to_the_full_gradient(rng, batch_size) -> None:
    """Each batch's gradient is divided by a full batch's expected weight Σw·B/n, so the mean over
    an epoch's batches (n/B of them, a skipped batch counting as a zero gradient) is
    the full weighted gradient 2/Σw·Aᵀ(w ⊙ r), to rounding (float64, ~1e-15; dividing by
    each batch's own weight instead misses it by ~1e-1)."""
    X, y, w = problem(rng, weighted=True)  # 203 = 7 · 29 rows, the first 40 of no weight
    assert w is not None
    n = X.shape[0]
    theta = torch.tensor(rng.normal(size=(X.shape[1] + 1, 1)))
    A = torch.cat([X.new_ones(n, 1), X], dim=1)
    grads: list[torch.Tensor] = []

    def record(evaluate):  # type: ignore[no-untyped-def]
        summed = evaluate()
        assert theta.grad is not None
        grads.append(theta.grad.clone())
        return summed

    epoch = batches.MiniBatchEpoch(
        A, y, w[:, None], w, theta, SquaredError(), record, batch_size, False, None
    )
    epoch()
    assert len(grads) < n // batch_size  # some batches were skipped
    An, yn, wn, th = A.numpy(), y.numpy(), w.numpy(), theta.numpy()
    full = 2 / wn.sum() * An.T @ (wn[:, None] * (An @ th - yn))
    mean = torch.stack(grads).sum(0).numpy() / (n // batch_size)
    np.testing.assert_allclose(mean, full, rtol=1e-12, atol=1e-13)


def test_batch_size_1_with_weights_converges_to_the_weighted_fit() -> None:
    """At batch_size=1 a row's gradient is scaled by n·w_i/Σw, so the weights count (a
    batch's own weight would cancel them and SGD would find the unweighted fit). With
    the step decaying (lr 0.01·0.96^epoch, ~4e-4 at the end) the iterate's noise around
    the weighted optimum is of the last steps' size: measured 3e-4 from numpy's weighted
    lstsq, against 4e-2 between the weighted and unweighted fits; the test asks for
    within 5% of that distance (2e-3)."""
    from torchlinreg import GDRegressor

    from .conftest import lstsq_fit

    data = np.random.default_rng(1)
    n = 100
    X = data.normal(size=(n, 2))
    y = X @ [1.0, 2.0] + data.normal(size=n)
    w = data.uniform(0.01, 10, size=n)
    wls = np.r_[lstsq_fit(X, y, w)[1], lstsq_fit(X, y, w)[0]]
    ols = np.r_[lstsq_fit(X, y)[1], lstsq_fit(X, y)[0]]
    model = GDRegressor(
        lr=0.01,
        batch_size=1,
        epochs=100,
        random_state=0,
        dtype="float64",
        standardize=False,
        scheduler="exponential",
        scheduler_options={"gamma": 0.96},
        compare_exact=False,
    ).fit(X, y, w)
    fit = np.r_[model.intercept_, model.coef_]
    assert np.abs(fit - wls).max() < 0.05 * np.abs(wls - ols).max()


def test_a_per_batch_schedule_counts_the_batches_skipped_for_zero_weight(rng) -> None:
    """One-cycle's total_steps counts every batch of every epoch; half the rows of zero
    weight (unshuffled: 5 whole batches an epoch skipped) must not leave the cycle short.
    Oracle: the same schedule where no batch is skipped (every weight 1): its rate after
    every epoch is the same, the scheduler ends at its total_steps, and the last batch
    ran at the annealed rate."""
    from torchlinreg.training.loop import EpochEnd

    n, B, epochs = 80, 8, 10
    X = torch.tensor(rng.normal(size=(n, 2)))
    y = X @ torch.tensor([[1.0], [2.0]], dtype=X.dtype)

    def rates(w: torch.Tensor) -> tuple[list[float], Any]:
        seen: list[float] = []
        kept: list[Any] = []

        def after(end: EpochEnd) -> None:
            seen.append(end.optimizer.param_groups[0]["lr"])
            kept[:] = [end.scheduler]

        train(
            X, y, w, theta0=torch.zeros(3, 1, dtype=X.dtype), fit_intercept=True,
            target_1d=False, loss=SquaredError(), optimizer="sgd", lr=0.1,
            optimizer_options=None, epochs=epochs - 1, batch_size=B, shuffle=False,
            generator=None, log_every=None, log=None, scheduler="onecycle",
            callbacks=[after],
        )  # fmt: skip
        return seen, kept[0]

    half = torch.ones(n, dtype=X.dtype)
    half[: n // 2] = 0.0
    seen, scheduler = rates(half)
    assert seen == rates(torch.ones(n, dtype=X.dtype))[0]
    assert scheduler.last_epoch == scheduler.total_steps == epochs * (n // B)
    # Annealed: the last step ran at max_lr/25/1e4 = 4e-7; after it torch's cosine,
    # one step past its end, has risen to ~5e-5. Mid-cycle it is ~0.1.
    assert seen[-1] < 1e-3 * 0.1
