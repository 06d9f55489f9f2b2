"""Model files: one ``.safetensors`` file, tensors plus versioned JSON metadata.

Loading never executes code from the file (safetensors holds raw numbers and a JSON
header; no pickle, no ``torch.load``), checks the format name and version, and verifies
a SHA-256 over the metadata and every tensor's bytes. Writing is atomic.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._version import __version__
from .errors import InputError

FORMAT = "torchlinreg-model"
FORMAT_VERSION = 1
_ESTIMATORS = ("LinearRegression", "Ridge", "GDRegressor")


@dataclass
class ModelFile:
    """A loaded model: the fitted estimator, the column design (when fitted from a file)
    and everything recorded about the fit (``info``)."""

    estimator: Any
    design: Any
    info: dict[str, Any] = field(default_factory=dict)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()  # e.g. Ridge's per-target alpha
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)  # e.g. an optimizer class: recorded, not restored


# Fitted attributes restored on load, so a loaded model summarises and predicts intervals.
_FITTED = ("rank_", "condition_number_", "aliased_", "refined_", "solver_used_",
           "n_samples_seen_", "target_names_")  # fmt: skip


def _digest(meta: dict[str, Any], tensors: dict[str, Any]) -> str:
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def save_model(
    path: str, estimator: Any, *, design: Any = None, info: dict[str, Any] | None = None
) -> None:
    """Write a fitted estimator (and its design and fit information) to ``path``."""
    import torch
    from safetensors.torch import save_file

    from ._files import atomic_path

    name = type(estimator).__name__
    if name not in _ESTIMATORS:
        raise InputError(f"cannot save a {name}; supported: {', '.join(_ESTIMATORS)}")
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
    target_1d = np.ndim(estimator.coef_) == 1
    tensors = {
        "coef": torch.from_numpy(coef.copy()),
        "intercept": torch.from_numpy(
            np.atleast_1d(np.asarray(estimator.intercept_, np.float64)).copy()
        ),
    }
    state = getattr(estimator, "state_", None)
    if state is not None:
        saved = state.state_dict()
        for part in ("R", "shift_x", "shift_y"):
            tensors[f"state.{part}"] = saved[part]
    names = getattr(estimator, "feature_names_in_", None)
    meta = {
        "estimator": name,
        "params": {k: _jsonable(v) for k, v in estimator.get_params().items()},
        "target_1d": target_1d,
        "n_features": int(estimator.n_features_in_),
        "feature_names": None if names is None else [str(n) for n in names],
        "design": None if design is None else design.to_dict(),
        "state": None if state is None else state.state_dict()["meta"],
        "fitted": {k: _jsonable(getattr(estimator, k)) for k in _FITTED if hasattr(estimator, k)},
        "info": info or {},
        "torchlinreg_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "model": json.dumps(meta),
        "sha256": _digest(meta, tensors),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=header)


def load_model(path: str) -> ModelFile:
    """Read a model written by :func:`save_model`, with a clear error for anything else."""
    from safetensors import SafetensorError, safe_open

    if not os.path.exists(path):
        raise InputError(f"{path}: no such model file; check the path")
    if os.path.isdir(path):
        raise InputError(f"{path} is a directory, not a model file")
    try:
        with safe_open(path, framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    except PermissionError:
        raise InputError(f"{path}: permission denied; check the file's permissions") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        detail = " ".join(str(exc).split())
        raise InputError(
            f"{path} is not a readable model file (truncated, corrupted or another format: "
            f"{detail})"
        ) from None
    if header.get("format") != FORMAT:
        raise InputError(f"{path} is a safetensors file but not a torchlinreg model")
    version = header.get("format_version", "")
    if not (version.isascii() and version.isdigit()):
        raise InputError(
            f"{path}: model format version {version!r} is not valid; the file is damaged"
        )
    if int(version) > FORMAT_VERSION:
        raise InputError(
            f"{path} was written in model format {version} by a newer torchlinreg; "
            f"this version ({__version__}) reads format {FORMAT_VERSION}: upgrade torchlinreg"
        )
    try:
        meta = json.loads(header["model"])
    except (KeyError, json.JSONDecodeError):
        raise InputError(f"{path}: the model metadata is damaged") from None
    if header.get("sha256") != _digest(meta, tensors):
        raise InputError(f"{path} is corrupted: its checksum does not match its contents")
    try:
        model = ModelFile(_rebuild(meta, tensors), _design(meta), meta.get("info", {}))
        _validate(model, tensors)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
        if isinstance(exc, InputError):
            raise InputError(f"{path}: {exc}") from None
        raise InputError(f"{path}: the model metadata is malformed ({exc!r})") from None
    return model


def _validate(model: ModelFile, tensors: dict[str, Any]) -> None:
    """A file whose checksum was recomputed after editing must still make sense."""
    est = model.estimator
    coef, intercept = tensors["coef"], tensors["intercept"]
    p = est.n_features_in_
    if coef.ndim != 2 or coef.shape[1] != p or intercept.shape != (coef.shape[0],):
        raise InputError(
            f"coefficients of shape {tuple(coef.shape)} and intercept {tuple(intercept.shape)} "
            f"do not fit {p} features"
        )
    if not (bool(coef.isfinite().all()) and bool(intercept.isfinite().all())):
        raise InputError("the coefficients are not finite numbers")
    names = getattr(est, "feature_names_in_", None)
    if names is not None and len(names) != p:
        raise InputError(f"{len(names)} feature names for {p} features")
    if model.design is not None and len(model.design.feature_names) != p:
        raise InputError("the column design does not match the coefficients")
    if not isinstance(getattr(est, "fit_intercept", True), bool):
        raise InputError("fit_intercept is not true/false")


def _design(meta: dict[str, Any]) -> Any:
    if meta.get("design") is None:
        return None
    from .data.design import Design

    d = meta["design"]
    if not isinstance(d, dict):
        raise InputError("the column design is malformed")
    return Design.from_dict(d)


def _rebuild(meta: dict[str, Any], tensors: dict[str, Any]) -> Any:
    from .models.gd import GDRegressor
    from .models.linear import LinearRegression, Ridge

    classes: dict[str, Any] = {
        "LinearRegression": LinearRegression,
        "Ridge": Ridge,
        "GDRegressor": GDRegressor,
    }
    if meta.get("estimator") not in classes:
        raise InputError(f"unknown estimator {meta.get('estimator')!r} in the model file")
    cls = classes[meta["estimator"]]
    valid = cls._param_names()
    params = {k: v for k, v in meta["params"].items() if k in valid}
    if cls is GDRegressor and not isinstance(params.get("optimizer"), str):
        params.pop("optimizer", None)  # a class or factory cannot be restored from text
    est = cls(**params)
    coef = tensors["coef"].numpy()
    intercept = tensors["intercept"].numpy()
    est.coef_ = coef[0] if meta["target_1d"] else coef
    est.intercept_ = float(intercept[0]) if meta["target_1d"] else intercept
    est.n_features_in_ = int(meta["n_features"])
    if meta.get("feature_names"):
        est.feature_names_in_ = np.asarray(meta["feature_names"], dtype=object)
    for k, v in (meta.get("fitted") or {}).items():
        if k in _FITTED:
            setattr(est, k, v)
    if "state.R" in tensors and meta.get("state"):
        from .solvers.state import LeastSquaresState

        parts = {k[len("state.") :]: v for k, v in tensors.items() if k.startswith("state.")}
        est.state_ = LeastSquaresState.from_state_dict({**parts, "meta": meta["state"]})
    return est
