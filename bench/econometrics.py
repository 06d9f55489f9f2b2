"""Econometrics against pyfixest, in one process (ratios of medians).

    python bench/econometrics.py fixed-effects [--n 5000000] [--firms 100000] [--years 20]
        [--repeats 3]
    python bench/econometrics.py covariances [--n 1000000] [--lags 8] [--clusters 1000]
        [--clusters2 50] [--repeats 3]

``fixed-effects``: n rows, 5 regressors, two fixed effects (firm × year, each row's
firm and year drawn at random: an unbalanced panel), errors clustered by firm;
``LinearRegression(cov_type="cluster").fit(X, y, groups=firm, absorb={"firm": ...,
"year": ...}).summary()`` against ``pyfixest.feols("y ~ x0 + … + x4 | firm + year",
vcov={"CRV1": "firm"})`` (its defaults: singletons removed, which here are none or
few) on the same numbers. Both are warmed up first (pyfixest's compiled demeaner
and formula parsing, as in a session), then timed in alternating rounds. Prints both
times, the ratio, the largest relative difference of the coefficients and standard
errors, and both sides' rows and residual degrees of freedom (like for like).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import timed  # noqa: E402


def fixed_effects_data(n: int, firms: int, years: int, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    firm = rng.integers(0, firms, n)
    year = rng.integers(0, years, n)
    X = rng.normal(size=(n, 5))
    y = X @ np.arange(1.0, 6.0) + rng.normal(size=firms)[firm] + rng.normal(size=years)[year]
    y += rng.normal(size=n)
    return X, y, firm, year


def fixed_effects(args: argparse.Namespace) -> None:
    import pandas as pd
    import pyfixest as pf

    from torchlinreg import LinearRegression

    X, y, firm, year = fixed_effects_data(args.n, args.firms, args.years)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(5)])
    frame["y"], frame["firm"], frame["year"] = y, firm, year
    formula = "y ~ x0 + x1 + x2 + x3 + x4 | firm + year"

    def ours():  # type: ignore[no-untyped-def]
        if args.formula:  # from the same DataFrame through the formula, as pyfixest reads it
            import torchlinreg

            model = torchlinreg.ols(formula, frame, cov_type="cluster", groups=frame["firm"])
            return model, model.summary()
        model = LinearRegression(cov_type="cluster")
        model.fit(X, y, groups=firm, absorb={"firm": firm, "year": year})
        return model, model.summary()

    def theirs():  # type: ignore[no-untyped-def]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pf.feols(formula, frame, vcov={"CRV1": "firm"})

    small = slice(0, 20_000)  # warm-up: kernels, numba/rust initialisation
    LinearRegression(cov_type="cluster").fit(
        X[small], y[small], groups=firm[small], absorb={"firm": firm[small], "year": year[small]}
    ).summary()
    if args.formula:  # formulaic's imports and first parse
        import torchlinreg

        part = frame.iloc[small]
        torchlinreg.ols(formula, part, cov_type="cluster", groups=part["firm"]).summary()
    with warnings.catch_warnings():  # the small warm-up sample has singleton firms
        warnings.simplefilter("ignore")
        pf.feols(formula, frame.iloc[small], vcov={"CRV1": "firm"})
    (t_ours, (model, s)), (t_pf, ref) = alternated([ours, theirs], args.repeats)
    coef = np.max(np.abs(model.coef_ / ref.coef().values - 1))
    se = np.array([c.std_error for c in s.coefficients])
    se_diff = np.max(np.abs(se / ref.se().values - 1))
    print(
        f"fixed effects: n = {args.n:,}, 5 regressors, firm ({args.firms:,}) + year "
        f"({args.years}), cluster by firm; medians of {args.repeats}"
    )
    print(f"  torchlinreg {t_ours:.2f} s   pyfixest {t_pf:.2f} s   ratio {t_pf / t_ours:.2f}x")
    print(f"  largest relative difference: coefficients {coef:.1e}, standard errors {se_diff:.1e}")
    print(
        f"  (absorbed by {model.absorbed_.method} solve; rows: torchlinreg {s.n:,}, "
        f"pyfixest {ref._N:,}; equal standard errors: the same small-sample factor)"
    )


def alternated(fns: list, repeats: int) -> list:  # type: ignore[type-arg]
    """(median seconds, last result) of each function, run in alternating rounds so
    that a change in the machine's load falls on both sides alike."""
    import statistics
    import time

    times: list[list[float]] = [[] for _ in fns]
    results: list = [None] * len(fns)  # type: ignore[type-arg]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            results[i] = fn()
            times[i].append(time.perf_counter() - start)
    return [(statistics.median(t), r) for t, r in zip(times, results, strict=True)]


