"""Gradient training that tells the truth: the stable step named from the data, growth
stopped, lr="auto", standardized training reported in the data's units, how a run ended,
and schedules. Oracles: numpy's eigenvalues and least squares, scikit-learn's stopping
rule replayed on the recorded history."""

from __future__ import annotations

import io
import json
import math
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from torchlinreg import GDRegressor, InputError, TrainingDivergedError
from torchlinreg.errors import ConvergenceWarning
from torchlinreg.training import guard

from .conftest import lstsq_fit

# Many runs here are short on purpose; the warning is tested where it is the subject.
pytestmark = pytest.mark.filterwarnings("ignore::torchlinreg.errors.ConvergenceWarning")

TUTORIAL_X = [[1.0], [2.0], [3.0]]
TUTORIAL_Y = [2.0, 4.0, 6.0]


def stable_bound(X, w=None, fit_intercept=True) -> float:
    """2/λmax of the mean squared error's Hessian 2·AᵀWA/Σw, A = [1, X], by numpy."""
    X = np.asarray(X, np.float64)
    A = np.column_stack([np.ones(len(X)), X]) if fit_intercept else X
    w = np.ones(len(X)) if w is None else np.asarray(w, np.float64)
    H = 2 * (A * w[:, None]).T @ A / w.sum()
    return 2 / np.linalg.eigvalsh(H)[-1]


def floor6(x: float) -> str:
    """``x`` to 6 significant digits rounded down (exact rational arithmetic)."""
    exponent = math.floor(math.log10(x))
    quantum = Fraction(10) ** (exponent - 5)
    floored = math.floor(Fraction(x) / quantum) * quantum
    return f"{float(floored):.6g}"


def standardized(X, w=None):
    """Weighted column means and standard deviations, by numpy."""
    w = np.ones(len(X)) if w is None else w
    mean = np.average(X, axis=0, weights=w)
    return (X - mean) / np.sqrt(np.average((X - mean) ** 2, axis=0, weights=w))


def make_data(rng, n=100, p=3, scales=None):
    X = rng.normal(size=(n, p)) + rng.normal(size=p)
    if scales is not None:
        X = X * scales
    y = X @ (rng.normal(size=p) / (1 if scales is None else scales)) + 1.0
    return X, y + 0.1 * rng.normal(size=n)


# -- the exact stable bound --------------------------------------------------------------


def float64_gd_costs(lr: float, epochs: int) -> list[float]:
    """The tutorial's full-batch gradient descent in float64, by numpy: each epoch's cost
    before its step."""
    A = np.column_stack([np.ones(3), np.asarray(TUTORIAL_X)[:, 0]])
    y, theta, costs = np.asarray(TUTORIAL_Y), np.zeros(2), []
    for _ in range(epochs):
        r = A @ theta - y
        costs.append(float(np.mean(r**2)))
        theta = theta - lr * 2 * A.T @ r / 3
    return costs


def test_tutorial_bound_is_0_1803_and_lr_at_it_or_above_raises() -> None:
    bound = stable_bound(TUTORIAL_X)
    assert bound == pytest.approx(0.18029485, abs=1e-8)
    kw = dict(standardize=False, epochs=3000)
    model = GDRegressor(lr=0.18, **kw).fit(TUTORIAL_X, TUTORIAL_Y)
    assert model.coef_[0] == pytest.approx(2.0, abs=1e-3)
    assert model.history_.status == "budget spent"
    for lr in (0.1803, 0.181):
        with pytest.raises(TrainingDivergedError) as info:
            GDRegressor(lr=lr, **kw).fit(TUTORIAL_X, TUTORIAL_Y)
        err = info.value
        assert f"lr < {floor6(bound)}" in str(err) and f"epoch {err.epoch}" in str(err)
        # The named epoch is the first whose cost exceeds the one before, as gradient
        # descent in float64 finds it (the rise, 4e-5 at 0.1803, is far above float32
        # rounding of a cost of 18.6, 2e-6), and its cost is the one reported.
        costs = float64_gd_costs(lr, 200)
        first_rise = next(t for t in range(1, 200) if costs[t] > costs[t - 1])
        assert err.epoch == first_rise and err.cost == pytest.approx(costs[first_rise], rel=1e-5)


