"""``fit --absorb firm,year``: fixed effects absorbed from a file.

The library absorbs fixed effects from rows in memory (alternating projections sweep
every row many times); streamed absorption, a bounded number of passes over a file, is
not built yet. So this option reads the columns the fit needs (features, targets,
weights, the factors and cluster labels) into memory in one pass, with the usual
missing-value rules for the numbers (``--missing``); a row missing a factor's or
cluster's label is an error naming it. It then fits them with
``LinearRegression(cov_type=...).fit(X, y, absorb=...)``: the covariance (nonrobust,
HC0–HC3, one-way cluster) is computed at fit time, so the summary needs no second pass.
It runs in one process (not under torchrun).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.design import Design, DesignChunk, chunks
from ..data.sources import Source
from ..errors import InputError

if TYPE_CHECKING:
    from .fit import FitOptions
    from .passes import FitRows

# What the in-memory fit with fixed effects supports (models/_absorb.py SUPPORTED).
COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster")


def check_absorb_options(options: FitOptions) -> None:
    """The options that go with ``--absorb`` (called by :class:`FitOptions`)."""
    if not options.absorb:
        return
    others = [flag for flag, given in (
        ("--method gd", options.method == "gd"), ("--ridge", options.ridge is not None),
        ("--lasso", options.lasso is not None), ("--elasticnet", options.elasticnet is not None),
        ("--huber", options.huber is not None), ("--cv", options.cv is not None),
        ("--formula", options.formula is not None), ("--no-intercept", not options.fit_intercept),
    ) if given]  # fmt: skip
    if others:
        raise InputError(
            f"--absorb fits least squares with the fixed effects in place of the intercept; "
            f"drop {', '.join(others)}"
        )
    if options.cov_type not in COV_TYPES or (options.cluster or "").count(","):
        what = "two-way clusters" if "," in (options.cluster or "") else options.cov_type
        raise InputError(
            f"--cov-type {what} with --absorb is not supported; choose one of "
            f"{', '.join(COV_TYPES)} (one --cluster column)"
        )
    named = {*options.targets, *(options.features or ()), options.weights, options.cluster}
    clash = [c for c in options.absorb if c in named - {options.cluster}]
    if clash:
        raise InputError(
            f"--absorb column {clash[0]!r} is also a target, feature or weights column; "
            "a fixed effect's labels are used for nothing else"
        )
    if len(set(options.absorb)) != len(options.absorb):
        raise InputError("--absorb names a column twice; name each factor once")
    # The factors are not features (the default features are every other column).
    options.exclude = [*options.exclude, *(c for c in options.absorb if c not in options.exclude)]


def fit_absorbed(source: Source, design: Design, options: FitOptions, rows: FitRows) -> Any:
    """``LinearRegression`` with ``options.absorb`` absorbed, fitted to the rows of the
    file held in memory; ``rows`` counts the rows read and dropped."""
    from ..data.design import require_columns
    from ..data.named import NamedArray
    from ..models.linear import LinearRegression

    labelled = list(
        dict.fromkeys([*options.absorb, *([options.cluster] if options.cluster else [])])
    )
    require_columns(source, labelled, "absorb")
    rows.passes.begin("fitting (rows in memory, fixed effects absorbed)")
    parts: list[DesignChunk] = []
    labels: dict[str, list[np.ndarray]] = {c: [] for c in labelled}
    for chunk, raw in chunks(source, design, keep=labelled):
        rows.rows += chunk.X.shape[0]
        rows.dropped += chunk.dropped
        parts.append(chunk)
        for name in labelled:
            what = "fixed effect's label" if name in options.absorb else "cluster label"
            labels[name].append(_labels(source, chunk, raw, name, what))
    if rows.rows < rows.n_params:
        from .passes import too_few_rows

        raise too_few_rows(source, rows.rows, rows.dropped, rows.n_params)
    X = np.concatenate([p.X for p in parts])
    Y = np.concatenate([p.Y for p in parts if p.Y is not None])
    w = np.concatenate([p.w for p in parts if p.w is not None]) if design.weights else None
    y = (
        NamedArray(Y[:, 0], design.targets[:1])
        if Y.shape[1] == 1
        else NamedArray(Y, design.targets)
    )
    found = {name: np.concatenate(v) for name, v in labels.items()}
    groups = found[options.cluster] if options.cluster else None
    factors = {name: found[name] for name in options.absorb}
    model = LinearRegression(cov_type=options.cov_type, device=options.device)
    model.fit(NamedArray(X, design.feature_names), y, w, groups=groups, absorb=factors)
    if model.absorbed_.dropped:
        gone = ", ".join(model.absorbed_.dropped)
        raise InputError(
            f"{source.name}: the fixed effects absorb {gone} entirely (constant within the "
            "levels of a factor); leave it out with --exclude"
        )
    return model


def _labels(source: Source, chunk: DesignChunk, raw: Any, name: str, what: str) -> np.ndarray:
    """The labels of the rows the fit kept; a kept row must have one."""
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


def absorbed_statistics(stats: dict[str, Any], model: Any) -> dict[str, Any]:
    """The fit statistics with R² about the weighted mean of y (the state's, of the
    demeaned rows, is the within R², which the summary reports beside it)."""
    tss = model.absorbed_.tss
    r2 = [None if t == 0 else 1 - rss / t for rss, t in zip(stats["rss"], tss, strict=True)]
    return {**stats, "r2": r2}
