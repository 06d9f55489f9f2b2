"""From a source's columns to the model's numbers: which columns are features, targets
and weights, how text columns are one-hot encoded, and what happens to missing values.

A :class:`Design` is decided once (``plan``), recorded in the model file, and replayed
on new data for ``predict`` and ``evaluate``, so the columns always line up by name.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from .categories import encode, find_categories, numeric_text, one_hot_block, read_types
from .options import keywords_in_use, option
from .sources import Source, check_plain

MISSING = ("error", "drop")


@dataclass
class Design:
    """How raw columns become X, Y and weights.

    ``inputs`` are the raw feature columns in order; a column in ``one_hot`` expands to
    one 0/1 feature per category except the first (the reference level, absorbed by the
    intercept). ``feature_names`` are the expanded names (``color=red``).
    """

    targets: list[str]
    inputs: list[str]
    one_hot: dict[str, list[str]] = field(default_factory=dict)
    weights: str | None = None
    missing: str = "error"
    # Without an intercept every category keeps its column (as R does); with one, the
    # first is the reference, absorbed by the intercept.
    drop_reference: bool = True

    def levels(self, col: str) -> list[str]:
        """The categories of a one-hot column that get a feature."""
        cats = self.one_hot[col]
        return cats[1:] if self.drop_reference else list(cats)

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for col in self.inputs:
            if col in self.one_hot:
                names.extend(f"{col}={c}" for c in self.levels(col))
            else:
                names.append(col)
        return names

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Design:
        return cls(
            targets=list(d["targets"]),
            inputs=list(d["inputs"]),
            one_hot={k: list(v) for k, v in d.get("one_hot", {}).items()},
            weights=d.get("weights"),
            missing=d.get("missing", "error"),
            drop_reference=d.get("drop_reference", True) is not False,
        )


@dataclass
class DesignChunk:
    """Numbers of consecutive rows: X (n, p), Y (n, k) or None, w (n,) or None; the
    source rows they came from start at ``start``; ``dropped`` rows were left out."""

    X: np.ndarray
    Y: np.ndarray | None
    w: np.ndarray | None
    start: int
    dropped: int
    kept: np.ndarray | None  # boolean mask of kept rows, None when all were kept

    def as_solver_chunk(self) -> Any:
        """The exact solver's validated chunk (every value was checked here)."""
        import torch

        from .chunks import Chunk

        assert self.Y is not None
        return Chunk(
            X=torch.from_numpy(np.require(self.X, requirements="W")),
            Y=torch.from_numpy(np.require(self.Y, requirements="W")),
            # A copy: Arrow's buffers are read-only, and torch warns on such arrays.
            sample_weight=None if self.w is None else torch.from_numpy(np.array(self.w)),
            target_1d=self.Y.shape[1] == 1,
            finite=True,
        )


def require_columns(source: Source, names: Sequence[str], what: str) -> None:
    """Refuse names that are not columns of ``source``, listing the columns it has."""
    missing = [c for c in names if c not in source.columns]
    if missing:
        raise InputError(
            f"{source.name}: no {what} column {', '.join(map(repr, missing))}; "
            f"the columns are: {', '.join(source.columns)}"
        )


def plan(
    source: Source,
    *,
    targets: Sequence[str],
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    weights: str | None = None,
    one_hot: Sequence[str] = (),
    missing: str = "error",
    categories: bool = True,
) -> tuple[Design, list[str]]:
    """Decide the design for fitting; returns it and the text columns left out of the
    default feature set (to tell the user). ``categories=False`` leaves the one-hot
    columns' categories for the caller to find (over every rank's share)."""
    _check_options(targets, weights, one_hot, missing)
    weighting = [weights] if weights else []
    reserved = [*targets, *weighting]
    require_columns(source, targets, "target")
    require_columns(source, exclude, "excluded")
    require_columns(source, one_hot, "one-hot")
    require_columns(source, weighting, "weights")
    check_plain(source, [*targets, *one_hot, *weighting, *(features or [])])
    skipped: list[str] = []
    if features is None:
        features, skipped = _default_features(source, reserved, exclude, one_hot)
    else:
        features = _chosen_features(source, features, reserved, exclude, one_hot)
    _check_design(source, reserved, features, one_hot)
    design = Design(list(targets), list(features), {}, weights, missing)
    if one_hot:
        design.one_hot = find_categories(source, list(one_hot)) if categories else {}
    return design, skipped


