"""Statistical inference: torchlinreg's fit + summary against statsmodels, one process.

    python bench/inference.py [--n 1000000] [--p 100] [--repeats 3] [--fit-time-only]
    python bench/inference.py --pyfixest [--n 300000] [--p 100]   # HC1, cluster vs pyfixest
    python bench/inference.py --nonrobust-only --repeats 3   # the issue's ratio, alternated
    python bench/inference.py --fit-time-only --p 20 --baseline-stats OLD/src/torchlinreg/stats

Same data (float64, with intercept). Times: fit plus the full summary (nonrobust), and
fit plus the HC3 summary (which reads the data a second time), against statsmodels'
OLS(y, X).fit().summary() and OLS(y, X).fit(cov_type="HC3").summary(). Also prints the
largest relative difference of the standard errors, and the robust covariances chosen at
fit time (``LinearRegression(cov_type="HC3").fit(X, y).summary()``: the meat computed by
the fit over the rows it holds; HC0, HC1, HC3, cluster) against fit + nonrobust summary,
timed alternately. ``--baseline-stats`` names a ``stats/`` folder of another commit (a
``git worktree``): its ``meat_memory.py`` and ``block_threads.py`` run in the same
process as the installed ones, round by round, for a before/after under the same load.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import timed  # noqa: E402
from exact import make  # noqa: E402  (the same data generator as bench/exact.py)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, help="rows (1,000,000; 300,000 with --pyfixest)")
    parser.add_argument("--p", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--fit-time-only", action="store_true", help="only the fit-time covariance timings"
    )
    parser.add_argument(
        "--baseline-stats",
        type=Path,
        help="with --fit-time-only: a stats/ folder whose meat_memory.py and block_threads.py "
        "are timed against the installed ones, alternating",
    )
    parser.add_argument(
        "--nonrobust-only",
        action="store_true",
        help="only fit + nonrobust summary against statsmodels, alternating round by round",
    )
    parser.add_argument(
        "--pyfixest",
        action="store_true",
        help="HC1 and cluster summaries against pyfixest (default shape 300,000 x 100)",
    )
    args = parser.parse_args()
    if args.n is None:
        args.n = 300_000 if args.pyfixest else 1_000_000
    if args.pyfixest:
        _pyfixest(args)
        return

    import statsmodels.api as sm

    from torchlinreg import LinearRegression

    X, y = make(args.n, args.p)
    r = args.repeats
    if args.nonrobust_only:
        _alternated_nonrobust(sm, X, y, r)
        return
    if args.fit_time_only:
        print(f"n = {args.n:,} x p = {args.p}, float64, intercept")
        if args.baseline_stats is not None:
            _fit_time_against(X, y, r, args.baseline_stats)
            return
        _fit_time(X, y, r)
        return
    print(f"n = {args.n:,} x p = {args.p}, float64, intercept; medians of {r} (statsmodels: 1)")

    def ours(cov_type: str):  # type: ignore[no-untyped-def]
        model = LinearRegression().fit(X, y)
        kwargs = {} if cov_type == "nonrobust" else {"X": X, "y": y}
        return model.summary(cov_type=cov_type, **kwargs)

    ours("nonrobust")  # warm-up (first calls load kernels)
    ours("HC3")
    Xc = sm.add_constant(X)
    for cov_type in ("nonrobust", "HC3"):
        t_ours, s = timed(lambda c=cov_type: ours(c), r)
        t_sm, ref = timed(lambda c=cov_type: _sm(sm, y, Xc, c), 1)
        se = np.array([c.std_error for c in s.coefficients])
        diff = float(np.max(np.abs(se / ref.bse - 1)))
        target = 20 if cov_type == "nonrobust" else 10
        print(
            f"  {cov_type:9s}  torchlinreg {t_ours:6.2f} s   statsmodels {t_sm:6.2f} s   "
            f"{t_sm / t_ours:5.1f}x faster (target >= {target}x); SE agree to {diff:.1e}"
        )
    _fit_time(X, y, r)


def _fit_time(X, y, repeats):  # type: ignore[no-untyped-def]
    """Fit + robust summary with the covariance chosen at fit time (HC0, HC1, HC3, and
    cluster over 1,000 groups) against fit + nonrobust summary, run alternately in each
    round so that all see the same machine load; medians of the rounds."""
    import time

    from torchlinreg import LinearRegression

    groups = np.arange(len(y)) % 1000

    def run(cov_type: str):  # type: ignore[no-untyped-def]
        kwargs = {"groups": groups} if cov_type == "cluster" else {}
        return LinearRegression(cov_type=cov_type).fit(X, y, **kwargs).summary()

    kinds = ("nonrobust", "HC0", "HC1", "HC3", "cluster")
    for kind in kinds:
        run(kind)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(repeats):
        for kind in kinds:
            start = time.perf_counter()
            run(kind)
            times[kind].append(time.perf_counter() - start)
    plain = float(np.median(times["nonrobust"]))
    print(f"  fit-time covariance (medians of {repeats} alternating rounds):")
    print(f"    fit + nonrobust summary {plain:6.2f} s")
    for kind in kinds[1:]:
        t = float(np.median(times[kind]))
        print(f"    fit + {kind:7s} summary {t:6.2f} s: {t / plain:4.2f}x (target <= 1.5x)")


def _baseline_meat(stats: Path):  # type: ignore[no-untyped-def]
    """``memory_meat`` of the ``meat_memory.py`` in the folder ``stats``, its blocks
    shared by that folder's ``block_threads.py`` (both loaded as modules of the
    installed package, so that their relative imports resolve)."""
    import importlib.util

    def load(name: str):  # type: ignore[no-untyped-def]
        full = f"torchlinreg.stats._baseline_{name}"
        spec = importlib.util.spec_from_file_location(full, stats / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
        return module

    threads, meat = load("block_threads"), load("meat_memory")
    meat.share_blocks, meat.thread_count = threads.share_blocks, threads.thread_count
    return meat.memory_meat


def _fit_time_against(X, y, repeats, stats: Path):  # type: ignore[no-untyped-def]
    """Fit-time covariances (as :func:`_fit_time`) with the installed in-memory meat
    and with the one in ``stats``, every kind with either in each round; medians, and
    each one's ratio to fit + nonrobust summary of the same rounds."""
    import os
    import time

    from torchlinreg import LinearRegression
    from torchlinreg.stats import meat_memory

    sides = {"installed": meat_memory.memory_meat, "baseline": _baseline_meat(stats)}
    groups = np.arange(len(y)) % 1000

    def run(cov_type: str, side: str):  # type: ignore[no-untyped-def]
        meat_memory.memory_meat = sides[side]  # robust_meat imports it at each call
        kwargs = {"groups": groups} if cov_type == "cluster" else {}
        try:
            return LinearRegression(cov_type=cov_type).fit(X, y, **kwargs).summary()
        finally:
            meat_memory.memory_meat = sides["installed"]

    kinds = ("HC0", "HC1", "HC3", "cluster")
    runs = [("nonrobust", "installed")] + [(k, s) for k in kinds for s in sides]
    for kind, side in runs:
        run(kind, side)  # warm-up
    times: dict[tuple[str, str], list[float]] = {r: [] for r in runs}
    loads = []
    for _ in range(repeats):
        loads.append(os.getloadavg()[0])
        for kind, side in runs:
            start = time.perf_counter()
            run(kind, side)
            times[(kind, side)].append(time.perf_counter() - start)
    plain = float(np.median(times[("nonrobust", "installed")]))
    print(
        f"  against {stats} (medians of {repeats} alternating rounds, load {min(loads):.1f}-"
        f"{max(loads):.1f}):"
    )
    print(f"    fit + nonrobust summary {plain:6.3f} s")
    for kind in kinds:
        t = {side: float(np.median(times[(kind, side)])) for side in sides}
        print(
            f"    fit + {kind:7s} summary  installed {t['installed']:6.3f} s "
            f"({t['installed'] / plain:4.2f}x)  baseline {t['baseline']:6.3f} s "
            f"({t['baseline'] / plain:4.2f}x)  installed/baseline "
            f"{t['installed'] / t['baseline']:4.2f}"
        )


