"""Exact fits on Dask collections against the same fit in memory.

Oracle: the one-process fit and summary of all the rows (the same pandas or NumPy
data). Each partition is folded in its own task and the states are merged up a tree:
another order of the same Householder QR, so coefficients equal the in-memory ones to
1e-12 relative, and every summary statistic to 1e-10 (as for torch.distributed, see
tests/test_distributed.py, whose designs and comparison are reused). The partitions are
uneven, one holds a single row and, for arrays, one holds none; clusters span
partitions. Two schedulers: the synchronous one (fast, in this process) and a
``distributed.LocalCluster`` of two worker processes (everything the tasks need crosses
a process boundary, as on a real cluster).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from torchlinreg import InputError, LinearRegression

from .test_distributed import (
    CASES,
    COV_TYPES,
    assert_statistics_equal,
    design,
    estimator,
    summaries_of,
)
from .test_nist import NAMES, REQUIRED, load, lre

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
ddf = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

# 240 rows in partitions of 1, 36, 113 and 90 rows (index divisions).
DIVISIONS = (0, 1, 37, 150, 239)
# Array row chunks: uneven, one of a single row and one empty.
ROW_CHUNKS = (1, 0, 36, 113, 90)


@pytest.fixture(scope="module")
def client():  # type: ignore[no-untyped-def]
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture
def scheduler(request):  # type: ignore[no-untyped-def]
    """Run the test under the synchronous scheduler, or on the two-worker cluster
    (indirect parameter)."""
    if request.param == "cluster":
        request.getfixturevalue("client")
        yield
    else:
        with dask.config.set(scheduler="synchronous"):
            yield


# -- data ---------------------------------------------------------------------------


def frame(case: str):  # type: ignore[no-untyped-def]
    """The case's data as one pandas DataFrame, and the names of its columns:
    (frame, features, targets, weights column or None, intercept)."""
    X, y, w, g, intercept = design(case)
    features = [f"f{j}" for j in range(X.shape[1])]
    targets = ["y"] if y.ndim == 1 else ["y0", "y1"]
    data = pd.DataFrame(X, columns=features)
    data[targets] = y.reshape(len(y), -1)
    data["w"] = 1.0 if w is None else w
    data["g"] = g
    return data, features, targets, None if w is None else "w", intercept


def pick(data, features, targets, weights):  # type: ignore[no-untyped-def]
    """(X, y, w, groups) from a pandas or Dask DataFrame; y a Series for one target."""
    y = data[targets[0]] if len(targets) == 1 else data[targets]
    return data[features], y, None if weights is None else data[weights], data["g"]


def partitioned(data):  # type: ignore[no-untyped-def]
    return ddf.from_pandas(data, npartitions=1).repartition(divisions=DIVISIONS)


def arrays(case: str):  # type: ignore[no-untyped-def]
    """(X, y, w, groups, intercept) as NumPy arrays and as Dask arrays of ROW_CHUNKS."""
    X, y, w, g, intercept = design(case)

    def chunked(a):  # type: ignore[no-untyped-def]
        return None if a is None else da.from_array(a, chunks=(ROW_CHUNKS, *a.shape[1:]))

    return (X, y, w, g), tuple(chunked(a) for a in (X, y, w, g)), intercept


def fitted(case, intercept, X, y, w):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the rank-deficient case warns, alike
        return estimator(case, intercept).fit(X, y, w)


def assert_same_fit(ours, expected, case, X, y, w, g, Xd, yd, wd, gd) -> None:  # type: ignore[no-untyped-def]
    assert ours.rank_ == expected.rank_
    assert ours.refined_ == expected.refined_
    scale = np.abs(expected.coef_).max()
    np.testing.assert_allclose(ours.coef_, expected.coef_, rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(ours.intercept_, expected.intercept_, rtol=1e-12, atol=1e-12)
    if "ridge" in case:
        return
    for cov in COV_TYPES:
        label = f"{cov} rounding" if "deficient" in case else cov
        assert_statistics_equal(
            summaries_of(ours, cov, Xd, yd, wd, gd),
            summaries_of(expected, cov, X, y, w, g),
            1e-10,
            label,
        )


# -- fits and summaries -------------------------------------------------------------


# Every case in this process; on the cluster (slower: a task graph per step) the cases
# that cross the process boundary with the most (weights, two targets, clusters,
# refinement; a rank-deficient design).
SCHEDULED = [("synchronous", c) for c in CASES] + [
    ("cluster", "multi weights"),
    ("cluster", "deficient"),
]


@pytest.mark.parametrize(("scheduler", "case"), SCHEDULED, indirect=["scheduler"])
def test_dataframe_fit_and_summaries_equal_the_in_memory_ones(scheduler, case) -> None:
    data, features, targets, weights, intercept = frame(case)
    X, y, w, g = pick(data, features, targets, weights)
    Xd, yd, wd, gd = pick(partitioned(data), features, targets, weights)
    expected = fitted(case, intercept, X, y, w)
    ours = fitted(case, intercept, Xd, yd, wd)
    assert list(ours.feature_names_in_) == features
    assert ours.target_names_ == targets
    assert_same_fit(ours, expected, case, X, y, w, g, Xd, yd, wd, gd)


@pytest.mark.parametrize("case", CASES)
def test_array_fit_and_summaries_equal_the_in_memory_ones(case) -> None:
    (X, y, w, g), (Xd, yd, wd, gd), intercept = arrays(case)
    with dask.config.set(scheduler="synchronous"):
        expected = fitted(case, intercept, X, y, w)
        ours = fitted(case, intercept, Xd, yd, wd)
        assert not hasattr(ours, "feature_names_in_")
        assert_same_fit(ours, expected, case, X, y, w, g, Xd, yd, wd, gd)


@pytest.mark.parametrize("name", NAMES)
def test_nist_in_uneven_partitions_keeps_the_certified_digits(client, name) -> None:
    """On the cluster: refinement runs its gradients (or, beyond the semi-normal limit,
    the double-double cross products) in the worker processes."""
    X, y, intercept, certified = load(name)
    n = len(X)
    chunks = (1, n // 3, n - 1 - n // 3)
    Xd, yd = da.from_array(X, chunks=(chunks, X.shape[1])), da.from_array(y, chunks=(chunks,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Filip is rightly flagged as ill-conditioned
        model = LinearRegression(fit_intercept=intercept).fit(Xd, yd)
    found = np.r_[model.intercept_, model.coef_] if intercept else model.coef_
    assert lre(found, np.asarray(certified["coef"])) >= REQUIRED.get(name, 10.0)


def test_refinement_runs_in_the_partitions_and_equals_one_process() -> None:
    """A large offset puts the solve's digits at risk on 20,000 rows (not small): the
    fit is refined from gradients summed over the partitions, to the in-memory answer."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20000, 2)) + [1e5, 0.0]
    y = X @ [2.0, -1.0] + 7 + rng.normal(size=20000)
    expected = LinearRegression().fit(X, y)
    with dask.config.set(scheduler="synchronous"):
        ours = LinearRegression().fit(da.from_array(X, chunks=(6000, 2)), da.from_array(y, 6000))
    assert ours.refined_ and expected.refined_
    np.testing.assert_allclose(ours.coef_, expected.coef_, rtol=1e-13)
    np.testing.assert_allclose(ours.intercept_, expected.intercept_, rtol=1e-13)


