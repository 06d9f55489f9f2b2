"""Exact fits on two gloo ranks (tests/ranks.py) against the same fit in one process.

Oracle: the single-process fit and summary of all the rows. Each rank fits its share,
split unevenly (one rank may hold no rows); every rank must hold the identical model,
equal to the single-process one to 1e-12 relative (merging the two states is another
order of the same Householder QR: the difference is rounding of a well-conditioned
problem), and every summary statistic to 1e-10 (standard errors inherit the solve's
rounding; p-values move with them by hazard · t · δt, which stays below that here).
"""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest

from torchlinreg import InputError, LinearRegression, Ridge

from .ranks import Failed, Ranks, check
from .test_nist import NAMES, REQUIRED, load, lre

WORLD = 2
COV_TYPES = ["nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster"]


@pytest.fixture(scope="module")
def ranks():  # type: ignore[no-untyped-def]
    group = Ranks(WORLD)
    yield group
    group.close()


# -- data, made the same way in the test and on every rank --------------------------


def design(case: str):  # type: ignore[no-untyped-def]
    """(X, y, w, groups, fit_intercept) for a named case."""
    rng = np.random.default_rng(sum(map(ord, case)))
    n, p = 240, 4
    X = rng.normal(size=(n, p)) * [1.0, 3.0, 0.5, 10.0] + [0.0, 5.0, -2.0, 100.0]
    beta = rng.normal(size=p)
    noise = rng.normal(size=n) * (1 + np.abs(X[:, 0]))
    y = X @ beta + 1.5 + noise
    w = None
    intercept = True
    if "weights" in case:
        w = rng.uniform(0.2, 3.0, size=n)
        w[::17] = 0.0  # zero-weight rows are rows, not observations
    if "no-intercept" in case:
        intercept = False
    if "multi" in case:
        y = np.c_[y, X @ rng.normal(size=p) - 4 + rng.normal(size=n)]
    if "deficient" in case:
        X = np.c_[X, X[:, 0] + 2 * X[:, 1]]
    groups = rng.integers(0, 12, size=n)  # every cluster has rows on both ranks
    return X, y, w, groups, intercept


SPLITS = {"even": 0.5, "uneven": 0.15, "empty rank": 0.0}


def share(n: int, rank: int, split: float) -> slice:
    cut = int(round(n * split))
    return slice(0, cut) if rank == 0 else slice(cut, n)


def estimator(case: str, intercept: bool):  # type: ignore[no-untyped-def]
    if "ridge" in case:
        return Ridge(alpha=2.5, fit_intercept=intercept)
    return LinearRegression(fit_intercept=intercept)


def labelled(g, case: str, rank: int):  # type: ignore[no-untyped-def]
    """Cluster labels as the case gives them: numbers (NumPy integers on rank 0, Python
    ints on rank 1: equal labels are one cluster) or text."""
    if "text labels" in case:
        return np.array([f"firm {v}" for v in g], dtype=object)
    return g if rank == 0 else np.array(g.tolist(), dtype=object)


def intervals(model, X, case):  # type: ignore[no-untyped-def]
    """Confidence and prediction bounds and standard errors (full-rank least squares)."""
    if "ridge" in case or "deficient" in case:
        return None
    out = []
    for kind in ("confidence", "prediction"):
        p = model.predict(X, interval=kind)
        out += [p.lower, p.upper, p.se]
    return out


def summaries_of(model, cov_type, X, y, w, g, **kwargs):  # type: ignore[no-untyped-def]
    s = model.summary(
        cov_type=cov_type,
        **({} if cov_type == "nonrobust" else {"X": X, "y": y, "sample_weight": w}),
        **({"groups": g} if cov_type == "cluster" else {}),
        **kwargs,
    )
    return [x.to_dict() for x in (s if isinstance(s, list) else [s])]


# -- what each rank runs ------------------------------------------------------------


def fit_share(rank, world, case, split, cov_types):  # type: ignore[no-untyped-def]
    X, y, w, g, intercept = design(case)
    rows = share(len(X), rank, split)
    wr = None if w is None else w[rows]
    g = labelled(g, case, rank)
    model = estimator(case, intercept).fit(X[rows], y[rows], wr, distributed=True)
    out = {"coef": model.coef_, "intercept": model.intercept_, "rank": model.rank_}
    # The process group stays behind: the model pickles, and its copy predicts alike.
    copy = pickle.loads(pickle.dumps(model))
    out["copy predicts"], out["predicts"] = copy.predict(X[:5]), model.predict(X[:5])
    out["summaries"] = {c: summaries_of(model, c, X[rows], y[rows], wr, g[rows]) for c in cov_types}
    # The copy has forgotten its group and its share: given both again, the same summary.
    out["copy summary"] = summaries_of(copy, "HC1", X[rows], y[rows], wr, g[rows], distributed=True)
    out["interval"] = intervals(model, X[:5], case)
    return out


