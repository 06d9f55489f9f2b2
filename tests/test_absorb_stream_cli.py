"""``torchlinreg fit DATA --absorb ...`` streams the file: equal to the library's
in-memory ``fit(X, y, absorb=...)`` on CSV and Parquet read in many small batches (a
firm first appearing in a late batch), and from standard input (held in memory); a
regressor absorbed entirely is dropped with a one-line warning, reported by the model
file and ``summary MODEL``, and left out of the design ``predict`` replays; a missing
label names the file, row and column.

Tolerance 1e-12 as in tests/test_absorb_cli.py: the same effects from the same float64
numbers (CSV written by pandas and Parquet read back exactly), sums in another order.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from torchlinreg import LinearRegression
from torchlinreg.errors import RankDeficientWarning

from .absorb_panels import assert_coefficients_match, firm_panel
from .cli_run import run_cli as _cli

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

RTOL = 1e-12


def _panel(seed: int = 11, n: int = 600) -> Any:
    df, firm, rng = firm_panel(seed, n)  # firms 40-44 appear only at the end
    df["x2"] = rng.normal(size=n)
    df["size"] = np.cos(firm)  # constant within firms: absorbed by them
    df["y"] = df.x1 - 2 * df.x2 + rng.normal(size=45)[firm] + rng.normal(size=n)
    df["w"] = rng.uniform(0.5, 2.0, n)
    return df


def _check(report: dict[str, Any], df: Any, xs: list[str], cov_type: str) -> None:
    groups = df.firm if cov_type == "cluster" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficientWarning)  # an absorbed regressor
        ref = LinearRegression(cov_type=cov_type).fit(
            df[xs], df.y, sample_weight=df.w, groups=groups, absorb=df[["firm", "year"]]
        )
    s = ref.summary()
    got = report["summary"][0]
    assert_coefficients_match(got, ref, s, RTOL)
    assert [c["name"] for c in got["coefficients"]] == list(ref.feature_names_in_)
    assert got["df_resid"] == s.df_resid
    assert got["r_squared_within"] == pytest.approx(s.r_squared_within, rel=RTOL)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
@pytest.mark.parametrize("cov_type", ["HC1", "cluster"])
def test_streamed_file_equals_the_library(
    tmp_path: Path, small_batches: None, suffix: str, cov_type: str
) -> None:
    df = _panel()
    data = tmp_path / f"panel.{suffix}"
    df.to_csv(data, index=False) if suffix == "csv" else df.to_parquet(data)
    argv = ["fit", data, "--target", "y", "--features", "x1,x2", "--weights", "w", "--absorb",
            "firm,year", "--cov-type", cov_type, "--json"]  # fmt: skip
    if cov_type == "cluster":
        argv += ["--cluster", "firm"]
    code, out, err = _cli(argv)
    assert code == 0, err
    _check(json.loads(out), df, ["x1", "x2"], cov_type)


def test_standard_input_is_fitted_in_memory_alike(tmp_path: Path) -> None:
    df = _panel(12)
    argv = ["fit", "-", "--target", "y", "--features", "x1,x2", "--weights", "w", "--absorb",
            "firm,year", "--cov-type", "HC1", "--json"]  # fmt: skip
    code, out, err = _cli(argv, stdin=df.to_csv(index=False))
    assert code == 0, err
    _check(json.loads(out), df, ["x1", "x2"], "HC1")


def test_absorbed_regressor_is_dropped_and_reported(tmp_path: Path, small_batches: None) -> None:
    df = _panel(13)
    data, model = tmp_path / "panel.parquet", tmp_path / "fe.safetensors"
    df.to_parquet(data)
    argv = ["fit", data, "--target", "y", "--features", "x1,size,x2", "--weights", "w",
            "--absorb", "firm,year", "--cov-type", "HC1", "--json", "-o", model]  # fmt: skip
    code, out, err = _cli(argv)
    assert code == 0, err
    assert len(err.splitlines()) == 1 and "absorb size entirely" in err, err
    report = json.loads(out)
    _check(report, df, ["x1", "size", "x2"], "HC1")  # the library drops it alike
    assert list(report["coefficients"]["y"]) == ["x1", "x2"]
    code, out, err = _cli(["summary", model, "--json"])
    assert code == 0, err
    assert json.loads(out)["absorbed"]["dropped"] == ["size"]
    code, text, err = _cli(["summary", model])
    assert code == 0 and "size" in text, err
    predicted = tmp_path / "pred.csv"
    code, _, err = _cli(["predict", model, data, "-o", predicted])
    assert code == 0, err
    coef = [c["estimate"] for c in report["summary"][0]["coefficients"]]
    np.testing.assert_allclose(
        pd.read_csv(predicted).iloc[:, -1], df[["x1", "x2"]].to_numpy() @ coef, rtol=1e-12
    )


def test_missing_label_names_file_row_and_column(tmp_path: Path, small_batches: None) -> None:
    df = _panel(14)
    df["firm"] = df.firm.astype(object)
    df.loc[300, "firm"] = None
    data = tmp_path / "panel.parquet"
    df.to_parquet(data)
    code, out, err = _cli(["fit", data, "--target", "y", "--features", "x1,x2", "--absorb",
                           "firm,year"])  # fmt: skip
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert "panel.parquet, row 301, column 'firm': the fixed effect's label is missing" in err
