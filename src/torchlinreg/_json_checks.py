"""Checkers for the JSON values of a model file's metadata (parsed, untrusted): each
takes a value and where it stands (``"info.fit.r2[0]"``) and returns the value, or raises
a one-line :class:`~torchlinreg.errors.InputError` saying what was found and what was
expected. Nothing here knows the model schema (:mod:`._model_meta` does).
"""

from __future__ import annotations

import math
from typing import Any

from .errors import InputError

MAX_DEPTH = 32  # JSON nesting allowed in the metadata: far more than a model needs
MAX_INT = 2**63 - 1


def show(value: Any) -> str:
    """A value as an error message shows it: short, containers by their kind."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def invalid(where: str, value: Any, expected: str) -> InputError:
    """The error for ``value`` found at ``where`` instead of what was ``expected``."""
    return InputError(
        f"the model metadata is invalid: {where} is {show(value)}; expected {expected}"
    )


def check_depth(value: Any) -> None:
    """Refuse nesting deeper than any model needs (before anything recurses into it)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise InputError(f"the model metadata is nested deeper than {MAX_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def integer(value: Any, where: str, low: int = 0, high: int = MAX_INT) -> int:
    """A JSON integer (not a boolean) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(where, value, f"an integer from {low} to {high}")
    return value


def real(
    value: Any,
    where: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    infinite: bool = False,
    nan: bool = False,
) -> float:
    """A JSON number in [low, high]; infinities and NaN only where the fit can make them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(where, value, "a number")
    try:
        x = float(value)
    except OverflowError:
        x = math.inf if value > 0 else -math.inf
    if math.isnan(x):
        if nan:
            return x
        raise invalid(where, value, "a number")
    if (math.isinf(x) and not infinite) or not low <= x <= high:
        raise invalid(where, value, f"a finite number from {low:g} to {high:g}")
    return x


def optional_real(value: Any, where: str, **limits: Any) -> float | None:
    return None if value is None else real(value, where, **limits)


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(where, value, "true or false")
    return value


def string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise invalid(where, value, "a string")
    return value


def strings(
    value: Any, where: str, *, length: int | None = None, unique: bool = False
) -> list[str]:
    """A list of strings, of ``length`` when given, without repeats when ``unique``."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(where, value, "a list of strings")
    if length is not None and len(value) != length:
        raise InputError(
            f"the model metadata is invalid: {where} has {len(value)} names for {length}"
        )
    if unique and len(set(value)) != len(value):
        raise InputError(f"the model metadata is invalid: {where} repeats a name")
    return value


def json_object(
    value: Any,
    where: str,
    required: tuple[str, ...],
    known: tuple[str, ...] = (),
    *,
    strict: bool = True,
) -> dict[str, Any]:
    """A JSON object with the ``required`` keys; other keys must be ``known`` when
    ``strict``, else they are only checked to be plain JSON (a newer writer's extras)."""
    if not isinstance(value, dict):
        raise invalid(where, value, "an object")
    missing = [k for k in required if k not in value]
    if missing:
        raise InputError(f"the model metadata is invalid: {where} lacks {', '.join(missing)}")
    for k, v in value.items():
        if k not in required and k not in known:
            if strict:
                raise InputError(f"the model metadata is invalid: {where} has an unknown {k!r}")
            plain_json(v, f"{where}.{key(k)}")
    return value


def key(name: str) -> str:
    """A JSON key in a field's path, escaped unless it is a plain name."""
    return name if name.isidentifier() else repr(name)


def plain_json(value: Any, where: str) -> None:
    """Any JSON without NaN, infinities or integers too large for 64 bits."""
    stack = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, f"{at}.{key(k)}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(item))
        elif isinstance(item, int) and not isinstance(item, bool):
            integer(item, at, -MAX_INT)
        elif isinstance(item, float):
            real(item, at)
