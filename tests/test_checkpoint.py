"""Checkpoints of gradient training: resuming is bit-identical, files are untrusted input.

The oracle for resuming is the same run without a stop: mini-batch training with a
seeded shuffling generator for E epochs straight, against k epochs, a checkpoint on
disk, fresh θ, optimizer, scheduler and generator given its state back, and E − k more
epochs. Floating-point arithmetic is deterministic on one CPU for the same operations in
the same order, so the parameters must agree bit for bit (``torch.equal``), not within
a tolerance; a control shows that restoring θ alone gives other parameters, so the
comparison can fail. The loop here is written by hand (the library's loop calls
:class:`Checkpointer` the same way).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from torchlinreg import InputError, LinearRegression, save_model
from torchlinreg.training import checkpoint as ckpt
from torchlinreg.training.checkpoint import (
    Checkpoint,
    Checkpointer,
    RunIdentity,
    fingerprint,
    load_checkpoint,
    restore,
    save_checkpoint,
)
from torchlinreg.training.history import History
from torchlinreg.training.interrupt import InterruptedTraining, StopRequest, interruptible

N, P, BATCH, EPOCHS, SEED = 40, 3, 8, 8, 7
STEPS = EPOCHS * -(-N // BATCH)  # batches in the whole run (OneCycleLR's total_steps)


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(N, P, generator=g, dtype=torch.float64)
    y = X @ torch.tensor([[1.5], [-2.0], [0.5]], dtype=torch.float64) + 0.3
    y = y + 0.1 * torch.randn(N, 1, generator=g, dtype=torch.float64)
    return X, y, torch.cat([torch.ones(N, 1, dtype=torch.float64), X], dim=1)


X, Y, A = _data()
PARAMS = {"optimizer": "sgd", "lr": 0.05, "batch_size": BATCH, "random_state": SEED}
IDENTITY = RunIdentity.of(PARAMS, X, Y)

OPTIMIZERS: dict[str, Callable[[list[torch.Tensor]], torch.optim.Optimizer]] = {
    "sgd-momentum": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda p: torch.optim.Adam(p, lr=0.05),
}
# Each scheduler and when it steps: per epoch, per batch, or on the epoch's cost.
SCHEDULERS: dict[str, tuple[Callable[[Any], Any], str] | None] = {
    "none": None,
    "steplr": (lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5), "epoch"),
    "onecycle": (lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.1, total_steps=STEPS), "batch"),
    # A threshold no epoch meets, so the rate is cut: its counters matter on resume.
    "plateau": (
        lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=1, threshold=0.9),
        "cost",
    ),
}


class Run:
    """θ, optimizer, scheduler and generator of one run, built as a fresh run builds them."""

    def __init__(self, optimizer: str, scheduler: str, theta0: float = 0.0) -> None:
        self.theta = torch.full((P + 1, 1), theta0, dtype=torch.float64, requires_grad=True)
        self.optimizer = OPTIMIZERS[optimizer]([self.theta])
        spec = SCHEDULERS[scheduler]
        self.scheduler: Any = None if spec is None else spec[0](self.optimizer)
        self.when = None if spec is None else spec[1]
        self.generator = torch.Generator().manual_seed(SEED)
        self.history = History()

    def epoch(self, epoch: int) -> None:
        order = torch.randperm(N, generator=self.generator)
        total = torch.zeros((), dtype=torch.float64)
        for start in range(0, N, BATCH):
            idx = order[start : start + BATCH]
            self.optimizer.zero_grad()
            cost = ((A[idx] @ self.theta - Y[idx]) ** 2).mean()
            cost.backward()
            self.optimizer.step()
            if self.when == "batch":
                self.scheduler.step()
            total = total + cost.detach() * len(idx)
        mean = (total / N).item()
        if self.when == "epoch":
            self.scheduler.step()
        elif self.when == "cost":
            self.scheduler.step(mean)
        self.history.epoch.append(epoch)
        self.history.cost.append(mean)

    def train(self, epochs: range, after: Callable[[int], None] | None = None) -> Run:
        for e in epochs:
            self.epoch(e)
            if after is not None:
                after(e)
        return self

    def save(self, path: Path, epoch: int) -> None:
        save_checkpoint(str(path), self.capture(epoch))

    def capture(self, epoch: int) -> Checkpoint:
        return Checkpoint.capture(
            IDENTITY,
            epoch,
            self.theta,
            self.optimizer,
            self.scheduler,
            self.generator,
            self.history,
        )

    def checkpointer_args(self) -> tuple[Any, ...]:
        return (self.theta, self.optimizer, self.scheduler, self.generator, self.history)


def _resumed(path: Path, optimizer: str, scheduler: str) -> Run:
    """A fresh run (another θ₀, a generator in another state) given the file's state."""
    run = Run(optimizer, scheduler, theta0=3.0)
    torch.randperm(N, generator=run.generator)  # the fresh state is not the saved one
    loaded = load_checkpoint(str(path), IDENTITY)
    restore(run.optimizer, run.scheduler, run.generator, loaded)
    run.history = loaded.history
    return run.train(range(loaded.epoch + 1, EPOCHS))


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_resume_is_bit_identical(tmp_path: Path, optimizer: str, scheduler: str) -> None:
    straight = Run(optimizer, scheduler).train(range(EPOCHS))
    first = Run(optimizer, scheduler).train(range(3))
    first.save(tmp_path / "c.safetensors", epoch=2)
    first.train(range(3, 5))  # the run goes on; the file keeps epoch 2's state
    resumed = _resumed(tmp_path / "c.safetensors", optimizer, scheduler)
    assert torch.equal(resumed.theta, straight.theta)
    assert resumed.history == straight.history
    assert resumed.optimizer.param_groups[0]["lr"] == straight.optimizer.param_groups[0]["lr"]
    if scheduler != "none":  # the schedule moved the rate, so its state was needed
        assert straight.optimizer.param_groups[0]["lr"] != 0.05


