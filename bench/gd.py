"""Mini-batch gradient training: torchlinreg against scikit-learn and hand-written torch.

    python bench/gd.py [--rows 1000000] [--features 100] [--passes 5] [--repeats 3]
                       [--threads N] [--eta0 1e-3] [--grid] [--no-dataloader]

One process, one data set (X ~ N(0, 1) float32 in memory, y = X·w + 3 + N(0, 1) noise,
a held-out test set drawn the same way; the best possible test MSE is the noise's, 1).
Everyone starts from zero and runs plain SGD with a constant step on the squared error:

- ``GDRegressor(optimizer="sgd", batch_size=B)``, B = 256 and 4096; its ``epochs=E``
  runs E + 1 passes, so ``epochs=passes - 1`` (``epochs`` is at least 1: one pass is
  ``partial_fit``, which runs the same first pass); and the same with ``average=True``
  (the model is the mean of the iterates), beside scikit-learn's ``average=True``;
- scikit-learn's ``SGDRegressor(learning_rate="constant", penalty=None, tol=None,
  shuffle=True)``: one sample per update, ``max_iter`` passes in one ``fit`` call;
- the PyTorch user's loop: ``nn.Linear`` + ``optim.SGD`` + ``F.mse_loss`` on batches
  cut from a ``randperm`` by indexing, and the same with ``TensorDataset`` +
  ``DataLoader(shuffle=True)``.

The step: scikit-learn's loss is ½(x·w − y)² per sample and it updates once per sample,
so ``eta0`` moves the weights by ``eta0·r·x`` per sample. A mean-squared-error batch
gradient is ``2/B·Σ r·x``; the same movement per sample seen is ``lr = eta0·B/2``
("equal per-sample step"), used for every batch size as long as it is below the stable
step of full-batch descent, ``1/λmax(XᵀX/n) ≈ 1`` here; above that, half of it. The
default ``eta0 = 1e-3``: scikit-learn's own default, 1e-2, is within 2× of its stability
limit ``2/‖x‖² ≈ 0.02`` at 100 standard-normal features and leaves a large noise floor.
``--grid`` also reports the test MSE for eta0 ∈ {1e-4, 1e-3, 1e-2} (one timing each).

Time per pass is what one more pass costs: ``(T(passes) − T(1 pass)) / (passes − 1)``
for scikit-learn and ``(T(passes) − T(2 passes)) / (passes − 2)`` for ``GDRegressor``
(whose ``fit`` runs two passes at least; each ``fit`` validates the data once, reported
apart as the one-pass call: ``partial_fit`` for ours), and the median epoch for the
hand-written loops. The DataLoader loop runs one epoch. Then a profile of where one of
our batch-256 steps goes, timed component by component on the same data (pure torch,
the operations the trainer runs).
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import timed  # noqa: E402

INTERCEPT, NOISE = 3.0, 1.0


def make(rows: int, p: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """X ~ N(0, 1) and y = X·w + 3 + N(0, 1), float32, w ~ N(0, 1) from seed 0."""
    w = np.random.default_rng(0).standard_normal(p).astype(np.float32)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, p), dtype=np.float32)
    y = X @ w + np.float32(INTERCEPT) + rng.standard_normal(rows, dtype=np.float32)
    return X, y


def mse(coef: np.ndarray, intercept: float, X: np.ndarray, y: np.ndarray) -> float:
    residual = X.astype(np.float64) @ np.asarray(coef, np.float64).ravel() + intercept - y
    return float(np.mean(residual**2))


@dataclass
class Result:
    """Per-pass time, the one-pass fit call, test MSE after one pass and after all."""

    name: str
    per_pass: float
    one_pass_call: float | None
    mse_1: float
    mse_all: float
    note: str = ""
    mse_3: float | None = None  # after 3 passes, when more are run


# --- torchlinreg ------------------------------------------------------------------------


def gd_options(standardize: bool | None) -> dict[str, Any]:
    """Options that keep GDRegressor to the same problem while its parameters change:
    no exact comparison after training, no standardization unless asked, no early stop."""
    from torchlinreg import GDRegressor

    names = inspect.signature(GDRegressor).parameters
    wanted = {
        "compare_exact": False,
        "standardize": bool(standardize),
        "early_stopping": False,
        "tol": None,
    }
    return {k: v for k, v in wanted.items() if k in names}


def fit_gd(
    X: np.ndarray, y: np.ndarray, batch: int, lr: float, passes: int, options: dict[str, Any]
) -> tuple[Any, float]:
    from torchlinreg import GDRegressor

    model = GDRegressor(
        optimizer="sgd", batch_size=batch, lr=lr, epochs=max(passes - 1, 1), random_state=0,
        **options,
    )  # fmt: skip
    start = time.perf_counter()
    if passes == 1:
        model.partial_fit(X, y)  # one pass (fit's epochs is at least 1)
    else:
        model.fit(X, y)
    elapsed = time.perf_counter() - start
    if getattr(model, "n_iter_", passes) != passes:
        raise SystemExit(f"GDRegressor ran {model.n_iter_} passes, not {passes}: {options}")
    return model, elapsed


def bench_gd(
    name: str, data: Data, batch: int, lr: float, args: argparse.Namespace, options: dict[str, Any]
) -> Result:
    """Per pass: (T(N passes) − T(2 passes)) / (N − 2), both whole ``fit`` calls (``fit``
    runs 2 passes at least); the one-pass call and its test MSE from ``partial_fit``."""
    two, many = [], []
    for _ in range(args.repeats):  # alternate, so drifting load hits both alike
        _, t2 = fit_gd(data.X, data.y, batch, lr, 2, options)
        model_n, tn = fit_gd(data.X, data.y, batch, lr, args.passes, options)
        two.append(t2)
        many.append(tn)
    t2, tn = statistics.median(two), statistics.median(many)
    model_1, t1 = fit_gd(data.X, data.y, batch, lr, 1, options)
    mse_3 = None
    if args.passes > 3:
        model_3, _ = fit_gd(data.X, data.y, batch, lr, 3, options)
        mse_3 = mse(model_3.coef_, model_3.intercept_, data.X_test, data.y_test)
    return Result(
        name,
        (tn - t2) / (args.passes - 2),
        t1,
        mse(model_1.coef_, model_1.intercept_, data.X_test, data.y_test),
        mse(model_n.coef_, model_n.intercept_, data.X_test, data.y_test),
        noise_note(two, tn - t2),
        mse_3,
    )


def noise_note(one_pass_calls: list[float], extra: float) -> str:
    """Flag a per-pass time that the one-pass fit's own spread could account for."""
    spread = max(one_pass_calls) - min(one_pass_calls)
    if extra > spread:
        return ""
    return f"(noisy: 1-pass fit varied by {spread:.2f} s, more than the extra passes took)"


