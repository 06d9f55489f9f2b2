"""`torchlinreg fit` and the CLI's error handling: one line, exit code 2, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from torchlinreg.cli import main

from .conftest import lstsq_fit

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_fit_json_matches_lstsq(capsys) -> None:
    code, out, err = run(
        [
            "fit",
            str(EXAMPLES / "houses.csv"),
            "--target",
            "price",
            "--optimizer",
            "lbfgs",
            "--lr",
            "1",
            "--epochs",
            "50",
            "--dtype",
            "float64",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    result = json.loads(out)
    data = np.loadtxt(EXAMPLES / "houses.csv", delimiter=",", skiprows=1)
    coef, intercept = lstsq_fit(data[:, :3], data[:, 3])
    assert list(result["coef"]) == ["area", "rooms", "age"]
    np.testing.assert_allclose(list(result["coef"].values()), coef, rtol=1e-6)
    assert result["intercept"] == pytest.approx(intercept, rel=1e-6)
    assert result["n"] == 60 and result["method"] == "gd"


def test_fit_text_output_on_the_tutorial_csv(capsys) -> None:
    from torchlinreg import GDRegressor

    code, out, _ = run(["fit", str(EXAMPLES / "tutorial.csv"), "--target", "y"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "y ~ x: gradient descent (sgd, lr=0.01, epochs 0..3000) on 3 rows"
    # The CLI prints what the library fits on the same data.
    model = GDRegressor().fit([[1.0], [2.0], [3.0]], [2.0, 4.0, 6.0])
    assert lines[1].split() == ["intercept", f"{model.intercept_:.6g}"]
    assert lines[2].split() == ["x", f"{model.coef_[0]:.6g}"]
    assert float(lines[2].split()[1]) == pytest.approx(2, abs=1e-3)


def test_fit_features_option_and_log_to_stderr(capsys) -> None:
    code, out, err = run(
        [
            "fit",
            str(EXAMPLES / "houses.csv"),
            "--target",
            "price",
            "--features",
            "area",
            "--optimizer",
            "lbfgs",
            "--lr",
            "1",
            "--epochs",
            "20",
            "--log-every",
            "10",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    assert list(json.loads(out)["coef"]) == ["area"]  # stdout stays pure JSON
    assert [line.split("/")[0] for line in err.splitlines()] == [
        "Epoch    0",
        "Epoch   10",
        "Epoch   20",
    ]


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, [], "no such file; check the path"),
        ("x,y\n1,2\n2,4\n", ["--features", "z"], "no column 'z'; the columns are: x, y"),
        ("x,y\n1,2\n2,4\n", ["--target", "q"], "no column 'q'"),
        ("x,y\n1,2\nabc,4\n3,6\n", [], "line 3, column 'x': 'abc' is not a number"),
        ("x,y\n1,2\n2,4\n3,seven\n", [], "line 4, column 'y': 'seven' is not a number"),
        ("x,y\n1,2\n,4\n3,6\n", [], "line 3, column 'x': the value is missing"),
        ("x,y\n1,2\n1e400,4\n", [], "line 3, column 'x': inf is not a finite number"),
        ("", [], "is empty"),
        ("x,y\n", [], "has a header but no data rows"),
        ("x,y\n1,2,3\n", [], "could not be parsed as CSV"),
        ("x,x,y\n1,2,3\n", [], "duplicate column names x"),
        ("x,name,y\n1,a,2\n2,b,3\n", [], "column 'name' is not numeric (e.g. 'a' on line 2)"),
        ("x,y\n1,2\n", ["--features", "y"], "'y' is the target"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, content, args, message) -> None:
    path = tmp_path / "missing.csv" if content is None else write(tmp_path, content)
    if "--target" not in args:
        args = [*args, "--target", "y"]
    code, out, err = run(["fit", str(path), *args], capsys)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("torchlinreg fit: error: ")
    assert message in err
    if content is not None:
        assert str(path) in err or "target" in err


def test_directory_instead_of_file(tmp_path, capsys) -> None:
    code, _, err = run(["fit", str(tmp_path), "--target", "y"], capsys)
    assert code == 2 and "is a directory" in err


def test_usage_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["fit", "data.csv"])  # --target missing
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["demo", "--lr", "-1"])
    assert info.value.code == 2
    assert "must be a finite number > 0" in capsys.readouterr().err


def test_bad_input_via_the_console_script_has_no_traceback(tmp_path) -> None:
    path = write(tmp_path, "x,y\n1,2\nabc,4\n")
    proc = subprocess.run(
        [sys.executable, "-m", "torchlinreg", "fit", str(path), "--target", "y"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(
        "line 3, column 'x': 'abc' is not a number; fix the value or leave the column out "
        "with --features"
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
