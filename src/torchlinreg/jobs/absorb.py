"""``fit --absorb firm,year`` (or ``fit --formula "y ~ x1 + C(g) | firm + year"``):
fixed effects absorbed from a file.

A file is streamed in bounded memory (:mod:`torchlinreg.models._absorb_stream`): one
pass gathers the factors' level sums and cross-tabulations, a second subtracts the
fitted effects and folds the demeaned rows into the least-squares state, a third
computes a robust covariance (nonrobust, HC0–HC3, one-way cluster; at fit time, so the
summary needs no further pass). Memory grows with the factors' levels (and, for two
large factors, with the distinct pairs of levels seen together), not with the rows.
Standard input, which cannot be read twice, is held in memory and fitted with
``LinearRegression(cov_type=...).fit(X, y, absorb=...)``.

The usual missing-value rules apply to the numbers (``--missing``); a row missing a
factor's or cluster's label is an error naming the file, row and column. A regressor
the fixed effects absorb entirely (constant within the levels of a factor) is dropped
with a one-line warning naming it, left out of the design the model file keeps, and
listed in ``absorbed_.dropped`` (the summary notes it). It runs in one process (not
under torchrun).

A formula's fixed effects take the same path: the file is read through the formula
(:class:`~torchlinreg.formula.source.FormulaSource`, which builds each batch's
right-hand side and passes the factor columns through as they are), its factors become
``options.absorb``, and the spec records the terms dropped (``formula.dropped``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.design import Design, DesignChunk, chunks
from ..data.sources import Source
from ..errors import InputError
from .common import kept_labels

if TYPE_CHECKING:
    from .fit import FitOptions
    from .passes import FitRows

# What the in-memory fit with fixed effects supports (models/_absorb.py SUPPORTED).
COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster")


def check_absorb_options(options: FitOptions) -> None:
    """The options that go with ``--absorb`` or a formula's ``| firm + year`` (called
    by :class:`FitOptions`); the formula's factors become ``options.absorb``."""
    if options.formula is not None:
        _formula_factors(options)
        return
    if not options.absorb:
        return
    _check_fit(options, "--absorb")
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


def _check_fit(options: FitOptions, what: str) -> None:
    """Least squares with a covariance the absorbed fit computes, or a clear error;
    ``what`` names the option asking for fixed effects."""
    others = [flag for flag, given in (
        ("--method gd", options.method == "gd"), ("--ridge", options.ridge is not None),
        ("--lasso", options.lasso is not None), ("--elasticnet", options.elasticnet is not None),
        ("--huber", options.huber is not None), ("--cv", options.cv is not None),
        ("--no-intercept", not options.fit_intercept),
    ) if given]  # fmt: skip
    if others:
        raise InputError(
            f"{what} fits least squares with the fixed effects in place of the intercept; "
            f"drop {', '.join(others)}"
        )
    if options.cov_type not in COV_TYPES or (options.cluster or "").count(","):
        kind = "two-way clusters" if "," in (options.cluster or "") else options.cov_type
        raise InputError(
            f"--cov-type {kind} with {what} is not supported; choose one of "
            f"{', '.join(COV_TYPES)} (one --cluster column)"
        )


def _formula_factors(options: FitOptions) -> None:
    """A formula's fixed effects (``y ~ x | firm + year``) as ``options.absorb``,
    checked with the options as ``--absorb``'s are. Both, or ``--absorb`` with a
    formula, are refused: the factors are named in one place."""
    from ..formula.absorbed import split_absorbed

    assert options.formula is not None
    factors = split_absorbed(options.formula)[1]
    if options.absorb:
        raise InputError(
            "--absorb and --formula: pick one; name the fixed effects after the formula's "
            "'|' (y ~ x1 + x2 | firm + year), or with --absorb and --target/--features"
        )
    if not factors:
        return
    _check_fit(options, "a formula with fixed effects ('|')")
    if options.weights in factors:
        raise InputError(
            f"the formula's fixed effect {options.weights!r} is also the weights column; a "
            "fixed effect's labels are used for nothing else"
        )
    options.absorb = list(factors)


def fit_absorbed(source: Source, design: Design, options: FitOptions, rows: FitRows) -> Any:
    """``LinearRegression`` with ``options.absorb`` absorbed, fitted to the file's rows
    (streamed where the file can be read again, else held in memory); ``rows`` counts
    the rows read and dropped. Regressors absorbed entirely leave the design."""
    from ..data.design import require_columns

    labelled = list(
        dict.fromkeys([*options.absorb, *([options.cluster] if options.cluster else [])])
    )
    require_columns(source, labelled, "absorb")
    if source.reiterable:
        model = _fit_streamed(source, design, options, rows, labelled)
    else:
        model = _fit_in_memory(source, design, options, rows, labelled)
    _drop_from_design(source, design, model.absorbed_.dropped)
    return model