def test_tutorial_bound_in_standardized_units_is_1() -> None:
    # One standardized feature: H = 2·diag(1, 1), so the bound is 1.
    assert stable_bound(standardized(np.asarray(TUTORIAL_X))) == pytest.approx(1.0)
    GDRegressor(lr=0.99).fit(TUTORIAL_X, TUTORIAL_Y)
    with pytest.raises(TrainingDivergedError, match=r"stable only for lr < 1\b"):
        GDRegressor(lr=1.01).fit(TUTORIAL_X, TUTORIAL_Y)


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_weighted_bound_separates_converging_from_diverging(rng, standardize, fit_intercept):
    X, y = make_data(rng, n=40)
    y = np.c_[y, -y]  # two targets share the Hessian
    w = rng.uniform(0.0, 3.0, size=40)
    if standardize and fit_intercept:
        Xs = standardized(X, w)
    elif standardize:
        Xs = X / np.sqrt(np.average(X**2, axis=0, weights=w))
    else:
        Xs = X
    bound = stable_bound(Xs, w, fit_intercept)
    kw = dict(standardize=standardize, fit_intercept=fit_intercept, dtype="float64", epochs=2000)
    GDRegressor(lr=0.999 * bound, **kw).fit(X, y, w)
    with pytest.raises(TrainingDivergedError, match=f"lr < {floor6(bound)}"):
        GDRegressor(lr=1.001 * bound, **kw).fit(X, y, w)


def test_weight_decay_lowers_the_bound(rng) -> None:
    X, y = make_data(rng)
    bound = stable_bound(standardized(X))
    kw = dict(optimizer_options={"weight_decay": 1.0}, dtype="float64", epochs=500)
    expected = 2 / (2 / bound + 1.0)
    GDRegressor(lr=0.999 * expected, **kw).fit(X, y)
    with pytest.raises(TrainingDivergedError, match=f"lr < {floor6(expected)}"):
        GDRegressor(lr=1.001 * expected, **kw).fit(X, y)


# -- growth where no exact bound holds ---------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        dict(optimizer_options={"momentum": 0.9}, lr=2.5),
        dict(batch_size=8, lr=1.2, random_state=0),
        dict(loss="huber", lr=50.0),
    ],
)
def test_sustained_growth_stops_training_and_says_what_was_seen(rng, params) -> None:
    X, y = make_data(rng)
    with pytest.raises(TrainingDivergedError, match="stayed above 10x ") as info:
        GDRegressor(epochs=3000, **params).fit(X, y)
    assert np.isfinite(info.value.cost) and "no exact stable bound" in str(info.value)
    assert "stable below lr=" in str(info.value)  # the full-batch reference is quoted
    # The squared error's reference is known from the exact state; Huber's is epoch 0's.
    reference = "its starting value" if params.get("loss") == "huber" else "constant model"
    assert reference in str(info.value)


