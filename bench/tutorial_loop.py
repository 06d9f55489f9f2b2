"""The tutorial's own loop against torchlinreg's trainer, same problem, one process.

    python bench/tutorial_loop.py [--repeats 15]

Both run 3001 full-batch SGD steps (lr 0.01) on the tutorial's three points and log every
200 epochs. Runs alternate (tutorial, ours, tutorial, ...) after one warm-up each; the
medians and their ratio are printed, and the two logs must be identical.
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


def ours(out: io.StringIO) -> None:
    torch.manual_seed(1)
    x_train = torch.FloatTensor([[1], [2], [3]])
    y_train = torch.FloatTensor([[2], [4], [6]])
    GDRegressor(lr=0.01, epochs=3000, log_every=200, log_to=out).fit(x_train, y_train)


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
    _, log_ours = timed(ours)
    assert log_ours == log_tutorial, "logs differ:\n" + log_ours + "\n---\n" + log_tutorial
    t_tutorial, t_ours = [], []
    for _ in range(args.repeats):
        t_tutorial.append(timed(tutorial)[0])
        t_ours.append(timed(ours)[0])
    med_t, med_o = statistics.median(t_tutorial), statistics.median(t_ours)
    steps = 3001
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, {args.repeats} repeats, medians"
    )
    print(
        f"tutorial loop (autograd + optim.SGD): {med_t * 1e3:7.1f} ms  "
        f"({med_t / steps * 1e6:5.1f} us/step)"
    )
    print(
        f"torchlinreg GDRegressor             : {med_o * 1e3:7.1f} ms  "
        f"({med_o / steps * 1e6:5.1f} us/step)"
    )
    print(f"speed-up: {med_t / med_o:.2f}x   logs identical: yes (16 lines)")


if __name__ == "__main__":
    main()
