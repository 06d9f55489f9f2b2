"""A model fitted on named columns predicts from a table holding those columns in any
order: they are matched by name, for pandas, polars, pyarrow and load_data's named
arrays, in predict, score and prediction intervals. Missing, extra or repeated columns
are refused, naming them.

The oracle is the same model on the columns in the fitted order. Selecting columns
copies their values unchanged, but the copy's memory layout may differ (a DataFrame's
values are column-major, a reordered selection may not be), and matrix products sum in
a layout-dependent order: the two predictions then differ by rounding alone, each within
γ_{p+1}·(|X|·|w| + |b|) of the exact value (γ_m = m·u/(1 − m·u), Higham's dot product
bound), so within twice that of each other. A column matched wrongly would be off by
O(|w|·|x|), far beyond.
"""

from __future__ import annotations

import numpy as np
import pytest

from torchlinreg import GDRegressor, InputError, LinearRegression, Ridge
from torchlinreg.data.named import NamedArray

pd = pytest.importorskip("pandas")

NAMES = ["age", "area", "rooms"]
SHUFFLED = ["rooms", "age", "area"]


def _data(rng: np.random.Generator, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(size=(n, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + 3.0 + 0.1 * rng.normal(size=n)
    return X, y


def _tables(X: np.ndarray, names: list[str]) -> dict[str, object]:
    """The same columns as each kind of named table."""
    import polars as pl
    import pyarrow as pa

    frame = pd.DataFrame(X, columns=NAMES)[names]
    return {
        "pandas": frame,
        "polars": pl.from_pandas(frame),
        "pyarrow": pa.Table.from_pandas(frame, preserve_index=False),
        "named": NamedArray(frame.to_numpy(), names),
    }


KINDS = ("pandas", "polars", "pyarrow", "named")


def assert_same_predictions(got, want, X: np.ndarray, model) -> None:  # type: ignore[no-untyped-def]
    """Equal to rounding: within 2·γ_{p+1}·(|X|·|W| + |b|), float64 (see above)."""
    u = np.finfo(np.float64).eps / 2
    m = X.shape[1] + 1
    gamma = m * u / (1 - m * u)
    W = np.abs(np.atleast_2d(model.coef_)).T
    scale = np.abs(X) @ W + np.abs(np.atleast_1d(model.intercept_))
    scale = scale[:, 0] if np.ndim(model.coef_) == 1 else scale
    assert np.all(np.abs(np.asarray(got) - np.asarray(want)) <= 2 * gamma * scale)


ESTIMATORS = (
    LinearRegression(),
    Ridge(alpha=0.3),
    GDRegressor(optimizer="adam", lr=0.1, epochs=300, dtype="float64"),
)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_columns_in_another_order_are_matched_by_name(rng, kind, estimator) -> None:
    X, y = _data(rng)
    model = estimator.fit(_tables(X, NAMES)[kind], y)
    shuffled = _tables(X, SHUFFLED)[kind]
    expected = model.predict(_tables(X, NAMES)[kind])
    assert_same_predictions(model.predict(shuffled), expected, X, model)
    # R² = 1 − RSS/TSS: the residuals' rounding moves it by far less than 1e-12 here.
    assert model.score(shuffled, y) == pytest.approx(
        model.score(_tables(X, NAMES)[kind], y), abs=1e-12
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("interval", ["confidence", "prediction"])
def test_prediction_intervals_match_columns_by_name(rng, kind, interval) -> None:
    X, y = _data(rng)
    model = LinearRegression().fit(_tables(X, NAMES)[kind], y)
    got = model.predict(_tables(X, SHUFFLED)[kind], interval=interval)
    want = model.predict(_tables(X, NAMES)[kind], interval=interval)
    assert_same_predictions(got.mean, want.mean, X, model)
    # The bounds add ± t·se; se comes from a triangular solve on the rows, whose
    # rounding is relative to se itself (the design is well conditioned here).
    np.testing.assert_allclose(got.se, want.se, rtol=1e-13)
    width = got.upper - got.mean
    np.testing.assert_allclose(width, want.upper - want.mean, rtol=1e-12)
    np.testing.assert_allclose(got.mean - got.lower, want.mean - want.lower, rtol=1e-12)


def test_several_targets_match_columns_by_name(rng) -> None:
    X, _ = _data(rng)
    Y = np.c_[X @ [1.0, 2.0, 3.0], X @ [-1.0, 0.0, 4.0]]
    frame = pd.DataFrame(X, columns=NAMES)
    model = LinearRegression().fit(frame, Y)
    assert_same_predictions(model.predict(frame[SHUFFLED]), model.predict(frame), X, model)


def test_the_callers_table_is_left_as_it_was(rng) -> None:
    X, y = _data(rng)
    frame = pd.DataFrame(X, columns=NAMES)
    model = LinearRegression().fit(frame, y)
    shuffled = frame[SHUFFLED].copy()
    model.predict(shuffled)
    assert list(shuffled.columns) == SHUFFLED
    np.testing.assert_array_equal(shuffled.to_numpy(), X[:, [2, 0, 1]])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("columns", "named"),
    [
        (["age", "area"], "missing: rooms"),
        (["age", "area", "rooms", "garden"], "unexpected: garden"),
        (["area", "garden", "rooms"], "missing: age; unexpected: garden"),
    ],
)
def test_missing_and_extra_columns_are_refused_by_name(rng, kind, columns, named) -> None:
    X, y = _data(rng)
    model = LinearRegression().fit(_tables(X, NAMES)[kind], y)
    wide = pd.DataFrame(np.c_[X, rng.normal(size=len(X))], columns=NAMES + ["garden"])
    table = _tables_of(wide[columns], kind)
    for call in (
        lambda: model.predict(table),
        lambda: model.score(table, y),
        lambda: model.predict(table, interval="confidence"),
    ):
        # scikit-learn's checks expect a ValueError here; InputError is one.
        with pytest.raises(InputError, match=f"fit \\({named}\\); give X exactly the columns"):
            call()


def _tables_of(frame, kind: str):  # type: ignore[no-untyped-def]
    import polars as pl
    import pyarrow as pa

    return {
        "pandas": lambda: frame,
        "polars": lambda: pl.from_pandas(frame),
        "pyarrow": lambda: pa.Table.from_pandas(frame, preserve_index=False),
        "named": lambda: NamedArray(frame.to_numpy(), list(frame.columns)),
    }[kind]()


def test_a_repeated_column_is_refused_by_name(rng) -> None:
    X, y = _data(rng)
    frame = pd.DataFrame(X, columns=NAMES)
    model = LinearRegression().fit(frame, y)
    doubled = pd.concat([frame, frame[["area"]]], axis=1)
    with pytest.raises(InputError, match=r"unexpected|repeated: area"):
        model.predict(doubled)
    twice = frame.set_axis(["age", "area", "area"], axis=1)
    with pytest.raises(InputError, match=r"\(missing: rooms; repeated: area\)"):
        model.predict(twice)


def test_partial_fit_keeps_the_order_as_part_of_the_data(rng) -> None:
    """A chunk is data, not a query: its columns in another order are refused (as
    scikit-learn does), never silently reordered into a different fit."""
    X, y = _data(rng)
    frame = pd.DataFrame(X, columns=NAMES)
    model = LinearRegression().partial_fit(frame[:20], y[:20])
    with pytest.raises(InputError, match="same names in another order"):
        model.partial_fit(frame[SHUFFLED][20:], y[20:])


def test_arrays_without_names_warn_as_before(rng) -> None:
    X, y = _data(rng)
    model = LinearRegression().fit(pd.DataFrame(X, columns=NAMES), y)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        plain = model.predict(X)
    assert_same_predictions(plain, model.predict(pd.DataFrame(X, columns=NAMES)), X, model)


def test_a_dask_dataframe_is_matched_by_name(rng) -> None:
    dd = pytest.importorskip("dask.dataframe")
    import dask

    X, y = _data(rng)
    frame = pd.DataFrame(X, columns=NAMES)
    model = LinearRegression().fit(frame, y)
    with dask.config.set(scheduler="synchronous"):  # no cluster: the partitions in turn
        got = model.predict(dd.from_pandas(frame[SHUFFLED], npartitions=2)).compute()
        assert_same_predictions(got, model.predict(frame), X, model)
        with pytest.raises(InputError, match=r"\(missing: rooms\)"):
            model.predict(dd.from_pandas(frame[["age", "area"]], npartitions=2))
