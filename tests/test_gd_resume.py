"""GDRegressor's checkpoint/resume, warm_start and partial_fit, against their oracles.

Resume: the oracle is the same fit without an interruption. Training on one CPU does the
same floating-point operations in the same order when every state it carries from one
epoch to the next (θ, the optimizer's and scheduler's states, the shuffling generator,
the divergence watch, the stopping rule's counters, the held-out rows) is put back, so
the resumed model must equal the uninterrupted one bit for bit (``np.array_equal``),
not within a tolerance. The interruption is a real SIGTERM, raised from the log line of
epoch ``k``: the handler records it, the epoch ends, a checkpoint is written and
``InterruptedTraining`` is raised, as under ``torchlinreg fit``.

warm_start: plain full-batch SGD without momentum carries no state but θ, so ``a + 1``
passes, then ``b + 1`` passes from the result, are ``a + b + 2`` passes straight: bit for
bit on raw columns (no change of units to round through).

partial_fit: each call is one pass that continues the optimizer's state, so ``m`` calls
on the same rows equal ``fit`` with ``epochs = m − 1`` bit for bit (same scaling, same
steps). Over different chunks with the full batch, call ``i`` is one optimizer step on
chunk ``i``'s mean cost: the oracle replays heavy-ball momentum by hand in float64 with
the gradient ``2·Aᵀ(Aθ − y)/n``; the library computes the same gradient with its own
order of additions, so they agree to rounding: relative 1e-10 over 3 steps of a
well-conditioned problem (entries O(1), each step's rounding ~1e-16 relative).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from torchlinreg import GDRegressor, InputError
from torchlinreg.training.interrupt import InterruptedTraining

# Short runs far from the optimum are the point here, not a problem to warn about.
pytestmark = pytest.mark.filterwarnings("ignore::torchlinreg.ConvergenceWarning")

RNG = np.random.default_rng(0)
N = 60
X = RNG.normal(size=(N, 3)) * [1.0, 10.0, 100.0] + [0.0, 5.0, -3.0]
Y = X @ [1.0, -0.2, 0.03] + 0.5 + 0.1 * RNG.normal(size=N)

RUNS: dict[str, dict[str, Any]] = {
    "sgd-momentum-step-minibatch": dict(
        optimizer="sgd",
        optimizer_options={"momentum": 0.9},
        lr=0.01,
        epochs=12,
        batch_size=8,
        scheduler="step",
        scheduler_options={"step_size": 3, "gamma": 0.5},
    ),
    "adam-onecycle-minibatch": dict(
        optimizer="adam", lr=0.05, epochs=12, batch_size=16, scheduler="onecycle"
    ),
    "early-stopping-tol-minibatch": dict(
        optimizer="sgd",
        lr="auto",
        epochs=60,
        batch_size=8,
        tol=1e-3,
        n_iter_no_change=3,
        early_stopping=True,
        validation_fraction=0.2,
    ),
    "tol-full-batch-step": dict(
        optimizer="sgd",
        optimizer_options={"momentum": 0.5},
        lr=0.05,
        epochs=200,
        tol=1e-6,
        n_iter_no_change=3,
        scheduler="step",
        scheduler_options={"step_size": 5, "gamma": 0.9},
    ),
    "plateau-full-batch-random-init": dict(
        optimizer="rmsprop", lr=0.05, epochs=15, init="random", scheduler="plateau"
    ),
}


def _sigterm_at(epoch: int) -> Any:
    """A log sink that sends this process SIGTERM when epoch ``epoch``'s line is written."""

    def sink(line: str) -> None:
        if line.startswith(f"Epoch {epoch:4d}/") or line.startswith(f"Epoch {epoch}/"):
            signal.raise_signal(signal.SIGTERM)

    return sink


def _interrupted(params: dict[str, Any], at: int, path: Path, **fit: Any) -> InterruptedTraining:
    model = GDRegressor(log_every=1, log_to=_sigterm_at(at), **params)
    with pytest.raises(InterruptedTraining) as caught:
        model.fit(X, Y, checkpoint=str(path), **fit)
    return caught.value


