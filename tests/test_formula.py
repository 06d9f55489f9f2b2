"""Formulas (torchlinreg.ols, LinearRegression.from_formula) against statsmodels'
formula API on its bundled datasets: the same coefficients, standard errors (nonrobust,
HC1, cluster) and names, and the same predictions on new data.

Tolerance: both sides solve a least-squares problem in float64, whose relative error is
of order κ·ε for the column-scaled condition number κ (statsmodels' pinv; our QR is
refined where κ puts digits at risk). Every design here has κ·ε < 1e-9 (asserted where
the data are ill-conditioned: longley), so agreement to 1e-8 relative tests the
formula, the names and the statistics, not the rounding.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("formulaic")
sm = pytest.importorskip("statsmodels.api")
smf = pytest.importorskip("statsmodels.formula.api")

import torchlinreg as tl  # noqa: E402
from torchlinreg import InputError, LinearRegression, Ridge  # noqa: E402

RTOL = 1e-8


def dataset(name: str) -> pd.DataFrame:
    return getattr(sm.datasets, name).load_pandas().data


def grunfeld() -> pd.DataFrame:
    return dataset("grunfeld")


def by_name(model: LinearRegression, series: pd.Series) -> np.ndarray:
    """statsmodels' values in our order: the intercept first, then our features."""
    names = (["Intercept"] if model.fit_intercept else []) + list(model.feature_names_in_)
    assert sorted(names) == sorted(series.index)  # the same names, whatever the order
    return series[names].to_numpy()


def ours(model: LinearRegression) -> np.ndarray:
    return np.r_[[model.intercept_] if model.fit_intercept else [], model.coef_]


def scaled_condition(df: pd.DataFrame, formula: str) -> float:
    from formulaic import model_matrix

    X = np.asarray(model_matrix(formula, df).rhs, dtype=float)
    X = X / np.linalg.norm(X, axis=0)
    return float(np.linalg.cond(X))


CASES = [
    ("longley", "TOTEMP ~ GNPDEFL + GNP + UNEMP + ARMED + POP + YEAR"),
    ("stackloss", "STACKLOSS ~ AIRFLOW + WATERTEMP + ACIDCONC"),
    ("grunfeld", "invest ~ value + capital + C(firm, Treatment('IBM'))"),
]


@pytest.mark.parametrize(("name", "formula"), CASES)
def test_coefficients_and_standard_errors_equal_statsmodels(name: str, formula: str) -> None:
    df = dataset(name)
    assert scaled_condition(df, formula) * np.finfo(float).eps < 1e-9
    model = tl.ols(formula, df)
    ref = smf.ols(formula, df).fit()
    np.testing.assert_allclose(ours(model), by_name(model, ref.params), rtol=RTOL)
    s = model.summary().to_frame()
    assert list(s.index) == ["intercept", *model.feature_names_in_]
    np.testing.assert_allclose(s["std_error"], by_name(model, ref.bse), rtol=RTOL)
    hc1 = model.summary(cov_type="HC1", X=df).to_frame()
    ref_hc1 = smf.ols(formula, df).fit(cov_type="HC1")
    np.testing.assert_allclose(hc1["std_error"], by_name(model, ref_hc1.bse), rtol=RTOL)


def test_cluster_standard_errors_by_a_column_equal_statsmodels() -> None:
    df = grunfeld()
    formula = "invest ~ value + capital + C(firm)"
    model = tl.ols(formula, df)
    ref = smf.ols(formula, df).fit(cov_type="cluster", cov_kwds={"groups": df["year"]})
    s = model.summary(cov_type="cluster", X=df, groups="year").to_frame()
    np.testing.assert_allclose(s["std_error"], by_name(model, ref.bse), rtol=RTOL)
    # labels given as values are the same as a column's name
    same = model.summary(cov_type="cluster", X=df, groups=df["year"].to_numpy()).to_frame()
    np.testing.assert_array_equal(same["std_error"], s["std_error"])


TERMS = [
    "invest ~ value:capital",
    "invest ~ value * capital",
    "invest ~ value + I(value ** 2)",
    "np.log(invest) ~ np.log(value) + np.log(capital)",
    "invest ~ C(firm) + value - 1",
    "invest ~ C(firm) + value + 0",
    "invest ~ value * C(firm, Treatment('General Motors'))",
    "invest ~ year + C(year > 1945)",
]


