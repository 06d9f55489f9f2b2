"""GDRegressor on two gloo ranks (tests/ranks.py) against the same training in one process.

Oracle for full-batch training: the one-process fit on all the rows. Training is in
float64; a distributed step's gradient is the one-process gradient with its sum over
rows split in two and added in another order, so the two differ by rounding, a few ulps
of the gradient's terms. Gradient descent with a stable step contracts the gap between
two trajectories, so each step adds a rounding-sized gap and earlier ones shrink: the
coefficients stay within a few ulps of the one-process ones (measured: at most 7e-16
here). The tests allow 1e-12 (relative, or absolute for coefficients of scale 1), and
still fail for any mistake in the weighting (a wrong divisor changes the answer at the
1e-2 level). Where one rank holds every row, the other adds exact zeros, and the fit
must equal the one-process fit bit for bit. Every rank must hold the same parameters bit
for bit, after every epoch (the history), not only at the end (where rank 0's are
broadcast).

Mini-batches cannot be compared with one process row for row (each rank shuffles its own
rows); they are checked for reproducibility, for convergence to the least-squares answer
(numpy lstsq) within the single-process mini-batch test's tolerance, and, unshuffled,
against one process on the rows in the order the sharding rule takes them.
"""

from __future__ import annotations

import numpy as np
import pytest

from torchlinreg import GDRegressor, InputError

from .conftest import lstsq_fit
from .ranks import Failed, Ranks, check

WORLD = 2
RTOL = 1e-12


@pytest.fixture(scope="module")
def ranks():  # type: ignore[no-untyped-def]
    group = Ranks(WORLD)
    yield group
    group.close()


# -- data and estimators, made the same way in the test and on every rank -----------