def test_restoring_theta_alone_is_not_enough(tmp_path: Path) -> None:
    """Control: without the momentum, schedule and generator states the run differs,
    so the bit-for-bit comparison above can fail."""
    straight = Run("sgd-momentum", "steplr").train(range(EPOCHS))
    first = Run("sgd-momentum", "steplr").train(range(3))
    fresh = Run("sgd-momentum", "steplr")
    with torch.no_grad():
        fresh.theta.copy_(first.theta)
    fresh.train(range(3, EPOCHS))
    assert not torch.allclose(fresh.theta, straight.theta, rtol=1e-6, atol=0)


def test_checkpointer_writes_every_n_epochs(tmp_path: Path) -> None:
    path = tmp_path / "c.safetensors"
    run = Run("adam", "onecycle")
    writer = Checkpointer(str(path), 3, IDENTITY)
    written: list[int] = []

    made: list[int] = []

    def history() -> History:  # built only when a checkpoint is written
        made.append(len(run.history))
        return run.history

    def after(e: int) -> None:
        writer.after_epoch(e, run.theta, run.optimizer, run.scheduler, run.generator, history)
        if path.exists():
            written.append(load_checkpoint(str(path), IDENTITY).epoch)

    run.train(range(EPOCHS), after)
    assert written == [2, 2, 2, 5, 5, 5]  # after epochs 2 and 5: 3 and 6 epochs done
    assert made == [3, 6]
    assert torch.equal(_resumed(path, "adam", "onecycle").theta, run.theta)


