"""Model files: one ``.safetensors`` file, tensors plus versioned JSON metadata.

Loading never executes code from the file (safetensors holds raw numbers and a JSON
header; no pickle, no ``torch.load``). :func:`read_model` checks the format name and
version, that every tensor is float64 of the expected rank, a SHA-256 over the metadata
and every tensor's name, dtype, shape and bytes, and then every metadata field, the
parameters' values and the saved state's agreement with its counts, rank and
coefficients (:mod:`._model_meta`), with numpy alone; :func:`load_model` builds the estimator from
what it read. Writing is atomic (:func:`write_safetensors`, saved states' writer too).

Format versions: 2 adds each tensor's dtype to the checksum; files of version 1 are
still read (their checksum is checked the old way, and their dtypes must be float64).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._files import atomic_path, check_regular_file
from ._json_checks import check_depth
from ._model_meta import ESTIMATORS, OWN_FITTED, check_model
from ._version import __version__
from .data.design import Design
from .errors import InputError

FORMAT = "torchlinreg-model"
FORMAT_VERSION = 2
_DTYPE = "F64"  # safetensors' name for float64, the only dtype a model file holds
# Each tensor and its number of dimensions; the state's three come together or not at all.
_TENSORS = {"coef": 2, "intercept": 1, "state.R": 2, "state.shift_x": 1, "state.shift_y": 1}
# A robust covariance computed at fit time: its meat per target (k, p', p'), recorded
# with its type in the metadata's "covariance" (files without one still load).
_TENSORS["covariance.meat"] = 3
# HAC, CRV3 and two-way cluster meats (stats/extra_meat.py) also keep the meat with its
# small-sample factors, and their kind, lag and cluster counts in the record's "extra".
_TENSORS["covariance.corrected"] = 3
_STATE = ("R", "shift_x", "shift_y")


@dataclass
class ModelFile:
    """A loaded model: the fitted estimator, the column design (when fitted from a file)
    and everything recorded about the fit (``info``)."""

    estimator: Any
    design: Any
    info: dict[str, Any] = field(default_factory=dict)

    def predict(self, data: Any) -> Any:
        """Predictions for raw ``data`` (a DataFrame, a table or a path): with a design,
        its columns are encoded as when fitting (one-hot categories included)."""
        if self.design is None or getattr(self.estimator, "formula_", None) is not None:
            return self.estimator.predict(data)  # a formula builds its columns itself
        from .data.tables import design_matrix

        return self.estimator.predict_array(design_matrix(data, self.design))


@dataclass(frozen=True)
class ModelContents:
    """A model file read and checked without torch: its metadata (every field valid)
    and its tensors as float64 arrays (``coef`` is (n_targets, n_features))."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def design(self) -> Design | None:
        """The column design, when the model was fitted from a file."""
        d = self.meta["design"]
        return None if d is None else Design.from_dict(d)


# Fitted attributes restored on load, so a loaded model summarises and predicts intervals.
_FITTED = ("rank_", "condition_number_", "aliased_", "refined_", "solver_used_",
           "n_samples_seen_", "target_names_")  # fmt: skip
_UNRECORDED = object()


def _jsonable(value: Any) -> Any:
    """A value as JSON, or ``_UNRECORDED`` when it has no JSON form (a class, a stream)."""
    if isinstance(value, np.ndarray):
        return value.tolist()  # e.g. Ridge's per-target alpha
    if isinstance(value, np.generic):
        return value.item()
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return _UNRECORDED
    return value


def _param(key: str, value: Any) -> Any:
    """An estimator parameter as JSON. A ``torch.optim`` class is recorded by the name
    that resolves back to it (``torch.optim.Adam`` as ``"adam"``); factories, instances
    and other classes have no JSON form."""
    if key == "optimizer" and isinstance(value, type):
        from .training.optimizers import optimizer_names

        name = value.__name__.lower()
        if optimizer_names().get(name) is value:
            return name
    return _jsonable(value)