def design(case: str, n: int = 120):  # type: ignore[no-untyped-def]
    """(X, y, w) for a named case."""
    rng = np.random.default_rng(sum(map(ord, case)))
    p = 3
    X = rng.normal(size=(n, p)) + [0.5, -1.0, 2.0]
    y = X @ rng.normal(size=p) + 1.5 + 0.1 * rng.normal(size=n)
    if "multi" in case:
        y = np.c_[y, X @ rng.normal(size=p) - 2.0 + 0.1 * rng.normal(size=n)]
    w = None
    if "weights" in case:
        w = rng.uniform(0.2, 3.0, size=n)
        w[: n // 5] = 0.0  # the first rank of an uneven split holds only zero weights
    return X, y, w


def share(n: int, rank: int, split: float) -> slice:
    cut = int(round(n * split))
    return slice(0, cut) if rank == 0 else slice(cut, n)


# (case, estimator parameters, split): every loss path (closed form, autograd), a plain
# and a closure optimizer, weights, several targets, no intercept, an empty rank.
FULL_BATCH = {
    "sgd": ("plain", dict(lr=0.05, epochs=300), 0.5),
    "sgd momentum, no intercept": (
        "plain",
        dict(lr=0.02, epochs=200, optimizer_options={"momentum": 0.9}, fit_intercept=False),
        0.3,
    ),
    "adam, weights": ("weights", dict(optimizer="adam", lr=0.05, epochs=200), 0.2),
    "sgd, multi-output, empty rank": ("multi", dict(lr=0.05, epochs=300), 0.0),
    "adam, multi-output weights, empty rank": (
        "multi weights",
        dict(optimizer="adam", lr=0.05, epochs=200),
        1.0,
    ),
    "huber": ("plain", dict(loss="huber", epsilon=0.1, lr=0.5, epochs=200), 0.4),
    # lr chosen from every rank's rows, a schedule and a stopping rule read from the
    # costs every rank shares: the same epochs as one process.
    "sgd auto lr, step schedule, tol": (
        "weights",
        dict(
            lr="auto",
            scheduler="step",
            scheduler_options={"step_size": 20, "gamma": 0.5},
            tol=1e-9,
            epochs=400,
        ),
        0.5,
    ),
    "sgd, plateau schedule, no standardization": (
        "plain",
        dict(
            lr=0.1,
            scheduler="plateau",
            scheduler_options={"patience": 5, "threshold": 1e-6},
            standardize=False,
            epochs=300,
        ),
        0.7,
    ),
    "lbfgs": (
        "weights",
        dict(optimizer="lbfgs", lr=1.0, epochs=10, optimizer_options={"line_search_fn": None}),
        0.6,
    ),
    "lbfgs, strong wolfe, empty rank": (
        "plain",
        dict(
            optimizer="lbfgs",
            lr=1.0,
            epochs=3,
            optimizer_options={"line_search_fn": "strong_wolfe"},
        ),
        1.0,
    ),
}


def gd(**params):  # type: ignore[no-untyped-def]
    return GDRegressor(dtype="float64", **params)


def fitted(model):  # type: ignore[no-untyped-def]
    h = model.history_
    exact = None if model.exact_ is None else (model.exact_.coef, model.exact_.intercept)
    return {
        "coef": model.coef_,
        "intercept": model.intercept_,
        "cost": h.cost,
        "path": (h.coef, h.intercept),
        "exact": exact,
        "status": h.status,
        "lr": h.lr,
        "scores": h.validation_score,
    }


# -- what each rank runs ------------------------------------------------------------


def fit_share(rank, world, case, params, split):  # type: ignore[no-untyped-def]
    X, y, w = design(case)
    rows = share(len(X), rank, split)
    wr = None if w is None else w[rows]
    return fitted(gd(**params).fit(X[rows], y[rows], wr, distributed=True))


def fit_weights_on_one_rank(rank, world, unweighted_rank, params):  # type: ignore[no-untyped-def]
    X, y, w = design("weights")
    rows = share(len(X), rank, 0.5)
    wr = None if rank == unweighted_rank else w[rows]
    return fitted(gd(**params).fit(X[rows], y[rows], wr, distributed=True))


class _FollowerMustNotStep(__import__("torch").optim.LBFGS):
    """L-BFGS as rank 1 holds it: if rank 1 stepped, its decisions (line search,
    tolerances) would be its own, from floats its processor rounded."""

    def step(self, closure):  # type: ignore[no-untyped-def, override]
        if __import__("torch").distributed.get_rank() != 0:
            raise AssertionError("only rank 0 steps a closure optimizer")
        return super().step(closure)


_FollowerMustNotStep.__name__ = "LBFGS"


def fit_lbfgs_led_by_rank_0(rank, world):  # type: ignore[no-untyped-def]
    X, y, _ = design("plain")
    rows = share(len(X), rank, 0.5)
    params = dict(lr=1.0, epochs=3, optimizer_options={"line_search_fn": "strong_wolfe"})
    return fitted(
        gd(optimizer=_FollowerMustNotStep, **params).fit(X[rows], y[rows], distributed=True)
    )


def fit_on_process_groups(rank, world):  # type: ignore[no-untyped-def]
    import torch.distributed as dist

    X, y, _ = design("plain")
    rows = share(len(X), rank, 0.5)
    params = dict(optimizer="adam", lr=0.05, epochs=50)
    group = dist.new_group(list(range(world)))
    on_group = gd(**params).fit(X[rows], y[rows], distributed=group)
    on_default = gd(**params).fit(X[rows], y[rows], distributed=True)
    return fitted(on_group), fitted(on_default)


def fit_logged(rank, world, params, split):  # type: ignore[no-untyped-def]
    X, y, _ = design("plain")
    rows = share(len(X), rank, split)
    lines: list[str] = []
    gd(log_every=50, log_to=lines.append, **params).fit(X[rows], y[rows], distributed=True)
    return lines


def fit_with_bad_row(rank, world):  # type: ignore[no-untyped-def]
    X, y, _ = design("plain")
    rows = share(len(X), rank, 0.5)
    X = X[rows].copy()
    if rank == 1:
        X[3, 1] = np.nan
    gd(epochs=5).fit(X, y[rows], distributed=True)


def fit_with_mismatch(rank, world, what):  # type: ignore[no-untyped-def]
    X, y, w = design("weights")
    rows = share(len(X), rank, 0.5)
    X, y, w = X[rows], y[rows], w[rows]
    params: dict = {"epochs": 5}
    if rank == 1 and what == "features":
        X = X[:, :2]
    if rank == 1 and what == "epochs":
        params["epochs"] = 6
    if what == "zero weights":
        w = np.zeros(len(w))
    if what == "bad lr" and rank == 0:
        params["lr"] = -1.0
    gd(**params).fit(X, y, w, distributed=True)


def fit_diverging(rank, world):  # type: ignore[no-untyped-def]
    X, y, _ = design("plain")
    rows = share(len(X), rank, 0.3)
    try:
        gd(lr=10.0, epochs=500).fit(X[rows], y[rows], distributed=True)
    except Exception as e:
        return type(e).__name__, getattr(e, "epoch", None), str(e)
    return None


def fit_mini_batches(rank, world, params, split, case="plain", n=256):  # type: ignore[no-untyped-def]
    X, y, w = design(case, n)
    rows = share(len(X), rank, split)
    wr = None if w is None else w[rows]
    return fitted(gd(**params).fit(X[rows], y[rows], wr, distributed=True))


# -- the tests ----------------------------------------------------------------------


def assert_same_on_every_rank(results) -> None:  # type: ignore[no-untyped-def]
    """Bit for bit: the model, every epoch's cost and every epoch's parameters, how the
    run ended, the learning rate and any held-out scores."""
    first = results[0]
    for r in results[1:]:
        np.testing.assert_array_equal(r["coef"], first["coef"])
        np.testing.assert_array_equal(r["intercept"], first["intercept"])
        assert r["cost"] == first["cost"]
        assert r["path"] == first["path"]
        assert (r["status"], r["lr"], r["scores"]) == (
            first["status"],
            first["lr"],
            first["scores"],
        )


def assert_close(ours, theirs, rtol: float) -> None:  # type: ignore[no-untyped-def]
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("label", list(FULL_BATCH))
def test_full_batch_on_two_ranks_equals_one_process(ranks, label) -> None:
    case, params, split = FULL_BATCH[label]
    results = check(ranks.run(fit_share, case, params, split))
    assert_same_on_every_rank(results)
    X, y, w = design(case)
    expected = fitted(gd(**params).fit(X, y, w))
    ours = results[0]
    if split in (0.0, 1.0):  # one rank holds every row: the other's sums are exact zeros
        np.testing.assert_array_equal(ours["coef"], expected["coef"])
        assert ours["cost"] == expected["cost"]
    assert_close(ours["coef"], expected["coef"], RTOL)
    assert_close(ours["intercept"], expected["intercept"], RTOL)
    assert_close(ours["cost"], expected["cost"], RTOL)  # the cost of every rank's rows
    assert_close(ours["path"][0], expected["path"][0], RTOL)
    if expected["exact"] is not None:  # the exact answer of every rank's rows
        assert_close(ours["exact"][0], expected["exact"][0], 1e-12)
        assert_close(ours["exact"][1], expected["exact"][1], 1e-12)
    # Long enough to tell a wrong weighting apart: the training moved well past its start.
    assert expected["cost"][-1] < 0.5 * expected["cost"][0]


@pytest.mark.parametrize("unweighted_rank", [0, 1])
@pytest.mark.parametrize("optimizer", ["sgd", "lbfgs"])
def test_weights_on_some_ranks_weigh_the_others_rows_1(ranks, unweighted_rank, optimizer) -> None:
    # As the exact fits (and a stream of chunks) do: rows given without weights weigh 1.
    params = dict(optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 1.0, epochs=100)
    results = check(ranks.run(fit_weights_on_one_rank, unweighted_rank, params))
    assert_same_on_every_rank(results)
    X, y, w = design("weights")
    w = w.copy()
    w[share(len(X), unweighted_rank, 0.5)] = 1.0
    expected = fitted(gd(**params).fit(X, y, w))
    assert_close(results[0]["coef"], expected["coef"], RTOL)
    assert_close(results[0]["intercept"], expected["intercept"], RTOL)
    assert_close(results[0]["cost"], expected["cost"], RTOL)
    assert_close(results[0]["exact"][0], expected["exact"][0], 1e-12)
    # The test can fail: ignoring the weights given (or those rows) trains elsewhere.
    unweighted = fitted(gd(**params).fit(X, y))
    assert np.abs(unweighted["coef"] - expected["coef"]).max() > 1e-3


def test_a_closure_optimizer_steps_on_rank_0_only(ranks) -> None:
    # Every decision of L-BFGS's line search is rank 0's; the others evaluate where it says.
    results = check(ranks.run(fit_lbfgs_led_by_rank_0))
    assert_same_on_every_rank(results)
    X, y, _ = design("plain")
    params = dict(lr=1.0, epochs=3, optimizer_options={"line_search_fn": "strong_wolfe"})
    expected = fitted(gd(optimizer="lbfgs", **params).fit(X, y))
    assert_close(results[0]["coef"], expected["coef"], RTOL)
    assert_close(results[0]["cost"], expected["cost"], RTOL)


def test_full_batch_converges_to_lstsq_on_two_ranks(ranks) -> None:
    params = dict(lr=0.05, epochs=3000)
    results = check(ranks.run(fit_share, "multi weights", params, 0.35))
    X, y, w = design("multi weights")
    coef, intercept = lstsq_fit(X, y, sample_weight=w)
    # The single-process test's tolerance for full-batch SGD.
    np.testing.assert_allclose(results[0]["coef"], coef, rtol=0, atol=1e-5)
    np.testing.assert_allclose(results[0]["intercept"], intercept, rtol=0, atol=1e-5)


def test_a_process_group_is_taken_as_the_default_group_is(ranks) -> None:
    results = check(ranks.run(fit_on_process_groups))
    assert_same_on_every_rank([r[0] for r in results])
    on_group, on_default = results[0]
    np.testing.assert_array_equal(on_group["coef"], on_default["coef"])
    assert on_group["cost"] == on_default["cost"]


def test_distributed_without_a_process_group_is_refused() -> None:
    X, y, _ = design("plain")
    with pytest.raises(InputError, match="needs torch.distributed initialised on every rank"):
        gd(epochs=1).fit(X, y, distributed=True)
    with pytest.raises(InputError, match="distributed must be False, True"):
        gd(epochs=1).fit(X, y, distributed="yes")


def test_only_rank_zero_logs_and_its_log_is_the_one_process_log(ranks) -> None:
    params = dict(lr=0.05, epochs=200)
    lines = check(ranks.run(fit_logged, params, 0.4))
    X, y, _ = design("plain")
    expected: list[str] = []
    gd(log_every=50, log_to=expected.append, **params).fit(X, y)
    assert lines[0] == expected and len(expected) == 5
    assert lines[1] == []


MINI = dict(lr=0.01, epochs=300, batch_size=32)


@pytest.mark.parametrize(("optimizer", "split"), [("sgd", 0.3), ("adam", 0.0)])
def test_mini_batches_converge_to_lstsq_on_two_ranks(ranks, optimizer, split) -> None:
    params = dict(MINI, optimizer=optimizer, random_state=0)
    results = check(ranks.run(fit_mini_batches, params, split))
    assert_same_on_every_rank(results)
    X, y, _ = design("plain", 256)
    coef, intercept = lstsq_fit(X, y)
    # The single-process mini-batch test's tolerance (noisy gradients near the optimum).
    np.testing.assert_allclose(results[0]["coef"], coef, atol=5e-3)
    assert results[0]["intercept"] == pytest.approx(intercept, abs=5e-3)


def test_mini_batches_are_reproducible_from_random_state(ranks) -> None:
    params = dict(MINI, epochs=5, init="random")
    a, b, c = (
        check(ranks.run(fit_mini_batches, dict(params, random_state=seed), 0.4, "weights"))
        for seed in (3, 3, 4)
    )
    for results in (a, b, c):
        assert_same_on_every_rank(results)
    np.testing.assert_array_equal(a[0]["coef"], b[0]["coef"])
    assert a[0]["cost"] == b[0]["cost"]
    assert not np.array_equal(a[0]["coef"], c[0]["coef"])
    # No random_state: rank 0 draws the seed, every rank uses it (a random start too).
    fresh = check(ranks.run(fit_mini_batches, dict(params, random_state=None), 0.4))
    assert_same_on_every_rank(fresh)


@pytest.mark.parametrize("average", [False, True])
def test_unshuffled_steps_take_each_ranks_part_in_turn(ranks, average) -> None:
    # 64 rows a rank, batch_size 32: 128 / 32 = 4 steps an epoch, each holding 16
    # consecutive rows of rank 0 and 16 of rank 1. One process on the rows in that order,
    # unshuffled, takes the same batches (and, with average, the same mean of them).
    params = dict(lr=0.05, epochs=20, batch_size=32, shuffle=False, average=average)
    results = check(ranks.run(fit_mini_batches, params, 0.5, "weights", 128))
    assert_same_on_every_rank(results)
    X, y, w = design("weights", 128)
    order = np.concatenate([np.r_[j : j + 16, 64 + j : 64 + j + 16] for j in range(0, 64, 16)])
    expected = fitted(gd(**params).fit(X[order], y[order], w[order]))
    assert_close(results[0]["coef"], expected["coef"], RTOL)
    assert_close(results[0]["cost"], expected["cost"], RTOL)
    # Another grouping of the same rows trains to other coefficients: the test can fail.
    other = fitted(gd(**params).fit(X, y, w))
    assert np.abs(other["coef"] - expected["coef"]).max() > 1e-6


def test_bad_data_on_one_rank_stops_every_rank_with_its_message(ranks) -> None:
    for r in ranks.run(fit_with_bad_row):
        assert isinstance(r, Failed) and r.kind == "InputError", r
        assert r.message.startswith("rank 1 of 2: X contains NaN at X[3, 1]"), r.message


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("features", "rank 1 of 2 has other features than rank 0 (2 vs 3)"),
        ("epochs", "rank 1 of 2 has other parameters than rank 0"),
        ("zero weights", "no rank has a row of positive weight"),
        ("bad lr", "rank 0 of 2: lr must be a finite number > 0"),
    ],
)
def test_disagreeing_ranks_are_refused_on_every_rank(ranks, what, message) -> None:
    for r in ranks.run(fit_with_mismatch, what):
        assert isinstance(r, Failed) and r.kind == "InputError", r
        assert message in r.message, r.message


def test_divergence_stops_every_rank_at_the_same_epoch(ranks) -> None:
    results = check(ranks.run(fit_diverging))
    assert results[0] is not None and results[0] == results[1]
    kind, epoch, message = results[0]
    assert kind == "TrainingDivergedError" and 0 < epoch < 200
    assert f"epoch {epoch}" in message


def test_early_stopping_on_held_out_rows_of_every_rank(ranks) -> None:
    # Each rank holds out its own rows (its own generator); the score is the R² of every
    # rank's held-out rows, summed over the ranks: every rank stops at the same epoch.
    params = dict(lr=0.02, tol=1e-4, early_stopping=True, n_iter_no_change=3, random_state=5)
    results = check(ranks.run(fit_mini_batches, params, 0.4, "weights"))
    assert_same_on_every_rank(results)
    ours = results[0]
    assert ours["status"] == "stopped early" and len(ours["scores"]) == len(ours["cost"])
    assert len(ours["cost"]) < 3001 and 0.9 < ours["scores"][-1] <= 1
