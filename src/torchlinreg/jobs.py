"""The CLI's work on files: fit, predict, evaluate, describe. Each function streams its
input in chunks, calls the library, and returns a result for the CLI to print."""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .data.design import Design, chunks, plan
from .data.prefetch import one_core_for_reading, prefetched
from .data.sources import Source, open_source
from .errors import InputError, RankDeficientWarning
from .progress import Progress


@dataclass
class FitOptions:
    targets: list[str]
    features: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    weights: str | None = None
    one_hot: list[str] = field(default_factory=list)
    missing: str = "error"
    delimiter: str | None = None
    method: str = "exact"
    ridge: float | None = None
    fit_intercept: bool = True
    gd: dict[str, Any] = field(default_factory=dict)  # GDRegressor keyword options
    summary: bool = False  # compute the statistical summary (exact method)
    cov_type: str = "nonrobust"
    cluster: str | None = None  # column of cluster labels for cov_type "cluster"
    level: float = 0.95


@dataclass
class FitResult:
    estimator: Any
    design: Design
    stats: dict[str, Any]
    dropped: int
    seconds: float
    skipped_text: list[str]
    info: dict[str, Any]


def _open(path: str, delimiter: str | None) -> Source:
    source = open_source(path, delimiter=delimiter)
    if source.empty:
        raise InputError(f"{source.name} has a header but no data rows")
    return source


def _too_few_rows(source: Source, rows: int, dropped: int, n_params: int) -> InputError:
    if rows == 0 and dropped:
        return InputError(
            f"{source.name}: every row was dropped for missing values; nothing to fit"
        )
    return InputError(
        f"{source.name}: {rows:,} row(s) for {n_params:,} parameters; "
        "a fit needs at least as many rows as parameters"
    )


class _Passes:
    """Names each pass over the data on the progress line and counts its rows: every
    batch the source yields is counted, whoever reads it (the one-hot categories, the
    fit, its refinement, the robust covariance)."""

    def __init__(self, source: Source, progress: Progress) -> None:
        self.source, self.progress = source, progress
        self.done = 0
        self.planned = 1
        batches = source.batches

        def counted(columns: Sequence[str], types: dict[str, Any] | None = None) -> Any:
            for batch in batches(columns, types):
                progress.update(batch.table.num_rows)
                yield batch

        source.batches = counted  # type: ignore[method-assign]

    def begin(self, what: str) -> None:
        self.done += 1
        self.planned = max(self.planned, self.done)
        label = "reading" if self.done == 1 else "reading again"
        if self.planned > 1:
            label += f" (pass {self.done} of {self.planned}: {what})"
        self.progress.phase(label, self.source.row_count)


class _Counted:
    """Chunks of a design as the solver's validated chunks, counting rows and dropped
    rows on the first pass (later passes, for refinement, read the same rows again).

    The first pass holds its chunks back until there are as many rows as parameters:
    too short a file is refused before the solver builds a (parameters × parameters)
    factor it would then throw away."""

    def __init__(self, source: Source, design: Design, passes: _Passes, n_params: int) -> None:
        self.source, self.design, self.passes = source, design, passes
        self.n_params = n_params
        self.rows = self.dropped = self.reads = 0

    def __call__(self) -> Iterator[Any]:
        self.reads += 1
        if self.reads > 1:
            self.passes.planned += 1
            self.passes.begin("refining the solution")
            for chunk, _ in prefetched(chunks(self.source, self.design)):
                yield chunk.as_solver_chunk()
            return
        self.passes.begin("fitting")
        held: list[Any] | None = []
        for chunk, _ in prefetched(chunks(self.source, self.design)):
            self.rows += chunk.X.shape[0]
            self.dropped += chunk.dropped
            if held is None:
                yield chunk.as_solver_chunk()
                continue
            held.append(chunk)
            if self.rows >= self.n_params:
                for c in held:
                    yield c.as_solver_chunk()
                held = None
        if held is not None:
            raise _too_few_rows(self.source, self.rows, self.dropped, self.n_params)