def test_a_schedule_taking_the_rate_below_the_bound_is_not_called_diverged() -> None:
    # Standardized tutorial data: the bound is 1. lr 1.05 for epoch 0, then 0.525,
    # 0.2625, ...: the cost rises once (epoch 1) and then falls, as numpy's replay says.
    kw = dict(lr=1.05, epochs=200, dtype="float64")
    schedule = dict(scheduler="step", scheduler_options={"step_size": 1, "gamma": 0.5})
    model = GDRegressor(**kw, **schedule).fit(TUTORIAL_X, TUTORIAL_Y)
    Xs = standardized(np.asarray(TUTORIAL_X))[:, 0]
    A, y, theta, lr, costs = np.c_[np.ones(3), Xs], np.asarray(TUTORIAL_Y), np.zeros(2), 1.05, []
    for _ in range(201):
        r = A @ theta - y
        costs.append(float(np.mean(r**2)))
        theta, lr = theta - lr * 2 * A.T @ r / 3, lr / 2
    assert costs[1] > costs[0]  # the rise the exact rule would have called divergence
    np.testing.assert_allclose(model.history_.cost, costs, rtol=1e-12, atol=1e-12)
    # The same rate held constant is beyond the bound: the exact rule still applies.
    with pytest.raises(TrainingDivergedError, match=r"epoch 1: the cost grew .* lr < 1\b"):
        GDRegressor(**kw).fit(TUTORIAL_X, TUTORIAL_Y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_a_warm_start_at_the_optimum_is_not_called_diverged(rng, dtype, optimizer) -> None:
    # Adam-like steps of about lr from the optimum raise a cost of ~1e-14 (exact data)
    # far above 10x itself, yet below 10x the best constant model's cost.
    X = rng.normal(size=(500, 4))
    y = X @ rng.normal(size=4) + 1.0
    model = GDRegressor(lr=0.1, dtype=dtype, epochs=500, warm_start=True).fit(X, y)
    assert model.history_.cost[-1] < 1e-10
    model.set_params(optimizer=optimizer, epochs=50).fit(X, y)
    costs = model.history_.cost
    # The old reference (epoch 0's cost) would have called this divergence.
    assert sum(c > 10 * costs[0] for c in costs[1:6]) == 5
    assert costs[-1] < 1e-3 * np.var(y)  # and it does settle back


def test_mini_batch_momentum_growth_is_still_caught(rng) -> None:
    # Genuine divergence from the optimum: momentum 0.9 on batches of 8 at 5x the full
    # batch's bound grows geometrically from the warm start.
    X, y = make_data(rng)
    model = GDRegressor(lr="auto", dtype="float64", epochs=300, warm_start=True).fit(X, y)
    bound = stable_bound(standardized(X))
    model.set_params(lr=5 * bound, optimizer_options={"momentum": 0.9}, batch_size=8,
                     random_state=0, epochs=200)  # fmt: skip
    with pytest.raises(TrainingDivergedError, match="stayed above 10x|became inf|became nan"):
        model.fit(X, y)


def test_the_quoted_bound_is_rounded_down(rng) -> None:
    # 0.18029485 would print as 0.180295 (above the bound) with :.6g; it prints 0.180294,
    # and an lr equal to the printed value is below the true bound.
    bound = stable_bound(TUTORIAL_X)
    with pytest.raises(TrainingDivergedError) as info:
        GDRegressor(lr=0.181, standardize=False).fit(TUTORIAL_X, TUTORIAL_Y)
    printed = str(info.value).split("stable only for lr < ")[1].split(" ")[0]
    assert printed == "0.180294" and float(printed) < bound
    for x in (bound, 2 / 3, 1e-7 / 3, 12345678.9, 2.5e-7):
        assert float(floor6(x)) <= x and floor6(x) == guard.floor_g(x)


def test_momentum_below_its_stability_limit_is_not_called_diverged(rng) -> None:
    # Heavy ball is stable up to 2(1+β)/λmax; at 0.9 of it the cost rings but falls.
    X, y = make_data(rng)
    bound = stable_bound(standardized(X))
    model = GDRegressor(lr=0.9 * 1.9 * bound, optimizer_options={"momentum": 0.9}, epochs=2000)
    model.set_params(dtype="float64").fit(X, y)
    coef, _ = lstsq_fit(X, y)
    np.testing.assert_allclose(model.coef_, coef, atol=1e-8)


# -- lr="auto" ------------------------------------------------------------------------


def test_auto_lr_for_sgd_is_one_over_the_top_eigenvalue(rng) -> None:
    X, y = make_data(rng, scales=np.array([1e-3, 1.0, 1e4]))
    model = GDRegressor(lr="auto", dtype="float64", epochs=500).fit(X, y)
    assert model.lr_ == pytest.approx(stable_bound(standardized(X)) / 2, rel=1e-9)
    assert model.history_.lr == model.lr_
    coef, intercept = lstsq_fit(X, y)
    np.testing.assert_allclose(model.coef_ * [1e-3, 1, 1e4], coef * [1e-3, 1, 1e4], rtol=1e-8)
    assert model.intercept_ == pytest.approx(intercept, rel=1e-8)


@pytest.mark.parametrize("batch_size", [1, 7])
def test_auto_lr_for_mini_batches_is_stable(rng, batch_size) -> None:
    X, y = make_data(rng, n=60, p=5)
    full = GDRegressor(lr="auto", epochs=1).fit(X, y).lr_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # mini-batch noise floor
        model = GDRegressor(lr="auto", batch_size=batch_size, epochs=30, random_state=0)
        model.fit(X, y)
    assert model.lr_ < full
    assert model.history_.cost[-1] < 0.05 * model.history_.cost[0]


@pytest.mark.parametrize("batch_size", [1, 4])
def test_auto_lr_for_mini_batches_weighs_a_light_outlier_by_its_weight(rng, batch_size) -> None:
    # A row 50 standard deviations out with weight 1e-3: a batch's gradient is divided
    # by its expected weight Σw·m/n, so the row's curvature is 2·(n·w_0/Σw)·‖a_0‖², the
    # one lr="auto" bounds (tests/test_batches.py). Were the batch divided by its own
    # weight, the row would weigh as much as any other and 1/L_b would diverge on it.
    X, y = make_data(rng, n=200, p=5)
    X[0] = 50.0
    w = np.ones(len(X))
    w[0] = 1e-3
    model = GDRegressor(lr="auto", batch_size=batch_size, epochs=30, random_state=0)
    model.set_params(dtype="float64").fit(X, y, w)
    assert model.history_.cost[-1] < 0.2 * model.history_.cost[0]


@pytest.mark.parametrize("standardize", [True, False])
def test_auto_lr_for_sgd_adds_weight_decay_to_the_curvature(rng, standardize) -> None:
    # Coupled decay adds weight_decay to every eigenvalue of the Hessian: lr = 1/(λmax +
    # wd), half the exact bound 2/(λmax + wd), so full-batch SGD converges (the cost falls
    # every epoch). Sized without the decay (1/λmax ≈ 0.4 here against 2/(λmax + 10) ≈
    # 0.16), it diverged.
    n, p = 200, 5
    X = rng.normal(size=(n, p))
    y = X @ rng.normal(size=p) + 1 + 0.1 * rng.normal(size=n)
    Xt = standardized(X) if standardize else X
    expected = 1 / (2 / stable_bound(Xt) + 10.0)
    model = GDRegressor(
        lr="auto", optimizer_options={"weight_decay": 10.0}, epochs=200, dtype="float64",
        standardize=standardize,
    ).fit(X, y)  # fmt: skip
    assert model.lr_ == pytest.approx(expected, rel=1e-9)
    assert np.all(np.diff(model.history_.cost) <= 0)


def test_auto_lr_with_decoupled_decay_is_capped(rng) -> None:
    X, y = make_data(rng)
    # 1% of the slopes (of order 1) is above the cap 0.1/100 of decoupled decay only.
    model = GDRegressor(optimizer="adamw", lr="auto", epochs=1)
    assert model.set_params(optimizer_options={"weight_decay": 100.0}).fit(X, y).lr_ == 1e-3
    coupled = GDRegressor(optimizer="adam", lr="auto", epochs=1)
    assert coupled.set_params(optimizer_options={"weight_decay": 100.0}).fit(X, y).lr_ > 1e-3


@pytest.mark.parametrize(
    "options",
    [{"momentum": 0.9}, {"momentum": 0.99}, {"momentum": 0.9, "nesterov": True}],
)
@pytest.mark.parametrize("batch_size", [1, 8])
def test_auto_lr_with_momentum_on_mini_batches_trains(rng, options, batch_size) -> None:
    # Momentum β sums mini-batch gradients into a step lr/(1−β): lr = (1−β)/L_b keeps it
    # within the mini-batch bound. 1/L_b itself diverged (cost ×1e3 and more).
    n, p = 200, 5
    X = rng.normal(size=(n, p))
    y = X @ rng.normal(size=p) + 1 + 0.1 * rng.normal(size=n)
    plain = GDRegressor(lr="auto", batch_size=batch_size, epochs=1).fit(X, y).lr_
    model = GDRegressor(
        lr="auto", optimizer_options=options, batch_size=batch_size, epochs=30,
        random_state=0, dtype="float64",
    ).fit(X, y)  # fmt: skip
    assert model.lr_ == pytest.approx((1 - options["momentum"]) * plain, rel=1e-6)
    # The noise floor: the exact optimum's cost is 0.01 (σ = 0.1); 30 epochs get within
    # a few times of it from a start of order 1.
    assert model.history_.cost[-1] < 0.05 * model.history_.cost[0]
    assert model.history_.cost[-1] < 0.05


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "adamw"])
def test_auto_lr_for_adaptive_optimizers_is_sized_by_the_slopes(rng, optimizer) -> None:
    # y ≈ 10⁴ + X·[1, 2]: sized by the intercept, lr was 100 and the slopes jittered at
    # that size (RMSprop ended at R² −1589). Sized by the slopes (≈ 2), the slopes reach
    # the exact ones; the intercept, 10⁴ away at ≈ 0.02 a step, does not within the
    # budget, and the run says so with a ConvergenceWarning.
    n = 500
    X = rng.normal(size=(n, 2))
    y = 1e4 + X @ [1.0, 2.0] + 0.1 * rng.normal(size=n)
    coef, _ = lstsq_fit(X, y)
    coef_s, _ = lstsq_fit(standardized(X), y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = GDRegressor(optimizer=optimizer, lr="auto", epochs=300, dtype="float64")
        model.fit(X, y)
    assert model.lr_ == pytest.approx(0.01 * np.abs(coef_s).max(), rel=1e-9)
    np.testing.assert_allclose(model.coef_, coef, atol=0.05)
    exact_r2 = 1 - np.sum((y - X @ coef - lstsq_fit(X, y)[1]) ** 2) / np.sum((y - y.mean()) ** 2)
    reached = model.score(X, y) > exact_r2 - 1e-3
    warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert reached or warned


class _Sign(torch.optim.Optimizer):
    """An optimizer of no family lr="auto" knows: steps by the gradient's sign."""

    def __init__(self, params, lr):  # type: ignore[no-untyped-def]
        super().__init__(params, {"lr": lr})

    def step(self, closure=None):  # type: ignore[no-untyped-def]
        for group in self.param_groups:
            for p in group["params"]:
                p.data.add_(p.grad.sign(), alpha=-group["lr"])


def test_auto_lr_of_other_families(rng) -> None:
    X, y = make_data(rng)
    coef_s, intercept_s = lstsq_fit(standardized(X), y)  # the answer in training units
    size = np.abs(coef_s).max()  # the slopes' size, not the intercept's
    adam = GDRegressor(optimizer="adam", lr="auto", epochs=1).fit(X, y)
    assert adam.lr_ == pytest.approx(0.01 * size, rel=1e-6)
    adagrad = GDRegressor(optimizer="adagrad", lr="auto", epochs=1).fit(X, y)
    assert adagrad.lr_ == pytest.approx(0.1 * size, rel=1e-6)
    assert GDRegressor(optimizer="lbfgs", lr="auto", epochs=1).fit(X, y).lr_ == 1.0
    assert GDRegressor(optimizer=_Sign, lr=0.01, epochs=3).fit(X, y).lr_ == 0.01
    with pytest.raises(InputError, match="lr='auto' has a rule for SGD.*not for _Sign"):
        GDRegressor(optimizer=_Sign, lr="auto", epochs=1).fit(X, y)


# -- standardization -------------------------------------------------------------------


def test_columns_of_very_different_scales_train_in_the_datas_units(rng) -> None:
    scales = np.array([1e-3, 1.0, 1e4])
    X, y = make_data(rng, scales=scales)
    log = io.StringIO()
    model = GDRegressor(lr=0.3, dtype="float64", log_every=1000, log_to=log).fit(X, y)
    coef, intercept = lstsq_fit(X, y)
    # Converged in training units to ~1e-8 (3000 steps of the slowest mode's factor);
    # in the data's units each coefficient carries its column's scale.
    np.testing.assert_allclose(model.coef_ * scales, coef * scales, rtol=1e-7)
    np.testing.assert_allclose(model.history_.coef[-1], model.coef_)
    assert model.exact_.relative_cost_gap < 1e-12
    last = log.getvalue().splitlines()[-1]
    assert f"b: {model.intercept_:.3f}" in last and f"{model.coef_[0]:.3f}" in last
    # The raw columns at the same lr: the 1e4 column's curvature makes it diverge.
    with pytest.raises(TrainingDivergedError):
        GDRegressor(lr=0.3, standardize=False, dtype="float64").fit(X, y)


def test_constant_column_and_zero_weight_rows(rng) -> None:
    X, y = make_data(rng, n=60)
    X[:, 1] = 5.0
    w = np.ones(60)
    X_extra = np.r_[X, [[1e6, 5.0, -1e6]] * 3]  # rows of zero weight change no scale
    y_extra, w_extra = np.r_[y, [1e6] * 3], np.r_[w, [0.0] * 3]
    model = GDRegressor(lr="auto", dtype="float64").fit(X, y, w)
    extra = GDRegressor(lr="auto", dtype="float64").fit(X_extra, y_extra, w_extra)
    np.testing.assert_allclose(extra.coef_, model.coef_, rtol=1e-12, atol=1e-12)
    assert model.coef_[1] == 0.0  # a constant column's gradient is zero once centred
    coef, intercept = lstsq_fit(X, y)
    np.testing.assert_allclose(model.predict(X), X @ coef + intercept, atol=1e-9)


def test_standardize_false_keeps_the_tutorials_log() -> None:
    from torchlinreg.demo import run_demo

    out = io.StringIO()
    run_demo(out=out)
    tutorial = out.getvalue().splitlines()[:-1]  # the last line compares with exact
    log = io.StringIO()
    GDRegressor(standardize=False, log_every=200, log_to=log).fit(
        torch.tensor(TUTORIAL_X), torch.tensor([[v] for v in TUTORIAL_Y])
    )
    assert log.getvalue().splitlines() == tutorial


# -- how a run ends ----------------------------------------------------------------------


def sklearn_stop(values, tol, n_iter_no_change, higher):
    """scikit-learn SGD's rule, replayed: the epoch (index) at which it stops, or None."""
    best, count = values[0], 0
    for i, v in enumerate(values[1:], start=1):
        worse = v < best + tol if higher else v > best - tol
        best = max(best, v) if higher else min(best, v)
        count = count + 1 if worse else 0
        if count >= n_iter_no_change:
            return i
    return None


def test_tol_on_the_training_cost_converges_by_scikit_learns_rule(rng) -> None:
    X, y = make_data(rng)
    model = GDRegressor(lr=0.05, tol=1e-4, n_iter_no_change=3, dtype="float64").fit(X, y)
    h = model.history_
    assert h.status == "converged" and "tol=0.0001" in h.reason and "3 epochs" in h.reason
    assert sklearn_stop(h.cost, 1e-4, 3, higher=False) == len(h) - 1
    assert model.n_iter_ == len(h) < 3001


def test_tol_here_is_scikit_learns_half_tol_on_its_half_squared_loss(rng) -> None:
    # SGDRegressor's epoch loss is the mean of ½r² (half this cost): its rule on the
    # halved costs stops at the same epoch with tol/2, and later than with the same tol.
    X, y = make_data(rng)
    h = GDRegressor(lr=0.05, tol=1e-4, n_iter_no_change=3, dtype="float64").fit(X, y).history_
    half = [c / 2 for c in h.cost]
    assert h.cost[0] == pytest.approx(np.mean(y**2))  # W = b = 0: the mean of r², not ½r²
    assert sklearn_stop(half, 0.5e-4, 3, higher=False) == len(h) - 1
    assert sklearn_stop(half, 1e-4, 3, higher=False) < len(h) - 1


def test_early_stopping_on_held_out_rows(rng) -> None:
    X, y = make_data(rng, n=200)
    kw = dict(lr=0.01, tol=1e-4, early_stopping=True, validation_fraction=0.2, random_state=0)
    model = GDRegressor(n_iter_no_change=4, **kw).fit(X, y)
    h = model.history_
    assert h.status == "stopped early" and "held-out R²" in h.reason
    assert len(h.validation_score) == len(h) == model.n_iter_
    assert sklearn_stop(h.validation_score, 1e-4, 4, higher=True) == len(h) - 1
    assert 0.9 < h.validation_score[-1] <= 1
    again = GDRegressor(n_iter_no_change=4, **kw).fit(X, y)
    assert again.history_.validation_score == h.validation_score  # seeded split


def test_budget_spent_far_from_the_optimum_warns(rng) -> None:
    X, y = make_data(rng)
    with pytest.warns(ConvergenceWarning, match="far from the optimum") as caught:
        model = GDRegressor(lr=1e-4, epochs=50).fit(X, y)
    assert caught[0].filename == __file__  # points at the caller's fit
    assert model.history_.status == "budget spent"
    assert model.exact_.relative_cost_gap > 1e-3 and "of the variance of y" in model.history_.reason
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        GDRegressor(lr="auto", epochs=300, dtype="float64").fit(X, y)


def test_a_tol_stop_far_from_the_optimum_warns_too(rng) -> None:
    # houses.csv at lr=1e-4: the cost falls by less than tol=1000 an epoch long before it
    # nears the exact optimum (R² −9.8 against 0.977): "converged" by the rule, far by the
    # exact fit (the relative cost gap is ~10, the threshold 1e-3).
    data = np.loadtxt(HOUSES, delimiter=",", skiprows=1)
    X, y = data[:, :3], data[:, 3]
    with pytest.warns(ConvergenceWarning, match=r"tol=1000 stopped training.*lower tol"):
        model = GDRegressor(lr=1e-4, tol=1000.0).fit(X, y)
    assert model.history_.status == "converged" and model.exact_.relative_cost_gap > 1e-3
    # Stopped near the optimum: no warning.
    X, y = make_data(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = GDRegressor(lr="auto", tol=1e-12, epochs=3000, dtype="float64").fit(X, y)
    assert model.history_.status == "converged"


def test_rmsprop_on_standardized_diabetes_warns_at_its_default_and_converges_scheduled():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_diabetes(return_X_y=True)
    X = standardized(X)
    exact_r2 = 1 - np.mean((X @ lstsq_fit(X, y)[0] + lstsq_fit(X, y)[1] - y) ** 2) / np.var(y)
    with pytest.warns(ConvergenceWarning):
        short = GDRegressor(optimizer="rmsprop").fit(X, y)
    assert short.score(X, y) < 0  # lr 0.01 on an intercept of 152: far from it
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = GDRegressor(optimizer="rmsprop", lr=1.0, scheduler="cosine").fit(X, y)
    assert model.score(X, y) == pytest.approx(exact_r2, abs=1e-6)


# -- schedules -------------------------------------------------------------------------


def test_step_schedule_changes_the_rate_per_epoch(rng) -> None:
    X, y = make_data(rng, n=30, p=2)
    kw = dict(lr=0.1, epochs=6, dtype="float64")
    # gamma 0 after 2 epochs: epochs 0 and 1 move, none after.
    model = GDRegressor(scheduler="step", scheduler_options={"step_size": 2, "gamma": 0.0}, **kw)
    coef = np.asarray(model.fit(X, y).history_.coef)
    plain = np.asarray(GDRegressor(**kw).fit(X, y).history_.coef)
    np.testing.assert_array_equal(coef[:2], plain[:2])
    assert all(np.array_equal(c, coef[1]) for c in coef[2:])


def test_one_cycle_steps_per_batch_for_the_whole_run(rng) -> None:
    X, y = make_data(rng, n=50)
    # 50 rows / 8 a batch = 7 steps an epoch, 70 in all: torch raises when a one-cycle
    # schedule is stepped past its total_steps, so the filled-in total is at least that.
    model = GDRegressor(lr=0.1, batch_size=8, epochs=9, scheduler="onecycle", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    assert model.history_.cost[-1] < model.history_.cost[0]
    with pytest.raises(InputError, match="rejected a value"):
        GDRegressor(
            batch_size=8, epochs=9, scheduler="onecycle", scheduler_options={"total_steps": 0}
        ).fit(X, y)


def test_plateau_reads_the_epoch_cost(rng) -> None:
    X, y = make_data(rng, n=30, p=2)
    kw = dict(lr=0.1, epochs=200, dtype="float64")
    options = {"factor": 0.0, "patience": 0, "threshold": 0.5}  # any epoch not halving it
    coef = np.asarray(
        GDRegressor(scheduler="plateau", scheduler_options=options, **kw).fit(X, y).history_.coef
    )
    moved = [not np.array_equal(a, b) for a, b in zip(coef[:-1], coef[1:], strict=True)]
    assert any(moved) and not any(moved[-100:])  # the rate fell to zero and stayed there


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"scheduler": "stepp"}, "unknown scheduler 'stepp'; choose one of .*cosine.*onecycle"),
        (
            {"scheduler": "step", "scheduler_options": {"step_size": 2, "gama": 0.5}},
            "scheduler 'step' does not take the option 'gama'; it takes step_size, gamma",
        ),
        ({"scheduler": "step"}, "scheduler 'step' needs the option step_size"),
        ({"scheduler_options": {"gamma": 0.5}}, "scheduler_options given without a scheduler"),
        ({"scheduler": 3}, "scheduler must be a name"),
        ({"lr": "fast"}, "lr must be a finite number > 0 or 'auto', got 'fast'"),
        ({"lr": -1.0}, "lr must be a finite number > 0"),
        ({"lr": float("inf")}, "lr must be a finite number > 0"),
        ({"tol": -1.0}, "tol must be a number >= 0 or None"),
        ({"n_iter_no_change": 0}, "n_iter_no_change must be an integer >= 1"),
        ({"early_stopping": True}, "early_stopping=True needs a tolerance"),
        (
            {"early_stopping": True, "tol": 1e-3, "validation_fraction": 1.0},
            r"validation_fraction must be a number in \(0, 1\)",
        ),
        ({"loss": "l1"}, "unknown loss 'l1'; choose one of squared_error, huber"),
        ({"optimizer": "sgdd"}, "unknown optimizer 'sgdd'; choose one of .*rmsprop.*sgd"),
        ({"optimizer_options": {"betas": (0.9, 0.9)}}, "rejected its options.*betas"),
    ],
)
def test_bad_training_parameters_name_the_problem(rng, params, match) -> None:
    X, y = make_data(rng, n=20)
    with pytest.raises(InputError, match=match):
        GDRegressor(**{"epochs": 2, **params}).fit(X, y)


