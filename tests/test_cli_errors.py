"""Bad input, bad options and a hostile environment (closed or full standard streams,
Ctrl-C) get exit code 2 (130 when interrupted) and one line on stderr, never an internal
error; predict/evaluate handle missing values as asked and keep rows in line."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import torchlinreg.cli as cli

from .conftest import lstsq_fit
from .test_cli import HOUSES, run


def one_error_line(err: str, command: str = "fit") -> str:
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"torchlinreg {command}: error: "), err
    assert "internal error" not in err and "Traceback" not in err
    return err.strip()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--seed", "-1", "argument --seed: must be >= 0, got -1"),
        ("--seed", str(2**64), f"argument --seed: must be <= {2**64 - 1}"),
        ("--seed", "x", "argument --seed: 'x' is not a whole number"),
        ("--ridge", "-1", "argument --ridge: must be a finite number >= 0"),
        ("--ridge", "nan", "argument --ridge: must be a finite number >= 0"),
        ("--level", "1.5", "argument --level: must be between 0 and 1"),
        ("--device", "meta", "device 'meta' holds no data"),
        ("--device", "nonsense", "unknown device 'nonsense'"),
    ],
)
def test_out_of_range_options_exit_2_with_one_line(capsys, option, value, message) -> None:
    args = ["fit", HOUSES, "--target", "price", "--method", "gd", "--epochs", "1"]
    if option in ("--ridge", "--level"):
        args = ["fit", HOUSES, "--target", "price"]
    code, out, err = run([*args, option, value], capsys)
    assert code == 2 and out == ""
    assert message in err.splitlines()[-1], err
    assert "internal error" not in err


def test_the_largest_seed_is_accepted(capsys) -> None:
    code, _, err = run(
        ["fit", HOUSES, "--target", "price", "--method", "gd", "--epochs", "2",
         "--lr", "1e-9", "--batch-size", "8", "--seed", 2**64 - 1, "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err


@pytest.mark.parametrize("estimator", ["LinearRegression", "GDRegressor"])
def test_library_refuses_devices_that_hold_no_data(estimator) -> None:
    import torchlinreg
    from torchlinreg.errors import InputError

    X = np.arange(12.0).reshape(6, 2) ** 1.5
    with pytest.raises(InputError, match="device 'meta' holds no data"):
        getattr(torchlinreg, estimator)(device="meta").fit(X, X[:, 0] + 1)


def test_usage_errors_are_json_with_json(capsys) -> None:
    code, out, err = run(["fit", HOUSES, "--json", "--level", "2"], capsys)
    assert code == 2 and out == ""
    record = json.loads(err)  # one object, nothing else
    assert record["exit_code"] == 2 and "--level" in record["error"]


def test_errors_are_one_json_object_with_json(capsys) -> None:
    code, out, err = run(["fit", HOUSES, "--target", "nope", "--json"], capsys)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1
    record = json.loads(err)
    assert record == {"error": record["error"], "exit_code": 2}
    assert "no target column 'nope'" in record["error"]


def test_control_characters_in_names_are_escaped(tmp_path, capsys) -> None:
    path = tmp_path / "d.csv"
    path.write_text('x,"a\x1b[2Jb",y\n1,2,3\n2,3,5\n3,5,7\n4,4,9\n', encoding="utf-8")
    code, _, err = run(["fit", path, "--target", "y", "--features", "x,z\u202ez\x07"], capsys)
    line = one_error_line(err)
    assert code == 2
    assert "\x1b" not in line and "\u202e" not in line and "\x07" not in line
    assert "a\\x1b[2Jb" in line and "z\\u202ez\\x07" in line


def test_keyboard_interrupt_while_parsing_is_exit_130(monkeypatch, capsys) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    code, out, err = run(["fit", HOUSES, "--target", "price"], capsys)
    assert code == 130 and out == ""
    assert err == "torchlinreg: error: interrupted\n"


def test_an_empty_column_name_can_be_excluded_as_suggested(tmp_path, capsys) -> None:
    path = tmp_path / "d.csv"
    path.write_text("x,,y\n1,7,2\n2,3,4.1\n3,1,5.9\n4,0,8.2\n")
    code, _, err = run(["fit", path, "--target", "y"], capsys)
    assert code == 2 and "--exclude ''" in one_error_line(err)
    code, out, err = run(["fit", path, "--target", "y", "--exclude", "", "--json"], capsys)
    assert code == 0, err
    coef, intercept = lstsq_fit(np.array([[1.0], [2], [3], [4]]), np.array([2, 4.1, 5.9, 8.2]))
    got = json.loads(out)["coefficients"]["y"]
    assert got["x"] == pytest.approx(coef[0], rel=1e-12)


def test_too_few_rows_for_a_wide_design_are_refused_before_folding(
    tmp_path, capsys, monkeypatch
) -> None:
    """20 rows and 400 columns: refused when the stream ends, before the solver has
    seen a row (it would build a 401 × 401 factor); Parquet is refused from its
    metadata before any row is read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from torchlinreg.data.sources import ParquetSource
    from torchlinreg.solvers.state import LeastSquaresState

    def never(*_: object, **__: object) -> None:
        raise AssertionError("the solver was fed")

    monkeypatch.setattr(LeastSquaresState, "update", never)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 400))
    names = ["y"] + [f"x{j}" for j in range(399)]
    csv = tmp_path / "wide.csv"
    np.savetxt(csv, X, delimiter=",", header=",".join(names), comments="")
    code, _, err = run(["fit", csv, "--target", "y"], capsys)
    assert code == 2
    assert "20 row(s) for 400 parameters" in one_error_line(err)

    parquet = tmp_path / "wide.parquet"
    pq.write_table(pa.table({n: X[:, j] for j, n in enumerate(names)}), parquet)
    monkeypatch.setattr(ParquetSource, "batches", never)
    code, _, err = run(["fit", parquet, "--target", "y", "--no-intercept"], capsys)
    assert code == 2
    assert "20 row(s) for 399 parameters" in one_error_line(err)