def _same_model(a: GDRegressor, b: GDRegressor) -> None:
    assert np.array_equal(a.coef_, b.coef_)
    assert np.array_equal(a.intercept_, b.intercept_)
    assert a.n_iter_ == b.n_iter_
    ha, hb = a.history_, b.history_
    assert (ha.epoch, ha.cost, ha.coef, ha.intercept) == (hb.epoch, hb.cost, hb.coef, hb.intercept)
    assert ha.validation_score == hb.validation_score
    assert (ha.status, ha.lr) == (hb.status, hb.lr)


@pytest.mark.parametrize("name", RUNS)
def test_resume_after_sigterm_is_bit_identical(tmp_path: Path, name: str) -> None:
    params = {**RUNS[name], "random_state": 5}
    straight = GDRegressor(**params).fit(X, Y)
    at = min(4, straight.n_iter_ - 2)
    path = tmp_path / "run.ckpt"
    stop = _interrupted(params, at, path)
    assert (stop.exit_code, stop.epoch, stop.checkpoint) == (143, at, str(path))
    resumed = GDRegressor(**params).fit(X, Y, resume=str(path))
    _same_model(resumed, straight)
    assert resumed.history_.reason == straight.history_.reason


def test_resume_without_a_seed_draws_the_run_again(tmp_path: Path) -> None:
    """random_state=None: the seed drawn is saved, so the held-out rows and the
    shuffles of the resumed run are the interrupted run's (a fresh draw would differ)."""
    params = {**RUNS["early-stopping-tol-minibatch"], "random_state": None, "init": "random"}
    path = tmp_path / "run.ckpt"
    _interrupted(params, 2, path)
    first = GDRegressor(**params).fit(X, Y, resume=str(path))
    again = GDRegressor(**params).fit(X, Y, resume=str(path))
    _same_model(first, again)


def test_checkpoints_every_n_epochs_and_resume_from_the_last(tmp_path: Path) -> None:
    params = {**RUNS["sgd-momentum-step-minibatch"], "random_state": 1}
    path = tmp_path / "run.ckpt"
    written = GDRegressor(checkpoint_every=5, **params).fit(X, Y, checkpoint=str(path))
    # The last checkpoint is epoch 9's (epochs 4 and 9 of 0..12): 3 epochs remain.
    resumed = GDRegressor(**params).fit(X, Y, resume=str(path))
    _same_model(resumed, written)
    _same_model(written, GDRegressor(**params).fit(X, Y))


def test_resume_of_a_finished_run_trains_no_further(tmp_path: Path) -> None:
    params = {**RUNS["tol-full-batch-step"], "random_state": 0}
    path = tmp_path / "run.ckpt"
    done = GDRegressor(checkpoint_every=1, **params).fit(X, Y, checkpoint=str(path))
    assert done.history_.status == "converged" and done.n_iter_ < params["epochs"] + 1
    _same_model(GDRegressor(**params).fit(X, Y, resume=str(path)), done)


def test_resume_refuses_another_model_other_data_and_missing_files(tmp_path: Path) -> None:
    params = {**RUNS["adam-onecycle-minibatch"], "random_state": 2}
    path = tmp_path / "run.ckpt"
    _interrupted(params, 3, path)
    before = path.read_bytes()
    with pytest.raises(InputError, match=r"another model: lr is 0\.05 there, 0\.1 here"):
        GDRegressor(**{**params, "lr": 0.1}).fit(X, Y, resume=str(path), checkpoint=str(path))
    with pytest.raises(InputError, match="other data: 60 rows"):
        GDRegressor(**params).fit(X[:50], Y[:50], resume=str(path), checkpoint=str(path))
    with pytest.raises(InputError, match="other data .of the same shape, other values"):
        GDRegressor(**params).fit(X, Y + 1, resume=str(path), checkpoint=str(path))
    assert path.read_bytes() == before  # nothing overwritten
    with pytest.raises(InputError, match="no such checkpoint"):
        GDRegressor(**params).fit(X, Y, resume=str(tmp_path / "missing.ckpt"))
    # What only reports or places the run may change.
    GDRegressor(**params, compare_exact=False, log_every=None).fit(X, Y, resume=str(path))


