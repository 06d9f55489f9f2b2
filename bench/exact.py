"""Exact least squares: torchlinreg against scikit-learn and statsmodels, one process.

    python bench/exact.py [--n 1000000] [--p 100] [--repeats 3]

Same data for everyone (float64, n × p, random scales and offsets, with intercept).
Prints median times and ratios, the agreement with numpy.linalg.lstsq, the float32
time, the achieved GFLOP/s against the measured matrix-multiply rate, and, in a fresh
subprocess, the peak memory of a streamed fit beyond X itself.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import timed  # noqa: E402


def make(n: int, p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.empty((n, p))
    for start in range(0, n, 1 << 16):  # fill in place: no temporary copy of X
        rows = min(1 << 16, n - start)
        X[start : start + rows] = rng.standard_normal((rows, p))
    X *= rng.uniform(0.5, 5.0, p)
    X += rng.uniform(-3.0, 3.0, p)
    y = X @ rng.normal(size=p) + 1.5 + rng.normal(size=n)
    return X, y


def matmul_rate() -> float:
    a = torch.randn(4096, 4096, dtype=torch.float64)
    a @ a
    t, _ = timed(lambda: a @ a, 3)
    return 2 * 4096**3 / t / 1e9


STREAM_PROBE = r"""
import json, sys, numpy as np
sys.path.insert(0, "bench")
from exact import make
from torchlinreg import LinearRegression
n, p = int(sys.argv[1]), int(sys.argv[2])
X, y = make(n, p)
LinearRegression().fit_chunks([(X[:1000], y[:1000])])  # load torch and its kernels first
def rss_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
open("/proc/self/clear_refs", "w").write("5")  # reset the peak to now
base = rss_kib("VmRSS:")
step = 1 << 16
chunks = lambda: ((X[i:i + step], y[i:i + step]) for i in range(0, n, step))
import time
start = time.perf_counter()
LinearRegression().fit_chunks(chunks)
seconds = time.perf_counter() - start
print(json.dumps({"extra_mib": (rss_kib("VmHWM:") - base) / 1024, "x_mib": X.nbytes / 2**20,
                  "seconds": seconds}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--p", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n, p, r = args.n, args.p, args.repeats

    from sklearn.linear_model import LinearRegression as SkLinearRegression
    from sklearn.linear_model import Ridge as SkRidge

    from torchlinreg import LinearRegression

    X, y = make(n, p)
    print(
        f"n = {n:,} x p = {p}, float64, intercept; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; medians of {r}"
    )

    ours = lambda: LinearRegression().fit(X, y)  # noqa: E731
    ours()  # warm-up
    t_ours, model = timed(ours, r)
    rows = [("torchlinreg LinearRegression", t_ours)]

    t_sk, sk = timed(lambda: SkLinearRegression().fit(X, y), max(1, r - 1))
    rows.append(("scikit-learn LinearRegression", t_sk))
    t_ridge, _ = timed(lambda: SkRidge(alpha=0.0, solver="cholesky").fit(X, y), r)
    rows.append(('scikit-learn Ridge(solver="cholesky")', t_ridge))
    try:
        import statsmodels.api as sm

        Xc = sm.add_constant(X)
        t_sm, _ = timed(lambda Xc=Xc: sm.OLS(y, Xc).fit(), 1)
        del Xc
        rows.append(("statsmodels OLS().fit() (pinv)", t_sm))
    except ImportError:
        pass

    X32 = X.astype(np.float32)
    t32, _ = timed(lambda X32=X32: LinearRegression().fit(X32, y), r)
    del X32

    for name, t in rows:
        ratio = (
            "" if name.startswith("torchlinreg") else f"   torchlinreg is {t / t_ours:5.1f}x faster"
        )
        print(f"  {name:40s} {t:7.3f} s{ratio}")
    print(f"  {'torchlinreg, float32 input':40s} {t32:7.3f} s")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        A = np.column_stack([np.ones(n), X])
        ref = np.linalg.lstsq(A, y, rcond=None)[0]
        del A

    def rel(m) -> float:  # type: ignore[no-untyped-def]
        return float(np.max(np.abs(np.r_[m.intercept_, m.coef_] - ref)) / np.max(np.abs(ref)))

    print(
        f"  max |ours - numpy lstsq| / max |lstsq| = {rel(model):.1e} (required <= 1e-10); "
        f"scikit-learn: {rel(sk):.1e}"
    )

    m = p + 2  # [1, X, y]
    if model.solver_used_ == "cholesky":  # Gram by one multiply, then a residual pass
        flops, what = 2 * n * p**2 + 2 * n * p, f"Gram of the {n:,} x {p} design + residuals"
    else:  # Householder QR of the augmented matrix
        flops, what = 2 * n * m**2, f"QR of the augmented {n:,} x {m}"
    peak = matmul_rate()
    rate = flops / t_ours / 1e9
    print(
        f"  solver used: {model.solver_used_}; {what}: {rate:.1f} GFLOP/s; "
        f"float64 matmul on this machine: {peak:.1f} GFLOP/s ({rate / peak:.0%})"
    )

    probe = subprocess.run(
        [sys.executable, "-c", STREAM_PROBE, str(n), str(p)],
        capture_output=True,
        text=True,
        check=True,
    )
    mem = json.loads(probe.stdout)
    print(
        f"  streamed fit (fit_chunks, chunks of 65,536 rows, QR fold): {mem['seconds']:.3f} s; "
        f"peak memory beyond X = {mem['extra_mib']:.0f} MiB "
        f"= {mem['extra_mib'] / mem['x_mib']:.1%} of X ({mem['x_mib']:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
