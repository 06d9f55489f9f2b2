"""``fit --lasso/--elasticnet/--huber`` on CSV and Parquet files against the library on
the same rows; Lasso, ElasticNet and HuberRegressor model files (round trip, checks on
load, predict/evaluate/summary); every refusal one line, exit 2, no model written.

Tolerances.
* Lasso/elastic net, 1e-10 relative to the largest coefficient: the command folds the
  file's chunks into the same least-squares state as the library folds the array, so
  the two R factors differ by the QR fold's rounding (~n·ε relative, here κ ≈ 3), and
  the same solver finishes with an exact solve on the active set's signs, which passes
  that rounding on times ~κ²: ~1e-13. A wrong scaling of alpha (n against Σw, a
  penalised intercept) moves the coefficients by 1e-2 or more.
* Huber, 1e-6 relative: both sides run the same L-BFGS-B from the same start on the
  same objective; only the order of the objective's sums differs (per chunk of the file
  against one array, ~n·ε relative per evaluation). That moves each iterate by that
  times the Hessian's conditioning (~1e-12) unless a decision flips (the stopping test
  at tol=1e-5 or a row crossing ε·σ), which rounding at 1e-12 does not for data not
  built on the edge; 1e-6 leaves six orders of margin, yet a dropped weight, a chunk
  read twice or a wrong epsilon moves the coefficients by 1e-3 or more.
* R² and RMSE of the command come from the state's R (a quadratic form); evaluate and
  scikit-learn compute them from residuals: they agree to ~κ·ε, checked at 1e-10.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from torchlinreg import ElasticNet, HuberRegressor, InputError, Lasso
from torchlinreg.cli import main
from torchlinreg.persistence import load_model, read_model, save_model

FEATURES = [f"x{j}" for j in range(5)]
MODELS = {
    "lasso": (["--lasso", "0.05"], lambda: Lasso(alpha=0.05, device="cpu")),
    "elasticnet": (
        ["--elasticnet", "0.1", "--l1-ratio", "0.3"],
        lambda: ElasticNet(alpha=0.1, l1_ratio=0.3, device="cpu"),
    ),
    "huber": (["--huber", "1.5"], lambda: HuberRegressor(epsilon=1.5, device="cpu")),
}


def _data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets (centring matters), two irrelevant features (the lasso zeroes some),
    t-distributed noise with a few gross outliers (Huber has some), positive weights."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)) + np.array([3.0, -2.0, 0.5, 1.0, 4.0])
    y = X @ np.array([1.5, 0.0, -2.0, 0.0, 0.7]) + 2.0 + rng.standard_t(3, size=n)
    y[rng.choice(n, size=n // 50, replace=False)] += 25.0
    return X, y, rng.uniform(0.5, 2.0, size=n)


def _write(path: Path, X: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> Path:
    import pandas as pd

    frame = pd.DataFrame(X, columns=FEATURES)
    frame["y"] = y
    if w is not None:
        frame["w"] = w
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def _cli(argv: list[Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 and "--json" in argv else out), err


def _rel(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.abs(a - b).max() / np.abs(b).max())


def _report_coef(report: dict[str, Any]) -> np.ndarray:
    c = report["coefficients"]["y"]
    return np.array([c["intercept"], *(c[f] for f in FEATURES)])


def _lib_coef(model: Any) -> np.ndarray:
    return np.array([model.intercept_, *model.coef_])


# -- the command equals the library on the same rows ------------------------------------


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files read in many chunks (a few dozen rows each), as large files are."""
    monkeypatch.setattr("torchlinreg.data.csv_source.CSV_BLOCK_BYTES", 2048)
    monkeypatch.setattr("torchlinreg.data.parquet_source.BATCH_ROWS", 16)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("name", list(MODELS))
