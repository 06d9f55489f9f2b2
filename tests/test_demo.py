"""`torchlinreg demo` against the tutorial: its printed log and its program run live."""

from __future__ import annotations

import functools
import io
import subprocess
import sys

import pytest
import torch

from torchlinreg.cli import main
from torchlinreg.demo import replay, run_demo

from .conftest import tutorial_log, tutorial_trajectory

# The 16 lines the tutorial's code prints under PyTorch (issue 2 quotes them).
TUTORIAL_LINES = """\
Epoch    0/3000 W: 0.187, b: 0.080 Cost: 18.666666
Epoch  200/3000 W: 1.800, b: 0.454 Cost: 0.029767
Epoch  400/3000 W: 1.876, b: 0.281 Cost: 0.011366
Epoch  600/3000 W: 1.924, b: 0.174 Cost: 0.004340
Epoch  800/3000 W: 1.953, b: 0.107 Cost: 0.001657
Epoch 1000/3000 W: 1.971, b: 0.066 Cost: 0.000633
Epoch 1200/3000 W: 1.982, b: 0.041 Cost: 0.000242
Epoch 1400/3000 W: 1.989, b: 0.025 Cost: 0.000092
Epoch 1600/3000 W: 1.993, b: 0.016 Cost: 0.000035
Epoch 1800/3000 W: 1.996, b: 0.010 Cost: 0.000013
Epoch 2000/3000 W: 1.997, b: 0.006 Cost: 0.000005
Epoch 2200/3000 W: 1.998, b: 0.004 Cost: 0.000002
Epoch 2400/3000 W: 1.999, b: 0.002 Cost: 0.000001
Epoch 2600/3000 W: 1.999, b: 0.001 Cost: 0.000000
Epoch 2800/3000 W: 2.000, b: 0.001 Cost: 0.000000
Epoch 3000/3000 W: 2.000, b: 0.001 Cost: 0.000000
""".splitlines()


def test_demo_prints_the_tutorial_log_byte_for_byte(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[:16] == TUTORIAL_LINES  # first, consecutive, nothing between them
    assert out.startswith("\n".join(TUTORIAL_LINES) + "\n")


def test_the_tutorial_program_itself_prints_those_lines() -> None:
    # Guards the oracle: if a torch release changed the tutorial's own output, the
    # hard-coded lines above would need review, not our trainer.
    assert tutorial_log() == TUTORIAL_LINES


def test_demo_ends_with_the_exact_least_squares_comparison() -> None:
    out = io.StringIO()
    result = run_demo(out=out)
    last = out.getvalue().splitlines()[16]
    assert last.startswith("Exact least squares: W = 2.000000, b = 0.000000;")
    assert result.exact_W == pytest.approx(2.0, abs=1e-12)
    assert result.exact_b == pytest.approx(0.0, abs=1e-12)
    assert f"|dW| = {abs(result.W - 2.0):.1e}" in last
    assert abs(result.W - 2.0) < 1e-3 and abs(result.b) < 1e-3


# Settings where the trajectories would part if any step rounded differently: the
# tutorial's own, short runs logged every epoch (the case that once differed at epoch 8),
# fast convergence to a zero cost, and other elementwise optimizers.
REPLAYS = [
    (0.01, 3000, "SGD", {}),
    (0.01, 20, "SGD", {}),
    (0.05, 300, "SGD", {}),
    (0.001, 100, "SGD", {}),
    (0.1, 600, "SGD", {}),
    (0.02, 500, "SGD", {"momentum": 0.9}),
    (0.05, 300, "Adam", {}),
    (0.01, 300, "RMSprop", {}),
]


@pytest.mark.parametrize(("lr", "epochs", "optimizer", "options"), REPLAYS)
def test_replay_rounds_exactly_as_the_tutorial_program_every_epoch(
    lr: float, epochs: int, optimizer: str, options: dict[str, float]
) -> None:
    expected = tutorial_trajectory(lr, epochs, optimizer, **options)
    name = (
        optimizer.lower()
        if not options
        else functools.partial(getattr(torch.optim, optimizer), **options)
    )
    h = replay(lr=lr, epochs=epochs, optimizer=name, log_every=None).history  # type: ignore[arg-type]
    got = [(W[0][0], b[0], cost) for W, b, cost in zip(h.coef, h.intercept, h.cost, strict=True)]
    # Bit for bit: W and b after every step and every cost, not just their printed digits.
    assert got == expected


@pytest.mark.parametrize(
    ("lr", "epochs", "every"), [(0.01, 20, 1), (0.05, 300, 1), (0.001, 100, 7)]
)
def test_demo_prints_every_line_the_tutorial_program_prints_with_the_same_settings(
    lr: float, epochs: int, every: int
) -> None:
    out = io.StringIO()
    run_demo(lr=lr, epochs=epochs, log_every=every, out=out)
    lines = out.getvalue().splitlines()[:-1]
    expected = tutorial_log(lr, epochs, every)
    # The tutorial logs only multiples of `every`; the demo also logs the last epoch.
    if epochs % every:
        assert lines[:-1] == expected
        assert lines[-1].startswith(f"Epoch {epochs:4d}/{epochs} W: ")
    else:
        assert lines == expected


def test_demo_with_another_optimizer_converges() -> None:
    out = io.StringIO()
    result = run_demo(optimizer="adam", lr=0.1, epochs=2000, log_every=500, out=out)
    assert abs(result.W - 2.0) < 1e-3 and abs(result.b) < 2e-3
    assert len(out.getvalue().splitlines()) == 6  # epochs 0, 500, ..., 2000 + comparison


def test_demo_console_script_and_module_run() -> None:
    # The installed script replays the tutorial, as `make demo` runs it.
    proc = subprocess.run(
        [str(_script("torchlinreg")), "demo"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:16] == TUTORIAL_LINES
    assert proc.stderr == ""
    # `python -m torchlinreg` is the same program (checked without a second torch start-up).
    proc = subprocess.run(
        [sys.executable, "-m", "torchlinreg", "demo", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: torchlinreg demo" in proc.stdout and "--log-every" in proc.stdout


def test_demo_with_a_diverging_lr_exits_2_with_advice(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--lr", "5"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [message] = err.splitlines()
    assert "diverged" in message and "epoch" in message and "lr=0.5" in message


def _script(name: str):  # type: ignore[no-untyped-def]
    from pathlib import Path

    return Path(sys.executable).parent / name
