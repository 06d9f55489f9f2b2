"""Inputs that once gave a wrong table, an internal error or ran out of memory: kept
columns, integers beyond 2^53, nested Parquet columns, damaged ``.npy`` files,
delimiters, one-hot codes stored as floats or Categoricals, and huge one-hot columns."""

from __future__ import annotations

import csv
import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from torchlinreg import InputError, LinearRegression, load_data
from torchlinreg.cli import main
from torchlinreg.data.categories import MAX_LEVELS

from .conftest import lstsq_fit


def run(argv, capsys):  # type: ignore[no-untyped-def]
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(code: int, err: str) -> str:
    assert code == 2 and err.count("\n") == 1, err
    return err


IDS = ["NA", "N/A", "null", "NaN", "007", "1e5"]
TARGET = ["2.5", "4", "-0.5", "7.25", "100000", "3"]  # written as pyarrow writes numbers


@pytest.fixture
def model(tmp_path, capsys):  # type: ignore[no-untyped-def]
    train = tmp_path / "train.csv"
    train.write_text("x,y\n1,2\n2,4.1\n3,5.9\n4,8.2\n")
    path = tmp_path / "m.safetensors"
    assert run(["fit", train, "--target", "y", "-o", path], capsys)[0] == 0
    return path


def test_kept_columns_round_trip_to_csv_and_parquet(tmp_path, capsys, model) -> None:
    rows = [
        f"{i},{j + 1},{t},{d}"
        for j, (i, t, d) in enumerate(zip(IDS, TARGET, IDS[::-1], strict=True))
    ]
    data = tmp_path / "new.csv"
    data.write_text("id,x,y,note\n" + "\n".join(rows) + "\n")
    keep = ["--keep", "id,y,note"]
    code, _, err = run(["predict", model, data, *keep, "-o", tmp_path / "out.csv"], capsys)
    assert code == 0, err
    table = list(csv.reader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert table[0] == ["id", "y", "note", "predicted_y"]
    assert [r[:3] for r in table[1:]] == [list(t) for t in zip(IDS, TARGET, IDS[::-1], strict=True)]

    code, _, err = run(["predict", model, data, *keep, "-o", tmp_path / "out.parquet"], capsys)
    assert code == 0, err
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.column("id").type == pa.string() and out.column("id").to_pylist() == IDS
    assert out.column("note").to_pylist() == IDS[::-1]
    # The target is a number column of the model: it stays a number.
    assert out.column("y").type == pa.float64()
    assert out.column("y").to_pylist() == [float(t) for t in TARGET]


def test_kept_text_is_missing_only_when_empty(tmp_path, capsys, model) -> None:
    data = tmp_path / "new.csv"
    data.write_text("id,x\nNA,1\n,2\nnull,3\n")
    path = tmp_path / "out.parquet"
    assert run(["predict", model, data, "--keep", "id", "-o", path], capsys)[0] == 0
    assert pq.read_table(path).column("id").to_pylist() == ["NA", None, "null"]


def test_integers_beyond_2_53_are_exact_or_refused(tmp_path, capsys, rng) -> None:
    n = 40
    x = rng.integers(0, 1000, n)
    y = 3.0 * x + rng.normal(size=n)
    exact = tmp_path / "exact.parquet"  # multiples of 2^40 beyond 2^53: exact in float64
    big = x.astype(np.int64) << 40
    pq.write_table(pa.table({"x": big, "y": y}), exact)
    d = load_data(str(exact), target="y")
    assert d.X[:, 0].tolist() == [float(v) for v in big.tolist()]
    # The oracle on x itself: scaling a column by 2^40 is exact and scales its slope back.
    coef, intercept = lstsq_fit(x.astype(np.float64)[:, None], y)
    model = LinearRegression().fit(d.X, d.y)
    np.testing.assert_allclose(model.coef_ * 2.0**40, coef, rtol=1e-12)
    # The intercept is small next to y: its rounding error is relative to y's size.
    np.testing.assert_allclose(model.intercept_, intercept, rtol=0, atol=1e-13 * np.abs(y).max())

    bad = tmp_path / "bad.parquet"
    values = big.copy()
    values[7] = 2**53 + 1  # the first integer without a float64 value
    pq.write_table(pa.table({"x": values, "y": y}), bad)
    code, _, err = run(["fit", bad, "--target", "y"], capsys)
    assert "bad.parquet, row 8, column 'x': the integer 9007199254740993" in one_line_error(
        code, err
    )


def test_csv_integers_beyond_2_53_are_exact_or_refused(tmp_path, capsys, monkeypatch) -> None:
    import torchlinreg.data.csv_source as csv_source

    # Parsed as float64 these became 2^53, 2^53 + 4 and 2^53 + 8: slope 0.375, not 0.5.
    bad = tmp_path / "b.csv"
    bad.write_text("x,y\n9007199254740993,1\n9007199254740995,2\n9007199254740999,4\n")
    code, _, err = run(["fit", bad, "--target", "y"], capsys)
    assert "b.csv, line 2, column 'x': the integer 9007199254740993" in one_line_error(code, err)
    # Many small blocks: the integer column's later blocks hold a fraction, missing
    # tokens and an exact multiple of 2^40 beyond 2^53, all read as numbers...
    monkeypatch.setattr(csv_source, "CSV_BLOCK_BYTES", 256)
    x = [str(i) for i in range(200)]
    x[150], x[160], x[170] = "2.5", "NA", str(2**60 + 2**40)
    rows = [f"{v},{i % 7}" for i, v in enumerate(x)]
    good = tmp_path / "g.csv"
    good.write_text("x,y\n" + "\n".join(rows) + "\n")
    ds = load_data(str(good), target="y", missing="drop")
    expected = [float(v) for v in x if v != "NA"]
    assert ds.dropped == 1 and ds.X[:, 0].tolist() == expected
    # ... and an inexact integer there, in a block of its own, is named by its line.
    x[180] = str(2**60 + 1)
    good.write_text("x,y\n" + "\n".join(f"{v},{i % 7}" for i, v in enumerate(x)) + "\n")
    with pytest.raises(InputError, match=rf"line 182, column 'x': the integer {2**60 + 1} "):
        load_data(str(good), target="y", missing="drop")
    # Integer text too long for int64 is still an integer, and still refused.
    x[180] = str(2**64 + 1)
    good.write_text("x,y\n" + "\n".join(f"{v},{i % 7}" for i, v in enumerate(x)) + "\n")
    with pytest.raises(InputError, match=rf"line 182, column 'x': the integer {2**64 + 1} "):
        load_data(str(good), target="y", missing="drop")


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_npy_integers_beyond_2_53_are_exact_or_refused(tmp_path, capsys, dtype) -> None:
    n = 20
    x = np.arange(n, dtype=dtype)
    big = (x << dtype(40)) + dtype(10**18 // 2**40 * 2**40)  # multiples of 2^40: exact
    y = 2.0 * x.astype(np.float64) + 1
    path = tmp_path / "a.npy"
    np.save(path, np.column_stack([big, y.astype(dtype)]))
    ds = load_data(str(path), target="1")
    assert ds.X[:, 0].tolist() == [float(v) for v in big.tolist()]
    assert ds.y.tolist() == y.tolist()
    big[5] += dtype(3)  # near 1e18: no float64 value
    np.save(path, np.column_stack([big, y.astype(dtype)]))
    code, _, err = run(["fit", path, "--target", "1"], capsys)
    assert f"a.npy, row 6, column '0': the integer {int(big[5])} " in one_line_error(code, err)
    if dtype == np.uint64:  # beyond int64 too: 2^64 - 1 rounds up to 2^64
        big[5] = dtype(2**64 - 1)
        np.save(path, np.column_stack([big, y.astype(dtype)]))
        with pytest.raises(InputError, match=f"row 6, column '0': the integer {2**64 - 1} "):
            load_data(str(path), target="1")


def test_integer_arrays_beyond_2_53_are_exact_or_refused() -> None:
    import torch

    exact = np.array([[1, 2**60], [2, 2**60 + 2**40], [3, 2**61]], dtype=np.int64)
    y = np.array([1.0, 3.0, 2.0])
    # Exact integers are the floats they equal: the same fit, bit for bit.
    model, floats = (LinearRegression().fit(X, y) for X in (exact, exact.astype(np.float64)))
    assert model.coef_.tolist() == floats.coef_.tolist()
    bad = exact.copy()
    bad[2, 1] = 2**60 + 1
    for X in (bad, torch.from_numpy(bad), bad.astype(np.uint64)):
        with pytest.raises(InputError, match=rf"X\[2, 1\] = {2**60 + 1} has no exact float64"):
            LinearRegression().fit(X, y)


@pytest.mark.parametrize(
    "column",
    [
        pa.array([[1], [2], [3], [4]]),
        pa.array([{"a": 1}, {"a": 2}, {"a": 3}, {"a": 4}]),
        pa.array([[("k", 1)]] * 4, pa.map_(pa.string(), pa.int64())),
    ],
    ids=["list", "struct", "map"],
)
def test_nested_parquet_columns_are_named(tmp_path, capsys, column) -> None:
    path = tmp_path / "n.parquet"
    pq.write_table(pa.table({"x": [1.0, 2, 3, 5], "y": [1.0, 3, 2, 5], "n": column}), path)
    model = tmp_path / "m.safetensors"
    attempts = [
        ["fit", path, "--target", "y", "--features", "x,n"],
        ["fit", path, "--target", "n"],
        ["fit", path, "--target", "y", "--features", "x", "--cluster", "n"],
    ]
    for argv in attempts:
        code, _, err = run(argv, capsys)
        kind = str(column.type).split("<")[0]
        assert f"column 'n' has the nested type {kind}<" in one_line_error(code, err)
    assert run(["fit", path, "--target", "y", "--features", "x", "-o", model], capsys)[0] == 0
    code, _, err = run(["predict", model, path, "--keep", "n"], capsys)
    assert "column 'n' has the nested type" in one_line_error(code, err)


def _npy_variants() -> dict[str, bytes]:
    buf = io.BytesIO()
    np.save(buf, np.arange(12.0).reshape(4, 3))
    good = buf.getvalue()
    end = good.index(b"\n") + 1

    def header(old: bytes, new: bytes) -> bytes:
        return good[:end].replace(old, new.ljust(len(old))) + good[end:]

    cases = {f"truncated-{i}": good[:i] for i in (0, 5, 9, 40, end - 1)}
    cases |= {
        "bad-magic": b"\x93NUMPZ" + good[6:],
        "bad-dict": header(b"{'descr'", b"['descr'"),
        "no-descr": header(b"'descr'", b"'dscr'"),
        "object": header(b"'<f8'", b"'|O'"),
        "complex": header(b"'<f8'", b"'<c8'"),
        "text": header(b"'<f8'", b"'<U2'"),
        "1-d": header(b"(4, 3)", b"(12,)"),
        "0-d": header(b"(4, 3)", b"()"),
        "negative": header(b"(4, 3)", b"(-4, 3)"),
        "float-shape": header(b"(4, 3)", b"(4.0, 3)"),
        "longer": header(b"(4, 3)", b"(5, 3)"),
        "huge": header(b"(4, 3)", b"(99999999999999, 3)"),
        "overflow": header(b"(4, 3)", b"(99999999999999999999, 3)"),
    }
    return cases


@pytest.mark.parametrize("name", sorted(_npy_variants()))
def test_damaged_npy_files_get_one_line(tmp_path, capsys, name) -> None:
    path = tmp_path / "d.npy"
    path.write_bytes(_npy_variants()[name])
    code, _, err = run(["fit", path, "--target", "2", "--quiet"], capsys)
    assert "d.npy" in one_line_error(code, err)


def test_npy_fortran_order_and_other_dtypes_read_the_same(tmp_path, rng) -> None:
    A = rng.normal(size=(30, 3))
    coef, intercept = lstsq_fit(A[:, :2], A[:, 2])
    for name, array in {
        "fortran": np.asfortranarray(A),
        "big-endian": A.astype(">f8"),
        "float16": A.astype(np.float16),
    }.items():
        path = tmp_path / f"{name}.npy"
        np.save(path, array)
        d = load_data(str(path), target="2")
        stored = np.asarray(array, dtype=np.float64)
        np.testing.assert_array_equal(d.X, stored[:, :2], err_msg=name)
        if name != "float16":
            fit = LinearRegression().fit(d.X, d.y)
            np.testing.assert_allclose(fit.coef_, coef, rtol=1e-10, err_msg=name)


@pytest.mark.parametrize("delimiter", ["\0", "é", ";;", "\n", '"', "\t\t"])
def test_delimiters_pyarrow_cannot_take_are_named(tmp_path, capsys, delimiter) -> None:
    path = tmp_path / "d.csv"
    path.write_text("x,y\n1,2\n2,3\n3,5\n")
    code, _, err = run(["fit", path, "--target", "y", "--delimiter", delimiter], capsys)
    assert "--delimiter must be one character" in one_line_error(code, err)
    assert repr(delimiter) in err


def dummies(codes: np.ndarray, levels: list) -> np.ndarray:  # type: ignore[type-arg]
    return np.column_stack([codes == v for v in levels[1:]]).astype(np.float64)


def test_one_hot_takes_integer_valued_floats_as_integer_categories(tmp_path, rng) -> None:
    import pandas as pd

    n = 120
    g = rng.integers(1, 7, n)
    x = rng.normal(size=n)
    y = x + 0.5 * g + rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "g": g.astype(np.float64), "y": y})
    frame.loc[5, "g"] = np.nan  # how pandas stores an integer column with a gap
    keep = np.arange(n) != 5
    coef, intercept = lstsq_fit(np.column_stack([x, dummies(g, list(range(1, 7)))])[keep], y[keep])
    frame.to_csv(tmp_path / "g.csv", index=False)  # written as 1.0, 2.0, ...
    for data in (frame, str(tmp_path / "g.csv")):
        d = load_data(data, target="y", one_hot=["g"], missing="drop")
        assert d.design.one_hot["g"] == ["1", "2", "3", "4", "5", "6"]
        assert d.feature_names == ["x", "g=2", "g=3", "g=4", "g=5", "g=6"] and d.dropped == 1
        model = LinearRegression().fit(d.X, d.y)
        np.testing.assert_allclose(model.coef_, coef, rtol=1e-10)
        np.testing.assert_allclose(model.intercept_, intercept, rtol=1e-10)
    frame["r"] = rng.normal(size=n)
    with pytest.raises(InputError, match="holds real numbers"):
        load_data(frame, target="y", features=["r"], one_hot=["r"])