def covariances(args: argparse.Namespace) -> None:
    """HAC (``--lags``), two-way clusters and CRV3 against statsmodels' OLS with the same
    ``cov_type``: each side's fit and covariance, medians of ``--repeats``."""
    import statsmodels.api as sm

    from torchlinreg import LinearRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n, 5))
    a = rng.integers(0, args.clusters, args.n)
    b = rng.integers(0, args.clusters2, args.n)
    y = X @ np.arange(1.0, 6.0) + rng.normal(size=args.clusters)[a] + rng.normal(size=args.n)
    exog = sm.add_constant(X)
    cases = [
        ("HAC", {"lags": args.lags}, {"maxlags": args.lags}, f"HAC, {args.lags} lags"),
        ("cluster", {"groups": (a, b)}, {"groups": np.c_[a, b]},
         f"two-way {args.clusters:,} x {args.clusters2:,}"),
        ("CRV3", {"groups": a}, {"groups": a}, f"CRV3, {args.clusters:,} clusters"),
    ]  # fmt: skip
    print(f"covariances: n = {args.n:,}, 5 regressors; medians of {args.repeats}")
    for cov_type, ours_kw, sm_kw, label in cases:
        sm_type = "cluster-crv3" if cov_type == "CRV3" else cov_type

        def ours(cov_type=cov_type, kw=ours_kw):  # type: ignore[no-untyped-def]
            model = LinearRegression().fit(X, y)
            return model.summary(cov_type=cov_type, X=X, y=y, **kw)

        def theirs(cov_type=sm_type, kw=sm_kw):  # type: ignore[no-untyped-def]
            return sm.OLS(y, exog).fit(cov_type=cov_type, cov_kwds=kw)

        ours(), theirs()  # warm-up
        t_ours, s = timed(ours, args.repeats)
        t_sm, ref = timed(theirs, args.repeats)
        V = np.asarray(ref.cov_params())
        diff = np.max(np.abs(s.cov - V)) / np.max(np.abs(V))
        print(
            f"  {label}: torchlinreg {t_ours:.2f} s   statsmodels {t_sm:.2f} s   "
            f"ratio {t_sm / t_ours:.2f}x   covariance difference {diff:.1e}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cases = parser.add_subparsers(dest="case", required=True)
    fe = cases.add_parser("fixed-effects", help="two absorbed fixed effects, clustered")
    fe.add_argument("--n", type=int, default=5_000_000)
    fe.add_argument("--firms", type=int, default=100_000)
    fe.add_argument("--years", type=int, default=20)
    fe.add_argument("--repeats", type=int, default=3)
    fe.add_argument(
        "--formula", action="store_true", help="ours through torchlinreg.ols on the DataFrame"
    )
    fe.set_defaults(run=fixed_effects)
    cov = cases.add_parser("covariances", help="HAC, two-way cluster, CRV3 vs statsmodels")
    cov.add_argument("--n", type=int, default=1_000_000)
    cov.add_argument("--lags", type=int, default=8)
    cov.add_argument("--clusters", type=int, default=1_000)
    cov.add_argument("--clusters2", type=int, default=50)
    cov.add_argument("--repeats", type=int, default=3)
    cov.set_defaults(run=covariances)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