@pytest.mark.parametrize("every", [0, -1, 1.5, True])
def test_checkpoint_every_is_a_positive_integer(tmp_path: Path, every: Any) -> None:
    with pytest.raises(InputError, match="checkpoint_every"):
        GDRegressor(checkpoint_every=every).fit(X, Y, checkpoint=str(tmp_path / "c"))


def test_checkpoint_every_needs_a_path() -> None:
    with pytest.raises(InputError, match="checkpoint_every needs a path"):
        GDRegressor(checkpoint_every=2).fit(X, Y)


# ---------------------------------------------------------------------------------------
# warm_start


RAW = dict(optimizer="sgd", lr=1e-4, standardize=False, dtype="float64")


@pytest.mark.parametrize(("a", "b"), [(5, 1), (3, 7)])
def test_warm_start_continues_plain_gradient_descent(a: int, b: int) -> None:
    straight = GDRegressor(epochs=a + b + 1, **RAW).fit(X, Y)
    warm = GDRegressor(epochs=a, warm_start=True, **RAW).fit(X, Y)
    warm.set_params(epochs=b).fit(X, Y)
    assert np.array_equal(warm.coef_, straight.coef_)
    assert warm.intercept_ == straight.intercept_
    assert warm.n_iter_ == b + 1  # this fit's passes, as scikit-learn counts them


def test_warm_start_with_epochs_1_is_two_gradient_steps() -> None:
    """From a fitted model, epochs=1 is two passes of θ − lr·2Aᵀ(Aθ − y)/n (float64
    oracle; two steps' rounding, relative 1e-12)."""
    model = GDRegressor(epochs=20, warm_start=True, **RAW).fit(X, Y)
    expected = np.r_[model.intercept_, model.coef_]
    A = np.c_[np.ones(N), X]
    for _ in range(2):
        expected = expected - RAW["lr"] * 2 * A.T @ (A @ expected - Y) / N
    model.set_params(epochs=1).fit(X, Y)
    np.testing.assert_allclose(np.r_[model.intercept_, model.coef_], expected, rtol=1e-12)


def test_warm_start_standardized_starts_where_the_last_fit_ended() -> None:
    """With standardize, θ goes to training units and back: the start is the previous
    model up to the rounding of that change of units (float64: relative 1e-12), so a
    warm fit with lr tiny enough to barely move stays there."""
    model = GDRegressor(epochs=50, lr="auto", warm_start=True, dtype="float64").fit(X, Y)
    before = np.r_[model.intercept_, model.coef_]
    model.set_params(lr=1e-14, epochs=1).fit(X, Y)
    np.testing.assert_allclose(np.r_[model.intercept_, model.coef_], before, rtol=1e-12)


def test_warm_start_refuses_data_of_another_shape() -> None:
    model = GDRegressor(epochs=2, warm_start=True).fit(X, Y)
    with pytest.raises(InputError, match="warm start from a fit of 3 features"):
        model.fit(X[:, :2], Y)


def test_without_warm_start_fit_starts_afresh() -> None:
    fresh = GDRegressor(epochs=4, **RAW).fit(X, Y)
    again = GDRegressor(epochs=9, **RAW).fit(X, Y).set_params(epochs=4).fit(X, Y)
    assert np.array_equal(fresh.coef_, again.coef_)


# ---------------------------------------------------------------------------------------
# partial_fit


@pytest.mark.parametrize(
    "params",
    [
        dict(optimizer="sgd", optimizer_options={"momentum": 0.9}, lr=0.01),
        dict(optimizer="adam", lr=0.05, batch_size=16, random_state=4),
        dict(optimizer="sgd", lr="auto", batch_size=8, random_state=4, init="random"),
    ],
    ids=["momentum-full-batch", "adam-minibatch", "auto-minibatch-random-init"],
)
def test_partial_fit_on_the_same_rows_is_fit(params: dict[str, Any]) -> None:
    m = 5
    model = GDRegressor(**params)
    for i in range(m):
        model.partial_fit(X, Y)
        assert model.n_iter_ == i + 1
    fitted = GDRegressor(epochs=m - 1, **params).fit(X, Y)
    assert np.array_equal(model.coef_, fitted.coef_)
    assert model.intercept_ == fitted.intercept_
    assert model.history_.cost == fitted.history_.cost
    assert model.exact_ is None


