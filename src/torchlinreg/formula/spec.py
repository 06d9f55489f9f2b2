"""``FormulaSpec``: a formula and what it learned from the training data, applied to
new rows as when fitting, and kept as JSON.

formulaic builds the columns (its ``ModelSpec``, one for each side of ``~``); this
class keeps what a model needs from it: the formula's text, the learned state of each
side (:mod:`.state_json`), and the column names. formulaic's ``Intercept`` column is
the model's intercept (``fit_intercept``), so it is not a feature.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..data.options import option
from ..errors import InputError
from ._formulaic import formulaic, one_line
from .absorbed import split_absorbed
from .design import Design, design
from .state_json import from_json, to_json

INTERCEPT = "Intercept"  # formulaic's name for the column of ones
# Each side is materialized keeping every row (NaN where a value is missing), so that
# rows stay where they were and the missing-value rule is the library's.
_OPTIONS = {"na_action": "ignore", "output": "numpy", "materializer": "pandas"}


def parse(formula: str, columns: Sequence[str] = ()) -> Any:
    """formulaic's parsed formula, with a target; a clear error otherwise (which shows
    how to quote a column of ``columns`` whose name is not a Python name). Of a formula
    with fixed effects (``y ~ x | firm``), the part before the ``|`` (:mod:`.absorbed`)."""
    fl = formulaic()
    if not isinstance(formula, str) or not formula.strip():
        raise InputError(f"the formula must be text such as 'y ~ x1 + C(g)'; got {formula!r}")
    model = split_absorbed(formula)[0]
    try:
        parsed = fl.Formula(model)
    except Exception as exc:  # noqa: BLE001 - formulaic raises several kinds here
        quoted = [c for c in columns if not c.isidentifier() and c in formula]
        hint = (
            f"; quote a column name that is not a Python name: Q({quoted[0]!r})" if quoted else ""
        )
        raise InputError(f"the formula {formula!r} does not parse: {one_line(exc)}{hint}") from None
    if not hasattr(parsed, "lhs") or not list(parsed.lhs):
        raise InputError(f"the formula {formula!r} has no target; write it as 'target ~ terms'")
    return parsed


def side_variables(side: Any) -> list[str]:
    """The data columns one side of a parsed (or learned) formula reads, sorted. Parsed,
    formulaic does not see into stateful transforms (``poly(x, 2)``, ``center(x)``):
    :func:`candidate_columns` is the set to read before learning."""
    return sorted(str(v) for v in side.required_variables)


def candidate_columns(formula: str, parsed: Any, columns: Sequence[str]) -> list[str]:
    """The columns a formula may read: those formulaic names when parsing it, and every
    column whose name appears in its text (inside a stateful transform). Learning tells
    which it reads (``FormulaSpec.variables``)."""
    named = side_variables(parsed.lhs) + side_variables(parsed.rhs)
    return list(dict.fromkeys([*named, *(c for c in columns if c in formula)]))


class FormulaSpec:
    """A formula and its learned state. ``feature_names`` are formulaic's column names
    (``C(g)[T.b]``, ``x1:x2``) less ``Intercept``; ``fit_intercept`` tells whether the
    formula has one (``- 1`` or ``+ 0`` removes it); ``target_names`` name the left
    side's columns. ``record`` is the JSON form (see :meth:`to_dict`)."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        self._sides: dict[str, Any] = {}
        self._learned: tuple[Any, dict[str, Any]] | None = None
        self._designs: dict[str, Design | None] = {}

    # What the record says -------------------------------------------------------
    @property
    def formula(self) -> str:
        return str(self.record["formula"])

    @property
    def fit_intercept(self) -> bool:
        """Whether the model has an intercept: the formula's, unless fixed effects
        absorb it."""
        return INTERCEPT in self.record["columns"] and not self.absorb

    @property
    def absorb(self) -> list[str]:
        """The fixed effects' columns (after the formula's ``|``; none without one)."""
        return list(self.record.get("absorb", []))

    @property
    def feature_names(self) -> list[str]:
        """The columns the formula builds (less ``Intercept``)."""
        return [c for c in self.record["columns"] if c != INTERCEPT]

    @property
    def dropped(self) -> list[str]:
        """Features the fixed effects absorbed entirely: built, but left out of the fit
        (``absorbed_.dropped``), so left out of the model's inputs."""
        return list(self.record.get("dropped", []))

    def drop_absorbed(self, dropped: Sequence[str]) -> None:
        """Record the features the fit dropped, absorbed entirely by the fixed effects."""
        if dropped:
            self.record["dropped"] = list(dropped)
        else:
            self.record.pop("dropped", None)

    @property
    def target_names(self) -> list[str]:
        return list(self.record["targets"])

    @property
    def variables(self) -> list[str]:
        """The data columns the features are computed from."""
        return list(self.record["variables"])

    @property
    def target_variables(self) -> list[str]:
        return list(self.record["target_variables"])

    def to_dict(self) -> dict[str, Any]:
        """The JSON record: ``formula``, ``columns`` (formulaic's, ``Intercept``
        included), ``targets``, ``variables``, ``target_variables`` and, per side
        (``rhs``, ``lhs``), formulaic's ``encoder_state`` and ``transform_state``."""
        return self.record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> FormulaSpec:
        return cls(record)

    def __repr__(self) -> str:
        return f"FormulaSpec({self.formula!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"record": self.record, "_sides": {}, "_learned": None, "_designs": {}}

    # Learning and applying ------------------------------------------------------
    @classmethod
    def learn(
        cls,
        formula: str,
        frame: Any,
        preset: dict[str, Any] | None = None,
        columns: Sequence[str] = (),
    ) -> FormulaSpec:
        """Learn the formula's state from ``frame`` (a pandas DataFrame with the columns
        it reads). ``preset``: the right side's encoder state of some factors, taken as
        given (a stream's categories, found over every row first); ``columns``, the
        data's, are listed when the formula names another.

        Where all the formula learns from the values is the categories of columns
        (no stateful transform), it learns from a sample of rows holding every
        category (:func:`.sampled.sample`): the same state, without building the
        columns of every row."""
        if preset is None:
            from .sampled import sample

            found = sample(frame, lambda rows: cls._learn_from(formula, rows, None, columns))
            if found is not None:
                rows, spec = found
                built, spec._learned = spec._learned, None
                for side in ("lhs", "rhs"):  # checked against formulaic on every level
                    spec._design(side, rows, check=rows, built=built and built[1].get(side))
                return spec
        return cls._learn_from(formula, frame, preset, columns)

    @classmethod
    def _learn_from(
        cls, formula: str, frame: Any, preset: dict[str, Any] | None, columns: Sequence[str]
    ) -> FormulaSpec:
        """:meth:`learn` from every row of ``frame``."""
        parsed = parse(formula)
        fl = formulaic()
        specs = fl.ModelSpec.from_spec(parsed, **_OPTIONS)
        record: dict[str, Any] = {"formula": formula}
        matrices: dict[str, Any] = {}
        for name in ("lhs", "rhs"):
            side = getattr(specs, name)
            if name == "rhs" and preset:
                side = side.update(encoder_state=dict(preset))
            with warnings.catch_warnings():
                # Learning sees every level; what formulaic finds outside them are the
                # missing values, which matrix() handles.
                warnings.filterwarnings("ignore", message="Data has categories outside")
                built = _materialize(side, frame, formula, columns)
                learned = built.model_spec
                matrices[name] = built
            record[f"{name}_variables"] = side_variables(learned)
            record[name] = {
                "encoder_state": to_json(_without_contrasts(learned.encoder_state)),
                "transform_state": to_json(learned.transform_state),
            }
        absorb = split_absorbed(formula)[1]
        if absorb:
            record["absorb"] = absorb
        record["variables"] = record.pop("rhs_variables")
        record["target_variables"] = record.pop("lhs_variables")
        spec = cls(record)
        # The training rows' columns, built while learning: matrix() of this very frame
        # takes them (once) instead of building them again.
        spec._learned = (frame, matrices)
        record["columns"] = list(spec._built(frame, "rhs").column_names)
        record["targets"] = list(spec._built(frame, "lhs").column_names)
        spec._check_learned()
        return spec

    def _check_learned(self) -> None:
        categorical = [f for f, (kind, _) in self.encoder_state("lhs").items()
                       if getattr(kind, "value", kind) == "categorical"]  # fmt: skip
        if categorical:
            raise InputError(
                f"the formula {self.formula!r}: the target {categorical[0]} is categorical "
                "(text); a linear regression's target must hold numbers"
            )
        if not self.feature_names:
            raise InputError(
                f"the formula {self.formula!r} has no terms besides the intercept; "
                "add at least one (y ~ x)"
            )

    def encoder_state(self, side: str) -> dict[str, Any]:
        return dict(from_json(self.record[side]["encoder_state"]))

    def categorical_state(self) -> dict[str, Any]:
        """The right side's encoder state of its categorical factors (``C(g)``, a text
        column): their kind and categories."""
        return {f: (kind, state) for f, (kind, state) in self.encoder_state("rhs").items()
                if getattr(kind, "value", kind) == "categorical"}  # fmt: skip

    def _side(self, side: str) -> Any:
        """formulaic's ModelSpec of one side, rebuilt from the record (once)."""
        if side not in self._sides:
            parsed = parse(self.formula)
            spec = formulaic().ModelSpec.from_spec(getattr(parsed, side), **_OPTIONS)
            state = self.record[side]
            self._sides[side] = spec.update(
                encoder_state=from_json(state["encoder_state"]),
                transform_state=from_json(state["transform_state"]),
            )
        return self._sides[side]

    def _built(self, frame: Any, side: str) -> Any:
        """One side's ModelSpec with its structure (the columns and how each is made),
        from building no row of ``frame``."""
        key = f"{side}:built"
        if key not in self._sides:
            self._sides[key] = self._side(side).get_model_matrix(frame.iloc[:0]).model_spec
        return self._sides[key]

    def matrix(
        self,
        frame: Any,
        side: str,
        *,
        where: Callable[[int], str],
        missing: str = "error",
    ) -> np.ndarray:
        """One side's columns for the rows of ``frame`` as a float64 array (the
        features less ``Intercept``, or the targets). A row missing a value the side
        reads is an error (``missing="error"``; ``where(i)`` names row ``i``) or a row
        of NaN. A category not seen when fitting is an error naming column and level."""
        variables = self.variables if side == "rhs" else self.target_variables
        null = _null_rows(frame, variables, where, missing)
        learned = self._learned
        if learned is not None and learned[0] is frame and side in learned[1]:
            built = learned[1].pop(side)  # every level was seen: nothing is unseen
            return self._finish(built, side, null)
        design = self._design(side, frame)
        if design is not None:
            return self._fill(design, frame, null, where)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            built = _materialize(self._side(side), frame, self.formula)
        mismatch = [w for w in caught if type(w.message).__name__ == "DataMismatchWarning"]
        if mismatch:  # (a missing value, already dealt with, is one to formulaic)
            unseen = self._unseen(frame, where, mismatch[0].message)
            if unseen is not None or null is None:
                raise unseen or InputError(
                    f"the formula {self.formula!r} meets a category not seen when fitting: "
                    f"{one_line(Exception(mismatch[0].message))}"
                )
        for w in caught:
            if w not in mismatch:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return self._finish(built, side, null)

    def _finish(self, built: Any, side: str, null: np.ndarray | None) -> np.ndarray:
        """formulaic's matrix of one side, checked to have the fitted columns, as
        float64 less ``Intercept``, the rows in ``null`` NaN."""
        names = list(built.model_spec.column_names)
        expected = self.record["columns"] if side == "rhs" else self.record["targets"]
        if names != list(expected):
            raise InputError(
                f"the formula {self.formula!r} now builds the columns {names}, not those "
                f"it was fitted with ({list(expected)}); was another formulaic version used?"
            )
        out = np.asarray(built, dtype=np.float64)
        if side == "rhs" and INTERCEPT in names:  # the model's intercept, or absorbed
            out = out[:, [j for j, name in enumerate(names) if name != INTERCEPT]]
        out = np.require(out, requirements=["C", "W"])  # (a copy where not already one)
        if null is not None:
            out[null] = np.nan
        return out

    # The columns built without formulaic's pandas machinery (:mod:`.design`) ----
    def _design(self, side: str, frame: Any, check: Any = None, built: Any = None) -> Design | None:
        """The side's :class:`~.design.Design` where it reads ``frame`` and builds
        formulaic's very numbers; checked once against formulaic's matrix of ``check``
        (rows holding every category, when learning) or of ``frame``'s first rows."""
        if side not in self._designs:
            expected = [c for c in self._names(side) if c != INTERCEPT]
            found = design(self._built(frame, side))
            if found is None or found.names != expected:
                self._designs[side] = None
                return None
            if not found.usable(frame):
                return None
            rows = frame.iloc[:CHECK_ROWS] if check is None else check
            agrees = self._agrees(found, side, rows, built)
            if agrees is None:  # nothing to tell from these rows; formulaic builds them
                return None
            self._designs[side] = found if agrees else None
        found = self._designs[side]
        return found if found is not None and found.usable(frame) else None

    def _names(self, side: str) -> list[str]:
        return list(self.record["columns"] if side == "rhs" else self.record["targets"])

    def _agrees(self, found: Design, side: str, rows: Any, built: Any = None) -> bool | None:
        """Whether ``found`` builds formulaic's matrix of ``rows`` (``built``, where
        formulaic has built it already; rows missing a value aside); None where a row
        holds a level not seen when fitting."""
        codes = found.codes(rows)
        if any(((c < 0) & rows[name].notna().to_numpy()).any() for name, c in codes.items()):
            return None
        if built is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    built = _materialize(self._side(side), rows, self.formula)
                except InputError:
                    return None
        theirs = self._finish(built, side, None)
        mine = found.build(rows, codes)
        keep = ~rows[found.columns].isna().to_numpy().any(axis=1)
        return mine.shape == theirs.shape and np.array_equal(mine[keep], theirs[keep],
                                                             equal_nan=True)  # fmt: skip

    def _fill(
        self, found: Design, frame: Any, null: np.ndarray | None, where: Callable[[int], str]
    ) -> np.ndarray:
        """The Design's columns of ``frame``: a level not seen when fitting is an error
        naming column, row and level; rows in ``null`` are NaN."""
        codes = found.codes(frame)
        for name, c in codes.items():
            if (c < 0).any() and ((c < 0) & frame[name].notna().to_numpy()).any():
                raise self._unseen(frame, where, None) or InputError(
                    f"the formula {self.formula!r} meets a level of column {name!r} not "
                    "seen when fitting"
                )
        out = found.build(frame, codes)
        if null is not None:
            out[null] = np.nan
        return out

    def _unseen(self, frame: Any, where: Callable[[int], str], message: Any) -> InputError | None:
        """The error for a category not seen when fitting: the column, the row and the
        level, where the factor reads one column as it is (``g``, ``C(g, ...)``); None
        where no column holds one."""
        for factor, (_, state) in self.encoder_state("rhs").items():
            known = state.get("categories")
            columns = side_variables(parse(f"y ~ {factor}").rhs)
            if known is None or len(columns) != 1 or columns[0] not in frame:
                continue
            values = frame[columns[0]]
            new = ~values.isin(known) & values.notna()
            if new.any():
                row = int(np.flatnonzero(new.to_numpy())[0])
                return InputError(
                    f"{where(row)}, column {columns[0]!r}: level {values.iloc[row]!r} was not "
                    f"seen when fitting (known: {', '.join(map(str, known))})"
                )
        return None