def fit_file(path: str, options: FitOptions, *, quiet: bool = False) -> FitResult:
    """Fit a model to the data in ``path`` (streamed; read twice if refinement is due,
    once more for a robust covariance). ``seconds`` counts from opening the file to the
    finished summary: reading, fitting and statistics, not the program's start-up."""
    from .stats.fit import fit_statistics

    _import_libraries()  # the clock measures the work, not the imports
    started = time.perf_counter()
    source = _open(path, options.delimiter)
    progress = Progress("reading", total=source.row_count, enabled=not quiet)
    passes = _Passes(source, progress)
    robust = options.summary and options.cov_type != "nonrobust"
    passes.planned = 1 + bool(options.one_hot) + robust
    try:
        if options.one_hot:
            passes.begin("categories of --one-hot columns")
        design, skipped = _plan(source, options)
        n_params = len(design.feature_names) + int(options.fit_intercept)
        known = source.row_count
        if known is not None and known < n_params:
            raise _too_few_rows(source, known, 0, n_params)
        stream = _Counted(source, design, passes, n_params)
        with warnings.catch_warnings(record=True) as caught, one_core_for_reading():
            warnings.simplefilter("always")
            model, state = _fit(source, design, options, stream)
        _refuse_aliased(source, model)
        for w in caught:
            if not issubclass(w.category, RankDeficientWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        stats = fit_statistics(state, model.coef_, model.intercept_)
        info = _fit_info(path, options, stream, model, stats)
        if options.summary:
            if robust:
                passes.begin(f"{options.cov_type} covariance")
            info["summary"] = [s.to_dict() for s in _summaries(source, design, options, model)]
    finally:
        progress.close()
    return FitResult(
        estimator=model,
        design=design,
        stats=stats,
        dropped=stream.dropped,
        seconds=time.perf_counter() - started,
        skipped_text=skipped,
        info=info,
    )


def _import_libraries() -> None:
    """torch (with the estimators) and pyarrow's readers take a second or two to import."""
    import pyarrow.csv  # noqa: F401
    import pyarrow.dataset  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    from .models import gd, linear  # noqa: F401


def _plan(source: Source, options: FitOptions) -> tuple[Design, list[str]]:
    """The design for fitting, checked against the data's columns."""
    design, skipped = plan(
        source,
        targets=options.targets,
        features=options.features,
        exclude=options.exclude,
        weights=options.weights,
        one_hot=options.one_hot,
        missing=options.missing,
    )
    design.drop_reference = options.fit_intercept
    if options.fit_intercept and "intercept" in design.feature_names:
        raise InputError(
            f"{source.name}: a feature named 'intercept' would be confused with the fitted "
            "intercept; rename the column, leave it out with --exclude, or use --no-intercept"
        )
    if options.cluster is not None and options.cluster not in source.columns:
        raise InputError(
            f"{source.name}: no cluster column {options.cluster!r}; the columns are: "
            f"{', '.join(source.columns)}"
        )
    return design, skipped


def _refuse_aliased(source: Source, model: Any) -> None:
    """From a file, dependent columns are a data problem to fix, not to work around."""
    aliased = getattr(model, "aliased_", None)
    if aliased:
        verb = "is" if len(aliased) == 1 else "are"
        raise InputError(
            f"{source.name}: X is rank deficient (rank {model.rank_} of "
            f"{model.state_.n_params} parameters): {', '.join(aliased)} {verb} constant or "
            "linearly dependent on the other columns; leave columns out with --exclude"
        )


def _fit_info(
    path: str, options: FitOptions, stream: _Counted, model: Any, stats: dict[str, Any]
) -> dict[str, Any]:
    """How the model was fitted, as kept in the model file."""
    info: dict[str, Any] = {
        "method": options.method,
        "source": os.path.basename(path) if path != "-" else "<stdin>",
        "n": stream.rows,
        "dropped": stream.dropped,
        "fit": stats,
        "options": {
            "ridge": options.ridge,
            "fit_intercept": options.fit_intercept,
            "missing": options.missing,
        },
    }
    if options.method == "gd":
        info["options"]["gd"] = {k: v for k, v in options.gd.items() if k != "log_to"}
        info["history"] = {
            "epochs": len(model.history_),
            "first_cost": model.history_.cost[0],
            "last_cost": model.history_.cost[-1],
        }
    else:
        info["condition_number"] = model.condition_number_
        info["rank"] = model.rank_
        info["refined"] = model.refined_
    return info


def _summaries(source: Source, design: Design, options: FitOptions, model: Any) -> list[Any]:
    """The statistical summary of an exact fit; robust covariances read the data again."""
    from .stats.inference import check_cov_type, check_level, model_summaries

    check_level(options.level)
    check_cov_type(options.cov_type)
    if options.cluster is not None and options.cov_type != "cluster":
        raise InputError("--cluster goes with --cov-type cluster (or on its own)")
    if options.cov_type == "nonrobust":
        return model_summaries(model, level=options.level)
    if not source.reiterable:
        raise InputError(
            f"--cov-type {options.cov_type} reads the data twice; standard input "
            "cannot be: write the data to a file first"
        )
    if options.cov_type == "cluster" and not options.cluster:
        raise InputError("--cov-type cluster needs --cluster COL, the column of group labels")
    keep = [options.cluster] if options.cluster else []

    def items() -> Iterator[tuple[Any, Any]]:
        for c, raw in chunks(source, design, keep=keep):
            labels = None
            if keep:
                column = raw.column(options.cluster)
                labels = column.to_numpy(zero_copy_only=False)
                missing = column.is_null().to_numpy(zero_copy_only=False)
                if c.kept is not None:
                    labels, missing = labels[c.kept], missing[c.kept]
                if missing.any():
                    row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
                    raise InputError(
                        f"{source.where(c.start + row)}, column {options.cluster!r}: "
                        "the cluster label is missing; fill it in or remove the row"
                    )
            yield c.as_solver_chunk(), labels

    return model_summaries(model, level=options.level, cov_type=options.cov_type, data=items())


def _fit(source: Source, design: Design, options: FitOptions, stream: _Counted) -> tuple[Any, Any]:
    """The estimator fitted on the stream, and a state of the data for fit statistics."""
    from .models.gd import GDRegressor
    from .models.linear import LinearRegression, Ridge
    from .solvers.state import LeastSquaresState

    names = design.feature_names
    if options.method == "exact":
        model: Any
        if options.ridge is not None:
            model = Ridge(alpha=options.ridge, fit_intercept=options.fit_intercept)
        else:
            model = LinearRegression(fit_intercept=options.fit_intercept)
        model.fit_chunks(stream if source.reiterable else stream(), feature_names=names)
        model.target_names_ = list(design.targets)
        return model, model.state_
    if options.method != "gd":
        raise InputError(f"unknown method {options.method!r}; use 'exact' or 'gd'")
    parts = list(stream())  # gradient descent needs every row for every epoch
    X = np.concatenate([p.X.numpy() for p in parts])
    y = np.concatenate([p.Y.numpy() for p in parts])
    y = y[:, 0] if y.shape[1] == 1 else y
    w = np.concatenate([p.sample_weight.numpy() for p in parts]) if design.weights else None
    model = GDRegressor(fit_intercept=options.fit_intercept, **options.gd).fit(X, y, w)
    model.feature_names_in_ = np.asarray(names, dtype=object)
    model.target_names_ = list(design.targets)
    k = 1 if y.ndim == 1 else y.shape[1]
    state = LeastSquaresState(X.shape[1], k, fit_intercept=options.fit_intercept)
    return model, state.update(X, y, w)


def _model_design(model_file: Any, *, need_names: bool = True) -> Design:
    if model_file.design is not None:
        return model_file.design
    names = getattr(model_file.estimator, "feature_names_in_", None)
    if names is None and not need_names:
        return Design(
            targets=[], inputs=[f"x{j}" for j in range(model_file.estimator.n_features_in_)]
        )
    if names is None:
        raise InputError(
            "this model was fitted without feature names, so its columns cannot be found "
            "in a file; fit it from a file or from a DataFrame"
        )
    return Design(targets=[], inputs=[str(n) for n in names])


def _check_inputs(source: Source, design: Design, with_targets: bool) -> None:
    need = list(design.inputs) + (list(design.targets) if with_targets else [])
    missing = [c for c in need if c not in source.columns]
    if missing:
        raise InputError(
            f"{source.name} lacks column(s) the model needs: {', '.join(missing)} "
            f"(it has: {', '.join(source.columns)}); rename or add them"
        )


# What predict and evaluate do with rows missing a feature: stop (error), leave them
# out (drop), or keep them with an empty prediction (exclude, R's na.exclude).
PREDICT_MISSING = ("error", "drop", "exclude")
EVALUATE_MISSING = ("error", "drop")


def replay_design(design: Design, missing: str, choices: Sequence[str] = PREDICT_MISSING) -> Design:
    """The fitted design applied to new data: the same columns and encodings (with or
    without the reference level, as fitted), unweighted, and the caller's rule for
    missing values, whatever the fit's was (``exclude`` reads as ``drop``: the caller
    puts the rows back)."""
    if missing not in choices:
        raise InputError(f"missing must be one of {', '.join(choices)}; got {missing!r}")
    return dataclasses.replace(
        design, weights=None, missing="error" if missing == "error" else "drop"
    )


@dataclass
class PredictResult:
    rows: int  # rows written
    dropped: int  # rows left out for missing values (missing="drop")
    columns: list[str]
    excluded: int = 0  # rows written with an empty prediction (missing="exclude")


def prediction_names(design: Design, n_targets: int, estimator: Any = None) -> list[str]:
    targets = design.targets or list(getattr(estimator, "target_names_", None) or [])
    if len(targets) != n_targets:
        targets = ["y"] if n_targets == 1 else [f"y{j}" for j in range(n_targets)]
    return [f"predicted_{t}" for t in targets]


def _predictions(estimator: Any, chunk: Any, n_targets: int, in_place: bool) -> Any:
    """(rows, targets) predictions of a chunk; with ``in_place``, rows left out for
    missing values come back as NaN at their place."""
    X = chunk.X
    pred = np.empty((0, n_targets))
    if X.shape[0]:
        pred = np.asarray(estimator.predict_array(X)).reshape(X.shape[0], -1)
    if in_place and chunk.kept is not None:
        full = np.full((chunk.kept.shape[0], n_targets), np.nan)
        full[chunk.kept] = pred
        return full
    return pred


def _output_names(
    source: Source, design: Design, keep: Sequence[str], n_targets: int, estimator: Any
) -> list[str]:
    """The prediction columns' names, checked against the columns to keep."""
    missing_keep = [c for c in keep if c not in source.columns]
    if missing_keep:
        raise InputError(f"{source.name}: no column {', '.join(map(repr, missing_keep))} to keep")
    names = prediction_names(design, n_targets, estimator)
    clash = [c for c in keep if c in names]
    if clash:
        raise InputError(
            f"--keep column {', '.join(map(repr, clash))} has the name of a prediction column"
        )
    return names


def predict_file(
    model_path: str,
    data_path: str,
    output: str | None,
    *,
    keep: Sequence[str] = (),
    delimiter: str | None = None,
    missing: str = "error",
    quiet: bool = False,
) -> PredictResult:
    """Predict for every row of ``data_path``; write CSV or Parquet (by ``output``'s
    extension; standard output as CSV when ``output`` is None), atomically. A row with
    a missing feature stops with an error, is left out (``missing="drop"``), or gets an
    empty prediction in its place (``missing="exclude"``), so output rows stay in line
    with input rows."""
    import sys

    import pyarrow as pa

    from ._files import atomic_path, check_output_path
    from .data.output import TableWriter
    from .persistence import load_model

    if output is not None:
        check_output_path(output, inputs=(data_path, model_path))
    mf = load_model(model_path)
    design = replay_design(_model_design(mf), missing)
    source = _open(data_path, delimiter)
    _check_inputs(source, design, with_targets=False)
    n_targets = np.atleast_2d(mf.estimator.coef_).shape[0]
    names = _output_names(source, design, keep, n_targets, mf.estimator)
    progress = Progress("predicting", total=source.row_count, enabled=not quiet)
    in_place = missing == "exclude"
    result = PredictResult(0, 0, [*keep, *names])

    def tables() -> Iterator[Any]:
        for chunk, raw in prefetched(chunks(source, design, with_targets=False, keep=keep)):
            pred = _predictions(mf.estimator, chunk, n_targets, in_place)
            rows_kept = None if in_place or chunk.kept is None else pa.array(chunk.kept)
            arrays = [
                raw.column(c) if rows_kept is None else raw.column(c).filter(rows_kept)
                for c in keep
            ]
            empty = np.isnan(pred[:, 0]) if in_place and chunk.kept is not None else None
            arrays += [pa.array(pred[:, j], mask=empty) for j in range(n_targets)]
            result.rows += pred.shape[0]
            result.excluded += chunk.dropped if in_place else 0
            result.dropped += 0 if in_place else chunk.dropped
            progress.update(chunk.X.shape[0] + chunk.dropped)
            yield pa.RecordBatch.from_arrays(arrays, names=[*keep, *names])

    try:
        if output is None:
            TableWriter(sys.stdout.buffer, "csv").write_all(tables())
        else:
            with atomic_path(output) as tmp:
                TableWriter(tmp, TableWriter.kind_of(output)).write_all(tables())
    finally:
        progress.close()
    return result


def evaluate_file(
    model_path: str,
    data_path: str,
    *,
    delimiter: str | None = None,
    missing: str = "error",
    quiet: bool = False,
) -> dict[str, Any]:
    """MSE, RMSE, MAE, R² and n per target of a model on the data in ``data_path``;
    rows missing a value stop with an error, or are left out (``missing="drop"``)."""
    from .persistence import load_model
    from .stats.metrics import StreamingMetrics

    mf = load_model(model_path)
    design = replay_design(_model_design(mf), missing, EVALUATE_MISSING)
    if not design.targets:
        raise InputError("this model does not record its target column; evaluate needs it")
    source = _open(data_path, delimiter)
    _check_inputs(source, design, with_targets=True)
    metrics = StreamingMetrics(len(design.targets))
    progress = Progress("evaluating", total=source.row_count, enabled=not quiet)
    dropped = 0
    try:
        for chunk, _ in prefetched(chunks(source, design)):
            if chunk.X.shape[0]:
                pred = np.asarray(mf.estimator.predict_array(chunk.X))
                metrics.update(chunk.Y, pred.reshape(chunk.X.shape[0], -1))
            dropped += chunk.dropped
            progress.update(chunk.X.shape[0] + chunk.dropped)
    finally:
        progress.close()
    if metrics.n == 0:
        raise InputError(f"{source.name}: no rows to evaluate on")
    out = metrics.result(design.targets)
    out["dropped"] = dropped
    return out


def describe_model(model_path: str) -> dict[str, Any]:
    """What the model is and how it was fitted, as a JSON-ready dict. Reads the file
    with numpy alone: describing a model does not load torch."""
    from .persistence import read_model

    contents = read_model(model_path)
    meta = contents.meta
    coef, intercept = contents.arrays["coef"], contents.arrays["intercept"]
    k, p = coef.shape
    design = contents.design or Design(
        targets=[], inputs=meta["feature_names"] or [f"x{j}" for j in range(p)]
    )
    fitted_targets = meta["fitted"].get("target_names_")
    targets = design.targets or fitted_targets or [f"y{j}" for j in range(k)]
    features = design.feature_names
    return {
        "model": meta["estimator"],
        "params": {name: v for name, v in meta["params"].items() if _plain(v)},
        "targets": targets,
        "features": features,
        "one_hot": design.one_hot,
        "coefficients": {
            t: {
                "intercept": float(intercept[j]),
                **{f: float(coef[j, i]) for i, f in enumerate(features)},
            }
            for j, t in enumerate(targets)
        },
        **meta["info"],
    }


def _plain(value: Any) -> bool:
    return (
        value is None
        or isinstance(value, (str, int, float, bool))
        and not (isinstance(value, float) and math.isnan(value))
    )
