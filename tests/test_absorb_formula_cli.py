"""``torchlinreg fit DATA --formula "y ~ x1 + C(g) | firm + year"`` streams the file:
the formula's columns built batch by batch, the factors after ``|`` absorbed by the
same streamed passes as ``--absorb``. It equals the library's in-memory
``torchlinreg.ols(formula, df, cov_type=...)`` on CSV and Parquet read in many small
batches (a firm and a category first appearing in a late batch), and from standard
input (held in memory), and pyfixest's ``feols`` with the same formula; the model file
predicts as the library's model does; a regressor absorbed entirely is dropped with a
one-line warning; bad input is one line, exit 2, and no model file.

Tolerances. Against the library, 1e-12 (as tests/test_absorb_stream_cli.py): the same
float64 numbers (pandas writes CSV floats in round-trip form, Parquet keeps them), the
same direct solve of the effects, sums taken in another order; the designs here are
well conditioned (condition numbers below 10), so reordered sums move the results by a
few ulps times that. Against pyfixest, 1e-8 (as tests/test_absorb_formula.py): its
alternating projections stop at 1e-13, while a wrong degrees-of-freedom rule or a kept
intercept moves a standard error by ≥ 1/n ≈ 1e-3.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import torchlinreg
from torchlinreg.formula.api import predictors
from torchlinreg.persistence import load_model

from .absorb_panels import firm_panel
from .cli_run import run_cli as _cli

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
pytest.importorskip("formulaic")

RTOL = 1e-12
FORMULA = "y ~ x1 + np.log(x2) + C(sector) | firm + year"


def _panel(seed: int = 11, n: int = 600) -> Any:
    df, firm, rng = firm_panel(seed, n)  # firms 40-44 appear only at the end
    df["x2"] = rng.uniform(0.5, 3.0, n)
    df["sector"] = rng.choice(["agri", "mining", "retail"], n)
    df.loc[n - 20 :, "sector"] = "zinc"  # a category only the last batches hold
    df["size"] = np.cos(firm)  # constant within firms: absorbed by them
    df["y"] = df.x1 - 2 * np.log(df.x2) + rng.normal(size=45)[firm] + rng.normal(size=n)
    df["y"] += (df.sector == "retail") * 0.5 + rng.normal(size=n) * (1 + 0.3 * abs(df.x1))
    df["w"] = rng.uniform(0.5, 2.0, n)
    return df


def _write(df: Any, path: Path) -> Path:
    df.to_csv(path, index=False) if path.suffix == ".csv" else df.to_parquet(path)
    return path


def _library(df: Any, formula: str, cov_type: str, weights: str | None = None) -> Any:
    groups = "firm" if cov_type == "cluster" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a regressor absorbed entirely: tested below
        return torchlinreg.ols(formula, df, cov_type=cov_type, groups=groups, weights=weights)


def _check(report: dict[str, Any], ref: Any, rtol: float = RTOL) -> None:
    """The CLI's summary equals the library model's: names, estimates, SEs, R²s."""
    s = ref.summary()
    got = report["summary"][0]
    assert [c["name"] for c in got["coefficients"]] == list(ref.feature_names_in_)
    np.testing.assert_allclose([c["estimate"] for c in got["coefficients"]], ref.coef_, rtol=rtol)
    np.testing.assert_allclose(
        [c["std_error"] for c in got["coefficients"]],
        [c.std_error for c in s.coefficients],
        rtol=rtol,
    )
    assert got["df_resid"] == s.df_resid
    assert got["r_squared"] == pytest.approx(s.r_squared, rel=rtol)
    assert got["r_squared_within"] == pytest.approx(s.r_squared_within, rel=rtol)


def _fit_argv(data: Path, formula: str, cov_type: str) -> list[Any]:
    argv: list[Any] = ["fit", data, "--formula", formula, "--cov-type", cov_type, "--summary"]
    return [*argv, "--json", *(["--cluster", "firm"] if cov_type == "cluster" else [])]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC3", "cluster"])
def test_streamed_file_equals_the_library_in_memory(
    tmp_path: Path, small_batches: None, suffix: str, cov_type: str
) -> None:
    df = _panel()
    data = _write(df, tmp_path / f"panel.{suffix}")
    weights = "w" if cov_type == "HC3" else None
    argv = _fit_argv(data, FORMULA, cov_type) + (["--weights", "w"] if weights else [])
    code, out, err = _cli(argv)
    assert code == 0, err
    ref = _library(df, FORMULA, cov_type, weights)
    _check(json.loads(out), ref)
    names = [c["name"] for c in json.loads(out)["summary"][0]["coefficients"]]
    assert "C(sector)[T.zinc]" in names and "Intercept" not in names


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_predictions_from_the_model_file_equal_the_library(
    tmp_path: Path, small_batches: None, suffix: str
) -> None:
    df = _panel(12)
    data = _write(df, tmp_path / f"panel.{suffix}")
    model = tmp_path / "fe.safetensors"
    code, _, err = _cli(_fit_argv(data, FORMULA, "HC1") + ["-o", model])
    assert code == 0, err
    ref = _library(df, FORMULA, "HC1")
    expected = ref.predict(df)
    # X @ coef_ with coefficients equal to 1e-12: each prediction within 1e-12 of the
    # sum of its terms' magnitudes.
    X = np.asarray(predictors(ref.formula_, df))
    atol = RTOL * (np.abs(X) @ np.abs(ref.coef_))
    loaded = load_model(str(model)).estimator
    assert loaded.formula_.absorb == ["firm", "year"] and loaded.absorbed_ is not None
    np.testing.assert_allclose(loaded.predict(df), expected, rtol=0, atol=atol.max())
    predicted = tmp_path / "pred.csv"
    code, _, err = _cli(["predict", model, data, "-o", predicted])
    assert code == 0, err
    got = pd.read_csv(predicted)["predicted_y"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=atol.max())
    code, out, err = _cli(["evaluate", model, data, "--json"])
    assert code == 0, err
    rmse = np.sqrt(np.mean((df.y.to_numpy() - expected) ** 2))
    assert json.loads(out)["targets"]["y"]["rmse"] == pytest.approx(rmse, rel=1e-10)


@pytest.mark.parametrize(
    "cov_type,vcov", [("nonrobust", "iid"), ("HC1", "hetero"), ("cluster", {"CRV1": "firm"})]
)
def test_equals_pyfixest_with_the_same_formula(
    tmp_path: Path, small_batches: None, cov_type: str, vcov: Any
) -> None:
    pf = pytest.importorskip("pyfixest")
    from pyfixest.demeaners import MapDemeaner

    formula = "y ~ x1 + x2 + C(sector) | firm + year"
    df = _panel(13)
    data = _write(df, tmp_path / "panel.csv")
    code, out, err = _cli(_fit_argv(data, formula, cov_type))
    assert code == 0, err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = pf.feols(formula, df, vcov=vcov, fixef_rm="none",
                       demeaner=MapDemeaner(fixef_tol=1e-13))  # fmt: skip
    got = json.loads(out)["summary"][0]
    assert [c["name"] for c in got["coefficients"]] == list(ref.coef().index)
    np.testing.assert_allclose([c["estimate"] for c in got["coefficients"]], ref.coef(),
                               rtol=1e-8)  # fmt: skip
    np.testing.assert_allclose([c["std_error"] for c in got["coefficients"]], ref.se(),
                               rtol=1e-8)  # fmt: skip


def test_standard_input_is_refused_in_one_line() -> None:
    """A formula learns its columns from the first rows, then reads every row: standard
    input, read once, is refused before fitting (write the data to a file)."""
    df = _panel(14, n=50)
    code, out, err = _cli(["fit", "-", "--formula", "y ~ x1 | firm + year"],
                          stdin=df.to_csv(index=False))  # fmt: skip
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert "standard input can be read only once; write the data to a file" in err


def test_absorbed_regressor_is_dropped_with_a_warning(tmp_path: Path, small_batches: None) -> None:
    df = _panel(15)
    formula = "y ~ x1 + size + C(sector) | firm + year"
    data, model = _write(df, tmp_path / "panel.parquet"), tmp_path / "fe.safetensors"
    code, out, err = _cli(_fit_argv(data, formula, "HC1") + ["-o", model])
    assert code == 0, err
    assert len(err.splitlines()) == 1 and "absorb size entirely" in err, err
    ref = _library(df, formula, "HC1")
    assert "size" not in ref.feature_names_in_  # the library drops it alike
    _check(json.loads(out), ref)
    code, out, err = _cli(["summary", model, "--json"])
    assert code == 0, err
    assert json.loads(out)["absorbed"]["dropped"] == ["size"]
    loaded = load_model(str(model)).estimator
    assert loaded.formula_.dropped == ["size"]
    predicted = tmp_path / "pred.csv"
    code, _, err = _cli(["predict", model, data, "-o", predicted])
    assert code == 0, err
    np.testing.assert_allclose(pd.read_csv(predicted)["predicted_y"], ref.predict(df),
                               rtol=0, atol=1e-10)  # fmt: skip
    np.testing.assert_allclose(loaded.predict(df), ref.predict(df), rtol=0, atol=1e-10)


def _refused(argv: list[Any], message: str, output: Path) -> None:
    code, out, err = _cli([*argv, "-o", output])
    assert code == 2 and out == "" and len(err.splitlines()) == 1, (code, err)
    assert message in err, err
    assert not output.exists()


def test_bad_input_is_one_line_and_no_model_file(tmp_path: Path, small_batches: None) -> None:
    df = _panel(16, n=300)
    data = _write(df, tmp_path / "panel.parquet")
    output = tmp_path / "fe.safetensors"
    fit = ["fit", data, "--formula"]
    _refused([*fit, "y ~ x1 | firm + region"], "reads column 'region', which the data lack; "
             "the columns are: firm, year, x1", output)  # fmt: skip
    _refused([*fit, "y ~ x1 | firm", "--absorb", "year"], "pick one", output)
    _refused([*fit, "y ~ x1", "--absorb", "firm"], "pick one", output)
    _refused([*fit, "y ~ x1 | firm", "--cov-type", "HAC"],
             "--cov-type HAC with a formula with fixed effects", output)  # fmt: skip
    _refused([*fit, "y ~ x1 | firm", "--cluster", "firm,year"], "two-way clusters", output)
    _refused([*fit, "y ~ x1 | firm", "--method", "gd"], "drop --method gd", output)
    _refused([*fit, "y ~ size + C(sector) | firm", "--weights", "firm"],
             "is also the weights column", output)  # fmt: skip
    _refused([*fit, "y ~ size | firm"], "the fixed effects absorb every regressor (size)", output)
    df["year"] = df.year.astype(object)
    df.loc[200, "year"] = None
    _write(df, data)
    _refused([*fit, "y ~ x1 + C(sector) | firm + year"],
             "panel.parquet, row 201, column 'year': the fixed effect's label is missing",
             output)  # fmt: skip


def test_library_model_with_a_regressor_absorbed_predicts_and_saves(tmp_path: Path) -> None:
    """``ols`` drops a regressor absorbed entirely; the formula still builds it from a
    table, and prediction leaves it out: ``X @ coef_`` over the kept columns."""
    from torchlinreg.persistence import save_model

    df = _panel(17, n=300)
    model = _library(df, "y ~ x1 + size + C(sector) | firm", "HC1")
    assert model.formula_.dropped == ["size"] and "size" not in model.feature_names_in_
    X = df[["x1"]].assign(**{f"C(sector)[T.{s}]": (df.sector == s) * 1.0
                             for s in ("mining", "retail", "zinc")})  # fmt: skip
    np.testing.assert_allclose(model.predict(df), X.to_numpy() @ model.coef_, rtol=1e-14)
    path = str(tmp_path / "fe.safetensors")
    save_model(path, model)
    np.testing.assert_array_equal(load_model(path).estimator.predict(df), model.predict(df))


def test_formula_record_dropped_is_checked() -> None:
    """The model file's ``formula.dropped`` names some, not all, of the formula's
    features, and only with fixed effects; else the file is refused in one line."""
    from torchlinreg.errors import InputError
    from torchlinreg.formula.record import check_formula

    df = _panel(18, n=200)
    record = _library(df, "y ~ x1 + size | firm", "nonrobust").formula_.to_dict()
    check_formula(record, ["x1"], 1, False)
    for dropped in (["x1", "size"], ["area"], []):
        with pytest.raises(InputError, match=r"formula\.dropped is .*; expected some, not all"):
            check_formula({**record, "dropped": dropped}, ["x1"], 1, False)
    with pytest.raises(InputError, match="builds other features"):
        check_formula({k: v for k, v in record.items() if k != "dropped"}, ["x1"], 1, False)
