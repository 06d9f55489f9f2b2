"""Cross-validation on two gloo ranks (tests/ranks.py) against one process.

Oracle: the one-process fit of the ranks' rows concatenated in rank order. The folds
must be the same exactly (a row's fold is its label or a function of its global
position, never of the rank holding it); the chosen alpha the same; every rank the
identical model.

The curves may differ by rounding only: a fold's state on two ranks is the merge of two
R factors where one process folds the rows at once, and Householder QR and its merges
are backward stable, so each fold's R is the exact factor of rows perturbed by
c·ε‖rows‖. A curve value is a quadratic form ‖R_test·v‖²/Σw with v = [b; β; −1] from
the training R; its relative change is bounded by about κ(train)·ε·‖R‖²‖v‖²/‖Rv‖²
(κ for the slopes, the last ratio for the cancellation in a residual). The designs
here assert κ < 10 and ‖R‖²‖v‖²/‖Rv‖² < 25 (R of the shifted rows, as the state holds
them; the noise is not small beside the signal), so the bound is 10·25·2.2e-16 ≈ 5.5e-14
times a constant of order √m (m = p + 2 columns) for the Householder steps: the
tolerance CURVE = 1e-12 relative to the curve's largest value, with the lasso solved
to a duality gap of 1e-13 so that its iterations stop at rounding, not at ``tol``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from torchlinreg.models._folds import hash_folds, hash_rows, kfold_labels
from torchlinreg.models.cv import LassoCV, RidgeCV

from .ranks import Failed, Ranks, check

WORLD = 2
CURVE = 1e-12
KAPPA_MAX, CANCEL_MAX = 10.0, 25.0  # measured: κ ≈ 6.7, ratio ≈ 18
TIGHT = {"tol": 1e-13, "max_iter": 100_000}
SPLITS = {"uneven": 0.3, "empty rank": 0.0}


@pytest.fixture(scope="module")
def ranks():  # type: ignore[no-untyped-def]
    group = Ranks(WORLD)
    yield group
    group.close()


def data(seed: int = 0, n: int = 301, p: int = 5):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * [1.0, 2.0, 0.5, 3.0, 1.0][:p] + np.arange(p)
    y = X @ rng.normal(size=p) * 0.5 + 2.0 + rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, size=n)
    labels = rng.choice(["a", "b", "c", "d"], size=n)
    return X, y, w, labels


def share(n: int, rank: int, split: float) -> slice:
    cut = int(round(n * split))
    return slice(0, cut) if rank == 0 else slice(cut, n)


def make(kind: str):  # type: ignore[no-untyped-def]
    if kind == "ridge":
        return RidgeCV([0.01, 0.3, 3.0, 30.0, 300.0], cv=4)
    if kind == "ridge shuffled":
        return RidgeCV([0.01, 0.3, 3.0, 30.0, 300.0], cv=3, random_state=7)
    return LassoCV(alphas=30, cv=5, random_state=3, **TIGHT)


def attributes(model) -> dict:  # type: ignore[no-untyped-def]
    return {k: getattr(model, k) for k in ("alpha_", "alphas_", "mse_path_", "coef_",
            "intercept_", "best_score_", "n_folds_", "n_samples_seen_")}  # fmt: skip


# -- what each rank runs ------------------------------------------------------------------


def fit_share(rank, world, kind, split, with_labels):  # type: ignore[no-untyped-def]
    X, y, w, labels = data()
    rows = share(len(y), rank, split)
    folds = labels[rows] if with_labels else None
    model = make(kind).fit(X[rows], y[rows], w[rows], folds=folds, distributed=True)
    return attributes(model)


def chunks_of(X, y, w, labels=None, size=41):  # type: ignore[no-untyped-def]
    out = []
    for start in range(0, len(y), size):
        rows = slice(start, start + size)
        item = [X[rows], y[rows], w[rows]]
        if labels is not None:
            item.append(labels[rows])
        out.append(tuple(item))
    return out


def stream_share(rank, world, kind, split, with_labels):  # type: ignore[no-untyped-def]
    X, y, w, labels = data()
    rows = share(len(y), rank, split)
    items = chunks_of(X[rows], y[rows], w[rows], labels[rows] if with_labels else None)
    model = make(kind).fit_chunks(items, folds="chunks" if with_labels else None, distributed=True)
    return attributes(model)


class Halves:
    """A splitter (scikit-learn's protocol), without importing scikit-learn on the ranks."""

    def split(self, X, y=None, groups=None):  # type: ignore[no-untyped-def]
        half = len(X) // 2
        rows = np.arange(len(X))
        yield rows[half:], rows[:half]
        yield rows[:half], rows[half:]


def refused(rank, world, case):  # type: ignore[no-untyped-def]
    X, y, w, labels = data(n=40)
    rows = share(len(y), rank, 0.5)
    Xr, yr = X[rows], y[rows]
    if case == "splitter":
        RidgeCV(cv=Halves()).fit(Xr, yr, distributed=True)
    elif case == "index pairs":
        RidgeCV(cv=[(np.arange(10), np.arange(10, 20))] * 2).fit(Xr, yr, distributed=True)
    elif case == "groups":
        RidgeCV(cv=3).fit(Xr, yr, groups=labels[rows], distributed=True)
    elif case == "one-shot stream":
        RidgeCV(cv=3).fit_chunks(iter([(Xr, yr)]), distributed=True)
    elif case == "other columns":
        RidgeCV(cv=3).fit(Xr if rank == 0 else Xr[:, :3], yr, distributed=True)
    elif case == "other parameters":
        RidgeCV(cv=3 + rank).fit(Xr, yr, distributed=True)
    elif case == "missing label on rank 1":
        f = labels[rows].astype(object)
        if rank == 1:
            f[4] = None
        RidgeCV().fit(Xr, yr, folds=f, distributed=True)
    elif case == "one level":
        RidgeCV().fit(Xr, yr, folds=np.full(len(yr), "a"), distributed=True)
    elif case == "too few rows":
        RidgeCV(cv=5).fit(X[:2] if rank == 0 else X[:1], y[:2] if rank == 0 else y[:1],
                          distributed=True)  # fmt: skip
    return "no error"


def cli_fit(rank, world, argv):  # type: ignore[no-untyped-def]
    """``main(argv)`` as under torchrun (the group already joined, as a program that
    embeds the command line joins it): the report on standard output."""
    import contextlib
    import io

    from torchlinreg.cli import main

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world))
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
            os.environ.pop(name, None)
    return code, out.getvalue(), err.getvalue()


