"""A formula's columns written straight into one float64 array, for the common terms.

formulaic owns what a formula means: it parses it, learns the categories and the
contrasts, and names and orders the columns (its ``ModelSpec``). Materializing a large
table through its pandas machinery, though, builds every column as a separate array
and stacks them, several times the cost of the fit. Where every factor of a side is a
table column read as it is (``x``, ``Q("my col")``) or the categories of one
(``g``, ``C(g)``, ``C(g, Treatment("b"))``, any contrasts), a :class:`Design` reads
formulaic's learned structure once and fills the columns itself: a numeric column is
copied, a categorical one indexes its coding matrix (formulaic's) by the rows' level
codes, and a product multiplies its factors in the order formulaic does, so that the
numbers are formulaic's to the last bit. Anything else (``I()``, ``np.log``, ``poly``,
a categorical expression such as ``C(x > 0)``) has no Design and is built by formulaic.

A Design is only used once checked equal to formulaic's own matrix on rows of the data
(:meth:`.spec.FormulaSpec.matrix`).
"""

from __future__ import annotations

import ast
import functools
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

INTERCEPT = "Intercept"
BLOCK_ROWS = 4096


@dataclass(frozen=True)
class Factor:
    """A factor read from one table column: numeric (``coding`` None) or categorical,
    its levels' codes indexing the rows of ``coding`` (levels × columns)."""

    column: str
    levels: tuple[Any, ...] | None = None
    coding: np.ndarray | None = None

    @property
    def width(self) -> int:
        return 1 if self.coding is None else int(self.coding.shape[1])


@dataclass(frozen=True)
class Term:
    """The columns of one of formulaic's scoped terms: the product of ``factors``
    (the first varying fastest, as formulaic orders them), times ``scale``."""

    factors: tuple[Factor, ...]
    scale: float
    start: int

    @property
    def width(self) -> int:
        return int(np.prod([f.width for f in self.factors]))


class Design:
    """The columns of one side of a formula, less ``Intercept``, built from a pandas
    frame. ``names`` are formulaic's."""

    def __init__(self, terms: list[Term], names: list[str]) -> None:
        self.terms, self.names = terms, names
        self.columns = sorted({f.column for t in terms for f in t.factors})

    def usable(self, frame: Any) -> bool:
        """Whether ``frame`` holds the columns as the Design reads them: a numeric
        factor's column must be of a numpy number or bool type (not one of pandas'
        nullable types, whose pd.NA formulaic reads its own way)."""
        for term in self.terms:
            for f in term.factors:
                if f.column not in frame:
                    return False
                dtype = frame[f.column].dtype
                if f.coding is None and not (isinstance(dtype, np.dtype) and dtype.kind in "biuf"):
                    return False
        return True

    def codes(self, frame: Any) -> dict[str, np.ndarray]:
        """Each categorical column's level codes (-1: missing, or a level not seen
        when fitting)."""
        import pandas as pd

        out: dict[str, np.ndarray] = {}
        for term in self.terms:
            for f in term.factors:
                if f.levels is not None and f.column not in out:
                    out[f.column] = _codes(frame[f.column], pd.Index(list(f.levels)))
        return out

    def build(self, frame: Any, codes: dict[str, np.ndarray]) -> np.ndarray:
        """The columns of ``frame``'s rows as one C-ordered float64 array. Rows coded
        -1 hold numbers of no meaning: the caller makes them NaN or refuses them."""
        import torch

        from ..stats.block_threads import share_blocks, thread_count

        n, p = len(frame), len(self.names)
        X = fresh_array(n, p)
        fill = _Fill(X, self.terms, frame, codes)
        # A block of rows at a time: its part of X stays in cache while each of its
        # columns is written (column by column over every row, each write is a miss).
        # The blocks are shared among threads, as a robust covariance's pass shares
        # its own: each writes whole blocks, the kernel providing their memory too.
        starts = range(0, n, BLOCK_ROWS)
        workers = thread_count(torch.device("cpu"), len(starts)) if n * p >= THREAD_CELLS else 1
        share_blocks(starts, [fill] * workers, _Fill.block)
        return X


# Values of X from which its blocks are written by several threads (pool start-up
# costs about a millisecond).
THREAD_CELLS = 1 << 21