def test_cli_fit_equals_the_library(tmp_path, capsys, small_chunks, name, suffix):
    from sklearn.metrics import mean_squared_error, r2_score

    X, y, w = _data()
    data = _write(tmp_path / f"d{suffix}", X, y, w)
    flags, make = MODELS[name]
    out = tmp_path / "m.safetensors"
    code, report, err = _cli(["fit", data, "--target", "y", "--weights", "w", *flags,
                              "--json", "-o", out], capsys)  # fmt: skip
    assert code == 0, err
    ref = make().fit(X, y, w)
    tol = 1e-6 if name == "huber" else 1e-10
    assert _rel(_report_coef(report), _lib_coef(ref)) < tol
    assert report["method"] == name and report["n"] == len(y)
    pred = ref.predict(X)
    assert report["r2"][0] == pytest.approx(r2_score(y, pred, sample_weight=w), rel=1e-10)
    rmse = np.sqrt(mean_squared_error(y, pred, sample_weight=w))
    assert report["rmse"][0] == pytest.approx(rmse, rel=1e-10)
    if name == "huber":
        h = report["huber"]
        assert h["scale"] == pytest.approx(ref.scale_, rel=1e-6)
        assert h["n_outliers"] == ref.n_outliers_ >= len(y) // 50
        assert h["epsilon"] == 1.5 and h["alpha"] == 1e-4
    else:
        p = report["penalty"]
        assert p["nonzero"] == [int(np.count_nonzero(ref.coef_))]
        assert p["dual_gap"][0] <= ref.tol * float(np.sum(w * y**2) / np.sum(w))
    loaded = load_model(str(out)).estimator
    assert type(loaded) is type(ref) and loaded.get_params() == ref.get_params()
    np.testing.assert_array_equal(_lib_coef(loaded), _report_coef(report))


def test_lasso_flag_is_scikit_learns_alpha(tmp_path, capsys):
    """The oracle behind the library: scikit-learn's Lasso at tight tolerance."""
    from sklearn.linear_model import Lasso as SkLasso

    X, y, _ = _data(seed=1)
    code, report, _ = _cli(["fit", _write(tmp_path / "d.csv", X, y), "--target", "y",
                            "--lasso", "0.2", "--json"], capsys)  # fmt: skip
    assert code == 0
    ref = SkLasso(alpha=0.2, tol=1e-12, max_iter=100_000).fit(X, y)
    assert _rel(_report_coef(report), _lib_coef(ref)) < 1e-6
    assert report["penalty"]["nonzero"][0] < 5  # the penalty selects


def test_huber_flag_equals_scikit_learn_and_takes_alpha(tmp_path, capsys):
    from sklearn.linear_model import HuberRegressor as SkHuber

    X, y, _ = _data(seed=2)
    argv = ["fit", _write(tmp_path / "d.parquet", X, y), "--target", "y", "--json"]
    code, report, _ = _cli([*argv, "--huber", "1.35", "--alpha", "3"], capsys)
    assert code == 0
    ref = SkHuber(epsilon=1.35, alpha=3.0).fit(X, y)
    assert _rel(_report_coef(report), _lib_coef(ref)) < 1e-5
    code, plain, _ = _cli([*argv, "--huber", "1.35"], capsys)
    assert _rel(_report_coef(plain), _report_coef(report)) > 1e-4  # alpha was used


def test_several_targets_lasso_and_the_text_report(tmp_path, capsys):
    X, y, _ = _data(seed=3)
    Y = np.column_stack([y, X[:, 0] - 3 * X[:, 2]])
    frame_path = _write(tmp_path / "d.csv", np.column_stack([X[:, :4], Y[:, 1]]), y)
    argv = ["fit", frame_path, "--target", "y,x4", "--elasticnet", "0.5"]
    code, text, err = _cli(argv, capsys)
    assert code == 0, err
    assert "elastic net (alpha=0.5, l1_ratio=0.5)" in text
    assert re.search(r"\d of 4 coefficients nonzero; duality gap \S+ after \d+ solver passes "
                     r"\(x4\)", text)  # fmt: skip
    ref = ElasticNet(alpha=0.5).fit(X[:, :4], Y)
    code, report, _ = _cli([*argv, "--json"], capsys)
    got = [[report["coefficients"][t][f] for f in FEATURES[:4]] for t in ("y", "x4")]
    assert _rel(got, ref.coef_) < 1e-10


def test_huber_text_report(tmp_path, capsys):
    X, y, _ = _data(seed=4)
    code, text, _ = _cli(["fit", _write(tmp_path / "d.csv", X, y), "--target", "y",
                          "--huber", "1.35"], capsys)  # fmt: skip
    assert code == 0
    assert "Huber (epsilon=1.35, alpha=0.0001) on 400 rows" in text
    assert re.search(r"scale \S+; \d+ of 400 rows are outliers \(\|residual\| > 1\.35 x "
                     r"scale\); \d+ L-BFGS-B iterations", text)  # fmt: skip


