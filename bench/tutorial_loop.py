"""The tutorial's own loop against torchlinreg's trainer, same problem, one process.

    python bench/tutorial_loop.py [--repeats 15]

All run 3001 full-batch SGD steps (lr 0.01) on the tutorial's three points and log every
200 epochs: the tutorial's program, torchlinreg's replay of it (what `torchlinreg demo`
runs: the tutorial's rounding, op for op) and `GDRegressor` (closed-form gradient, equal
up to float32 rounding). Runs alternate after one warm-up each; the medians and their
ratios are printed. The replay's log must be identical to the tutorial's.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import time

import torch
import torch.optim as optim

from torchlinreg import GDRegressor
from torchlinreg.demo import replay


def tutorial(out: io.StringIO) -> None:
    """The tutorial's program as written (autograd + optim.SGD)."""
    torch.manual_seed(1)
    x_train = torch.FloatTensor([[1], [2], [3]])
    y_train = torch.FloatTensor([[2], [4], [6]])
    W = torch.zeros(1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    optimizer = optim.SGD([W, b], lr=0.01)
    nb_epochs = 3000
    for epoch in range(nb_epochs + 1):
        pred = W * x_train + b
        error = torch.mean((pred - y_train) ** 2)
        optimizer.zero_grad()
        error.backward()
        optimizer.step()
        if epoch % 200 == 0:
            print(
                "Epoch {:4d}/{} W: {:.3f}, b: {:.3f} Cost: {:.6f}".format(
                    epoch, nb_epochs, W.item(), b.item(), error.item()
                ),
                file=out,
            )


def replayed(out: io.StringIO) -> None:
    replay(lr=0.01, epochs=3000, log_every=200, log=lambda line: print(line, file=out))


def regressor(out: io.StringIO) -> None:
    torch.manual_seed(1)
    x_train = torch.FloatTensor([[1], [2], [3]])
    y_train = torch.FloatTensor([[2], [4], [6]])
    GDRegressor(lr=0.01, epochs=3000, log_every=200, log_to=out, standardize=False).fit(
        x_train, y_train
    )


def timed(fn) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    start = time.perf_counter()
    fn(out)
    return time.perf_counter() - start, out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    _, log_tutorial = timed(tutorial)  # warm-up: the first optimizer step imports a lot
    _, log_replayed = timed(replayed)
    _, log_regressor = timed(regressor)
    assert log_replayed == log_tutorial, "logs differ:\n" + log_replayed + "\n---\n" + log_tutorial
    times: dict[str, list[float]] = {"tutorial": [], "replay": [], "regressor": []}
    for _ in range(args.repeats):
        times["tutorial"].append(timed(tutorial)[0])
        times["replay"].append(timed(replayed)[0])
        times["regressor"].append(timed(regressor)[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    steps = 3001
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, {args.repeats} repeats, medians"
    )
    labels = {
        "tutorial": "tutorial loop (autograd + optim.SGD)",
        "replay": "torchlinreg demo's replay           ",
        "regressor": "torchlinreg GDRegressor             ",
    }
    for key, label in labels.items():
        speed_up = "" if key == "tutorial" else f"   {med['tutorial'] / med[key]:.2f}x"
        print(
            f"{label}: {med[key] * 1e3:7.1f} ms  ({med[key] / steps * 1e6:5.1f} us/step){speed_up}"
        )
    same = "yes" if log_regressor == log_tutorial else "no (float32 rounding)"
    print(f"logs identical: replay yes (16 lines); GDRegressor {same}")


if __name__ == "__main__":
    main()