def test_robust_covariance_from_standard_input_is_refused_before_reading(capsys) -> None:
    code, _, err = run(["fit", "-", "--target", "y", "--cov-type", "HC1"], capsys)
    assert code == 2
    assert "--cov-type HC1 reads the data twice; standard input cannot be" in one_error_line(err)


def test_every_row_dropped_is_named(tmp_path, capsys) -> None:
    path = tmp_path / "d.csv"
    path.write_text("x,y\n1,\n,4\nNA,5\n")
    code, _, err = run(["fit", path, "--target", "y", "--missing", "drop"], capsys)
    assert code == 2 and "every row was dropped for missing values" in one_error_line(err)


def test_model_is_written_only_after_the_report_is_ready(tmp_path, capsys, monkeypatch) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("simulated failure while preparing the report")

    import torchlinreg.cli.fit

    monkeypatch.setattr(torchlinreg.cli.fit, "_fit_text", broken)
    model = tmp_path / "m.safetensors"
    code, _, err = run(["fit", HOUSES, "--target", "price", "-o", model], capsys)
    assert code == 1 and "simulated failure" in err
    assert not model.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "options",
    [["--summary"], ["--level", "0.9"], ["--cov-type", "HC1"], ["--cluster", "bedrooms"]],
)
def test_the_summary_needs_the_exact_method(capsys, options) -> None:
    # --level used to reach the summary of a gradient-descent fit: an internal error.
    args = ["fit", HOUSES, "--target", "price", "--method", "gd", "--epochs", "1", *options]
    code, out, err = run(args, capsys)
    assert code == 2 and out == ""
    assert "needs the exact method; drop --method gd" in one_error_line(err)


def test_fit_options_are_checked_together_however_they_are_built() -> None:
    from torchlinreg.errors import InputError
    from torchlinreg.jobs import FitOptions

    for options, message in (
        ({"method": "newton"}, "unknown method 'newton'"),
        ({"method": "gd", "ridge": 1.0}, "--ridge works with the exact method"),
        ({"method": "gd", "cov_type": "HC3"}, "needs the exact method"),
        ({"cov_type": "cluster"}, "--cov-type cluster needs --cluster COL"),
        ({"cov_type": "HC3", "cluster": "g"}, "--cluster goes with --cov-type cluster"),
        ({"cov_type": "HC9"}, "unknown cov_type 'HC9'"),
        ({"summary": True, "level": 95}, "level must be between 0 and 1"),
    ):
        with pytest.raises(InputError, match=message):
            FitOptions(targets=["y"], **options)
    clustered = FitOptions(targets=["y"], cluster="g")
    assert (clustered.cov_type, clustered.summary, clustered.robust) == ("cluster", True, True)
    plain = FitOptions(targets=["y"])
    assert (plain.cov_type, plain.summary, plain.robust) == ("nonrobust", False, False)