def test_state_trees_round_trip_exactly(tmp_path: Path) -> None:
    """Tuples, int keys, infinities, NaN, bools, big integers and exact floats survive."""
    loop: dict[str, Any] = {
        "best": float("inf"),
        "worst": float("-inf"),
        "unset": float("nan"),
        "pair": (1, 0.1 + 0.2, True),
        "counts": {0: 3, "$odd": None},
        "big": 2**70,
        "tensor": torch.arange(5, dtype=torch.int32),
    }
    run = Run("sgd-momentum", "none").train(range(1))
    checkpoint = Checkpoint.capture(IDENTITY, 0, run.theta, run.optimizer, loop=loop)
    save_checkpoint(str(tmp_path / "c"), checkpoint)
    back = load_checkpoint(str(tmp_path / "c"), IDENTITY).loop
    assert back["best"] == float("inf") and back["worst"] == float("-inf")
    assert np.isnan(back["unset"])
    assert back["pair"] == (1, 0.1 + 0.2, True) and type(back["pair"][2]) is bool
    assert back["counts"] == {0: 3, "$odd": None} and back["big"] == 2**70
    assert torch.equal(back["tensor"], loop["tensor"]) and back["tensor"].dtype == torch.int32


def test_capture_is_a_snapshot() -> None:
    run = Run("sgd-momentum", "none").train(range(1))
    snap = run.capture(0)
    buffer = snap.optimizer["state"][0]["momentum_buffer"].clone()
    run.train(range(1, 3))  # updates θ and the momentum buffer in place
    assert torch.equal(snap.optimizer["state"][0]["momentum_buffer"], buffer)
    assert not torch.equal(snap.theta, run.theta)


def test_fingerprint_compares_settings_not_objects() -> None:
    a = fingerprint({"optimizer": torch.optim.Adam, "betas": (0.9, 0.99), "alpha": np.float64(2)})
    assert a == {"optimizer": "torch.optim.adam.Adam", "betas": [0.9, 0.99], "alpha": 2.0}
    t1 = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    t2 = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    assert fingerprint({"optimizer": t1}) == fingerprint({"optimizer": t2})


# ------------------------------------------------------------------------------------
# Refusals


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "c.safetensors"
    Run("adam", "steplr").train(range(2)).save(path, epoch=1)
    return path


def _rewrite(
    path: Path,
    meta: Callable[[dict[str, Any]], None] = lambda m: None,
    header: Callable[[dict[str, str]], None] = lambda h: None,
    tensors: Callable[[dict[str, torch.Tensor]], Any] = lambda t: None,
    rehash: bool = True,
) -> None:
    """Change a saved checkpoint as a damaged or hostile file would (the checksum
    recomputed, as anyone can, unless ``rehash`` is false)."""
    with safe_open(str(path), framework="pt") as f:
        head = dict(f.metadata())
        arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    m = json.loads(head["checkpoint"])
    meta(m)
    tensors(arrays)
    head["checkpoint"] = json.dumps(m)
    if rehash:
        head["sha256"] = ckpt._digest(m, arrays)
    header(head)
    save_file(arrays, str(path), metadata=head)


def _refused(path: Path, *fragments: str, identity: RunIdentity = IDENTITY) -> None:
    with pytest.raises(InputError) as info:
        load_checkpoint(str(path), identity)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_missing_file(tmp_path: Path) -> None:
    _refused(tmp_path / "nope.safetensors", "no such checkpoint", "check the path")


def test_model_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_model(str(path), LinearRegression().fit(X.numpy(), Y.numpy()))
    _refused(path, "model file, not a checkpoint", "load_model")


