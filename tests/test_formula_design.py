"""The formula's columns built without formulaic's pandas machinery (formula/design.py)
and learned from a sample holding every category (formula/sampled.py) are formulaic's
own: the same column names and the same numbers, bit for bit, on a broad set of
formulas; the state learned from the sample is the one learned from every row.

The oracle is ``formulaic.model_matrix`` on the whole table. Exact equality is the
specification: the Design multiplies the same float64 (or integer) factors in the
order formulaic does, and a coding matrix entry is copied, not computed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

formulaic = pytest.importorskip("formulaic")

import torchlinreg as tl  # noqa: E402
from torchlinreg import InputError  # noqa: E402
from torchlinreg.formula.sampled import HEAD  # noqa: E402
from torchlinreg.formula.spec import FormulaSpec  # noqa: E402

N = 6 * HEAD  # long enough to be learned from a sample


def table(n: int = N, seed: int = 0) -> pd.DataFrame:
    """Numbers, booleans, integers and categories, some levels first seen late (past
    the sample's first rows) or only once."""
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c", "d"], n).astype(object)
    g[-1] = "rare"  # one row, the last
    g[HEAD + 7] = "late"
    df = pd.DataFrame(
        {
            "x1": rng.standard_normal(n),
            "x2": rng.uniform(0.5, 3.0, n),
            "x3": rng.standard_normal(n).astype(np.float32),
            "k": rng.integers(1, 4, n),
            "b": rng.random(n) < 0.3,
            "g": g,
            "h": pd.Categorical(rng.choice(["u", "v"], n), categories=["v", "u", "w"]),
            "my col": rng.standard_normal(n),
        }
    )
    df.loc[n - 3, "k"] = 9  # an integer category seen once, late
    df["y"] = df["x1"] + rng.standard_normal(n)
    df["y2"] = 2 * df["x2"] + rng.uniform(0.0, 1.0, n)  # positive: np.log(y2)
    return df


# Formulas a Design builds: columns read as they are, their categories, products.
FAST = [
    "y ~ x1 + x2",
    "y ~ C(g)",
    "y ~ g",
    "y ~ C(g, Treatment('c'))",
    "y ~ C(g, contr.treatment(base='late'))",
    "y ~ h",
    "y ~ C(k) + x1",
    "y ~ x1:x2",
    "y ~ x1 * x2 * x3",
    "y ~ x1:C(g)",
    "y ~ x1 * C(g)",
    "y ~ C(g) * C(k)",
    "y ~ g:h",
    "y ~ C(g):C(k):x1",
    "y ~ C(g) - 1",
    "y ~ C(g) + x1 + 0",
    "y ~ C(g):x1 - 1",
    "y ~ C(g, Sum) + x1",
    "y ~ C(g, Helmert) * x2",
    "y ~ b + k + x1:k + b:x2",
    "y ~ Q('my col') + `my col`:g",
    "y + y2 ~ x1 + C(g)",
]
# Formulas formulaic builds (a factor computes something): the same numbers.
SLOW = [
    "y ~ I(x1 ** 2) + C(g)",
    "np.log(y2) ~ np.log(x2) + C(g)",
    "y ~ poly(x1, 2) + C(g)",
    "y ~ C(x1 > 0) + x2",
    "y ~ center(x1) + g",
]


def formulaic_columns(formula: str, df: pd.DataFrame, side: str) -> tuple[list[str], np.ndarray]:
    built = getattr(formulaic.model_matrix(formula, df, na_action="ignore", output="pandas"), side)
    built = built.drop(columns=["Intercept"], errors="ignore")
    return list(built.columns), built.to_numpy(dtype=np.float64)


def row(i: int) -> str:
    return f"row {i + 1}"


@pytest.mark.parametrize("formula", FAST + SLOW)
def test_columns_are_formulaic_s_bit_for_bit(formula: str) -> None:
    df = table()
    spec = FormulaSpec.learn(formula, df)
    for side, names in (("rhs", spec.feature_names), ("lhs", spec.target_names)):
        expected_names, expected = formulaic_columns(formula, df, side)
        assert names == expected_names
        X = spec.matrix(df, side, where=row)
        assert X.dtype == np.float64 and X.flags.c_contiguous
        np.testing.assert_array_equal(X, expected)
    # a Design built the features exactly where the formula's factors allow one
    assert (spec._designs.get("rhs") is not None) == (formula in FAST)


@pytest.mark.parametrize("formula", FAST + SLOW)
def test_state_learned_from_the_sample_is_that_of_every_row(formula: str) -> None:
    df = table()
    sampled = FormulaSpec.learn(formula, df)
    whole = FormulaSpec._learn_from(formula, df, None, ())
    assert sampled.to_dict() == whole.to_dict()


@pytest.mark.parametrize("formula", FAST)
def test_a_model_file_s_spec_builds_new_rows_as_formulaic(formula: str) -> None:
    df, new = table(), table(700, seed=1)
    spec = FormulaSpec.from_dict(FormulaSpec.learn(formula, df).to_dict())
    learned = formulaic.model_matrix(formula, df, na_action="ignore", output="pandas").rhs
    expected = learned.model_spec.get_model_matrix(new, output="pandas")
    expected = expected.drop(columns=["Intercept"], errors="ignore").to_numpy(dtype=np.float64)
    np.testing.assert_array_equal(spec.matrix(new, "rhs", where=row), expected)
    assert spec._designs["rhs"] is not None


def test_polars_and_pyarrow_tables_give_the_pandas_columns() -> None:
    pa = pytest.importorskip("pyarrow")
    pl = pytest.importorskip("polars")
    df = table().drop(columns=["h"])  # (a categorical with an unused level is pandas')
    df["g"] = df["g"].replace({"late": "a", "rare": "b"})  # no level of one row
    formula = "y ~ x1 * C(g) + C(k) + b + x3"
    models = [tl.ols(formula, t) for t in (df, pl.from_pandas(df), pa.Table.from_pandas(df))]
    for m in models[1:]:
        assert list(m.feature_names_in_) == list(models[0].feature_names_in_)
        np.testing.assert_array_equal(m.coef_, models[0].coef_)


def test_missing_values_are_rows_of_nan_or_an_error_naming_them() -> None:
    df = table()
    df.loc[HEAD + 3, "x1"] = np.nan
    df.loc[HEAD + 11, "g"] = None
    formula = "y ~ x1 * C(g)"
    spec = FormulaSpec.learn(formula, df)
    X = spec.matrix(df, "rhs", where=row, missing="drop")
    null = df[["x1", "g"]].isna().any(axis=1).to_numpy()
    assert np.isnan(X[null]).all() and not np.isnan(X[~null]).any()
    np.testing.assert_array_equal(X[~null], formulaic_columns(formula, df, "rhs")[1][~null])
    assert spec._designs["rhs"] is not None
    with pytest.raises(InputError, match=f"row {HEAD + 4}, column 'x1': the value is missing"):
        spec.matrix(df, "rhs", where=row)


def test_an_unseen_level_names_column_row_and_level() -> None:
    df = table()
    spec = FormulaSpec.learn("y ~ x1 + C(g)", df)
    new = table(900, seed=2)
    new.loc[850, "g"] = "zebra"
    with pytest.raises(InputError, match="row 851, column 'g': level 'zebra' was not seen"):
        spec.matrix(new, "rhs", where=row)
    model = tl.ols("y ~ x1 + C(g)", df)
    with pytest.raises(InputError, match="level 'zebra' was not seen"):
        model.predict(new)


def test_fit_equals_the_fit_on_formulaic_s_columns() -> None:
    """Coefficients and HC1 standard errors from formulaic's columns, fitted as arrays.
    Not bit for bit: the target's memory layout (a column of the formula's targets or
    a table column) may change the order of the sums; the design is well conditioned
    (levels of 300 rows each), so 1e-12 relative is rounding."""
    df = table()
    df["g"] = df["g"].replace({"late": "a", "rare": "b"})  # no level of one row
    formula = "y ~ x1 * C(g) + x2 + b"
    model = tl.ols(formula, df, cov_type="HC1")
    names, X = formulaic_columns(formula, df, "rhs")
    ref = tl.LinearRegression(cov_type="HC1").fit(X, df["y"].to_numpy())
    assert list(model.feature_names_in_) == names
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-12)
    np.testing.assert_allclose(
        model.summary().to_frame()["std_error"].to_numpy(),
        ref.summary().to_frame()["std_error"].to_numpy(),
        rtol=1e-12,
    )