def test_a_missing_cluster_label_is_looked_for_in_the_rows_fitted(tmp_path, capsys) -> None:
    # Line 2 is dropped for its missing x, so its missing label does not matter; line 4's does.
    path = tmp_path / "d.csv"
    path.write_text("x,g,y\n,,1\n1,a,2\n2,,3.9\n3,b,6.1\n4,a,8.2\n5,b,9.9\n")
    args = ["fit", path, "--target", "y", "--missing", "drop", "--cluster", "g"]
    code, _, err = run(args, capsys)
    assert code == 2
    assert "line 4, column 'g': the cluster label is missing" in one_error_line(err)


# Missing values at predict/evaluate time --------------------------------------------

TRAIN = "id,x,z,y\na,1,0.5,2\nb,2,0.1,4.5\nc,3,0.7,6\nd,4,0.2,8.5\ne,5,0.9,9.8\nf,6,0.3,12.1\n"
NEW = "id,x,z\nA,1.5,0.2\nB,,0.3\nC,2.5,0.4\nD,3.5,NA\nE,4.5,0.6\n"


@pytest.fixture
def model_and_new(tmp_path, capsys) -> tuple[Path, Path, np.ndarray]:
    train = tmp_path / "train.csv"
    train.write_text(TRAIN)
    model = tmp_path / "m.safetensors"
    # Fitted with --missing drop: predict must not inherit it and drop rows silently.
    code, _, err = run(["fit", train, "--target", "y", "--missing", "drop", "-o", model], capsys)
    assert code == 0, err
    new = tmp_path / "new.csv"
    new.write_text(NEW)
    A = np.array([[1, 0.5], [2, 0.1], [3, 0.7], [4, 0.2], [5, 0.9], [6, 0.3]])
    coef, intercept = lstsq_fit(A, np.array([2, 4.5, 6, 8.5, 9.8, 12.1]))
    X = np.array([[1.5, 0.2], [np.nan, 0.3], [2.5, 0.4], [3.5, np.nan], [4.5, 0.6]])
    return model, new, X @ coef + intercept


def test_predict_stops_at_a_missing_value_by_default(model_and_new, capsys) -> None:
    model, new, _ = model_and_new
    code, out, err = run(["predict", model, new], capsys)
    assert code == 2 and out == ""
    assert "line 3, column 'x': the value is missing" in one_error_line(err, "predict")
    assert "--missing" in err


def test_predict_missing_exclude_keeps_rows_in_line(model_and_new, capsys, tmp_path) -> None:
    model, new, expected = model_and_new
    code, out, err = run(["predict", model, new, "--keep", "id", "--missing", "exclude"], capsys)
    assert code == 0
    assert err == "torchlinreg predict: note: 2 rows with missing values have an empty prediction\n"
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["id", "predicted_y"]
    assert [r[0] for r in rows[1:]] == ["A", "B", "C", "D", "E"]
    cells = [r[1] for r in rows[1:]]
    assert cells[1] == cells[3] == ""
    got = np.array([float(c) for c in cells if c])
    np.testing.assert_allclose(got, expected[[0, 2, 4]], rtol=1e-12)

    # Alone in a CSV, an empty prediction is "NA": a blank line would be skipped by
    # readers, shifting every row after it.
    code, out, _ = run(["predict", model, new, "--missing", "exclude"], capsys)
    import pandas as pd

    column = pd.read_csv(io.StringIO(out))["predicted_y"].to_numpy()
    np.testing.assert_allclose(column, expected, rtol=1e-12)  # NaN where expected is

    import pyarrow.parquet as pq

    out_path = tmp_path / "p.parquet"
    code, out, _ = run(["predict", model, new, "-o", out_path, "--missing", "exclude"], capsys)
    assert code == 0 and "(2 rows with missing values have an empty prediction)" in out
    column = pq.read_table(out_path)["predicted_y"].to_pylist()
    assert column[1] is None and column[3] is None and len(column) == 5

    code, out, _ = run(["predict", model, new, "--missing", "exclude", "--json"], capsys)
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["predicted_y"] is None for r in records] == [False, True, False, True, False]


