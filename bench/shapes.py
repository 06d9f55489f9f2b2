"""The exact fit at every shape, against scikit-learn and the BLAS floor, one process.

    python bench/shapes.py                 # the issue's shapes, where memory allows
    python bench/shapes.py --quick         # CI-size smoke run (seconds)
    python bench/shapes.py --shapes 50000x1000 --repeats 5
    python bench/shapes.py --small         # 1,000 × 10 fits and a GridSearchCV, 1 and 2 threads

For each shape (float64, with intercept, random scales and offsets as bench/exact.py)
the tools run alternated, round after round, and the medians are compared:

* torchlinreg ``LinearRegression().fit`` (the exact fit, with its accuracy checks);
* scikit-learn ``LinearRegression`` and ``Ridge(solver="cholesky", alpha=1e-12)``;
* the floor: numpy ``XᵀX`` (BLAS syrk) plus one Cholesky of the p × p result.

Then our fit once more, stage by stage (validation, Gram or QR, factorization,
condition bracket, residual block, solve, refinement), with CPU seconds beside wall
seconds, and the Gram's GFLOP/s against the measured 4096² matrix-multiply rate.
The load average is printed before and after: on a shared machine, compare only
ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from exact import make, matmul_rate  # noqa: E402

FULL = ["10000000x20", "1000000x100", "200000x300", "200000x1000", "50000x1000", "50000x5000"]
QUICK = ["200000x20", "20000x100", "10000x300"]
# Bytes per value of X the largest tool holds at once (X, scikit-learn's centred copy,
# its lstsq workspace), and the share of the memory a run may take.
_COPIES = 4
_SHARE = 0.8


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (else the physical memory)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def tools(X: np.ndarray, y: np.ndarray) -> dict[str, Callable[[], Any]]:
    from sklearn.linear_model import LinearRegression as SkLinear
    from sklearn.linear_model import Ridge

    from torchlinreg import LinearRegression

    def floor() -> None:
        G = X.T @ X
        np.linalg.cholesky(G)

    return {
        "torchlinreg": lambda: LinearRegression().fit(X, y),
        "sklearn LinearRegression": lambda: SkLinear().fit(X, y),
        "sklearn Ridge cholesky": lambda: Ridge(alpha=1e-12, solver="cholesky").fit(X, y),
        "floor XᵀX + Cholesky": floor,
    }


def alternated(
    runs: dict[str, Callable[[], Any]], repeats: int, cpu: dict[str, list[float]] | None = None
) -> dict[str, list[float]]:
    """Wall seconds per tool, the tools taking turns within each round (CPU seconds
    into ``cpu`` where given: on a shared machine waits inflate wall time only)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - start)
            if cpu is not None:
                cpu.setdefault(name, []).append(time.process_time() - start_cpu)
    return times


