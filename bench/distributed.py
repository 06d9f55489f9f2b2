"""Distributed exact fits: 1 vs 2 gloo processes here, and the merge tree beyond this machine.

    python bench/distributed.py array [--n 1000000] [--p 100] [--repeats 3]
    python bench/distributed.py merge-tree [--ranks 1024] [--rows 200] [--p 100] [--threads 1]
    python bench/distributed.py cost-model [--p 100 250 500 1000 2000 4000] [--threads 1]
    python bench/distributed.py parquet [--rows 20000000] [--files 10] [--repeats 3]

array: one process's `LinearRegression().fit` (the anchor, 1 and 2 threads, its own
solver and the QR fold) against `fit(..., distributed=True)` on 1 and 2 gloo processes
spawned here, each rank generating its own rows (the same rows as the anchor's). Time is
taken inside the ranks from a barrier to the end of the fit, the slowest rank's; each
rank reports where its time went (local fold, merge tree + broadcast, solve, the rest)
and the payload it sent and received.

merge-tree: many ranks simulated in one process: each "rank" folds its own rows, and the
states are merged by `merge_tree` (the order `merge_across` uses). Time of the tree, the
result against one state of all the rows and against numpy's lstsq, bytes per rank.

cost-model: the constants of the cost model (fold rate, merge time of two states, solve
time) measured at several widths, extrapolated by m³ to p = 10,000, and the model's
answer: below how many rows per rank merging and communication dominate the fold.

parquet: a 20M × 20 Parquet directory (written once under bench/_data/) fitted by the
CLI in one process and under `torchrun` with 1 and 2 processes; skipped, saying so,
while the CLI cannot yet run distributed.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import math
import multiprocessing as mp
import os
import pickle
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import timed  # noqa: E402

DATA = Path(__file__).resolve().parent / "_data"
BLOCK = 1 << 16  # rows generated per seeded block


# -- data: any rank can generate any range of rows, identical to the whole -------------


def design(p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(column scales, offsets, coefficients): what every block of rows shares."""
    rng = np.random.default_rng([seed, 0])
    return rng.uniform(0.5, 5.0, p), rng.uniform(-3.0, 3.0, p), rng.normal(size=p)