def _digest(meta: dict[str, Any], arrays: dict[str, Any], version: int = FORMAT_VERSION) -> str:
    """SHA-256 of the metadata and every tensor's name, dtype (from version 2), shape and
    bytes. Tensors may be numpy arrays or CPU torch tensors."""
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        if version >= 2:
            h.update(a.dtype.str.encode())
        h.update(str(tuple(a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_model(
    path: str, estimator: Any, *, design: Any = None, info: dict[str, Any] | None = None
) -> None:
    """Write a fitted estimator (and its design and fit information) to ``path``.

    A ``torch.optim`` optimizer class is recorded by its lower-case name (``"adam"``
    for ``torch.optim.Adam``). Parameters without a JSON form (an optimizer factory or
    instance, another class, a stream, a ``RandomState``) are not recorded: the loaded
    estimator has their defaults. A model that its own reader
    would refuse (e.g. coefficients that are not finite) is not written.
    """
    name = type(estimator).__name__
    if name not in ESTIMATORS:
        raise InputError(f"cannot save a {name}; supported: {', '.join(ESTIMATORS)}")
    arrays = {
        "coef": np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64)).copy(),
        "intercept": np.atleast_1d(np.asarray(estimator.intercept_, np.float64)).copy(),
    }
    state = getattr(estimator, "state_", None)
    saved = None if state is None else state.state_dict()
    if saved is not None:
        arrays.update({f"state.{part}": saved[part].numpy() for part in _STATE})
    covariance = _covariance_record(estimator, arrays)
    names = getattr(estimator, "feature_names_in_", None)
    params = {k: _param(k, v) for k, v in estimator.get_params().items()}
    meta = {
        "estimator": name,
        "params": {k: v for k, v in params.items() if v is not _UNRECORDED},
        "target_1d": np.ndim(estimator.coef_) == 1,
        "n_features": int(estimator.n_features_in_),
        "feature_names": None if names is None else [str(n) for n in names],
        "design": None if design is None else design.to_dict(),
        "state": None if saved is None else saved["meta"],
        "fitted": _fitted_record(estimator),
        "info": info or {},
        "torchlinreg_version": __version__,
        **_formula_record(estimator),
        **_absorbed_record(estimator),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if covariance is not None:
        meta["covariance"] = covariance
    try:
        check_model(json.loads(json.dumps(meta)), arrays)
    except InputError as exc:
        raise InputError(f"{path}: this model cannot be saved: {exc}") from None
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "model": json.dumps(meta),
        "sha256": _digest(meta, arrays),
    }
    write_safetensors(path, arrays, header)


def _fitted_record(estimator: Any) -> dict[str, Any]:
    """The fitted attributes kept: the exact estimators' diagnostics, and those only
    some estimators have (the lasso's duality gap, Huber's scale: ``OWN_FITTED``)."""
    own = tuple(OWN_FITTED.get(type(estimator).__name__, ()))
    return {k: _jsonable(getattr(estimator, k)) for k in (*_FITTED, *own) if hasattr(estimator, k)}


def _formula_record(estimator: Any) -> dict[str, Any]:
    """``{"formula": record}`` for a model fitted from a formula (its text and learned
    state, :class:`~torchlinreg.formula.spec.FormulaSpec`), else nothing."""
    spec = getattr(estimator, "formula_", None)
    return {} if spec is None else {"formula": spec.to_dict()}


def _absorbed_record(estimator: Any) -> dict[str, Any]:
    """``{"absorbed": record}`` for a model fitted with fixed effects absorbed (their
    levels are the summary's degrees of freedom), else nothing."""
    absorbed = getattr(estimator, "absorbed_", None)
    return {} if absorbed is None else {"absorbed": absorbed.to_dict()}


def _covariance_record(estimator: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """The robust covariance computed at fit time, if any: its meat added to ``arrays``,
    its type, cluster count and leverage flag returned for the metadata."""
    fitted = getattr(estimator, "_fit_covariance", None)
    if fitted is None:
        return None
    meat = fitted.meat
    arrays["covariance.meat"] = meat.matrices.detach().cpu().numpy().astype(np.float64)
    record = {
        "cov_type": fitted.cov_type,
        "n_groups": meat.n_groups,
        "full_leverage": bool(meat.full_leverage),
    }
    corrected = getattr(meat, "corrected", None)
    if corrected is not None:
        arrays["covariance.corrected"] = corrected.detach().cpu().numpy().astype(np.float64)
        record["extra"] = {
            "kind": meat.kind,
            "lags": meat.lags,
            "group_counts": list(meat.group_counts),
        }
    return record


def _rebuild_covariance(
    est: Any, record: dict[str, Any], meat: np.ndarray, corrected: np.ndarray | None = None
) -> None:
    """The fit-time robust covariance, as :func:`_covariance_record` wrote it."""
    import torch

    from .models._fit_cov import FitCovariance
    from .stats.meat import Meat

    matrices = torch.from_numpy(np.array(meat))
    kept = Meat(matrices, n_groups=record["n_groups"], full_leverage=record["full_leverage"])
    extra = record.get("extra")
    if extra is not None:
        from .stats.extra_meat import ExtraMeat

        kept = ExtraMeat(
            matrices,
            n_groups=record["n_groups"],
            kind=extra["kind"],
            lags=extra["lags"],
            corrected=torch.from_numpy(np.array(corrected)),
            group_counts=tuple(extra["group_counts"]),
        )
    est._fit_covariance = FitCovariance(record["cov_type"], kept)


def write_safetensors(path: str, arrays: dict[str, np.ndarray], header: dict[str, str]) -> None:
    """Write ``arrays`` and the string ``header`` as one ``.safetensors`` file, atomically
    (model files and saved states alike)."""
    from safetensors.numpy import save

    data = save(arrays, metadata=header)
    # Plain file writes, not safetensors' own: a full disk or a file size limit is then an
    # OSError, which atomic_path turns into a one-line error, leaving no temporary file
    # and the old file in place.
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        out.write(data)


def _unreadable(path: str, exc: BaseException) -> InputError:
    detail = " ".join(str(exc).split())
    return InputError(
        f"{path} is not a readable model file (truncated, corrupted or another format: {detail})"
    )


def _check_version(path: str, header: dict[str, str]) -> int:
    if header.get("format") != FORMAT:
        raise InputError(f"{path} is a safetensors file but not a torchlinreg model")
    version = header.get("format_version", "")
    if not (version.isascii() and version.isdigit() and len(version) <= 6 and int(version) > 0):
        raise InputError(
            f"{path}: model format version {version[:20]!r} is not valid; the file is damaged"
        )
    if int(version) > FORMAT_VERSION:
        raise InputError(
            f"{path} was written in model format {version} by a newer torchlinreg; "
            f"this version ({__version__}) reads format {FORMAT_VERSION}: upgrade torchlinreg"
        )
    return int(version)


def _check_layout(path: str, layout: dict[str, tuple[str, int]]) -> None:
    """Tensor names, dtypes and ranks, before any tensor is read."""
    unknown = [k for k in layout if k not in _TENSORS]
    if unknown or "coef" not in layout or "intercept" not in layout:
        raise InputError(
            f"{path}: the model's tensors are {', '.join(sorted(layout)) or 'none'}; expected "
            "coef, intercept and, for exact models, state.R, state.shift_x, state.shift_y"
        )
    state = [k for k in layout if k.startswith("state.")]
    if state and len(state) != len(_STATE):
        raise InputError(f"{path}: the saved state is incomplete (only {', '.join(state)})")
    for name, (dtype, ndim) in layout.items():
        if dtype != _DTYPE:
            raise InputError(
                f"{path}: the tensor {name!r} is stored as {dtype[:10]}, but model files hold "
                f"{_DTYPE} (float64) numbers; the file is damaged or not a torchlinreg model"
            )
        if ndim != _TENSORS[name]:
            raise InputError(
                f"{path}: the tensor {name!r} has {ndim} dimension(s), expected {_TENSORS[name]}"
            )


def read_model(path: str) -> ModelContents:
    """Read and check a model written by :func:`save_model`, with numpy alone (no torch);
    a clear :class:`InputError` for anything else, damaged or inconsistent."""
    from safetensors import SafetensorError, safe_open

    check_regular_file(path, "model file")
    try:
        with safe_open(path, framework="numpy") as f:
            header = f.metadata() or {}
            version = _check_version(path, header)
            slices = {k: f.get_slice(k) for k in f.keys()}  # noqa: SIM118 - not a dict
            _check_layout(path, {k: (s.get_dtype(), len(s.get_shape())) for k, s in slices.items()})
            arrays = {k: f.get_tensor(k) for k in slices}
    except InputError:
        raise
    except PermissionError:
        raise InputError(f"{path}: permission denied; check the file's permissions") from None
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as exc:
        raise _unreadable(path, exc) from None
    try:
        # Nesting too deep for the parser, or an integer of thousands of digits.
        meta = json.loads(header["model"])
    except (KeyError, ValueError, RecursionError):
        raise InputError(f"{path}: the model metadata is damaged (not valid JSON)") from None
    try:
        check_depth(meta)  # before anything recurses into it
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    if header.get("sha256") != _digest(meta, arrays, version):
        raise InputError(f"{path} is corrupted: its checksum does not match its contents")
    try:
        check_model(meta, arrays)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    return ModelContents(meta, arrays)


def load_model(path: str) -> ModelFile:
    """Read a model written by :func:`save_model`, with a clear error for anything else."""
    contents = read_model(path)
    try:
        estimator = _rebuild(contents)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    return ModelFile(estimator, contents.design, contents.meta["info"])


def _rebuild(contents: ModelContents) -> Any:
    """The estimator, from metadata and tensors that :func:`read_model` has checked."""
    import torch

    from .models.gd import GDRegressor
    from .models.huber import HuberRegressor
    from .models.linear import LinearRegression, Ridge
    from .models.penalized import ElasticNet, Lasso

    meta, arrays = contents.meta, contents.arrays
    classes: dict[str, Any] = {
        "LinearRegression": LinearRegression,
        "Ridge": Ridge,
        "GDRegressor": GDRegressor,
        "Lasso": Lasso,
        "ElasticNet": ElasticNet,
        "HuberRegressor": HuberRegressor,
    }
    cls = classes[meta["estimator"]]
    est = cls(**meta["params"])  # each one of the estimator's, checked by read_model
    if cls is not GDRegressor:
        est._check_params()
    coef, intercept = np.array(arrays["coef"]), np.array(arrays["intercept"])
    est.coef_ = coef[0] if meta["target_1d"] else coef
    est.intercept_ = float(intercept[0]) if meta["target_1d"] else intercept
    est.n_features_in_ = meta["n_features"]
    if meta["feature_names"]:
        est.feature_names_in_ = np.asarray(meta["feature_names"], dtype=object)
    for k, v in meta["fitted"].items():
        # several targets' duality gaps: an array, as the estimator keeps them
        setattr(est, k, np.asarray(v) if k == "dual_gap_" and isinstance(v, list) else v)
    if meta.get("formula") is not None:  # formulaic is imported when the formula is used
        from .formula.spec import FormulaSpec

        est.formula_ = FormulaSpec.from_dict(meta["formula"])
    if meta["state"] is not None:
        from .solvers.state import LeastSquaresState

        parts = {p: torch.from_numpy(np.array(arrays[f"state.{p}"])) for p in _STATE}
        est.state_ = LeastSquaresState.from_state_dict({**parts, "meta": meta["state"]})
    if meta.get("absorbed") is not None:
        from .stats.absorbed import AbsorbedEffects

        est.absorbed_ = AbsorbedEffects.from_dict(meta["absorbed"])
    if meta.get("covariance") is not None:
        _rebuild_covariance(
            est, meta["covariance"], arrays["covariance.meat"], arrays.get("covariance.corrected")
        )
    return est