# -- the oracle ---------------------------------------------------------------------------


def one_process(kind: str, with_labels: bool, streamed: bool = False):  # type: ignore[no-untyped-def]
    X, y, w, labels = data()
    model = make(kind)
    if streamed:
        items = chunks_of(X, y, w, labels if with_labels else None, size=50)
        return model.fit_chunks(items, folds="chunks" if with_labels else None)
    return model.fit(X, y, w, folds=labels if with_labels else None)


def assert_design_bounds() -> None:
    """The conditioning the tolerance is argued from: κ of the centred, weighted design
    of every training fold and the cancellation of the residuals on the test folds."""
    X, y, w, labels = data()
    for k in np.unique(labels):
        train = labels != k
        sw = np.sqrt(w[train])[:, None]
        Xc = X[train] - np.average(X[train], axis=0, weights=w[train])
        assert np.linalg.cond(sw * Xc) < KAPPA_MAX
        test = ~train
        beta, *_ = np.linalg.lstsq(sw * Xc, np.sqrt(w[train]) * y[train], rcond=None)
        # R is the factor of the rows shifted by the fold's means (the state's shift)
        x0, y0 = X[test].mean(0), y[test].mean()
        M = np.sqrt(w[test])[:, None] * np.c_[np.ones(test.sum()), X[test] - x0, y[test] - y0]
        b = np.average(y[train] - X[train] @ beta, weights=w[train])
        v = np.r_[b - y0 + x0 @ beta, beta, -1.0]
        ratio = np.linalg.norm(M, 2) ** 2 * (v @ v) / np.sum((M @ v) ** 2)
        assert ratio < CANCEL_MAX, ratio


def same_on_every_rank(results: list[dict]) -> dict:
    check(results)
    for other in results[1:]:
        for key, value in results[0].items():
            np.testing.assert_array_equal(np.asarray(other[key]), np.asarray(value), key)
    return results[0]


def assert_matches(ours: dict, ref, kind: str) -> None:  # type: ignore[no-untyped-def]
    assert ours["n_folds_"] == ref.n_folds_
    assert ours["n_samples_seen_"] == ref.n_samples_seen_
    np.testing.assert_allclose(ours["alphas_"], ref.alphas_, rtol=CURVE)
    scale = np.abs(ref.mse_path_).max()
    assert np.abs(ours["mse_path_"] - ref.mse_path_).max() <= CURVE * scale
    assert ours["alpha_"] == pytest.approx(ref.alpha_, rel=CURVE)
    assert list(ref.alphas_).index(ref.alpha_) == int(np.argmin(np.abs(ours["alphas_"]
                                                                 - ours["alpha_"])))  # fmt: skip
    # the refit: ridge is a solve (κ·ε), the lasso a path stopped at a 1e-13 gap
    rtol = 1e-10 if kind.startswith("ridge") else 1e-8
    np.testing.assert_allclose(ours["coef_"], ref.coef_, rtol=rtol, atol=rtol)
    assert ours["intercept_"] == pytest.approx(ref.intercept_, rel=rtol, abs=rtol)


# -- tests --------------------------------------------------------------------------------


def test_the_designs_meet_the_bounds_the_tolerance_is_argued_from():
    assert_design_bounds()


@pytest.mark.parametrize("split", list(SPLITS))
@pytest.mark.parametrize(
    ("kind", "with_labels"),
    [("ridge", False), ("ridge shuffled", False), ("ridge", True), ("lasso", False)],
)
def test_in_memory_on_two_ranks_equals_one_process(ranks, kind, with_labels, split):
    ours = same_on_every_rank(ranks.run(fit_share, kind, SPLITS[split], with_labels))
    ref = one_process(kind, with_labels)
    assert_matches(ours, ref, kind)


