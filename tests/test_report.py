"""The HTML report (torchlinreg.report, ``torchlinreg report``) and ``demo --plot``:
each section present, nothing external (no URL, script or fetched resource), the
influential rows those of the influence pass; bad input is one line, exit code 2,
nothing written."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from torchlinreg import GDRegressor, LinearRegression  # noqa: E402
from torchlinreg.cli import main  # noqa: E402
from torchlinreg.report import report_html, write_report  # noqa: E402
from torchlinreg.stats.influence import influence  # noqa: E402

SECTIONS = ("fitted", "summary", "diagnostics", "influence")


def assert_self_contained(page: str) -> None:
    """No script, nothing that a browser would fetch, and unique ids."""
    lowered = page.lower()
    assert "<script" not in lowered and "javascript:" not in lowered
    assert "http" not in lowered and "ftp:" not in lowered and "data:" not in lowered
    assert not re.search(r"\bsrc\s*=", lowered)
    assert "@import" not in lowered and "<link" not in lowered and "@font-face" not in lowered
    assert re.findall(r"url\(([^)]*)\)", page) == [u for u in re.findall(r"url\(([^)]*)\)", page)
                                                    if u.startswith("#")]  # fmt: skip
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', page))
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def _data(n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 2))
    y = X @ [2.0, -1.0] + 0.5 + rng.standard_t(3, size=n)
    y[17] += 25  # the most influential row
    return X, y


def test_report_of_an_exact_fit(tmp_path: Path) -> None:
    X, y = _data()
    model = LinearRegression().fit(X, y)
    page = report_html(model, (X, y), top_k=5)
    assert_self_contained(page)
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert 'id="training"' not in page
    assert page.count("<svg") == 2  # the coefficient plot and the four panels
    # The influential rows' table: rows by Cook's distance, as the in-memory pass has them.
    table = page.split('<section id="influence">')[1].split("</table>")[0]
    rows = [int(r) for r in re.findall(r'<tr><td class="text">(\d+)</td>', table)]
    cooks = influence(model, X, y).cooks_distance
    assert rows == np.argsort(-cooks, kind="stable")[:5].tolist() and rows[0] == 17
    path = tmp_path / "r.html"
    write_report(str(path), model, (X, y))
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temporary left


@pytest.mark.filterwarnings("ignore:GDRegressor spent its budget")
def test_report_of_a_gradient_fit_has_its_training_curve() -> None:
    X, y = _data()
    model = GDRegressor(epochs=50).fit(X, y)
    page = report_html(model)
    assert_self_contained(page)
    assert '<section id="training">' in page and "50 epochs" not in page
    assert f"{len(model.history_):,} epochs" in page
    assert "trained by gradient descent" in page  # why there are no diagnostics


def test_text_is_escaped() -> None:
    import pandas as pd

    X, y = _data(50)
    frame = pd.DataFrame(X, columns=["<b>a</b>", "b&c"])
    page = report_html(LinearRegression().fit(frame, y), (frame, y))
    assert "<b>a</b>" not in page and "&lt;b&gt;a&lt;/b&gt;" in page and "b&amp;c" in page


def run(argv: list[object], capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def fitted_csv(tmp_path: Path, capsys) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    n = 300
    x1, x2 = rng.normal(size=(2, n))
    g = rng.choice(["p", "q", "r"], size=n)
    y = 1 + 2 * x1 - x2 + (g == "q") + rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, size=n)
    data = tmp_path / "d.csv"
    rows = zip(x1, x2, g, w, y, strict=True)
    lines = ["x1,x2,g,w,y"] + [f"{a:.17g},{b:.17g},{c},{d:.17g},{e:.17g}" for a, b, c, d, e in rows]
    data.write_text("\n".join(lines) + "\n")
    model = tmp_path / "m.safetensors"
    code, _, err = run(["fit", data, "--target", "y", "--one-hot", "g", "--weights", "w",
                        "-o", model, "--quiet"], capsys)  # fmt: skip
    assert code == 0, err
    return data, model


def test_cli_report(fitted_csv, tmp_path: Path, capsys) -> None:
    data, model = fitted_csv
    out = tmp_path / "report.html"
    code, stdout, err = run(["report", model, data, "-o", out, "--top", 4, "--quiet"], capsys)
    assert code == 0, err
    assert stdout.strip() == f"wrote {out}: fitted, summary, diagnostics, influence"
    page = out.read_text(encoding="utf-8")
    assert_self_contained(page)
    for text in ("m.safetensors", "d.csv", "g=q", "weights", "WLS regression of y"):
        assert text in page, text
    table = page.split('<section id="influence">')[1].split("</table>")[0]
    assert len(re.findall(r"<tr><td", table)) == 4


def test_cli_report_of_a_gd_model(fitted_csv, tmp_path: Path, capsys) -> None:
    data, _ = fitted_csv
    gd = tmp_path / "gd.safetensors"
    code, _, err = run(["fit", data, "--target", "y", "--features", "x1,x2", "--method", "gd",
                        "--epochs", 20, "-o", gd, "--quiet"], capsys)  # fmt: skip
    assert code == 0, err
    out = tmp_path / "gd.html"
    code, stdout, err = run(["report", gd, data, "-o", out, "--quiet"], capsys)
    assert code == 0, err
    assert_self_contained(out.read_text(encoding="utf-8"))
    # The model file records the per-epoch costs: the curve is drawn from them.
    again = tmp_path / "gd2.html"
    code, stdout, err = run(["report", gd, data, "-o", again, "--training-curve"], capsys)
    assert code == 0, err
    assert "Training curve" in again.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "flags", [["--lasso", "0.01"], ["--elasticnet", "0.01"], ["--huber", "1.35"]]
)
def test_cli_report_of_a_penalised_or_robust_model(
    fitted_csv, tmp_path: Path, capsys, flags
) -> None:
    """No standard errors or influence for them: the page says why and lists the
    coefficients, instead of stopping."""
    data, _ = fitted_csv
    model = tmp_path / "m.safetensors"
    code, _, err = run(["fit", data, "--target", "y", "--features", "x1,x2", *flags, "-o", model,
                        "--quiet"], capsys)  # fmt: skip
    assert code == 0, err
    out = tmp_path / "m.html"
    code, _, err = run(["report", model, data, "-o", out, "--quiet"], capsys)
    assert code == 0, err
    page = out.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert "penalised or robust" in page and "gradient descent" not in page


def _one_line_failure(argv: list[object], capsys, out: Path, expected: str) -> None:
    code, stdout, err = run(argv, capsys)
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and expected in err, err
    assert not out.exists() and not list(out.parent.glob(".tmp-*"))


def test_cli_report_bad_inputs(fitted_csv, tmp_path: Path, capsys, monkeypatch) -> None:
    data, model = fitted_csv
    out = tmp_path / "r.html"
    lacking = tmp_path / "lacking.csv"
    lacking.write_text("\n".join(line.split(",", 1)[1] for line in data.read_text().splitlines()))
    _one_line_failure(["report", model, lacking, "-o", out], capsys, out,
                      "no feature column 'x1'")  # fmt: skip
    missing_dir = tmp_path / "nowhere" / "r.html"
    _one_line_failure(["report", model, data, "-o", missing_dir], capsys, missing_dir,
                      "does not exist")  # fmt: skip
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    _one_line_failure(["report", model, data, "-o", out], capsys, out,
                      "plots need matplotlib: pip install 'torchlinreg[plot]'")  # fmt: skip


def test_demo_plot(tmp_path: Path, capsys, monkeypatch) -> None:
    out = tmp_path / "demo.png"
    code, stdout, err = run(["demo", "--epochs", 300, "--log-every", 100, "--plot", out], capsys)
    assert code == 0, err
    assert stdout.splitlines()[0].startswith("Epoch    0/300 W: 0.187, b: 0.080")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "demo.svg"
    assert run(["demo", "--epochs", 30, "--plot", svg], capsys)[0] == 0
    assert "<svg" in svg.read_text() and "<text" not in svg.read_text()  # text as paths
    bad = tmp_path / "none" / "demo.png"
    code, stdout, err = run(["demo", "--plot", bad], capsys)
    assert code == 2 and stdout == "" and "does not exist" in err  # refused before training
    code, stdout, err = run(["demo", "--plot", tmp_path / "demo.xyz"], capsys)
    assert code == 2 and stdout == "" and err.count("\n") == 1 and ".png, .svg, .pdf" in err
    assert not (tmp_path / "demo.xyz").exists()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, stdout, err = run(["demo", "--plot", tmp_path / "x.png"], capsys)
    assert code == 2 and stdout == "" and "torchlinreg[plot]" in err
