"""``predict`` and ``evaluate``'s work: a saved model applied to new data, its fitted
design replayed on the file's columns by name. Under ``torchrun`` (a ``group``) each
rank reads its share; rank 0 writes every rank's predictions in the input's order
(:mod:`.collect`), and evaluate's sums are combined over the ranks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
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
    model_path: str,
    data_path: str,
    delimiter: str | None,
    missing: str,
    with_targets: bool,
    group: Any = None,
) -> tuple[Any, Design, Source]:
    """The saved estimator, its design as replayed on new data, and the data (this
    rank's share with ``group``), checked to hold the columns the model reads (and its
    targets, ``with_targets``). Every rank reads the model file."""
    from ..persistence import load_model

    def model() -> tuple[Any, Design]:
        mf = load_model(model_path)
        choices = EVALUATE_MISSING if with_targets else PREDICT_MISSING
        design = replay_design(_model_design(mf), missing, choices)
        if with_targets and not design.targets:
            raise InputError("this model does not record its target column; evaluate needs it")
        return mf.estimator, design

    estimator, design = model() if group is None else group.agree(model)
    source = open_data(data_path, delimiter, group)
    spec = getattr(estimator, "formula_", None)
    if spec is not None:  # the file's columns through the model's formula
        from ..formula.source import formula_source

        source = formula_source(source, spec, missing, with_targets)
    _check_inputs(source, design, with_targets)  # the same columns on every rank
    return estimator, design, source


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
    group: Any = None,
) -> tuple[PredictResult, Iterator[Any]]:
    """The predictions for every row of ``data_path`` as record batches (the ``keep``
    columns, then one column per target), and their counts, filled in as the batches
    are read. A row with a missing feature stops with an error, is left out
    (``missing="drop"``), or gets an empty prediction in its place
    (``missing="exclude"``). Kept CSV columns are the text as written, or with
    ``typed`` in the type the file's numbers and booleans are read as (for JSON). With
    ``group``, the batches and counts are this rank's share's."""
    import pyarrow as pa

    estimator, design, source = _model_on(model_path, data_path, delimiter, missing, False, group)
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
    group: Any = None,
) -> PredictResult:
    """Predict for every row of ``data_path`` (see :func:`predicted_batches`); write CSV
    or Parquet (by ``output``'s extension; standard output as CSV when ``output`` is
    None), atomically, so output rows stay in line with input rows. With ``group``,
    rank 0 writes every rank's rows once all have succeeded."""
    import sys

    from .._files import atomic_path, check_output_path
    from ..data.output import TableWriter

    if output is not None:
        _on_rank_0(group, lambda: check_output_path(output, inputs=(data_path, model_path)))

    def write(batches: Iterator[Any]) -> None:
        if output is None:
            TableWriter(sys.stdout.buffer, "csv").write_all(batches)
        else:
            with atomic_path(output) as tmp:
                TableWriter(tmp, TableWriter.kind_of(output)).write_all(batches)

    return predict_with(
        write,
        model_path,
        data_path,
        keep=keep,
        delimiter=delimiter,
        missing=missing,
        quiet=quiet,
        group=group,
    )


def predict_with(
    write: Callable[[Iterator[Any]], None],
    model_path: str,
    data_path: str,
    *,
    group: Any = None,
    **options: Any,
) -> PredictResult:
    """The predictions of :func:`predicted_batches` (``options`` are its keywords) given
    to ``write``; with ``group``, every rank's, in rank order (the input's row order),
    on rank 0 once every rank has succeeded, and counted over every rank."""
    from .collect import Spill, collect, summed

    result, batches = predicted_batches(model_path, data_path, group=group, **options)
    if group is None:
        write(batches)
        return result
    with Spill() as spill:
        group.agree(lambda: spill.extend(batches))
        counts = summed(group, {"rows": result.rows, "dropped": result.dropped,
                                "excluded": result.excluded})  # fmt: skip
        collect(group, spill, write if group.rank == 0 else _nowhere)
    return PredictResult(counts["rows"], counts["dropped"], result.columns, counts["excluded"])


def _nowhere(batches: Iterator[Any]) -> None:
    """Where the other ranks' output goes: to rank 0, by :func:`.collect.collect`."""


def _on_rank_0(group: Any, step: Callable[[], None]) -> None:
    """A check of rank 0's output, agreed on by every rank."""
    if group is None:
        step()
    else:
        group.agree(lambda: step() if group.rank == 0 else None)


def evaluate_file(
    model_path: str,
    data_path: str,
    *,
    delimiter: str | None = None,
    missing: str = "error",
    quiet: bool = False,
    group: Any = None,
) -> dict[str, Any]:
    """MSE, RMSE, MAE, R² and n per target of a model on the data in ``data_path``;
    rows missing a value stop with an error, or are left out (``missing="drop"``).
    With ``group``, each rank's share's sums are combined in rank order."""
    from ..stats.metrics import StreamingMetrics

    estimator, design, source = _model_on(model_path, data_path, delimiter, missing, True, group)

    def evaluated() -> tuple[Any, int]:
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
        return metrics, dropped

    if group is None:
        metrics, dropped = evaluated()
    else:
        parts = group.gather_objects(group.agree(evaluated))
        metrics, dropped = merged_metrics([m for m, _ in parts]), sum(d for _, d in parts)
    if metrics.n == 0:
        raise InputError(f"{source.name}: no rows to evaluate on")
    out = metrics.result(design.targets)
    out["dropped"] = dropped
    return out


def merged_metrics(parts: Sequence[Any]) -> Any:
    """One :class:`~torchlinreg.stats.metrics.StreamingMetrics` of consecutive parts of
    the data (ranks' shares), merged in order."""
    from ..stats.metrics import StreamingMetrics

    out = StreamingMetrics(len(parts[0].sse))
    for part in parts:
        out.merge(part)
    return out