# The rows of a new table a Design is checked on (formulaic builds them twice as fast
# as it builds a large table).
CHECK_ROWS = 512
_UNKNOWN_NAME = re.compile(r"name '([^']+)' is not defined|`([^`]+)` is not present in the data")


def _materialize(spec: Any, frame: Any, formula: str, columns: Sequence[str] = ()) -> Any:
    """formulaic's model matrix of one side, its errors as InputError; a name that is
    no column is refused as :func:`.frames.require_variables` does."""
    try:
        return spec.get_model_matrix(frame)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - formulaic wraps the data's own errors
        message = one_line(exc)
        unknown = _UNKNOWN_NAME.search(message)
        if unknown and columns:
            from .frames import require_variables

            require_variables(formula, [unknown.group(1) or unknown.group(2)], columns)
        raise InputError(f"the formula {formula!r} cannot be applied: {message}") from None


def _without_contrasts(encoder_state: dict[str, Any]) -> dict[str, Any]:
    """The encoder state less the contrasts objects, which formulaic rebuilds from the
    formula's text (``C(g, Treatment('b'))``) and the categories."""
    return {f: (kind, {k: v for k, v in state.items() if k != "contrasts"})
            for f, (kind, state) in encoder_state.items()}  # fmt: skip


def _null_rows(
    frame: Any, variables: Sequence[str], where: Callable[[int], str], missing: str
) -> np.ndarray | None:
    """The rows missing a value of ``variables`` (None when none is), or the error."""
    present = [v for v in variables if v in frame]
    if not present:
        return None
    null = np.zeros(len(frame), dtype=bool)
    for v in present:  # (one column at a time: no table of n × columns flags)
        null |= frame[v].isna().to_numpy()
    if not null.any():
        return None
    if missing == "error":
        row = int(np.flatnonzero(null)[0])
        column = next(v for v in present if frame[v].isna().iloc[row])
        raise InputError(
            f"{where(row)}, column {column!r}: the value is missing; fill it in, remove "
            f"the row, or leave such rows out with {option('missing', 'drop')}"
        )
    return null
