"""Checkpoints of gradient training, to resume a run bit for bit where it stopped.

A checkpoint holds everything the training loop carries from one epoch to the next:
the parameters θ, the optimizer's and the scheduler's ``state_dict()``, the shuffling
generator's state, the last epoch completed, the history so far and any state of the
loop's own (early stopping's best cost, say), together with the identity of the run it
belongs to (the estimator's parameters that shape training and the data's shape). A
fresh optimizer, scheduler and generator, built as for the original run and given
this state back by :func:`restore`, continue exactly as the original would have.

File format (version 1)
-----------------------
One ``.safetensors`` file: raw tensors and a JSON header, no pickle, so loading runs no
code from the file. The header's string metadata:

``format``
    ``"torchlinreg-checkpoint"``.
``format_version``
    ``"1"``. A checkpoint is only resumed by the format that wrote it.
``checkpoint``
    A JSON object: ``identity`` (``params``: the fingerprint, a JSON object;
    ``n_samples``, ``n_features``, ``n_targets``; ``dtype``: ``"float64"``…),
    ``epoch`` (the last epoch completed, from 0), ``optimizer``, ``scheduler``
    (or null), ``history`` (one entry per :class:`~.history.History` field), ``loop``
    (an object), ``torchlinreg_version``, ``torch_version`` and ``created`` (UTC).
``sha256``
    SHA-256 of the ``checkpoint`` JSON (keys sorted) and every tensor's name, dtype,
    shape and bytes: a damaged file is refused rather than resumed.

The tensors: ``theta`` (intercept row first, as the loop's θ, in the training dtype),
``generator`` (uint8, ``torch.Generator.get_state()``; absent without a generator) and
every tensor inside the optimizer, scheduler and loop states, named
``optimizer.0``, ``optimizer.1``… in the order met.

The states are JSON trees in which strings, booleans, null, integers, finite floats
(written by ``repr``, so read back exactly), lists and objects with string keys
stand for themselves, and other values are objects of one tagged key:
``{"$tensor": name}``, ``{"$tuple": [...]}``, ``{"$float": "inf" | "-inf" | "nan"}``
and ``{"$dict": [[key, value], ...]}`` (a dict with keys that are not strings, or
that start with ``$``, such as the optimizer's per-parameter ``state``). Any other
value (a function, an object) cannot be saved: :func:`save_checkpoint` refuses it.

The file is untrusted input when it is read back: :func:`load_checkpoint` checks the
format, the version, the checksum, every field, the tensors' dtypes and shapes and the
identity against the run being resumed; :func:`restore` checks that the states have
the layout of the optimizer and scheduler they are given, and changes nothing unless
all of them fit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from .._files import atomic_path, check_regular_file
from .._version import __version__
from ..errors import InputError
from .history import History
from .interrupt import InterruptedTraining, StopRequest

FORMAT = "torchlinreg-checkpoint"
FORMAT_VERSION = 1
_MODEL_FORMAT = "torchlinreg-model"
_MAX_DEPTH = 64  # state nesting allowed: torch's states nest a handful of levels
_TAGS = ("$tensor", "$tuple", "$float", "$dict")
_RESTART = "or train afresh (without resume)"


# ---------------------------------------------------------------------------------------
# The run's identity


@dataclass(frozen=True)
class RunIdentity:
    """What a checkpoint must match to be resumed: ``params``, the estimator's
    parameters that shape training (a JSON object, see :func:`fingerprint`), and the
    training data's rows, features, targets and dtype (``"float32"``…)."""

    params: dict[str, Any]
    n_samples: int
    n_features: int
    n_targets: int
    dtype: str

    @classmethod
    def of(cls, params: Mapping[str, Any], X: torch.Tensor, y: torch.Tensor) -> RunIdentity:
        """The identity of training on ``X`` (n, p) and ``y`` (n, k) or (n,) with
        ``params`` (any values; see :func:`fingerprint`)."""
        k = 1 if y.dim() == 1 else y.shape[1]
        dtype = str(X.dtype).removeprefix("torch.")
        return cls(fingerprint(params), X.shape[0], X.shape[1], k, dtype)

    def __post_init__(self) -> None:
        # Always a JSON object (tuples as lists), so it is saved and compared as read back.
        object.__setattr__(self, "params", fingerprint(self.params))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def data(self) -> str:
        """The data's shape in words."""
        return (
            f"{self.n_samples} rows × {self.n_features} features × {self.n_targets} "
            f"target(s) of {self.dtype}"
        )


