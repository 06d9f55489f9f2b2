"""Every way data comes in gives the same numbers: file formats, encodings, standard
input, DataFrames and tables, and row numbers across streamed blocks."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import torchlinreg.data.csv_source as csv_source
from torchlinreg import InputError, LinearRegression, load_data

from .conftest import lstsq_fit


@pytest.fixture
def table(rng):
    n = 500
    X = rng.normal(size=(n, 3)) * [1, 10, 0.1] + [0, 5, -1]
    y = X @ np.array([1.5, -0.3, 20.0]) + 4 + rng.normal(size=n)
    return X, y


def csv_text(X, y, sep=",", eol="\n", quote=False) -> str:
    q = '"' if quote else ""
    head = sep.join(f"{q}{c}{q}" for c in ("a", "b", "c", "y"))
    rows = [sep.join(repr(float(v)) for v in (*x, t)) for x, t in zip(X, y, strict=True)]
    return head + eol + eol.join(rows) + eol


def coefficients(path, **kw) -> np.ndarray:
    d = load_data(str(path), target="y", **kw)
    model = LinearRegression().fit(d.X, d.y)
    return np.r_[model.intercept_, model.coef_]


def expected(X, y) -> np.ndarray:
    coef, intercept = lstsq_fit(X, y)
    return np.r_[intercept, coef]


def test_csv_variants_all_read_the_same(tmp_path, table) -> None:
    X, y = table
    want = expected(X, y)
    plain = tmp_path / "plain.csv"
    plain.write_text(csv_text(X, y))
    gz = tmp_path / "packed.csv.gz"
    gz.write_bytes(gzip.compress(csv_text(X, y).encode()))
    tsv = tmp_path / "tabs.tsv"
    tsv.write_text(csv_text(X, y, sep="\t"))
    bom = tmp_path / "bom_crlf_quoted.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + csv_text(X, y, eol="\r\n", quote=True).encode())
    semi = tmp_path / "semicolon.csv"
    semi.write_text(csv_text(X, y, sep=";"))
    for path, kw in ((plain, {}), (gz, {}), (tsv, {}), (bom, {}), (semi, {"delimiter": ";"})):
        np.testing.assert_allclose(coefficients(path, **kw), want, rtol=1e-12, err_msg=str(path))


def test_parquet_file_directory_and_npy(tmp_path, table) -> None:
    X, y = table
    want = expected(X, y)
    frame = pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y})
    pq.write_table(frame, tmp_path / "one.parquet", row_group_size=128)
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(frame.slice(0, 200), folder / "part-0.parquet")
    pq.write_table(frame.slice(200), folder / "part-1.parquet")
    np.save(tmp_path / "arr.npy", np.column_stack([X, y]))
    np.testing.assert_allclose(coefficients(tmp_path / "one.parquet"), want, rtol=1e-12)
    np.testing.assert_allclose(coefficients(folder), want, rtol=1e-12)
    d = load_data(str(tmp_path / "arr.npy"), target="3")
    assert d.feature_names == ["0", "1", "2"]
    model = LinearRegression().fit(d.X, d.y)
    np.testing.assert_allclose(np.r_[model.intercept_, model.coef_], want, rtol=1e-12)


def test_standard_input_is_read_once_and_fits(table) -> None:
    X, y = table
    proc = subprocess.run(
        [sys.executable, "-m", "torchlinreg", "fit", "-", "--target", "y", "--json"],
        input=csv_text(X, y), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    c = json.loads(proc.stdout)["coefficients"]["y"]
    got = np.array([c["intercept"], c["a"], c["b"], c["c"]])
    np.testing.assert_allclose(got, expected(X, y), rtol=1e-12)


def test_frames_and_tables_match_the_file(tmp_path, table) -> None:
    import pandas as pd
    import polars as pl

    X, y = table
    path = tmp_path / "d.csv"
    path.write_text(csv_text(X, y))
    want = coefficients(path)
    pdf = pd.read_csv(path)
    frames = {
        "pandas": (pdf, pdf[["a", "b", "c"]]),
        "polars": (pl.from_pandas(pdf), pl.from_pandas(pdf).select(["a", "b", "c"])),
        "pyarrow": (pa.Table.from_pandas(pdf), pa.Table.from_pandas(pdf).select(["a", "b", "c"])),
    }
    for kind, (data, features) in frames.items():
        d = load_data(data, target="y")
        model = LinearRegression().fit(d.X, d.y)
        np.testing.assert_allclose(np.r_[model.intercept_, model.coef_], want, rtol=1e-13)
        # ... and the estimators take the frames themselves, keeping the names.
        direct = LinearRegression().fit(features, y)
        assert list(direct.feature_names_in_) == ["a", "b", "c"], kind
        np.testing.assert_allclose(direct.coef_, want[1:], rtol=1e-12)


def test_row_numbers_stay_right_across_streamed_blocks(tmp_path, table, monkeypatch) -> None:
    X, y = table
    text = csv_text(X, y).splitlines()
    text[377] = text[377].replace(text[377].split(",")[1], "oops", 1)  # line 378 of the file
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(text) + "\n")
    monkeypatch.setattr(csv_source, "CSV_BLOCK_BYTES", 2048)  # many small blocks
    with pytest.raises(InputError, match=r"line 378, column 'b': 'oops' is not a number"):
        load_data(str(path), target="y")
    text = csv_text(X, y).splitlines()
    text[433] = ",".join(["1", "", "2", "3"])  # a missing value on line 434
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(InputError, match=r"line 434, column 'b': the value is missing"):
        load_data(str(path), target="y")
    d = load_data(str(path), target="y", missing="drop")
    assert d.dropped == 1 and d.X.shape == (499, 3)


def test_parquet_text_column_and_missing_values(tmp_path) -> None:
    frame = pa.table(
        {"x": [1.0, 2.0, None, 4.0], "s": ["a", "b", "a", "b"], "y": [1.0, 2.0, 3.0, 4.0]}
    )
    path = tmp_path / "t.parquet"
    pq.write_table(frame, path)
    with pytest.raises(InputError, match=r"t.parquet, row 3, column 'x': the value is missing"):
        load_data(str(path), target="y", features=["x"])
    with pytest.raises(
        InputError, match=r"holds text, not numbers; encode it with one_hot=\['s'\]"
    ):
        load_data(str(path), target="y", features=["x", "s"])
    d = load_data(str(path), target="y", one_hot=["s"], missing="drop")
    assert d.feature_names == ["x", "s=b"] and d.dropped == 1


def test_unreadable_inputs_are_named(tmp_path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="could not be read as Parquet"):
        load_data(str(bad), target="y")
    npy = tmp_path / "bad.npy"
    npy.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match="could not be read as .npy"):
        load_data(str(npy), target="0")
    with pytest.raises(InputError, match="cannot read data from a list"):
        load_data([[1, 2]], target="y")


def test_load_data_gives_the_estimators_its_names(tmp_path) -> None:
    import warnings

    import pandas as pd

    from torchlinreg import load_model, save_model
    from torchlinreg.errors import RankDeficientWarning

    x = np.array([1.0, 2, 3, 4, 5, 6, 7, 8])
    df = pd.DataFrame(
        {"x": x, "twice": 2 * x, "g": list("abcabcab"), "y": [1.0, 3, 2, 5, 4, 7, 6, 9]}
    )
    ds = load_data(df, target="y", one_hot=["g"])  # the README's path
    with pytest.warns(RankDeficientWarning, match="linearly dependent: x, twice"):
        model = LinearRegression().fit(ds.X, ds.y)
    assert list(model.feature_names_in_) == ["x", "twice", "g=b", "g=c"]
    assert model.target_names_ == ["y"]
    # ds.X is still an array; what is cut from it no longer claims its names.
    assert isinstance(ds.X, np.ndarray) and type(ds.X[:, :2]) is np.ndarray
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predicted = model.predict(ds.X)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        model.predict(ds.X[:, :])
    # The oracle: the minimum-norm least-squares fit of the same design.
    design = np.column_stack([np.ones(len(x)), ds.X])
    theta = np.linalg.lstsq(design, ds.y, rcond=None)[0]
    np.testing.assert_allclose(predicted, design @ theta, rtol=1e-12)
    path = tmp_path / "m.safetensors"
    save_model(path, model, design=ds.design)
    loaded = load_model(path)
    assert list(loaded.estimator.feature_names_in_) == list(model.feature_names_in_)
    np.testing.assert_allclose(loaded.predict(df), predicted, rtol=1e-15)
    two = load_data(df, target=["y", "x"], features=["twice"])
    assert LinearRegression().fit(two.X, two.y).target_names_ == ["y", "x"]


def test_python_errors_name_the_keywords(tmp_path, capsys) -> None:
    import pandas as pd

    from torchlinreg.cli import main
    from torchlinreg.data.tables import design_matrix

    df = pd.DataFrame({"x": [1.0, None, 3, 4], "s": list("abab"), "y": [1.0, 3, 2, 5]})
    with pytest.raises(
        InputError, match=r"row 2, .*fill it in, remove the row, or use missing='drop'$"
    ):
        load_data(df, target="y")
    with pytest.raises(
        InputError, match=r"encode it with one_hot=\['s'\] or leave it out with exclude$"
    ):
        load_data(df, target="y", features=["x", "s"])
    with pytest.raises(InputError, match=r"^missing must be one of error, drop"):
        load_data(df, target="y", missing="skip")
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"^delimiter must be one character"):
        load_data(path, target="y", delimiter=";;")
    design = load_data(df, target="y", missing="drop").design
    # The library predicts every row it is given: it has no option to suggest.
    with pytest.raises(InputError, match=r"the value is missing; fill it in, or remove the row$"):
        design_matrix(df, design)
    # The command line, in the same process afterwards, still names its flags.
    assert main(["fit", str(path), "--target", "y", "--features", "x"]) == 2
    assert capsys.readouterr().err.rstrip().endswith("or use --missing drop")