@pytest.mark.parametrize("formula", TERMS)
def test_terms_equal_statsmodels(formula: str) -> None:
    df = grunfeld()
    model = tl.ols(formula, df)
    ref = smf.ols(formula, df).fit()
    assert model.fit_intercept == ("Intercept" in ref.params.index)
    np.testing.assert_allclose(ours(model), by_name(model, ref.params), rtol=RTOL)
    s = model.summary().to_frame()
    np.testing.assert_allclose(s["std_error"], by_name(model, ref.bse), rtol=RTOL)


def test_reference_level_is_the_one_chosen() -> None:
    df = grunfeld()
    model = tl.ols("invest ~ C(firm, contr.treatment(base='IBM'))", df)
    assert not any(name.endswith("[T.IBM]") for name in model.feature_names_in_)
    assert len(model.feature_names_in_) == df.firm.nunique() - 1
    # the intercept is IBM's mean
    assert model.intercept_ == pytest.approx(df.loc[df.firm == "IBM", "invest"].mean(), rel=1e-12)


def test_poly_spans_what_statsmodels_fits_with_powers() -> None:
    """statsmodels' formulas have no poly(): the orthogonal polynomial spans the same
    columns as x and x², so the fitted values agree; the coefficients equal lstsq on
    formulaic's own columns."""
    from formulaic import model_matrix

    df = grunfeld()
    model = tl.ols("invest ~ poly(value, 2)", df)
    assert list(model.feature_names_in_) == ["poly(value, 2)[1]", "poly(value, 2)[2]"]
    X = np.asarray(model_matrix("invest ~ poly(value, 2)", df).rhs, dtype=float)
    coef = np.linalg.lstsq(X, df["invest"].to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(ours(model), coef, rtol=1e-10)
    powers = smf.ols("invest ~ value + I(value ** 2)", df).fit()
    np.testing.assert_allclose(model.predict(df), powers.fittedvalues, rtol=1e-10)
    # new rows go through the poly() learned on the training rows
    new = df.sample(20, random_state=0)
    np.testing.assert_allclose(model.predict(new), powers.predict(new), rtol=1e-10)


def test_several_targets_are_fits_of_each() -> None:
    df = grunfeld()
    both = tl.ols("invest + capital ~ value + C(firm)", df)
    assert both.target_names_ == ["invest", "capital"]
    for j, target in enumerate(["invest", "capital"]):
        one = smf.ols(f"{target} ~ value + C(firm)", df).fit()
        np.testing.assert_allclose(
            np.r_[both.intercept_[j], both.coef_[j]], by_name(both, one.params), rtol=RTOL
        )


def test_pandas_polars_and_pyarrow_give_one_model() -> None:
    pa = pytest.importorskip("pyarrow")
    pl = pytest.importorskip("polars")
    df = grunfeld()
    formula = "invest ~ value + np.log(capital) + C(firm)"
    models = [tl.ols(formula, t) for t in (df, pl.from_pandas(df), pa.Table.from_pandas(df))]
    for m in models[1:]:
        assert list(m.feature_names_in_) == list(models[0].feature_names_in_)
        np.testing.assert_array_equal(m.coef_, models[0].coef_)
        np.testing.assert_array_equal(m.predict(df), models[0].predict(df))


def test_column_name_with_spaces_is_quoted_with_q() -> None:
    df = grunfeld().rename(columns={"value": "market value"})
    # formulaic names the term Q('market value') however it was quoted; patsy keeps the
    # text as written, so both are given the same
    model = tl.ols("invest ~ Q('market value') + capital", df)
    ref = smf.ols("invest ~ Q('market value') + capital", df).fit()
    np.testing.assert_allclose(ours(model), by_name(model, ref.params), rtol=RTOL)
    with pytest.raises(InputError, match=r"does not parse: Missing operator.*Q\('market value'\)"):
        tl.ols("invest ~ market value + capital", df)


def test_weights_by_column_equal_statsmodels_wls() -> None:
    df = grunfeld().assign(w=lambda d: 1.0 + (d.year - 1935) / 10)
    model = tl.ols("invest ~ value + C(firm)", df, weights="w")
    ref = smf.wls("invest ~ value + C(firm)", df, weights=df["w"]).fit()
    np.testing.assert_allclose(ours(model), by_name(model, ref.params), rtol=RTOL)
    np.testing.assert_allclose(model.summary().to_frame()["std_error"], by_name(model, ref.bse),
                               rtol=RTOL)  # fmt: skip
    hc1 = model.summary(cov_type="HC1", X=df).to_frame()  # the weights column again
    ref1 = smf.wls("invest ~ value + C(firm)", df, weights=df["w"]).fit(cov_type="HC1")
    np.testing.assert_allclose(hc1["std_error"], by_name(model, ref1.bse), rtol=RTOL)


def test_missing_values_are_an_error_or_dropped_as_statsmodels_does() -> None:
    df = grunfeld()
    df.loc[5, "value"] = np.nan
    df.loc[9, "firm"] = None
    with pytest.raises(InputError, match=r"row 6, column 'value': the value is missing"):
        tl.ols("invest ~ value + C(firm)", df)
    model = tl.ols("invest ~ value + C(firm)", df, missing="drop")
    ref = smf.ols("invest ~ value + C(firm)", df).fit()  # statsmodels drops them
    assert model.n_samples_seen_ == ref.nobs == len(df) - 2
    np.testing.assert_allclose(ours(model), by_name(model, ref.params), rtol=RTOL)
    hc1 = model.summary(cov_type="HC1", X=df).to_frame()  # the same rows left out
    ref1 = smf.ols("invest ~ value + C(firm)", df).fit(cov_type="HC1")
    np.testing.assert_allclose(hc1["std_error"], by_name(model, ref1.bse), rtol=RTOL)


def test_predict_on_new_data_equals_statsmodels_and_survives_the_model_file(tmp_path) -> None:
    df = grunfeld()
    formula = "np.log(invest) ~ np.log(value) + capital:C(firm) + C(firm, Treatment('IBM'))"
    train, new = df[df.year < 1950], df[df.year >= 1950]
    new = new[new.firm.isin(["IBM", "Chrysler"])]  # a subset of the levels
    model = tl.ols(formula, train)
    ref = smf.ols(formula, train).fit()
    np.testing.assert_allclose(model.predict(new), ref.predict(new), rtol=1e-10)
    assert model.score(new) == pytest.approx(
        1
        - np.sum((np.log(new.invest) - ref.predict(new)) ** 2)
        / np.sum((np.log(new.invest) - np.log(new.invest).mean()) ** 2),
        rel=1e-10,
    )
    path = tmp_path / "m.safetensors"
    tl.save_model(str(path), model)
    loaded = tl.load_model(str(path))
    assert loaded.estimator.formula_.formula == formula
    np.testing.assert_array_equal(loaded.predict(new), model.predict(new))
    np.testing.assert_array_equal(loaded.estimator.predict(new), model.predict(new))
    assert loaded.estimator.summary().to_frame().index.tolist() == ["intercept",
                                                                    *model.feature_names_in_]  # fmt: skip


def test_learned_state_round_trips_as_json() -> None:
    """poly() and center() learn numbers (dicts keyed by integers among them); the JSON
    record rebuilds a spec that builds the same columns bit for bit."""
    from torchlinreg.formula.spec import FormulaSpec

    df = grunfeld()
    spec = FormulaSpec.learn("invest ~ poly(value, 3) + center(capital) + C(firm)", df)
    again = FormulaSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    row = str
    np.testing.assert_array_equal(again.matrix(df, "rhs", where=row),
                                  spec.matrix(df, "rhs", where=row))  # fmt: skip
    assert "pickle" not in json.dumps(spec.to_dict())


def test_ridge_from_formula_equals_ridge_on_the_columns() -> None:
    df = grunfeld()
    model = Ridge.from_formula("invest ~ value + C(firm)", df, alpha=3.0)
    X = pd.get_dummies(df.firm, drop_first=True, dtype=float)
    plain = Ridge(alpha=3.0).fit(np.c_[df.value, X], df.invest)
    np.testing.assert_allclose(model.coef_, plain.coef_, rtol=1e-10)
    np.testing.assert_allclose(model.intercept_, plain.intercept_, rtol=1e-10)


def test_a_later_fit_on_arrays_forgets_the_formula() -> None:
    df = grunfeld()
    model = tl.ols("invest ~ value", df)
    model.fit(df[["value"]].to_numpy(), df.invest.to_numpy())
    assert not hasattr(model, "formula_")


# Bad input ---------------------------------------------------------------------------


def test_a_formula_that_does_not_parse_shows_formulaic_message_and_the_formula() -> None:
    with pytest.raises(InputError) as err:
        tl.ols("invest ~ value +", grunfeld())
    message = str(err.value)
    assert "'invest ~ value +'" in message and "insuffient arguments" in message
    assert "\n" not in message and "\x1b" not in message


def test_a_missing_column_is_named_and_the_columns_listed() -> None:
    with pytest.raises(InputError, match=r"reads column 'valeu'.*columns are: invest, value"):
        tl.ols("invest ~ valeu + capital", grunfeld())
    # inside a stateful transform too, which formulaic does not see when parsing
    with pytest.raises(InputError, match=r"reads column 'valeu'.*columns are: invest, value"):
        tl.ols("invest ~ poly(valeu, 2)", grunfeld())


def test_an_unseen_level_at_predict_names_column_and_level() -> None:
    df = grunfeld()
    model = tl.ols("invest ~ value + C(firm)", df[df.firm != "IBM"])
    new = df[df.firm.isin(["Chrysler", "IBM"])].reset_index(drop=True)
    with pytest.raises(InputError, match=r"row 21, column 'firm': level 'IBM' was not seen"):
        model.predict(new)


def test_a_cluster_column_with_missing_labels_is_refused() -> None:
    df = grunfeld()
    model = tl.ols("invest ~ value", df)
    df.loc[7, "year"] = np.nan
    with pytest.raises(InputError, match=r"row 8, column 'year': the cluster label is missing"):
        model.summary(cov_type="cluster", X=df, groups="year")


def test_fit_intercept_is_the_formula_s_to_say() -> None:
    with pytest.raises(InputError, match="'- 1'"):
        tl.ols("invest ~ value", grunfeld(), fit_intercept=False)


def test_a_formula_without_a_target_is_refused() -> None:
    with pytest.raises(InputError, match="has no target"):
        tl.ols("~ value", grunfeld())


def test_without_formulaic_the_error_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "formulaic", None)
    with pytest.raises(InputError, match=r"pip install 'torchlinreg\[formula\]'"):
        tl.ols("invest ~ value", grunfeld())