def test_huber_from_standard_input_equals_the_file(tmp_path, capsys, monkeypatch):
    """Standard input cannot be read again: its rows are held for the evaluations."""
    X, y, _ = _data(n=150, seed=5)
    data = _write(tmp_path / "d.csv", X, y)
    argv = ["--target", "y", "--huber", "1.35", "--json"]
    _, from_file, _ = _cli(["fit", data, *argv], capsys)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data.read_bytes())))
    code, from_stdin, err = _cli(["fit", "-", *argv], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(_report_coef(from_stdin), _report_coef(from_file))
    assert from_stdin["n"] == 150


# -- model files ------------------------------------------------------------------------


def _fitted(name: str, X: np.ndarray, y: np.ndarray) -> Any:
    return {
        "Lasso": lambda: Lasso(alpha=0.1, max_iter=500, tol=1e-8, warm_start=True).fit(X, y),
        "ElasticNet": lambda: ElasticNet(alpha=0.2, l1_ratio=0.7, fit_intercept=False).fit(
            X, np.column_stack([y, -y + X[:, 0]])
        ),
        "HuberRegressor": lambda: HuberRegressor(epsilon=2.0, alpha=0.5, tol=1e-7).fit(X, y),
    }[name]()


@pytest.mark.parametrize("name", ["Lasso", "ElasticNet", "HuberRegressor"])
def test_model_file_round_trip(tmp_path, name):
    X, y, _ = _data(n=200, seed=6)
    model = _fitted(name, X, y)
    path = str(tmp_path / "m.safetensors")
    save_model(path, model)
    loaded = load_model(path).estimator
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    own = {"HuberRegressor": ("scale_", "n_iter_", "n_outliers_")}.get(
        name, ("n_iter_", "dual_gap_")
    )
    for attr in own:
        np.testing.assert_array_equal(getattr(loaded, attr), getattr(model, attr))
        assert type(getattr(loaded, attr)) is type(getattr(model, attr)), attr
    if name == "HuberRegressor":
        assert "state.R" not in read_model(path).arrays
        return
    # The state saved is the data's: solving it again gives the same fit.
    again = type(model)(**model.get_params()).fit_state(loaded.state_)
    np.testing.assert_allclose(again.coef_, model.coef_, rtol=0, atol=1e-12)
    assert loaded.state_.n_samples == len(y)


def test_the_penalized_estimators_parameters_are_the_model_files(tmp_path):
    """Every parameter of the three is recorded and checked; none the checks lack."""
    from torchlinreg._model_params import PARAMS

    for cls in (Lasso, ElasticNet, HuberRegressor):
        assert set(PARAMS[cls.__name__]) == set(cls._param_names()), cls.__name__


def _craft(path: Path, edit: Any) -> None:
    """Edit a saved model's metadata and tensors, with the checksum recomputed."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    from torchlinreg import persistence

    with safe_open(str(path), framework="numpy") as f:
        header = dict(f.metadata())
        arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    meta = json.loads(header["model"])
    edit(meta, arrays)
    header["model"] = json.dumps(meta)
    header["sha256"] = persistence._digest(meta, arrays)
    save_file(arrays, str(path), metadata=header)


def _param(name: str, value: Any) -> Any:
    return lambda m, a: m["params"].update({name: value})


def _fitted_attr(name: str, value: Any) -> Any:
    return lambda m, a: m["fitted"].update({name: value})


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("Lasso", _param("alpha", -0.1), "params.alpha is -0.1"),
        ("Lasso", _param("max_iter", 0), "params.max_iter is 0"),
        ("Lasso", _param("tol", -1e-4), "params.tol is -0.0001"),
        ("Lasso", _param("warm_start", "yes"), "params.warm_start is 'yes'"),
        ("Lasso", _param("l1_ratio", 0.5), "params has an unknown 'l1_ratio'"),
        ("ElasticNet", _param("l1_ratio", 1.5), "params.l1_ratio is 1.5"),
        ("ElasticNet", _param("max_iter", 2.5), "params.max_iter is 2.5"),
        ("HuberRegressor", _param("epsilon", 0.9), "params.epsilon is 0.9"),
        ("HuberRegressor", _param("alpha", -1), "params.alpha is -1"),
        ("HuberRegressor", _param("warm_start", True), "params has an unknown 'warm_start'"),
        ("HuberRegressor", _fitted_attr("scale_", 0.0), "fitted.scale_ is 0.0"),
        ("HuberRegressor", _fitted_attr("n_outliers_", -1), "fitted.n_outliers_ is -1"),
        ("HuberRegressor", _fitted_attr("dual_gap_", 0.0), "fitted has an unknown 'dual_gap_'"),
        (
            "ElasticNet",
            _fitted_attr("n_iter_", [3]),
            "fitted.n_iter_ is a list; expected a list of 2",
        ),
        ("ElasticNet", _fitted_attr("dual_gap_", "small"), "fitted.dual_gap_ is 'small'"),
        ("Lasso", _fitted_attr("scale_", 1.0), "fitted has an unknown 'scale_'"),
        ("HuberRegressor", "add a state", "a HuberRegressor has no least-squares state"),
    ],
)
def test_crafted_model_files_are_refused(tmp_path, capsys, name, edit, message):
    X, y, _ = _data(n=120, seed=7)
    path = tmp_path / "m.safetensors"
    save_model(str(path), _fitted(name, X, y))
    if edit == "add a state":  # a lasso's state of the same rows
        lasso = tmp_path / "l.safetensors"
        save_model(str(lasso), Lasso(alpha=0.1).fit(X, y))
        contents = read_model(str(lasso))
        state = {k: v for k, v in contents.arrays.items() if k.startswith("state.")}

        def edit(m: dict[str, Any], a: dict[str, np.ndarray]) -> None:
            m["state"] = contents.meta["state"]
            a.update(state)

    _craft(path, edit)
    with pytest.raises(InputError, match=message) as info:
        load_model(str(path))
    assert len(str(info.value).splitlines()) == 1
    code, _, err = _cli(["summary", path], capsys)
    assert code == 2 and re.search(message, err) and len(err.strip().splitlines()) == 1


def test_a_lasso_records_full_rank_on_a_rank_deficient_design(tmp_path):
    """The lasso's rank is not least squares' (a duplicated column is fine for it):
    its file is not refused as a singular R recorded as full rank."""
    X, y, _ = _data(n=100, seed=8)
    X = np.column_stack([X, X[:, 0]])
    model = Lasso(alpha=0.1).fit(X, y)
    path = str(tmp_path / "m.safetensors")
    save_model(path, model)
    np.testing.assert_array_equal(load_model(path).estimator.predict(X), model.predict(X))


def test_older_files_still_load(tmp_path):
    """A least-squares file as written before these estimators (no fitted attributes
    beyond the exact ones) loads as it did."""
    from torchlinreg import LinearRegression

    X, y, _ = _data(n=60, seed=9)
    path = tmp_path / "m.safetensors"
    save_model(str(path), LinearRegression().fit(X, y))
    assert set(read_model(str(path)).meta["fitted"]) <= {"rank_", "condition_number_",
           "aliased_", "refined_", "solver_used_", "n_samples_seen_", "target_names_"}  # fmt: skip
    _craft(path, lambda m, a: m.pop("torchlinreg_version"))
    assert isinstance(load_model(str(path)).estimator, LinearRegression)


# -- predict, evaluate and summary on the saved models ----------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_predict_evaluate_and_summary_on_saved_models(tmp_path, capsys, name):
    import pandas as pd

    X, y, _ = _data(n=300, seed=10)
    data = _write(tmp_path / "d.csv", X, y)
    out = tmp_path / "m.safetensors"
    flags, _ = MODELS[name]
    code, report, _ = _cli(["fit", data, "--target", "y", *flags, "--json", "-o", out], capsys)
    assert code == 0
    model = load_model(str(out)).estimator
    assert _cli(["predict", out, data, "-o", tmp_path / "p.csv"], capsys)[0] == 0
    predicted = pd.read_csv(tmp_path / "p.csv")["predicted_y"].to_numpy()
    np.testing.assert_allclose(predicted, model.predict_array(X), rtol=1e-15, atol=1e-13)
    code, evaluated, _ = _cli(["evaluate", out, data, "--json"], capsys)
    assert code == 0
    assert evaluated["targets"]["y"]["r2"] == pytest.approx(report["r2"][0], rel=1e-10)
    code, text, _ = _cli(["summary", out], capsys)
    cls = type(model).__name__
    assert code == 0 and text.startswith(f"{cls} predicting y from 5 feature(s)")
    assert f"fitted by {name} on 300 rows" in text
    code, described, _ = _cli(["summary", out, "--json"], capsys)
    assert described["model"] == cls and described["method"] == name
    assert described["params"] == {k: v for k, v in model.get_params().items()}
    own = ("scale_", "n_iter_", "n_outliers_") if name == "huber" else ("n_iter_", "dual_gap_")
    assert set(described["fitted"]) == set(own)
    assert ("huber" if name == "huber" else "penalty") in described


def test_cv_lasso_path_model_is_saved_and_loads(tmp_path, capsys):
    """``fit --cv --lasso-path -o`` keeps its chosen Lasso (a model file it could not
    write before)."""
    X, y, _ = _data(n=300, seed=11)
    data = _write(tmp_path / "d.csv", X, y)
    out = tmp_path / "m.safetensors"
    code, report, err = _cli(["fit", data, "--target", "y", "--cv", "3", "--lasso-path",
                              "--alphas", "10", "--json", "-o", out], capsys)  # fmt: skip
    assert code == 0, err
    loaded = load_model(str(out))
    assert isinstance(loaded.estimator, Lasso)
    assert loaded.estimator.alpha == pytest.approx(report["cv"]["alpha"], rel=1e-15)
    assert loaded.info["cv"]["alpha"] == report["cv"]["alpha"]
    np.testing.assert_array_equal(_lib_coef(loaded.estimator), _report_coef(report))


# -- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lasso", "-1"], "argument --lasso: must be a finite number >= 0, got -1"),
        (["--elasticnet", "-0.5"], "argument --elasticnet: must be a finite number >= 0"),
        (["--elasticnet", "1", "--l1-ratio", "1.5"], "--l1-ratio: must lie in [0, 1], got 1.5"),
        (["--elasticnet", "1", "--l1-ratio", "-0.1"], "--l1-ratio: must lie in [0, 1]"),
        (["--huber", "0.99"], "argument --huber: must be a finite number >= 1"),
        (["--huber", "nan"], "argument --huber: must be a finite number >= 1"),
        (["--huber", "1.35", "--alpha", "-1"], "argument --alpha: must be a finite number >= 0"),
        (["--lasso", "1", "--ridge", "1"], "--lasso and --ridge fit different models"),
        (["--ridge", "1", "--elasticnet", "1"], "--elasticnet and --ridge fit different models"),
        (["--lasso", "1", "--elasticnet", "1"], "--lasso and --elasticnet fit different models"),
        (["--huber", "1.35", "--lasso", "1"], "--lasso and --huber fit different models"),
        (["--huber", "1.35", "--method", "gd"], "--huber and --method gd fit different models"),
        (["--lasso", "1", "--cv", "3"], "--lasso and --cv fit different models"),
        (["--lasso", "1", "--summary"], "--lasso has no standard errors.*drop --summary"),
        (["--elasticnet", "1", "--cov-type", "HC1"], "no standard errors.*drop --cov-type"),
        (["--huber", "2", "--cluster", "x0"], "--huber has no standard errors.*drop --cluster"),
        (["--huber", "2", "--level", "0.9"], "--huber has no standard errors.*drop --level"),
        (["--l1-ratio", "0.5"], "--l1-ratio goes with --elasticnet ALPHA"),
        (["--lasso", "1", "--l1-ratio", "0.5"], "--l1-ratio goes with --elasticnet"),
        (["--alpha", "0.1"], "--alpha \\(Huber's l2 penalty\\) goes with --huber"),
        (["--lasso", "1", "--alpha", "0.1"], "--alpha is Huber's l2 penalty and goes with --huber"),
        (["--huber", "1.35", "--target", "y,x4"], "--huber fits one target; 2 are given"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_model(tmp_path, capsys, args, message):
    X, y, _ = _data(n=40, seed=12)
    data = _write(tmp_path / "d.csv", X, y)
    out = tmp_path / "m.safetensors"
    argv = ["fit", data, *([] if "--target" in args else ["--target", "y"]), *args, "-o", out]
    code, _, err = _cli(argv, capsys)
    assert code == 2, err
    assert re.search(message, err) if "\\" in message or ".*" in message else message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_huber_on_fewer_rows_than_parameters_is_refused(tmp_path, capsys):
    """A CSV's row count is known only once read: the first complete pass refuses."""
    X, y, _ = _data(n=4, seed=13)
    out = tmp_path / "m.safetensors"
    code, _, err = _cli(["fit", _write(tmp_path / "d.csv", X, y), "--target", "y",
                         "--huber", "1.35", "-o", out], capsys)  # fmt: skip
    assert code == 2 and "4 row(s) for 6 parameters" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lasso": -1.0}, "alpha must be a finite number >= 0"),
        ({"elasticnet": 1.0, "l1_ratio": 2.0}, "l1_ratio must lie in \\[0, 1\\]"),
        ({"huber": 0.5}, "epsilon must be a finite number >= 1"),
        ({"huber": 1.35, "huber_alpha": -1.0}, "alpha must be a finite number >= 0"),
    ],
)
def test_fit_options_check_the_values_for_library_callers(options, message):
    from torchlinreg.jobs import FitOptions

    with pytest.raises(InputError, match=message):
        FitOptions(targets=["y"], **options)


def test_the_light_commands_stay_light(tmp_path):
    """``summary`` of a Huber file reads it without torch (as for the other models)."""
    import subprocess
    import sys

    X, y, _ = _data(n=50, seed=14)
    path = tmp_path / "m.safetensors"
    save_model(str(path), HuberRegressor().fit(X, y))
    code = (
        "import sys; from torchlinreg.jobs import describe_model; "
        f"describe_model({str(path)!r}); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
