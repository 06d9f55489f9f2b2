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
from .sources import Source

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


def _listed(source: Source, names: Sequence[str], what: str) -> None:
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
    _listed(source, targets, "target")
    _listed(source, exclude, "excluded")
    _listed(source, one_hot, "one-hot")
    if weights is not None:
        _listed(source, [weights], "weights")
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
        _listed(source, features, "feature")
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
        design.one_hot = _categories(source, list(one_hot))
    return design, skipped


def _categories(source: Source, columns: list[str]) -> dict[str, list[str]]:
    """Sorted distinct values of each one-hot column: a pre-pass over those columns."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not source.reiterable:
        raise InputError(
            "--one-hot needs to read its columns before fitting, which standard input "
            "cannot do; write the data to a file first"
        )
    seen: dict[str, set[str]] = {c: set() for c in columns}
    floating = [c for c in columns if pa.types.is_floating(source.types[c])]
    if floating:
        raise InputError(
            f"--one-hot column {', '.join(map(repr, floating))} holds real numbers; one-hot "
            "encoding is for categories (text or integer codes)"
        )
    types = {c: pa.string() for c in columns}
    rows = 0
    for batch in source.batches(columns, types):
        rows += batch.table.num_rows
        for c in columns:
            col = batch.table.column(c)
            if not pa.types.is_string(col.type):
                col = pc.cast(col, pa.string())
            seen[c].update(v for v in pc.unique(col).to_pylist() if v is not None)
    out = {}
    for c, values in seen.items():
        if len(values) > max(20, rows // 2):
            raise InputError(
                f"--one-hot column {c!r} has {len(values):,} distinct values in {rows:,} rows: "
                "it would add a feature for almost every row; it is meant for categories"
            )
        if len(values) < 2:
            raise InputError(
                f"--one-hot column {c!r} has {len(values)} distinct value(s); it needs at least 2"
            )
        out[c] = sorted(values)
    return out


def column_types(
    source: Source, design: Design, with_targets: bool, text: Sequence[str] = ()
) -> dict[str, Any]:
    """pyarrow types to read the design's columns with: text for one-hot columns, float64
    for everything else (so a stray text cell is a conversion error naming the value).
    ``text`` columns (kept ids, cluster labels) are read verbatim from CSV: "007" stays
    "007"."""
    import pyarrow as pa

    from .sources import CsvSource

    types = {c: pa.string() for c in text if isinstance(source, CsvSource)}
    types.update({c: pa.float64() for c in design.inputs if c not in design.one_hot})
    types.update({c: pa.string() for c in design.one_hot})
    for c in [
        *(design.targets if with_targets else []),
        *([design.weights] if with_targets and design.weights else []),
    ]:
        types[c] = pa.float64()
    # Parquet and .npy already carry types; only text columns need a cast there.
    return {c: t for c, t in types.items() if c in source.columns}


def used_columns(design: Design, with_targets: bool, keep: Sequence[str] = ()) -> list[str]:
    cols = list(design.inputs)
    if with_targets:
        cols += design.targets + ([design.weights] if design.weights else [])
    return list(dict.fromkeys([*cols, *keep]))


def _missing(source: Source, start: int, mask: np.ndarray, column: str) -> InputError:
    row = int(np.flatnonzero(mask)[0])
    return InputError(
        f"{source.where(start + row)}, column {column!r}: the value is missing; "
        "fill it in, remove the row, or use --missing drop"
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
    """Stream (numbers, raw batch) pairs; the raw batch carries the ``keep`` columns."""
    import pyarrow as pa

    types = column_types(source, design, with_targets, text=keep)
    columns = used_columns(design, with_targets, keep)
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
                    raise _missing(source, start, nan, c)
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
            col = table.column(c)
            if not pa.types.is_string(col.type):
                import pyarrow.compute as pc

                col = pc.cast(col, pa.string())
            labels = np.asarray(col.to_pylist(), dtype=object)
            null = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            if null.any():
                if design.missing == "error":
                    raise _missing(source, start, null, c)
                bad |= null
            known = np.isin(labels, cats) | null
            if not known.all():
                row = int(np.flatnonzero(~known)[0])
                raise InputError(
                    f"{source.where(start + row)}, column {c!r}: category {labels[row]!r} was "
                    f"not seen when fitting (known: {', '.join(cats)})"
                )
            encoded[c] = np.column_stack([(labels == v) for v in design.levels(c)]).astype(
                np.float64
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