def test_covariance_chosen_at_fit_time_equals_statsmodels() -> None:
    """ols(..., cov_type=) computes the robust covariance in the fit: summary() needs no
    data, and equals statsmodels (HC1; cluster by a column named in groups=)."""
    df = grunfeld()
    formula = "invest ~ value + capital + C(firm)"
    hc1 = tl.ols(formula, df, cov_type="HC1")
    ref = smf.ols(formula, df).fit(cov_type="HC1")
    np.testing.assert_allclose(hc1.summary().to_frame()["std_error"], by_name(hc1, ref.bse),
                               rtol=RTOL)  # fmt: skip
    cl = tl.ols(formula, df, cov_type="cluster", groups="year")
    ref = smf.ols(formula, df).fit(cov_type="cluster", cov_kwds={"groups": df["year"]})
    np.testing.assert_allclose(cl.summary().to_frame()["std_error"], by_name(cl, ref.bse),
                               rtol=RTOL)  # fmt: skip


def test_missing_cluster_labels_at_fit_time_are_refused() -> None:
    df = grunfeld()
    df.loc[3, "year"] = np.nan
    with pytest.raises(InputError, match=r"row 4, column 'year': the cluster label is missing"):
        tl.ols("invest ~ value", df, cov_type="cluster", groups="year")
    with pytest.raises(InputError, match=r"reads column 'yaer'"):
        tl.ols("invest ~ value", df, cov_type="cluster", groups="yaer")