class _Fill:
    """What writing a block of X's rows reads: the dummies' columns of each level, the
    numeric columns copied as they are, and the other terms with their columns."""

    def __init__(
        self, X: np.ndarray, terms: list[Term], frame: Any, codes: dict[str, np.ndarray]
    ) -> None:
        self.X, self.codes = X, codes
        dummies = [(t, _dummies(t)) for t in terms]
        self.ones = [(t.factors[0].column, where) for t, where in dummies if where is not None]
        self.plain = [(t.start, np.asarray(frame[t.factors[0].column].to_numpy()))
                      for t, where in dummies if where is None and _plain(t)]  # fmt: skip
        self.rest = [t for t, where in dummies if where is None and not _plain(t)]
        self.numbers = {f.column: np.asarray(frame[f.column].to_numpy())
                        for t in self.rest for f in t.factors if f.coding is None}  # fmt: skip

    def block(self, start: int) -> None:
        """Write rows ``start`` to ``start + BLOCK_ROWS`` of X."""
        rows = slice(start, start + BLOCK_ROWS)
        block = self.X[rows]
        p = block.shape[1]
        # a row coded -1 reads level 0: its numbers have no meaning (see build)
        level = {c: np.maximum(v[rows], 0) for c, v in self.codes.items()}
        if self.ones:  # X is not zeroed: the dummies' zeros (one write of the block)
            block.fill(0.0)
        for name, where in self.ones:
            column = where[level[name]]
            hit = np.flatnonzero(column >= 0)
            block.reshape(-1)[hit * p + column[hit]] = 1.0
        for j, values in self.plain:  # a column as it is (the common term: no product)
            block[:, j] = values[rows]
        sliced = {c: v[rows] for c, v in self.numbers.items()}
        for term in self.rest:
            _products(block, term, sliced, level)


def fresh_array(n: int, p: int) -> np.ndarray:
    """An uninitialized C-ordered float64 (n, p) array in ordinary pages (torch's
    allocator). numpy asks the kernel to back an array of megabytes with huge pages
    (``MADV_HUGEPAGE``), which serve its first write from free blocks of 2 MB; on a
    virtual machine whose balloon driver reports such free blocks to the host (free
    page reporting), a block freed seconds ago is faulted in from the host again. In
    bench/formula.py's rounds (other programs' allocations between two fits) the
    1M × 69 design's first write cost 0.5–1.3 s in huge pages against 0.2–0.45 s in
    ordinary ones, and 0.1–0.2 s in either with its memory still warm
    (docs/benchmarks.md, Formulas)."""
    import torch

    return torch.empty((n, p), dtype=torch.float64).numpy()


def _plain(term: Term) -> bool:
    """Whether a term is one numeric column as it is (``x``, ``Q("my col")``)."""
    return len(term.factors) == 1 and term.factors[0].coding is None and term.scale == 1


def _codes(values: Any, levels: Any) -> np.ndarray:
    """Each value's position in ``levels`` (-1: missing or not there); a pandas
    categorical column through its own categories, text held by Arrow by Arrow."""
    import pandas as pd

    if isinstance(values.dtype, pd.CategoricalDtype):
        own = np.append(levels.get_indexer(values.cat.categories), -1)
        return np.asarray(own[values.cat.codes.to_numpy()], dtype=np.intp)
    if hasattr(values.array, "__arrow_array__") and all(isinstance(v, str) for v in levels):
        import pyarrow as pa
        import pyarrow.compute as pc

        array = pa.array(values.array)  # (no copy)
        if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            found = pc.index_in(array, value_set=pa.array(list(levels), type=array.type))
            return np.asarray(found.fill_null(-1).to_numpy(), dtype=np.intp)
    return np.asarray(levels.get_indexer(values), dtype=np.intp)


def _dummies(term: Term) -> np.ndarray | None:
    """Where a term is one categorical factor coded by dummies (each level a 1 in at
    most one column, 0 elsewhere: treatment contrasts), each level's column in X
    (-1: none, the reference level); else None."""
    if len(term.factors) != 1 or term.scale != 1:
        return None
    coding = term.factors[0].coding
    if coding is None or not np.isin(coding, (0.0, 1.0)).all() or (coding.sum(1) > 1).any():
        return None
    return np.where(coding.any(1), term.start + coding.argmax(1), -1)


def _products(
    X: np.ndarray, term: Term, numbers: dict[str, np.ndarray], codes: dict[str, np.ndarray]
) -> None:
    """The columns of a term as formulaic computes them: the factors with one column
    multiplied first, in their order, then each combination of the others' columns
    (the first factor fastest) times that product, times the scale."""
    solo = [_column(f, 0, numbers, codes) for f in term.factors if f.width == 1]
    wide = [[(f, j) for j in range(f.width)] for f in term.factors if f.width != 1]
    product = functools.reduce(np.multiply, solo) if solo else None
    for k, reversed_combination in enumerate(itertools.product(*reversed(wide))):
        values = [_column(f, j, numbers, codes) for f, j in reversed(reversed_combination)]
        if product is not None:
            values.append(product)
        X[:, term.start + k] = term.scale * functools.reduce(np.multiply, values)


