"""``torchlinreg report`` on the Parquet benchmark file against ``torchlinreg fit`` on
the same file: wall time and peak resident memory, each in a fresh process.

    python bench/report.py [--parquet-rows 20000000] [--repeats 3]

The file (N × 20 float64 columns, x0..x18 and y) is bench/files.py's, written once
under bench/_data/. The report reads the file once (the influence pass: every row's
leverage, studentized residuals, Cook's distance, DFFITS, DFBETAS; top rows, counts, a
2,000-point sample and exact bins) and draws the plots; fit reads it once and solves.
Runs alternate (fit, report, fit, report, ...); medians are printed, with each
process's CPU time (user + system) and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from files import CHILD, DATA, write_data  # noqa: E402


def child(*argv: str) -> tuple[float, float, float]:
    """(seconds, peak RSS in MiB, CPU seconds) of ``torchlinreg ARGV`` in a fresh
    process. On a shared machine the CPU time (user + system, all threads) varies
    less than the wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *argv], check=True, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, int(proc.stderr.strip().splitlines()[-1]) / 1024, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parquet-rows", type=int, default=20_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = DATA / f"bench_{args.parquet_rows}.parquet"
    write_data(data, args.parquet_rows, "parquet")
    with tempfile.TemporaryDirectory() as tmp:
        model, html = f"{tmp}/m.safetensors", f"{tmp}/report.html"
        child("fit", str(data), "--target", "y", "-o", model, "--quiet")  # also warms the cache
        load = [os.getloadavg()[0]]
        fits, reports = [], []
        for _ in range(args.repeats):
            fits.append(child("fit", str(data), "--target", "y", "--quiet"))
            reports.append(child("report", model, str(data), "-o", html, "--quiet"))
        load.append(os.getloadavg()[0])
        size = Path(html).stat().st_size / 2**10
    t_fit = statistics.median(s for s, _, _ in fits)
    t_report = statistics.median(s for s, _, _ in reports)
    c_fit = statistics.median(c for _, _, c in fits)
    c_report = statistics.median(c for _, _, c in reports)
    print(
        f"{args.parquet_rows:,} rows x 20 columns ({data.stat().st_size / 2**20:,.0f} MiB Parquet)"
    )
    print(f"fit:    {t_fit:7.2f} s   CPU {c_fit:7.2f} s   peak RSS "
          f"{max(m for _, m, _ in fits):7.0f} MiB")  # fmt: skip
    print(f"report: {t_report:7.2f} s   CPU {c_report:7.2f} s   peak RSS "
          f"{max(m for _, m, _ in reports):7.0f} MiB   ({t_report / t_fit:.2f}x fit, CPU "
          f"{c_report / c_fit:.2f}x; report.html {size:,.0f} KiB)")  # fmt: skip
    print(f"load average (1 min) {load[0]:.1f} before, {load[1]:.1f} after")


if __name__ == "__main__":
    main()