def test_predict_missing_drop_says_how_many(model_and_new, capsys) -> None:
    model, new, expected = model_and_new
    code, out, err = run(["predict", model, new, "--missing", "drop", "--keep", "id"], capsys)
    assert code == 0
    assert err == "torchlinreg predict: note: 2 rows dropped for missing values\n"
    rows = list(csv.reader(io.StringIO(out)))[1:]
    assert [r[0] for r in rows] == ["A", "C", "E"]
    got = np.array([float(r[1]) for r in rows])
    np.testing.assert_allclose(got, expected[[0, 2, 4]], rtol=1e-12)


def test_absent_columns_are_named_with_the_columns_there_are(model_and_new, capsys) -> None:
    model, new, _ = model_and_new
    code, out, err = run(["predict", model, new, "--keep", "id,ident"], capsys)
    assert code == 2 and out == ""
    assert "no --keep column 'ident'; the columns are: id, x, z" in one_error_line(err, "predict")
    code, _, err = run(["evaluate", model, new], capsys)
    assert code == 2
    assert "no target column 'y'; the columns are: id, x, z" in one_error_line(err, "evaluate")


def test_evaluate_missing_error_or_drop(model_and_new, capsys, tmp_path) -> None:
    model, _, expected = model_and_new
    data = tmp_path / "eval.csv"
    y = np.array([3.0, 99.0, 5.0, 99.0, 9.5])
    rows = [line + f",{t}" for line, t in zip(NEW.splitlines()[1:], y, strict=True)]
    data.write_text("id,x,z,y\n" + "\n".join(rows) + "\n")
    code, _, err = run(["evaluate", model, data], capsys)
    assert code == 2 and "the value is missing" in one_error_line(err, "evaluate")
    code, out, _ = run(["evaluate", model, data, "--missing", "drop", "--json"], capsys)
    result = json.loads(out)
    keep = [0, 2, 4]
    assert result["n"] == 3 and result["dropped"] == 2
    mse = np.mean((y[keep] - expected[keep]) ** 2)
    assert result["targets"]["y"]["mse"] == pytest.approx(mse, rel=1e-10)


@pytest.mark.parametrize("command", ["fit", "predict", "evaluate"])
def test_a_missing_value_error_suggests_options_its_command_takes(
    command, model_and_new, capsys, tmp_path
) -> None:
    """Every ``--missing`` choice the message names works for that command; predict's
    first is the one that keeps output rows in line with input rows."""
    model, new, _ = model_and_new
    with_y = tmp_path / "with_y.csv"
    rows = [f"{line},{j}" for j, line in enumerate(NEW.splitlines()[1:])]
    with_y.write_text("id,x,z,y\n" + "\n".join(rows) + "\n")
    argv = {
        "fit": ["fit", with_y, "--target", "y", "--exclude", "id"],
        "predict": ["predict", model, new],
        "evaluate": ["evaluate", model, with_y],
    }[command]
    code, _, err = run(argv, capsys)
    suggested = re.findall(r"--missing (\w+)", one_error_line(err, command))
    assert code == 2 and suggested
    for choice in suggested:
        code, _, err = run([*argv, "--missing", choice], capsys)
        assert code == 0, (choice, err)
    if command == "predict":
        assert suggested[0] == "exclude"


