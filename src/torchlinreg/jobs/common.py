"""What the jobs share: opening a data file (one rank's share of it under ``torchrun``),
the label columns read beside the design, and the coefficient table as reports show
it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.sources import Source, open_source

if TYPE_CHECKING:
    from ..data.design import DesignChunk
from ..errors import InputError


def open_data(path: str, delimiter: str | None, group: Any = None) -> Source:
    """The source at ``path``, refused when it holds no data rows; with ``group`` (the
    ranks of ``torchrun``) this rank's share of it (:mod:`torchlinreg.data.shards`),
    refused when every share is empty."""
    if group is not None:
        return _open_share(path, delimiter, group)
    source = open_source(path, delimiter=delimiter)
    if source.empty:
        raise InputError(f"{source.name} has a header but no data rows")
    return source


def _open_share(path: str, delimiter: str | None, group: Any) -> Source:
    """Every rank opens its share; a CSV file is opened by rank 0 alone, the others
    mirror its columns. The ranks must see the same files, split alike."""
    from ..data.shards import NoRows, describe, layout, open_share

    share = group.agree(lambda: open_share(path, delimiter, group.rank, group.size))
    seen = group.gather_objects(
        (_digest(layout(share)), describe(share), share.empty) if share is not None else None
    )
    if share is None:
        share = NoRows(seen[0][1])
    for rank, theirs in enumerate(seen):
        if theirs is not None and theirs[0] != seen[0][0]:
            raise InputError(
                f"rank {rank} of {group.size} sees other files (or files of other sizes) in "
                f"{path} than rank 0; every rank must see the same data, unchanged while read"
            )
    if all(theirs is None or theirs[2] for theirs in seen):
        raise InputError(f"{share.name} has a header but no data rows")
    return share


def _digest(value: Any) -> str:
    """A short fingerprint of a layout (thousands of files are compared by it)."""
    import hashlib

    return hashlib.sha256(repr(value).encode()).hexdigest()


def coefficients(
    coef: Any,
    intercept: Any,
    features: Sequence[str],
    targets: Sequence[str],
    *,
    absorbed: bool = False,
) -> dict[str, dict[str, float]]:
    """``{target: {"intercept": b, feature: w, ...}}`` from coefficients shaped (p,) or
    (k, p) and intercepts shaped () or (k,). With fixed effects ``absorbed`` there is no
    intercept row: the factors' effects take its place (a 0 would read as a fitted one)."""
    coef, intercept = np.atleast_2d(coef), np.atleast_1d(intercept)
    return {
        t: {
            **({} if absorbed else {"intercept": float(intercept[j])}),
            **{f: float(coef[j, i]) for i, f in enumerate(features)},
        }
        for j, t in enumerate(targets)
    }


def kept_labels(source: Source, chunk: DesignChunk, raw: Any, name: str, what: str) -> np.ndarray:
    """Column ``name`` of the Arrow batch ``raw`` at the rows the fit kept of ``chunk``;
    a kept row must have one (``what`` names the labels in the error: "cluster label",
    "fixed effect's label")."""
    column = raw.column(name)
    values = column.to_numpy(zero_copy_only=False)
    missing = column.is_null().to_numpy(zero_copy_only=False)
    if chunk.kept is not None:
        missing = missing & chunk.kept  # a row left out of the fit needs no label
        values = values[chunk.kept]
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise InputError(
            f"{source.where(chunk.start + row)}, column {name!r}: the {what} is missing; "
            "fill it in or remove the row"
        )
    return values
