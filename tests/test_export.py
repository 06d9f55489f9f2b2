"""Exported programs compute ``predict``: ``torch.export`` (in memory and as a ``.pt2``
file) and ONNX run by onnxruntime, for any number of rows.

Oracle: ``predict`` in float64. An export in a dtype of unit roundoff u rounds X, W and b
and sums p products, so each output is within γ_{p+3}·(|X|·|W|ᵀ + |b|) of the float64
value (γ_m = m·u/(1 − m·u), Higham's dot-product bound, the inputs' rounding folded in);
doubled for float64, where the reference's own rounding is of the same size.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

from torchlinreg import InputError, LinearRegression, Ridge
from torchlinreg.export import predictor_module, save_program, to_onnx, to_program


def _model(rng, k=None, fit_intercept=True):  # type: ignore[no-untyped-def]
    X = rng.normal(size=(40, 5)) * np.array([1.0, 100.0, 0.01, 3.0, 1.0])
    W = rng.normal(size=(5,) if k is None else (5, k))
    y = X @ W + 7.0 + 0.1 * rng.normal(size=(40,) if k is None else (40, k))
    return LinearRegression(fit_intercept=fit_intercept).fit(X, y)


def _rows(rng, n: int) -> np.ndarray:
    return rng.normal(size=(n, 5)) * np.array([1.0, 100.0, 0.01, 3.0, 1.0])


def _assert_predicts(out, model, X: np.ndarray, dtype: torch.dtype) -> None:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        # An array where the model was fitted on named columns: the export's X is one.
        warnings.filterwarnings("ignore", "X does not have valid feature names")
        want = model.predict(X)
    out = np.asarray(out, dtype=np.float64)
    assert out.shape == want.shape
    u = torch.finfo(dtype).eps / 2
    m = X.shape[1] + 3
    gamma = m * u / (1 - m * u) * (2 if dtype == torch.float64 else 1)
    scale = np.abs(X) @ np.abs(np.atleast_2d(model.coef_)).T
    scale = scale + np.abs(np.atleast_1d(model.intercept_))
    bound = gamma * (scale[:, 0] if want.ndim == 1 else scale)
    assert np.all(np.abs(out - want) <= bound)


CASES = [(None, True), (3, True), (None, False)]
CASE_IDS = ["1-d", "3-targets", "no-intercept"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("k", "fit_intercept"), CASES, ids=CASE_IDS)
def test_torch_export_program_computes_predict(rng, k, fit_intercept, dtype) -> None:
    model = _model(rng, k, fit_intercept)
    program = to_program(model, dtype=dtype)
    assert isinstance(program, torch.export.ExportedProgram)
    run = program.module()
    for n in (1, 2, 37):  # any number of rows, one and two included
        X = _rows(rng, n)
        out = run(torch.as_tensor(X, dtype=dtype))
        assert out.dtype == dtype
        _assert_predicts(out.numpy(), model, X, dtype)


def test_predictor_module_is_shaped_like_predict(rng) -> None:
    model = _model(rng)
    module = predictor_module(model, dtype=torch.float64)
    assert not module.training
    X = _rows(rng, 4)
    _assert_predicts(module(torch.as_tensor(X)).numpy(), model, X, torch.float64)


def test_a_saved_program_loads_and_computes_predict(rng, tmp_path) -> None:
    model = Ridge(alpha=0.5).fit(_rows(rng, 30), rng.normal(size=30))
    path = str(tmp_path / "model.pt2")
    save_program(model, path)
    run = torch.export.load(path).module()
    X = _rows(rng, 9)
    _assert_predicts(run(torch.as_tensor(X, dtype=torch.float32)).numpy(), model, X, torch.float32)
    assert [f for f in os.listdir(tmp_path)] == ["model.pt2"]  # no temporary left


# --- ONNX ---------------------------------------------------------------------------

ort = pytest.importorskip("onnxruntime")


def _session(path: str):  # type: ignore[no-untyped-def]
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("k", "fit_intercept"), CASES, ids=CASE_IDS)
def test_onnx_export_run_by_onnxruntime_computes_predict(
    rng, tmp_path, k, fit_intercept, dtype
) -> None:
    model = _model(rng, k, fit_intercept)
    path = str(tmp_path / "model.onnx")
    to_onnx(model, path, dtype=dtype)
    session = _session(path)
    assert [i.name for i in session.get_inputs()] == ["X"]
    assert [o.name for o in session.get_outputs()] == ["prediction"]
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    for n in (1, 2, 37):
        X = _rows(rng, n)
        (out,) = session.run(None, {"X": X.astype(np_dtype)})
        assert out.dtype == np_dtype
        _assert_predicts(out, model, X, dtype)


def test_onnx_records_the_feature_names(rng, tmp_path) -> None:
    pd = pytest.importorskip("pandas")
    onnx = pytest.importorskip("onnx")
    X = _rows(rng, 30)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d", "e"])
    model = LinearRegression().fit(frame, rng.normal(size=30))
    path = str(tmp_path / "named.onnx")
    to_onnx(model, path)
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert props["feature_names"] == '["a", "b", "c", "d", "e"]'


def test_a_failed_onnx_write_leaves_nothing(rng, tmp_path) -> None:
    model = _model(rng)
    with pytest.raises(InputError, match="does not exist"):
        to_onnx(model, str(tmp_path / "missing" / "model.onnx"))
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")

    def fail(self, path):  # type: ignore[no-untyped-def]
        with open(path, "wb") as f:
            f.write(b"half")
        raise OSError(28, "No space left on device")

    mp = pytest.MonkeyPatch()
    mp.setattr(torch.onnx.ONNXProgram, "save", fail)
    try:
        with pytest.raises(InputError, match="could not be written: No space left"):
            to_onnx(model, str(target))
    finally:
        mp.undo()
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["model.onnx"]


def test_onnx_without_the_extra_says_how_to_install_it(rng, tmp_path, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name)
    )
    with pytest.raises(InputError, match=r"pip install 'torchlinreg\[onnx\]' \(onnxscript"):
        to_onnx(_model(rng), str(tmp_path / "m.onnx"))
    assert os.listdir(tmp_path) == []


def test_exports_refuse_an_unfitted_model(tmp_path) -> None:
    from torchlinreg import NotFittedError

    with pytest.raises(NotFittedError):
        to_program(LinearRegression())
    with pytest.raises(NotFittedError):
        to_onnx(LinearRegression(), str(tmp_path / "m.onnx"))


# --- the command line ----------------------------------------------------------------


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    from torchlinreg.cli import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def saved_model(tmp_path, capsys) -> str:  # type: ignore[no-untyped-def]
    from pathlib import Path

    houses = Path(__file__).resolve().parent.parent / "examples" / "houses.csv"
    path = str(tmp_path / "houses.safetensors")
    code, _, err = _cli(["fit", str(houses), "--target", "price", "-o", path, "--quiet"], capsys)
    assert code == 0, err
    return path


def test_cli_export_onnx_computes_predict(saved_model, tmp_path, capsys, rng) -> None:
    from torchlinreg import load_model

    out = str(tmp_path / "houses.onnx")
    code, stdout, err = _cli(["export", saved_model, "-o", out, "--dtype", "float64"], capsys)
    assert code == 0, err
    assert "input X has 3 column(s): the columns area, rooms, age, in this order" in stdout
    model = load_model(saved_model).estimator
    X = rng.normal(size=(11, 3)) * [50.0, 2.0, 30.0] + [150.0, 4.0, 30.0]
    (pred,) = _session(out).run(None, {"X": X})
    _assert_predicts(pred, model, X, torch.float64)


def test_cli_export_program_as_json(saved_model, tmp_path, capsys, rng) -> None:
    import json

    from torchlinreg import load_model

    out = str(tmp_path / "houses.pt2")
    code, stdout, err = _cli(["export", saved_model, "-o", out, "--json"], capsys)
    assert code == 0, err
    assert json.loads(stdout) == {
        "output": out,
        "format": "pt2",
        "dtype": "float32",
        "n_features": 3,
        "features": ["area", "rooms", "age"],
        "targets": ["price"],
    }
    model = load_model(saved_model).estimator
    X = rng.normal(size=(5, 3)) * [50.0, 2.0, 30.0] + [150.0, 4.0, 30.0]
    run = torch.export.load(out).module()
    _assert_predicts(run(torch.as_tensor(X, dtype=torch.float32)).numpy(), model, X, torch.float32)


@pytest.mark.parametrize(
    ("output", "extra", "message"),
    [
        ("model.bin", [], "cannot tell the format from the suffix '.bin'"),
        ("houses.safetensors", ["--format", "onnx"], "is also the input"),
        ("no/such/dir/m.onnx", [], "does not exist"),
    ],
)
def test_cli_export_refusals_exit_2_without_output(
    saved_model, tmp_path, capsys, output, extra, message
) -> None:
    before = sorted(os.listdir(tmp_path))
    code, stdout, err = _cli(["export", saved_model, "-o", str(tmp_path / output), *extra], capsys)
    assert code == 2 and stdout == ""
    assert message in err and len(err.strip().splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == before


def test_cli_export_of_a_missing_model(tmp_path, capsys) -> None:
    code, _, err = _cli(["export", str(tmp_path / "nope"), "-o", str(tmp_path / "m.onnx")], capsys)
    assert code == 2 and "no such model file" in err
    assert os.listdir(tmp_path) == []


def test_cli_export_help_has_an_example(capsys) -> None:
    code, out, err = _cli(["export", "--help"], capsys)
    assert code == 0 and err == ""
    assert "example:\n  torchlinreg export " in out