def test_partial_fit_over_chunks_is_full_batch_training_on_each_chunk() -> None:
    lr, beta = 1e-4, 0.9
    model = GDRegressor(
        optimizer="sgd", optimizer_options={"momentum": beta}, lr=lr, **{
            k: v for k, v in RAW.items() if k not in ("optimizer", "lr")
        }
    )  # fmt: skip
    chunks = [slice(0, 20), slice(20, 45), slice(45, 60)]
    theta, velocity = np.zeros(4), np.zeros(4)
    for i, rows in enumerate(chunks):
        model.partial_fit(X[rows], Y[rows])
        A, y = np.c_[np.ones(len(Y[rows])), X[rows]], Y[rows]
        grad = 2 * A.T @ (A @ theta - y) / len(y)
        velocity = grad if i == 0 else beta * velocity + grad  # torch's heavy ball
        theta = theta - lr * velocity
        np.testing.assert_allclose(np.r_[model.intercept_, model.coef_], theta, rtol=1e-10)
    assert model.n_iter_ == 3 and len(model.history_.cost) == 3


def test_partial_fit_continues_a_fitted_model() -> None:
    """The first partial_fit of a fitted model starts from its coefficients: a pass of
    plain SGD from there, θ − lr·2Aᵀ(Aθ − y)/n (float64 oracle, one step's rounding)."""
    model = GDRegressor(epochs=10, **RAW).fit(X, Y)
    theta = np.r_[model.intercept_, model.coef_]
    A = np.c_[np.ones(N), X]
    expected = theta - RAW["lr"] * 2 * A.T @ (A @ theta - Y) / N
    model.partial_fit(X, Y)
    np.testing.assert_allclose(np.r_[model.intercept_, model.coef_], expected, rtol=1e-12)


def test_partial_fit_checks_shapes_against_the_first_call() -> None:
    model = GDRegressor(epochs=1).partial_fit(X, Y)
    with pytest.raises(
        InputError, match="X has 2 features, but GDRegressor is expecting 3 features"
    ):
        model.partial_fit(X[:, :2], Y)
    with pytest.raises(InputError, match="y has shape .60, 2., but partial_fit started"):
        model.partial_fit(X, np.c_[Y, Y])
    with pytest.raises(InputError, match="dtype"):
        model.set_params(dtype="float64").partial_fit(X, Y)
    with pytest.raises(InputError, match="partial_fit does not take a scheduler"):
        GDRegressor(scheduler="step", scheduler_options={"step_size": 2}).partial_fit(X, Y)


def test_fit_ends_a_partial_fit_sequence() -> None:
    model = GDRegressor(**RAW).partial_fit(X, Y).partial_fit(X, Y)
    model.set_params(epochs=3).fit(X, Y)
    model.partial_fit(X[:30], Y[:30])  # a new sequence: 30 rows are fine
    assert model.n_iter_ == 1  # passes since the sequence started


# ---------------------------------------------------------------------------------------
# The command line


def _data_file(tmp_path: Path, rows: int = 200) -> Path:
    rng = np.random.default_rng(1)
    Xf = rng.normal(size=(rows, 3)) * [1.0, 10.0, 100.0]
    yf = Xf @ [1.0, -0.2, 0.03] + 0.5 + 0.1 * rng.normal(size=rows)
    path = tmp_path / "data.csv"
    np.savetxt(path, np.c_[Xf, yf], delimiter=",", header="a,b,c,y", comments="")
    return path


GD_ARGS = [
    "--target", "y", "--method", "gd", "--optimizer", "sgd", "--optimizer-option",
    "momentum=0.9", "--lr", "0.001", "--batch-size", "4", "--seed", "3", "--scheduler",
    "step", "--scheduler-option", "step_size=50", "--scheduler-option", "gamma=0.5",
    "--dtype", "float64",
]  # fmt: skip