# -- the epoch hook ----------------------------------------------------------------------


def test_callbacks_see_every_epoch_with_the_optimizer_and_schedule(rng) -> None:
    from torchlinreg.training.loop import train
    from torchlinreg.training.losses import SquaredError

    X, y = make_data(rng, n=40, p=2)
    Xt, yt = torch.tensor(X), torch.tensor(y).reshape(-1, 1)
    seen: list[tuple[int, float, str]] = []

    def hook(end) -> None:  # type: ignore[no-untyped-def]
        seen.append((end.epoch, end.optimizer.param_groups[0]["lr"], end.status))
        assert end.scheduler is not None and end.summed_cost.item() / end.weight_sum > 0

    kw = dict(
        theta0=torch.zeros(3, 1, dtype=torch.float64), fit_intercept=True, target_1d=True,
        loss=SquaredError(), optimizer="sgd", lr=0.1, optimizer_options=None, epochs=50,
        batch_size=None, shuffle=False, generator=None, log_every=None, log=None,
        scheduler="step", scheduler_options={"step_size": 10, "gamma": 0.5},
    )  # fmt: skip
    result = train(Xt, yt, None, tol=1e-3, callbacks=[hook], **kw)
    n = len(result.history)
    assert [e for e, _, _ in seen] == list(range(n)) and n < 51
    # The rate the next epoch will use: epochs 0..9 ran at 0.1, epoch 10 on at 0.05.
    assert seen[8][1] == 0.1 and seen[9][1] == 0.05
    assert [s for *_, s in seen] == ["budget spent"] * (n - 1) + ["converged"]

    class Stop(Exception):
        pass

    def interrupt(end) -> None:  # type: ignore[no-untyped-def]
        if end.epoch == 3:
            raise Stop

    with pytest.raises(Stop):
        train(Xt, yt, None, callbacks=[interrupt], **kw)


