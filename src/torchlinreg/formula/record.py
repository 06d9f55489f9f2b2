"""A model file's formula record, checked without formulaic (``summary MODEL`` and
loading stay light): its fields' types, and its agreement with the model's features,
targets and intercept. What formulaic learned is checked to be plain JSON here and is
read by formulaic when the formula is applied."""

from __future__ import annotations

from typing import Any

from .._json_checks import boolean, invalid, json_object, plain_json, string, strings
from ..errors import InputError

INTERCEPT = "Intercept"


def check_formula(record: Any, features: list[str] | None, k: int, fit_intercept: Any) -> None:
    """Raise :class:`InputError` unless ``record`` is a formula record that builds the
    model's ``features`` (and intercept) and ``k`` targets."""
    where = "formula"
    json_object(record, where, ("formula", "columns", "targets", "variables",
                "target_variables", "lhs", "rhs"), ("missing", "weights", "absorb",
                "dropped"))  # fmt: skip
    string(record["formula"], f"{where}.formula")
    columns = strings(record["columns"], f"{where}.columns", unique=True)
    strings(record["targets"], f"{where}.targets", length=k, unique=True)
    strings(record["variables"], f"{where}.variables", unique=True)
    strings(record["target_variables"], f"{where}.target_variables", unique=True)
    if record.get("missing", "error") not in ("error", "drop"):
        raise invalid(f"{where}.missing", record.get("missing"), "'error' or 'drop'")
    if record.get("weights") is not None:
        string(record["weights"], f"{where}.weights")
    for side in ("lhs", "rhs"):
        state = json_object(record[side], f"{where}.{side}", ("encoder_state", "transform_state"))
        for name in ("encoder_state", "transform_state"):
            json_object(state[name], f"{where}.{side}.{name}", (), strict=False)
            plain_json(state[name], f"{where}.{side}.{name}")
    absorb = strings(record.get("absorb", []), f"{where}.absorb", unique=True)
    if "absorb" in record and not absorb:
        raise invalid(f"{where}.absorb", absorb, "the fixed effects' column names")
    # Fixed effects absorb the formula's intercept.
    if boolean(bool(fit_intercept), "fit_intercept") != (INTERCEPT in columns and not absorb):
        raise InputError("the model metadata is invalid: the formula and the parameters "
                         "disagree on the intercept")  # fmt: skip
    dropped = _dropped(record, columns, absorb)
    kept = [c for c in columns if c != INTERCEPT and c not in dropped]
    if features is not None and kept != features:
        raise InputError("the model metadata is invalid: the formula builds other features "
                         "than the model has")  # fmt: skip


def _dropped(record: dict[str, Any], columns: list[str], absorb: list[str]) -> list[str]:
    """The formula's features the fixed effects absorbed entirely (``dropped``): some
    of its columns, with fixed effects, and not all."""
    where = "formula.dropped"
    dropped = strings(record.get("dropped", []), where, unique=True)
    if "dropped" not in record:
        return dropped
    features = [c for c in columns if c != INTERCEPT]
    if not absorb or not dropped or not set(dropped) < set(features):
        raise invalid(where, dropped, "some, not all, of the formula's features (with fixed "
                      "effects)")  # fmt: skip
    return dropped