def test_one_hot_integer_codes_sort_as_numbers(rng) -> None:
    codes = np.tile([9, 10, 100], 10)
    y = rng.normal(size=codes.size)
    d = load_data(pa.table({"g": codes, "y": y}), target="y", one_hot=["g"])
    assert d.design.one_hot["g"] == ["9", "10", "100"]


def test_one_hot_categorical_keeps_its_declared_order(rng) -> None:
    import pandas as pd

    n = 90
    labels = rng.choice(["low", "mid", "high"], n)
    declared = ["mid", "high", "low", "unused"]  # mid is the reference
    x = rng.normal(size=n)
    y = x + (labels == "high") * 2.0 + rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "g": pd.Categorical(labels, categories=declared), "y": y})
    d = load_data(frame, target="y", one_hot=["g"])
    assert d.design.one_hot["g"] == ["mid", "high", "low"]  # levels never seen are left out
    assert d.feature_names == ["x", "g=high", "g=low"]
    coef, _ = lstsq_fit(np.column_stack([x, dummies(labels, ["mid", "high", "low"])]), y)
    np.testing.assert_allclose(LinearRegression().fit(d.X, d.y).coef_, coef, rtol=1e-10)


def test_a_huge_one_hot_column_is_refused_after_one_batch(tmp_path) -> None:
    n = 400_000
    ids = np.arange(n)  # 400,000 levels: one feature each would need terabytes
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"k": ids, "y": np.zeros(n)}), path, row_group_size=n)
    with pytest.raises(InputError, match=rf"more than {MAX_LEVELS:,} distinct values") as info:
        load_data(str(path), target="y", one_hot=["k"])
    seen = int(str(info.value).split("first ")[1].split(" rows")[0].replace(",", ""))
    assert seen < n  # refused from the first batch, without reading the rest