def fit_nist(rank, world, name, split):  # type: ignore[no-untyped-def]
    X, y, intercept, _ = load(name)
    rows = share(len(X), rank, split)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LinearRegression(fit_intercept=intercept).fit(X[rows], y[rows], distributed=True)
    return np.r_[model.intercept_, model.coef_] if intercept else model.coef_


def fit_with_bad_row(rank, world):  # type: ignore[no-untyped-def]
    X, y, *_ = design("plain")
    rows = share(len(X), rank, 0.5)
    X = X[rows].copy()
    if rank == 1:
        X[3, 2] = np.nan
    LinearRegression().fit(X, y[rows], distributed=True)


def fit_with_other_columns(rank, world):  # type: ignore[no-untyped-def]
    X, y, *_ = design("plain")
    rows = share(len(X), rank, 0.5)
    X = X[rows] if rank == 0 else X[rows, :3]
    LinearRegression().fit(X, y[rows], distributed=True)


def fit_streamed(rank, world, case, split):  # type: ignore[no-untyped-def]
    X, y, w, _, intercept = design(case)
    rows = share(len(X), rank, split)
    Xr, yr = X[rows], y[rows]
    wr = None if w is None else w[rows]
    chunks = [
        (Xr[i : i + 37], yr[i : i + 37]) + (() if wr is None else (wr[i : i + 37],))
        for i in range(0, len(Xr), 37)
    ]
    model = LinearRegression(fit_intercept=intercept, refine=True)
    model.fit_chunks(chunks, distributed=True)
    return model.coef_, model.intercept_, model.refined_


# -- the tests ----------------------------------------------------------------------

CASES = [
    "plain", "weights", "no-intercept", "multi", "multi weights", "deficient", "ridge",
    "text labels",
]  # fmt: skip