def _cli(argv: list[Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from torchlinreg.cli import main

    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_cli_sigterm_writes_a_checkpoint_and_resume_finishes_the_same_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real process stopped by SIGTERM once its first checkpoint exists: exit 143 and
    the resume line; running that line gives the model file of an uninterrupted run."""
    import os
    import shlex
    import subprocess
    import sys
    import time

    from torchlinreg import load_model

    data = _data_file(tmp_path)
    epochs = ["--epochs", "100"]
    straight = tmp_path / "straight.safetensors"
    assert _cli(["fit", data, *GD_ARGS, *epochs, "-o", straight], capsys)[0] == 0
    model = tmp_path / "model.safetensors"
    ckpt = tmp_path / "model.safetensors.ckpt"
    argv = ["fit", str(data), *GD_ARGS, *epochs, "--checkpoint-every", "1", "-o", str(model)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "torchlinreg", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    line = err.strip().splitlines()[-1]
    prefix = "torchlinreg fit: error: interrupted at epoch "
    assert line.startswith(prefix) and "Traceback" not in err
    epoch = int(line[len(prefix) :].split(";")[0])
    assert 0 <= epoch < 100 and not model.exists()
    command = line.split("; resume with: ", 1)[1]
    assert shlex.split(command) == ["torchlinreg", *argv, "--resume", str(ckpt)]
    resumed = subprocess.run(
        [sys.executable, "-m", *shlex.split(command)], capture_output=True, text=True,
        timeout=300, env={**os.environ},
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_model(str(model)).estimator, load_model(str(straight)).estimator
    assert np.array_equal(a.coef_, b.coef_) and a.intercept_ == b.intercept_


def test_cli_resume_refusals_exit_2_and_overwrite_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data_file(tmp_path, rows=40)
    ckpt = tmp_path / "run.ckpt"
    base = ["fit", data, *GD_ARGS, "--epochs", "3", "--checkpoint", ckpt]
    assert _cli([*base, "--checkpoint-every", "2"], capsys)[0] == 0
    before = ckpt.read_bytes()
    model = tmp_path / "m.safetensors"
    code, err = _cli([*base, "--lr", "0.002", "--resume", ckpt, "-o", model], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "is a checkpoint of another model: lr is 0.001 there, 0.002 here" in err
    assert ckpt.read_bytes() == before and not model.exists()
    code, err = _cli([*base, "--resume", tmp_path / "none.ckpt", "-o", model], capsys)
    assert code == 2 and err.strip().endswith("none.ckpt: no such checkpoint; check the path")
    assert not model.exists()
    code, err = _cli(["fit", data, *GD_ARGS, "--checkpoint-every", "2"], capsys)
    assert code == 2 and "--checkpoint-every needs a place to write" in err
    code, err = _cli(["fit", data, "--target", "y", "--resume", ckpt], capsys)
    assert code == 2 and "--resume: for gradient training only; add --method gd" in err
    code, err = _cli([*base[:-2], "--checkpoint", data], capsys)
    assert code == 2 and "is also the input" in err


def test_resume_while_the_growth_watch_counts_diverges_at_the_same_epoch(tmp_path: Path) -> None:
    # Momentum beyond its stable range: the growth rule raises at epoch E, after the cost
    # stayed above its reference for epochs E−4..E. Interrupted after epoch E−2 (the
    # watch's count at 3 of 5), the resumed run must raise at E with the same message.
    from torchlinreg import TrainingDivergedError

    params = dict(optimizer="sgd", lr=2.5, optimizer_options={"momentum": 0.9},
                  epochs=3000, dtype="float64")  # fmt: skip
    with pytest.raises(TrainingDivergedError, match="stayed above 10x") as straight:
        GDRegressor(**params).fit(X, Y)
    diverged = straight.value.epoch
    assert diverged >= 5  # epoch 0, at the start, is not above its reference
    path = tmp_path / "run.ckpt"
    _interrupted(params, diverged - 2, path)
    with pytest.raises(TrainingDivergedError) as resumed:
        GDRegressor(**params).fit(X, Y, resume=str(path))
    assert resumed.value.epoch == diverged and resumed.value.cost == straight.value.cost
    assert str(resumed.value) == str(straight.value)
