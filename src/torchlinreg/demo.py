"""The tutorial, replayed: ``y = W*x + b`` on three points, SGD, MSE, 3000 epochs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .training.loop import TrainResult

# The tutorial's data: y = 2x exactly, so the least-squares answer is W = 2, b = 0.
X_TRAIN = [[1.0], [2.0], [3.0]]
Y_TRAIN = [[2.0], [4.0], [6.0]]


@dataclass
class DemoResult:
    W: float
    b: float
    cost: float
    exact_W: float
    exact_b: float
    history: Any = None  # the run's History (per-epoch cost, W and b), for --plot


def _fixed(x: float) -> str:
    # Rounding noise such as -1e-16 must not print as "-0.000000".
    text = f"{x:.6f}"
    return text[1:] if text == "-0.000000" else text


def exact_line(W: float, b: float, exact_W: float, exact_b: float) -> str:
    """The line after the log: the gradient answer against the exact one."""
    return (
        f"Exact least squares: W = {_fixed(exact_W)}, b = {_fixed(exact_b)}; "
        f"gradient descent is off by |dW| = {abs(W - exact_W):.1e}, "
        f"|db| = {abs(b - exact_b):.1e}"
    )


def replay(
    *,
    lr: float = 0.01,
    epochs: int = 3000,
    optimizer: str = "sgd",
    log_every: int | None = 200,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """The tutorial's training on its data, rounding exactly as the tutorial's program
    does (float32, W and b from zero, full batch; the cost and its gradient computed op
    for op as its autograd does: :class:`~.training.losses.TutorialSquaredError`).

    ``result.theta`` is ``[[b], [W]]``; ``result.history`` holds every epoch's cost
    (before the step) and ``W``, ``b`` (after it)."""
    import torch

    from .training.loop import train
    from .training.losses import TutorialSquaredError

    torch.manual_seed(1)  # as the tutorial; zero initialisation draws nothing from it
    x_train = torch.tensor(X_TRAIN, dtype=torch.float32)
    y_train = torch.tensor(Y_TRAIN, dtype=torch.float32)
    return train(
        x_train,
        y_train,
        None,
        theta0=torch.zeros(2, 1),
        fit_intercept=True,
        target_1d=False,
        loss=TutorialSquaredError(),
        optimizer=optimizer,
        lr=lr,
        optimizer_options=None,
        epochs=epochs,
        batch_size=None,
        shuffle=False,
        generator=None,
        log_every=log_every,
        log=log,
    )


def run_demo(
    *,
    lr: float = 0.01,
    epochs: int = 3000,
    optimizer: str = "sgd",
    log_every: int = 200,
    out: TextIO | None = None,
) -> DemoResult:
    """Train as the tutorial does and write its log (then the comparison) to ``out``."""
    import numpy as np

    from .models.gd import exact_gap

    out = sys.stdout if out is None else out
    trained = replay(
        lr=lr,
        epochs=epochs,
        optimizer=optimizer,
        log_every=log_every,
        log=lambda line: print(line, file=out),
    )
    b, W = (float(v) for v in trained.theta[:, 0])
    # The exact answer on the same data, from the exact solver (accumulated in float64).
    exact = exact_gap(X_TRAIN, Y_TRAIN, None, [[W]], [b], fit_intercept=True)
    result = DemoResult(
        W=W,
        b=b,
        cost=trained.history.cost[-1],
        exact_W=float(exact.coef[0, 0]),
        exact_b=float(np.ravel(exact.intercept)[0]),
        history=trained.history,
    )
    out.write(exact_line(result.W, result.b, result.exact_W, result.exact_b) + "\n")
    return result


def check_plot(path: str) -> None:
    """Refuse ``demo --plot PATH`` before training: a missing directory, an image
    format not written, matplotlib not installed."""
    from ._files import check_output_path
    from .plots._mpl import image_format, require_matplotlib

    check_output_path(path)
    image_format(path)
    require_matplotlib()


def save_plot(output: str, result: DemoResult) -> None:
    """The tutorial's picture: the path of (W, b) over the contours of the exact cost
    on its three points, beside the cost per epoch (log scale) and the exact optimum's
    cost; written to ``output`` (.png, .svg or .pdf) atomically."""
    import numpy as np

    from .plots._mpl import save
    from .plots.draw import gradient_path_figure
    from .plots.training import curve_from, path_over, quadratic_cost

    history = result.history
    W = np.asarray(history.coef, dtype=np.float64).reshape(len(history), -1)[:, 0]
    b = np.asarray(history.intercept, dtype=np.float64).reshape(len(history), -1)[:, 0]
    x = np.asarray(X_TRAIN, dtype=np.float64)
    q = quadratic_cost(np.hstack([x, np.ones_like(x)]), np.asarray(Y_TRAIN))
    path = path_over(("W", "b"), np.column_stack([W, b]), q)
    curve = curve_from(history.epoch, history.cost, q.optimum_cost)
    save(gradient_path_figure(path, curve), output)