def rows(start: int, stop: int, p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows [start, stop) of the n × p problem (float64, random scales and offsets, as
    bench/exact.py's `make`), the same whichever process generates them: each block of
    65,536 rows has its own seed."""
    scale, offset, beta = design(p, seed)
    X = np.empty((stop - start, p))
    y = np.empty(stop - start)
    for block in range(start // BLOCK, (stop - 1) // BLOCK + 1):
        rng = np.random.default_rng([seed, 1 + block])
        lo, hi = block * BLOCK, (block + 1) * BLOCK
        Xb = rng.standard_normal((BLOCK, p)) * scale + offset
        yb = Xb @ beta + 1.5 + rng.normal(size=BLOCK)
        a, b = max(lo, start), min(hi, stop)
        X[a - start : b - start] = Xb[a - lo : b - lo]
        y[a - start : b - start] = yb[a - lo : b - lo]
    return X, y


def share(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous rows of ``n`` (the first ranks get one more)."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


# -- inside a rank: where the time goes ------------------------------------------------


class Profile:
    """Seconds per section of the distributed fit, and the communication inside each
    (time and logical payload: what a rank hands to or takes from its peers, not what
    gloo's algorithms move on the wire)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu_seconds: dict[str, float] = defaultdict(float)
        self.comm_seconds: dict[str, float] = defaultdict(float)
        self.sent: dict[str, int] = defaultdict(int)
        self.received: dict[str, int] = defaultdict(int)
        self.section = "other"

    def reset(self) -> None:
        for counts in (self.seconds, self.cpu_seconds, self.comm_seconds):
            counts.clear()
        self.sent.clear()
        self.received.clear()
        self.section = "other"

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": dict(self.seconds),
            "cpu_seconds": dict(self.cpu_seconds),
            "comm_seconds": dict(self.comm_seconds),
            "sent": dict(self.sent),
            "received": dict(self.received),
        }


PROFILE = Profile()


def _section(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def timed_section(*args: Any, **kwargs: Any) -> Any:
        outer, PROFILE.section = PROFILE.section, name
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            PROFILE.seconds[name] += time.perf_counter() - start
            PROFILE.cpu_seconds[name] += time.process_time() - cpu
            PROFILE.section = outer

    return timed_section


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def install_profile() -> None:
    """Wrap the distributed fit's steps and the group's messages with timers (in this
    rank's process only)."""
    from torchlinreg.distributed.group import Group
    from torchlinreg.models import _distributed
    from torchlinreg.solvers import refine

    for name, label in [("_local_fold", "fold"), ("_fold", "fold"), ("_merged", "merge"),
                        ("_solve", "solve"), ("_finish", "finish"),
                        ("_from_cross_products", "refine")]:  # fmt: skip
        setattr(_distributed, name, _section(label, getattr(_distributed, name)))
    for name in ("refine_in_memory", "refine_from_chunks"):
        setattr(refine, name, _section("refine", getattr(refine, name)))

    def message(method: Callable[..., Any], payload: Callable[..., tuple[int, int]]) -> Any:
        def counted(self: Group, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            out = method(self, *args, **kwargs)
            where = PROFILE.section
            PROFILE.comm_seconds[where] += time.perf_counter() - start
            sent, received = payload(self, *args)
            PROFILE.sent[where] += sent
            PROFILE.received[where] += received
            return out

        return counted

    others = lambda g: g.size - 1  # noqa: E731
    pickled = lambda obj: len(pickle.dumps(obj))  # noqa: E731
    payloads: dict[str, Callable[..., tuple[int, int]]] = {
        "send": lambda g, t, to: (_nbytes(t), 0),
        "receive": lambda g, like, source: (0, _nbytes(like)),
        "gather": lambda g, t: (others(g) * _nbytes(t), others(g) * _nbytes(t)),
        "broadcast": lambda g, t, src=0: (
            (others(g) * _nbytes(t), 0) if g.rank == src else (0, _nbytes(t))
        ),
        "gather_objects": lambda g, obj: (others(g) * pickled(obj), others(g) * pickled(obj)),
    }
    for name, payload in payloads.items():
        setattr(Group, name, message(getattr(Group, name), payload))


def _rank_main(rank: int, world: int, port: int, threads: int, job: tuple, results: Any) -> None:
    import torch.distributed as dist

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(threads)
    dist.init_process_group(
        "gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=600)
    )
    try:
        name, args = job
        results.put((rank, globals()[name](rank, world, *args)))
    finally:
        dist.destroy_process_group()


def spawn(world: int, threads: int, job: str, *args: Any) -> list[Any]:
    """``job(rank, world, *args)`` on ``world`` spawned gloo ranks of ``threads`` threads
    each; the results in rank order."""
    context = mp.get_context("spawn")
    results = context.Queue()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [
        context.Process(target=_rank_main, args=(r, world, port, threads, (job, args), results))
        for r in range(world)
    ]
    for proc in procs:
        proc.start()
    out: list[Any] = [None] * world
    for _ in range(world):
        rank, value = results.get(timeout=1800)
        out[rank] = value
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"a rank exited with {proc.exitcode}")
    return out


# -- array -----------------------------------------------------------------------------


def array_rank(
    rank: int, world: int, n: int, p: int, repeats: int, solvers: list[str]
) -> dict[str, dict[str, Any]]:
    """This rank's share of the rows fitted ``repeats`` times with distributed=True, per
    solver."""
    import torch.distributed as dist

    from torchlinreg import LinearRegression

    install_profile()
    X, y = rows(*share(n, rank, world), p)
    out = {}
    for solver in solvers:
        runs = []
        model = None
        for _ in range(repeats + 1):  # the first is a warm-up
            PROFILE.reset()
            dist.barrier()
            start = time.perf_counter()
            model = LinearRegression(solver=solver).fit(X, y, distributed=True)
            total = time.perf_counter() - start
            runs.append({"total": total, **PROFILE.as_dict()})
        assert model is not None
        theta = np.r_[model.intercept_, model.coef_]
        out[solver] = {"runs": runs[1:], "theta": theta, "solver": model.solver_used_}
    return out


def anchor_fits(n: int, p: int, repeats: int) -> tuple[dict[str, float], np.ndarray]:
    """One process's fit of all the rows, on 1 and 2 threads, with its own solver and
    the QR fold: (median seconds by label, the default fit's [intercept, coef])."""
    from torchlinreg import LinearRegression

    X, y = rows(0, n, p)
    anchors: dict[str, float] = {}
    thetas: dict[str, np.ndarray] = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for solver in ("auto", "qr"):
            fit = lambda s=solver: LinearRegression(solver=s).fit(X, y)  # noqa: E731
            fit()
            cpu = time.process_time()
            t, model = timed(fit, repeats)
            cpu = (time.process_time() - cpu) / repeats
            label = f"one process, {threads} thread{'s' * (threads > 1)}, solver={solver!r}"
            anchors[f"{label} (used {model.solver_used_}; CPU {cpu:.2f} s)"] = t
            thetas[solver] = np.r_[model.intercept_, model.coef_]
    return anchors, thetas["auto"]


def bench_array(n: int, p: int, repeats: int) -> None:
    print(
        f"array: {n:,} x {p} float64, intercept; torch {torch.__version__}, "
        f"{os.cpu_count()} cores; medians of {repeats}"
    )
    anchors, reference = anchor_fits(n, p, repeats)
    for label, t in anchors.items():
        print(f"  {label:72s} {t:7.3f} s")

    base = min(v for k, v in anchors.items() if "2 threads" in k and "auto" in k)
    for world, threads in ((1, 1), (1, 2), (2, 1)):
        by_rank = spawn(world, threads, "array_rank", n, p, repeats, ["auto", "qr"])
        for solver in ("auto", "qr"):
            out = [r[solver] for r in by_rank]
            report_ranks(
                f"distributed=True, {world} rank(s) x {threads} thread(s), solver={solver!r}",
                out,
                base,
            )
            worst = max(
                float(np.max(np.abs(r["theta"] - reference)) / np.max(np.abs(reference)))
                for r in out
            )
            same = all(np.array_equal(r["theta"], out[0]["theta"]) for r in out)
            print(
                f"    solver_used_ {out[0]['solver']!r}; max |theta - one process| / max "
                f"|theta| = {worst:.1e}; identical on every rank: {same}"
            )


def report_ranks(title: str, out: list[dict[str, Any]], base: float) -> None:
    """The slowest rank's time per repeat (median), and each rank's breakdown (median)."""
    repeats = len(out[0]["runs"])
    totals = [max(r["runs"][i]["total"] for r in out) for i in range(repeats)]
    total = statistics.median(totals)
    print(f"  {title:72s} {total:7.3f} s   {base / total:.2f}x the one-process fit (2 threads)")
    for rank, r in enumerate(out):
        med = lambda f, r=r: statistics.median(f(run) for run in r["runs"])  # noqa: E731
        parts = ["fold", "merge", "solve", "refine", "finish"]
        shown = []
        for part in parts:
            s = med(lambda run, part=part: run["seconds"].get(part, 0.0))
            c = med(lambda run, part=part: run["comm_seconds"].get(part, 0.0))
            if part == "fold":
                cpu = med(lambda run: run["cpu_seconds"].get("fold", 0.0))
                shown.append(f"fold {s * 1e3:.1f} ms (CPU {cpu * 1e3:.1f} ms)")
            elif s or c:
                shown.append(f"{part} {s * 1e3:.1f} ms" + (f" (comm {c * 1e3:.1f})" if c else ""))
        other = med(
            lambda run: run["comm_seconds"].get("other", 0.0) + run["comm_seconds"].get("fold", 0.0)
        )
        rest = med(lambda run: run["total"] - sum(run["seconds"].values()))
        sent = med(lambda run: sum(run["sent"].values()))
        received = med(lambda run: sum(run["received"].values()))
        merge_sent = med(lambda run: run["sent"].get("merge", 0))
        merge_received = med(lambda run: run["received"].get("merge", 0))
        print(
            f"    rank {rank}: {', '.join(shown)}; agreeing (gather_objects, waits for the "
            f"slowest fold) {other * 1e3:.1f} ms; outside the sections {rest * 1e3:.1f} ms"
        )
        print(
            f"            payload sent {sent:,.0f} B, received {received:,.0f} B "
            f"(merge: sent {merge_sent:,.0f} B, received {merge_received:,.0f} B)"
        )


# -- merge tree ------------------------------------------------------------------------


def packed_bytes(state: Any) -> int:
    from torchlinreg.distributed.states import pack

    numbers, counts = pack(state)
    return _nbytes(numbers) + _nbytes(counts)


def bench_merge_tree(ranks: int, rows_per_rank: int, p: int, repeats: int) -> None:
    from torchlinreg.distributed.states import merge_tree
    from torchlinreg.solvers.solve import solve_ols
    from torchlinreg.solvers.state import LeastSquaresState

    n = ranks * rows_per_rank
    X, y = rows(0, n, p, seed=1)
    m = p + 2
    print(
        f"merge-tree: {ranks:,} simulated ranks x {rows_per_rank} rows, p = {p} (m = {m}), "
        f"{torch.get_num_threads()} threads; medians of {repeats}"
    )
    start = time.perf_counter()
    states = []
    for r in range(ranks):
        lo = r * rows_per_rank
        # copy(): the state without its fold buffer (a rank would keep only R)
        states.append(
            LeastSquaresState(p).update(X[lo : lo + rows_per_rank], y[lo : lo + rows_per_rank])
        )
        states[-1] = states[-1].copy()
    fold_all = time.perf_counter() - start
    t_tree, tree = timed(lambda: merge_tree(states), repeats)
    t_one, one = timed(lambda: _flushed(LeastSquaresState(p).update(X, y)), repeats)
    levels = math.ceil(math.log2(ranks))
    # The merge of two states, alone: the unit of the tree's critical path.
    a, b = states[0].copy(), states[1]
    t_pair, _ = timed(lambda: a.copy().merge(b).R, max(repeats, 5))

    A = np.column_stack([np.ones(n), X])
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    del A

    def rel(state: Any) -> float:
        s = solve_ols(state)
        assert s.intercept is not None
        theta = torch.cat([s.intercept, s.coef[:, 0]]).numpy()
        return float(np.max(np.abs(theta - ref)) / np.max(np.abs(ref)))

    # R is unique up to the signs of its rows, for one shift: compare both at the
    # shift of the one state (the tree keeps rank 0's, from its first rows).
    R_tree = tree._R_with_shift(one.shift_x, one.shift_y)
    norms_tree = torch.linalg.vector_norm(R_tree, dim=0)
    norms_one = torch.linalg.vector_norm(one.R, dim=0)
    norm_diff = float(torch.max(torch.abs(norms_tree - norms_one) / norms_one))
    r_diff = float(torch.max(torch.abs(R_tree.abs() - one.R.abs())) / torch.max(one.R.abs()))
    size = packed_bytes(tree)
    formula = 8 * (m * m + p + 1 + 2) + 24
    print(f"  folding {ranks:,} states of {rows_per_rank} rows      {fold_all:8.3f} s (once)")
    print(
        f"  merge_tree of {ranks:,} states ({ranks - 1:,} merges) {t_tree:8.3f} s "
        f"= {t_tree / (ranks - 1) * 1e3:.2f} ms per merge"
    )
    print(f"  one merge of two states (QR of {2 * m} x {m})   {t_pair * 1e3:8.2f} ms")
    print(
        f"  critical path on {ranks:,} real ranks: {levels} levels x one merge = "
        f"{levels * t_pair * 1e3:.1f} ms (+ messages)"
    )
    print(f"  one state folding all {n:,} rows       {t_one:8.3f} s")
    print(
        f"  tree vs one state (same shift): max rel. diff of R's column norms "
        f"{norm_diff:.1e}, of |R| (entries, relative to max |R|) {r_diff:.1e}"
    )
    print(
        f"  coefficients vs numpy lstsq (max abs diff / max |coef|): tree {rel(tree):.1e}, "
        f"one state {rel(one):.1e}"
    )
    print(
        f"  bytes per rank (pack): {size:,} = 8·(m² + p + k + 2) + 24 = {formula:,}; sent once "
        f"up the tree, received once by the broadcast"
    )


def _flushed(state: Any) -> Any:
    state.R  # noqa: B018 - folds the rows still buffered
    return state


# -- cost model ------------------------------------------------------------------------


def fold_seconds_per_row(p: int, n: int, repeats: int) -> float:
    """Seconds per row of folding an in-memory n × p block (the fit's QR fold)."""
    from torchlinreg.solvers.state import LeastSquaresState

    X, y = rows(0, n, p, seed=2)
    t, _ = timed(lambda: _flushed(LeastSquaresState(p).update(X, y)), repeats)
    return t / n


def gram_fit_seconds_per_row(p: int, n: int, repeats: int) -> tuple[float, str]:
    """Seconds per row of the one-process fit with its default solver (the Gram matrix
    and Cholesky where that is accurate, as each rank's fold is), and the solver used."""
    from torchlinreg import LinearRegression

    X, y = rows(0, n, p, seed=2)
    t, model = timed(lambda: LinearRegression().fit(X, y), repeats)
    return t / n, model.solver_used_


def merge_seconds(p: int, repeats: int) -> float:
    """One merge of two full states of width p (a QR of (2m) × m)."""
    from torchlinreg.solvers.state import LeastSquaresState

    m = p + 2
    rng = np.random.default_rng(3)
    states = []
    for _ in range(2):
        R = torch.triu(torch.from_numpy(rng.standard_normal((m, m))))
        states.append(
            LeastSquaresState.from_parts(
                R, torch.zeros(p, dtype=torch.float64), torch.zeros(1, dtype=torch.float64),
                _counts(m), fit_intercept=True,
            )
        )  # fmt: skip
    a, b = states
    t, _ = timed(lambda: a.copy().merge(b).R, repeats)
    return t


def _counts(n: int) -> Any:
    from torchlinreg.solvers.state import RowCounts

    return RowCounts(n, n, float(n))


def solve_seconds(p: int, repeats: int) -> float:
    """The solve from a merged state (every rank does it): SVD values of p × p, a
    triangular solve."""
    from torchlinreg.solvers.solve import solve_ols
    from torchlinreg.solvers.state import LeastSquaresState

    m = p + 2
    rng = np.random.default_rng(4)
    R = torch.triu(torch.from_numpy(rng.standard_normal((m, m))))
    R.diagonal().add_(float(m))  # well conditioned, full rank: the usual path
    state = LeastSquaresState.from_parts(
        R, torch.zeros(p, dtype=torch.float64), torch.zeros(1, dtype=torch.float64),
        _counts(10 * m), fit_intercept=True,
    )  # fmt: skip
    t, _ = timed(lambda: solve_ols(state), repeats)
    return t


def fold_flops_per_row(m: int) -> float:
    """Householder flops per folded row: each block of b rows is factored stacked under
    R, a QR of (b + m) × m, 2(b + m)m² − (2/3)m³ flops."""
    from torchlinreg.solvers.state import block_rows

    b = block_rows(m)
    return (2 * (b + m) * m * m - 2 / 3 * m**3) / b


def merge_flops(m: int) -> float:
    """A merge: Householder QR of the dense (2m) × m stack [R₁; R₂]."""
    return 2 * (2 * m) * m * m - 2 / 3 * m**3


def bench_cost_model(
    widths: list[int], repeats: int, bandwidth_gbit: float, latency_us: float
) -> None:
    threads = torch.get_num_threads()
    print(f"cost-model: {threads} threads; medians of {repeats}")
    fold_rows = {100: 1_000_000, 1000: 40_000}
    fold_rate: dict[int, float] = {}
    gram_per_m2: dict[int, float] = {}  # only where the one-process fit used the Gram path
    for p, n in fold_rows.items():
        s = fold_seconds_per_row(p, n, repeats)
        m = p + 2
        fold_rate[p] = fold_flops_per_row(m) / s
        print(
            f"  QR fold, p = {p:5d}: {s * 1e6:8.2f} µs per row = {s / m**2 * 1e9:.3f} ns per "
            f"row·m² ({fold_rate[p] / 1e9:.1f} GFLOP/s)"
        )
        g, used = gram_fit_seconds_per_row(p, n, repeats)
        if used == "cholesky":
            gram_per_m2[p] = g / m**2
        print(
            f"  one-process fit (solver used: {used}), p = {p:5d}: {g * 1e6:8.2f} µs per row = "
            f"{g / m**2 * 1e9:.3f} ns per row·m²"
        )
    merges, solves = {}, {}
    for p in widths:
        m = p + 2
        r = repeats if p <= 1000 else 1
        merges[p] = merge_seconds(p, r)
        solves[p] = solve_seconds(p, r)
        print(
            f"  merge of two states, p = {p:5d} (QR of {2 * m:5d} x {m:5d}): "
            f"{merges[p] * 1e3:9.1f} ms ({merge_flops(m) / merges[p] / 1e9:.1f} GFLOP/s); "
            f"solve {solves[p] * 1e3:8.1f} ms"
        )
    # Rates at the widest measured width carry over to wider ones (m³ extrapolation).
    widest = max(widths)
    merge_rate = merge_flops(widest + 2) / merges[widest]
    solve_per_m3 = solves[widest] / (widest + 2) ** 3
    bandwidth = bandwidth_gbit * 1e9 / 8
    latency = latency_us * 1e-6
    print(
        f"  model: network {bandwidth_gbit:g} Gb/s, latency {latency_us:g} µs; merges at "
        f"{merge_rate / 1e9:.1f} GFLOP/s (measured at p = {widest}), folds at the rate "
        f"measured at p = 1000 for p ≥ 1000"
    )
    for p in (100, 10_000):
        m = p + 2
        measured = 100 if p <= 100 else 1000
        message = 8 * (m * m + p + 3) + 24
        per_row = {
            "QR": fold_flops_per_row(m) / fold_rate[measured],
        }
        if gram_per_m2:  # scaled by m² from the widest width fitted by the Gram path
            per_row["Gram"] = gram_per_m2[max(gram_per_m2)] * m**2
        merge = merges[p] if p in merges else merge_flops(m) / merge_rate
        solve = solves[p] if p in solves else solve_per_m3 * m**3
        hop = latency + message / bandwidth
        folds = ", ".join(f"{v * 1e6:.2f} µs/row by {k}" for k, v in per_row.items())
        print(
            f"  p = {p:,}: message {message / 1e6:.3f} MB ({hop * 1e3:.3f} ms a hop); merge "
            f"{merge:.4f} s; solve {solve:.3f} s; fold {folds}"
        )
        for ranks in (16, 1024):
            levels = math.ceil(math.log2(ranks))
            tree = levels * (merge + hop)
            broadcast = levels * hop  # a binomial tree; pipelined, ≈ hop + levels·latency
            n_star = {k: (tree + broadcast) / v for k, v in per_row.items()}
            below = ", ".join(f"{v:,.0f} ({k} fold)" for k, v in n_star.items())
            print(
                f"    P = {ranks:5,}: tree {levels} levels {tree:.4f} s (messages "
                f"{levels * hop:.4f} s) + broadcast {broadcast:.4f} s → merging and messages "
                f"take longer than the fold below n_local ≈ {below} rows per rank"
            )


# -- parquet ---------------------------------------------------------------------------


def parquet_directory(total: int, files: int) -> Path:
    """bench/_data/bench_dir_<rows>/ of ``files`` Parquet files, written once from
    bench/files.py's single file (written first if absent): the same rows."""
    import pyarrow.parquet as pq

    from files import write_data

    target = DATA / f"bench_dir_{total}"
    if target.exists():
        return target
    single = DATA / f"bench_{total}.parquet"
    write_data(single, total, "parquet")
    tmp = Path(tempfile.mkdtemp(dir=DATA, prefix=".tmp_dir_"))
    source = pq.ParquetFile(single)
    per_file = -(-total // files)
    writer, written, index = None, 0, 0
    for batch in source.iter_batches(batch_size=per_file // 2 or 1):
        if writer is None:
            writer = pq.ParquetWriter(tmp / f"part-{index:03d}.parquet", batch.schema)
        writer.write_batch(batch)
        written += batch.num_rows
        if written >= per_file * (index + 1):
            writer.close()
            writer, index = None, index + 1
    if writer is not None:
        writer.close()
    tmp.rename(target)
    return target


def distributed_cli_available() -> bool:
    """Whether the CLI joins the ranks under torchrun (else each would fit everything)."""
    return importlib.util.find_spec("torchlinreg.distributed.launch") is not None


def cli_rank(argv: list[str]) -> None:
    """Run by torchrun: the CLI on this rank, profiled; the profile written next to
    $TORCHLINREG_BENCH_PROFILE."""
    from torchlinreg.cli import main

    install_profile()
    start, cpu = time.perf_counter(), time.process_time()
    code = main(argv)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu
    out = Path(os.environ["TORCHLINREG_BENCH_PROFILE"]) / f"rank{os.environ.get('RANK', '0')}"
    out.write_text(json.dumps({"total": total, "cpu": cpu, "code": code, **PROFILE.as_dict()}))
    sys.exit(code)


def bench_parquet(total: int, files: int, repeats: int) -> None:
    if not distributed_cli_available():
        print(
            "parquet: skipped: this torchlinreg has no distributed CLI yet "
            "(torchlinreg.distributed.launch is missing, so `torchrun -m torchlinreg fit` "
            "would fit every file on every rank)"
        )
        return
    import pyarrow.parquet as pq

    from torchlinreg.persistence import load_model

    directory = parquet_directory(total, files)
    parts = sorted(directory.glob("*.parquet"))
    work = Path(tempfile.mkdtemp(prefix="tlr_bench_"))
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    fit = ["fit", str(directory), "--target", "y", "--quiet"]
    print(f"parquet: {total:,} x 20 float64 in {len(parts)} files; medians of {repeats}")
    try:
        runs: dict[str, list[float]] = defaultdict(list)
        thetas: dict[str, np.ndarray] = {}
        profiles: dict[str, list[list[dict[str, Any]]]] = defaultdict(list)
        # The CLI's own main, profiled (what `python -m torchlinreg` runs); under torchrun
        # with one process WORLD_SIZE is 1 and the CLI takes its one-process path.
        one = "one process (python, cli.main)"
        commands = {one: [sys.executable, __file__, "_cli-rank"]}
        for world in (1, 2):
            commands[f"torchrun, {world} process{'es' * (world > 1)}"] = [
                torchrun, "--standalone", f"--nproc-per-node={world}", __file__, "_cli-rank",
            ]  # fmt: skip
        for _ in range(repeats):  # alternate, so load changes hit every command alike
            for label, command in commands.items():
                model = work / "model.safetensors"
                prof = work / "profile"
                shutil.rmtree(prof, ignore_errors=True)
                prof.mkdir()
                env = {**os.environ, "TORCHLINREG_BENCH_PROFILE": str(prof)}
                start = time.perf_counter()
                subprocess.run([*command, *fit, "-o", str(model)], check=True, env=env,
                               capture_output=True)  # fmt: skip
                runs[label].append(time.perf_counter() - start)
                est = load_model(str(model)).estimator
                thetas[label] = np.r_[est.intercept_, est.coef_]
                found = [json.loads(f.read_text()) for f in sorted(prof.glob("rank*"))]
                if found:
                    profiles[label].append(found)
        base = statistics.median(runs[one])
        reference = thetas[one]
        for label, times in runs.items():
            t = statistics.median(times)
            diff = float(np.max(np.abs(thetas[label] - reference)) / np.max(np.abs(reference)))
            print(
                f"  {label:32s} {t:6.2f} s with start-up, {base / t:.2f}x one process's speed; "
                f"coefficients vs one process {diff:.1e}"
            )
            for rank, _ in enumerate(profiles[label][0] if profiles[label] else []):
                med = lambda f, rank=rank, label=label: statistics.median(  # noqa: E731
                    f(run[rank]) for run in profiles[label]
                )
                inside = med(lambda r: r["total"])
                process_cpu = med(lambda r: r["cpu"])
                if not profiles[label][0][rank]["seconds"]:
                    print(
                        f"    rank {rank}: in the CLI {inside:.2f} s, CPU {process_cpu:.2f} s "
                        "(the one-process path)"
                    )
                    continue
                fold = med(lambda r: r["seconds"].get("fold", 0.0))
                cpu = med(lambda r: r["cpu_seconds"].get("fold", 0.0))
                merge = med(lambda r: r["seconds"].get("merge", 0.0))
                comm = med(lambda r: sum(r["comm_seconds"].values()))
                sent = med(lambda r: sum(r["sent"].values()))
                print(
                    f"    rank {rank}: in the CLI {inside:.2f} s, CPU {process_cpu:.2f} s; "
                    f"read + fold {fold:.2f} s "
                    f"(CPU {cpu:.2f} s); merge {merge * 1e3:.1f} ms; communication "
                    f"{comm * 1e3:.1f} ms (incl. waiting for the other rank); payload sent "
                    f"{sent:,.0f} B"
                )
        # Reading alone: each rank's share of the files (equal files: contiguous blocks,
        # as the launch splits them), with the fit's bounded-memory options.
        for world in (1, 2):
            for rank in range(world):
                mine = parts[len(parts) * rank // world : len(parts) * (rank + 1) // world]

                def read(mine: list[Path] = mine) -> None:
                    for path in mine:
                        f = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
                        for _ in f.iter_batches(batch_size=1 << 17):
                            pass

                t, _ = timed(read, repeats)
                print(
                    f"  pyarrow read of rank {rank} of {world}'s {len(mine)} files alone {t:6.2f} s"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- command line ----------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_cli-rank":
        cli_rank(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="section", required=True)
    a = sub.add_parser("array", help="1M x 100 in memory: 1 vs 2 gloo ranks")
    a.add_argument("--n", type=int, default=1_000_000)
    a.add_argument("--p", type=int, default=100)
    a.add_argument("--repeats", type=int, default=3)
    t = sub.add_parser("merge-tree", help="many simulated ranks merged in one process")
    t.add_argument("--ranks", type=int, default=1024)
    t.add_argument("--rows", type=int, default=200)
    t.add_argument("--p", type=int, default=100)
    t.add_argument("--repeats", type=int, default=3)
    c = sub.add_parser("cost-model", help="fold, merge and solve costs; the model")
    c.add_argument("--p", type=int, nargs="+", default=[100, 250, 500, 1000, 2000, 4000])
    c.add_argument("--repeats", type=int, default=3)
    c.add_argument("--bandwidth-gbit", type=float, default=10.0)
    c.add_argument("--latency-us", type=float, default=50.0)
    q = sub.add_parser("parquet", help="20M x 20 Parquet directory: CLI, 1 vs 2 processes")
    q.add_argument("--rows", type=int, default=20_000_000)
    q.add_argument("--files", type=int, default=10)
    q.add_argument("--repeats", type=int, default=3)
    for section in (t, c):
        section.add_argument(
            "--threads", type=int, default=1,
            help="torch threads (default 1: a simulated rank's cost per core)",
        )  # fmt: skip
    args = parser.parse_args()
    if args.section in ("merge-tree", "cost-model"):
        torch.set_num_threads(args.threads)
    if args.section == "array":
        bench_array(args.n, args.p, args.repeats)
    elif args.section == "merge-tree":
        bench_merge_tree(args.ranks, args.rows, args.p, args.repeats)
    elif args.section == "cost-model":
        bench_cost_model(args.p, args.repeats, args.bandwidth_gbit, args.latency_us)
    else:
        bench_parquet(args.rows, args.files, args.repeats)


if __name__ == "__main__":
    main()
