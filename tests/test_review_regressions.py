"""Defects found in review of the file pipeline, CLI, inference and model files, each
pinned by a test (the fix is in the module named in each test)."""

from __future__ import annotations

import json
import os
import stat
import warnings

import numpy as np
import pytest

from torchlinreg import InputError, LinearRegression, load_model, save_model
from torchlinreg.cli import main


def run(argv, capsys):  # type: ignore[no-untyped-def]
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def write(tmp_path, text, name="d.csv"):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text(text)
    return path


def test_blank_one_hot_cells_are_missing_not_a_category(tmp_path, capsys) -> None:
    path = write(tmp_path, "x,g,y\n1,a,2\n2,b,3\n3,,9\n4,a,5\n5,b,7\n6,a,6\n7,b,8\n")
    code, _, err = run(["fit", path, "--target", "y", "--one-hot", "g"], capsys)
    assert code == 2 and "line 4, column 'g': the value is missing" in err
    code, out, _ = run(
        ["fit", path, "--target", "y", "--one-hot", "g", "--missing", "drop", "--json"], capsys
    )
    report = json.loads(out)
    assert report["features"] == ["x", "g=b"] and report["dropped"] == 1


def test_one_hot_refuses_real_numbers_and_near_unique_columns(tmp_path, capsys) -> None:
    rows = "\n".join(f"{i * 0.37:.3f},{i},{i % 3},{2 * i}" for i in range(300))
    path = write(tmp_path, "a,code,k,y\n" + rows + "\n")
    code, _, err = run(["fit", path, "--target", "y", "--one-hot", "code"], capsys)
    assert code == 2 and "300 distinct values in 300 rows" in err


def test_robust_summary_needs_the_same_weights_and_data(rng) -> None:
    X = rng.normal(size=(80, 2))
    y = X @ [1.0, 2.0] + rng.normal(size=80)
    w = rng.uniform(0.5, 3, size=80)
    model = LinearRegression().fit(X, y, sample_weight=w)
    with pytest.raises(InputError, match="fitted with sample_weight"):
        model.summary(cov_type="HC3", X=X, y=y)
    with pytest.raises(InputError, match="not the data the model was fitted on"):
        model.summary(cov_type="HC3", X=X + 1, y=y, sample_weight=w)


def test_cluster_edge_cases(rng) -> None:
    X = rng.normal(size=(40, 2))
    y = X @ [1.0, 2.0] + rng.normal(size=40)
    model = LinearRegression().fit(X, y)
    with pytest.raises(InputError, match="at least 2 groups"):
        model.summary(cov_type="cluster", X=X, y=y, groups=np.zeros(40))
    with pytest.raises(InputError, match="missing labels"):
        model.summary(cov_type="cluster", X=X, y=y, groups=np.where(np.arange(40) < 3, np.nan, 1.0))
    s = model.summary(cov_type="cluster", X=X, y=y, groups=np.arange(40) % 2)  # G − 1 < slopes
    assert s.f_statistic is None and all(c.std_error is not None for c in s.coefficients)
    assert "1 and" not in str(s) or "n/a" in str(s)


def test_degenerate_fits_summarise_without_crashing(rng) -> None:
    X = rng.normal(size=(6, 2))
    exact = LinearRegression().fit(X, X @ [1.0, 2.0] + 3)
    d = exact.summary().to_dict()
    assert d["f_statistic"] is None and any("exact" in n for n in d["notes"])
    constant = LinearRegression().fit(X, np.full(6, 3.0))
    d = constant.summary().to_dict()
    assert d["r_squared"] is None and d["f_statistic"] is None
    # A one-hot level seen once has leverage 1: HC3 is undefined there.
    Xl = np.c_[rng.normal(size=20), np.r_[1.0, np.zeros(19)]]
    yl = Xl @ [1.0, 5.0] + rng.normal(size=20)
    s = LinearRegression().fit(Xl, yl).summary(cov_type="HC3", X=Xl, y=yl)
    assert all(c.std_error is None for c in s.coefficients)
    assert any("leverage 1" in n for n in s.notes)


def test_outputs_never_replace_special_files_and_get_normal_modes(tmp_path, capsys) -> None:
    data = write(tmp_path, "x,y\n1,2\n2,4.1\n3,5.9\n")
    code, _, err = run(["fit", data, "--target", "y", "-o", "/dev/null"], capsys)
    assert code == 2 and "not a regular file" in err
    target = tmp_path / "real.safetensors"
    link = tmp_path / "link.safetensors"
    link.symlink_to(target)
    assert run(["fit", data, "--target", "y", "-o", link], capsys)[0] == 0
    assert link.is_symlink() and target.is_file()
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_a_feature_named_intercept_is_refused(tmp_path, capsys) -> None:
    path = write(tmp_path, "intercept,x,y\n1,2,3\n2,1,4\n3,5,2\n4,4,7\n")
    code, _, err = run(["fit", path, "--target", "y"], capsys)
    assert code == 2 and "named 'intercept'" in err


def test_kept_columns_are_copied_verbatim(tmp_path, capsys) -> None:
    train = write(tmp_path, "x,y\n1,2\n2,4.1\n3,5.9\n4,8.2\n", "train.csv")
    model = tmp_path / "m.safetensors"
    run(["fit", train, "--target", "y", "-o", model], capsys)
    new = write(tmp_path, "id,day,x\n007,2024-01-02,1\n0x1,2024-01-03,2\n", "new.csv")
    code, out, _ = run(["predict", model, new, "--keep", "id,day"], capsys)
    import csv
    import io

    rows = list(csv.reader(io.StringIO(out)))[1:]
    assert code == 0 and [r[:2] for r in rows] == [["007", "2024-01-02"], ["0x1", "2024-01-03"]]
    code, out, _ = run(["predict", model, new, "--keep", "id,day", "--json"], capsys)
    assert json.loads(out.splitlines()[0])["day"] == "2024-01-02"
    code, _, err = run(["predict", model, new, "--keep", "predicted_y"], capsys)
    assert code == 2


