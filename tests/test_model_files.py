"""Model files as untrusted input, and writes that survive faults.

Every attack starts from a real saved model and changes it the way a damaged or
hostile file would: a dtype label flipped in the header, tensors of other dtypes,
metadata of the wrong types, out of range, inconsistent, deeply nested or huge — with
the checksum left alone or recomputed (anyone can recompute it). Each must be refused
with an :class:`InputError` naming the problem, and by the CLI with exit code 2 and one
line on stderr. Writes: fsync before the rename; no temporary file left by a file size
limit, SIGTERM, SIGHUP or Ctrl-C; the previous output untouched.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from torchlinreg import InputError, LinearRegression, load_model, persistence, save_model
from torchlinreg.cli import main

HOUSES = str(Path(__file__).resolve().parent.parent / "examples" / "houses.csv")
SRC = str(Path(__file__).resolve().parent.parent / "src")

# The models saved here are trained for a few epochs on purpose (the file is what is
# tested): their ConvergenceWarning is right, and beside the point.
pytestmark = pytest.mark.filterwarnings("ignore::torchlinreg.errors.ConvergenceWarning")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A model fitted from a file with its inference tables: every metadata part filled."""
    path = tmp_path_factory.mktemp("model") / "m.safetensors"
    assert main(["fit", HOUSES, "--target", "price", "--summary", "-o", str(path)]) == 0
    return path.read_bytes()


@pytest.fixture
def model(tmp_path: Path, saved: bytes) -> Path:
    path = tmp_path / "m.safetensors"
    path.write_bytes(saved)
    return path


def read(path: Path) -> tuple[dict[str, str], dict[str, Any], dict[str, np.ndarray]]:
    with safe_open(str(path), framework="numpy") as f:
        header = dict(f.metadata())
        arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    return header, json.loads(header["model"]), arrays


def craft(path: Path, edit: Callable[[dict[str, Any], dict[str, np.ndarray]], Any]) -> None:
    """Edit metadata and tensors, then recompute the checksum as an attacker would."""
    header, meta, arrays = read(path)
    edit(meta, arrays)
    header["model"] = json.dumps(meta)
    header["sha256"] = persistence._digest(meta, arrays)
    save_file(arrays, str(path), metadata=header)


def refused(path: Path, message: str) -> None:
    """Refused by the library and by every command that reads a model, in one line."""
    with pytest.raises(InputError, match=message) as info:
        load_model(str(path))
    assert len(str(info.value).splitlines()) == 1
    for argv in (["summary", path], ["summary", "--json", path], ["predict", path, HOUSES]):
        assert re.search(message, cli_error([str(a) for a in argv]))


def cli_error(argv: list[str]) -> str:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    text = err.getvalue()
    assert code == 2, text
    assert out.getvalue() == ""
    assert len(text.splitlines()) == 1, text
    assert "internal error" not in text and "Traceback" not in text
    return text


# ---- tensors and their dtypes -------------------------------------------------------


def test_a_flipped_dtype_label_is_refused(model: Path) -> None:
    # One byte of the header: F64 -> I64, the checksum untouched. The same 8-byte words
    # read as integers predicted 4.6e18 before dtypes were checked.
    data = model.read_bytes()
    assert data.count(b'"dtype":"F64"') == 5
    model.write_bytes(data.replace(b'"dtype":"F64"', b'"dtype":"I64"', 1))
    refused(model, "is stored as I64, but model files hold F64")


@pytest.mark.parametrize("dtype", ["bfloat16", "float8_e4m3fn", "float16", "float32", "int64"])
def test_tensors_of_other_dtypes_are_refused(model: Path, dtype: str) -> None:
    import torch
    from safetensors.torch import save_file as save_torch

    header, _, arrays = read(model)
    tensors = {k: torch.from_numpy(a) for k, a in arrays.items()}
    tensors["coef"] = tensors["coef"].to(getattr(torch, dtype))
    save_torch(tensors, str(model), metadata=header)
    with safe_open(str(model), framework="pt") as f:
        label = f.get_slice("coef").get_dtype()
    refused(model, f"'coef' is stored as {label}, but model files hold F64")