def test_in_memory_folds_are_kfold_of_the_global_row_order():
    """The folds themselves: a fold that held other rows would change the curve by far
    more than rounding; checked directly too, on each rank's share of the labels."""
    from torchlinreg.models._folds import kfold_share

    n = 301
    for seed in (None, 7):
        full = kfold_labels(n, 4, seed)
        for split in SPLITS.values():
            parts = [kfold_share(n, 4, share(n, r, split).indices(n)[0],
                                 len(range(*share(n, r, split).indices(n))), seed)
                     for r in range(WORLD)]  # fmt: skip
            np.testing.assert_array_equal(np.concatenate(parts), full)


@pytest.mark.parametrize("split", list(SPLITS))
@pytest.mark.parametrize(("kind", "with_labels"), [("ridge", True), ("lasso", False)])
def test_streams_on_two_ranks_equal_one_process(ranks, kind, with_labels, split):
    """Hashed folds of the global positions (each rank's stream counted first), or the
    labels with each chunk; chunked otherwise than the one-process stream."""
    ours = same_on_every_rank(ranks.run(stream_share, kind, SPLITS[split], with_labels))
    ref = one_process(kind, with_labels, streamed=True)
    assert_matches(ours, ref, kind)
    if not with_labels:  # the hash of the global positions, as one process's in-memory fit
        X, y, w, _ = data()
        mem = make(kind).fit(X, y, w, folds=hash_folds(0, len(y), 5, seed=3))
        np.testing.assert_allclose(ours["mse_path_"], mem.mse_path_, rtol=1e-10)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("splitter", "splitters and (train, test) index arrays"),
        ("index pairs", "splitters and (train, test) index arrays"),
        ("groups", "groups= are for a splitter"),
        ("one-shot stream", "not a one-shot iterator"),
        ("other columns", "rank 1 of 2 has other columns"),
        ("other parameters", "rank 1 of 2 has other parameters"),
        ("missing label on rank 1", "rank 1 of 2: folds holds missing labels: the fold of row 24"),
        ("one level", "1 level"),
        ("too few rows", "n_samples=3"),
    ],
)
def test_bad_input_stops_every_rank_with_one_message(ranks, case, message):
    results = ranks.run(refused, case)
    for r in results:
        assert isinstance(r, Failed), r
        assert r.kind == "InputError", r.trace
        assert message in r.message and "\n" not in r.message


def test_cli_fit_cv_under_torchrun_equals_one_process(ranks, tmp_path, capsys):
    """``fit --cv 5 --lasso-path`` of a Parquet file in two shares of row groups, a
    row with a missing value dropped from each: hashed folds of the file's row numbers,
    as in one process; and a fold column. The hashed folds are checked directly too:
    the one-process library fit with the hash of the kept rows' file numbers."""
    import json

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from torchlinreg.cli import main
    from torchlinreg.persistence import read_model

    X, y, w, labels = data()
    X = X.copy()
    X[[30, 250], 1] = np.nan  # dropped, one in each share: later rows keep their numbers
    table = pa.table({**{f"x{j}": X[:, j] for j in range(X.shape[1])}, "w": w,
                      "fold": labels, "y": y})  # fmt: skip
    path = tmp_path / "d.parquet"
    pq.write_table(table, path, row_group_size=60)
    model, first = tmp_path / "two.safetensors", None
    base = ["fit", str(path), "--target", "y", "--weights", "w", "--missing", "drop", "--json"]
    for extra in (["--cv", "5", "--lasso-path", "--seed", "4"],
                  ["--cv", "4", "--ridge-path", "--fold-column", "fold"]):  # fmt: skip
        results = check(ranks.run(cli_fit, [*base, *extra, "-o", str(model)]))
        assert [code for code, _, _ in results] == [0, 0], results[0][2]
        assert results[1][1:] == ("", "")  # rank 1 prints nothing
        assert read_model(str(model)).meta["info"]["ranks"] == 2
        assert main([*base, *extra]) == 0
        ref = json.loads(capsys.readouterr().out)["cv"]
        ours = json.loads(results[0][1])["cv"]
        first = first or ours
        assert ours["folds"] == ref["folds"] and ours["n_folds"] == ref["n_folds"]
        path_ref, path_ours = np.array(ref["mse_path"]), np.array(ours["mse_path"])
        assert np.abs(path_ours - path_ref).max() <= CURVE * np.abs(path_ref).max()
        assert ours["alpha"] == pytest.approx(ref["alpha"], rel=CURVE)
    kept = ~np.isnan(X[:, 1])
    folds = hash_rows(np.flatnonzero(kept), 5, seed=4)
    lib = LassoCV().fit(X[kept], y[kept], w[kept], folds=folds)  # the CLI's tol, 1e-4
    path_cli = np.array(first["mse_path"])
    # the same folds differ by rounding (seen: 7e-16); the hash of the kept rows'
    # positions in the stream instead of their file numbers differs by 0.17
    assert np.abs(path_cli - lib.mse_path_).max() <= 1e-8 * np.abs(lib.mse_path_).max()
