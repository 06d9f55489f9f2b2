"""File pipelines: torchlinreg's streamed fit/predict against pyarrow and pandas + scikit-learn.

    python bench/files.py [--parquet-rows 20000000] [--csv-rows 1000000] [--repeats 3]

Data are written once under bench/_data/ (git-ignored): a Parquet file of N × 20 float64
columns (x0..x18, y) and a CSV file of M × 20. Prints medians, ratios, and the peak
resident memory of the Parquet fit, run as `torchlinreg fit` in a child process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import timed  # noqa: E402

DATA = Path(__file__).resolve().parent / "_data"
COLS = [f"x{j}" for j in range(19)] + ["y"]


def write_data(path: Path, rows: int, kind: str) -> None:
    if path.exists():
        return
    DATA.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    beta = rng.normal(size=19)
    tmp = path.with_suffix(".tmp")
    writer = None
    for start in range(0, rows, 1_000_000):
        m = min(1_000_000, rows - start)
        X = rng.normal(size=(m, 19)) * 3 + 1
        y = X @ beta + 2 + rng.normal(size=m)
        table = pa.table({**{c: X[:, j] for j, c in enumerate(COLS[:-1])}, "y": y})
        if writer is None:
            writer = (
                pq.ParquetWriter(tmp, table.schema)
                if kind == "parquet"
                else pacsv.CSVWriter(tmp, table.schema)
            )
        writer.write_table(table)
    writer.close()
    tmp.rename(path)


def median_time(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    return timed(fn, repeats)[0]


# The child reports its own peak (VmHWM, which exec resets): ru_maxrss, of the child
# or of the children, would also count the pages a child forked from this large
# benchmark process had before it exec'd.
CHILD = (
    "import sys\n"
    "from torchlinreg.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
    "print(hwm.split()[1], file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def child_fit(path: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of `torchlinreg fit` in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, "fit", str(path), "--target", "y", "--quiet"],
        check=True,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    return seconds, int(proc.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parquet-rows", type=int, default=20_000_000)
    parser.add_argument("--csv-rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import pandas as pd
    from sklearn.linear_model import LinearRegression as SkLinearRegression

    from torchlinreg.jobs import FitOptions, fit_file, predict_file

    parquet = DATA / f"bench_{args.parquet_rows}.parquet"
    csv = DATA / f"bench_{args.csv_rows}.csv"
    write_data(parquet, args.parquet_rows, "parquet")
    write_data(csv, args.csv_rows, "csv")
    r = args.repeats

    # Parquet: pyarrow's own read of every column, against our fit (a child process, so
    # its peak memory is its own). pyarrow's defaults pre-buffer the whole file (3.3 GB
    # for 20M rows); the bounded-memory settings the fit uses read faster still, so that
    # is the baseline.
    def read_all(**options: object) -> None:
        for _ in pq.ParquetFile(parquet, **options).iter_batches(batch_size=1 << 17):
            pass

    t_default = median_time(read_all, r)
    t_read = median_time(lambda: read_all(pre_buffer=False, buffer_size=1 << 20), r)
    options = FitOptions(targets=["y"])
    fit_file(str(parquet), options, quiet=True)  # warm-up: torch loads, the file is cached
    t_lib = median_time(lambda: fit_file(str(parquet), options, quiet=True), r)
    fits = [child_fit(parquet) for _ in range(r)]
    t_cli = statistics.median(f[0] for f in fits)
    peak = max(f[1] for f in fits)
    size = parquet.stat().st_size / 2**20
    n = args.parquet_rows
    print(f"Parquet {n:,} x 20 float64 ({size:,.0f} MiB on disk), medians of {r}")
    print(f"  pyarrow read, default options  {t_default:7.2f} s  {n / t_default:12,.0f} rows/s")
    print(f"  pyarrow read, bounded memory   {t_read:7.2f} s  {n / t_read:12,.0f} rows/s")
    print(
        f"  torchlinreg fit (library)      {t_lib:7.2f} s  {n / t_lib:12,.0f} rows/s"
        f"  = {t_read / t_lib:.0%} of pyarrow's read (target >= 50%)"
    )
    print(f"  torchlinreg fit (CLI process)  {t_cli:7.2f} s  (includes start-up and torch import)")
    print(f"  peak RSS of the CLI process    {peak:7.0f} MiB (target < 1024)")

    # CSV fit: pandas.read_csv + scikit-learn against our streamed fit, in this process.
    def pandas_fit() -> object:
        frame = pd.read_csv(csv)
        return SkLinearRegression().fit(frame[COLS[:-1]].to_numpy(), frame["y"].to_numpy())

    t_pd = median_time(pandas_fit, r)
    t_ours = median_time(lambda: fit_file(str(csv), options, quiet=True), r)
    print(f"CSV {args.csv_rows:,} x 20, medians of {r}")
    print(f"  pandas.read_csv + scikit-learn fit   {t_pd:6.2f} s")
    print(
        f"  torchlinreg fit                      {t_ours:6.2f} s   "
        f"{t_pd / t_ours:.2f}x the speed (target >= 2x)"
    )

    # CSV predict, both writing a CSV of predictions.
    model_path = DATA / "bench_model.safetensors"
    from torchlinreg.persistence import save_model

    result = fit_file(str(csv), options, quiet=True)
    save_model(str(model_path), result.estimator, design=result.design, info=result.info)
    sk = pandas_fit()
    out_pd, out_ours = DATA / "pred_pandas.csv", DATA / "pred_ours.csv"

    def pandas_predict() -> None:
        frame = pd.read_csv(csv)
        pred = sk.predict(frame[COLS[:-1]].to_numpy())  # type: ignore[attr-defined]
        pd.DataFrame({"predicted_y": pred}).to_csv(out_pd, index=False)

    t_pdp = median_time(pandas_predict, r)
    t_op = median_time(
        lambda: predict_file(str(model_path), str(csv), str(out_ours), quiet=True), r
    )
    print(f"  pandas + scikit-learn predict (CSV out) {t_pdp:6.2f} s")
    print(
        f"  torchlinreg predict (CSV out)           {t_op:6.2f} s   "
        f"{t_pdp / t_op:.2f}x the speed (target >= 2x)"
    )
    a = pd.read_csv(out_pd)["predicted_y"].to_numpy()
    b = pd.read_csv(out_ours)["predicted_y"].to_numpy()
    print(f"  predictions agree to {np.max(np.abs(a - b)) / np.max(np.abs(a)):.1e} (relative)")
    for p in (out_pd, out_ours, model_path):
        os.unlink(p)


if __name__ == "__main__":
    main()
