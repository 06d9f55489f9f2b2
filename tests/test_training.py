"""The trainer's parts: log line, optimizer lookup and stepping, closed-form gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchlinreg import GDRegressor, TrainingDivergedError
from torchlinreg.training.log import format_log_line
from torchlinreg.training.losses import SquaredError, TutorialSquaredError
from torchlinreg.training.optimizers import make_optimizer, optimizer_names, plain_step


def test_log_line_is_the_tutorials_format_for_one_feature() -> None:
    line = format_log_line(200, 3000, 1.80012, 0.4539, 0.0297671)
    assert line == "Epoch  200/3000 W: 1.800, b: 0.454 Cost: 0.029767"
    assert line == "Epoch {:4d}/{} W: {:.3f}, b: {:.3f} Cost: {:.6f}".format(
        200, 3000, 1.80012, 0.4539, 0.0297671
    )


def test_log_line_for_several_features_targets_and_no_intercept() -> None:
    assert (
        format_log_line(5, 10, [1.0, 2.0], 0.5, 1.0)
        == "Epoch    5/10 W: [1.000, 2.000], b: 0.500 Cost: 1.000000"
    )
    assert (
        format_log_line(12345, 20000, [[1, 2], [3, 4]], [0, 1], 0)
        == "Epoch 12345/20000 W: [[1.000, 2.000], [3.000, 4.000]], b: [0.000, 1.000] "
        "Cost: 0.000000"
    )
    assert format_log_line(0, 1, 2.0, None, 3.0) == "Epoch    0/1 W: 2.000 Cost: 3.000000"
    long = format_log_line(0, 1, list(range(10)), 0.0, 0.0)
    assert "[0.000, 1.000, 2.000, 3.000, 4.000, 5.000, ... (10 values)]" in long


def test_closed_form_gradient_equals_autograd(rng) -> None:
    A = torch.tensor(np.c_[np.ones(50), rng.normal(size=(50, 3))])
    y = torch.tensor(rng.normal(size=(50, 2)))
    w = torch.tensor(rng.uniform(0.5, 2.0, size=(50, 1)))
    theta = torch.tensor(rng.normal(size=(4, 2)), requires_grad=True)
    summed = SquaredError().bind(theta, A, y, w, float(w.sum()))()
    closed = theta.grad.clone()

    theta.grad = None
    cost = (w * (A @ theta - y) ** 2).sum() / w.sum()
    cost.backward()
    torch.testing.assert_close(closed, theta.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(summed / w.sum(), cost.detach(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("n", [1, 3, 4, 7, 33, 200])
def test_tutorial_squared_error_rounds_bit_for_bit_as_autograd(rng, n) -> None:
    # The tutorial's expression through autograd, on random float32 data and parameters.
    x = torch.tensor(rng.normal(size=(n, 1)) * 10, dtype=torch.float32)
    y = torch.tensor(rng.normal(size=(n, 1)) * 10, dtype=torch.float32)
    for _ in range(20):
        W = torch.tensor(rng.normal(size=1), dtype=torch.float32, requires_grad=True)
        b = torch.tensor(rng.normal(size=1), dtype=torch.float32, requires_grad=True)
        error = torch.mean((W * x + b - y) ** 2)
        error.backward()

        theta = torch.stack([b.detach(), W.detach()]).requires_grad_(True)  # [b; W]
        A = torch.cat([torch.ones(n, 1), x], dim=1)
        summed = TutorialSquaredError().bind(theta, A, y, None, n)()
        assert torch.equal(summed / n, error.detach())
        assert torch.equal(theta.grad, torch.stack([b.grad, W.grad]))


def test_tutorial_squared_error_is_the_weighted_mean_squared_error(rng) -> None:
    # Beyond the tutorial's shapes: several features and targets, weights, no intercept.
    A = torch.tensor(rng.normal(size=(40, 3)))
    y = torch.tensor(rng.normal(size=(40, 2)))
    w = torch.tensor(rng.uniform(0.5, 2.0, size=(40, 1)))
    theta = torch.tensor(rng.normal(size=(3, 2)), requires_grad=True)
    summed = TutorialSquaredError().bind(theta, A, y, w, float(w.sum()))()
    replayed = theta.grad.clone()

    theta.grad = None
    cost = (w * (A @ theta - y) ** 2).sum() / w.sum()
    cost.backward()
    torch.testing.assert_close(replayed, theta.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(summed / w.sum(), cost.detach(), rtol=1e-12, atol=0)


def test_every_named_optimizer_is_a_torch_optimizer() -> None:
    names = optimizer_names()
    for expected in ("sgd", "adam", "adamw", "rmsprop", "lbfgs", "adagrad", "nadam", "radam"):
        assert expected in names
    assert "sparseadam" not in names  # cannot train a dense parameter


def test_plain_step_makes_the_same_update_as_step() -> None:
    def run(stepper: str) -> torch.Tensor:
        p = torch.nn.Parameter(torch.linspace(-1, 1, 5))
        opt = make_optimizer("adam", [p], 0.1, {"amsgrad": True})
        step = plain_step(opt) if stepper == "plain" else opt.step
        for i in range(20):
            p.grad = torch.sin(p.detach() * (i + 1))
            step()
        return p.detach()

    torch.testing.assert_close(run("plain"), run("step"), rtol=0, atol=0)


def test_optimizer_hooks_still_run_during_training(rng) -> None:
    from torch.optim.optimizer import register_optimizer_step_post_hook

    calls = []
    handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: calls.append(1))
    try:
        GDRegressor(epochs=9).fit(rng.normal(size=(10, 2)), rng.normal(size=10))
    finally:
        handle.remove()
    assert len(calls) == 10


def test_a_users_optimizer_subclass_keeps_its_own_step(rng) -> None:
    counted = []

    class CountingSGD(torch.optim.SGD):
        def step(self, closure=None):  # type: ignore[no-untyped-def, override]
            counted.append(1)
            return super().step(closure)

    GDRegressor(optimizer=CountingSGD, epochs=4).fit(rng.normal(size=(8, 1)), rng.normal(size=8))
    assert len(counted) == 5


def test_a_factory_returning_something_else_is_refused() -> None:
    from torchlinreg import InputError

    with pytest.raises(InputError, match="returned dict, not a torch.optim.Optimizer"):
        make_optimizer(lambda params, lr: {}, [torch.zeros(1, requires_grad=True)], 0.1, None)


def test_small_fits_train_on_one_thread_and_restore_the_setting(rng) -> None:
    from torchlinreg.training.threads import ONE_THREAD_MAX_WORK, _threads_can_change

    if not _threads_can_change():
        pytest.skip("this torch's thread pool cannot be resized once started")
    seen: list[int] = []

    class ThreadSpy(torch.optim.SGD):
        def step(self, closure=None):  # type: ignore[no-untyped-def, override]
            seen.append(torch.get_num_threads())
            return super().step(closure)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        GDRegressor(optimizer=ThreadSpy, epochs=2).fit(rng.normal(size=(8, 1)), rng.normal(size=8))
        assert seen == [1, 1, 1] and torch.get_num_threads() == 2
        # Restored after a failure inside training too.
        with pytest.raises(TrainingDivergedError):
            GDRegressor(optimizer=ThreadSpy, lr=1e3).fit(rng.normal(size=(8, 1)) * 1e3, np.ones(8))
        assert torch.get_num_threads() == 2
        # Above the threshold (rows × (features + 1) numbers a step) the setting stays.
        seen.clear()
        n = ONE_THREAD_MAX_WORK // 2 + 1
        GDRegressor(optimizer=ThreadSpy, epochs=1).fit(np.ones((n, 1)), np.ones(n))
        assert seen == [2, 2]
        # Mini-batches count the rows of one batch.
        seen.clear()
        GDRegressor(optimizer=ThreadSpy, epochs=1, batch_size=n // 2).fit(
            np.ones((n, 1)), np.ones(n)
        )
        assert seen == [1] * 6  # two passes of three batches (the last one row)
    finally:
        torch.set_num_threads(before)