def test_other_safetensors_file(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    _refused(path, "not a torchlinreg checkpoint")


def test_other_format_version(saved: Path) -> None:
    _rewrite(saved, header=lambda h: h.update(format_version="2"))
    _refused(saved, "checkpoint of format 2", "resumes format 1 only", "train afresh")


def test_another_model_names_the_parameters(saved: Path) -> None:
    other = RunIdentity.of({**PARAMS, "lr": 0.1, "momentum": 0.9}, X, Y)
    _refused(
        saved,
        "checkpoint of another model",
        "lr is 0.05 there, 0.1 here",
        "momentum is unset there, 0.9 here",
        "resume with the parameters it was written with",
        identity=other,
    )


def test_booleans_are_not_numbers(saved: Path) -> None:
    other = RunIdentity.of({**PARAMS, "random_state": True}, X, Y)
    _refused(saved, "random_state is 7 there, true here", identity=other)


@pytest.mark.parametrize("rows", [N - 1, N + 1])
def test_other_data(saved: Path, rows: int) -> None:
    other = RunIdentity.of(PARAMS, X[:rows] if rows < N else torch.cat([X, X[:1]]), Y)
    _refused(saved, "other data", f"{N} rows × 3 features × 1 target(s) of float64 there",
             f"{rows} rows", identity=other)  # fmt: skip


def test_other_dtype(saved: Path) -> None:
    _refused(saved, "other data", "of float32 here", identity=RunIdentity.of(PARAMS, X.float(), Y))


def test_flipped_byte_is_corruption(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    data[-3] ^= 0x01  # in the last tensor's bytes
    saved.write_bytes(bytes(data))
    _refused(saved, "is corrupted", "checksum")


def test_edited_metadata_is_corruption(saved: Path) -> None:
    _rewrite(saved, meta=lambda m: m.update(epoch=5), rehash=False)
    _refused(saved, "is corrupted", "checksum")


def test_truncated_file(saved: Path) -> None:
    saved.write_bytes(saved.read_bytes()[:-50])
    _refused(saved, "not a readable checkpoint", "truncated")


def _drop_history_tail(m: dict[str, Any]) -> None:
    m["history"]["epoch"] = m["history"]["epoch"][:-1]
    m["history"]["cost"] = m["history"]["cost"][:-1]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda m: m.update(epoch=True), "epoch is not an integer"),
        (lambda m: m.update(epoch=-1), "epoch is not an integer"),
        (lambda m: m.pop("optimizer"), "lacks optimizer"),
        (lambda m: m.update(extra=1), "unknown 'extra'"),
        (lambda m: m["identity"].update(n_samples="40"), "identity.n_samples is not a count"),
        (lambda m: m["optimizer"].update(state={"$pickle": "x"}), "unknown tag '$pickle'"),
        (lambda m: m["optimizer"].update(state={"$tensor": "theta"}), "lacks"),
        (lambda m: m["optimizer"].update(state={"$float": "1e999"}), "not inf, -inf or nan"),
        (lambda m: m["optimizer"].update(state={"$dict": [[[1], 2]]}), "not a scalar"),
        (lambda m: m["loop"].update(deep=json.loads("[" * 70 + "]" * 70)), "nested deeper"),
        (_drop_history_tail, "does not increase to the checkpoint's epoch 1"),
        (lambda m: m["history"].update(cost=["x", 1]), "history.cost"),
        (lambda m: m["history"].update(momentum=[1, 2]), "unknown 'momentum'"),
        (lambda m: m["history"].update(coef="x"), "history.coef is str"),
    ],
)
def test_damaged_metadata(
    saved: Path, change: Callable[[dict[str, Any]], None], fragment: str
) -> None:
    _rewrite(saved, meta=change)
    _refused(saved, "the checkpoint is invalid", fragment)


def test_unreferenced_tensor(saved: Path) -> None:
    _rewrite(saved, tensors=lambda t: t.update(stowaway=torch.zeros(1)))
    _refused(saved, "tensors nothing refers to (stowaway)")


def test_parameters_of_the_wrong_shape(saved: Path) -> None:
    _rewrite(saved, tensors=lambda t: t.update(theta=torch.zeros(P + 2, 1, dtype=torch.float64)))
    _refused(saved, "parameters are (5, 1)", "do not fit 3 features")


def test_diverged_parameters(saved: Path) -> None:
    _rewrite(saved, tensors=lambda t: t["theta"].fill_(float("nan")))
    _refused(saved, "not finite", "smaller learning rate")