def test_cli_option_mistakes(tmp_path, capsys) -> None:
    path = write(tmp_path, "x,g,y\n1,1,2\n2,2,4.1\n3,1,5.9\n4,2,8.2\n5,1,9\n")
    for args, message in (
        (["--target", "y,y"], "names 'y' twice"),
        (["--target", "y", "--weights", "y"], "both a target and the weights"),
        (["--target", "y", "--delimiter", ";;"], "one character"),
        (["--target", "y", "--cov-type", "HC3", "--cluster", "g"], "--cluster goes with"),
        (["--target", "y", "--cluster", "nope"], "no cluster column 'nope'"),
    ):
        code, _, err = run(["fit", path, *args], capsys)
        assert code == 2 and message in err, (args, err)
    trailing = write(tmp_path, "x,y,\n1,2,\n2,4,\n3,7,\n", "t.csv")
    code, _, err = run(["fit", trailing, "--target", "y"], capsys)
    assert code == 2 and "empty name" in err


def test_json_output_never_holds_nan(tmp_path, capsys) -> None:
    path = write(tmp_path, "a,b,y\n1,2,3\n4,5,3\n6,8,3\n7,7,3\n")
    code, out, _ = run(["fit", path, "--target", "y", "--summary", "--json"], capsys)
    assert code == 0 and "NaN" not in out
    json.loads(out)


def test_loaded_models_summarise_and_give_intervals(tmp_path, rng) -> None:
    X = rng.normal(size=(50, 2))
    y = X @ [1.0, 2.0] + rng.normal(size=50)
    model = LinearRegression().fit(X, y)
    path = str(tmp_path / "m.safetensors")
    save_model(path, model)
    back = load_model(path).estimator
    assert back.summary().to_dict()["sigma"] == pytest.approx(model.summary().sigma, rel=1e-12)
    np.testing.assert_allclose(back.predict(X[:3], interval="prediction").upper,
                               model.predict(X[:3], interval="prediction").upper)  # fmt: skip


def test_edited_model_with_a_recomputed_checksum_is_still_checked(tmp_path, rng) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    from torchlinreg import persistence

    model = LinearRegression().fit(rng.normal(size=(30, 2)), rng.normal(size=30))
    path = str(tmp_path / "m.safetensors")
    save_model(path, model)
    with safe_open(path, framework="pt") as f:
        header = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    meta = json.loads(header["model"])
    meta["n_features"] = 5
    header["model"] = json.dumps(meta)
    header["sha256"] = persistence._digest(meta, tensors)
    save_file(tensors, path, metadata=header)
    with pytest.raises(InputError, match="do not fit 5 features"):
        load_model(path)


def test_evaluate_r2_keeps_its_digits_with_large_offsets(rng) -> None:
    from torchlinreg.stats.metrics import StreamingMetrics, r2_score

    y = 1e9 + rng.normal(size=200_000)
    pred = y + 0.8 * rng.normal(size=200_000)
    m = StreamingMetrics(1)
    m.update(y[:100_000], pred[:100_000])
    m.update(y[100_000:], pred[100_000:])
    exact = r2_score(y - 1e9, pred - 1e9)
    assert m.result(["y"])["targets"]["y"]["r2"] == pytest.approx(exact, rel=1e-13)


def test_weights_fit_has_no_spurious_warning(tmp_path, capsys) -> None:
    path = write(tmp_path, "x,w,y\n1,1,2\n2,2,4.1\n3,1,5.9\n4,3,8.2\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, _, err = run(["fit", path, "--target", "y", "--weights", "w"], capsys)
    assert code == 0 and "warning" not in err


def test_without_an_intercept_one_hot_keeps_every_level(tmp_path, capsys, rng) -> None:
    from .conftest import lstsq_fit

    g = rng.choice(["a", "b", "c"], size=60)
    x = rng.normal(size=60)
    y = 2 * x + np.select([g == "a", g == "b"], [1.0, 3.0], 5.0) + 0.1 * rng.normal(size=60)
    path = write(
        tmp_path, "x,g,y\n" + "\n".join(f"{a},{b},{c}" for a, b, c in zip(x, g, y, strict=True))
    )
    code, out, _ = run(
        ["fit", path, "--target", "y", "--one-hot", "g", "--no-intercept", "--json"], capsys
    )
    report = json.loads(out)
    assert report["features"] == ["x", "g=a", "g=b", "g=c"]
    A = np.column_stack([x, g == "a", g == "b", g == "c"]).astype(float)
    coef, _ = lstsq_fit(A, y, fit_intercept=False)
    got = [report["coefficients"]["y"][f] for f in report["features"]]
    np.testing.assert_allclose(got, coef, rtol=1e-10)


def test_line_numbers_count_blank_lines_and_quoted_line_breaks(tmp_path, capsys) -> None:
    path = write(tmp_path, 'x,y,note\n1,2,a\n\n\n2,4,"two\nlines"\n,6,b\n')
    code, _, err = run(["fit", path, "--target", "y", "--features", "x"], capsys)
    assert code == 2 and "line 7, column 'x': the value is missing" in err