def _check_options(
    targets: Sequence[str], weights: str | None, one_hot: Sequence[str], missing: str
) -> None:
    """What can be wrong with the options before looking at the data."""
    if missing not in MISSING:
        raise InputError(
            f"{option('missing')} must be one of {', '.join(MISSING)}; got {missing!r}"
        )
    if not targets:
        raise InputError(f"give at least one target column ({option('target')})")
    for what, names in (("target", targets), ("one-hot", one_hot)):
        _refuse_repeats(what, names)
    if weights is not None and weights in targets:
        raise InputError(f"column {weights!r} cannot be both a target and the weights")


def _refuse_repeats(what: str, names: Sequence[str]) -> None:
    repeated = sorted({c for c in names if list(names).count(c) > 1})
    if repeated:
        raise InputError(f"{option(what)} names {', '.join(map(repr, repeated))} twice")


def _default_features(
    source: Source, reserved: Sequence[str], exclude: Sequence[str], one_hot: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Every column that is neither a target, the weights nor excluded, and holds numbers
    or is one-hot encoded; and the text columns so left out."""
    candidates = [c for c in source.columns if c not in reserved and c not in exclude]
    chosen = [c for c in candidates if c in one_hot or source.looks_numeric(c)]
    return chosen, [c for c in candidates if c not in chosen]


def _chosen_features(
    source: Source,
    features: Sequence[str],
    reserved: Sequence[str],
    exclude: Sequence[str],
    one_hot: Sequence[str],
) -> list[str]:
    """The features the user named, less the excluded ones; none may be a target, the
    weights, or text that is not one-hot encoded."""
    _refuse_repeats("features", features)
    require_columns(source, features, "feature")
    clash = [c for c in features if c in reserved]
    if clash:
        raise InputError(
            f"column {', '.join(map(repr, clash))} is a target or the weights; "
            "it cannot also be a feature"
        )
    chosen = [c for c in features if c not in exclude]
    text = [c for c in chosen if c not in one_hot and not source.looks_numeric(c)]
    if text:
        raise InputError(
            f"{source.name}: column {', '.join(map(repr, text))} holds text, not numbers; "
            f"encode it with {option('one-hot', text)} or leave it out with {option('exclude')}"
        )
    return chosen


def _check_design(
    source: Source, reserved: Sequence[str], features: Sequence[str], one_hot: Sequence[str]
) -> None:
    """Numeric targets and weights, at least one feature, every one-hot column a feature."""
    for c in reserved:
        if not source.looks_numeric(c):
            raise InputError(f"{source.name}: column {c!r} holds text; it must be numeric")
    if not features:
        raise InputError(
            f"{source.name} has no numeric feature columns besides the target; "
            f"choose them with {option('features')} (text columns need {option('one-hot')})"
        )
    if "" in features:
        raise InputError(
            f"{source.name} has a column with an empty name (a trailing delimiter?); "
            f"fix the header or leave it out with {option('exclude', [''])}"
        )
    extra = [c for c in one_hot if c not in features]
    if extra:
        raise InputError(
            f"{option('one-hot')} column {', '.join(map(repr, extra))} is not among the features"
        )


def column_types(
    source: Source, design: Design, with_targets: bool, text: Sequence[str] = ()
) -> dict[str, Any]:
    """pyarrow types to read the design's columns with: float64 for numbers (so that a
    stray text cell is a conversion error naming the value), text for CSV one-hot
    columns. ``text`` columns (kept ids, cluster labels) are read from CSV as written:
    "007" stays "007", "NA" stays "NA"; only an empty cell is missing. A kept column the
    model reads as numbers (a feature, the target, the weights) is kept as a number, so a
    Parquet output stores numbers (and a CSV output writes them shortest-round-trip)."""
    import pyarrow as pa

    from .sources import CsvSource

    types = {c: pa.string() for c in text if isinstance(source, CsvSource)}
    numbers = [
        *(c for c in design.inputs if c not in design.one_hot),
        *design.targets,
        *([design.weights] if design.weights else []),
    ]
    types.update({c: pa.float64() for c in numbers})
    types.update(read_types(source, list(design.one_hot)))
    # Parquet and .npy carry types; numbers are cast (exactly) to float64 there too.
    wanted = set(used_columns(design, with_targets, text))
    return {c: t for c, t in types.items() if c in wanted and c in source.columns}


def used_columns(design: Design, with_targets: bool, keep: Sequence[str] = ()) -> list[str]:
    cols = list(design.inputs)
    if with_targets:
        cols += design.targets + ([design.weights] if design.weights else [])
    return list(dict.fromkeys([*cols, *keep]))


def _missing(
    source: Source, start: int, mask: np.ndarray, column: str, with_targets: bool
) -> InputError:
    row = int(np.flatnonzero(mask)[0])
    # Without targets the rows are being predicted: leaving one out would shift every
    # prediction after it, so the option that keeps them in line comes first. The
    # library predicts every row it is given (it has no such option).
    if with_targets:
        fix = f"remove the row, or use {option('missing', 'drop')}"
    elif keywords_in_use():
        fix = "or remove the row"
    else:
        fix = (
            f"or use {option('missing', 'exclude')} (an empty prediction in its place; "
            f"{option('missing', 'drop')} leaves the row out)"
        )
    return InputError(
        f"{source.where(start + row)}, column {column!r}: the value is missing; fill it in, {fix}"
    )


def _floats(column: Any) -> np.ndarray:
    values = column.to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


def chunks(
    source: Source,
    design: Design,
    *,
    with_targets: bool = True,
    keep: Sequence[str] = (),
) -> Iterator[tuple[DesignChunk, Any]]:
    """Stream (numbers, raw batch) pairs; the raw batch carries the ``keep`` columns
    (read as :func:`column_types` says)."""
    types = column_types(source, design, with_targets, text=keep)
    columns = used_columns(design, with_targets, keep)
    check_plain(source, columns)
    numbers_as_text = {c: numeric_text(source, c) for c in design.one_hot}
    weighting = [design.weights] if design.weights else []
    numeric = [c for c in design.inputs if c not in design.one_hot]
    checked = numeric + (design.targets + weighting if with_targets else [])
    for batch in source.batches(columns, types):
        table, start = batch.table, batch.start
        where = _Rows(source, start, design.missing == "error", with_targets)
        values = {c: _floats(table.column(c)) for c in checked}
        bad = np.zeros(table.num_rows, dtype=bool)
        for c in checked:
            bad |= where.missing_or_infinite(values[c], c)
        encoded = {}
        for c, cats in design.one_hot.items():
            codes, labels = encode(table.column(c), c, numbers_as_text[c])
            encoded[c], null, unknown = one_hot_block(codes, labels, cats, design.levels(c))
            bad |= where.missing(null, c)
            if unknown is not None:
                raise InputError(
                    f"{source.where(start + unknown)}, column {c!r}: category "
                    f"{labels[codes[unknown]]!r} was not seen when fitting "
                    f"(known: {', '.join(cats)})"
                )
        parts = [encoded[c] if c in encoded else values[c][:, None] for c in design.inputs]
        X = np.concatenate(parts, axis=1) if parts else np.empty((table.num_rows, 0))
        Y = np.column_stack([values[t] for t in design.targets]) if with_targets else None
        w = values[design.weights] if with_targets and design.weights else None
        if w is not None:
            where.non_negative(w, design.weights)
        yield _without(bad, X, Y, w, start), table


@dataclass
class _Rows:
    """The checks on one batch's values that name a row: ``start`` is its first row;
    ``refuse_missing`` when a missing value is an error, not a row to leave out."""

    source: Source
    start: int
    refuse_missing: bool
    with_targets: bool

    def missing(self, mask: np.ndarray, column: str) -> np.ndarray:
        """The rows to leave out for missing values (``mask``), or the error."""
        if self.refuse_missing and mask.any():
            raise _missing(self.source, self.start, mask, column, self.with_targets)
        return mask

    def missing_or_infinite(self, v: np.ndarray, column: str) -> np.ndarray:
        """The rows to leave out for NaN values; an infinite value is an error."""
        if np.isfinite(v).all():  # the common case: one pass, nothing to report
            return np.zeros(len(v), dtype=bool)
        bad = self.missing(np.isnan(v), column)
        inf = np.isinf(v)
        if inf.any():
            row = int(np.flatnonzero(inf)[0])
            raise InputError(
                f"{self.source.where(self.start + row)}, column {column!r}: {v[row]} is not a "
                "finite number (too large for float64?); fix or remove the row"
            )
        return bad

    def non_negative(self, w: np.ndarray, column: str | None) -> None:
        if (w < 0).any():
            row = int(np.flatnonzero(w < 0)[0])
            raise InputError(
                f"{self.source.where(self.start + row)}, column {column!r}: weight {w[row]} is "
                "negative; weights must be >= 0"
            )


def _without(
    bad: np.ndarray, X: np.ndarray, Y: np.ndarray | None, w: np.ndarray | None, start: int
) -> DesignChunk:
    """The chunk of the rows not marked ``bad`` (missing values left out)."""
    dropped = int(bad.sum())
    if not dropped:
        return DesignChunk(X, Y, w, start, 0, None)
    kept = ~bad
    return DesignChunk(
        X[kept],
        None if Y is None else Y[kept],
        None if w is None else w[kept],
        start,
        dropped,
        kept,
    )
