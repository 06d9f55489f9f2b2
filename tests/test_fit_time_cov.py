"""Robust covariance chosen at fit time: ``LinearRegression(cov_type=...)`` computes
the meat during the fit, so ``summary()`` needs no data and model files keep it.

Oracles: the two-pass ``summary(cov_type=..., X=, y=)`` (the same arithmetic on the
same validated rows: in memory the pass is the very same function over the very same
chunk, so equal to rounding of nothing: 1e-12 relative leaves only room for none),
statsmodels' ``OLS/WLS(...).fit(cov_type=...)`` (1e-8, as tests/test_inference.py's
robust checks: statsmodels forms pinv(X) in float64, ε·κ² ≈ 1e-14 here, far below),
and the in-memory fit for streamed fits (1e-10: a stream's pass forms S = QᵀQ and
corrects the meat by it, in memory S = I is taken where a probe bounds ‖S − I‖₂ by
1e-11 (stats/meat.py), which moves the meat by at most about twice that)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from torchlinreg import LinearRegression, Ridge
from torchlinreg.errors import InputError
from torchlinreg.persistence import load_model, save_model

sm = pytest.importorskip("statsmodels.api")

ROBUST = ["HC0", "HC1", "HC2", "HC3", "cluster"]


def data(k: int = 1, n: int = 240, seed: int = 5):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1, 4, 0.5] + [2, -1, 3]
    noise = rng.normal(size=(n, k)) * (1 + np.abs(X[:, :1]))  # heteroskedastic
    Y = 1 + X @ rng.normal(size=(3, k)) + noise
    w = rng.uniform(0.2, 3, size=n)
    g = rng.integers(0, 15, size=n)
    return X, (Y[:, 0] if k == 1 else Y), w, g


def summaries(s):  # type: ignore[no-untyped-def]
    return s if isinstance(s, list) else [s]


def rel(a, b) -> float:  # type: ignore[no-untyped-def]
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("cov_type", ROBUST)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("k", [1, 2])
def test_fit_time_equals_the_two_pass_summary(cov_type, weighted, k) -> None:
    X, y, w, g = data(k)
    sw = w if weighted else None
    groups = g if cov_type == "cluster" else None
    model = LinearRegression(cov_type=cov_type).fit(X, y, sw, groups)
    now = summaries(model.summary())
    again = summaries(model.summary(cov_type=cov_type, X=X, y=y, sample_weight=sw, groups=groups))
    assert len(now) == k
    for a, b in zip(now, again, strict=True):
        assert a.cov_type == cov_type
        assert rel(a.cov, b.cov) <= 1e-12
        assert a.f_statistic == pytest.approx(b.f_statistic, rel=1e-12)
    assert summaries(model.summary(cov_type=cov_type))[0].cov_type == cov_type


@pytest.mark.parametrize("cov_type", ROBUST)
@pytest.mark.parametrize("weighted", [False, True])
def test_fit_time_equals_statsmodels(cov_type, weighted) -> None:
    X, y, w, g = data()
    sw = w if weighted else None
    s = (
        LinearRegression(cov_type=cov_type)
        .fit(X, y, sw, g if cov_type == "cluster" else None)
        .summary()
    )
    Xc = sm.add_constant(X)
    ols = sm.WLS(y, Xc, weights=w) if weighted else sm.OLS(y, Xc)
    kw = {"cov_kwds": {"groups": g}} if cov_type == "cluster" else {}
    ref = ols.fit(cov_type=cov_type, **kw)
    assert rel(s.cov, ref.cov_params()) <= 1e-8
    assert rel([c.std_error for c in s.coefficients], ref.bse) <= 1e-8
    assert s.f_statistic == pytest.approx(float(np.squeeze(ref.fvalue)), rel=4e-8)


@pytest.mark.parametrize("cov_type", ["HC1", "HC3", "cluster"])
def test_streamed_fit_time_equals_in_memory(cov_type) -> None:
    X, y, w, g = data(2, n=300)
    cluster = cov_type == "cluster"
    memory = LinearRegression(cov_type=cov_type).fit(X, y, w, g if cluster else None)
    parts = [slice(i, i + 41) for i in range(0, 300, 41)]
    chunks = [(X[s], y[s], w[s], g[s]) if cluster else (X[s], y[s], w[s]) for s in parts]
    for source in (chunks, lambda: iter(chunks)):
        streamed = LinearRegression(cov_type=cov_type).fit_chunks(source)
        for a, b in zip(summaries(streamed.summary()), summaries(memory.summary()), strict=True):
            assert a.cov_type == cov_type
            assert rel(a.cov, b.cov) <= 1e-10


def test_model_file_keeps_it_and_files_without_it_load(tmp_path) -> None:
    X, y, w, g = data(2)
    model = LinearRegression(cov_type="cluster").fit(X, y, w, g)
    path = str(tmp_path / "m.safetensors")
    save_model(path, model)
    loaded = load_model(path).estimator
    assert loaded.cov_type == "cluster"
    for a, b in zip(loaded.summary(), model.summary(), strict=True):
        assert a.cov_type == "cluster" and rel(a.cov, b.cov) == 0
        assert a.to_dict() == b.to_dict()
    plain = str(tmp_path / "plain.safetensors")
    save_model(plain, LinearRegression().fit(X, y))  # no covariance: as older files
    again = load_model(plain).estimator
    assert summaries(again.summary())[0].cov_type == "nonrobust"
    with pytest.raises(InputError, match="not made at fit time"):
        again.summary(cov_type="HC3")


def test_cli_fit_keeps_hc3_for_summary_without_data(tmp_path, capsys) -> None:
    from torchlinreg.cli import main

    X, y, _, _ = data(n=150)
    path = tmp_path / "d.csv"
    rows = (f"{a},{b},{c},{t}" for (a, b, c), t in zip(X, y, strict=True))
    path.write_text("a,b,c,y\n" + "\n".join(rows))
    model = tmp_path / "m.safetensors"
    args = ["fit", str(path), "--target", "y", "--cov-type", "HC3", "-o", str(model), "--json"]
    assert main(args) == 0
    fitted = json.loads(capsys.readouterr().out)["summary"][0]
    assert main(["summary", str(model)]) == 0
    assert "(n = 150, covariance: HC3)" in capsys.readouterr().out
    loaded = load_model(str(model)).estimator
    s = loaded.summary()
    assert loaded.cov_type == "HC3" and s.cov_type == "HC3"
    assert [c.std_error for c in s.coefficients] == [c["std_error"] for c in fitted["coefficients"]]
    memory = LinearRegression(cov_type="HC3").fit(X, y).summary()
    assert rel(s.cov, memory.cov) <= 1e-10  # a streamed QR fit against an in-memory one


def test_cli_bad_cov_type_is_one_line_exit_2(tmp_path, capsys) -> None:
    from torchlinreg.cli import main

    path = tmp_path / "d.csv"
    path.write_text("a,y\n1,2\n2,3\n3,5\n")
    out = tmp_path / "m.safetensors"
    assert main(["fit", str(path), "--target", "y", "--cov-type", "HC9", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "HC9" in err and "HC3" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_bad_requests_are_one_line_errors() -> None:
    X, y, w, g = data(n=40)
    with pytest.raises(InputError, match="unknown cov_type 'HC9'; choose one of nonrobust, HC0"):
        LinearRegression(cov_type="HC9").fit(X, y)
    with pytest.raises(InputError, match="cov_type='cluster' needs the cluster labels"):
        LinearRegression(cov_type="cluster").fit(X, y)
    with pytest.raises(InputError, match="groups has 39 labels for 40 rows"):
        LinearRegression(cov_type="cluster").fit(X, y, groups=g[:-1])
    labels = g.astype(float)
    labels[[7, 9]] = np.nan
    with pytest.raises(InputError, match="cluster label of row 7 is missing .2 missing"):
        LinearRegression(cov_type="cluster").fit(X, y, groups=labels)
    names = np.array([f"g{v}" for v in g], dtype=object)
    names[3] = None
    with pytest.raises(InputError, match="cluster label of row 3 is missing"):
        LinearRegression(cov_type="cluster").fit(X, y, groups=names)
    with pytest.raises(InputError, match="groups= are cluster labels, for cov_type='cluster'"):
        LinearRegression(cov_type="HC3").fit(X, y, groups=g)
    with pytest.raises(InputError, match="Ridge has no robust covariance"):
        Ridge().fit(X, y, groups=g)
    model = LinearRegression(cov_type="HC3").fit(X, y)
    with pytest.raises(InputError, match="this model holds cov_type='HC3'"):
        model.summary(cov_type="HC1")
    with pytest.raises(InputError, match="partial_fit keeps no rows"):
        LinearRegression(cov_type="HC3").partial_fit(X, y)
    with pytest.raises(InputError, match="one-shot iterator"):
        LinearRegression(cov_type="HC3").fit_chunks(iter([(X, y)]))
    with pytest.raises(InputError, match="needs the cluster labels with every chunk"):
        LinearRegression(cov_type="cluster").fit_chunks([(X, y)])
    with pytest.raises(InputError, match="row 47 is missing"):
        LinearRegression(cov_type="cluster").fit_chunks([(X, y, None, g), (X, y, None, labels)])


def test_a_failed_robust_pass_leaves_no_stale_covariance() -> None:
    X, y, w, g = data(n=60)
    model = LinearRegression(cov_type="HC3").fit(X, y)
    model.set_params(cov_type="nonrobust").fit(X, y)
    assert model.summary().cov_type == "nonrobust"
    with pytest.raises(InputError, match="not made at fit time"):
        model.summary(cov_type="HC3")


def fit_on_rank(rank, world, cov_type, split, streamed):  # type: ignore[no-untyped-def]
    """This rank's share of ``data(2)``: the fit-time summary and the two-pass one."""
    X, y, w, g = data(2)
    cut = int(len(X) * split)
    rows = slice(0, cut) if rank == 0 else slice(cut, len(X))
    Xr, yr, wr, gr = X[rows], y[rows], w[rows], g[rows]
    groups = gr if cov_type == "cluster" else None
    model = LinearRegression(cov_type=cov_type)
    if streamed:
        chunk = (Xr, yr, wr, gr) if cov_type == "cluster" else (Xr, yr, wr)
        model.fit_chunks([chunk] if len(Xr) else [], distributed=True)
    else:
        model.fit(Xr, yr, wr, groups, distributed=True)
    now = [s.cov for s in model.summary()]
    # An empty stream says nothing of weights: the two-pass summary then takes none.
    sw = wr if len(Xr) or not streamed else None
    again = [s.cov for s in model.summary(cov_type=cov_type, X=Xr, y=yr, sample_weight=sw,
                                          groups=groups)]  # fmt: skip
    return now, again


def test_distributed_fit_time_equals_one_process() -> None:
    from .ranks import Ranks

    ranks = Ranks(2)  # one group for every case: starting the ranks costs seconds
    try:
        cases = [("HC3", 0.4, False), ("cluster", 0.0, False), ("HC3", 0.4, True),
                 ("cluster", 0.0, True)]  # fmt: skip
        for cov_type, split, streamed in cases:
            X, y, w, g = data(2)
            whole = LinearRegression(cov_type=cov_type).fit(
                X, y, w, g if cov_type == "cluster" else None
            )
            expected = [s.cov for s in whole.summary()]
            for result in ranks.run(fit_on_rank, cov_type, split, streamed):
                assert not hasattr(result, "trace"), result
                now, again = result
                for a, b, c in zip(now, again, expected, strict=True):
                    assert rel(a, b) <= 1e-12  # the same pass, collectively
                    # Ranks' sums added in another order, S formed (streamed) or probed.
                    assert rel(a, c) <= 1e-10
    finally:
        ranks.close()