def test_a_model_fitted_from_a_frame_predicts_raw_frames(tmp_path, rng) -> None:
    import pandas as pd

    from torchlinreg import load_model, save_model

    n = 80
    g = rng.choice(["b", "a", "c"], n)
    x = rng.normal(size=n)
    y = 2 * x + (g == "c") - (g == "a") + rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "g": g, "price": y})
    ds = load_data(frame, target="price", one_hot=["g"])
    model = LinearRegression().fit(ds.X, ds.y)
    path = tmp_path / "m.safetensors"
    save_model(str(path), model, design=ds.design)
    new = frame.drop(columns="price").iloc[::-1]  # raw columns, any row order
    loaded = load_model(str(path))
    coef, intercept = lstsq_fit(np.column_stack([x, dummies(g, ["a", "b", "c"])]), y)
    want = np.column_stack([x, dummies(g, ["a", "b", "c"])]) @ coef + intercept
    np.testing.assert_allclose(loaded.predict(new), want[::-1], rtol=1e-10, atol=1e-12)
    assert loaded.design.targets == ["price"]
    with pytest.raises(InputError, match="category 'd' was not seen when fitting"):
        loaded.predict(new.assign(g="d"))
    with pytest.raises(InputError, match="no feature column 'g'"):
        loaded.predict(new.drop(columns="g"))
    # Fitted on the frame itself, the target keeps its name from the Series.
    direct = LinearRegression().fit(frame[["x"]], frame["price"])
    assert direct.target_names_ == ["price"]
    save_model(str(path), direct)
    assert load_model(str(path)).estimator.target_names_ == ["price"]
    np.testing.assert_allclose(
        load_model(str(path)).predict(frame[["x"]]), direct.predict(frame[["x"]]), rtol=1e-15
    )
    assert not hasattr(LinearRegression().fit(x[:, None], y), "target_names_")