def test_the_checksum_covers_dtypes_and_shapes() -> None:
    meta = {"n_features": 2}
    coef = np.array([[1.5, -2.0]])
    digest = persistence._digest(meta, {"coef": coef})
    # Same bytes, another dtype or shape: another digest (version 1 ignored the dtype).
    assert persistence._digest(meta, {"coef": coef.view(np.int64)}) != digest
    assert persistence._digest(meta, {"coef": coef.reshape(2, 1)}) != digest
    assert persistence._digest(meta, {"coef": coef.view(np.int64)}, version=1) == (
        persistence._digest(meta, {"coef": coef}, version=1)
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m, a: a.update(evil=np.zeros(1)), "the model's tensors are coef, evil"),
        (lambda m, a: a.pop("intercept"), "the model's tensors are coef, state.R"),
        (lambda m, a: a.pop("state.R"), "the saved state is incomplete"),
        (lambda m, a: a.update(coef=a["coef"][None]), "'coef' has 3 dimension"),
        (lambda m, a: a.update(coef=np.full_like(a["coef"], np.nan)), "'coef' holds numbers"),
        (lambda m, a: a.update(intercept=np.array([np.inf])), "'intercept' holds numbers"),
        (lambda m, a: a.update(coef=a["coef"][:, :2]), r"\(1, 2\).*do not fit 3 features"),
        (lambda m, a: m.update(n_features=5), "do not fit 5 features"),
        (lambda m, a: a.update(intercept=np.zeros(2)), r"intercept \(2,\) do not fit"),
        (lambda m, a: a["state.R"].__setitem__((3, 0), 1.0), "R that is not upper triangular"),
        (lambda m, a: a.update({"state.R": np.eye(4)}), r"R of shape \(4, 4\), expected"),
        (lambda m, a: a.update({"state.shift_y": np.zeros(2)}), "shift_y of shape"),
    ],
    ids=[
        "extra",
        "no-intercept",
        "half-state",
        "3-d",
        "nan",
        "inf",
        "narrow",
        "n_features",
        "two-intercepts",
        "R-lower",
        "R-shape",
        "shift-shape",
    ],  # fmt: skip
)
def test_crafted_tensors_are_refused(model: Path, edit: Any, message: str) -> None:
    craft(model, edit)
    refused(model, message)


# ---- paths that are not regular files ---------------------------------------------------

