"""Cross-validated penalised fits: torchlinreg's LassoCV / RidgeCV against scikit-learn's,
same data, same folds, same alphas, one process.

    python bench/penalized.py [--n 1000000] [--p 100] [--repeats 3] [--sk-repeats 1]
                              [--what lasso ridge stream] [--parquet-rows 20000000]

lasso:  LassoCV(cv=5, 100 alphas) on n × p float64 (bench/exact.py's data), both given
        the same KFold(5) index splits; the chosen alphas and the CV curves compared.
ridge:  RidgeCV(20 alphas, cv=5), i.e. scikit-learn's grid search over Ridge (not its
        leave-one-out default), scored by the folds' MSE on both sides.
stream: `torchlinreg fit FILE --target y --cv 5 --lasso-path` on bench/files.py's
        Parquet file (N × 20), in a child process: time and peak RSS.

Times are medians of ``--repeats`` runs for torchlinreg and ``--sk-repeats`` for
scikit-learn (one by default: each of its runs takes minutes). The load average is
printed before and after, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import timed  # noqa: E402
from exact import make  # noqa: E402


def load() -> str:
    return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def report(name: str, t_ours: float, t_sk: float, alphas: tuple[float, float], agree: str) -> None:
    ours, theirs = alphas
    same = ours == theirs or abs(ours / theirs - 1) < 1e-9
    print(f"{name}: torchlinreg {t_ours:8.2f} s   scikit-learn {t_sk:8.2f} s   "
          f"{t_sk / t_ours:6.1f}x the speed (target >= 5x)")  # fmt: skip
    print(f"  chosen alpha {ours:.6g} vs {theirs:.6g} ({'same' if same else 'DIFFERENT'}); {agree}")


def bench_lasso(X: np.ndarray, y: np.ndarray, splits: list, r: int, r_sk: int) -> None:
    from sklearn.linear_model import LassoCV as SkLassoCV

    from torchlinreg import LassoCV

    t_ours, ours = timed(lambda: LassoCV(alphas=100, cv=splits).fit(X, y), r)
    t_sk, theirs = timed(lambda: SkLassoCV(alphas=100, cv=splits).fit(X, y), r_sk)
    curve = np.abs(ours.mse_path_ - theirs.mse_path_).max() / np.abs(theirs.mse_path_).max()
    agree = f"CV curves (100 x 5) agree to {curve:.1e} (relative; tol=1e-4 on both)"
    report("LassoCV (5 folds, 100 alphas)", t_ours, t_sk, (ours.alpha_, theirs.alpha_), agree)


def bench_ridge(X: np.ndarray, y: np.ndarray, splits: list, r: int, r_sk: int) -> None:
    from sklearn.linear_model import RidgeCV as SkRidgeCV

    from torchlinreg import RidgeCV

    alphas = np.logspace(-3, 4, 20)
    t_ours, ours = timed(lambda: RidgeCV(alphas, cv=splits).fit(X, y), r)
    scoring = "neg_mean_squared_error"
    t_sk, theirs = timed(lambda: SkRidgeCV(alphas, cv=splits, scoring=scoring).fit(X, y), r_sk)
    # scikit-learn's RidgeCV keeps no curve; its best score is the chosen alpha's mean MSE.
    score = abs(ours.best_score_ / theirs.best_score_ - 1)
    agree = f"best mean MSE agrees to {score:.1e} (relative)"
    report("RidgeCV (5 folds, 20 alphas)", t_ours, t_sk, (ours.alpha_, theirs.alpha_), agree)


def bench_stream(rows: int) -> None:
    """The CLI's streamed `fit --cv 5 --lasso-path` on a Parquet file: time, peak RSS."""
    from files import CHILD, DATA, write_data

    path = DATA / f"bench_{rows}.parquet"
    write_data(path, rows, "parquet")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, "fit", str(path), "--target", "y", "--cv", "5",
         "--lasso-path", "--quiet"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    peak = int(proc.stderr.strip().splitlines()[-1]) / 1024
    size = path.stat().st_size / 2**20
    print(f"stream: fit --cv 5 --lasso-path on Parquet {rows:,} x 20 ({size:,.0f} MiB), "
          f"one read: {seconds:.1f} s, peak RSS {peak:.0f} MiB (target < 1024)")  # fmt: skip
    print("  " + "\n  ".join(proc.stdout.strip().splitlines()[:3]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--p", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sk-repeats", type=int, default=1)
    parser.add_argument("--what", nargs="+", default=["lasso", "ridge", "stream"],
                        choices=["lasso", "ridge", "stream"])  # fmt: skip
    parser.add_argument("--parquet-rows", type=int, default=20_000_000)
    args = parser.parse_args()
    print(f"start: {load()} on {os.cpu_count()} CPUs")
    if {"lasso", "ridge"} & set(args.what):
        from sklearn.model_selection import KFold

        X, y = make(args.n, args.p)
        splits = list(KFold(5).split(X))
        print(f"data: {args.n:,} x {args.p} float64, KFold(5) splits given to both")
        if "lasso" in args.what:
            bench_lasso(X, y, splits, args.repeats, args.sk_repeats)
            print(f"  {load()}")
        if "ridge" in args.what:
            bench_ridge(X, y, splits, args.repeats, args.sk_repeats)
            print(f"  {load()}")
        del X, y
    if "stream" in args.what:
        bench_stream(args.parquet_rows)
        print(f"  {load()}")


if __name__ == "__main__":
    main()