# --- scikit-learn -------------------------------------------------------------------------


def fit_sklearn(
    X: np.ndarray, y: np.ndarray, eta0: float, passes: int, average: bool = False
) -> tuple[Any, float]:
    from sklearn.linear_model import SGDRegressor

    model = SGDRegressor(
        average=average,
        learning_rate="constant",
        eta0=eta0,
        penalty=None,
        tol=None,
        max_iter=passes,
        shuffle=True,
        random_state=0,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached, as asked
        model.fit(X, y)
    return model, time.perf_counter() - start


def bench_sklearn(
    data: Data, eta0: float, args: argparse.Namespace, average: bool = False
) -> Result:
    one, many = [], []
    for _ in range(args.repeats):
        model_1, t1 = fit_sklearn(data.X, data.y, eta0, 1, average)
        model_n, tn = fit_sklearn(data.X, data.y, eta0, args.passes, average)
        one.append(t1)
        many.append(tn)
    t1, tn = statistics.median(one), statistics.median(many)
    mse_3 = None
    if args.passes > 3:
        model_3, _ = fit_sklearn(data.X, data.y, eta0, 3, average)
        mse_3 = mse(model_3.coef_, float(model_3.intercept_[0]), data.X_test, data.y_test)
    return Result(
        f"scikit-learn SGDRegressor (eta0={eta0:g}, 1 sample/update"
        + (", average=True)" if average else ")"),
        (tn - t1) / (args.passes - 1),
        t1,
        mse(model_1.coef_, float(model_1.intercept_[0]), data.X_test, data.y_test),
        mse(model_n.coef_, float(model_n.intercept_[0]), data.X_test, data.y_test),
        noise_note(one, tn - t1),
        mse_3,
    )


# --- the PyTorch user's loops ----------------------------------------------------------------


def linear(p: int) -> nn.Linear:
    model = nn.Linear(p, 1)
    with torch.no_grad():  # start at zero like the others
        model.weight.zero_()
        model.bias.zero_()
    return model


def hand_epoch(model: nn.Linear, opt: torch.optim.Optimizer, X: Any, y: Any, batch: int) -> None:
    """The loop a PyTorch user writes: a permutation, index a batch, MSE, backward, step."""
    order = torch.randperm(X.shape[0])
    for start in range(0, X.shape[0], batch):
        idx = order[start : start + batch]
        loss = F.mse_loss(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def loader_epoch(
    model: nn.Linear, opt: torch.optim.Optimizer, loader: torch.utils.data.DataLoader
) -> None:
    for xb, yb in loader:
        loss = F.mse_loss(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()


def torch_mse(model: nn.Linear, data: Data) -> float:
    with torch.no_grad():
        return mse(model.weight.numpy()[0], float(model.bias), data.X_test, data.y_test)


def bench_hand(data: Data, batch: int, lr: float, args: argparse.Namespace) -> Result:
    torch.manual_seed(0)
    X, y = torch.from_numpy(data.X), torch.from_numpy(data.y).reshape(-1, 1)
    model = linear(X.shape[1])
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    times, mses = [], []
    for _ in range(args.passes):
        start = time.perf_counter()
        hand_epoch(model, opt, X, y, batch)
        times.append(time.perf_counter() - start)
        mses.append(torch_mse(model, data))
    return Result(
        f"torch loop, randperm + indexing, B={batch}",
        statistics.median(times),
        None,
        mses[0],
        mses[-1],
        mse_3=mses[2] if args.passes > 3 else None,
    )


def bench_loader(data: Data, batch: int, lr: float) -> Result:
    torch.manual_seed(0)
    X, y = torch.from_numpy(data.X), torch.from_numpy(data.y).reshape(-1, 1)
    model = linear(X.shape[1])
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    dataset = torch.utils.data.TensorDataset(X, y)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True)
    start = time.perf_counter()
    loader_epoch(model, opt, loader)
    elapsed = time.perf_counter() - start
    m = torch_mse(model, data)
    return Result(
        f"torch loop, TensorDataset + DataLoader, B={batch}", elapsed, None, m, m, "1 epoch"
    )


# --- where a batch-256 step goes ----------------------------------------------------------


def per_step(fn: Callable[[], Any], steps: int) -> float:
    """Median over 3 runs of ``steps`` calls, in µs per call."""
    t, _ = timed(lambda: [fn() for _ in range(steps)], 3)
    return t / steps * 1e6


def profile_step(data: Data, batch: int, lr: float) -> list[tuple[str, float]]:
    """µs per step of each part of a trainer step at ``batch`` rows, on one thread as the
    trainer runs it (rows × columns ≤ 65,536), over one epoch's worth of batches."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _profile(data, batch, lr)
    finally:
        torch.set_num_threads(before)


def _profile(data: Data, batch: int, lr: float) -> list[tuple[str, float]]:
    X = torch.from_numpy(data.X)
    n = X.shape[0]
    steps = n // batch
    A = torch.cat([X.new_ones(n, 1), X], dim=1)  # the trainer's design [1, X]
    y = torch.from_numpy(data.y).reshape(-1, 1)
    theta = torch.zeros(A.shape[1], 1, requires_grad=True)
    th = theta.detach()
    order = torch.randperm(n)
    starts = iter(range(0, steps * batch, batch))

    def cycle() -> int:
        nonlocal starts
        start = next(starts, None)
        if start is None:
            starts = iter(range(0, steps * batch, batch))
            start = next(starts)
        return start

    def gather() -> Any:
        idx = order[(s := cycle()) : s + batch]
        return A[idx], y[idx]

    def index_select() -> Any:
        idx = order[(s := cycle()) : s + batch]
        return A.index_select(0, idx), y.index_select(0, idx)

    def contiguous() -> Any:
        s = cycle()
        return A[s : s + batch], y[s : s + batch]

    a, yb = A[order[:batch]], y[order[:batch]]
    r = torch.empty_like(yb)
    grad = torch.zeros_like(th)
    At = a.T
    opt = torch.optim.SGD([theta], lr=lr)
    theta.grad = grad
    from torchlinreg.training.optimizers import plain_step

    inner = type(opt).step.__wrapped__  # type: ignore[attr-defined]
    summed = torch.zeros(())
    parts: list[tuple[str, Callable[[], Any]]] = [
        ("gather A[idx], y[idx] (random rows, before e799487)", gather),
        ("index_select(A, 0, idx), y", index_select),
        ("contiguous slice of a pre-shuffled copy", contiguous),
        ("forward r = A θ − y (addmm)", lambda: torch.addmm(yb, a, th, beta=-1, out=r)),
        (
            "gradient 2/B·Aᵀr (addmm)",
            lambda: torch.addmm(grad, At, r, beta=0, alpha=2 / batch, out=grad),
        ),
        ("cost rᵀr (dot)", lambda: torch.dot(r.view(-1), r.view(-1))),
        ("binding a batch (buffers, views, closure)", lambda: _bind_like(theta, a, yb, batch)),
        ("optim.SGD step, torch's wrapper skipped", lambda: inner(opt)),
        ("plain SGD as plain_step does it now (p.add_(grad, -lr))", plain_step(opt)),
        ("optim.SGD step, full opt.step()", opt.step),
        ("in-place θ −= lr·g (add_)", lambda: th.add_(grad, alpha=-lr)),
        (
            "fused step θ += −2lr/B·Aᵀr (addmm into θ)",
            lambda: torch.addmm(th, At, r, alpha=-2 * lr / batch, out=th),
        ),
        ("epoch cost accumulation (summed + cost)", lambda: summed + summed),
    ]
    out = [("randperm(n) once an epoch, per step", _randperm_us(n) / steps)]
    out.append(
        (
            "pre-shuffled copy A[perm], y[perm] once an epoch, per step",
            _shuffle_copy_us(A, y, order) / steps,
        )
    )
    out.append(
        (
            "chunked index_select into reused buffers (trainer now)",
            _chunk_gather_us(A, y, order, batch) / steps,
        )
    )
    with torch.no_grad():
        out.extend((label, per_step(fn, steps)) for label, fn in parts)
    return out


def lean_pass(data: Data, batch: int, lr: float, passes: int) -> Result:
    """The suggested path, in plain torch: each epoch one shuffled copy of X and y (one
    index_select on the default threads), then contiguous slices on one thread, the
    residual into a buffer, the gradient step fused into θ (plain SGD only) and no
    [1, X] copy (the intercept kept apart). Same SGD as GDRegressor's: every row once
    an epoch, in a fresh order."""
    X, y = torch.from_numpy(data.X), torch.from_numpy(data.y).reshape(-1, 1)
    n = X.shape[0]
    W, b = torch.zeros(X.shape[1], 1), torch.zeros(1)
    alpha = -2 * lr
    generator = torch.Generator().manual_seed(0)
    times, mses = [], []
    for _ in range(passes):
        start = time.perf_counter()
        order = torch.randperm(n, generator=generator)
        Xs, ys = X.index_select(0, order), y.index_select(0, order)
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        summed = torch.zeros(())
        r = torch.empty(batch, 1)
        for s in range(0, n, batch):
            xb, yb = Xs[s : s + batch], ys[s : s + batch]
            rb = r[: len(xb)]
            torch.addmm(yb, xb, W, beta=-1, out=rb).add_(b)
            summed.add_(torch.dot(rb.view(-1), rb.view(-1)))
            W.addmm_(xb.T, rb, alpha=alpha / len(xb))
            b.add_(rb.sum(), alpha=alpha / len(xb))
        torch.set_num_threads(before)
        times.append(time.perf_counter() - start)
        mses.append(mse(W.numpy(), float(b), data.X_test, data.y_test))
    return Result(
        f"sketch: shuffled copy + slices + fused step, B={batch}",
        statistics.median(times),
        None,
        mses[0],
        mses[-1],
        mse_3=mses[2] if passes > 3 else None,
    )


def _randperm_us(n: int) -> float:
    t, _ = timed(lambda: torch.randperm(n), 3)
    return t * 1e6


def _shuffle_copy_us(A: torch.Tensor, y: torch.Tensor, order: torch.Tensor) -> float:
    t, _ = timed(lambda: (A.index_select(0, order), y.index_select(0, order)), 3)
    return t * 1e6


def _chunk_gather_us(A: torch.Tensor, y: torch.Tensor, order: torch.Tensor, batch: int) -> float:
    """One epoch of the trainer's gathers (training/batches.py): whole batches of rows,
    ~16 MB at a time, copied into buffers made once."""
    from torchlinreg.training.batches import chunk_rows

    rows = chunk_rows(A, y, None, batch)
    A_buf, y_buf = A.new_empty(rows, A.shape[1]), y.new_empty(rows, 1)

    def epoch() -> None:
        for s in range(0, len(order), rows):
            idx = order[s : s + rows]
            torch.index_select(A, 0, idx, out=A_buf[: len(idx)])
            torch.index_select(y, 0, idx, out=y_buf[: len(idx)])

    t, _ = timed(epoch, 3)
    return t * 1e6


def _bind_like(theta: torch.Tensor, A: torch.Tensor, y: torch.Tensor, batch: int) -> Any:
    # What SquaredError.bind does per batch: detach, transpose, two buffers, two views.
    th = theta.detach()
    At = A.T
    r = torch.empty_like(y)
    grad = torch.zeros_like(th)
    return lambda: (th, At, r.view(-1), grad, 2.0 / batch)


# --- driver --------------------------------------------------------------------------------


@dataclass
class Data:
    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def load_note() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} cores"


def commit_note() -> str:
    root = Path(__file__).resolve().parent.parent

    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=root, capture_output=True, text=True)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", "src")
    return f"commit {git('rev-parse', '--short', 'HEAD')}" + (", src/ modified" if dirty else "")


def safe_lr(eta0: float, batch: int) -> tuple[float, str]:
    """Equal per-sample step eta0·B/2, or half the full-batch stable step (≈ 1) above it."""
    lr = eta0 * batch / 2
    return (lr, "") if lr < 1.0 else (0.5, f"eta0·B/2 = {lr:g} ≥ stable 1: lr 0.5")


def table(results: list[Result], reference: Result) -> None:
    print(
        f"{'':62} {'per pass':>10} {'vs sklearn':>10} {'1-pass fit':>11} "
        f"{'MSE 1':>8} {'MSE 3':>8} {'MSE all':>8}"
    )
    for r in results:
        ratio = reference.per_pass / r.per_pass if r.per_pass > 0 else float("nan")
        call = "" if r.one_pass_call is None else f"{r.one_pass_call:9.3f} s"
        mid = "" if r.mse_3 is None else f"{r.mse_3:8.4f}"
        print(
            f"{r.name:62} {r.per_pass:8.3f} s {ratio:9.2f}× {call:>11} {r.mse_1:8.4f} "
            f"{mid:>8} {r.mse_all:8.4f} {r.note}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--test-rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument(
        "--passes", type=int, default=5, help="passes for the long fits (≥ 2; MSE 3 from 4)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eta0", type=float, default=1e-3)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--grid", action="store_true", help="test MSE for eta0 in 1e-4, 1e-3, 1e-2")
    parser.add_argument(
        "--standardized-too",
        action="store_true",
        help="also GDRegressor(standardize=True), where it exists",
    )
    parser.add_argument("--no-dataloader", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    if args.passes < 3:
        parser.error("--passes must be at least 3 (time per pass is a difference from 2)")
    if args.threads:
        torch.set_num_threads(args.threads)

    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads, {commit_note()}"
    )
    print(f"before: {load_note()}")
    X, y = make(args.rows, args.features, seed=1)
    X_test, y_test = make(args.test_rows, args.features, seed=2)
    data = Data(X, y, X_test, y_test)
    options = gd_options(standardize=False)
    print(
        f"{args.rows:,} × {args.features} float32, {args.passes} passes, "
        f"{args.repeats} repeats; GDRegressor options {options}"
    )

    fit_gd(X[:2000], y[:2000], 256, 0.1, 2, options)  # warm-up: imports, first step
    sklearn = bench_sklearn(data, args.eta0, args)
    results = [sklearn, bench_sklearn(data, args.eta0, args, average=True)]
    averaged = {**options, "average": True}
    for batch in (256, 4096):
        lr, note = safe_lr(args.eta0, batch)
        ours = bench_gd(f"GDRegressor sgd, B={batch}, lr={lr:g}", data, batch, lr, args, options)
        ours.note = " ".join(filter(None, [note, ours.note]))
        results.append(ours)
        results.append(bench_gd("  same, average=True", data, batch, lr, args, averaged))
        if args.standardized_too and "standardize" in options:
            std = gd_options(standardize=True)
            results.append(bench_gd("  same, standardize=True", data, batch, lr, args, std))
        results.append(bench_hand(data, batch, lr, args))
        results.append(lean_pass(data, batch, lr, args.passes))
    if not args.no_dataloader:
        lr, _ = safe_lr(args.eta0, 256)
        results.append(bench_loader(data, 256, lr))
    table(results, sklearn)

    if args.grid:
        print("\ntest MSE after 1 pass at other steps (eta0; ours at lr = eta0·B/2, capped):")
        for eta0 in (1e-4, 1e-3, 1e-2):
            row = [f"eta0={eta0:g}: sklearn"]
            for average in (False, True):
                sk, _ = fit_sklearn(X, y, eta0, 1, average)
                sk_mse = mse(sk.coef_, float(sk.intercept_[0]), X_test, y_test)
                row.append(f"{'averaged ' if average else ''}{sk_mse:.4f}")
            for batch in (256, 4096):
                lr, _ = safe_lr(eta0, batch)
                for label, opts in (("", options), (" averaged", averaged)):
                    try:
                        m, _ = fit_gd(X, y, batch, lr, 1, opts)
                        got = f"{mse(m.coef_, m.intercept_, X_test, y_test):.4f}"
                    except Exception as exc:  # a guard's refusal is a result here
                        got = type(exc).__name__
                    row.append(f"B={batch} lr={lr:g}{label} {got}")
            print("  " + ", ".join(row))

    if not args.no_profile:
        lr, _ = safe_lr(args.eta0, 256)
        print("\nwhere a batch-256 step goes (1 thread, µs per step, medians of 3 epochs' worth):")
        parts = profile_step(data, 256, lr)
        for label, us in parts:
            print(f"  {label:58} {us:8.2f}")
        ours = next(r for r in results if r.name.startswith("GDRegressor sgd, B=256"))
        steps = -(-args.rows // 256)
        whole = ours.per_pass / steps * 1e6
        print(f"  {'whole step in GDRegressor (per pass / steps)':58} {whole:8.2f}")
    print(f"after: {load_note()}")


if __name__ == "__main__":
    main()
