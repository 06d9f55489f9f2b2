"""Saving and restoring a :class:`~.state.LeastSquaresState`: its three tensors and its
counts, as a ``.safetensors`` file or a dict, every field checked on the way back in
(a saved state is untrusted input).

A state file holds the float64 tensors ``R``, ``shift_x`` and ``shift_y`` and a string
header: the format name, its version and the counts as JSON. It is written atomically
by the same writer as model files (:func:`~torchlinreg.persistence.write_safetensors`)
and read without executing anything from the file.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any

import torch

from ..errors import InputError
from .state import LeastSquaresState, RowCounts, check_count

FORMAT = "torchlinreg.LeastSquaresState"
VERSION = "1"
TENSORS = ("R", "shift_x", "shift_y")


def _real(name: str, value: Any, low: float = -math.inf) -> float:
    """A finite real number >= ``low`` (saved metadata: JSON ints, floats)."""
    try:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError
        number = float(value)
    except (TypeError, OverflowError):
        raise InputError(f"saved state has an invalid {name} {value!r}") from None
    if not math.isfinite(number) or number < low:
        raise InputError(f"saved state has an invalid {name} {value!r}")
    return number


def state_dict(state: LeastSquaresState) -> dict[str, Any]:
    """The state's tensors (contiguous, on the CPU) and its counts under ``"meta"``."""
    return {
        "R": state.R.detach().cpu().contiguous(),
        "shift_x": state.shift_x.detach().cpu().contiguous(),
        "shift_y": state.shift_y.detach().cpu().contiguous(),
        "meta": {
            "n_features": state.n_features,
            "n_targets": state.n_targets,
            "fit_intercept": state.fit_intercept,
            "n_samples": state.n_samples,
            "n_observations": state.n_observations,
            "weight_sum": state.weight_sum,
            "log_weight_sum": state.log_weight_sum,
            "weighted": state.weighted,
        },
    }


def _counts(meta: Any) -> tuple[int, int, bool, RowCounts]:
    """(n_features, n_targets, fit_intercept, counts) from the saved record."""
    p = check_count("n_features", meta["n_features"], 1)
    k = check_count("n_targets", meta["n_targets"], 1)
    intercept = meta["fit_intercept"]
    n = check_count("n_samples", meta["n_samples"], 0)
    weight_sum = _real("weight_sum", meta["weight_sum"], low=0.0)
    # Files written before zero-weight rows were told apart count every row.
    n_obs = check_count("n_observations", meta.get("n_observations", n), 0)
    log_w = _real("log_weight_sum", meta.get("log_weight_sum", 0.0))
    weighted = meta.get("weighted", False)
    for name, value in (("fit_intercept", intercept), ("weighted", weighted)):
        if not isinstance(value, bool):
            raise InputError(f"saved state has {name}={value!r}; expected true/false")
    if n_obs > n:
        raise InputError(f"saved state has {n_obs} observations but {n} rows")
    if not weighted and "weighted" in meta and (n_obs, weight_sum) != (n, float(n)):
        raise InputError(
            f"saved state without weights has {n} rows but {n_obs} observations and a "
            f"weight sum of {weight_sum!r}"
        )
    return p, k, intercept, RowCounts(n, n_obs, weight_sum, log_w, weighted)


def from_state_dict(d: dict[str, Any]) -> LeastSquaresState:
    """Rebuild a state from :func:`state_dict`'s form, checking every field (the data
    may come from a file); the tensors are copied."""
    try:
        p, k, intercept, counts = _counts(d["meta"])
        R, sx, sy = (d[name] for name in TENSORS)
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"saved state is incomplete or malformed ({exc!r})") from None
    m = p + k + int(intercept)
    tensors = {"R": (R, (m, m)), "shift_x": (sx, (p,)), "shift_y": (sy, (k,))}
    for name, (t, want) in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise InputError(f"saved state has a {name} that is not a tensor")
        if tuple(t.shape) != want:
            raise InputError(f"saved state has {name} of shape {tuple(t.shape)}, expected {want}")
        if t.dtype != torch.float64 or not bool(torch.isfinite(t).all()):
            raise InputError(f"saved state has a {name} that is not finite float64")
    if bool((R.tril(-1) != 0).any()):
        raise InputError("saved state has an R that is not upper triangular")
    return LeastSquaresState.from_parts(
        R.clone(), sx.clone(), sy.clone(), counts, fit_intercept=intercept
    )


def save_state(state: LeastSquaresState, path: str) -> None:
    """Write ``state`` to a ``.safetensors`` file, atomically: a failure (a full disk, a
    file size limit) is a one-line :class:`InputError` and leaves ``path`` as it was."""
    from ..persistence import write_safetensors

    d = state_dict(state)
    header = {"format": FORMAT, "version": VERSION, "meta": json.dumps(d["meta"])}
    write_safetensors(path, {name: d[name].numpy() for name in TENSORS}, header)


def load_state(path: str) -> LeastSquaresState:
    """Read a state written by :func:`save_state`; never executes code from the file."""
    from safetensors import SafetensorError, safe_open

    from .._files import check_regular_file

    check_regular_file(path, "saved state file")
    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise InputError(f"{path} is not a saved torchlinreg least-squares state")
            if metadata.get("version") != VERSION:
                raise InputError(
                    f"{path} has state format version {metadata.get('version')!r}; "
                    f"this torchlinreg reads version {VERSION}: upgrade torchlinreg"
                )
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
        meta = json.loads(metadata["meta"])  # RecursionError: nested too deep to parse
    except (SafetensorError, OSError, ValueError, KeyError, RecursionError) as exc:
        raise InputError(f"{path} could not be read as a state file: {exc}") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path}: the state metadata is malformed")
    return from_state_dict({**tensors, "meta": meta})
