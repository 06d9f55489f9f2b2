"""``torchlinreg fit DATA --formula``: the file streamed through the formula in chunks
gives the model fitted in memory (``torchlinreg.ols``), categories found in a first
pass; the model file keeps the formula, which ``predict`` and ``evaluate`` apply; bad
input is one line and exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("formulaic")
sm = pytest.importorskip("statsmodels.api")
pq = pytest.importorskip("pyarrow.parquet")
pa = pytest.importorskip("pyarrow")

import torchlinreg as tl  # noqa: E402
from torchlinreg.cli import main  # noqa: E402

FORMULA = "np.log(invest) ~ np.log(value) + capital:C(firm) + C(firm, Treatment('IBM'))"


def run(argv: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def grunfeld() -> pd.DataFrame:
    # Sorted by firm: the first chunks hold neither every level nor the reference (IBM).
    return sm.datasets.grunfeld.load_pandas().data.sort_values(["firm", "year"],
                                                                ignore_index=True)  # fmt: skip


@pytest.fixture
def chunked(tmp_path, grunfeld, monkeypatch) -> str:
    """The data as Parquet read in batches of 16 rows: 14 chunks."""
    monkeypatch.setattr("torchlinreg.data.parquet_source.BATCH_ROWS", 16)
    path = tmp_path / "g.parquet"
    pq.write_table(pa.Table.from_pandas(grunfeld, preserve_index=False), path,
                   row_group_size=16)  # fmt: skip
    return str(path)


def test_streamed_file_gives_the_in_memory_model(chunked, grunfeld, tmp_path, capsys) -> None:
    from torchlinreg.data.sources import open_source

    assert sum(1 for _ in open_source(chunked).batches(["firm"])) > 10  # really chunked
    code, out, err = run(["fit", chunked, "--formula", FORMULA, "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    memory = tl.ols(FORMULA, grunfeld)
    assert report["features"] == list(memory.feature_names_in_)
    got = report["coefficients"]["np.log(invest)"]
    np.testing.assert_allclose(
        [got["intercept"], *(got[f] for f in report["features"])],
        np.r_[memory.intercept_, memory.coef_],
        rtol=1e-10,  # one QR over all rows against a fold of 14: rounding only (κ·ε ≈ 1e-13)
    )


def test_cli_summary_is_the_library_s(chunked, grunfeld, capsys) -> None:
    code, out, err = run(["fit", chunked, "--formula", FORMULA, "--cov-type", "HC1",
                          "--json"], capsys)  # fmt: skip
    assert code == 0, err
    rows = json.loads(out)["summary"][0]["coefficients"]
    memory = tl.ols(FORMULA, grunfeld).summary(cov_type="HC1", X=grunfeld).to_frame()
    assert [r["name"] for r in rows] == list(memory.index)
    np.testing.assert_allclose([r["std_error"] for r in rows], memory["std_error"], rtol=1e-9)


def test_cluster_column_streamed(chunked, grunfeld, capsys) -> None:
    code, out, err = run(["fit", chunked, "--formula", "invest ~ value + C(firm)",
                          "--cluster", "year", "--json"], capsys)  # fmt: skip
    assert code == 0, err
    rows = json.loads(out)["summary"][0]["coefficients"]
    model = tl.ols("invest ~ value + C(firm)", grunfeld)
    memory = model.summary(cov_type="cluster", X=grunfeld, groups="year").to_frame()
    np.testing.assert_allclose([r["std_error"] for r in rows], memory["std_error"], rtol=1e-9)


def test_model_file_predict_and_evaluate(chunked, grunfeld, tmp_path, capsys) -> None:
    model_path, csv, out_path = tmp_path / "m.safetensors", tmp_path / "new.csv", tmp_path / "p.csv"
    code, _, err = run(["fit", chunked, "--formula", FORMULA, "-o", model_path], capsys)
    assert code == 0, err
    new = grunfeld[grunfeld.firm.isin(["Chrysler", "IBM"])]
    new.drop(columns="invest").to_csv(csv, index=False)  # predict needs no target
    code, _, err = run(["predict", model_path, csv, "-o", out_path], capsys)
    assert code == 0, err
    memory = tl.ols(FORMULA, grunfeld)
    predicted = pd.read_csv(out_path)["predicted_np.log(invest)"]
    np.testing.assert_allclose(predicted, memory.predict(new), rtol=1e-10)
    loaded = tl.load_model(str(model_path))
    np.testing.assert_allclose(loaded.predict(new), memory.predict(new), rtol=1e-10)
    new.to_csv(csv, index=False)
    code, out, err = run(["evaluate", model_path, csv, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["targets"]["np.log(invest)"]["r2"] == pytest.approx(
        memory.score(new), rel=1e-9
    )


def test_an_unseen_level_at_predict_is_one_line(chunked, grunfeld, tmp_path, capsys) -> None:
    model_path, csv = tmp_path / "m.safetensors", tmp_path / "new.csv"
    train = tmp_path / "train.csv"
    grunfeld[grunfeld.firm != "Chrysler"].to_csv(train, index=False)
    assert run(["fit", train, "--formula", "invest ~ value + C(firm)", "-o", model_path],
               capsys)[0] == 0  # fmt: skip
    grunfeld.to_csv(csv, index=False)
    code, out, err = run(["predict", model_path, csv], capsys)
    assert code == 2 and out == ""
    assert "column 'firm': level 'Chrysler' was not seen when fitting" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target", "invest"], "--formula names the columns itself; drop --target"),
        (["--one-hot", "firm"], "drop --one-hot"),
        (["--no-intercept"], "drop --no-intercept"),
    ],
)
def test_formula_is_exclusive_with_column_options(chunked, capsys, extra, message) -> None:
    code, _, err = run(["fit", chunked, "--formula", "invest ~ value", *extra], capsys)
    assert code == 2 and message in err


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("invest ~ value +", "does not parse: Operator `+` has insuffient arguments"),
        ("invest ~ valeu", "reads column 'valeu', which the data lack; the columns are: "),
    ],
)
def test_bad_formulas_are_one_line(chunked, capsys, formula, message) -> None:
    code, out, err = run(["fit", chunked, "--formula", formula], capsys)
    assert code == 2 and out == "" and message in err
    assert len(err.strip().splitlines()) == 1


def test_neither_target_nor_formula(chunked, capsys) -> None:
    code, _, err = run(["fit", chunked], capsys)
    assert code == 2 and "--target COL" in err and "--formula" in err


def test_missing_cluster_label_is_named(tmp_path, grunfeld, capsys) -> None:
    csv = tmp_path / "g.csv"
    grunfeld.assign(year=grunfeld.year.where(grunfeld.index != 4)).to_csv(csv, index=False)
    code, _, err = run(["fit", csv, "--formula", "invest ~ value", "--cluster", "year"], capsys)
    assert code == 2
    assert "g.csv, line 6, column 'year': the cluster label is missing" in err