class Stages:
    """Wall and CPU seconds per named stage."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float]] = []

    def __call__(self, name: str, fn: Callable[[], Any]) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        self.rows.append((name, time.perf_counter() - wall, time.process_time() - cpu))
        return out


def stages(X: np.ndarray, y: np.ndarray) -> tuple[Stages, str]:
    """Our in-memory fit step by step, as ``LinearRegression.fit`` runs it."""
    from torchlinreg.data.chunks import validate_chunk
    from torchlinreg.models._diagnostics import RISK, bound_exceeds
    from torchlinreg.solvers import gram as g
    from torchlinreg.solvers.refine import refine_in_memory
    from torchlinreg.solvers.solve import design_conditioning, solve_ols
    from torchlinreg.solvers.state import BLOCK_ROWS, LeastSquaresState, RowCounts

    st = Stages()
    chunk = st("validation", lambda: validate_chunk(X, y, None))
    shift_x = chunk.X[:BLOCK_ROWS].mean(0)
    shift_y = chunk.Y[:BLOCK_ROWS].mean(0)
    if X.shape[1] + 2 <= g.NARROW:  # as gram_state: X as it is first (no copy)
        shift_x = torch.zeros_like(shift_x)
        G = st("Gram [1, X, y − y₀] (X as is)", lambda: g._plain_gram(chunk, True, shift_y))
    else:
        G = st(
            "Gram [1, X − x₀, y − y₀] (copies + panel products)",
            lambda: g._gram(chunk, True, shift_x, shift_y),
        )
    # As gram._factor: checks by one sum, G's upper triangle factored as it is.
    R, _ = st(
        "Cholesky (+ finiteness sum)",
        lambda: (bool(torch.isfinite(G.sum())), torch.linalg.cholesky_ex(G, upper=True))[1],
    )
    state = LeastSquaresState.from_parts(
        R, shift_x, shift_y, RowCounts.of(chunk), fit_intercept=True
    )
    accepted = not st(
        "condition bracket", lambda: design_conditioning(state).kappa_exceeds(g.GRAM_KAPPA)
    )
    path = "cholesky"
    if accepted:
        kept = st("residual block accurate? (O(p²))", lambda: g.residual_block_accurate(state))
        if not kept:
            st("residual block (one pass)", lambda: g._residual_block(state, chunk))
    else:
        path = "qr"
        state = st("QR fold", lambda: LeastSquaresState(X.shape[1]).update_chunk(chunk))
        st("condition bracket (QR state)", lambda: design_conditioning(state))
    solution = st("solve (cached by the residual rule)", lambda: solve_ols(state))
    if path == "qr" and st("refinement due?", lambda: bound_exceeds(state, solution, RISK)):
        st("refinement", lambda: refine_in_memory(chunk, state, solution.theta))
    return st, path


def run_shape(shape: str, repeats: int, rate: float, skip: list[str]) -> None:
    n, p = (int(v) for v in shape.split("x"))
    need = _COPIES * 8 * n * p
    if need > _SHARE * available_bytes():
        print(f"\n### {n:,} × {p:,}: skipped ({need / 2**30:.1f} GiB needed)")
        return
    X, y = make(n, p)
    runs = {name: fn for name, fn in tools(X, y).items() if name not in skip}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fn in runs.values():  # warm up every kernel once
            fn()
        cpu: dict[str, list[float]] = {}
        times = alternated(runs, repeats, cpu)
        st, path = stages(X, y)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    ours = med["torchlinreg"]
    print(f"\n### {n:,} × {p:,} (load average {os.getloadavg()[0]:.1f})\n")
    print("| tool | median s | min–max s | CPU s | torchlinreg is |")
    print("| --- | --- | --- | --- | --- |")
    for name, ts in times.items():
        ratio = "" if name == "torchlinreg" else f"{med[name] / ours:.2f}× its speed"
        c = statistics.median(cpu[name])
        print(f"| {name} | {med[name]:.3f} | {min(ts):.3f}–{max(ts):.3f} | {c:.2f} | {ratio} |")
    floor = med.get("floor XᵀX + Cholesky", float("nan"))
    print(f"\nours / floor = {ours / floor:.2f} (goal ≤ 2); path: {path}\n")
    print("| stage | wall s | CPU s |")
    print("| --- | --- | --- |")
    for name, wall, cpu in st.rows:
        print(f"| {name} | {wall:.3f} | {cpu:.3f} |")
    gram_wall = next(w for name, w, _ in st.rows if name.startswith("Gram"))
    flops = n * (p + 2) ** 2  # syrk: half of a general m × m product over n rows
    print(
        f"\nGram: {flops / gram_wall / 1e9:.1f} GFLOP/s (syrk flops) against a "
        f"measured {rate:.1f} GFLOP/s for a 4096² matmul"
    )


# Small fits: a 1,000 × 10 design, and a grid search of 13 alphas × 5 folds over it.
SMALL = (1000, 10)
GRID_ALPHAS = np.logspace(-3, 3, 13)


def alternated_cpu(
    runs: dict[str, Callable[[], Any]], repeats: int
) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) milliseconds per tool, the tools taking turns in each round:
    on a loaded machine a millisecond fit's wall time is mostly waiting for a core.
    Each round starts with the next tool: CPU time is the process's, and a BLAS or
    OpenMP pool still spinning after one tool's call is counted in the next one's
    (scikit-learn's 2-thread BLAS added ~1.3 ms to whichever fit came after it)."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fn = runs[name]
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {
        name: tuple(statistics.median(t[i] for t in ts) * 1e3 for i in (0, 1))  # type: ignore[misc]
        for name, ts in times.items()
    }


def small_fits(repeats: int, grid_repeats: int) -> None:
    """Our 1,000 × 10 fit against scikit-learn's, on 1 thread and on 2 (torch's and
    BLAS's), medians of ``repeats`` alternating runs; then ``GridSearchCV`` over our
    ``Ridge`` against scikit-learn's ``Ridge`` (same folds, same grid)."""
    from sklearn.linear_model import LinearRegression as SkLinear
    from sklearn.linear_model import Ridge as SkRidge
    from sklearn.model_selection import GridSearchCV
    from threadpoolctl import threadpool_limits

    from torchlinreg import LinearRegression, Ridge

    X, y = make(*SMALL)
    before = torch.get_num_threads()
    print(f"\n### {SMALL[0]:,} × {SMALL[1]}, medians of {repeats}, wall / CPU ms "
          f"(load average {os.getloadavg()[0]:.1f})\n")  # fmt: skip
    print("| threads | ours | ours refine=False | sklearn LinearRegression | ours / sklearn |")
    print("| --- | --- | --- | --- | --- |")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with threadpool_limits(threads, user_api="blas"):  # torch: set_num_threads
            runs = {
                "ours": lambda: LinearRegression().fit(X, y),
                "ours refine=False": lambda: LinearRegression(refine=False).fit(X, y),
                "sklearn": lambda: SkLinear().fit(X, y),
            }
            for fn in runs.values():
                fn()
            med = alternated_cpu(runs, repeats)
        cells = " | ".join(f"{med[k][0]:.3f} / {med[k][1]:.3f}" for k in runs)
        ratio = [med["ours"][i] / med["sklearn"][i] for i in (0, 1)]
        print(f"| {threads} | {cells} | {ratio[0]:.2f} / {ratio[1]:.2f} |")
    torch.set_num_threads(before)
    searches = {
        "ours Ridge": lambda: GridSearchCV(Ridge(), {"alpha": GRID_ALPHAS}, cv=5).fit(X, y),
        "sklearn Ridge": lambda: GridSearchCV(SkRidge(), {"alpha": GRID_ALPHAS}, cv=5).fit(X, y),
    }
    found = {name: fn() for name, fn in searches.items()}
    print(f"\nGridSearchCV, 13 alphas × 5 folds, medians of {grid_repeats}, wall / CPU ms:\n")
    print("| threads | ours Ridge | sklearn Ridge | ours / sklearn (goal ≤ 1) |")
    print("| --- | --- | --- | --- |")
    for threads in (1, before):
        torch.set_num_threads(threads)
        with threadpool_limits(threads, user_api="blas"):
            med = alternated_cpu(searches, grid_repeats)
        cells = " | ".join(f"{med[k][0]:.1f} / {med[k][1]:.1f}" for k in searches)
        ratio = [med["ours Ridge"][i] / med["sklearn Ridge"][i] for i in (0, 1)]
        print(f"| {threads} | {cells} | {ratio[0]:.2f} / {ratio[1]:.2f} |")
    torch.set_num_threads(before)
    for name, search in found.items():
        print(f"\n{name}: best alpha {search.best_params_['alpha']:.4g}, "
              f"score {search.best_score_:.12f}", end="")  # fmt: skip
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small", action="store_true", help="only the 1,000 × 10 fit and the grid search"
    )
    parser.add_argument("--quick", action="store_true", help="small shapes (smoke run)")
    parser.add_argument("--shapes", nargs="+", help="shapes as NxP, e.g. 50000x1000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip", nargs="+", default=[], help="tools to leave out (by name)")
    args = parser.parse_args()
    shapes = args.shapes or (QUICK if args.quick else FULL)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    if args.small:
        small_fits(max(args.repeats, 100), 15)
        return
    rate = matmul_rate()
    for shape in shapes:
        run_shape(shape, args.repeats, rate, args.skip)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