def fingerprint(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` as a JSON object that compares equal for equal training settings:
    JSON values as they are (tuples as lists), numpy scalars and arrays by value,
    classes and functions by their qualified name (``"torch.optim.adam.Adam"``), and
    any other object by its type's qualified name alone (so an optimizer instance
    passed as a template is compared by its class)."""
    return {str(k): _fingerprint_value(v) for k, v in params.items()}


def _fingerprint_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return [_fingerprint_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _fingerprint_value(v) for k, v in value.items()}
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays, tensors
    if callable(tolist) and type(value).__module__ in ("numpy", "torch"):
        return _fingerprint_value(tolist())
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return f"{value.__module__}.{value.__qualname__}"
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


# ---------------------------------------------------------------------------------------
# The checkpoint


@dataclass
class Checkpoint:
    """One run's training state after epoch ``epoch`` (see the module docstring).

    ``theta`` is the loop's θ (intercept row first), ``optimizer`` and ``scheduler``
    are ``state_dict()`` results, ``generator`` a ``torch.Generator.get_state()``
    (uint8), ``loop`` any state of the loop's own (JSON values and tensors)."""

    identity: RunIdentity
    epoch: int
    theta: torch.Tensor
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None = None
    generator: torch.Tensor | None = None
    history: History = field(default_factory=History)
    loop: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def capture(
        cls,
        identity: RunIdentity,
        epoch: int,
        theta: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        scheduler: Any = None,
        generator: torch.Generator | None = None,
        history: History | None = None,
        loop: Mapping[str, Any] | None = None,
    ) -> Checkpoint:
        """A snapshot of the live training objects: copies, which later steps leave
        alone (an optimizer's ``state_dict()`` shares its buffers, updated in place)."""
        return cls(
            identity=identity,
            epoch=epoch,
            theta=theta.detach().clone(),
            optimizer=_snapshot(optimizer.state_dict()),
            scheduler=None if scheduler is None else _snapshot(scheduler.state_dict()),
            generator=None if generator is None else generator.get_state().clone(),
            history=History(**_snapshot(_history_fields(history or History()))),
            loop=_snapshot(dict(loop or {})),
        )


def _snapshot(tree: Any) -> Any:
    """A copy of a state: containers copied, tensors cloned, other values shared."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().clone()
    if isinstance(tree, dict):
        return {k: _snapshot(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_snapshot(v) for v in tree]
    if isinstance(tree, tuple):
        return tuple(_snapshot(v) for v in tree)
    return tree


def _history_fields(history: History) -> dict[str, Any]:
    return {f.name: getattr(history, f.name) for f in dataclasses.fields(History)}


# ---------------------------------------------------------------------------------------
# States as JSON and tensors


class _Encoder:
    """Turns a state into a JSON tree, collecting its tensors under ``section.i``."""

    def __init__(self, tensors: dict[str, torch.Tensor], *, allow_tensors: bool = True) -> None:
        self.tensors = tensors
        self.allow_tensors = allow_tensors
        self.counts: dict[str, int] = {}

    def encode(self, tree: Any, section: str) -> Any:
        return self._encode(tree, section, section, 0)

    def _encode(self, value: Any, section: str, where: str, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise InputError(f"cannot save a checkpoint: {where} is nested too deeply")
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"$float": repr(float(value))}
        if isinstance(value, torch.Tensor) and self.allow_tensors:
            index = self.counts.get(section, 0)
            self.counts[section] = index + 1
            name = f"{section}.{index}"
            self.tensors[name] = value.detach().cpu().contiguous().clone()
            return {"$tensor": name}
        if isinstance(value, (list, tuple)):
            items = [
                self._encode(v, section, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)
            ]
            return {"$tuple": items} if isinstance(value, tuple) else items
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("$") for k in value):
                return {
                    k: self._encode(v, section, f"{where}.{k}", depth + 1) for k, v in value.items()
                }
            pairs = []
            for k, v in value.items():
                if k is not None and not isinstance(k, (bool, int, str)):
                    raise InputError(
                        f"cannot save a checkpoint: {where} has a key of type {type(k).__name__}"
                    )
                pairs.append([k, self._encode(v, section, f"{where}[{k!r}]", depth + 1)])
            return {"$dict": pairs}
        raise InputError(
            f"cannot save a checkpoint: {where} is a {type(value).__qualname__}, which has "
            "no saved form (only numbers, strings, tensors, lists and dicts); use an "
            "optimizer and scheduler whose state_dict() holds only those"
        )


class _Decoder:
    """Reads a JSON tree back, checking every tag and tensor reference."""

    def __init__(self, path: str, tensors: dict[str, torch.Tensor]) -> None:
        self.path = path
        self.tensors = tensors
        self.used: set[str] = set()

    def bad(self, where: str, what: str) -> InputError:
        return InputError(
            f"{self.path}: the checkpoint is invalid: {where} {what}; the file is damaged"
        )

    def decode(self, tree: Any, section: str) -> Any:
        return self._decode(tree, section, section, 0)

    def _decode(self, value: Any, section: str, where: str, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise self.bad(where, f"is nested deeper than {_MAX_DEPTH} levels")
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):  # written tagged; json reads bare NaN too
                raise self.bad(where, "is a bare non-finite number")
            return value
        if isinstance(value, list):
            return [
                self._decode(v, section, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)
            ]
        if not isinstance(value, dict):
            raise self.bad(where, f"is a {type(value).__name__}")
        tags = [k for k in value if k.startswith("$")]
        if not tags:
            return {
                k: self._decode(v, section, f"{where}.{k}", depth + 1) for k, v in value.items()
            }
        if len(value) != 1 or tags[0] not in _TAGS:
            raise self.bad(where, f"has an unknown tag {tags[0][:20]!r}")
        tag, body = tags[0], value[tags[0]]
        if tag == "$tensor":
            return self._tensor(body, section, where)
        if tag == "$float":
            if body not in ("inf", "-inf", "nan"):
                raise self.bad(where, "is a $float that is not inf, -inf or nan")
            return float(body)
        if not isinstance(body, list):
            raise self.bad(where, f"has a {tag} that is not a list")
        if tag == "$tuple":
            return tuple(
                self._decode(v, section, f"{where}[{i}]", depth + 1) for i, v in enumerate(body)
            )
        return self._pairs(body, section, where, depth)

    def _tensor(self, name: Any, section: str, where: str) -> torch.Tensor:
        if (
            not isinstance(name, str)
            or not name.startswith(section + ".")
            or name not in self.tensors
        ):
            raise self.bad(where, f"names a tensor {str(name)[:40]!r} that the file lacks")
        if name in self.used:
            raise self.bad(where, f"names the tensor {name!r} a second time")
        self.used.add(name)
        return self.tensors[name]

    def _pairs(self, body: list[Any], section: str, where: str, depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for i, pair in enumerate(body):
            if not (isinstance(pair, list) and len(pair) == 2):
                raise self.bad(f"{where}[{i}]", "is not a [key, value] pair")
            k, v = pair
            if not (k is None or isinstance(k, (bool, int, str))) or k in out:
                raise self.bad(f"{where}[{i}]", "has a key that is not a scalar, or repeated")
            out[k] = self._decode(v, section, f"{where}[{k!r}]", depth + 1)
        return out


# ---------------------------------------------------------------------------------------
# Writing


def _digest(meta: dict[str, Any], tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of the metadata and every tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _encoded(checkpoint: Checkpoint) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The checkpoint's metadata (JSON values) and tensors."""
    tensors: dict[str, torch.Tensor] = {
        "theta": checkpoint.theta.detach().cpu().contiguous().clone()
    }
    if checkpoint.generator is not None:
        tensors["generator"] = checkpoint.generator.detach().cpu().contiguous().clone()
    encoder = _Encoder(tensors)
    plain = _Encoder({}, allow_tensors=False)  # the history holds numbers only
    history = _history_fields(checkpoint.history)
    meta = {
        "identity": checkpoint.identity.to_json(),
        "epoch": checkpoint.epoch,
        "optimizer": encoder.encode(checkpoint.optimizer, "optimizer"),
        "scheduler": None
        if checkpoint.scheduler is None
        else encoder.encode(checkpoint.scheduler, "scheduler"),
        "history": {k: plain.encode(v, f"history.{k}") for k, v in history.items()},
        "loop": encoder.encode(checkpoint.loop, "loop"),
        "torchlinreg_version": __version__,
        "torch_version": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return json.loads(json.dumps(meta)), tensors


def save_checkpoint(path: str, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically: the file is either the previous one
    or the complete new one, whatever happens (an error, a full disk, a signal). A state
    without a saved form (see the module docstring) is refused before anything is
    written, with a one-line :class:`InputError`."""
    from safetensors.torch import save

    epoch = checkpoint.epoch
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise InputError(
            f"{path}: cannot save a checkpoint at epoch {epoch!r}; epochs count from 0"
        )
    try:
        meta, tensors = _encoded(checkpoint)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "checkpoint": json.dumps(meta),
        "sha256": _digest(meta, tensors),
    }
    data = save(tensors, metadata=header)
    with atomic_path(path) as tmp:
        _write_bytes(tmp, data)


def _write_bytes(path: str, data: bytes) -> None:
    # Plain writes: a full disk is an OSError, which atomic_path reports in one line.
    with open(path, "wb") as out:
        out.write(data)


# ---------------------------------------------------------------------------------------
# Reading


def load_checkpoint(path: str, expected: RunIdentity) -> Checkpoint:
    """Read the checkpoint at ``path`` for the run ``expected`` describes.

    Refused with a one-line :class:`InputError` naming the problem and the fix: no such
    file; not a checkpoint (a model file, another safetensors file, another format);
    another format version; damaged (checksum, fields, tensors); another model (the
    differing parameters are named) or other data. Reading changes no file."""
    from safetensors import SafetensorError, safe_open

    check_regular_file(path, "checkpoint")
    try:
        with safe_open(path, framework="pt") as f:
            header = f.metadata() or {}
            _check_format(path, header)
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    except InputError:
        raise
    except PermissionError:
        raise InputError(f"{path}: permission denied; check the file's permissions") from None
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise InputError(
            f"{path} is not a readable checkpoint (truncated, corrupted or another format: "
            f"{detail}); resume from another checkpoint, {_RESTART}"
        ) from None
    try:
        meta = json.loads(header["checkpoint"])
    except (KeyError, ValueError, RecursionError):
        raise InputError(f"{path}: the checkpoint's metadata is damaged (not valid JSON)") from None
    try:
        same = header.get("sha256") == _digest(meta, tensors)
    except (TypeError, ValueError, RecursionError):
        same = False
    if not same:
        raise InputError(
            f"{path} is corrupted: its checksum does not match its contents; resume from "
            f"another checkpoint, {_RESTART}"
        )
    checkpoint = _parse(path, meta, tensors)
    _check_identity(path, checkpoint.identity, expected)
    _check_theta(path, checkpoint.theta, expected)
    return checkpoint


def _check_format(path: str, header: dict[str, str]) -> None:
    kind = header.get("format")
    if kind == _MODEL_FORMAT:
        raise InputError(
            f"{path} is a torchlinreg model file, not a checkpoint; resume from a checkpoint "
            "written during training (checkpoint_every, Ctrl-C), or load the model with load_model"
        )
    if kind != FORMAT:
        raise InputError(f"{path} is a safetensors file but not a torchlinreg checkpoint")
    version = header.get("format_version", "")
    if version != str(FORMAT_VERSION):
        shown = version[:20] if version.isascii() and version.isdigit() else repr(version[:20])
        raise InputError(
            f"{path} is a checkpoint of format {shown}; this torchlinreg ({__version__}) "
            f"resumes format {FORMAT_VERSION} only: finish the run with the torchlinreg "
            f"that wrote it, {_RESTART}"
        )


_META_KEYS = ("identity", "epoch", "optimizer", "scheduler", "history", "loop")
_META_OPTIONAL = ("torchlinreg_version", "torch_version", "created")


def _parse(path: str, meta: Any, tensors: dict[str, torch.Tensor]) -> Checkpoint:
    """The checkpoint from its checked metadata and tensors."""
    decoder = _Decoder(path, tensors)
    _object(decoder, meta, "the metadata", _META_KEYS, _META_OPTIONAL)
    for name in _META_OPTIONAL:
        if name in meta and not isinstance(meta[name], str):
            raise decoder.bad(name, "is not a string")
    epoch = meta["epoch"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < 2**63:
        raise decoder.bad("epoch", "is not an integer from 0")
    identity = _identity(decoder, meta["identity"])
    optimizer = decoder.decode(meta["optimizer"], "optimizer")
    _object(decoder, optimizer, "optimizer", ("state", "param_groups"), strict=False)
    scheduler = (
        None if meta["scheduler"] is None else decoder.decode(meta["scheduler"], "scheduler")
    )
    if scheduler is not None:
        _object(decoder, scheduler, "scheduler", ())
    loop = decoder.decode(meta["loop"], "loop")
    _object(decoder, loop, "loop", ())
    history = _history(decoder, meta["history"], epoch)
    theta = _named_tensor(decoder, "theta", floating=True)
    generator = tensors.get("generator")
    if generator is not None:
        decoder.used.add("generator")
        if generator.dtype != torch.uint8 or generator.dim() != 1:
            raise decoder.bad("the tensor 'generator'", "is not a 1-D uint8 generator state")
    unused = sorted(set(tensors) - decoder.used)
    if unused:
        raise decoder.bad("the file", f"holds tensors nothing refers to ({', '.join(unused)[:80]})")
    return Checkpoint(identity, epoch, theta, optimizer, scheduler, generator, history, loop)


def _object(
    decoder: _Decoder,
    value: Any,
    where: str,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
    *,
    strict: bool = True,
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise decoder.bad(where, "is not an object")
    missing = [k for k in required if k not in value]
    if missing:
        raise decoder.bad(where, f"lacks {', '.join(missing)}")
    extra = [k for k in value if k not in required and k not in optional]
    if strict and required and extra:
        raise decoder.bad(where, f"has an unknown {str(extra[0])[:40]!r}")
    return value


def _identity(decoder: _Decoder, value: Any) -> RunIdentity:
    keys = tuple(f.name for f in dataclasses.fields(RunIdentity))
    _object(decoder, value, "identity", keys)
    if not isinstance(value["params"], dict):
        raise decoder.bad("identity.params", "is not an object")
    for name in ("n_samples", "n_features", "n_targets"):
        n = value[name]
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < 2**63:
            raise decoder.bad(f"identity.{name}", "is not a count")
    if not isinstance(value["dtype"], str):
        raise decoder.bad("identity.dtype", "is not a string")
    return RunIdentity(**value)


def _history(decoder: _Decoder, value: Any, epoch: int) -> History:
    """The history's fields; its epochs increase and end at the checkpoint's epoch."""
    fields = tuple(f.name for f in dataclasses.fields(History))
    _object(decoder, value, "history", ("epoch", "cost"), fields)
    decoded = {k: _Decoder(decoder.path, {}).decode(v, f"history.{k}") for k, v in value.items()}
    epochs, costs = decoded["epoch"], decoded["cost"]
    if not isinstance(epochs, list) or not all(type(e) is int for e in epochs):
        raise decoder.bad("history.epoch", "is not a list of integers")
    if any(b <= a for a, b in zip(epochs, epochs[1:], strict=False)) or (
        epochs and epochs[-1] != epoch
    ):
        raise decoder.bad("history.epoch", f"does not increase to the checkpoint's epoch {epoch}")
    if not isinstance(costs, list) or len(costs) != len(epochs):
        raise decoder.bad("history.cost", f"is not a list of {len(epochs)} numbers")
    if not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in costs):
        raise decoder.bad("history.cost", f"is not a list of {len(epochs)} numbers")
    defaults = _history_fields(History())
    for name, value in decoded.items():
        if not _fits_default(value, defaults[name]):
            raise decoder.bad(f"history.{name}", f"is {_kind(value)}, unlike the field's")
    return History(**decoded)


def _fits_default(value: Any, default: Any) -> bool:
    """A history value is of its field's kind: a string for a string field, a list for a
    list field, and null, a number or a list for a field that starts unset."""
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, list):
        return isinstance(value, list)
    return value is None or isinstance(value, (int, float, list)) and not isinstance(value, bool)


def _named_tensor(decoder: _Decoder, name: str, *, floating: bool) -> torch.Tensor:
    t = decoder.tensors.get(name)
    if t is None:
        raise decoder.bad("the file", f"lacks the tensor {name!r}")
    decoder.used.add(name)
    if floating and not t.is_floating_point():
        raise decoder.bad(f"the tensor {name!r}", f"is of {t.dtype}, not floating point")
    return t


def _show(value: Any) -> str:
    text = json.dumps(value) if value is not _ABSENT else "unset"
    return text if len(text) <= 40 else text[:37] + "..."


_ABSENT = object()


def _same(a: Any, b: Any) -> bool:
    """JSON values equal, with booleans told apart from numbers (True is not 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    numbers = isinstance(a, (int, float)) and isinstance(b, (int, float))
    return (numbers or type(a) is type(b)) and a == b


def _check_identity(path: str, saved: RunIdentity, expected: RunIdentity) -> None:
    here = expected.params  # a fingerprint: JSON values, as in the file
    there = saved.params
    differ = [
        k for k in sorted(set(here) | set(there))
        if not _same(there.get(k, _ABSENT), here.get(k, _ABSENT))
    ]  # fmt: skip
    if differ:
        shown = "; ".join(
            f"{k} is {_show(there.get(k, _ABSENT))} there, {_show(here.get(k, _ABSENT))} here"
            for k in differ[:5]
        )
        more = f" (and {len(differ) - 5} more)" if len(differ) > 5 else ""
        raise InputError(
            f"{path} is a checkpoint of another model: {shown}{more}; resume with the "
            f"parameters it was written with, {_RESTART}"
        )
    data = ("n_samples", "n_features", "n_targets", "dtype")
    if any(getattr(saved, k) != getattr(expected, k) for k in data):
        raise InputError(
            f"{path} is a checkpoint of training on other data: {saved.data()} there, "
            f"{expected.data()} here; resume on the data it was trained on, {_RESTART}"
        )


def _check_theta(path: str, theta: torch.Tensor, expected: RunIdentity) -> None:
    p, k = expected.n_features, expected.n_targets
    dtype = str(theta.dtype).removeprefix("torch.")
    if (
        theta.dim() != 2
        or theta.shape[0] not in (p, p + 1)
        or theta.shape[1] != k
        or dtype != expected.dtype
    ):
        raise InputError(
            f"{path}: the checkpoint's parameters are {tuple(theta.shape)} of {dtype}, which "
            f"do not fit {p} features and {k} target(s) of {expected.dtype}; the file is damaged"
        )
    if not bool(torch.isfinite(theta).all()):
        raise InputError(
            f"{path}: the checkpoint's parameters are not finite (the run had diverged); "
            f"{_RESTART} with a smaller learning rate"
        )


# ---------------------------------------------------------------------------------------
# Restoring


def restore(
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    generator: torch.Generator | None,
    checkpoint: Checkpoint,
) -> None:
    """Give the training objects of a new run the checkpoint's state: θ (the
    optimizer's one parameter, the loop's θ), the optimizer's and scheduler's states and
    the generator's, so that training continues from epoch ``checkpoint.epoch + 1`` as
    the original run did, bit for bit (same device, same torch).

    Build the optimizer over θ and then the scheduler (whose constructor sets the
    learning rate), exactly as for a fresh run, then call this; ``scheduler`` and
    ``generator`` must be given exactly when the checkpoint has their state. Nothing is
    changed when a state does not fit (an :class:`InputError` says which)."""
    theta = _parameter(optimizer, checkpoint.theta)
    if (scheduler is None) != (checkpoint.scheduler is None):
        has = "has" if checkpoint.scheduler is not None else "has no"
        raise InputError(f"the checkpoint {has} learning-rate scheduler state, unlike this run")
    _check_layout(optimizer.state_dict(), checkpoint.optimizer, "optimizer")
    _check_state(checkpoint.optimizer, theta)
    if scheduler is not None:
        _check_layout(scheduler.state_dict(), checkpoint.scheduler, "scheduler")
    if (generator is None) != (checkpoint.generator is None):
        has = "has" if checkpoint.generator is not None else "has no"
        raise InputError(f"the checkpoint {has} shuffling generator state, unlike this run")
    before = _State(optimizer, scheduler, generator)
    try:
        optimizer.load_state_dict(_snapshot(checkpoint.optimizer))
        if scheduler is not None:
            scheduler.load_state_dict(_snapshot(checkpoint.scheduler))
        if generator is not None:
            generator.set_state(checkpoint.generator)  # type: ignore[arg-type]
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        before.put_back()
        detail = " ".join(str(exc).split())[:200]
        raise InputError(
            f"the checkpoint's state does not fit this run's optimizer, scheduler or "
            f"generator ({detail})"
        ) from None
    with torch.no_grad():
        theta.copy_(checkpoint.theta)


class _State:
    """The optimizer's, scheduler's and generator's states, to put back after a failure."""

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler: Any, generator: Any) -> None:
        self.objects = (optimizer, scheduler, generator)
        self.optimizer = _snapshot(optimizer.state_dict())
        self.scheduler = None if scheduler is None else _snapshot(scheduler.state_dict())
        self.generator = None if generator is None else generator.get_state()

    def put_back(self) -> None:
        optimizer, scheduler, generator = self.objects
        optimizer.load_state_dict(self.optimizer)
        if scheduler is not None:
            scheduler.load_state_dict(self.scheduler)
        if generator is not None:
            generator.set_state(self.generator)


def _parameter(optimizer: torch.optim.Optimizer, saved: torch.Tensor) -> torch.Tensor:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if len(params) != 1:
        raise InputError(f"restore expects an optimizer over one parameter (θ), not {len(params)}")
    theta = params[0]
    if theta.shape != saved.shape or theta.dtype != saved.dtype:
        raise InputError(
            f"the checkpoint's parameters are {tuple(saved.shape)} of {saved.dtype}, this "
            f"run's {tuple(theta.shape)} of {theta.dtype}"
        )
    return theta


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, torch.Tensor):
        return "tensor"
    if isinstance(value, (list, tuple)):
        return f"sequence of {len(value)}"
    if isinstance(value, dict):
        return "mapping"
    return "null" if value is None else type(value).__name__


def _check_layout(fresh: Any, saved: Any, where: str) -> None:
    """``saved`` has the keys and kinds of values of the fresh object's own state (the
    optimizer's per-parameter ``state`` apart, empty before the first step); a newer
    torch's extra keys are allowed, unknown ones are not."""
    if isinstance(fresh, dict) and isinstance(saved, dict):
        unknown = [k for k in saved if k not in fresh]
        if unknown:
            raise InputError(f"the checkpoint's {where} has an unknown {str(unknown[0])[:40]!r}")
        for k in saved:
            if not (where == "optimizer" and k == "state"):
                _check_layout(fresh[k], saved[k], f"{where}.{k}")
        return
    fresh_kind, saved_kind = _kind(fresh), _kind(saved)
    # None marks a value the object sets later (a default chosen at the first step).
    if fresh_kind != saved_kind and fresh is not None:
        raise InputError(
            f"the checkpoint's {where} is a {saved_kind}, where this run has a {fresh_kind}"
        )
    if isinstance(fresh, (list, tuple)) and isinstance(saved, (list, tuple)):
        for i, (a, b) in enumerate(zip(fresh, saved, strict=False)):  # lengths checked
            _check_layout(a, b, f"{where}[{i}]")


def _check_state(optimizer_state: dict[str, Any], theta: torch.Tensor) -> None:
    """The optimizer's per-parameter state: for parameter 0 only, tensors that are
    scalars (a step count) or of θ's shape, and finite."""
    state = optimizer_state["state"]
    if not isinstance(state, dict) or any(k != 0 for k in state):
        raise InputError("the checkpoint's optimizer state is not that of one parameter")
    for name, value in (state.get(0) or {}).items():
        if isinstance(value, torch.Tensor):
            if value.dim() != 0 and value.shape != theta.shape:
                raise InputError(
                    f"the checkpoint's optimizer state {name!r} is {tuple(value.shape)}, "
                    f"not θ's {tuple(theta.shape)}"
                )
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise InputError(f"the checkpoint's optimizer state {name!r} is not finite")


# ---------------------------------------------------------------------------------------
# The loop's helper


LoopState = Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None


class Checkpointer:
    """Writes a run's checkpoints: every ``every`` completed epochs (``None``: only when
    interrupted), and when ``stop`` (from :func:`.interrupt.interruptible`) has been
    requested, after which it raises :class:`.interrupt.InterruptedTraining`.

    The loop calls :meth:`after_epoch` once at the end of every epoch. The history and
    the loop's own state may be given as functions that make them, called only when a
    checkpoint is written (building the history reads the costs back from the device).
    """

    def __init__(
        self,
        path: str,
        every: int | None,
        identity: RunIdentity,
        stop: StopRequest | None = None,
    ) -> None:
        if every is not None and (
            isinstance(every, bool) or not isinstance(every, int) or every < 1
        ):
            raise InputError(
                f"checkpoint_every must be a whole number of epochs ≥ 1, not {every!r}"
            )
        self.path = path
        self.every = every
        self.identity = identity
        self.stop = stop
        self.written: int | None = None  # the epoch of the last checkpoint written

    def after_epoch(
        self,
        epoch: int,
        theta: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        generator: torch.Generator | None,
        history: History | Callable[[], History],
        loop: LoopState = None,
    ) -> None:
        """At the end of epoch ``epoch`` (from 0): write a checkpoint every ``every``
        epochs; if a stop was requested, write one and raise ``InterruptedTraining``.
        A θ that is not finite is not written (the last good checkpoint stays)."""
        args = (epoch, theta, optimizer, scheduler, generator, history, loop)
        if self.stop is not None and self.stop.signum is not None:
            path = self.interrupted(*args)
            raise InterruptedTraining(self.stop.signum, epoch, path)
        if self.every is not None and (epoch + 1) % self.every == 0:
            self._write(*args)

    def interrupted(
        self,
        epoch: int,
        theta: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        generator: torch.Generator | None,
        history: History | Callable[[], History],
        loop: LoopState = None,
    ) -> str | None:
        """Write a checkpoint now (unless this epoch's is written already); returns its
        path, or ``None`` when θ is not finite and nothing was written."""
        if self.written == epoch:
            return self.path
        return (
            self.path
            if self._write(epoch, theta, optimizer, scheduler, generator, history, loop)
            else None
        )

    def _write(
        self,
        epoch: int,
        theta: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        generator: torch.Generator | None,
        history: History | Callable[[], History],
        loop: LoopState,
    ) -> bool:
        if not bool(torch.isfinite(theta).all()):
            return False
        checkpoint = Checkpoint.capture(
            self.identity,
            epoch,
            theta,
            optimizer,
            scheduler,
            generator,
            history() if callable(history) else history,
            loop() if callable(loop) else loop,
        )
        asked = self.stop is not None and self.stop.requested
        try:
            save_checkpoint(self.path, checkpoint)
        except InputError:
            # SIGTERM during the write: the atomic writer removed its temporary file
            # (which fails the write) before our handler recorded the request. Write
            # again, now that the request is recorded.
            if self.stop is None or asked or not self.stop.requested:
                raise
            save_checkpoint(self.path, checkpoint)
        self.written = epoch
        return True