def test_restore_refuses_other_objects_and_changes_nothing(saved: Path) -> None:
    loaded = load_checkpoint(str(saved), IDENTITY)  # an Adam with a StepLR
    for optimizer, scheduler, fragment in [
        ("sgd-momentum", "steplr", "unknown 'betas'"),
        ("adam", "none", "has learning-rate scheduler state, unlike this run"),
        ("adam", "onecycle", "unknown"),
    ]:
        run = Run(optimizer, scheduler, theta0=3.0)
        before = (run.theta.clone(), run.optimizer.state_dict(), run.generator.get_state())
        with pytest.raises(InputError, match=fragment):
            restore(run.optimizer, run.scheduler, run.generator, loaded)
        assert torch.equal(run.theta, before[0])
        assert run.optimizer.state_dict() == before[1]
        assert torch.equal(run.generator.get_state(), before[2])
    run = Run("adam", "steplr")
    with pytest.raises(InputError, match="has shuffling generator state, unlike"):
        restore(run.optimizer, run.scheduler, None, loaded)


def test_restore_refuses_optimizer_state_of_another_shape(saved: Path) -> None:
    def widen(t: dict[str, torch.Tensor]) -> None:
        t["optimizer.1"] = torch.zeros(P + 2, 1, dtype=torch.float64)  # exp_avg

    _rewrite(saved, tensors=widen)
    run = Run("adam", "steplr")
    with pytest.raises(InputError, match="'exp_avg' is \\(5, 1\\), not θ's \\(4, 1\\)"):
        restore(run.optimizer, run.scheduler, run.generator, load_checkpoint(str(saved), IDENTITY))


def test_restore_puts_everything_back_when_the_last_state_fails(saved: Path) -> None:
    """The generator's state is given back last: when it does not fit, the optimizer
    and scheduler already loaded are put back as they were."""
    _rewrite(saved, tensors=lambda t: t.update(generator=t["generator"][:16].clone()))
    run = Run("adam", "steplr", theta0=3.0).train(range(1))
    theta = run.theta.detach().clone()
    before = (run.optimizer.state_dict(), run.scheduler.state_dict(), run.generator.get_state())
    before = ckpt._snapshot(before)
    with pytest.raises(InputError, match="does not fit this run's optimizer, scheduler or gen"):
        restore(run.optimizer, run.scheduler, run.generator, load_checkpoint(str(saved), IDENTITY))
    assert torch.equal(run.theta, theta)
    after = (run.optimizer.state_dict(), run.scheduler.state_dict(), run.generator.get_state())
    assert after[1] == before[1] and torch.equal(after[2], before[2])
    assert after[0]["param_groups"] == before[0]["param_groups"]
    for name, value in before[0]["state"][0].items():
        assert torch.equal(after[0]["state"][0][name], value)


def test_unsavable_state_leaves_the_previous_file(saved: Path) -> None:
    before = saved.read_bytes()
    run = Run("adam", "steplr").train(range(1))
    bad = Checkpoint.capture(IDENTITY, 0, run.theta, run.optimizer, loop={"f": print})
    with pytest.raises(InputError, match="loop.f is a builtin_function_or_method"):
        save_checkpoint(str(saved), bad)
    assert saved.read_bytes() == before
    assert os.listdir(saved.parent) == [saved.name]


def test_diverged_run_keeps_the_last_good_checkpoint(saved: Path) -> None:
    before = saved.read_bytes()
    run = Run("adam", "steplr")
    with torch.no_grad():
        run.theta.fill_(float("inf"))
    writer = Checkpointer(str(saved), 1, IDENTITY)
    writer.after_epoch(4, *run.checkpointer_args())
    assert writer.interrupted(4, *run.checkpointer_args()) is None
    assert saved.read_bytes() == before


@pytest.mark.parametrize("every", [0, -1, 1.5, True])
def test_checkpoint_every_must_be_a_positive_integer(every: Any) -> None:
    with pytest.raises(InputError, match="checkpoint_every"):
        Checkpointer("c", every, IDENTITY)


# ------------------------------------------------------------------------------------
# Signals