def test_huber_quotes_its_own_curvature_bound(rng) -> None:
    X, y = make_data(rng)
    with pytest.raises(TrainingDivergedError) as info:
        GDRegressor(loss="huber", lr=50.0, epochs=3000).fit(X, y)
    # Huber's second derivative is at most 1, half the squared error's: 2/L = 2·(2/λmax).
    assert f"stable below lr={floor6(2 * stable_bound(standardized(X)))}" in str(info.value)


# -- the command line ------------------------------------------------------------------

HOUSES = str(Path(__file__).parents[1] / "examples" / "houses.csv")


def cli(argv: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from torchlinreg.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def houses_exact_r2() -> float:
    data = np.loadtxt(HOUSES, delimiter=",", skiprows=1)
    coef, intercept = lstsq_fit(data[:, :3], data[:, 3])
    residual = data[:, 3] - data[:, :3] @ coef - intercept
    return 1 - residual @ residual / np.sum((data[:, 3] - data[:, 3].mean()) ** 2)


def test_cli_gd_with_a_tiny_lr_warns_and_prints_the_gap(capsys) -> None:
    argv = ["fit", HOUSES, "--target", "price", "--method", "gd", "--lr", "1e-5"]
    code, out, err = cli(argv, capsys)
    assert code == 0
    assert "warning: GDRegressor spent its budget of 3001 epochs far from the optimum" in err
    [line] = [x for x in out.splitlines() if x.startswith("training: ")]
    assert line.startswith("training: budget spent after 3,001 epochs at lr 1e-05; cost ")
    assert f"the exact fit's R² is {houses_exact_r2():.6g}" in line
    code, out, _ = cli([*argv, "--no-standardize", "--json"], capsys)
    training = json.loads(out)["training"]
    assert training["status"] == "budget spent" and training["epochs"] == 3001
    # The exact fit of the rows as trained: rounded to float32 (6e-8 relative), which
    # moves R² by about as much.
    assert training["exact_r2"] == pytest.approx(houses_exact_r2(), rel=1e-6)
    assert training["exact_r2"] - json.loads(out)["r2"][0] == pytest.approx(
        training["relative_cost_gap"], rel=1e-9
    )
    assert training["relative_cost_gap"] > 0.05  # R² ~0.88 against 0.977


def test_cli_gd_auto_lr_with_a_schedule_and_tol_reaches_the_exact_fit(capsys) -> None:
    code, out, err = cli(
        ["fit", HOUSES, "--target", "price", "--method", "gd", "--lr", "auto", "--dtype",
         "float64", "--scheduler", "step", "--scheduler-option", "step_size=1000",
         "--scheduler-option", "gamma=0.5", "--tol", "1e-9", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    training = report["training"]
    assert training["status"] == "converged" and training["epochs"] < 3001
    assert report["r2"][0] == pytest.approx(houses_exact_r2(), abs=1e-9)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scheduler", "stepp"], "unknown scheduler 'stepp'; choose one of"),
        (["--scheduler", "step", "--scheduler-option", "stepsize=3"], "not take the option"),
        (["--scheduler-option", "x"], "expected KEY=VALUE"),
        (["--optimizer-option", "momentun=0.9"], "does not take 'momentun'; it takes momentum"),
        (["--lr", "fast"], "'fast' is not a number (or auto)"),
        (["--lr", "0"], "must be a finite number > 0"),
        (["--optimizer", "adamm"], "unknown optimizer 'adamm'"),
        (["--early-stopping"], "early_stopping=True needs a tolerance"),
        (["--validation-fraction", "1"], "must be between 0 and 1"),
        (["--n-iter-no-change", "0"], "must be >= 1"),
    ],
)
def test_cli_gd_bad_options_exit_2_with_one_line(capsys, extra, message) -> None:
    code, _, err = cli(["fit", HOUSES, "--target", "price", "--method", "gd", *extra], capsys)
    assert code == 2 and "Traceback" not in err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_gd_options_without_gd_are_refused(capsys) -> None:
    code, _, err = cli(["fit", HOUSES, "--target", "price", "--tol", "1e-3"], capsys)
    assert code == 2 and "--tol: for gradient training only; add --method gd" in err


def test_a_learning_rate_beyond_the_training_dtype_is_refused() -> None:
    """float32 training holds no lr above 3.4e38: refused as bad input, not a crash of
    the optimizer's first step (which converts lr to the parameters' type)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2))
    y = X @ [1.0, 2.0]
    with pytest.raises(InputError, match="beyond the range of torch.float32"):
        GDRegressor(lr=1e308, epochs=2).fit(X, y)