def test_csv_integers_beyond_int64_in_a_float_column_are_refused(
    tmp_path, capsys, monkeypatch
) -> None:
    import sys

    import torchlinreg.data.csv_source as csv_source

    # Too long for int64, pyarrow infers the column as floats: 2^64 + 1 would become 2^64.
    rows = "1.5,2\n2,4.1\n3,5\n4,8.2\n5,9\n6,12\n"
    for big in (2**64 + 1, -(2**63) - 1):
        data = tmp_path / "u.csv"
        data.write_text(f"x,y\n{rows}{big},13.9\n")
        code, _, err = run(["fit", data, "--target", "y"], capsys)
        assert f"u.csv, line 8, column 'x': the integer {big} has" in one_line_error(code, err)
    # Many blocks: the value comes after blocks already read as floats; exact integers
    # beyond int64 and floats beyond 2^53 written as floats are kept, as written.
    monkeypatch.setattr(csv_source, "CSV_BLOCK_BYTES", 256)
    x = [f"{i}.5" for i in range(200)]
    x[150], x[160], x[170] = str(2**64), "1e20", "-1.8446744073709552e+19"
    data.write_text("x,y\n" + "".join(f"{v},{i % 7}\n" for i, v in enumerate(x)))
    assert load_data(str(data), target="y").X[:, 0].tolist() == [float(v) for v in x]
    x[180] = str(2**64 + 1)
    data.write_text("x,y\n" + "".join(f"{v},{i % 7}\n" for i, v in enumerate(x)))
    with pytest.raises(InputError, match=rf"line 182, column 'x': the integer {2**64 + 1} "):
        load_data(str(data), target="y")
    # Standard input cannot be read again to look at the text: refused, not rounded.
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data.read_bytes())))
    code, _, err = run(["fit", "-", "--target", "y"], capsys)
    assert "cannot be checked to be exact" in one_line_error(code, err)


