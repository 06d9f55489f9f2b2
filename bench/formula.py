"""Fit with a formula + HC1 summary: torchlinreg.ols against statsmodels' formula OLS
(and pyfixest.feols when installed), on n rows × (20 numeric + one 50-level
categorical), in one process; same numbers checked, times and ratios printed.

    .venv/bin/python bench/formula.py            # 1,000,000 rows, 3 rounds
    .venv/bin/python bench/formula.py --rows 200000 --repeat 5
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np
import pandas as pd

FORMULA = "y ~ " + " + ".join(f"x{j}" for j in range(20)) + " + C(g)"


def data(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 20))
    g = rng.integers(0, 50, n)
    y = X @ rng.standard_normal(20) + 0.1 * g + rng.standard_normal(n) * (1 + np.abs(X[:, 0]))
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(20)])
    df["g"] = np.char.add("level", g.astype(str))
    df["y"] = y
    return df


def timed(fn):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def ours(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    import torchlinreg as tl

    # HC1 chosen at fit time: computed in the fit's own pass, summary() needs no data
    s = tl.ols(FORMULA, df, cov_type="HC1").summary().to_frame()
    return s["estimate"], s["std_error"]


def statsmodels(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    import statsmodels.formula.api as smf

    r = smf.ols(FORMULA, df).fit(cov_type="HC1")
    return r.params, r.bse


def pyfixest(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    import pyfixest as pf

    r = pf.feols(FORMULA, df, vcov="HC1")
    return r.coef(), r.se()


def gap(mine: tuple[pd.Series, pd.Series], theirs: tuple[pd.Series, pd.Series]) -> float:
    """Largest relative difference of coefficients and standard errors, by name."""
    names = ["Intercept", *list(mine[0].index[1:])]
    worst = 0.0
    for a, b in zip(mine, theirs, strict=True):
        b = b[names].to_numpy()
        worst = max(worst, float(np.max(np.abs(a.to_numpy() - b) / np.abs(b))))
    return worst


def spread(times: list[float]) -> str:
    """The fastest and slowest round: on a shared machine a round can be several times
    the median, and the median of few rounds moves with them."""
    return f"({min(times):.2f}-{max(times):.2f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3, help="rounds (each runs every one once)")
    args = p.parse_args()
    df = data(args.rows)
    ours(df.iloc[:1000])  # imports and first-call costs out of the clock
    runs = [("torchlinreg.ols", ours), ("statsmodels smf.ols", statsmodels)]
    if importlib.util.find_spec("pyfixest") is not None:
        runs.append(("pyfixest.feols", pyfixest))
    else:
        print("  pyfixest.feols       (not installed)")
    times: dict[str, list[float]] = {name: [] for name, _ in runs}
    results = {}
    for _ in range(args.repeat):  # rounds alternate, so that a load spike hits all
        for name, fn in runs:
            t, results[name] = timed(lambda fn=fn: fn(df))
            times[name].append(t)
    mine = float(np.median(times["torchlinreg.ols"]))
    print(f"{args.rows:,} rows x (20 numeric + 50-level C(g)), fit + HC1 summary; "
          f"median of {args.repeat} alternating rounds (fastest-slowest round)")  # fmt: skip
    print(f"  torchlinreg.ols      {mine:8.2f} s {spread(times['torchlinreg.ols'])}")
    for name, _ in runs[1:]:
        t = float(np.median(times[name]))
        diff = gap(results["torchlinreg.ols"], results[name])
        print(f"  {name:20s} {t:8.2f} s {spread(times[name])}  {t / mine:5.1f}x ours; max "
              f"rel. diff of coef/SE {diff:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