# -- every pass reads the same partitions ----------------------------------------------


def recomputed(a: np.ndarray, chunks: tuple[int, ...], later):  # type: ignore[no-untyped-def]
    """``a`` as a Dask array of row ``chunks``, each computed afresh by a function call
    (as from a file): the first call of each gives its rows of ``a``; every later call
    gives ``later(i, rows)`` for partition i, like a source rewritten after the fit
    read it. Deterministic under the synchronous scheduler (calls counted here)."""
    calls: dict[int, int] = {}
    starts = np.cumsum((0, *chunks))

    def read(i: int) -> np.ndarray:
        calls[i] = calls.get(i, 0) + 1
        rows = a[starts[i] : starts[i + 1]]
        return rows if calls[i] == 1 else later(i, rows.copy())

    blocks = []
    for i in range(len(chunks)):
        block = dask.delayed(read, pure=False)(i)
        shape = (chunks[i], *a.shape[1:])
        blocks.append(da.from_delayed(block, shape=shape, dtype=a.dtype))
    return da.concatenate(blocks)


def nudged(i: int, rows: np.ndarray) -> np.ndarray:
    """Partition 1 rewritten with one value changed in its last bit."""
    if i == 1:
        rows[-1, ...] = np.nextafter(rows[-1, ...], np.inf)
    return rows


def shortened(i: int, rows: np.ndarray) -> np.ndarray:
    """Partition 1 rewritten without its first row."""
    return rows[1:] if i == 1 else rows


def unchanged(i: int, rows: np.ndarray) -> np.ndarray:
    return rows