def _pyfixest(args: argparse.Namespace) -> None:
    """Fit + HC1 summary and fit + cluster (CRV1, 1,000 groups) summary against
    ``pyfixest.feols("y ~ x0 + …", vcov=...)`` and its coefficient table (``tidy()``),
    on the same numbers; both warmed up, then timed in alternating rounds (medians).
    ``--n`` defaults here to the issue's 300,000 (× ``--p`` 100)."""
    import time

    import pandas as pd
    import pyfixest as pf

    from torchlinreg import LinearRegression

    n = args.n
    X, y = make(n, args.p)
    groups = np.arange(n) % 1000
    names = [f"x{j}" for j in range(args.p)]
    frame = pd.DataFrame(X, columns=names).assign(y=y, g=groups)
    formula = "y ~ " + " + ".join(names)
    vcovs = {"HC1": "HC1", "cluster": {"CRV1": "g"}}

    def ours(kind: str):  # type: ignore[no-untyped-def]
        kwargs = {"groups": groups} if kind == "cluster" else {}
        return LinearRegression(cov_type=kind).fit(X, y, **kwargs).summary()

    def theirs(kind: str):  # type: ignore[no-untyped-def]
        fit = pf.feols(formula, frame, vcov=vcovs[kind])
        return fit, fit.tidy()

    print(f"n = {n:,} x p = {args.p}, float64, intercept; medians of {args.repeats} rounds")
    for kind in vcovs:
        s, (_, table) = ours(kind), theirs(kind)  # warm-up, and the like-for-like check
        se = np.array([c.std_error for c in s.coefficients])
        ref = table["Std. Error"].to_numpy()
        diff = float(np.max(np.abs(se / ref - 1)))
        times: dict[str, list[float]] = {"ours": [], "pyfixest": []}
        for _ in range(args.repeats):
            for side, fn in (("ours", ours), ("pyfixest", theirs)):
                start = time.perf_counter()
                fn(kind)
                times[side].append(time.perf_counter() - start)
        t_ours, t_pf = (float(np.median(times[k])) for k in ("ours", "pyfixest"))
        print(
            f"  {kind:8s} torchlinreg {t_ours:6.2f} s   pyfixest {t_pf:6.2f} s   "
            f"{t_pf / t_ours:5.1f}x faster (target >= 5x); SE agree to {diff:.1e}"
        )