def _fit_streamed(
    source: Source, design: Design, options: FitOptions, rows: FitRows, labelled: list[str]
) -> Any:
    """The streamed absorption over passes of the file."""
    from ..models._absorb import check_cov_type
    from ..models._absorb_stream import fit_rows
    from ..models.linear import LinearRegression

    model: Any = LinearRegression(
        fit_intercept=options.fit_intercept, cov_type=options.cov_type, device=options.device
    )
    check_cov_type(options.cov_type)
    rows.passes.planned += 1  # the level sums, before the fitting pass
    read = _passes(source, design, options, rows, labelled)
    fit_rows(model, read, list(options.absorb), design.feature_names, options.cov_type)
    model.target_names_ = list(design.targets)
    return model


def _passes(
    source: Source, design: Design, options: FitOptions, rows: FitRows, labelled: list[str]
) -> Any:
    """Each call a pass over the file as :class:`AbsorbRows`; the first counts the rows
    read and dropped, and refuses too few."""
    from ..data.prefetch import prefetched
    from ..models._absorb_pass import AbsorbRows

    names = ("fixed effects: level sums", "fitting (fixed effects subtracted)")
    reads = 0

    def read() -> Any:
        nonlocal reads
        reads += 1
        what = (
            names[reads - 1] if reads <= len(names) else "demeaned rows: covariance or refinement"
        )
        rows.passes.begin(what)
        for chunk, raw in prefetched(chunks(source, design, keep=labelled)):
            if reads == 1:
                rows.rows += chunk.X.shape[0]
                rows.dropped += chunk.dropped
            kind = "fixed effect's label"
            labels = [kept_labels(source, chunk, raw, name, kind) for name in options.absorb]
            groups = None
            if options.cluster:
                groups = kept_labels(source, chunk, raw, options.cluster, "cluster label")
            yield AbsorbRows(chunk.as_solver_chunk(), labels, groups, chunk.start)
        if reads == 1 and rows.rows < rows.n_params:
            from .passes import too_few_rows

            raise too_few_rows(source, rows.rows, rows.dropped, rows.n_params)

    return read


def _fit_in_memory(
    source: Source, design: Design, options: FitOptions, rows: FitRows, labelled: list[str]
) -> Any:
    """The rows the fit needs held in memory (standard input) and fitted with the
    library's ``fit(X, y, absorb=...)``."""
    from ..data.named import NamedArray
    from ..models.linear import LinearRegression

    rows.passes.begin("fitting (rows in memory, fixed effects absorbed)")
    parts: list[DesignChunk] = []
    labels: dict[str, list[np.ndarray]] = {c: [] for c in labelled}
    for chunk, raw in chunks(source, design, keep=labelled):
        rows.rows += chunk.X.shape[0]
        rows.dropped += chunk.dropped
        parts.append(chunk)
        for name in labelled:
            kind = "fixed effect's label" if name in options.absorb else "cluster label"
            labels[name].append(kept_labels(source, chunk, raw, name, kind))
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
    model = LinearRegression(
        fit_intercept=options.fit_intercept, cov_type=options.cov_type, device=options.device
    )
    model.fit(NamedArray(X, design.feature_names), y, w, groups=groups, absorb=factors)
    return model


def _drop_from_design(source: Source, design: Design, dropped: Sequence[str]) -> None:
    """Leave the regressors the fixed effects absorbed out of ``design`` (the model
    file's, which ``predict`` replays), with a one-line warning naming them. A one-hot
    column goes whole: one absorbed in part is an error."""
    if not dropped:
        return
    gone = set(dropped)
    removed = [c for c in design.inputs if c not in design.one_hot and c in gone]
    for column in design.one_hot:
        levels = {f"{column}={c}" for c in design.levels(column)}
        if levels <= gone:
            removed.append(column)
        elif levels & gone:
            raise InputError(
                f"{source.name}: the fixed effects absorb {', '.join(sorted(levels & gone))} "
                f"but not every level of the one-hot column {column!r}; leave the column out "
                "with --exclude"
            )
    design.inputs = [c for c in design.inputs if c not in removed]
    warnings.warn(
        f"{source.name}: the fixed effects absorb {', '.join(dropped)} entirely (constant "
        "within the levels of a factor): dropped from the regression",
        UserWarning,
        stacklevel=2,
    )


def absorbed_statistics(stats: dict[str, Any], model: Any) -> dict[str, Any]:
    """The fit statistics with R² about the weighted mean of y (the state's, of the
    demeaned rows, is the within R², which the summary reports beside it)."""
    tss = model.absorbed_.tss
    r2 = [None if t == 0 else 1 - rss / t for rss, t in zip(stats["rss"], tss, strict=True)]
    return {**stats, "r2": r2}
