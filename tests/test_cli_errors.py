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

import torchlinreg.cli.app as app

from .conftest import lstsq_fit
from .test_cli import HOUSES, run


def one_error_line(err: str, command: str = "fit") -> str:
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"torchlinreg {command}: error: "), err
    assert "internal error" not in err and "Traceback" not in err
    return err.strip()


HELP = "; see 'torchlinreg fit --help'"
DEVICE_ERRORS = [
    ("--device", "meta",
     "device 'meta' holds no data (tensors there have shapes only); use 'cpu', 'cuda' or 'auto'"),
    ("--device", "nonsense", "unknown device 'nonsense'; use 'cpu', 'cuda', 'cuda:N' or 'auto'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "option", "value", "message"),
    [
        ("gd", "--seed", "-1", "argument --seed: must be >= 0, got -1" + HELP),
        ("gd", "--seed", str(2**64), f"argument --seed: must be <= {2**64 - 1}, got {2**64}" + HELP),
        ("gd", "--seed", "x", "argument --seed: 'x' is not a whole number" + HELP),
        ("exact", "--ridge", "-1", "argument --ridge: must be a finite number >= 0, got -1" + HELP),
        ("exact", "--ridge", "nan", "argument --ridge: must be a finite number >= 0, got nan" + HELP),
        ("exact", "--level", "1",
         "argument --level: must be between 0 and 1 (0.95, say), got 1" + HELP),
        ("exact", "--level", "1.5",
         "argument --level: must be between 0 and 1 (0.95, say), got 1.5" + HELP),
        ("gd", "--batch-size", "0", "argument --batch-size: must be >= 1, got 0" + HELP),
        # A typo would train for ever: the bound comes with its reason.
        ("gd", "--epochs", "99999999999999999999",
         "argument --epochs: must be <= 1000000000 (each epoch reads every row), "
         "got 99999999999999999999" + HELP),
        # --device is checked for the exact method too (it was ignored there).
        *[(method, *case) for method in ("exact", "gd") for case in DEVICE_ERRORS],
    ],
)  # fmt: skip
def test_out_of_range_options_are_one_line_pointing_to_help(
    capsys, method, option, value, message
) -> None:
    """One line, also as one JSON object with --json (argparse's usage block was 12)."""
    args = ["fit", HOUSES, "--target", "price", "--method", method, "--epochs", "1"]
    code, out, err = run([*args, option, value], capsys)
    assert (code, out, err) == (2, "", f"torchlinreg fit: error: {message}\n")
    code, out, err = run([*args, option, value, "--json"], capsys)
    assert (code, out) == (2, "")
    assert json.loads(err) == {"error": message, "exit_code": 2}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.cuda
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
def test_an_exact_fit_on_cuda_matches_the_cpu_fit(tmp_path, capsys) -> None:
    """--device cuda with the exact method: the same coefficients and robust summary as
    on the CPU (float64 both), and the saved model predicts on the CPU."""
    args = ["fit", HOUSES, "--target", "price", "--cov-type", "HC1", "--json"]
    model = tmp_path / "m.safetensors"
    code, out, err = run([*args, "--device", "cuda", "-o", model], capsys)
    assert code == 0, err
    gpu = json.loads(out)
    cpu = json.loads(run(args, capsys)[1])
    for term, value in cpu["coefficients"]["price"].items():
        assert gpu["coefficients"]["price"][term] == pytest.approx(value, rel=1e-9)
    for got, want in zip(
        gpu["summary"][0]["coefficients"], cpu["summary"][0]["coefficients"], strict=True
    ):
        assert got["std_error"] == pytest.approx(want["std_error"], rel=1e-9)
    code, out, err = run(["predict", model, HOUSES], capsys)
    assert code == 0, err


def test_the_largest_epoch_count_is_accepted() -> None:
    from torchlinreg.cli.parser import EPOCHS_MAX, build_parser

    args = build_parser().parse_args(["fit", "d.csv", "--target", "y", "--epochs", str(EPOCHS_MAX)])
    assert args.epochs == EPOCHS_MAX == 10**9


def test_the_exact_method_fits_on_the_device_asked_for(capsys, monkeypatch) -> None:
    """--device reaches the exact estimator (it was dropped unless --method gd)."""
    from torchlinreg.models.linear import LinearRegression

    devices = []
    fit_chunks = LinearRegression.fit_chunks

    def recorded(self: LinearRegression, *a: object, **k: object) -> LinearRegression:
        devices.append(self.device)
        return fit_chunks(self, *a, **k)

    monkeypatch.setattr(LinearRegression, "fit_chunks", recorded)
    code, out, err = run(["fit", HOUSES, "--target", "price", "--device", "cpu", "--json"], capsys)
    assert code == 0, err
    assert devices == ["cpu"]


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

    monkeypatch.setattr(app, "build_parser", interrupted)
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


# Names from the data never reach the terminal raw -----------------------------------

RAW_NAMES = {"a\nb": "a\\nb", "\x1b[31mred": "\\x1b[31mred", "z\u202e": "z\\u202e"}


def raw_controls(text: str) -> list[str]:
    """Characters a terminal would obey (line breaks aside) in ``text``."""
    import unicodedata

    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


def test_names_with_control_characters_are_escaped_on_stdout(tmp_path, capsys) -> None:
    """A header with a line break, an escape sequence and a bidi override in its names,
    and a one-hot level with a bell: fit's report and summary table, and summary MODEL,
    print them escaped, one table line per term; JSON keeps them exact."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 3))
    g = np.array(["u\x07", "v"] * 6)
    y = X @ [1.0, -2.0, 0.5] + (g == "v") * 0.7 + rng.normal(scale=0.1, size=12)
    names = list(RAW_NAMES)
    lines = [",".join(f'"{n}"' for n in [*names, "g\x1b", "y"])]
    lines += [
        ",".join([*map(repr, map(float, x)), f'"{gi}"', repr(float(yi))])
        for x, gi, yi in zip(X, g, y, strict=True)
    ]
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = tmp_path / "m.safetensors"
    args = ["fit", path, "--target", "y", "--one-hot", "g\x1b", "--summary"]
    code, out, err = run([*args, "-o", model], capsys)
    assert code == 0, err
    code, report, err = run([*args, "--json"], capsys)
    coefficients = json.loads(report)["coefficients"]["y"]
    assert list(coefficients) == ["intercept", *names, "g\x1b=v"]  # exact in JSON
    assert raw_controls(out) == []
    for raw, shown in RAW_NAMES.items():
        rows = [line.split() for line in out.splitlines() if line.split()[:1] == [shown]]
        assert len(rows) == 2  # the coefficient table and the summary table
        assert float(rows[0][1]) == pytest.approx(coefficients[raw], rel=1e-5)
    header = out.splitlines()[0]
    assert header.startswith("y ~ a\\nb + \\x1b[31mred + z\\u202e + g\\x1b=v: exact")

    code, out, err = run(["summary", model], capsys)
    assert code == 0 and err == ""
    assert raw_controls(out) == []
    assert "  one-hot g\\x1b: levels u\\x07, v (" in out
    for shown in RAW_NAMES.values():
        assert len([line for line in out.splitlines() if line.split()[:1] == [shown]]) == 1
    code, out, err = run(["summary", model, "--json"], capsys)
    assert json.loads(out)["one_hot"] == {"g\x1b": ["u\x07", "v"]}


def test_target_names_and_paths_are_escaped_on_stdout(tmp_path, capsys) -> None:
    path = tmp_path / "d.csv"
    path.write_text('x,"t\x1b]0;x\x07"\n1,2\n2,4.1\n3,5.9\n4,8.2\n', encoding="utf-8")
    model = tmp_path / "m\x1b.safetensors"
    code, out, err = run(["fit", path, "--target", "t\x1b]0;x\x07", "-o", model], capsys)
    assert code == 0, err
    assert raw_controls(out) == [] and out.startswith("t\\x1b]0;x\\x07 ~ x: ")
    assert out.splitlines()[-1] == f"model saved to {tmp_path}/m\\x1b.safetensors"
    code, out, err = run(["evaluate", model, path], capsys)
    assert code == 0 and raw_controls(out) == []
    assert out.splitlines()[1].startswith("t\\x1b]0;x\\x07: MSE ")
    out_path = tmp_path / "p\x1b.csv"
    code, out, err = run(["predict", model, path, "-o", out_path], capsys)
    assert (code, out) == (0, f"4 predictions written to {tmp_path}/p\\x1b.csv\n")


# A failed fit -o leaves no model ----------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("json_flag", ["", "--json"])
def test_a_report_that_cannot_be_written_leaves_no_model(tmp_path, json_flag) -> None:
    proc = shell(
        f"TLR fit {HOUSES} --target price -o m.safetensors {json_flag} > /dev/full", tmp_path
    )
    assert proc.returncode == 2
    assert "standard output could not be written: No space left on device" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == []  # no model, no temporary file


def test_a_reader_that_stops_reading_still_gets_the_model_saved(tmp_path) -> None:
    """`| true` closes the pipe before the report: quiet, exit 0, and the model saved
    (the report is not the product a closed pipe cancels)."""
    proc = shell(
        f"TLR fit {HOUSES} --target price -o m.safetensors | true; echo ${{PIPESTATUS[0]}}",
        tmp_path,
    )
    assert (proc.stdout, proc.stderr) == ("0\n", "")
    from torchlinreg import load_model

    data = np.loadtxt(HOUSES, delimiter=",", skiprows=1)
    coef, _ = lstsq_fit(data[:, :3], data[:, 3])
    np.testing.assert_allclose(
        load_model(tmp_path / "m.safetensors").estimator.coef_, coef, rtol=1e-10
    )


# --help and --version are output like any other -------------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("argv", ["--help", "--version", "fit --help"])
def test_help_and_version_that_cannot_be_written_are_exit_2(tmp_path, argv) -> None:
    prefix = "torchlinreg"
    proc = shell(f"TLR {argv} > /dev/full", tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"{prefix}: error: standard output could not be written: No space left on device\n"
    )
    proc = shell(f"TLR {argv} >&-", tmp_path)
    assert proc.returncode == 2
    assert (
        proc.stderr == f"{prefix}: error: standard output is closed; redirect it instead "
        "(> /dev/null, say)\n"
    )
    proc = shell(f"TLR {argv}", tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "") and proc.stdout


# --keep ------------------------------------------------------------------------------


@pytest.mark.parametrize("output", [None, "p.parquet", "p.csv"])
def test_a_column_kept_twice_is_refused(tmp_path, capsys, output) -> None:
    """A repeated --keep name made a table with two columns of one name, which predict's
    own readers (and Parquet's) then refused."""
    model = tmp_path / "m.safetensors"
    assert run(["fit", HOUSES, "--target", "price", "-o", model], capsys)[0] == 0
    args = ["predict", model, HOUSES, "--keep", "area,rooms,area"]
    if output:
        args += ["-o", tmp_path / output]
    code, out, err = run(args, capsys)
    assert (code, out) == (2, "")
    assert one_error_line(err, "predict").endswith(
        "--keep names 'area' more than once; name each column once"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_a_feature_named_twice_is_refused_as_such(tmp_path, capsys) -> None:
    """Not reported as a rank-deficient design: the option repeats a name."""
    code, out, err = run(["fit", HOUSES, "--target", "price", "--features", "area,area"], capsys)
    assert (code, out) == (2, "")
    assert one_error_line(err, "fit").endswith("--features names 'area' twice")


# Ctrl-C from the first instant ------------------------------------------------------


def test_ctrl_c_while_the_command_loads_is_exit_130_without_a_traceback() -> None:
    """SIGINT sent while the command's modules load (it used to land in the import of
    torchlinreg.cli, before main could catch it), and at delays that land later: always
    exit 130 and the one line, never a traceback. The child reports its imports as they
    finish (-X importtime); the cue is the first command module's, torchlinreg.cli.output,
    after which torchlinreg.cli.fit, .parser, .predict and .summary are still loading."""
    import signal
    import time

    for delay in (0.0, 0.001, 0.003, 0.006, 0.01, 0.02, 0.05, 0.2):
        proc = subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", "torchlinreg", "fit", HOUSES,
             "--target", "price"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stderr is not None
        cue = next(
            (ln for ln in proc.stderr if ln.split("|")[-1].strip() == "torchlinreg.cli.output"),
            None,
        )
        assert cue is not None, "the child never imported torchlinreg.cli.output"
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        err = "".join(line for line in err.splitlines(True) if not line.startswith("import time:"))
        assert "Traceback" not in err, (delay, err)
        # 130, or killed by SIGINT (a shell's $? is 130 for both): when Ctrl-C lands in
        # code that a C extension runs through PyRun_String (while torch loads), the
        # interpreter re-raises SIGINT at exit although the program caught it.
        assert proc.returncode in (130, -signal.SIGINT), (delay, err)
        assert re.fullmatch(r"torchlinreg( fit)?: error: interrupted\n", err), (delay, err)
        assert out == ""


def test_ctrl_c_in_the_import_of_the_command_is_caught(monkeypatch, capsys) -> None:
    """The same, in-process and at a chosen moment: the import of torchlinreg.cli.app."""
    import importlib.abc

    class Interrupting(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, *_: object) -> None:
            if name == "torchlinreg.cli.app":
                raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "torchlinreg.cli.app")
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    from torchlinreg.cli import main

    assert main(["fit", HOUSES, "--target", "price"]) == 130
    assert capsys.readouterr() == ("", "torchlinreg: error: interrupted\n")
    assert main(["fit", HOUSES, "--target", "price", "--json"]) == 130
    assert json.loads(capsys.readouterr().err) == {"error": "interrupted", "exit_code": 130}


# Null statistics and n -------------------------------------------------------------


def test_a_constant_target_reads_the_same_in_fit_and_evaluate(tmp_path, capsys) -> None:
    path = tmp_path / "d.csv"
    path.write_text("x,y\n1,3\n2,3\n4,3\n")
    model = tmp_path / "m.safetensors"
    code, out, err = run(["fit", path, "--target", "y", "-o", model], capsys)
    assert code == 0, err
    assert "R² n/a (constant target)   RMSE 0\n" in out
    code, out, err = run(["evaluate", model, path], capsys)
    assert code == 0 and "R² n/a (constant target)" in out
    code, out, err = run(["summary", model], capsys)
    assert "  y: R² n/a (constant target)   RMSE 0" in out


def test_n_counts_observations_and_rows_are_said_apart(tmp_path, capsys) -> None:
    """Zero-weight rows are read and not observations (R's lm): n is 3 in the report,
    its summary and the model file; the 5 rows read are reported separately."""
    path = tmp_path / "zw.csv"
    path.write_text("x,y,w\n1,2,1\n2,4.1,0\n3,5.9,1\n4,8.2,0\n5,9.8,2\n")
    w = np.loadtxt(path, delimiter=",", skiprows=1)[:, 2]
    observations = int(np.count_nonzero(w > 0))
    model = tmp_path / "m.safetensors"
    args = ["fit", path, "--target", "y", "--weights", "w", "--summary"]
    code, out, err = run([*args, "--json", "-o", model], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert (report["n"], report["rows"]) == (observations, len(w)) == (3, 5)
    assert report["summary"][0]["n"] == observations
    code, out, _ = run(args, capsys)
    assert out.splitlines()[0].startswith(
        "y ~ x: exact least squares on 3 rows (2 of zero weight not counted) in "
    )
    code, out, _ = run(["summary", model, "--json"], capsys)
    described = json.loads(out)
    assert described["n"] == described["fit"]["n"] == observations


def test_an_error_that_follows_ctrl_c_is_reported_as_interrupted(monkeypatch, capsys) -> None:
    """numpy's import, interrupted, raises ImportError: exit 130, not an internal error.
    The same error without Ctrl-C stays an internal error."""
    import signal

    def swallows_ctrl_c(_: object) -> None:
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            raise ImportError("PyCapsule_Import could not import module 'datetime'") from None

    monkeypatch.setitem(app._COMMANDS, "summary", swallows_ctrl_c)
    code, out, err = run(["summary", "m.safetensors"], capsys)
    assert (code, out, err) == (130, "", "torchlinreg summary: error: interrupted\n")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored

    def fails(_: object) -> None:
        raise ImportError("PyCapsule_Import could not import module 'datetime'")

    monkeypatch.setitem(app._COMMANDS, "summary", fails)
    code, _, err = run(["summary", "m.safetensors"], capsys)
    assert code == 1 and "internal error: ImportError" in err
