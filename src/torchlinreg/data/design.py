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
) -> tuple[Design, list[str]]:
    """Decide the design for fitting; returns it and the text columns left out of the
    default feature set (to tell the user)."""
    if missing not in MISSING:
        raise InputError(f"--missing must be one of {', '.join(MISSING)}; got {missing!r}")
    if not targets:
        raise InputError("give at least one target column (--target)")
    for what, names in (("--target", targets), ("--one-hot", one_hot)):
        repeated = sorted({c for c in names if list(names).count(c) > 1})
        if repeated:
            raise InputError(f"{what} names {', '.join(map(repr, repeated))} twice")
    if weights is not None and weights in targets:
        raise InputError(f"column {weights!r} cannot be both a target and the weights")
    require_columns(source, targets, "target")
    require_columns(source, exclude, "excluded")
    require_columns(source, one_hot, "one-hot")
    if weights is not None:
        require_columns(source, [weights], "weights")
    check_plain(source, [*targets, *one_hot, *([weights] if weights else []), *(features or [])])
    reserved = set(targets) | ({weights} if weights else set())
    skipped: list[str] = []
    if features is None:
        candidates = [c for c in source.columns if c not in reserved and c not in exclude]
        chosen = []
        for c in candidates:
            if c in one_hot or source.looks_numeric(c):
                chosen.append(c)
            else:
                skipped.append(c)
        features = chosen
    else:
        require_columns(source, features, "feature")
        clash = [c for c in features if c in reserved]
        if clash:
            raise InputError(
                f"column {', '.join(map(repr, clash))} is a target or the weights; "
                "it cannot also be a feature"
            )
        features = [c for c in features if c not in exclude]
        text = [c for c in features if c not in one_hot and not source.looks_numeric(c)]
        if text:
            raise InputError(
                f"{source.name}: column {', '.join(map(repr, text))} holds text, not numbers; "
                f"encode it with --one-hot {','.join(text)} or leave it out with --exclude"
            )
    for c in [*targets, *([weights] if weights else [])]:
        if not source.looks_numeric(c):
            raise InputError(f"{source.name}: column {c!r} holds text; it must be numeric")
    if not features:
        raise InputError(
            f"{source.name} has no numeric feature columns besides the target; "
            "choose them with --features (text columns need --one-hot)"
        )
    if "" in features:
        raise InputError(
            f"{source.name} has a column with an empty name (a trailing delimiter?); "
            "fix the header or leave it out with --exclude ''"
        )
    extra = [c for c in one_hot if c not in features]
    if extra:
        raise InputError(
            f"--one-hot column {', '.join(map(repr, extra))} is not among the features"
        )
    design = Design(list(targets), list(features), {}, weights, missing)
    if one_hot:
        design.one_hot = find_categories(source, list(one_hot))
    return design, skipped


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
    # prediction after it, so the option that keeps them in line comes first.
    fix = (
        "remove the row, or use --missing drop"
        if with_targets
        else "or use --missing exclude (an empty prediction in its place; --missing drop "
        "leaves the row out)"
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
    numeric = [c for c in design.inputs if c not in design.one_hot]
    checked = numeric + (
        design.targets + ([design.weights] if design.weights else []) if with_targets else []
    )
    for batch in source.batches(columns, types):
        table, start = batch.table, batch.start
        n = table.num_rows
        values = {c: _floats(table.column(c)) for c in checked}
        bad = np.zeros(n, dtype=bool)
        for c in checked:
            v = values[c]
            if np.isfinite(v).all():  # the common case: one pass, nothing to report
                continue
            nan = np.isnan(v)
            if nan.any():
                if design.missing == "error":
                    raise _missing(source, start, nan, c, with_targets)
                bad |= nan
            inf = np.isinf(v)
            if inf.any():
                row = int(np.flatnonzero(inf)[0])
                raise InputError(
                    f"{source.where(start + row)}, column {c!r}: {v[row]} is not a "
                    "finite number (too large for float64?); fix or remove the row"
                )
        encoded = {}
        for c, cats in design.one_hot.items():
            codes, labels = encode(table.column(c), c, numbers_as_text[c])
            encoded[c], null, unknown = one_hot_block(codes, labels, cats, design.levels(c))
            if null.any():
                if design.missing == "error":
                    raise _missing(source, start, null, c, with_targets)
                bad |= null
            if unknown is not None:
                raise InputError(
                    f"{source.where(start + unknown)}, column {c!r}: category "
                    f"{labels[codes[unknown]]!r} was not seen when fitting "
                    f"(known: {', '.join(cats)})"
                )
        parts = [encoded[c] if c in encoded else values[c][:, None] for c in design.inputs]
        X = np.concatenate(parts, axis=1) if parts else np.empty((n, 0))
        Y = np.column_stack([values[t] for t in design.targets]) if with_targets else None
        w = values[design.weights] if with_targets and design.weights else None
        if w is not None and (w < 0).any():
            row = int(np.flatnonzero(w < 0)[0])
            raise InputError(
                f"{source.where(start + row)}, column {design.weights!r}: weight {w[row]} is "
                "negative; weights must be >= 0"
            )
        kept = None
        dropped = int(bad.sum())
        if dropped:
            kept = ~bad
            X = X[kept]
            Y = None if Y is None else Y[kept]
            w = None if w is None else w[kept]
        yield DesignChunk(X, Y, w, start, dropped, kept), table
