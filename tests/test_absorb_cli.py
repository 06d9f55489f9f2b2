"""``torchlinreg fit DATA --target y --absorb firm,year``: the command line equals the
library's ``LinearRegression(cov_type=...).fit(X, y, absorb=...)`` on the same rows
(nonrobust, HC1, one-way cluster, weights, rows dropped for missing values), the saved
model keeps the fixed effects, bad input is exit code 2 with one line.

Tolerance 1e-12: the command line streams the file (level sums, then the demeaned rows)
and the library holds the rows in memory, but both solve the same effects from the same
float64 numbers (a CSV written by pandas reads back exactly); only the order of the
sums differs, a few ulps times the design's condition number (~10 here), far below
1e-12; a lost degree-of-freedom rule or a kept intercept moves the standard errors by
≥ 1/n ≈ 2e-3.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from torchlinreg import LinearRegression
from torchlinreg.cli import main
from torchlinreg.persistence import load_model

from .absorb_panels import assert_coefficients_match

pd = pytest.importorskip("pandas")

RTOL = 1e-12


def _panel(seed: int = 5, n: int = 500) -> Any:
    rng = np.random.default_rng(seed)
    firm = rng.integers(0, 35, n)
    df = pd.DataFrame({"firm": [f"f{i:02d}" for i in firm], "year": rng.integers(2000, 2007, n)})
    df["x1"] = rng.normal(size=n) + 0.05 * firm
    df["x2"] = rng.normal(size=n)
    df["y"] = df.x1 - 2 * df.x2 + rng.normal(size=35)[firm] + rng.normal(size=n)
    df["w"] = rng.uniform(0.5, 2.0, n)
    return df


def _cli(argv: list[Any]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _refused(argv: list[Any], message: str) -> None:
    code, out, err = _cli(argv)
    assert code == 2, err
    assert out == "" and len(err.splitlines()) == 1 and "Traceback" not in err
    assert message in err, err


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC1", "cluster"])
def test_cli_equals_the_library(tmp_path: Path, cov_type: str) -> None:
    df = _panel()
    data, model_path = tmp_path / "panel.csv", tmp_path / "fe.safetensors"
    df.to_csv(data, index=False)
    argv = ["fit", data, "--target", "y", "--features", "x1,x2", "--weights", "w",
            "--absorb", "firm,year", "--cov-type", cov_type, "--summary", "--json", "-o",
            model_path]  # fmt: skip
    if cov_type == "cluster":
        argv += ["--cluster", "firm"]
    code, out, err = _cli(argv)
    assert code == 0, err
    report = json.loads(out)
    groups = df.firm if cov_type == "cluster" else None
    ref = LinearRegression(cov_type=cov_type).fit(
        df[["x1", "x2"]], df.y, sample_weight=df.w, groups=groups, absorb=df[["firm", "year"]]
    )
    s = ref.summary()
    got = report["summary"][0]
    assert_coefficients_match(got, ref, s, RTOL)
    assert got["df_resid"] == s.df_resid and got["cov_type"] == cov_type
    assert report["r2"][0] == pytest.approx(s.r_squared, rel=RTOL)  # about the mean of y
    loaded = load_model(str(model_path)).estimator
    assert loaded.absorbed_ == ref.absorbed_
    np.testing.assert_allclose(
        [c.std_error for c in loaded.summary().coefficients],
        [c.std_error for c in s.coefficients],
        rtol=RTOL,
    )


def test_rows_missing_values_are_dropped_as_the_library_drops_them(tmp_path: Path) -> None:
    df = _panel(6)
    df.loc[[4, 77], "x2"] = np.nan
    data = tmp_path / "panel.csv"
    df.to_csv(data, index=False)
    code, out, err = _cli(["fit", data, "--target", "y", "--exclude", "w", "--absorb",
                           "firm", "--missing", "drop", "--cov-type", "HC1", "--json"])  # fmt: skip
    assert code == 0, err
    kept = df.dropna()
    ref = LinearRegression(cov_type="HC1").fit(kept[["year", "x1", "x2"]], kept.y,
                                               absorb=kept[["firm"]])  # fmt: skip
    got = json.loads(out)["summary"][0]["coefficients"]
    np.testing.assert_allclose([c["estimate"] for c in got], ref.coef_, rtol=RTOL)
    np.testing.assert_allclose(
        [c["std_error"] for c in got], [c.std_error for c in ref.summary().coefficients], rtol=RTOL
    )


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    df = _panel(7, n=80)
    df["size"] = df.firm.str[1:].astype(float)  # constant within firm
    data = tmp_path / "panel.csv"
    df.to_csv(data, index=False)
    base = ["fit", data, "--target", "y", "--features", "x1,x2"]
    _refused([*base, "--absorb", "region"], "no --absorb column 'region'; the columns are")
    _refused([*base, "--absorb", "firm", "--method", "gd"], "drop --method gd")
    _refused([*base, "--absorb", "firm", "--cov-type", "HAC"], "--cov-type HAC with --absorb")
    _refused([*base, "--absorb", "firm", "--cluster", "firm,year"], "two-way clusters")
    _refused([*base, "--absorb", "x1"], "--absorb column 'x1' is also")
    _refused(["fit", data, "--target", "y", "--features", "size", "--absorb", "firm"],
             "the fixed effects absorb every regressor (size)")  # fmt: skip
    _refused(["fit", data, "--formula", "y ~ x1 | firm", "--absorb", "firm"], "pick one")
    df.loc[30, "year"] = np.nan
    df.to_csv(data, index=False)
    # The CSV's line 32 is data row 31 (line 1 is the header).
    _refused([*base, "--absorb", "firm,year"], "line 32, column 'year': the fixed effect's")


def test_refused_under_torchrun(tmp_path: Path) -> None:
    """Under torchrun (a process group) the option is refused before reading."""
    from torchlinreg.errors import InputError
    from torchlinreg.jobs import FitOptions, fit_file

    options = FitOptions(targets=["y"], absorb=["firm"])
    with pytest.raises(InputError, match="does not run under torchrun") as info:
        fit_file(str(tmp_path / "absent.csv"), options, group=object())
    assert len(str(info.value).splitlines()) == 1