def reference(case: str, cov_types: list[str]):  # type: ignore[no-untyped-def]
    X, y, w, g, intercept = design(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = estimator(case, intercept).fit(X, y, w)
        out = {"coef": model.coef_, "intercept": model.intercept_, "rank": model.rank_}
        g = labelled(g, case, 0)
        out["summaries"] = {c: summaries_of(model, c, X, y, w, g) for c in cov_types}
        out["interval"] = intervals(model, X[:5], case)
    return out


def assert_statistics_equal(ours, theirs, rtol: float, where: str = "") -> None:  # type: ignore[no-untyped-def]
    """Every number in two summary dicts equal to ``rtol`` (relative to the entry, or to
    1 for entries near 0); text and counts exactly."""
    if where.endswith(".notes") and "rounding" in where:
        assert len(ours) == len(theirs), where  # they quote the condition number
    elif isinstance(theirs, dict):
        assert ours.keys() == theirs.keys(), where
        for key in theirs:
            assert_statistics_equal(ours[key], theirs[key], rtol, f"{where}.{key}")
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert_statistics_equal(a, b, rtol, f"{where}[{i}]")
    elif isinstance(theirs, float) and not isinstance(theirs, bool):
        assert isinstance(ours, float), where
        if math.isnan(theirs):
            assert math.isnan(ours), where
        elif "condition_number" in where and theirs > 1e15:
            assert ours > 1e15, where  # rank deficient: the size of rounding, not a number
        else:
            assert ours == pytest.approx(theirs, rel=rtol, abs=rtol * 1e-3), where
    else:
        assert ours == theirs, where


@pytest.mark.parametrize("split", list(SPLITS))
@pytest.mark.parametrize("case", CASES)
def test_distributed_fit_equals_one_process(ranks, case, split) -> None:
    cov_types = COV_TYPES if split != "even" else ["nonrobust", "HC1"]
    results = check(ranks.run(fit_share, case, SPLITS[split], cov_types))
    expected = reference(case, cov_types)
    for r in results[1:]:  # the identical model on every rank
        np.testing.assert_array_equal(r["coef"], results[0]["coef"])
        np.testing.assert_array_equal(r["intercept"], results[0]["intercept"])
    ours = results[0]
    assert ours["rank"] == expected["rank"]
    np.testing.assert_array_equal(ours["copy predicts"], ours["predicts"])
    scale = np.abs(expected["coef"]).max()
    np.testing.assert_allclose(ours["coef"], expected["coef"], rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(ours["intercept"], expected["intercept"], rtol=1e-12, atol=1e-12)
    for cov in cov_types:
        for r in results:
            label = f"{cov} rounding" if "deficient" in case else cov
            assert_statistics_equal(r["summaries"][cov], expected["summaries"][cov], 1e-10, label)
            if cov == "HC1":
                assert_statistics_equal(r["copy summary"], expected["summaries"][cov], 1e-10, label)
    if expected["interval"] is not None:
        for a, b in zip(ours["interval"], expected["interval"], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_nist_split_unevenly_keeps_the_certified_digits(ranks, name) -> None:
    _, _, _, certified = load(name)
    for split in (0.3, 0.0):
        results = check(ranks.run(fit_nist, name, split))
        np.testing.assert_array_equal(results[0], results[1])
        assert lre(results[0], np.asarray(certified["coef"])) >= REQUIRED.get(name, 10.0)


def test_bad_data_on_one_rank_stops_every_rank_with_its_message(ranks) -> None:
    results = ranks.run(fit_with_bad_row)
    for r in results:
        assert isinstance(r, Failed) and r.kind == "InputError", r
        assert r.message.startswith("rank 1 of 2: "), r.message
        assert "NaN at X[3, 2]" in r.message, r.message


def test_ranks_with_other_columns_are_refused_on_every_rank(ranks) -> None:
    results = ranks.run(fit_with_other_columns)
    for r in results:
        assert isinstance(r, Failed) and r.kind == "InputError", r
        assert "rank 1 of 2 has other features than rank 0" in r.message, r.message


@pytest.mark.parametrize("case", ["plain", "weights", "multi"])
def test_streamed_distributed_fit_refines_and_equals_one_process(ranks, case) -> None:
    results = check(ranks.run(fit_streamed, case, 0.4))
    X, y, w, _, intercept = design(case)
    expected = LinearRegression(fit_intercept=intercept, refine=True).fit(X, y, w)
    for coef, b, refined in results:
        assert refined
        np.testing.assert_allclose(coef, expected.coef_, rtol=1e-13)
        np.testing.assert_allclose(b, expected.intercept_, rtol=1e-13)


def test_distributed_without_a_process_group_is_refused() -> None:
    X, y, *_ = design("plain")
    with pytest.raises(InputError, match="torch.distributed initialised"):
        LinearRegression().fit(X, y, distributed=True)
    with pytest.raises(InputError, match="distributed must be False, True"):
        LinearRegression().fit(X, y, distributed="yes")


def fit_quietly_or_not(rank, world, case):  # type: ignore[no-untyped-def]
    X, y, w, _, intercept = design(case)
    rows = share(len(X), rank, 0.3)
    LinearRegression(fit_intercept=intercept).fit(
        X[rows], y[rows], None if w is None else w[rows], distributed=True
    )


@pytest.mark.parametrize("case", ["deficient", "plain"])
def test_every_rank_gives_the_warnings_of_one_process(ranks, case) -> None:
    X, y, w, _, intercept = design(case)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LinearRegression(fit_intercept=intercept).fit(X, y, w)
    expected = [(type(m.message).__name__, str(m.message)) for m in caught]
    assert bool(expected) == (case == "deficient")
    for result in ranks.run_with_warnings(fit_quietly_or_not, case):
        assert not isinstance(result, Failed), result
        seen = result[1]
        assert [kind for kind, _ in seen] == [kind for kind, _ in expected]


def fit_large(rank, world, offset):  # type: ignore[no-untyped-def]
    X, y = large_design(offset)
    rows = share(len(X), rank, 0.5)
    model = LinearRegression().fit(X[rows], y[rows], distributed=True)
    return model.coef_, model.intercept_, model.solver_used_


def large_design(offset: float):  # type: ignore[no-untyped-def]
    """Enough rows for the Gram path; a column offset of 1e4 makes κ² ε too large for
    the normal equations of all the rows."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(80000, 3)) + [offset, 0.0, 0.0]
    return X, X @ [1.0, -2.0, 0.5] + 3 + rng.normal(size=80000)


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_large_ranks_use_the_normal_equations_only_where_one_process_would(ranks, offset):
    """Each rank builds its state from its Gram matrix where that is accurate for its
    rows; if it is not for the merged problem every rank folds again by QR."""
    X, y = large_design(offset)
    expected = LinearRegression().fit(X, y)
    for coef, intercept, solver in check(ranks.run(fit_large, offset)):
        assert solver == expected.solver_used_
        np.testing.assert_allclose(coef, expected.coef_, rtol=1e-11)
        np.testing.assert_allclose(intercept, expected.intercept_, rtol=1e-11)


def stream_read_once_on_rank_1(rank, world):  # type: ignore[no-untyped-def]
    """Rank 1's stream is a function returning the same iterator each call: its second
    pass (for refinement) reads nothing, where it read rows before."""
    X, y, *_ = design("plain")
    rows = share(len(X), rank, 0.5)
    chunks = [(X[rows][i : i + 40], y[rows][i : i + 40]) for i in range(0, 120, 40)]
    shared = iter(chunks)
    source = (lambda: shared) if rank == 1 else chunks
    LinearRegression(refine=True).fit_chunks(source, distributed=True)


def test_a_rank_whose_second_pass_reads_nothing_stops_every_rank(ranks) -> None:
    for r in ranks.run(stream_read_once_on_rank_1):
        assert isinstance(r, Failed) and r.kind == "InputError", r
        assert r.message.startswith("rank 1 of 2: the data changed between passes"), r.message


def fit_overflowing(rank, world, where):  # type: ignore[no-untyped-def]
    X, y, *_ = design("plain")
    rows = share(len(X), rank, 0.5)
    X = X[rows].copy()
    if where == "one rank" and rank == 1:
        X[:3, 0] = 1.6e308  # its own sums of squares overflow
    if where == "the merge":
        X[:2, 0] = 1.0e308  # each rank's column norm is finite (1.4e308), their total not
    LinearRegression().fit(X, y[rows], distributed=True)


@pytest.mark.parametrize("where", ["one rank", "the merge"])
def test_overflow_stops_every_rank_with_the_one_process_message(ranks, where) -> None:
    X, y, *_ = design("plain")
    for r in ranks.run(fit_overflowing, where):
        assert isinstance(r, Failed) and r.kind == "InputError", r
        assert "the sums of squares overflow float64" in r.message, r.message
        assert r.message.startswith("rank 1 of 2: ") == (where == "one rank"), r.message


def fit_with_other_parameters(rank, world, name, value):  # type: ignore[no-untyped-def]
    X, y, *_ = design("plain")
    rows = share(len(X), rank, 0.5)
    model = LinearRegression()
    if rank == 1:
        model.set_params(**{name: value})
    model.fit(X[rows], y[rows], distributed=True)


@pytest.mark.parametrize(("name", "value"), [("fit_intercept", False), ("refine", True)])
def test_ranks_with_other_parameters_are_refused_on_every_rank(ranks, name, value) -> None:
    for r in ranks.run(fit_with_other_parameters, name, value):
        assert isinstance(r, Failed) and r.kind == "InputError", r
        assert "rank 1 of 2 has other parameters than rank 0" in r.message, r.message
        assert name in r.message


def test_metrics_of_ranks_shares_merge_into_those_of_all_rows() -> None:
    """evaluate under torchrun merges each rank's StreamingMetrics: against scikit-learn's
    metrics of all the rows (offset data, where Σy² − (Σy)²/n would cancel), with an
    empty share among them."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    from torchlinreg.jobs.predict import merged_metrics
    from torchlinreg.stats.metrics import StreamingMetrics

    rng = np.random.default_rng(11)
    y = 1e8 + rng.normal(size=(300, 2))
    pred = y + rng.normal(scale=0.3, size=y.shape)
    parts = []
    for rows in (slice(0, 70), slice(70, 70), slice(70, 300)):
        part = StreamingMetrics(2)
        for start in range(rows.start, rows.stop, 50):
            block = slice(start, min(start + 50, rows.stop))
            part.update(y[block], pred[block])
        parts.append(part)
    got = merged_metrics(parts).result(["a", "b"])
    assert got["n"] == 300
    for j, name in enumerate(["a", "b"]):
        ours = got["targets"][name]
        assert ours["mse"] == pytest.approx(mean_squared_error(y[:, j], pred[:, j]), rel=1e-12)
        assert ours["mae"] == pytest.approx(mean_absolute_error(y[:, j], pred[:, j]), rel=1e-12)
        assert ours["r2"] == pytest.approx(r2_score(y[:, j], pred[:, j]), rel=1e-9)