def _alternated_nonrobust(sm, X, y, repeats):  # type: ignore[no-untyped-def]
    """Fit + nonrobust summary, rendered as text, ours and statsmodels' in turn in each
    round (both see the same load); wall and CPU seconds per round, then the ratio of
    the medians. Ours is warmed up; statsmodels' first round is its warm-up."""
    import os
    import time

    from torchlinreg import LinearRegression

    Xc = sm.add_constant(X)
    sides = {
        "torchlinreg": lambda: str(LinearRegression().fit(X, y).summary()),
        "statsmodels": lambda: str(sm.OLS(y, Xc).fit().summary()),
    }
    sides["torchlinreg"]()
    wall: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    print(f"n = {len(y):,} x p = {X.shape[1]}, float64, intercept; {repeats} alternating rounds")
    for i in range(repeats):
        for side, fn in sides.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[side].append(time.perf_counter() - start)
            cpu[side].append(time.process_time() - start_cpu)
        print(
            f"  round {i + 1} (load {os.getloadavg()[0]:.1f}): torchlinreg "
            f"{wall['torchlinreg'][-1]:.3f} s ({cpu['torchlinreg'][-1]:.3f} CPU), statsmodels "
            f"{wall['statsmodels'][-1]:.2f} s ({cpu['statsmodels'][-1]:.2f} CPU)",
            flush=True,
        )
    med = {k: float(np.median(v)) for k, v in wall.items()}
    med_cpu = {k: float(np.median(v)) for k, v in cpu.items()}
    print(
        f"  fit + nonrobust summary: {med['statsmodels'] / med['torchlinreg']:.1f}x faster "
        f"(wall medians), {med_cpu['statsmodels'] / med_cpu['torchlinreg']:.1f}x in CPU "
        "(target >= 50x)"
    )


def _sm(sm, y, Xc, cov_type):  # type: ignore[no-untyped-def]
    res = sm.OLS(y, Xc).fit(cov_type=cov_type)
    res.summary()
    return res


if __name__ == "__main__":
    main()
