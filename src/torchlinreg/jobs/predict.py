"""``predict`` and ``evaluate``'s work: a saved model applied to new data, its fitted
design replayed on the file's columns by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.design import Design, DesignChunk, chunks, require_columns
from ..data.prefetch import prefetched
from ..data.sources import Source
from ..errors import InputError
from ..progress import Progress
from .common import open_data

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


def _model_design(model_file: Any) -> Design:
    """The design a saved model was fitted with; a model fitted on an array has none,
    and one fitted from a DataFrame has its feature names only."""
    if model_file.design is not None:
        return model_file.design
    names = getattr(model_file.estimator, "feature_names_in_", None)
    if names is None:
        raise InputError(
            "this model was fitted without feature names, so its columns cannot be found "
            "in a file; fit it from a file or from a DataFrame"
        )
    return Design(targets=[], inputs=[str(n) for n in names])


def _check_inputs(source: Source, design: Design, with_targets: bool) -> None:
    """Refuse a source that lacks a column the model reads (its targets too when
    ``with_targets``), listing the columns it has."""
    require_columns(source, design.inputs, "feature")
    if with_targets:
        require_columns(source, design.targets, "target")


def _model_on(
    model_path: str, data_path: str, delimiter: str | None, missing: str, with_targets: bool
) -> tuple[Any, Design, Source]:
    """The saved estimator, its design as replayed on new data, and the data, checked
    to hold the columns the model reads (and its targets, ``with_targets``)."""
    from ..persistence import load_model

    mf = load_model(model_path)
    choices = EVALUATE_MISSING if with_targets else PREDICT_MISSING
    design = replay_design(_model_design(mf), missing, choices)
    if with_targets and not design.targets:
        raise InputError("this model does not record its target column; evaluate needs it")
    source = open_data(data_path, delimiter)
    _check_inputs(source, design, with_targets)
    return mf.estimator, design, source


@dataclass
class PredictResult:
    rows: int  # rows written
    dropped: int  # rows left out for missing values (missing="drop")
    columns: list[str]
    excluded: int = 0  # rows written with an empty prediction (missing="exclude")


def prediction_names(design: Design, n_targets: int, estimator: Any = None) -> list[str]:
    """``predicted_<target>`` for each target (``predicted_y`` when the names are not
    known)."""
    targets = design.targets or list(getattr(estimator, "target_names_", None) or [])
    if len(targets) != n_targets:
        targets = ["y"] if n_targets == 1 else [f"y{j}" for j in range(n_targets)]
    return [f"predicted_{t}" for t in targets]


def _output_names(
    source: Source, design: Design, keep: Sequence[str], n_targets: int, estimator: Any
) -> list[str]:
    """The prediction columns' names, checked against the columns to keep: each kept
    once (a repeated name would make a table no reader takes back)."""
    require_columns(source, keep, "--keep")
    repeated = sorted({c for c in keep if list(keep).count(c) > 1})
    if repeated:
        raise InputError(
            f"--keep names {', '.join(map(repr, repeated))} more than once; name each column once"
        )
    names = prediction_names(design, n_targets, estimator)
    clash = [c for c in keep if c in names]
    if clash:
        raise InputError(
            f"--keep column {', '.join(map(repr, clash))} has the name of a prediction column"
        )
    return names


def _predictions(estimator: Any, chunk: DesignChunk, n_targets: int, in_place: bool) -> Any:
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


def _output_batch(
    pred: Any, chunk: DesignChunk, raw: Any, keep: Sequence[str], in_place: bool
) -> list[Any]:
    """The output columns of a chunk: the kept input columns (of the rows written)
    verbatim, then one column per target, empty where a row had no prediction."""
    import pyarrow as pa

    rows_kept = None if in_place or chunk.kept is None else pa.array(chunk.kept)
    arrays = [raw.column(c) if rows_kept is None else raw.column(c).filter(rows_kept) for c in keep]
    empty = np.isnan(pred[:, 0]) if in_place and chunk.kept is not None else None
    return arrays + [pa.array(pred[:, j], mask=empty) for j in range(pred.shape[1])]


def predicted_batches(
    model_path: str,
    data_path: str,
    *,
    keep: Sequence[str] = (),
    delimiter: str | None = None,
    missing: str = "error",
    quiet: bool = False,
    typed: bool = False,
) -> tuple[PredictResult, Iterator[Any]]:
    """The predictions for every row of ``data_path`` as record batches (the ``keep``
    columns, then one column per target), and their counts, filled in as the batches
    are read. A row with a missing feature stops with an error, is left out
    (``missing="drop"``), or gets an empty prediction in its place
    (``missing="exclude"``). Kept CSV columns are the text as written, or with
    ``typed`` in the type the file's numbers and booleans are read as (for JSON)."""
    import pyarrow as pa

    estimator, design, source = _model_on(model_path, data_path, delimiter, missing, False)
    n_targets = np.atleast_2d(estimator.coef_).shape[0]
    columns = [*keep, *_output_names(source, design, keep, n_targets, estimator)]
    in_place = missing == "exclude"
    result = PredictResult(0, 0, columns)

    def batches() -> Iterator[Any]:
        progress = Progress("predicting", total=source.row_count, enabled=not quiet)
        try:
            for chunk, raw in prefetched(chunks(source, design, with_targets=False, keep=keep)):
                pred = _predictions(estimator, chunk, n_targets, in_place)
                result.rows += pred.shape[0]
                result.excluded += chunk.dropped if in_place else 0
                result.dropped += 0 if in_place else chunk.dropped
                progress.update(chunk.X.shape[0] + chunk.dropped)
                arrays = _output_batch(pred, chunk, raw, keep, in_place)
                if typed:
                    arrays[: len(keep)] = map(source.typed, keep, arrays[: len(keep)])
                yield pa.RecordBatch.from_arrays(arrays, names=columns)
        finally:
            progress.close()

    return result, batches()


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
    """Predict for every row of ``data_path`` (see :func:`predicted_batches`); write CSV
    or Parquet (by ``output``'s extension; standard output as CSV when ``output`` is
    None), atomically, so output rows stay in line with input rows."""
    import sys

    from .._files import atomic_path, check_output_path
    from ..data.output import TableWriter

    if output is not None:
        check_output_path(output, inputs=(data_path, model_path))
    result, batches = predicted_batches(
        model_path, data_path, keep=keep, delimiter=delimiter, missing=missing, quiet=quiet
    )
    if output is None:
        TableWriter(sys.stdout.buffer, "csv").write_all(batches)
    else:
        with atomic_path(output) as tmp:
            TableWriter(tmp, TableWriter.kind_of(output)).write_all(batches)
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
    from ..stats.metrics import StreamingMetrics

    estimator, design, source = _model_on(model_path, data_path, delimiter, missing, True)
    metrics = StreamingMetrics(len(design.targets))
    progress = Progress("evaluating", total=source.row_count, enabled=not quiet)
    dropped = 0
    try:
        for chunk, _ in prefetched(chunks(source, design)):
            if chunk.X.shape[0]:
                pred = np.asarray(estimator.predict_array(chunk.X))
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