def test_evaluate_one_hot_without_intercept(tmp_path, capsys) -> None:
    """Without an intercept every category keeps its column: evaluate must rebuild the
    design that way (it used to drop the reference level and fail)."""
    rng = np.random.default_rng(5)
    n = 60
    x = rng.normal(size=n)
    g = rng.choice(["a", "b", "c"], size=n)
    y = 1.5 * x + np.select([g == "a", g == "b"], [1.0, -2.0], 0.5) + 0.1 * rng.normal(size=n)
    path = tmp_path / "d.csv"
    path.write_text("x,g,y\n" + "".join(f"{a},{b},{c}\n" for a, b, c in zip(x, g, y, strict=True)))
    model = tmp_path / "m.safetensors"
    code, _, err = run(
        ["fit", path, "--target", "y", "--one-hot", "g", "--no-intercept", "-o", model], capsys
    )
    assert code == 0, err
    A = np.column_stack([x, g == "a", g == "b", g == "c"]).astype(float)
    coef, _ = lstsq_fit(A, y, fit_intercept=False)
    resid = y - A @ coef
    code, out, err = run(["evaluate", model, path, "--json"], capsys)
    assert code == 0, err
    m = json.loads(out)["targets"]["y"]
    assert m["mse"] == pytest.approx(np.mean(resid**2), rel=1e-10)
    assert m["r2"] == pytest.approx(1 - np.sum(resid**2) / np.sum((y - y.mean()) ** 2), rel=1e-10)


# The standard streams, for real: a subprocess with them closed, full or piped ----------


def shell(command: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    exe = f"{sys.executable} -m torchlinreg"
    return subprocess.run(
        ["bash", "-c", command.replace("TLR", exe)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_standard_output_full_is_exit_2(tmp_path) -> None:
    proc = shell(f"TLR fit {HOUSES} --target price > /dev/full", tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == (
        "torchlinreg fit: error: standard output could not be written: No space left on device\n"
    )


def test_closed_standard_streams_are_exit_2(tmp_path) -> None:
    proc = shell(f"TLR fit {HOUSES} --target price >&-", tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("torchlinreg fit: error: standard output is closed")
    proc = shell("TLR fit - --target price <&-", tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("torchlinreg fit: error: standard input is closed")
    assert len(proc.stderr.splitlines()) == 1


def test_a_closed_pipe_is_quiet(tmp_path) -> None:
    big = tmp_path / "big.csv"
    big.write_text("x,y\n" + "".join(f"{i},{2 * i + i % 3}\n" for i in range(200_000)))
    proc = shell(
        "TLR fit big.csv --target y -o m.safetensors > /dev/null && "
        "TLR predict m.safetensors big.csv | head -1; echo ${PIPESTATUS[0]}",
        tmp_path,
    )
    assert proc.stdout == "predicted_y\n0\n"
    assert proc.stderr == ""


def test_warnings_are_one_line_each_and_json_with_json(monkeypatch, capsys) -> None:
    import warnings

    import torchlinreg.demo

    def warns(**_: object) -> None:
        warnings.warn("first\nsecond", UserWarning, stacklevel=1)

    monkeypatch.setattr(torchlinreg.demo, "run_demo", warns)
    code, _, err = run(["demo"], capsys)  # demo has no --json
    assert code == 0 and err == "torchlinreg demo: warning: first\\nsecond\n"

    def fit_warns(*_: object, **__: object) -> None:
        warnings.warn("X is badly conditioned", UserWarning, stacklevel=1)
        raise KeyboardInterrupt

    import torchlinreg.jobs

    monkeypatch.setattr(torchlinreg.jobs, "fit_file", fit_warns)
    code, out, err = run(["fit", HOUSES, "--target", "price", "--json"], capsys)
    assert code == 130 and out == ""
    assert json.loads(err) == {"error": "interrupted", "exit_code": 130}  # no warning after


def test_invalid_utf8_in_a_parquet_feature_column_is_exit_2(tmp_path, capsys) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    train = tmp_path / "train.csv"
    train.write_text("x1,y\n1,2\n2,3.9\n3,6.2\n4,7.8\n")
    model = tmp_path / "m.safetensors"
    assert run(["fit", train, "--target", "y", "-o", model], capsys)[0] == 0
    raw = pa.array([b"1.5", b"\x88x", b"2.0"], pa.binary())
    damaged = pa.Array.from_buffers(pa.string(), len(raw), raw.buffers())  # not validated
    data = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x1": damaged}), data)
    code, _, err = run(["predict", model, data], capsys)
    assert code == 2 and "'x1'" in one_error_line(err, "predict")