def test_csv_spaces_around_integers_are_trimmed(tmp_path) -> None:
    padded, plain = tmp_path / "w.csv", tmp_path / "p.csv"
    padded.write_text("x,y\n1,2\n2,4.1\n3 ,5\n 4,8.2\n5,9\n6 ,12\n7,13.9\n")
    plain.write_text("x,y\n1,2\n2,4.1\n3,5\n4,8.2\n5,9\n6,12\n7,13.9\n")
    a, b = load_data(str(padded), target="y"), load_data(str(plain), target="y")
    assert a.X.tolist() == b.X.tolist() == [[float(i)] for i in range(1, 8)]


def test_csv_hexadecimal_is_text_not_a_number(tmp_path, capsys, monkeypatch) -> None:
    import torchlinreg.data.csv_source as csv_source

    rows = [(f"0x{i:x}", i, 2 * i + (i % 3)) for i in range(1, 8)]
    data = tmp_path / "h.csv"
    data.write_text("id,x,y\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    code, out, err = run(["fit", data, "--target", "y"], capsys)
    assert code == 0 and "text column(s) not used: id" in err
    code, _, err = run(["fit", data, "--target", "y", "--features", "id"], capsys)
    assert "column 'id' holds text, not numbers; encode it with --one-hot" in one_line_error(
        code, err
    )
    # Beyond the first block, in a column of integers: named, not read as 16.
    monkeypatch.setattr(csv_source, "CSV_BLOCK_BYTES", 256)
    x = [str(i) for i in range(200)]
    x[150] = "0x10"
    data.write_text("x,y\n" + "".join(f"{v},{i % 7}\n" for i, v in enumerate(x)))
    with pytest.raises(InputError, match=r"line 152, column 'x': '0x10' is not a number"):
        load_data(str(data), target="y")


def test_named_arrays_pickle_named_or_plain(tmp_path) -> None:
    import pickle

    from sklearn.model_selection import cross_val_score

    data = tmp_path / "d.csv"
    data.write_text("a,b,y\n" + "".join(f"{i},{i * i % 7},{3 * i + 1}\n" for i in range(20)))
    ds = load_data(str(data), target="y")
    named = pickle.loads(pickle.dumps(ds.X))
    assert named.names == ("a", "b") and named.tolist() == ds.X.tolist()
    for unnamed in (ds.X.copy(), ds.X.T, ds.X.view(), ds.X.astype(np.float32), ds.y.copy()):
        back = pickle.loads(pickle.dumps(unnamed))
        assert back.dtype == unnamed.dtype and back.tolist() == unnamed.tolist()
    # In worker processes (joblib pickles the arrays): the same scores as in one.
    X = ds.X.astype(np.float32)
    one = cross_val_score(LinearRegression(), X, ds.y, cv=2)
    np.testing.assert_array_equal(cross_val_score(LinearRegression(), X, ds.y, cv=2, n_jobs=2), one)


def test_json_lines_keep_types_and_nulls(tmp_path, capsys, model) -> None:
    import json

    data = tmp_path / "p.csv"
    data.write_text("id,x,y,b,note\n9007199254740993,1,3,true,NA\nNA,,NA,false,\n12,3,2.5,,x\n")
    argv = ["predict", model, data, "--missing", "exclude", "--keep", "id,y,x,b,note", "--json"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [[r[c] for c in ("id", "y", "x", "b", "note")] for r in records] == [
        [9007199254740993, 3.0, 1.0, True, "NA"],
        [None, None, None, False, None],
        [12, 2.5, 3.0, None, "x"],
    ]
    assert isinstance(records[0]["id"], int) and records[1]["predicted_y"] is None
    assert [r["predicted_y"] is None for r in records] == [False, True, False]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_parquet_kept_columns_keep_their_type(tmp_path, capsys, model, unit) -> None:
    stamps = pa.array([0, 1, None, 3], pa.timestamp(unit, tz="UTC"))
    data = tmp_path / "t.parquet"
    pq.write_table(pa.table({"ts": stamps, "x": [1.0, 2.0, 3.0, 4.0]}), data)
    out = tmp_path / "o.parquet"
    assert run(["predict", model, data, "--keep", "ts", "-o", out], capsys)[0] == 0
    kept, given = pq.read_table(out).column("ts"), pq.read_table(data).column("ts")
    # Parquet has no unit of seconds: such a column is stored, and read, in ms.
    assert kept.type == given.type == (pa.timestamp("ms", tz="UTC") if unit == "s" else stamps.type)
    assert kept.to_pylist() == given.to_pylist() == stamps.to_pylist()