def _interrupted_run(path: Path, signum: int) -> InterruptedTraining:
    """A run that signals itself from another thread at epoch 2 and goes on until the
    request is seen, then writes a checkpoint and stops."""
    started = threading.Event()

    def send() -> None:
        started.wait(10)
        os.kill(os.getpid(), signum)

    sender = threading.Thread(target=send)
    run = Run("adam", "onecycle")
    previous = signal.getsignal(signum)
    with interruptible() as stop, pytest.raises(InterruptedTraining) as info:
        writer = Checkpointer(str(path), None, IDENTITY, stop)
        sender.start()
        for e in range(EPOCHS):
            run.epoch(e)
            if e == 2:
                started.set()
                sender.join()  # the handler runs in this thread before the next epoch ends
            writer.after_epoch(e, *run.checkpointer_args())
    assert signal.getsignal(signum) is previous
    return info.value


def test_sigterm_writes_a_checkpoint_and_resumes_bit_identically(tmp_path: Path) -> None:
    path = tmp_path / "c.safetensors"
    stopped = _interrupted_run(path, signal.SIGTERM)
    assert (stopped.signum, stopped.exit_code, stopped.checkpoint) == (
        signal.SIGTERM, 143, str(path)
    )  # fmt: skip
    assert 2 <= stopped.epoch < EPOCHS - 1
    assert (
        str(stopped)
        == f"interrupted by SIGTERM at epoch {stopped.epoch}; checkpoint written to {path}"
    )
    assert load_checkpoint(str(path), IDENTITY).epoch == stopped.epoch
    straight = Run("adam", "onecycle").train(range(EPOCHS))
    assert torch.equal(_resumed(path, "adam", "onecycle").theta, straight.theta)


def test_ctrl_c_exits_130_and_is_a_keyboard_interrupt(tmp_path: Path) -> None:
    stopped = _interrupted_run(tmp_path / "c.safetensors", signal.SIGINT)
    assert isinstance(stopped, KeyboardInterrupt) and stopped.exit_code == 130


def test_second_signal_acts_at_once() -> None:
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt) as info, interruptible() as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.signum == signal.SIGINT  # the first only asks
        signal.raise_signal(signal.SIGINT)
    assert not isinstance(info.value, InterruptedTraining)
    assert signal.getsignal(signal.SIGINT) is previous


def test_ignored_signal_stays_ignored() -> None:
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with interruptible() as stop:
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
            signal.raise_signal(signal.SIGTERM)
            assert not stop.requested
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_nothing_installed_outside_the_main_thread() -> None:
    seen: list[Any] = []

    def body() -> None:
        with interruptible() as stop:
            seen.extend([signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), stop])

    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    worker = threading.Thread(target=body)
    worker.start()
    worker.join()
    assert tuple(seen[:2]) == handlers and not seen[2].requested


def test_sigterm_during_the_write_still_leaves_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM while the file is open: the atomic writer removes its temporary file and
    passes the signal on to the guard; the write is made again, whole."""
    path = tmp_path / "c.safetensors"
    original = ckpt._write_bytes
    calls: list[int] = []

    def interrupted_write(target: str, data: bytes) -> None:
        calls.append(1)
        if len(calls) > 1:
            return original(target, data)
        with open(target, "wb") as out:
            out.write(data[:100])
            signal.raise_signal(signal.SIGTERM)
            out.write(data[100:])

    monkeypatch.setattr(ckpt, "_write_bytes", interrupted_write)
    run = Run("adam", "steplr").train(range(3))
    with interruptible() as stop:
        writer = Checkpointer(str(path), 3, IDENTITY, stop)
        writer.after_epoch(2, *run.checkpointer_args())  # due: written, then the request seen
        assert stop.signum == signal.SIGTERM and len(calls) == 2
        assert load_checkpoint(str(path), IDENTITY).epoch == 2
        assert os.listdir(tmp_path) == [path.name]
        run.train(range(3, 4))
        with pytest.raises(InterruptedTraining) as info:
            writer.after_epoch(3, *run.checkpointer_args())
    assert info.value.epoch == 3 and load_checkpoint(str(path), IDENTITY).epoch == 3


def test_stop_request_starts_clear() -> None:
    assert not StopRequest().requested
