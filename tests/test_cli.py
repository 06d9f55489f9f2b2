"""The command line on files: fit / predict / evaluate / summary, against the library
and numpy as oracles; bad input is one line on stderr, exit code 2, nothing written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from torchlinreg.cli import main

from .conftest import lstsq_fit

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HOUSES = str(EXAMPLES / "houses.csv")


def run(argv: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``torchlinreg ARGV`` in-process: the exit code, stdout and stderr."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def houses() -> np.ndarray:
    return np.loadtxt(HOUSES, delimiter=",", skiprows=1)


def test_fit_json_matches_lstsq(capsys) -> None:
    code, out, err = run(["fit", HOUSES, "--target", "price", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    data = houses()
    coef, intercept = lstsq_fit(data[:, :3], data[:, 3])
    c = report["coefficients"]["price"]
    assert list(c) == ["intercept", "area", "rooms", "age"]
    np.testing.assert_allclose([c["area"], c["rooms"], c["age"]], coef, rtol=1e-12)
    assert c["intercept"] == pytest.approx(intercept, rel=1e-12)
    fitted = data[:, :3] @ coef + intercept
    rss = ((data[:, 3] - fitted) ** 2).sum()
    tss = ((data[:, 3] - data[:, 3].mean()) ** 2).sum()
    assert report["r2"][0] == pytest.approx(1 - rss / tss, rel=1e-12)
    assert report["rmse"][0] == pytest.approx(np.sqrt(rss / 60), rel=1e-12)
    assert report["n"] == 60 and report["method"] == "exact"


def test_fit_text_report(capsys) -> None:
    code, out, err = run(["fit", HOUSES, "--target", "price", "--features", "area"], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("price ~ area: exact least squares on 60 rows in ")
    assert [line.split()[0] for line in lines[1:3]] == ["intercept", "area"]
    assert lines[3].startswith("R² ")


def test_fit_gd_and_ridge_match_their_oracles(capsys) -> None:
    from sklearn.linear_model import Ridge as SkRidge

    data = houses()
    coef, _ = lstsq_fit(data[:, :3], data[:, 3])
    code, out, _ = run(
        ["fit", HOUSES, "--target", "price", "--method", "gd", "--optimizer", "lbfgs",
         "--lr", "1", "--epochs", "50", "--dtype", "float64", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0
    c = json.loads(out)["coefficients"]["price"]
    np.testing.assert_allclose([c["area"], c["rooms"], c["age"]], coef, rtol=1e-6)
    code, out, _ = run(["fit", HOUSES, "--target", "price", "--ridge", "10", "--json"], capsys)
    c = json.loads(out)["coefficients"]["price"]
    ref = SkRidge(alpha=10.0).fit(data[:, :3], data[:, 3])
    np.testing.assert_allclose([c["area"], c["rooms"], c["age"]], ref.coef_, rtol=1e-10)


def test_fit_predict_evaluate_summary_round_trip(tmp_path, capsys) -> None:
    model = tmp_path / "m.safetensors"
    code, out, _ = run(["fit", HOUSES, "--target", "price", "-o", model], capsys)
    assert code == 0 and out.rstrip().endswith(f"model saved to {model}")
    from torchlinreg import LinearRegression

    data = houses()
    expected = LinearRegression().fit(data[:, :3], data[:, 3]).predict(data[:, :3])

    code, out, _ = run(["predict", model, HOUSES, "--keep", "area"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "area,predicted_price"
    got = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    np.testing.assert_allclose(got[:, 0], data[:, 0])
    np.testing.assert_allclose(got[:, 1], expected, rtol=1e-12)

    out_path = tmp_path / "p.parquet"
    code, out, _ = run(["predict", model, HOUSES, "-o", out_path, "--json"], capsys)
    import pyarrow.parquet as pq

    assert json.loads(out)["rows"] == 60
    np.testing.assert_allclose(
        pq.read_table(out_path)["predicted_price"].to_numpy(), expected, rtol=1e-12
    )

    code, out, _ = run(["evaluate", model, HOUSES, "--json"], capsys)
    m = json.loads(out)["targets"]["price"]
    err = data[:, 3] - expected
    assert m["mse"] == pytest.approx(np.mean(err**2), rel=1e-10)
    assert m["mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-10)
    assert m["r2"] == pytest.approx(
        1 - np.sum(err**2) / np.sum((data[:, 3] - data[:, 3].mean()) ** 2), rel=1e-10
    )

    code, out, _ = run(["summary", model, "--json"], capsys)
    d = json.loads(out)
    assert d["model"] == "LinearRegression" and d["features"] == ["area", "rooms", "age"]
    assert d["n"] == 60 and d["method"] == "exact"
    code, out, _ = run(["summary", model], capsys)
    assert out.startswith("LinearRegression predicting price from 3 feature(s)")


def test_predict_json_lines(tmp_path, capsys) -> None:
    model = tmp_path / "m.safetensors"
    run(["fit", HOUSES, "--target", "price", "-o", model], capsys)
    code, out, _ = run(["predict", model, HOUSES, "--json"], capsys)
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 60 and set(records[0]) == {"predicted_price"}


def write(tmp_path: Path, text: str | bytes, name: str = "data.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


GOOD = "x,z,y\n1,0.5,2\n2,0.1,4.5\n3,0.7,6\n4,0.2,8.5\n5,0.9,9.8\n"


@pytest.mark.parametrize(
    ("content", "name", "args", "message"),
    [
        (None, "missing.csv", [], "no such file or directory; check the path"),
        ("", "data.csv", [], "is empty; it needs a header row and data rows"),
        ("x,y\n", "data.csv", [], "has a header but no data rows"),
        ("x,y\n1,2\n2,4,5\n3,6\n", "data.csv", [], "line 3: 3 fields where the header has 2"),
        ("x,y\n1,2\nabc,4\n3,6\n", "data.csv", [], "line 3, column 'x': 'abc' is not a number"),
        ("x,y\n1,2\n2,4\n3,seven\n", "data.csv", [], "line 4, column 'y': 'seven' is not a number"),
        ("x,y\n1,2\n,4\n3,6\n", "data.csv", [], "line 3, column 'x': the value is missing"),
        ("x,y\n1,2\nnan,4\n3,6\n", "data.csv", [], "line 3, column 'x': the value is missing"),
        ("x,y\n1,2\n1e400,4\n3,6\n", "data.csv", [], "line 3, column 'x': inf is not a finite"),
        ("x,y\n1,2\ninf,4\n3,6\n", "data.csv", [], "line 3, column 'x': inf is not a finite"),
        ("x,x,y\n1,2,3\n", "data.csv", [], "duplicate column names x"),
        (GOOD, "data.csv", ["--target", "q"], "no target column 'q'; the columns are: x, z, y"),
        (GOOD, "data.csv", ["--features", "w"], "no feature column 'w'"),
        ("x,y\n1,2\n", "data.csv", [], "1 row(s) for 2 parameters"),
        ("x,c,y\n1,5,2\n2,5,3\n3,5,5\n4,5,4\n", "data.csv", [],
         "(rank 2 of 3 parameters): c is constant or linearly dependent on the other columns; "
         "leave columns out with --exclude"),
        ("a,b,y\n1,2,3\n2,4,5\n3,6,8\n4,8,9\n", "data.csv", [],
         "(rank 2 of 3 parameters): a, b are constant or linearly dependent"),
        ("x;z;y\n1;2;3\n", "data.csv", [], "is the delimiter right? Use --delimiter"),
        (GOOD, "data.xlsx", [], "unsupported file type"),
        (b"\x00\x01\x02\xff\xfe garbage \x00\n\x13\x37", "data.csv", [], "data.csv"),
        (GOOD, "data.csv", ["--features", "x,y"], "is a target or the weights"),
        ("x,name,y\n1,a,2\n2,b,3\n3,c,5\n", "data.csv", ["--features", "x,name"],
         "holds text, not numbers; encode it with --one-hot name"),
        (GOOD, "data.csv", ["--weights", "z", "--missing", "maybe"],
         "argument --missing: invalid choice: 'maybe' (choose from 'error', 'drop'); "
         "see 'torchlinreg fit --help'"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, content, name, args, message) -> None:
    path = tmp_path / name if content is None else write(tmp_path, content, name)
    if "--target" not in args:
        args = [*args, "--target", "y"]
    code, out, err = run(["fit", path, *args], capsys)
    assert code == 2, err
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("torchlinreg fit: error: ")
    assert message in err
    assert "Traceback" not in err


def test_directory_without_parquet_files_is_refused(tmp_path, capsys) -> None:
    code, _, err = run(["fit", tmp_path, "--target", "y"], capsys)
    assert code == 2 and "Parquet" in err and len(err.splitlines()) == 1


def test_missing_values_can_be_dropped_and_are_counted(tmp_path, capsys) -> None:
    path = write(tmp_path, "x,y\n1,2\n,4\n3,6\n4,8.5\nNA,1\n5,10\n")
    code, out, _ = run(["fit", path, "--target", "y", "--missing", "drop", "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["n"] == 4 and report["dropped"] == 2
    coef, intercept = lstsq_fit(np.array([[1.0], [3], [4], [5]]), np.array([2, 6, 8.5, 10]))
    assert report["coefficients"]["y"]["x"] == pytest.approx(coef[0], rel=1e-12)


def test_weights_one_hot_and_several_targets(tmp_path, capsys) -> None:
    rng = np.random.default_rng(3)
    n = 200
    x = rng.normal(size=n)
    color = rng.choice(["blue", "green", "red"], size=n)
    w = rng.uniform(0.5, 2, size=n)
    effect = {"blue": 0.0, "green": 1.5, "red": -2.0}
    y1 = 2 * x + np.array([effect[c] for c in color]) + 0.1 * rng.normal(size=n)
    y2 = -x + 0.1 * rng.normal(size=n)
    lines = ["x,color,w,y1,y2"] + [
        f"{a},{c},{b},{p},{q}" for a, c, b, p, q in zip(x, color, w, y1, y2, strict=True)
    ]
    path = write(tmp_path, "\n".join(lines) + "\n")
    model = tmp_path / "m.safetensors"
    code, out, err = run(
        ["fit", path, "--target", "y1,y2", "--weights", "w", "--one-hot", "color", "--json",
         "-o", model],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["features"] == ["x", "color=green", "color=red"]
    A = np.column_stack([x, color == "green", color == "red"]).astype(float)
    coef, intercept = lstsq_fit(A, np.column_stack([y1, y2]), sample_weight=w)
    got = np.array(
        [[report["coefficients"][t][f] for f in report["features"]] for t in ("y1", "y2")]
    )
    np.testing.assert_allclose(got, coef, rtol=1e-10, atol=1e-12)
    # An unseen category at predict time is named.
    other = write(tmp_path, "x,color\n1,blue\n2,purple\n", "new.csv")
    code, _, err = run(["predict", model, other], capsys)
    assert code == 2 and "line 3, column 'color': category 'purple' was not seen" in err


def test_text_columns_left_out_by_default_are_reported(tmp_path, capsys) -> None:
    path = write(tmp_path, "x,name,y\n1,a,2\n2,b,3.9\n3,c,6.1\n4,d,8\n")
    code, out, err = run(["fit", path, "--target", "y"], capsys)
    assert code == 0 and "y ~ x:" in out
    assert "note: text column(s) not used: name (encode with --one-hot)" in err


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[: len(b) // 2], "not a readable model file"),
        (lambda b: b[:-8] + b"\x00" * 8, "corrupted: its checksum does not match"),
        (lambda b: b"garbage", "not a readable model file"),
        (
            lambda b: re.sub(rb'"format_version":"\d"', b'"format_version":"9"', b),
            "newer torchlinreg",
        ),
    ],
)
def test_damaged_model_files_are_refused(tmp_path, capsys, damage, message) -> None:
    model = tmp_path / "m.safetensors"
    run(["fit", HOUSES, "--target", "price", "-o", model], capsys)
    model.write_bytes(damage(model.read_bytes()))
    for command in (["predict", model, HOUSES], ["evaluate", model, HOUSES], ["summary", model]):
        code, out, err = run(command, capsys)
        assert code == 2 and out == "" and len(err.splitlines()) == 1
        assert message in err, err


def test_a_foreign_safetensors_file_is_not_a_model(tmp_path, capsys) -> None:
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2)}, str(path))
    code, _, err = run(["summary", path], capsys)
    assert code == 2 and "is a safetensors file but not a torchlinreg model" in err


def test_predict_needs_the_model_columns(tmp_path, capsys) -> None:
    model = tmp_path / "m.safetensors"
    run(["fit", HOUSES, "--target", "price", "-o", model], capsys)
    renamed = write(tmp_path, "area,bedrooms,age\n100,2,10\n", "renamed.csv")
    code, _, err = run(["predict", model, renamed], capsys)
    assert code == 2 and "no feature column 'rooms'; the columns are: area, bedrooms, age" in err


def test_outputs_are_checked_first_and_never_half_written(tmp_path, capsys) -> None:
    model = tmp_path / "m.safetensors"
    run(["fit", HOUSES, "--target", "price", "-o", model], capsys)
    code, _, err = run(["predict", model, HOUSES, "-o", tmp_path / "nope" / "p.csv"], capsys)
    assert code == 2 and "does not exist; create it first" in err
    data = write(tmp_path, "area,rooms,age\n100,2,10\n", "in.csv")
    code, _, err = run(["predict", model, data, "-o", data], capsys)
    assert code == 2 and "is also the input" in err
    assert data.read_text() == "area,rooms,age\n100,2,10\n"
    code, _, err = run(["fit", HOUSES, "--target", "price", "-o", HOUSES], capsys)
    assert code == 2 and "is also the input" in err
    # A failure half-way leaves the previous output untouched and no temporary file.
    out = tmp_path / "p.csv"
    out.write_text("previous\n")
    rows = "\n".join(f"{i},2,3" for i in range(100_000))
    bad = write(tmp_path, f"area,rooms,age\n{rows}\n1,2,oops\n", "bad.csv")
    code, _, err = run(["predict", model, bad, "-o", out], capsys)
    assert code == 2 and "line 100002, column 'age': 'oops' is not a number" in err
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["m.safetensors", "in.csv", "bad.csv", "p.csv"]
    )


def test_usage_errors_exit_2(capsys) -> None:
    assert main(["fit", "data.csv"]) == 2  # --target (or --formula) missing
    err = capsys.readouterr().err
    assert "give the target column (--target COL) or a formula (--formula)" in err
    assert len(err.splitlines()) == 1
    assert main(["demo", "--lr", "-1"]) == 2
    assert "must be a finite number > 0" in capsys.readouterr().err


def test_console_script_bad_input_has_no_traceback(tmp_path) -> None:
    path = write(tmp_path, "x,y\n1,2\nabc,4\n")
    proc = subprocess.run(
        [sys.executable, "-m", "torchlinreg", "fit", str(path), "--target", "y"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(
        "line 3, column 'x': 'abc' is not a number; fix the "
        "value or leave the column out (--features/--exclude)"
    )
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_internal_errors_exit_1_with_one_line(monkeypatch, capsys) -> None:
    import torchlinreg.demo

    def boom(**_: object) -> None:
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(torchlinreg.demo, "run_demo", boom)
    code, _, err = run(["demo"], capsys)
    assert code == 1
    assert err.strip() == (
        "torchlinreg demo: internal error: RuntimeError: simulated failure (please report this)"
    )


def test_every_command_has_help_with_an_example(capsys) -> None:
    for command in ("demo", "fit", "predict", "evaluate", "summary", "export"):
        code, out, err = run([command, "--help"], capsys)
        assert code == 0 and err == ""
        assert "example:\n  torchlinreg " + command in out
