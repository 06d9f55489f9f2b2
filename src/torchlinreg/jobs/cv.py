"""``fit --cv K``: K-fold cross-validation over a file read once.

Each row goes to the least-squares state of its fold as the file streams by (its fold a
seeded hash of its row number in the file, or the value of ``--fold-column``); the CV
curve and the final fit then come from the fold states alone (see docs/cv.md). Under
``torchrun`` each rank folds its share (whose rows keep their numbers in the whole
file, so the folds are those of one process) and the fold states are merged across
the ranks. ``--ridge-path`` and
``--lasso-path`` choose the penalty; ``--cv`` alone measures least squares' CV error
(to compare feature sets). The model kept is the plain estimator at the chosen penalty
(``Ridge``, ``Lasso``, ``LinearRegression``), fitted from the state of every row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from .passes import too_few_rows

if TYPE_CHECKING:
    from ..data.design import Design
    from ..data.sources import Source
    from .fit import FitOptions
    from .passes import FitRows

PATHS = ("ridge", "lasso")
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 13))


def check_cv_options(options: FitOptions) -> None:
    """The cross-validation options, checked together with the others."""
    if options.cv is None:
        given = [flag for flag, value in (("--ridge-path", options.cv_path == "ridge"),
                 ("--lasso-path", options.cv_path == "lasso"),
                 ("--fold-column", options.fold_column), ("--alphas", options.cv_alphas))
                 if value]  # fmt: skip
        if given:
            raise InputError(f"{', '.join(given)}: for cross-validation only; add --cv K")
        return
    if options.cv_path not in (None, *PATHS):
        raise InputError(f"unknown penalty path {options.cv_path!r}; use ridge or lasso")
    clashes = [flag for flag, value in (("--method gd", options.method == "gd"),
               ("--ridge", options.ridge is not None), ("--summary/--cov-type", options.summary),
               ("--cluster", options.cluster)) if value]  # fmt: skip
    if clashes:
        raise InputError(
            f"--cv chooses the model by cross-validation; drop {', '.join(clashes)} "
            "(fit the chosen model without --cv for those)"
        )
    _check_alphas(options)
    fold = options.fold_column
    if fold is not None:
        if options.formula is not None:
            raise InputError("--fold-column does not go with --formula yet; use --seed folds")
        if fold in options.targets or fold == options.weights or fold in (options.features or []):
            raise InputError(f"--fold-column {fold!r} is also a target, weight or feature")
        if fold not in options.exclude:
            options.exclude = [*options.exclude, fold]  # labels, not a feature


def _check_alphas(options: FitOptions) -> None:
    alphas = options.cv_alphas
    if alphas is None:
        return
    if options.cv_path is None:
        raise InputError("--alphas goes with --ridge-path or --lasso-path")
    if isinstance(alphas, int) and options.cv_path == "ridge":
        raise InputError("--ridge-path takes the penalties themselves: --alphas 0.1,1,10")
    if not isinstance(alphas, int) and any(not 0 <= a < float("inf") for a in alphas):
        raise InputError(f"--alphas must be finite and >= 0; got {alphas}")


def estimator(options: FitOptions) -> Any:
    """The cross-validating estimator the options describe."""
    from ..models.cv import LassoCV, RidgeCV

    if options.cv_path == "lasso":
        alphas = 100 if options.cv_alphas is None else options.cv_alphas
        return LassoCV(alphas=alphas, cv=options.cv, fit_intercept=options.fit_intercept)
    alphas = (0.0,) if options.cv_path is None else (options.cv_alphas or RIDGE_ALPHAS)
    return RidgeCV(alphas, cv=options.cv, fit_intercept=options.fit_intercept)


def fit_cv(source: Source, design: Design, options: FitOptions, rows: FitRows, group: Any) -> Any:
    """Cross-validate on one pass over the file (each rank over its share, with
    ``group``); the final model, with ``cv_info_`` (:func:`cv_info`) for the report and
    the model file."""
    if len(design.targets) != 1:
        raise InputError("--cv takes one target; give one --target")
    assert options.cv is not None
    model = estimator(options)
    states = _fold_states(source, design, options, rows, group)
    if states.n_folds != options.cv:
        raise InputError(
            f"--fold-column {options.fold_column!r} holds {states.n_folds} fold labels but "
            f"--cv is {options.cv}; give --cv {states.n_folds}"
        )
    if group is None:
        model.fit_fold_states(states, feature_names=design.feature_names)
    else:
        from ..models._cv_distributed import select

        select(group, model, states, design.feature_names)
    final = _final(model, options, design)
    final.cv_info_ = cv_info(model, options)
    return final


def _fold_states(
    source: Source, design: Design, options: FitOptions, rows: FitRows, group: Any
) -> Any:
    """The fold states of the file (of every rank's share merged, with ``group``)."""
    from ..models._fold_states import fold_stream, partition_states

    assert options.cv is not None
    k, seed, fit_intercept = options.cv, options.cv_seed, options.fit_intercept
    column = options.fold_column

    def fold() -> Any:
        items = _labelled(source, design, column, rows) if column else _numbered(
            source, design, rows
        )  # fmt: skip
        return fold_stream(items, k, seed, fit_intercept, max_folds=k)

    if group is None:
        found = fold()
        if rows.n_params and rows.rows < rows.n_params:
            raise too_few_rows(source, rows.rows, rows.dropped, rows.n_params)
        return partition_states(found, k)
    from ..models._cv_distributed import stream_fold_states

    return stream_fold_states(group, group.agree(fold), k, fit_intercept, max_folds=k)


def _numbered(source: Source, design: Design, rows: FitRows) -> Iterator[tuple[Any, Any]]:
    """The fitting pass with each kept row's number in the file (a rank's share keeps
    the numbers of the whole), counted as :class:`~.passes.FitRows` counts."""
    from ..data.design import chunks
    from ..data.prefetch import prefetched
    from ..models._folds import RowNumbers

    rows.passes.begin("fitting")
    rows.reads += 1
    for chunk, _ in prefetched(chunks(source, design)):
        rows.rows += chunk.X.shape[0]
        rows.dropped += chunk.dropped
        numbers = (
            np.arange(chunk.start, chunk.start + len(chunk.X))
            if chunk.kept is None
            else chunk.start + np.flatnonzero(chunk.kept)
        )
        yield chunk.as_solver_chunk(), RowNumbers(numbers)


def _labelled(
    source: Source, design: Design, column: str, rows: FitRows
) -> Iterator[tuple[Any, np.ndarray]]:
    """The fitting pass with each kept row's fold label from ``column`` (counted as
    :class:`~.passes.FitRows` counts); a kept row must have one."""
    from ..data.design import chunks, require_columns

    require_columns(source, [column], "fold")
    rows.passes.begin("fitting")
    rows.reads += 1
    for chunk, raw in chunks(source, design, keep=[column]):
        rows.rows += chunk.X.shape[0]
        rows.dropped += chunk.dropped
        values = raw.column(column)
        labels = values.to_numpy(zero_copy_only=False)
        missing = values.is_null().to_numpy(zero_copy_only=False)
        if chunk.kept is not None:
            labels, missing = labels[chunk.kept], missing[chunk.kept]
        if missing.any():
            row = chunk.start + int(np.flatnonzero(missing)[0])
            raise InputError(
                f"{source.where(row)}, column {column!r}: the fold label is missing; "
                "fill it in or remove the row"
            )
        yield chunk.as_solver_chunk(), labels


def _final(model: Any, options: FitOptions, design: Design) -> Any:
    """The plain estimator at the chosen penalty, fitted from the state of every row."""
    from ..models.linear import LinearRegression, Ridge

    state, names = model.state_, design.feature_names
    if options.cv_path == "lasso":
        from ..models.penalized import Lasso

        return Lasso(alpha=model.alpha_, fit_intercept=options.fit_intercept).fit_state(
            state, feature_names=names
        )
    final: Any = (
        Ridge(alpha=model.alpha_, fit_intercept=options.fit_intercept)
        if options.cv_path == "ridge"
        else LinearRegression(fit_intercept=options.fit_intercept)
    )
    final.feature_names_in_ = np.asarray(names, dtype=object)
    return final._finish(state, final._solve(state), True, False, "qr")


def cv_info(model: Any, options: FitOptions) -> dict[str, Any]:
    """What the report and the model file keep of the cross-validation: the folds, the
    curve (each alpha's MSE on each fold, their mean and standard deviation over the
    folds) and the choice."""
    path = model.mse_path_
    folds = (
        f"column {options.fold_column}"
        if options.fold_column
        else f"hashed row numbers, seed {options.cv_seed}"
    )
    return {
        "path": options.cv_path or "none",
        "n_folds": int(model.n_folds_),
        "folds": folds,
        "alphas": [float(a) for a in model.alphas_],
        "mse_mean": [float(v) for v in path.mean(axis=1)],
        "mse_std": [float(v) for v in path.std(axis=1)],
        "mse_path": path.tolist(),
        "alpha": float(model.alpha_),
        "mse": float(-model.best_score_),
    }