# (pandas' "string" dtype, with pd.NA, formulaic 1.2 reads as numbers: not a case here)
@pytest.mark.parametrize("dtype", [object, "str", "category"])
def test_every_storage_of_text_gives_formulaic_s_columns(dtype: object) -> None:
    df = table()
    df["g"] = df["g"].astype(dtype)
    formula = "y ~ x1:C(g, Treatment('c')) + g"
    spec = FormulaSpec.learn(formula, df)
    expected_names, expected = formulaic_columns(formula, df, "rhs")
    assert spec.feature_names == expected_names
    np.testing.assert_array_equal(spec.matrix(df, "rhs", where=row), expected)
    assert spec._designs["rhs"] is not None


def test_too_many_categories_for_a_sample_are_learned_from_every_row(monkeypatch) -> None:
    from torchlinreg.formula import sampled

    df = table()
    monkeypatch.setattr(sampled, "MAX_EXTRA", 1)  # g has 2 levels first seen past the head
    assert (
        sampled.sample(df, lambda rows: FormulaSpec._learn_from("y ~ C(g)", rows, None, ())) is None
    )
    spec = FormulaSpec.learn("y ~ x1 * C(g)", df)
    assert spec.to_dict() == FormulaSpec._learn_from("y ~ x1 * C(g)", df, None, ()).to_dict()
    np.testing.assert_array_equal(
        spec.matrix(df, "rhs", where=row), formulaic_columns("y ~ x1 * C(g)", df, "rhs")[1]
    )


def test_pandas_nullable_numbers_are_left_to_formulaic() -> None:
    df = table()
    df["x1"] = df["x1"].astype("Float64")
    spec = FormulaSpec.learn("y ~ x1 + C(g)", df)
    assert spec._design("rhs", df) is None  # pd.NA is formulaic's to read
    np.testing.assert_array_equal(
        spec.matrix(df, "rhs", where=row), formulaic_columns("y ~ x1 + C(g)", df, "rhs")[1]
    )
