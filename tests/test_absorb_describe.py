"""What the command line prints of a model fitted with fixed effects absorbed: no
intercept row (the factors' effects take its place; the stored intercept is 0 and would
read as a fitted one), the factors and their levels named, in ``fit``'s and
``summary MODEL``'s text and JSON, and the report's coefficient table.

The oracle for the levels is the data itself (the number of distinct labels), for the
coefficients the library's own fit on the same rows.
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

pd = pytest.importorskip("pandas")


def _cli(argv: list[Any]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def fitted(tmp_path: Path) -> tuple[Path, Any]:
    rng = np.random.default_rng(3)
    n = 240
    firm = rng.integers(0, 12, n)
    df = pd.DataFrame({"firm": [f"f{i}" for i in firm], "x1": rng.normal(size=n)})
    df["x2"] = rng.normal(size=n)
    df["y"] = df.x1 - 2 * df.x2 + rng.normal(size=12)[firm] + rng.normal(size=n)
    data, model = tmp_path / "panel.csv", tmp_path / "fe.safetensors"
    df.to_csv(data, index=False)
    code, out, err = _cli(["fit", data, "--target", "y", "--absorb", "firm", "-o", model])
    assert code == 0, err
    assert "intercept" not in out
    return model, df


def test_summary_text_names_the_factors_and_prints_no_intercept(fitted: Any) -> None:
    model, df = fitted
    code, out, err = _cli(["summary", model])
    assert code == 0, err
    assert "intercept" not in out.replace("no intercept row", "")
    levels = df.firm.nunique()
    assert f"fixed effects absorbed (no intercept row): firm ({levels} levels)" in out
    assert "demeaned by the fixed effects" in out


def test_summary_json_keeps_the_absorbed_record(fitted: Any) -> None:
    model, df = fitted
    code, out, err = _cli(["summary", model, "--json"])
    assert code == 0, err
    d = json.loads(out)
    assert d["absorbed"]["factors"] == ["firm"]
    assert d["absorbed"]["n_levels"] == [df.firm.nunique()]
    assert list(d["coefficients"]["y"]) == ["x1", "x2"]
    ref = LinearRegression().fit(df[["x1", "x2"]], df.y, absorb=df.firm)
    got = [d["coefficients"]["y"][c] for c in ("x1", "x2")]
    np.testing.assert_allclose(got, ref.coef_, rtol=1e-12)


def test_report_table_has_no_intercept_row() -> None:
    from torchlinreg.report.model import coefficient_table

    rng = np.random.default_rng(4)
    X, f = rng.normal(size=(80, 2)), rng.integers(0, 5, 80)
    y = X @ [1.0, 2.0] + f + rng.normal(size=80)
    absorbed = coefficient_table(LinearRegression().fit(X, y, absorb=f))
    plain = coefficient_table(LinearRegression().fit(X, y))
    assert list(absorbed["y"]) == ["x0", "x1"]
    assert list(plain["y"]) == ["intercept", "x0", "x1"]


def test_conjugate_gradient_fit_is_saved_and_read_back(tmp_path: Path, monkeypatch: Any) -> None:
    """A streamed fit whose factors are solved by conjugate gradients (``method`` "cg")
    goes through the model file like the direct and alternating ones."""
    import torchlinreg.solvers.absorb.projection as projection
    from torchlinreg.persistence import load_model, save_model

    monkeypatch.setattr(projection, "MAX_REST_LEVELS", 10)  # 40 firms: "too many"
    rng = np.random.default_rng(6)
    n = 1200
    worker, firm = rng.integers(0, 150, n), rng.integers(0, 40, n)
    X = rng.normal(size=(n, 2)) + np.c_[0.01 * worker, 0.02 * firm]
    y = X @ [1.0, -1.0] + rng.normal(size=150)[worker] + rng.normal(size=40)[firm]
    y += rng.normal(size=n)
    chunks = [
        (X[i : i + 300], y[i : i + 300], None, {"f1": worker[i : i + 300], "f2": firm[i : i + 300]})
        for i in range(0, n, 300)
    ]
    model = LinearRegression().fit_chunks(chunks, absorb=["f1", "f2"])
    assert model.absorbed_.method == "cg"
    path = tmp_path / "cg.safetensors"
    save_model(path, model)
    loaded = load_model(path).estimator
    assert loaded.absorbed_ == model.absorbed_
    np.testing.assert_array_equal(loaded.coef_, model.coef_)
    code, out, err = _cli(["summary", path])
    assert code == 0, err
    assert "f1 (150 levels), f2 (40 levels)" in out


def test_report_of_an_absorbed_model_names_the_effects_without_influence(
    fitted: Any, tmp_path: Path
) -> None:
    """``report MODEL DATA``: the summary with its fixed-effects note; influence and the
    diagnostic plots are said to be left out (the leverages of the demeaned fit are not
    a row's leverage), not refused as 'not the data the model was fitted on'."""
    pytest.importorskip("matplotlib")
    model, df = fitted
    data, html = tmp_path / "panel.csv", tmp_path / "report.html"
    code, out, err = _cli(["report", model, data, "-o", html])
    assert code == 0, err
    text = html.read_text()
    assert f"fixed effects absorbed: firm ({df.firm.nunique()} levels)" in text
    assert "not computed for a fit with fixed effects absorbed" in text


def test_library_refusals_name_the_fit_time_covariance_and_influence() -> None:
    """The raw rows given again do not match the demeaned fit's state: a robust summary
    with data and influence() say what to do instead of 'not the data the model was
    fitted on'."""
    from torchlinreg.errors import InputError

    rng = np.random.default_rng(8)
    X, f = rng.normal(size=(90, 2)), rng.integers(0, 6, 90)
    y = X @ [1.0, 2.0] + f + rng.normal(size=90)
    model = LinearRegression(cov_type="HC1").fit(X, y, absorb=f)
    with pytest.raises(InputError, match=r"fit LinearRegression\(cov_type='HC3'\) with absorb"):
        model.summary(cov_type="HC3", X=X, y=y)
    with pytest.raises(InputError, match="at fit time: call summary\\(\\) without data"):
        model.summary(cov_type="HC1", X=X, y=y)
    with pytest.raises(InputError, match="influence statistics are not computed"):
        model.influence(X, y)
    assert model.summary().cov_type == "HC1"
