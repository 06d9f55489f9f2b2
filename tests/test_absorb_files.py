"""Model files of fits with fixed effects absorbed: the file keeps ``absorbed_`` (its
levels are the summary's degrees of freedom), so a loaded model's summary equals the
original's exactly; a malformed record is refused in one line.

Exact equality is the specification: the loaded model holds the same float64 numbers
(state, coefficients, fit-time meat) and the same record, and its summary is the same
computation on them. Without the record the loaded summary would count n − k degrees of
freedom instead of n − k − k_fe, moving every standard error by far more than rounding.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from torchlinreg import LinearRegression
from torchlinreg.errors import InputError, RankDeficientWarning
from torchlinreg.persistence import load_model, read_model, save_model

pd = pytest.importorskip("pandas")
safetensors = pytest.importorskip("safetensors")


def _panel(seed: int, n: int = 400) -> Any:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"firm": rng.integers(0, 30, n), "year": rng.integers(0, 6, n)})
    df["x1"] = rng.normal(size=n) + 0.1 * df.firm
    df["x2"] = rng.normal(size=n) + 0.3 * df.year
    df["size"] = (df.firm % 7).astype(float)  # constant within firm: absorbed
    df["y"] = df.x1 - 2 * df.x2 + rng.normal(size=30)[df.firm] + rng.normal(size=n)
    df["w"] = rng.uniform(0.5, 2.0, n)
    return df


def _fit(cov_type: str, columns: tuple[str, ...] = ("x1", "x2")) -> Any:
    df = _panel(7)
    groups = df.firm if cov_type == "cluster" else None
    model = LinearRegression(cov_type=cov_type)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficientWarning)
        return model.fit(
            df[list(columns)], df.y, sample_weight=df.w, groups=groups, absorb=df[["firm", "year"]]
        )


def _saved(tmp_path: Path, model: Any) -> Path:
    path = tmp_path / "fe.safetensors"
    save_model(str(path), model)
    return path


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC1", "cluster"])
def test_loaded_summary_equals_the_original(tmp_path: Path, cov_type: str) -> None:
    model = _fit(cov_type)
    loaded = load_model(str(_saved(tmp_path, model))).estimator
    assert loaded.absorbed_ == model.absorbed_
    before, after = model.summary(), loaded.summary()
    np.testing.assert_equal(after.to_dict(), before.to_dict())
    assert str(after) == str(before)
    # The fixed effects' degrees of freedom are in it (30 firms + 6 years − 1 redundant).
    n, k, k_fe = 400, 2, 30 + 6 - 1
    assert model.absorbed_.dof == k_fe
    if cov_type != "cluster":
        assert after.df_resid == n - k - k_fe


def test_dropped_regressor_and_names_survive(tmp_path: Path) -> None:
    model = _fit("nonrobust", ("x1", "size", "x2"))
    loaded = load_model(str(_saved(tmp_path, model))).estimator
    assert loaded.absorbed_.dropped == ("size",)
    assert list(loaded.feature_names_in_) == ["x1", "x2"]
    np.testing.assert_equal(loaded.summary().to_dict(), model.summary().to_dict())


def test_models_without_fixed_effects_write_no_record(tmp_path: Path) -> None:
    """Files without the record (all files before it) load as before: no ``absorbed_``."""
    df = _panel(1)
    path = _saved(tmp_path, LinearRegression().fit(df[["x1", "x2"]], df.y))
    assert "absorbed" not in read_model(str(path)).meta
    assert getattr(load_model(str(path)).estimator, "absorbed_", None) is None


def _craft(path: Path, edit: Any) -> None:
    """Edit the metadata and recompute the checksum, as someone editing the file would."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    from torchlinreg import persistence

    with safe_open(str(path), framework="numpy") as f:
        header = dict(f.metadata())
        arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    meta = json.loads(header["model"])
    edit(meta)
    header["model"] = json.dumps(meta)
    header["sha256"] = persistence._digest(meta, arrays)
    save_file(arrays, str(path), metadata=header)


def _set(field: str, value: Any) -> Any:
    return lambda meta: meta["absorbed"].__setitem__(field, value)


@pytest.mark.parametrize(
    "edit,message",
    [
        (_set("n_levels", [30, -6]), r"absorbed\.n_levels\[1\] is -6"),
        (_set("n_levels", [30, "6"]), r"absorbed\.n_levels\[1\] is '6'"),
        (_set("n_levels", [30]), r"absorbed\.n_levels is a list; expected a list of 2"),
        (_set("n_levels", [30, 10**6]), r"more levels than the 400 observation"),
        (_set("nested", [True, 1]), r"absorbed\.nested\[1\] is 1"),
        (_set("factors", ["firm", 3]), r"absorbed\.factors"),
        (_set("factors", []), r"at least one factor"),
        (_set("method", "guess"), r"absorbed\.method is 'guess'"),
        (_set("iterations", -1), r"absorbed\.iterations is -1"),
        (_set("redundant_levels", 1.5), r"absorbed\.redundant_levels is 1\.5"),
        (_set("tss", [-1.0]), r"absorbed\.tss\[0\] is -1\.0"),
        (_set("tss", []), r"absorbed\.tss is a list"),
        (_set("dropped", ["x1"]), r"absorbed\.dropped names a kept feature"),
        (lambda meta: meta["absorbed"].pop("tss"), r"absorbed"),
        (lambda meta: meta.__setitem__("absorbed", [1]), r"absorbed is a list"),
        (lambda meta: meta["absorbed"].__setitem__("extra", 1), r"absorbed"),
    ],
)
def test_malformed_record_is_refused_in_one_line(tmp_path: Path, edit: Any, message: str) -> None:
    path = _saved(tmp_path, _fit("HC1"))
    _craft(path, edit)
    with pytest.raises(InputError, match=message) as info:
        load_model(str(path))
    assert len(str(info.value).splitlines()) == 1
    assert str(info.value).startswith(str(path))


def test_record_without_its_state_is_refused(tmp_path: Path) -> None:
    """The record belongs to an exact model: on another estimator it is refused."""
    from torchlinreg import HuberRegressor

    df = _panel(2, n=60)
    path = _saved(tmp_path, HuberRegressor().fit(df[["x1"]].to_numpy(), df.y.to_numpy()))
    record = _fit("nonrobust").absorbed_.to_dict()
    _craft(path, lambda meta: meta.__setitem__("absorbed", record))
    with pytest.raises(InputError, match="without the exact state") as info:
        load_model(str(path))
    assert len(str(info.value).splitlines()) == 1


def test_saving_refuses_nothing_it_writes(tmp_path: Path) -> None:
    """Every record a fit makes passes the reader's checks (one and several targets)."""
    df = _panel(3)
    Y = np.column_stack([df.y, df.y + df.x1])
    model = LinearRegression().fit(df[["x1", "x2"]], Y, absorb=df[["firm"]])
    loaded = load_model(str(_saved(tmp_path, model))).estimator
    assert loaded.absorbed_.tss == model.absorbed_.tss and len(model.absorbed_.tss) == 2
    for a, b in zip(loaded.summary(), model.summary(), strict=True):
        np.testing.assert_equal(a.to_dict(), b.to_dict())
