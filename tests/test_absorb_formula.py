"""Fixed effects in a formula (``torchlinreg.ols("y ~ x1 + x2 | firm + year", df)``):
coefficients, names and standard errors equal pyfixest's ``feols`` with the same
formula, the model file keeps the formula with its fixed effects, bad input is one line.

Tolerance 1e-8, as tests/test_absorb.py argues: well-conditioned designs, both sides
solve to ~1e-14 (pyfixest's projections run to 1e-13), while a wrong degrees-of-freedom
rule or a kept intercept moves the standard errors by ≥ 1/n ≈ 1e-3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import torchlinreg
from torchlinreg.errors import InputError
from torchlinreg.persistence import load_model, save_model

from .pyfixest_ref import feols as _pyfixest

pd = pytest.importorskip("pandas")
pytest.importorskip("formulaic")
pf = pytest.importorskip("pyfixest")

RTOL = 1e-8
VCOVS = [("nonrobust", "iid"), ("HC1", "hetero"), ("cluster", {"CRV1": "firm"})]


def _panel(seed: int, n: int = 900) -> Any:
    rng = np.random.default_rng(seed)
    firm = rng.choice(60, size=n, p=rng.dirichlet(np.ones(60)))
    df = pd.DataFrame({"firm": firm, "year": rng.integers(2000, 2008, n)})
    df["x1"] = rng.normal(size=n) + 0.05 * firm
    df["x2"] = rng.normal(size=n) + 0.1 * (df.year - 2000)
    df["sector"] = rng.choice(["agri", "mining", "retail"], n)
    df["y"] = 2 * df.x1 - df.x2 + rng.normal(size=60)[firm] + rng.normal(size=n)
    df["y"] += (df.sector == "retail") * 0.5 + rng.normal(size=n) * (1 + 0.3 * abs(df.x1))
    df["w"] = rng.uniform(0.3, 2.5, n)
    return df


FORMULAS = [
    "y ~ x1 + x2 | firm + year",
    "y ~ x1 + C(sector) | firm",  # categories reduced-rank, as with an intercept
    "y ~ x1 + x2 + x1:x2 | year + firm",
]


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("cov_type,vcov", VCOVS)
def test_equals_pyfixest_with_the_same_formula(formula: str, cov_type: str, vcov: Any) -> None:
    df = _panel(11)
    weights = "w" if cov_type == "HC1" else None  # weighted once per formula
    groups = "firm" if cov_type == "cluster" else None
    model = torchlinreg.ols(formula, df, weights=weights, cov_type=cov_type, groups=groups)
    ref = _pyfixest(df, formula, vcov, weights)
    assert list(model.feature_names_in_) == list(ref.coef().index)
    np.testing.assert_allclose(model.coef_, ref.coef().values, rtol=RTOL)
    s = model.summary()
    se = np.array([c.std_error for c in s.coefficients])
    np.testing.assert_allclose(se, ref.se().values, rtol=RTOL)
    assert s.r_squared == pytest.approx(ref._r2, rel=RTOL)
    assert model.intercept_ == 0.0 and not model.fit_intercept
    assert model.absorbed_.factors == tuple(formula.split("|")[1].replace(" ", "").split("+"))


def test_model_file_keeps_the_formula_and_its_fixed_effects(tmp_path: Path) -> None:
    df = _panel(12)
    model = torchlinreg.ols("y ~ x1 + C(sector) | firm + year", df, cov_type="HC1")
    path = str(tmp_path / "fe.safetensors")
    save_model(path, model)
    loaded = load_model(path).estimator
    assert loaded.formula_.formula == "y ~ x1 + C(sector) | firm + year"
    assert loaded.formula_.absorb == ["firm", "year"]
    np.testing.assert_equal(loaded.summary().to_dict(), model.summary().to_dict())
    np.testing.assert_array_equal(loaded.predict(df), model.predict(df))


def test_missing_labels_dropped_as_pyfixest_drops_them() -> None:
    df = _panel(13)
    df["firm"] = df.firm.astype(float)
    df.loc[[3, 50, 400], "firm"] = np.nan
    df.loc[7, "x1"] = np.nan
    model = torchlinreg.ols("y ~ x1 + x2 | firm + year", df, missing="drop", cov_type="HC1")
    ref = _pyfixest(df, "y ~ x1 + x2 | firm + year", "hetero", None)
    assert model.state_.n_samples == len(df) - 4 == ref._N
    np.testing.assert_allclose(model.coef_, ref.coef().values, rtol=RTOL)
    se = np.array([c.std_error for c in model.summary().coefficients])
    np.testing.assert_allclose(se, ref.se().values, rtol=RTOL)


def test_bar_inside_a_term_and_quoted_columns() -> None:
    from torchlinreg.formula.absorbed import split_absorbed

    assert split_absorbed("y ~ I(a | b) + x") == ("y ~ I(a | b) + x", [])
    assert split_absorbed("y ~ x | `my firm` + Q('the year')") == ("y ~ x", ["my firm", "the year"])
    df = _panel(14).rename(columns={"firm": "my firm"})
    quoted = torchlinreg.ols("y ~ x1 | `my firm`", df)
    plain = torchlinreg.ols("y ~ x1 | firm", df.rename(columns={"my firm": "firm"}))
    np.testing.assert_array_equal(quoted.coef_, plain.coef_)


@pytest.mark.parametrize(
    "formula,message",
    [
        ("y ~ x1 | region", r"reads column 'region', which the data lack"),
        ("y ~ x1 | firm^year", r"'firm\^year' where a fixed effect's column belongs"),
        ("y ~ x1 |", r"nothing where a fixed effect's column belongs"),
        ("y ~ x1 | firm + firm", r"names a fixed effect twice"),
        ("y ~ x1 | firm | year", r"has 3 parts separated by '\|'"),
    ],
)
def test_bad_formulas_are_one_line(formula: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        torchlinreg.ols(formula, _panel(15, n=100))
    assert len(str(info.value).splitlines()) == 1


def test_missing_label_names_row_and_column() -> None:
    df = _panel(16, n=100)
    df["year"] = df.year.astype(float)
    df.loc[41, "year"] = np.nan
    with pytest.raises(InputError, match=r"row 42, column 'year': the fixed effect's label is"):
        torchlinreg.ols("y ~ x1 | firm + year", df)