def refined_fit(Xd, yd, intercept, persist=False):  # type: ignore[no-untyped-def]
    with dask.config.set(scheduler="synchronous"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Filip is rightly flagged as ill-conditioned
        if persist:
            Xd, yd = dask.persist(Xd, yd)
        return LinearRegression(fit_intercept=intercept, refine=True).fit(Xd, yd)


CHANGED = (
    r"^partition 1 of 3: the data changed between passes \(the fit read {} rows here, a "
    r"refinement pass {}{}\); persist the collection or leave its source unchanged until "
    r"the fit ends$"
)


@pytest.mark.parametrize("name", ["Norris", "Filip"])
def test_refinement_stops_when_a_partition_changes_between_passes(name) -> None:
    """Refinement computes the partitions again; a partition whose rows differ from
    those the fit was folded from (one value's last bit, or a row fewer) stops the fit
    instead of mixing the two. Norris refines by gradients (semi-normal equations),
    Filip, beyond their limit, by cross products: both passes are checked. The same
    source unchanged, or persisted before the fit, refines to the in-memory answer."""
    X, y, intercept, _ = load(name)
    n = len(X)
    chunks = (n // 3, n // 3, n - 2 * (n // 3))
    X = X.reshape(n, -1)
    k = n // 3

    def source(later_X, later_y):  # type: ignore[no-untyped-def]
        return recomputed(X, chunks, later_X), recomputed(y, chunks, later_y)

    other_values = CHANGED.format(k, k, " with other values")
    with pytest.raises(InputError, match=other_values):
        refined_fit(*source(unchanged, nudged), intercept)
    with pytest.raises(InputError, match=other_values):
        refined_fit(*source(nudged, unchanged), intercept)
    with pytest.raises(InputError, match=CHANGED.format(k, k - 1, "")):
        refined_fit(*source(shortened, shortened), intercept)
    # The check passes where the rows are the same: the fit is then that of the same
    # partitions held in memory (itself the one-process fit: the NIST test above).
    held = da.from_array(X, chunks=(chunks, X.shape[1])), da.from_array(y, chunks=(chunks,))
    expected = refined_fit(*held, intercept)
    for later, persist in ((unchanged, False), (nudged, True)):
        ours = refined_fit(*source(later, later), intercept, persist)
        assert ours.refined_ and expected.refined_
        np.testing.assert_array_equal(ours.coef_, expected.coef_)
        np.testing.assert_array_equal(ours.intercept_, expected.intercept_)


# -- nothing comes to the client ------------------------------------------------------


def sent_to_the_client(client) -> int:  # type: ignore[no-untyped-def]
    """Bytes the workers sent to anyone but a worker since the logs were last cleared
    (the client's and the scheduler's fetches of results)."""
    workers = set(client.scheduler_info()["workers"])
    logs = client.run(lambda dask_worker: list(dask_worker.transfer_outgoing_log))
    return sum(e["total"] for log in logs.values() for e in log if e["who"] not in workers)


def clear_transfer_logs(client) -> None:  # type: ignore[no-untyped-def]
    client.run(lambda dask_worker: dask_worker.transfer_outgoing_log.clear())


def test_no_rows_come_to_the_client(client) -> None:
    """The data (16 MB, made on the workers) stay there: what reaches the client from a
    fit and an HC3 summary is states and sums, O(p²) each. Computing X itself moves
    the data, so the measurement would see it."""
    rng = da.random.default_rng(11)
    X = rng.normal(size=(400_000, 5), chunks=(100_000, 5))
    y = X @ np.arange(1.0, 6.0) + rng.normal(size=400_000, chunks=100_000)
    clear_transfer_logs(client)
    model = LinearRegression().fit(X, y)
    model.summary(cov_type="HC3", X=X, y=y)
    fit_bytes = sent_to_the_client(client)
    assert model.n_samples_seen_ == 400_000
    assert fit_bytes < 100_000
    clear_transfer_logs(client)
    X.compute()
    assert sent_to_the_client(client) >= X.nbytes


# -- errors ---------------------------------------------------------------------------


def test_bad_data_in_one_partition_names_the_partition_and_row(client) -> None:
    data, features, targets, _, _ = frame("plain")
    data.loc[40, "f2"] = np.nan  # partition 2 (rows 37-149): its row 3
    X, y, _, _ = pick(partitioned(data), features, targets, None)
    with pytest.raises(InputError, match=r"^partition 2 of 4: X contains NaN at X\[3, 2\]"):
        LinearRegression().fit(X, y)


def test_partitions_that_do_not_line_up_are_refused() -> None:
    (X, y, w, _), (Xd, yd, _, _), _ = arrays("weights")
    with pytest.raises(InputError, match="X has 5 partitions but y has 2"):
        LinearRegression().fit(Xd, da.from_array(y, chunks=120))
    with pytest.raises(InputError, match="partitions of sample_weight do not line up"):
        LinearRegression().fit(Xd, yd, da.from_array(w, chunks=(2, 2, 36, 110, 90)))
    with pytest.raises(InputError, match=r"chunked along its columns.*X.rechunk"):
        LinearRegression().fit(da.from_array(X, chunks=(60, 2)), yd)
    with pytest.raises(InputError, match="y is a ndarray, but X is a Dask collection"):
        LinearRegression().fit(Xd, y)
    # Boundaries Dask does not know (a DataFrame against an array) are checked per task.
    data, features, _, _, _ = frame("plain")
    frame_X = partitioned(data)[features]
    even = da.from_array(data["y"].to_numpy(), chunks=60)
    with (
        dask.config.set(scheduler="synchronous"),
        pytest.raises(InputError, match="^partition 0 of 4: X has 1 samples but y has 60"),
    ):
        LinearRegression().fit(frame_X, even)


def test_robust_summary_takes_the_training_partitions_only() -> None:
    (X, y, w, g), (Xd, yd, wd, gd), _ = arrays("weights")
    with dask.config.set(scheduler="synchronous"):
        model = LinearRegression().fit(Xd, yd, wd)
        with pytest.raises(InputError, match="fitted with sample_weight"):
            model.summary(cov_type="HC1", X=Xd, y=yd)
        with pytest.raises(InputError, match="needs groups="):
            model.summary(cov_type="cluster", X=Xd, y=yd, sample_weight=wd)
        fewer = (1, 0, 36, 113, 80)
        with pytest.raises(InputError, match="X has 230 rows but the model was fitted on 240"):
            model.summary(
                cov_type="HC1",
                X=da.from_array(X[:230], chunks=(fewer, 4)),
                y=da.from_array(y[:230], chunks=fewer),
                sample_weight=da.from_array(w[:230], chunks=fewer),
            )


@pytest.mark.parametrize("case", ["plain", "multi"])
def test_predict_maps_over_the_partitions_lazily(case) -> None:
    """predict of a Dask collection is a Dask collection of the same partitions, equal
    to the in-memory predictions (the same float64 products, row by row)."""
    data, features, targets, weights, intercept = frame(case)
    X, y, _, _ = pick(data, features, targets, weights)
    model = LinearRegression(fit_intercept=intercept).fit(X, y)
    expected = model.predict(X)
    with dask.config.set(scheduler="synchronous"):
        lazy = model.predict(partitioned(data)[features])
        assert lazy.npartitions == len(DIVISIONS) - 1
        got = lazy.compute()
        assert list(got.index) == list(data.index)
        np.testing.assert_array_equal(np.asarray(got), expected)
        if len(targets) == 1:
            assert got.name == "y"
        else:
            assert list(got.columns) == targets
        (Xn, yn, *_), (Xd, *_), _ = arrays(case)
        plain = LinearRegression(fit_intercept=intercept).fit(Xn, yn)
        from_array = plain.predict(Xd)
        assert from_array.chunks[0] == ROW_CHUNKS
        np.testing.assert_array_equal(from_array.compute(), plain.predict(Xn))
    with pytest.raises(InputError, match="prediction intervals of a Dask collection"):
        plain.predict(Xd, interval="confidence")


def test_gradient_training_refuses_a_dask_collection() -> None:
    """GDRegressor holds its rows in memory: a Dask X is refused, not silently computed."""
    from torchlinreg import GDRegressor

    (_, _, _, _), (Xd, yd, _, _), _ = arrays("plain")
    with pytest.raises(InputError, match="GDRegressor trains on rows in memory"):
        GDRegressor(epochs=2).fit(Xd, yd)


def test_predict_of_a_single_target_given_as_a_column_stays_2d() -> None:
    """y of shape (n, 1) fits a model that predicts (n, 1) in memory; so on Dask."""
    (X, y, _, _), (Xd, _, _, _), _ = arrays("plain")
    model = LinearRegression().fit(X, y[:, None])
    with dask.config.set(scheduler="synchronous"):
        got = model.predict(Xd).compute()
    assert got.shape == (len(X), 1)
    np.testing.assert_array_equal(got, model.predict(X))
