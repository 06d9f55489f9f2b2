"""Streamed absorption, ``fit_chunks(chunks, absorb=[...])``: equal to the in-memory
``fit(X, y, absorb=...)`` and to pyfixest, whatever the chunking; memory holds one
chunk; bad input is one line.

Tolerances. Streamed = in memory to 1e-12: both solve the same effects
(``solve_effects``) from the same float64 sums, gathered in a different order, and fold
the same demeaned rows; the differences are a few ulps times the condition numbers
(demeaned X and the Jacobi-scaled Schur matrix, below 1e2 on these panels), ~1e-13 at
most, while a degree-of-freedom rule lost or a level miscounted moves the standard
errors by ≥ 1/n ≈ 1e-3. Conjugate gradients stop at a residual of 1e-13 of the
right-hand side, an error in the effects (and in the demeaned columns) of at most that
times the scaled Schur matrix's condition number (≤ 1e2 here): 1e-10 against the direct
solve. pyfixest: 1e-8 as in tests/test_absorb.py (its projections run to 1e-13).
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any

import numpy as np
import pytest

from torchlinreg import LinearRegression
from torchlinreg.errors import InputError, RankDeficientWarning

pd = pytest.importorskip("pandas")

RTOL = 1e-12


def _panel(seed: int, n: int = 1200, weighted: bool = True) -> Any:
    """An unbalanced panel, rows ordered so that firms 100–119 first appear in the last
    fifth (a level first seen late in the stream); a few zero weights."""
    rng = np.random.default_rng(seed)
    f1 = rng.choice(120, size=n, p=rng.dirichlet(np.ones(120)))
    late = f1 >= 100
    order = np.concatenate([np.flatnonzero(~late), np.flatnonzero(late)])
    f1 = f1[order]
    f2 = rng.integers(0, 12, n)
    df = pd.DataFrame({"f1": f1, "f2": f2})
    df["x1"] = rng.normal(size=n) + 0.05 * f1
    df["x2"] = rng.normal(size=n) + 0.2 * f2
    df["y"] = 2 * df.x1 - df.x2 + rng.normal(size=120)[f1] + rng.normal(size=12)[f2]
    df["y"] += 3.0 + rng.normal(size=n) * (1 + 0.5 * np.abs(df.x1))
    df["w"] = rng.uniform(0.2, 3.0, n) if weighted else 1.0
    if weighted:
        df.loc[[3, n // 2], "w"] = 0.0
    return df


def _chunks(df: Any, xs: list[str], factors: list[str], size: int, cluster: str | None) -> Any:
    """A function returning a fresh pass of (X, y, w, factors[, groups]) chunks."""

    def read() -> Any:
        for start in range(0, len(df), size):
            part = df.iloc[start : start + size]
            item = (part[xs].to_numpy(), part.y.to_numpy(), part.w.to_numpy(), part[factors])
            yield item if cluster is None else (*item, part[cluster].to_numpy())

    return read


def _streamed(df: Any, xs: list[str], factors: list[str], cov_type: str, size: int) -> Any:
    cluster = "f1" if cov_type == "cluster" else None
    source = _chunks(df, xs, factors, size, cluster)
    return LinearRegression(cov_type=cov_type).fit_chunks(source, feature_names=xs, absorb=factors)


def _in_memory(df: Any, xs: list[str], factors: list[str], cov_type: str) -> Any:
    groups = df.f1 if cov_type == "cluster" else None
    model = LinearRegression(cov_type=cov_type)
    return model.fit(df[xs], df.y, sample_weight=df.w, groups=groups, absorb=df[factors])


def _same(a: Any, b: Any, rtol: float) -> None:
    sa, sb = a.summary(), b.summary()
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=rtol)
    se = [[c.std_error for c in s.coefficients] for s in (sa, sb)]
    np.testing.assert_allclose(se[0], se[1], rtol=rtol)
    assert sa.df_resid == sb.df_resid
    for name in ("r_squared", "r_squared_within", "adj_r_squared"):
        assert getattr(sa, name) == pytest.approx(getattr(sb, name), rel=rtol)
    assert list(a.feature_names_in_) == list(b.feature_names_in_)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC1", "HC3", "cluster"])
@pytest.mark.parametrize("factors", [["f1"], ["f1", "f2"]])
@pytest.mark.parametrize("size", [97, 1200])
@pytest.mark.parametrize("weighted", [True, False])
def test_streamed_equals_in_memory(cov_type: str, factors: list[str], size: int,
                                   weighted: bool) -> None:  # fmt: skip
    df = _panel(1, weighted=weighted)
    xs = ["x1", "x2"]
    streamed = _streamed(df, xs, factors, cov_type, size)
    memory = _in_memory(df, xs, factors, cov_type)
    _same(streamed, memory, RTOL)
    a, b = streamed.absorbed_, memory.absorbed_
    assert (a.n_levels, a.nested, a.method, a.redundant_levels) == (
        b.n_levels, b.nested, b.method, b.redundant_levels
    )  # fmt: skip
    np.testing.assert_allclose(a.tss, b.tss, rtol=RTOL)
    assert streamed.intercept_ == 0.0 and streamed.n_samples_seen_ == len(df)


@pytest.mark.parametrize("cov_type,vcov", [("nonrobust", "iid"), ("HC1", "hetero"),
                                           ("cluster", {"CRV1": "f1"})])  # fmt: skip
def test_streamed_equals_pyfixest(cov_type: str, vcov: Any) -> None:
    pf = pytest.importorskip("pyfixest")
    from pyfixest.demeaners import MapDemeaner

    df = _panel(2)
    df = df[df.w > 0].reset_index(drop=True)  # pyfixest drops zero-weight rows
    model = _streamed(df, ["x1", "x2"], ["f1", "f2"], cov_type, 250)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = pf.feols("y ~ x1 + x2 | f1 + f2", df, vcov=vcov, weights="w", fixef_rm="none",
                       demeaner=MapDemeaner(fixef_tol=1e-13))  # fmt: skip
    s = model.summary()
    np.testing.assert_allclose(model.coef_, ref.coef().values, rtol=1e-8)
    np.testing.assert_allclose([c.std_error for c in s.coefficients], ref.se().values, rtol=1e-8)
    assert s.r_squared == pytest.approx(ref._r2, rel=1e-8)
    assert s.r_squared_within == pytest.approx(ref._r2_within, rel=1e-8)


def _two_large(seed: int, split: bool) -> Any:
    """Workers (~3 rows each) and firms: two factors of many levels. ``split``: two
    groups of workers that never meet at a firm (a panel in two connected parts)."""
    rng = np.random.default_rng(seed)
    n = 3000
    worker = rng.integers(0, 1000, n)
    firm = rng.integers(0, 150, n)
    if split:
        firm = np.where(worker < 500, firm % 75, 75 + firm % 75)
    df = pd.DataFrame({"f1": worker, "f2": firm})
    df["x1"] = rng.normal(size=n) + 0.01 * worker
    df["x2"] = rng.normal(size=n) + 0.02 * firm
    df["y"] = 5 + df.x1 - df.x2 + rng.normal(size=1000)[worker] + rng.normal(size=150)[firm]
    df["y"] += rng.normal(size=n)
    df["w"] = rng.uniform(0.5, 2.0, n)
    return df


@pytest.mark.parametrize("split", [False, True])
def test_conjugate_gradients_equal_the_direct_solve(split: bool, monkeypatch: Any) -> None:
    """Two large factors (the dense solve out of reach) are solved by conjugate
    gradients on the sparse cross-tabulation: equal to the exact solve."""
    import torchlinreg.solvers.absorb.projection as projection

    df = _two_large(3, split)
    memory = _in_memory(df, ["x1", "x2"], ["f1", "f2"], "cluster")
    assert memory.absorbed_.method == "direct"
    monkeypatch.setattr(projection, "MAX_REST_LEVELS", 10)  # 150 firms: "too many"
    streamed = _streamed(df, ["x1", "x2"], ["f1", "f2"], "cluster", 400)
    assert streamed.absorbed_.method == "cg" and streamed.absorbed_.redundant_levels is None
    assert memory.absorbed_.redundant_levels == (2 if split else 1)
    _same(streamed, memory, 1e-10)


def test_cross_tabulation_out_of_reach_uses_conjugate_gradients(monkeypatch: Any) -> None:
    """Where a dense cross-tabulation would exceed its cell limit, the sparse one is
    solved: equal to the in-memory alternating projections within their tolerance
    (1e-10 of each column's scale: 1e-7 relative to the coefficients here)."""
    import torchlinreg.solvers.absorb.demean as demean
    import torchlinreg.solvers.absorb.projection as projection

    df = _two_large(4, False)
    for module in (projection, demean):  # demean may hold its own name for the limit
        monkeypatch.setattr(module, "MAX_CELLS", 1000, raising=False)
    streamed = _streamed(df, ["x1", "x2"], ["f1", "f2"], "HC1", 700)
    memory = _in_memory(df, ["x1", "x2"], ["f1", "f2"], "HC1")
    assert (streamed.absorbed_.method, memory.absorbed_.method) == ("cg", "alternating")
    _same(streamed, memory, 1e-7)


def test_one_chunk_is_held_at_a_time() -> None:
    """Memory is bounded by the factors' levels: no pass keeps earlier chunks (each
    chunk's arrays are freed before the next is made)."""
    df = _panel(5)
    alive, most = [0], [0]

    def freed() -> None:
        alive[0] -= 1

    def read() -> Any:
        for start in range(0, len(df), 100):
            part = df.iloc[start : start + 100]
            X = part[["x1", "x2"]].to_numpy().copy()
            alive[0] += 1
            most[0] = max(most[0], alive[0])
            weakref.finalize(X, freed)
            yield X, part.y.to_numpy(), part.w.to_numpy(), part[["f1", "f2"]], part.f1.to_numpy()
            del X, part

    model = LinearRegression(cov_type="cluster").fit_chunks(read, absorb=["f1", "f2"])
    assert model.n_samples_seen_ == len(df)
    assert most[0] <= 2, most[0]  # the chunk being read, and at most the one before


def test_absorbed_regressor_is_dropped_and_named() -> None:
    df = _panel(6)
    df["size"] = np.sin(df.f1)  # constant within firms
    xs = ["x1", "size", "x2"]
    with pytest.warns(RankDeficientWarning, match="absorb size entirely"):
        streamed = _streamed(df, xs, ["f1", "f2"], "HC1", 300)
    with pytest.warns(RankDeficientWarning):
        memory = _in_memory(df, xs, ["f1", "f2"], "HC1")
    assert streamed.absorbed_.dropped == memory.absorbed_.dropped == ("size",)
    assert list(streamed.feature_names_in_) == ["x1", "x2"]
    _same(streamed, memory, RTOL)
    without = _streamed(df, ["x1", "x2"], ["f1", "f2"], "HC1", 300)
    np.testing.assert_allclose(streamed.coef_, without.coef_, rtol=RTOL)
    with pytest.raises(InputError, match=r"absorb every regressor \(size\)"):
        _streamed(df, ["size"], ["f1"], "nonrobust", 300)


def _item(df: Any) -> tuple[Any, ...]:
    return (df[["x1"]].to_numpy(), df.y.to_numpy(), None, df[["f1"]])


def test_bad_input_is_one_line() -> None:
    df = _panel(7, n=200)
    parts = [df.iloc[:100], df.iloc[100:]]
    model = LinearRegression()

    def refused(chunks: Any, message: str, **kw: Any) -> None:
        with pytest.raises(InputError, match=message) as info:
            model.fit_chunks(chunks, absorb=kw.pop("absorb", ["f1"]), **kw)
        assert len(str(info.value).splitlines()) == 1

    refused((_item(p) for p in parts), "one-shot iterator")
    refused([p[["x1"]].to_numpy() for p in parts], r"\(X, y, sample_weight, factors\)")
    refused([_item(p) for p in parts], "absorb= names", absorb=["firm"])
    refused([_item(p) for p in parts], "takes the factors' names", absorb="f1")
    refused([_item(p) for p in parts], "one process", distributed=True)
    refused([], "stream was empty")
    bad = df.copy()
    bad["f1"] = bad.f1.astype(object)
    bad.loc[130, "f1"] = None
    refused([_item(bad.iloc[:100]), _item(bad.iloc[100:])], "row 130's label is missing")
    shown = [0]

    def changing() -> Any:  # the second pass meets a firm the first did not
        shown[0] += 1
        yield _item(df if shown[0] == 1 else df.assign(f1=df.f1 + 1000))

    refused(changing, "not seen on the first pass")
    with pytest.raises(InputError, match="cov_type='HAC' with absorbed fixed effects"):
        LinearRegression(cov_type="HAC").fit_chunks([_item(df)], absorb=["f1"])
    with pytest.raises(InputError, match=r"\(X, y, sample_weight, factors, groups\)"):
        LinearRegression(cov_type="cluster").fit_chunks([_item(df)], absorb=["f1"])