def _column(
    f: Factor, j: int, numbers: dict[str, np.ndarray], codes: dict[str, np.ndarray]
) -> np.ndarray:
    """Column ``j`` of a factor: the table's numbers as they are, or the coding of
    each row's level."""
    if f.coding is None:
        return numbers[f.column]
    return f.coding[codes[f.column], j]


def design(model_spec: Any) -> Design | None:
    """The Design of a formulaic ``ModelSpec`` whose structure is known (one that has
    built a matrix), or None where a factor is more than a column read as it is."""
    terms: list[Term] = []
    names: list[str] = []
    state = model_spec.encoder_state
    if not _learns_nothing(model_spec.transform_state):
        return None
    for structure in model_spec.structure:
        columns = list(structure.columns)
        offset = 0
        for scoped in structure.scoped_terms:
            if not scoped.factors:  # the intercept
                if columns[offset : offset + 1] != [INTERCEPT]:
                    return None
                offset += 1
                continue
            factors = [_factor(sf, state) for sf in scoped.factors]
            if any(f is None for f in factors):
                return None
            term = Term(tuple(f for f in factors if f is not None), scoped.scale, len(names))
            names.extend(columns[offset : offset + term.width])
            offset += term.width
            terms.append(term)
        if offset != len(columns):
            return None
    return Design(terms, names)


def categorical_columns(model_spec: Any) -> list[str] | None:
    """The columns whose categories a ``ModelSpec`` (with its structure) learned, where
    that is all it learned from the data's values: None where a stateful transform
    (``center``, ``poly``) or a categorical expression (``C(x > 0)``) learned from
    every value."""
    if not _learns_nothing(model_spec.transform_state):
        return None
    found = set()
    for structure in model_spec.structure:
        for scoped in structure.scoped_terms:
            for sf in scoped.factors:
                kind = model_spec.encoder_state.get(sf.factor.factor.expr, (None,))[0]
                if getattr(kind, "value", kind) == "categorical":
                    column = _read(sf, categorical=True)
                    if column is None:
                        return None
                    found.add(column)
    return sorted(found)


def _learns_nothing(transform_state: dict[str, Any]) -> bool:
    """Whether the stateful transforms learned nothing: none but ``Q("name")``, which
    formulaic lists with an empty state."""
    return all(
        not state and _column_read(expr, categorical=False) is not None
        for expr, state in transform_state.items()
    )


def _read(scoped: Any, *, categorical: bool) -> str | None:
    """The column a factor reads as it is (None: it computes something)."""
    factor = scoped.factor.factor
    if getattr(factor.eval_method, "value", None) == "lookup":
        return str(factor.expr)
    return _column_read(factor.expr, categorical=categorical)


def _factor(scoped: Any, state: dict[str, Any]) -> Factor | None:
    """A scoped factor as a :class:`Factor`, or None (not a column read as it is)."""
    kind, learned = state.get(scoped.factor.factor.expr, (None, {}))
    kind = getattr(kind, "value", kind)
    if kind not in ("numerical", "categorical"):
        return None
    column = _read(scoped, categorical=kind == "categorical")
    if column is None:
        return None
    if kind == "numerical":
        return Factor(column)
    contrasts = learned.get("contrasts")
    if contrasts is None:
        return None
    coding = contrasts.get_coding_matrix(reduced_rank=scoped.reduced)
    levels = tuple(learned["categories"])
    if list(coding.index) != list(levels):
        return None
    return Factor(column, levels, np.ascontiguousarray(coding.to_numpy(dtype=np.float64)))


def _column_read(expr: str, *, categorical: bool) -> str | None:
    """The column a Python factor reads as it is: ``name``, ``Q("name")`` and, for a
    categorical factor, ``C(<one of those>)`` with contrasts at most; else None."""
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError:
        return None
    if categorical and isinstance(node, ast.Call) and _named(node.func, "C"):
        extra = [k.arg for k in node.keywords]
        if not node.args or len(node.args) + len(extra) > 2 or extra not in ([], ["contrasts"]):
            return None
        node = node.args[0]
    if isinstance(node, ast.Name):
        return node.id
    if (
        isinstance(node, ast.Call)
        and _named(node.func, "Q")
        and len(node.args) == 1
        and not node.keywords
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return node.args[0].value
    return None


def _named(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name
