"""What formulaic learns from data, as JSON and back, without pickle.

A formula's learned state is two mappings of formulaic's ``ModelSpec``:
``encoder_state`` (per factor: its kind and, for a categorical one, its categories) and
``transform_state`` (per stateful transform such as ``center``, ``scale`` or ``poly``:
numbers, arrays, dicts keyed by integers). JSON has no tuples, arrays, non-text keys,
NaN or enums, so those are written as small tagged objects (``{"__tuple__": [...]}``)
and read back as they were; numbers keep their value exactly (Python writes floats
shortest-round-trip). Anything else (a date, a function) is refused when saving, with
a clear error, rather than written in a form that cannot be read back.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputError

_TAGS = ("__tuple__", "__ndarray__", "__dict__", "__float__", "__kind__")


def to_json(value: Any) -> Any:
    """``value`` (formulaic state) as JSON-compatible data."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        return to_json(value.item())
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise _unstorable(f"an array of {value.dtype}")
        return {"__ndarray__": to_json(value.tolist()), "dtype": value.dtype.str}
    if isinstance(value, tuple):
        return {"__tuple__": [to_json(v) for v in value]}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and k not in _TAGS for k in value):
            return {k: to_json(v) for k, v in value.items()}
        return {"__dict__": [[to_json(k), to_json(v)] for k, v in value.items()]}
    kind = _factor_kind()
    if isinstance(value, kind):
        return {"__kind__": value.value}
    raise _unstorable(f"a {type(value).__name__} ({value!r:.60})")


def from_json(value: Any) -> Any:
    """The state :func:`to_json` wrote."""
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tuple__" in value:
        return tuple(from_json(v) for v in value["__tuple__"])
    if "__ndarray__" in value:
        return np.asarray(from_json(value["__ndarray__"]), dtype=np.dtype(value["dtype"]))
    if "__dict__" in value:
        return {_hashable(from_json(k)): from_json(v) for k, v in value["__dict__"]}
    if "__float__" in value:
        return float(value["__float__"])
    if "__kind__" in value:
        return _factor_kind()(value["__kind__"])
    return {k: from_json(v) for k, v in value.items()}


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def _factor_kind() -> Any:
    from formulaic.parser.types import Factor

    return Factor.Kind


def _unstorable(what: str) -> InputError:
    return InputError(
        f"the formula's learned state holds {what}, which a model file cannot store; "
        "use a formula whose transforms learn numbers (center, scale, poly) or none"
    )