NOT_REGULAR = """
import sys
sys.path.insert(0, {src!r})
from torchlinreg import InputError, load_model
from torchlinreg.cli import main
from torchlinreg.solvers.state import LeastSquaresState
for read in (load_model, LeastSquaresState.load):
    try:
        read({path!r})
    except InputError as exc:
        print(exc)
for argv in (["summary", {path!r}], ["predict", {path!r}, {houses!r}]):
    assert main(argv) == 2
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    # Opening a FIFO for reading waits for a writer: without the check, every reader
    # hung. In a subprocess with a timeout, so that a regression fails instead of hanging.
    fifo = tmp_path / "m.safetensors"
    os.mkfifo(fifo)
    code = NOT_REGULAR.format(src=SRC, path=str(fifo), houses=HOUSES)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"{fifo} is a FIFO (named pipe), not a model file (only regular files are read)",
        f"{fifo} is a FIFO (named pipe), not a saved state file (only regular files are read)",
    ]
    assert proc.stderr.count("is a FIFO (named pipe), not a model file") == 2


@pytest.mark.parametrize("kind", ["directory", "device", "missing"])
def test_paths_that_are_not_regular_files_are_refused_alike(tmp_path: Path, kind: str) -> None:
    from torchlinreg.solvers.state import LeastSquaresState

    path = {"directory": tmp_path, "device": Path(os.devnull), "missing": tmp_path / "no"}[kind]
    if kind == "device" and not Path(os.devnull).is_char_device():
        pytest.skip("no character device for the null file here")
    expected = {
        "directory": "{} is a directory, not a {}",
        "device": "{} is a character device, not a {} (only regular files are read)",
        "missing": "{}: no such {}; check the path",
    }[kind]
    with pytest.raises(InputError) as model:
        load_model(str(path))
    assert str(model.value) == expected.format(path, "model file")
    with pytest.raises(InputError) as state:
        LeastSquaresState.load(str(path))
    assert str(state.value) == expected.format(path, "saved state file")
    for argv in (["summary", str(path)], ["predict", str(path), HOUSES]):
        assert expected.format(path, "model file") in cli_error(argv)


# ---- hostile metadata ----------------------------------------------------------------


def set_in(path: str, value: Any) -> Callable[[dict[str, Any], Any], None]:
    """An edit that sets a dotted path (list indices as numbers) of the metadata."""

    def edit(meta: dict[str, Any], arrays: Any) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = meta
        for p in parents:
            node = node[p]
        node[last] = value

    return edit


def test_deeply_nested_metadata_is_refused(model: Path, saved: bytes) -> None:
    header, _, arrays = read(model)
    header["model"] = "[" * 100_000 + "]" * 100_000  # RecursionError in the parser
    save_file(arrays, str(model), metadata=header)
    refused(model, "the model metadata is damaged")
    model.write_bytes(saved)
    craft(model, set_in("info.extra", json.loads("[" * 60 + "]" * 60)))
    refused(model, "nested deeper than 32 levels")


def test_a_5000_digit_integer_is_refused(model: Path, saved: bytes) -> None:
    header, _, arrays = read(model)
    header["model"] = header["model"].replace('"n_features": 3', '"n_features": ' + "9" * 5000)
    save_file(arrays, str(model), metadata=header)
    refused(model, "the model metadata is damaged")  # int() refuses > 4300 digits
    model.write_bytes(saved)
    craft(model, set_in("n_features", 10**4000))  # parses, and must still be a count
    refused(model, "n_features is 1000000.*expected an integer from 1")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("1e400", "state.weight_sum"),
        ("NaN", "state.weight_sum"),
        ("Infinity", "info.fit.rmse.0"),
        ("-1e400", "info.summary.0.coefficients.1.estimate"),
        ("NaN", "info.summary.0.cov.0.0"),
        ("1e400", "state.log_weight_sum"),
        ("1e400", "info.history"),
        ("NaN", "info.a key\non two lines"),
    ],
)
def test_infinite_and_nan_numbers_are_refused(model: Path, text: str, where: str) -> None:
    craft(model, set_in(where, json.loads(text)))
    refused(model, "expected a")


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("estimator", "Lars", "unknown estimator 'Lars'"),
        ("estimator", ["LinearRegression"], "unknown estimator a list"),
        ("n_features", "3", "n_features is '3'; expected an integer"),
        ("n_features", True, "n_features is True; expected an integer"),
        ("target_1d", 1, "target_1d is 1; expected true or false"),
        ("feature_names", {"a": 1}, "feature_names is an object; expected a list of strings"),
        ("feature_names", ["area", "area", "age"], "feature_names repeats a name"),
        ("feature_names", ["area", "rooms"], "feature_names has 2 names for 3"),
        ("feature_names", ["area", "age", "rooms"], "design and the feature names disagree"),
        ("design", [], "design is a list; expected an object"),
        ("design.targets", 5, "design.targets is 5; expected a list of strings"),
        ("design.targets", ["a", "b"], "names 2 target"),
        ("design.inputs", ["area", "rooms"], "makes 2 features for 3"),
        ("design.missing", "ignore", "design.missing is 'ignore'"),
        ("design.one_hot", {"colour": ["a"]}, "design.one_hot has an unknown 'colour'"),
        ("design.drop_reference", "no", "drop_reference is 'no'"),
        ("params", None, "params is None; expected an object"),
        ("params.fit_intercept", "yes", "params.fit_intercept is 'yes'; expected true"),
        ("params.fit_intercept", False, "fitted without an intercept has a nonzero intercept"),
        ("params.solver", 3, "params.solver is 3; expected one of 'auto'"),
        ("params.device", {"type": "cuda"}, "params.device is an object"),
        ("state", None, "record and its tensors do not come together"),
        ("state.n_targets", 2, "saved state has 2 targets for 1"),
        ("state.n_features", 4, "saved state has 4 features for 3"),
        ("state.n_samples", -1, "state.n_samples is -1"),
        (
            "state.n_observations",
            61,
            "state.n_observations is 61; expected an integer from 1 to 60",
        ),
        ("state.fit_intercept", "true", "state.fit_intercept is 'true'"),
        ("state.fit_intercept", False, "disagree on the intercept"),
        ("state.weight_sum", -1.0, "state.weight_sum is -1.0"),
        ("state.log_weight_sum", "0", "state.log_weight_sum is '0'"),
        ("fitted.rank_", 99, "fitted.rank_ is 99"),
        ("fitted.coef_", [1.0], "fitted has an unknown 'coef_'"),
        ("fitted.condition_number_", 0.5, "fitted.condition_number_ is 0.5"),
        ("fitted.target_names_", ["a", "b"], "target_names_ has 2 names for 1"),
        ("info", "x", "info is 'x'; expected an object"),
        ("info.n", "60", "info.n is '60'"),
        ("info.fit.r2", [0.5, 0.5], "info.fit.r2 is a list; expected a list of 1"),
        ("info.fit.rmse", ["13"], r"info.fit.rmse[0] is '13'"),
        ("info.summary", {}, "info.summary is an object"),
        ("info.summary.0.coefficients", [], "expected a list of 4 coefficients"),
        ("info.summary.0.coefficients.0.name", "const", "names other coefficients"),
        ("info.summary.0.coefficients.0.p_value", 2.0, "p_value is 2.0"),
        ("info.summary.0.coefficients.0.exec", "x", "has an unknown 'exec'"),
        ("info.summary.0.cov", [[1.0]], "cov is a list; expected a 4x4 matrix"),
        ("info.summary.0.level", 95, "level is 95"),
        ("info.summary.0.notes", "note", "notes is 'note'; expected a list of strings"),
        ("info.summary.0.n", 1.5, "info.summary[0].n is 1.5"),
        ("created", 2026, "created is 2026; expected a string"),
        ("script", "import os", "the metadata has an unknown 'script'"),
    ],
)
def test_wrong_metadata_with_a_recomputed_checksum_is_refused(
    model: Path, where: str, value: Any, message: str
) -> None:
    craft(model, set_in(where, value))
    refused(model, re.escape(message))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"solver": "nonsense"}, "params.solver is 'nonsense'; expected one of 'auto'"),
        ({"refine": 1}, "params.refine is 1; expected one of 'auto', True, False"),
        ({"refine": "always"}, "params.refine is 'always'"),
        ({"device": "meta"}, "params.device is 'meta'; expected a device"),
        ({"device": "cuda:x"}, "params.device is 'cuda:x'"),
        ({"loss": "huber"}, "params has an unknown 'loss'"),
    ],
)
def test_parameter_values_are_checked_without_building_the_estimator(
    model: Path, params: dict[str, Any], message: str
) -> None:
    # summary MODEL (which never builds the estimator) refuses them as well.
    craft(model, lambda m, a: m["params"].update(params))
    refused(model, re.escape(message))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"epochs": 1.5}, "params.epochs is 1.5"),
        ({"lr": -1}, "params.lr is -1"),
        ({"batch_size": 0}, "params.batch_size is 0"),
        ({"optimizer": ["sgd"]}, "params.optimizer is a list"),
        ({"optimizer_options": [1]}, "params.optimizer_options is a list"),
        ({"random_state": "RandomState"}, "params.random_state is 'RandomState'"),
        ({"random_state": 2**64}, "params.random_state is 18446744073709551616"),
        ({"random_state": -1}, "params.random_state is -1; expected an integer from 0"),
        ({"loss": "l1"}, "params.loss is 'l1'; expected one of 'squared_error', 'huber'"),
        ({"init": "ones"}, "params.init is 'ones'; expected one of 'zeros', 'random'"),
        ({"dtype": "float16"}, "params.dtype is 'float16'; expected one of 'float32'"),
        ({"device": None}, "params.device is None; expected a device"),
        ({"optimizer": "torch.optim.SGD"}, "params.optimizer is 'torch.optim.SGD'"),
        ({"epsilon": 0}, "params.epsilon is 0"),
        ({"log_to": "stdout"}, "params.log_to is 'stdout'"),
        ({"solver": "qr"}, "params has an unknown 'solver'"),
    ],
)
def test_gd_parameters_outside_their_values_are_refused(
    tmp_path: Path, rng: np.random.Generator, params: dict[str, Any], message: str
) -> None:
    from torchlinreg import GDRegressor

    path = tmp_path / "gd.safetensors"
    save_model(str(path), GDRegressor(epochs=3).fit(rng.normal(size=(10, 2)), rng.normal(size=10)))
    craft(path, lambda m, a: m["params"].update(params))
    with pytest.raises(InputError, match=re.escape(message)):
        persistence.read_model(str(path))  # the torch-free reader behind summary MODEL


def test_the_largest_seed_is_saved_and_read_back(tmp_path: Path, rng) -> None:
    from torchlinreg import GDRegressor

    path = tmp_path / "gd.safetensors"
    gd = GDRegressor(epochs=3, random_state=2**64 - 1)
    save_model(str(path), gd.fit(rng.normal(size=(10, 2)), rng.normal(size=10)))
    assert load_model(str(path)).estimator.random_state == 2**64 - 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"solver": "svd"}, "params.solver is 'svd'; expected one of 'auto', 'qr', 'cholesky'"),
        ({"alpha": -1.0}, "params.alpha is -1.0"),
        ({"alpha": [1.0, -0.5]}, "params.alpha[1] is -0.5"),
    ],
)
def test_ridge_parameters_outside_their_values_are_refused(
    tmp_path: Path, rng: np.random.Generator, params: dict[str, Any], message: str
) -> None:
    from torchlinreg import Ridge

    path = tmp_path / "r.safetensors"
    save_model(str(path), Ridge().fit(rng.normal(size=(10, 2)), rng.normal(size=(10, 2))))
    craft(path, lambda m, a: m["params"].update(params))
    with pytest.raises(InputError, match=re.escape(message)):
        persistence.read_model(str(path))


def test_the_recorded_parameters_are_the_estimators_own() -> None:
    """The model-file checks and the estimators share their parameter names and values:
    every value the checks allow, the estimator accepts, and the first it refuses."""
    from torchlinreg import ElasticNet, GDRegressor, HuberRegressor, Lasso, Ridge
    from torchlinreg._model_params import PARAMS

    classes = {
        "LinearRegression": LinearRegression, "Ridge": Ridge, "GDRegressor": GDRegressor,
        "Lasso": Lasso, "ElasticNet": ElasticNet, "HuberRegressor": HuberRegressor,
    }  # fmt: skip
    assert set(PARAMS) == set(classes)
    for name, cls in classes.items():
        assert set(PARAMS[name]) == set(cls._param_names()), name
    for cls, solvers in ((LinearRegression, ("auto", "qr", "svd", "cholesky")),
                         (Ridge, ("auto", "qr", "cholesky"))):  # fmt: skip
        for solver in solvers:
            PARAMS[cls.__name__]["solver"](solver, "solver")
            cls(solver=solver)._check_params()
        for refused_solver in {"auto", "qr", "svd", "cholesky", "lsqr"} - set(solvers):
            with pytest.raises(InputError):
                PARAMS[cls.__name__]["solver"](refused_solver, "solver")
            with pytest.raises(InputError):
                cls(solver=refused_solver)._check_params()
    for init in ("zeros", "random"):
        PARAMS["GDRegressor"]["init"](init, "init")
        GDRegressor(init=init)._check_params()


def test_ridge_alpha_per_target_must_match_the_targets(tmp_path: Path, rng) -> None:
    from torchlinreg import Ridge

    path = tmp_path / "r.safetensors"
    save_model(
        str(path), Ridge(alpha=[1.0, 2.0]).fit(rng.normal(size=(10, 2)), rng.normal(size=(10, 2)))
    )
    assert load_model(str(path)).estimator.alpha == [1.0, 2.0]
    craft(path, set_in("params.alpha", [1.0, 2.0, 3.0]))
    with pytest.raises(InputError, match="params.alpha has 3 values for 2 target"):
        load_model(str(path))


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("0", "format version '0' is not valid"),
        ("1" + "0" * 5000, "is not valid"),
        ("v2", "'v2' is not valid"),
        ("3", "newer torchlinreg"),
    ],  # fmt: skip
)
def test_format_versions(model: Path, version: str, message: str) -> None:
    header, _, arrays = read(model)
    header["format_version"] = version
    save_file(arrays, str(model), metadata=header)
    refused(model, message)


def test_files_of_format_1_are_still_read(model: Path, rng) -> None:
    # Version 1 wrote the same layout; its checksum left the dtypes out.
    header, meta, arrays = read(model)
    header["format_version"] = "1"
    header["sha256"] = persistence._digest(meta, arrays, version=1)
    save_file(arrays, str(model), metadata=header)
    back = load_model(str(model)).estimator
    np.testing.assert_array_equal(back.coef_, arrays["coef"][0])
    header["sha256"] = persistence._digest(meta, arrays)  # a version 2 checksum
    save_file(arrays, str(model), metadata=header)
    refused(model, "corrupted: its checksum does not match")


def test_a_model_its_reader_would_refuse_is_not_written(tmp_path: Path, rng) -> None:
    model = LinearRegression().fit(rng.normal(size=(10, 2)), rng.normal(size=10))
    model.coef_ = np.array([np.nan, 1.0])
    path = tmp_path / "m.safetensors"
    with pytest.raises(InputError, match="cannot be saved: the tensor 'coef' holds numbers"):
        save_model(str(path), model)
    assert list(tmp_path.iterdir()) == []


# ---- the saved state agrees with the counts, the rank and the coefficients -------------
# The fixture's model: an intercept and 3 features, 60 unweighted rows, rank 4.


def scale_entry(name: str, index: tuple[int, int], factor: float) -> Callable[..., None]:
    def edit(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        arrays[name][index] *= factor

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # Standard errors NaN, t = ±inf and p < 1e-16 in the summary, before.
        (
            lambda m, a: a["state.R"].fill(0.0),
            "its R starts with 0, but a state of weight sum 60.0 has |R[0,0]| = 7.74596669241483",
        ),
        # R₀₀ = √60 to within 10·m·(n + 1)·ε = 6.8e-13 (relative); here 1e-9 off.
        (scale_entry("state.R", (0, 0), 1 + 1e-9), "its R starts with"),
        (
            lambda m, a: a["state.R"].__setitem__((2, 2), 0.0),
            "records full rank (4), but its R is singular at feature 1 (scaled diagonal 0)",
        ),
        (lambda m, a: m["state"].update(evil=1), "state has an unknown 'evil'"),
        (
            set_in("state.weight_sum", 59.0),
            "without weights has 60 rows but 60 observations and a weight sum of 59.0",
        ),
        (set_in("state.weight_sum", 0.0), "state.weight_sum is 0.0"),
        (
            lambda m, a: m["state"].update(weighted=True, n_observations=0),
            "state.n_observations is 0; expected an integer from 1 to 60",
        ),
        (
            lambda m, a: m["state"].update(weighted=True, n_observations=3),
            "the model records rank 4 from 3 observation(s)",
        ),
        (set_in("fitted.n_samples_seen_", 61), "records 61 samples seen, but its saved state 60"),
        (set_in("info.rank", 3), "fitted.rank_ and info.rank disagree"),
        (set_in("fitted.rank_", 5), "fitted.rank_ is 5; expected an integer from 0 to 4"),
    ],
    ids=[
        "zero-R",
        "R00",
        "singular",
        "unknown-key",
        "weight-sum",
        "no-weight",
        "no-rows",
        "rank-rows",
        "samples-seen",
        "ranks-disagree",
        "rank-range",
    ],  # fmt: skip
)
def test_a_state_that_disagrees_with_the_model_is_refused(
    model: Path, edit: Any, message: str
) -> None:
    craft(model, edit)
    refused(model, re.escape(message))


def test_a_design_the_solver_finds_singular_cannot_be_recorded_as_full_rank(model: Path) -> None:
    # Oracle: the solver itself, on the crafted R. Feature 2's diagonal entry, scaled by
    # its column's norm, set to 1e-13: below half the rank tolerance (1000·4·ε = 8.9e-13).
    from torchlinreg.solvers.solve import solve_ols
    from torchlinreg.solvers.state import LeastSquaresState, RowCounts

    _, meta, arrays = read(model)
    R = arrays["state.R"]
    R[3, 3] = 1e-13 * np.linalg.norm(R[:3, 3])  # the column's norm is then (1 + 5e-27) times
    parts = [torch_of(arrays[f"state.{n}"]) for n in ("R", "shift_x", "shift_y")]
    state = LeastSquaresState.from_parts(*parts, RowCounts(60, 60, 60.0), fit_intercept=True)
    assert solve_ols(state).rank == 3 < meta["fitted"]["rank_"] == 4
    craft(model, lambda m, a: a["state.R"].__setitem__((3, 3), R[3, 3]))
    refused(model, re.escape("records full rank (4), but its R is singular at feature 2"))


def torch_of(a: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(np.array(a))


def test_a_zero_design_with_coefficients_is_refused(tmp_path: Path, rng) -> None:
    # Without an intercept nothing ties R to the weights: a zero design block (with the
    # rank it implies, 0) determines no coefficients, so they must be zero.
    path = tmp_path / "m.safetensors"
    X, y = rng.normal(size=(20, 2)), rng.normal(size=20)
    save_model(str(path), LinearRegression(fit_intercept=False).fit(X, y))

    def zero_design(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        arrays["state.R"][:2, :2] = 0.0
        meta["fitted"]["rank_"] = 0

    craft(path, zero_design)
    with pytest.raises(InputError, match="design block is zero, which determines no coef"):
        load_model(str(path))
    save_model(str(path), LinearRegression(fit_intercept=False).fit(X, y))
    craft(path, lambda m, a: a["state.shift_y"].fill(1.0))
    with pytest.raises(InputError, match="without an intercept has a nonzero shift"):
        load_model(str(path))


def fits(rng: np.random.Generator) -> dict[str, Any]:
    """Real fits at the edges of the state checks, each of which must be read back."""
    import warnings

    from torchlinreg import Ridge

    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    dup = np.c_[X, X[:, 0]]  # rank deficient: 4 of 5 parameters
    w = rng.lognormal(sigma=3, size=40)
    w[-5:] = 0.0  # zero weights: not observations
    one_row_at_a_time = LinearRegression()
    for i in range(40):
        one_row_at_a_time.partial_fit(X[i : i + 1] + 1e6, y[i : i + 1], w[i : i + 1])
    big = rng.normal(size=(3000, 4)) + 1e3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rank and accuracy warnings: expected here
        return {
            "deficient": LinearRegression().fit(dup, y),
            "ridge-singular": Ridge(alpha=1.0).fit(dup, y),  # records full rank: unique
            "ridge-mixed": Ridge(alpha=[0.0, 2.0]).fit(dup, np.c_[y, -y]),
            "zero-design": LinearRegression(fit_intercept=False).fit(np.zeros((5, 2)), y[:5]),
            "constant-columns": LinearRegression().fit(np.ones((5, 2)), y[:5]),
            "weights": LinearRegression().fit(X, y, w),
            "huge-scales": LinearRegression().fit(X * 1e150, y * 1e-150, w * 1e200),
            "tiny-weights": LinearRegression().fit(X + 1e6, y + 1e8, w * 1e-300),
            "partial-fit": one_row_at_a_time,
            "cholesky": LinearRegression(solver="cholesky").fit(big, big @ [1, 2, 3, 4]),
            "svd": LinearRegression(solver="svd").fit(big, big[:, 0]),
            "no-intercept": LinearRegression(fit_intercept=False).fit(big, big[:, 1]),
            "chunks": LinearRegression().fit_chunks(
                (big[i : i + 7], big[i : i + 7, 2]) for i in range(0, 3000, 7)
            ),
        }


def test_real_fits_pass_the_state_checks(tmp_path: Path, rng) -> None:
    for name, est in fits(rng).items():
        path = tmp_path / f"{name}.safetensors"
        save_model(str(path), est)
        back = load_model(str(path)).estimator
        np.testing.assert_array_equal(back.coef_, est.coef_, err_msg=name)
        assert back.rank_ == est.rank_, name


# ---- summary stays light ---------------------------------------------------------------

LIGHT = """
import contextlib, io, sys
sys.path.insert(0, {src!r})
import torchlinreg.cli
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = torchlinreg.cli.main(["summary", {path!r}])
assert code == 0, code
assert "Condition number" in out.getvalue() or "condition number" in out.getvalue()
print(sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
"""


@pytest.mark.parametrize("with_tables", [True, False])
def test_summary_of_a_model_does_not_import_torch(
    tmp_path: Path, saved: bytes, with_tables
) -> None:
    path = tmp_path / "m.safetensors"
    if with_tables:
        path.write_bytes(saved)
    else:
        assert main(["fit", HOUSES, "--target", "price", "-o", str(path), "--quiet"]) == 0
    code = LIGHT.format(src=SRC, path=str(path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_summary_labels_its_two_condition_numbers(model: Path, capsys) -> None:
    assert main(["summary", str(model)]) == 0
    out = capsys.readouterr().out
    _, meta, _ = read(model)
    fit_kappa = meta["info"]["condition_number"]
    table_kappa = meta["info"]["summary"][0]["condition_number"]
    assert fit_kappa != pytest.approx(table_kappa)  # two different numbers...
    # ...each with words that tell them apart.
    ours = [line for line in out.splitlines() if f"{fit_kappa:.3g}" in line]
    assert ours == [f"  rank 4; condition number (columns scaled, centred with an intercept; "
                    f"bounds the fit's accuracy): {fit_kappa:.3g}"]  # fmt: skip
    tables = [line for line in out.splitlines() if line.startswith("Condition number")]
    assert len(tables) == 1 and tables[0].endswith(f": {table_kappa:.3g}")
    assert "scaled" not in tables[0].replace("unscaled", "")


# ---- writes ----------------------------------------------------------------------------


def test_the_file_is_fsynced_before_the_rename(tmp_path: Path, monkeypatch) -> None:
    import stat

    from torchlinreg import _files

    events: list[str] = []
    fsync, replace = os.fsync, os.replace

    def spy_fsync(fd: int) -> None:
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        fsync(fd)

    def spy_replace(src: str, dst: str) -> None:
        events.append("rename")
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    with _files.atomic_path(str(tmp_path / "out.csv")) as tmp:
        Path(tmp).write_text("a\n1\n")
    assert events == ["fsync file", "rename", "fsync dir"]
    assert (tmp_path / "out.csv").read_text() == "a\n1\n"


def test_the_signal_handlers_are_restored(tmp_path: Path) -> None:
    from torchlinreg._files import atomic_path

    def mine(signum: int, frame: Any) -> None:
        raise AssertionError("not called")

    before = signal.signal(signal.SIGTERM, mine)
    try:
        with atomic_path(str(tmp_path / "out.csv")) as tmp:
            Path(tmp).write_text("x\n")
            assert signal.getsignal(signal.SIGTERM) is not mine
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)


WRITER = """
import sys, time
sys.path.insert(0, {src!r})
from torchlinreg._files import atomic_path
with atomic_path({out!r}) as tmp:
    open(tmp, "w").write("half")
    print("writing", flush=True)
    time.sleep(60)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_signal_in_the_middle_of_a_write_leaves_no_temporary_file(tmp_path: Path, name) -> None:
    out = tmp_path / "out.csv"
    out.write_text("old\n")
    code = WRITER.format(src=SRC, out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "writing\n"
        assert len(list(tmp_path.glob(".tmp-*"))) == 1
        proc.send_signal(getattr(signal, name))
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    # The process still ends as the signal would have ended it.
    assert proc.returncode == -getattr(signal, name)
    assert list(tmp_path.glob(".tmp-*")) == []
    assert out.read_text() == "old\n"


@pytest.mark.skipif(sys.platform == "win32", reason="ulimit is POSIX")
def test_a_file_size_limit_while_writing_a_model_is_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "m.safetensors"
    out.write_bytes(b"old")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {SRC!r})
        from torchlinreg.cli import main
        sys.exit(main(["fit", {HOUSES!r}, "--target", "price", "--summary", "-o", {str(out)!r}]))
    """)
    # The model is about 4 KB; the limit is one 1024-byte block. Python ignores SIGXFSZ,
    # so the write fails with EFBIG.
    proc = subprocess.run(["bash", "-c", 'ulimit -f 1 && exec "$0" -c "$1"', sys.executable, script],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"torchlinreg fit: error: {out} could not be written: File too large"
    ]
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


@pytest.mark.skipif(sys.platform == "win32", reason="ulimit is POSIX")
def test_a_file_size_limit_while_saving_a_state_is_one_line(tmp_path: Path) -> None:
    # A saved state goes through the model files' writer: the limit is an InputError.
    out = tmp_path / "s.safetensors"
    out.write_bytes(b"old")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {SRC!r})
        import numpy as np
        from torchlinreg import InputError, LeastSquaresState
        X, y = np.random.default_rng(0).normal(size=(100, 30)), np.arange(100.0)
        try:
            LeastSquaresState(30).update(X, y).save({str(out)!r})  # R: 32 x 32 x 8 bytes
        except InputError as exc:
            sys.exit(str(exc))
    """)
    proc = subprocess.run(["bash", "-c", 'ulimit -f 1 && exec "$0" -c "$1"', sys.executable, script],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [f"{out} could not be written: File too large"]
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["s.safetensors"]


def test_a_torch_optim_class_is_saved_by_the_name_that_resolves_to_it(tmp_path: Path) -> None:
    """GDRegressor(optimizer=torch.optim.Adam) reloaded as 'sgd' (the class had no JSON
    form); it is recorded as "adam", which resolves back to the same class, so the
    reloaded estimator trains as the saved one did. A subclass under another name, or a
    factory, is not recorded: the reloaded estimator has the default, 'sgd'."""
    import torch

    from torchlinreg import GDRegressor
    from torchlinreg.training.optimizers import optimizer_names

    class Custom(torch.optim.Adam):
        pass

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10, 2)), rng.normal(size=10)
    cases = [
        (torch.optim.Adam, "adam"),
        (torch.optim.RMSprop, "rmsprop"),
        (Custom, "sgd"),
        (lambda params, lr: torch.optim.Adam(params, lr=lr), "sgd"),
    ]
    for optimizer, recorded in cases:
        path = tmp_path / "gd.safetensors"
        saved = GDRegressor(optimizer=optimizer, epochs=3, random_state=0).fit(X, y)
        save_model(str(path), saved)
        loaded = load_model(str(path)).estimator
        assert loaded.get_params()["optimizer"] == recorded
        if recorded != "sgd":
            assert optimizer_names()[recorded] is optimizer
            retrained = loaded.fit(X, y)
            np.testing.assert_array_equal(retrained.coef_, saved.coef_)
