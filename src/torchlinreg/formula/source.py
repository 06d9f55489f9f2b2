"""A file streamed through a formula: :class:`FormulaSource` turns a source of raw
columns into a source of the formula's columns (``C(g)[T.b]``, ``np.log(x)``, the
targets), batch by batch, so the command line's fit, summary, predict and evaluate read
it as any file, in bounded memory, with rows numbered as in the file.

The formula's structure is learned once (:func:`learn_from_source`): from the first
batch, and where it has categorical terms, from every category in the file, found in a
first pass over the columns it reads. A formula's fixed effects (``| firm + year``) are
not built here: their columns pass through as they are, read as labels by the streamed
absorption (:mod:`torchlinreg.jobs.absorb`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..data.source_base import Batch, Source
from ..errors import InputError
from .frames import require_variables
from .spec import FormulaSpec, candidate_columns, parse, side_variables

# A column with more distinct values than this is not a category (as --one-hot).
MAX_LEVELS = 1000


class FormulaSource(Source):
    """``inner``'s rows as the formula's columns: the features (formulaic's names, less
    ``Intercept``) and targets as float64, every other column of ``inner`` as it is (the
    weights, cluster labels, kept columns). A row missing a value the formula reads is
    an error (``missing="error"``) or a row of NaN, which the design then drops."""

    def __init__(self, inner: Source, spec: FormulaSpec, missing: str = "error") -> None:
        self.inner, self.spec, self.missing = inner, spec, missing
        self.name, self.reiterable = inner.name, inner.reiterable
        self.first_row = inner.first_row
        self.model_columns = [*spec.feature_names, *spec.target_names]
        self.columns = [*self.model_columns,
                        *(c for c in inner.columns if c not in self.model_columns)]  # fmt: skip
        import pyarrow as pa

        self.types = {**inner.types, **{c: pa.float64() for c in self.model_columns}}

    def batches(
        self, columns: Sequence[str], types: dict[str, Any] | None = None
    ) -> Iterator[Batch]:
        import pyarrow as pa

        features = any(c in self.spec.feature_names for c in columns)
        targets = any(c in self.spec.target_names for c in columns)
        needed = [*(self.spec.variables if features else []),
                  *(self.spec.target_variables if targets else [])]  # fmt: skip
        raw = [c for c in columns if c not in self.model_columns]
        read = list(dict.fromkeys([*needed, *raw]))
        read_types = {**(types or {}), **{c: self.inner.types[c] for c in needed}}
        for batch in self.inner.batches(read, {c: read_types[c] for c in read if c in read_types}):
            values = self._model_values(batch, needed, features, targets)
            arrays = []
            for c in columns:
                if c in values:
                    arrays.append(pa.array(values[c]))
                else:
                    column = batch.table.column(c)
                    want = (types or {}).get(c)
                    arrays.append(column if want is None or column.type == want
                                  else column.cast(want))  # fmt: skip
            yield Batch(pa.RecordBatch.from_arrays(arrays, names=list(columns)), batch.start)

    def _model_values(
        self, batch: Batch, needed: list[str], features: bool, targets: bool
    ) -> dict[str, np.ndarray]:
        frame = _frame(batch.table, list(dict.fromkeys(needed)))
        where = _rows_of(self.inner, batch.start)
        out: dict[str, np.ndarray] = {}
        for side, wanted, names in (("rhs", features, self.spec.feature_names),
                                    ("lhs", targets, self.spec.target_names)):  # fmt: skip
            if wanted:
                matrix = self.spec.matrix(frame, side, where=where, missing=self.missing)
                out.update({n: matrix[:, j] for j, n in enumerate(names)})
        return out

    def where(self, row: int) -> str:
        return self.inner.where(row)

    def looks_numeric(self, column: str) -> bool:
        return column in self.model_columns or self.inner.looks_numeric(column)

    def typed(self, column: str, values: Any) -> Any:
        return self.inner.typed(column, values)

    @property
    def empty(self) -> bool:
        return self.inner.empty

    @property
    def row_count(self) -> int | None:
        return self.inner.row_count


def _frame(table: Any, columns: list[str]) -> Any:
    """Columns of a record batch as pandas, dictionary (categorical) columns as their
    values: a stream's categories are sorted, whatever each batch's dictionary says."""
    import pyarrow as pa

    arrays = []
    for c in columns:
        column = table.column(c)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        arrays.append(column)
    return pa.Table.from_arrays(arrays, names=columns).to_pandas()


def _rows_of(source: Source, start: int) -> Callable[[int], str]:
    return lambda i: source.where(start + i)


def learn_from_source(
    formula: str, source: Source, begin_pass: Callable[[str], None]
) -> FormulaSpec:
    """The formula's learned state for a file: structure and stateful transforms from
    the first batch; categories, where the formula has any, from every row, read in a
    first pass (``begin_pass`` names it on the progress line). Of fixed effects
    (``| firm + year``) the spec keeps the factors' names (``spec.absorb``); their
    columns are read as labels by the absorbed fit (:mod:`torchlinreg.jobs.absorb`),
    not built here."""
    from .absorbed import split_absorbed

    if not source.reiterable:
        raise InputError(
            "a formula reads the first rows to learn its columns, then every row to fit, "
            "and standard input can be read only once; write the data to a file first"
        )
    model, factors = split_absorbed(formula)
    parsed = parse(formula, source.columns)
    require_variables(formula, side_variables(parsed.lhs) + side_variables(parsed.rhs) + factors,
                      source.columns)  # fmt: skip
    # (the factors' names in the text after '|' are no candidates: the spec never reads them)
    candidates = candidate_columns(model, parsed, source.columns)
    types = {c: source.types[c] for c in candidates}
    first = _frame(next(iter(source.batches(candidates, types))).table, candidates)
    try:
        spec = FormulaSpec.learn(formula, first, columns=source.columns)
        if not spec.categorical_state():
            return spec
    except InputError:
        pass  # e.g. a reference level absent from the first batch: every level is read
    begin_pass("categories of the formula's terms")
    levels = _levels(source, candidates, types)
    every = FormulaSpec.learn(formula, _with_levels(first, levels), columns=source.columns)
    return FormulaSpec.learn(formula, first, every.categorical_state(), source.columns)


def _levels(source: Source, columns: list[str], types: dict[str, Any]) -> dict[str, set[Any]]:
    """The distinct values of each column (a column with more than
    :data:`MAX_LEVELS` is no category and is left out)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    seen: dict[str, set[Any]] = {c: set() for c in columns}
    for batch in source.batches(columns, types):
        for c in list(seen):
            column = batch.table.column(c)
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            seen[c].update(v for v in pc.unique(column).to_pylist() if v is not None)
            if len(seen[c]) > MAX_LEVELS:
                del seen[c]
    return seen


def _with_levels(first: Any, levels: dict[str, set[Any]]) -> Any:
    """The first batch with a row added for each value of a column it lacks (the other
    columns as in its first row): learned from it, every category is known."""
    import pandas as pd

    extra = []
    for c, values in levels.items():
        present = set(first[c].dropna().tolist())
        for v in values - present:
            row = first.iloc[:1].copy()
            row[c] = v
            extra.append(row)
    if not extra:
        return first
    return pd.concat([first, *extra], ignore_index=True)


def formula_source(source: Source, spec: FormulaSpec, missing: str, with_targets: bool) -> Source:
    """New data (``predict``, ``evaluate``) through a saved model's formula: the columns
    it reads must be there (the targets' too ``with_targets``)."""
    wanted = [*spec.variables, *(spec.target_variables if with_targets else [])]
    require_variables(spec.formula, wanted, source.columns)
    return FormulaSource(source, spec, "error" if missing == "error" else "drop")
