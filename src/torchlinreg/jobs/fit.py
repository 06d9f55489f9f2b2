"""``fit``'s work: a model fitted to a file, streamed (read twice if refinement is due,
once more for a robust covariance), with its statistics and how it was fitted."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.design import Design, plan, require_columns
from ..data.prefetch import one_core_for_reading
from ..data.sources import Source
from ..errors import InputError, RankDeficientWarning
from ..progress import Progress
from .common import open_data
from .passes import FitRows, Passes
from .summary import summaries

METHODS = ("exact", "gd")


@dataclass
class FitOptions:
    """What to fit and how, checked together on construction (the one place: the
    command line only maps its arguments here). Naming ``cluster`` asks for the cluster
    covariance; a robust ``cov_type`` asks for the summary."""

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
    device: str = "cpu"  # where the fit runs, either method
    gd: dict[str, Any] = field(default_factory=dict)  # GDRegressor's other keyword options
    summary: bool = False  # compute the statistical summary (exact method)
    cov_type: str = "nonrobust"
    cluster: str | None = None  # column of cluster labels for cov_type "cluster"
    level: float = 0.95

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"unknown method {self.method!r}; use 'exact' or 'gd'")
        if self.cluster is not None:
            if self.cov_type not in ("nonrobust", "cluster"):
                raise InputError("--cluster goes with --cov-type cluster (or on its own)")
            self.cov_type = "cluster"
        elif self.cov_type == "cluster":
            raise InputError("--cov-type cluster needs --cluster COL, the column of group labels")
        self.summary = self.summary or self.cov_type != "nonrobust"
        if self.method == "gd" and self.ridge is not None:
            raise InputError("--ridge works with the exact method; drop --method gd")
        if self.method == "gd" and self.summary:
            raise InputError(
                "the statistical summary (--summary, --cov-type, --cluster, --level) needs "
                "the exact method; drop --method gd"
            )
        from ..devices import resolve_device

        resolve_device(self.device)  # a device that holds no data or is absent: refused now
        if self.summary:  # refused now, not after the fit
            from ..stats.inference import check_cov_type, check_level

            check_cov_type(self.cov_type)
            check_level(self.level)

    @property
    def robust(self) -> bool:
        """A robust covariance, which reads the data once more."""
        return self.cov_type != "nonrobust"


@dataclass
class FitResult:
    estimator: Any
    design: Design
    stats: dict[str, Any]
    rows: int  # rows fitted, zero-weight rows included (``info["n"]`` counts observations)
    dropped: int
    seconds: float
    skipped_text: list[str]
    info: dict[str, Any]


def fit_file(path: str, options: FitOptions, *, quiet: bool = False) -> FitResult:
    """Fit a model to the data in ``path``. ``seconds`` counts from opening the file to
    the finished summary: reading, fitting and statistics, not the program's start-up."""
    from ..stats.fit import fit_statistics

    if options.robust and path == "-":  # refused before standard input is read
        raise InputError(
            f"--cov-type {options.cov_type} reads the data twice; standard input cannot "
            "be: write the data to a file first"
        )
    _import_libraries()  # the clock measures the work, not the imports
    started = time.perf_counter()
    source = open_data(path, options.delimiter)
    progress = Progress("reading", total=source.row_count, enabled=not quiet)
    passes = Passes(source, progress, planned=1 + bool(options.one_hot) + options.robust)
    try:
        if options.one_hot:
            passes.begin("categories of --one-hot columns")
        design, skipped = _plan(source, options)
        rows = FitRows(source, design, passes, len(design.feature_names) + options.fit_intercept)
        model, state = _fit(source, design, options, rows)
        stats = fit_statistics(state, model.coef_, model.intercept_)
        info = _fit_info(path, options, rows, model, state, stats)
        if options.summary:
            if options.robust:
                passes.begin(f"{options.cov_type} covariance")
            info["summary"] = [s.to_dict() for s in summaries(source, design, options, model)]
    finally:
        progress.close()
    return FitResult(
        estimator=model,
        design=design,
        stats=stats,
        rows=rows.rows,
        dropped=rows.dropped,
        seconds=time.perf_counter() - started,
        skipped_text=skipped,
        info=info,
    )


def _import_libraries() -> None:
    """torch (with the estimators) and pyarrow's readers take a second or two to import."""
    import pyarrow.csv  # noqa: F401
    import pyarrow.dataset  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    from ..models import gd, linear  # noqa: F401


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
    if options.cluster is not None:
        require_columns(source, [options.cluster], "cluster")
    return design, skipped


def _fit(source: Source, design: Design, options: FitOptions, rows: FitRows) -> tuple[Any, Any]:
    """The estimator fitted on the rows, and a state of the data for fit statistics.
    Dependent columns are refused; the library's other warnings are passed on."""
    with warnings.catch_warnings(record=True) as caught, one_core_for_reading():
        warnings.simplefilter("always")
        if options.method == "exact":
            model = _fit_exact(source, design, options, rows)
            state = model.state_
        else:
            model, state = _fit_gd(design, options, rows)
    _refuse_aliased(source, model)
    for w in caught:
        if not issubclass(w.category, RankDeficientWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model, state


def _fit_exact(source: Source, design: Design, options: FitOptions, rows: FitRows) -> Any:
    """Least squares (ridge with ``options.ridge``) on the stream; a file is read again
    if refinement is due, standard input cannot be."""
    from ..models.linear import LinearRegression, Ridge

    model: Any
    fit_intercept, device = options.fit_intercept, options.device
    if options.ridge is not None:
        model = Ridge(alpha=options.ridge, fit_intercept=fit_intercept, device=device)
    else:
        model = LinearRegression(fit_intercept=fit_intercept, device=device)
    model.fit_chunks(rows if source.reiterable else rows(), feature_names=design.feature_names)
    model.target_names_ = list(design.targets)
    return model


def _fit_gd(design: Design, options: FitOptions, rows: FitRows) -> tuple[Any, Any]:
    """Gradient descent on every row in memory (each epoch reads them all), and the
    rows' least-squares state for the fit statistics."""
    from ..models.gd import GDRegressor
    from ..solvers.state import LeastSquaresState

    parts = list(rows())
    X = np.concatenate([p.X.numpy() for p in parts])
    y = np.concatenate([p.Y.numpy() for p in parts])
    y = y[:, 0] if y.shape[1] == 1 else y
    w = np.concatenate([p.sample_weight.numpy() for p in parts]) if design.weights else None
    model: Any = GDRegressor(
        fit_intercept=options.fit_intercept, device=options.device, **options.gd
    ).fit(X, y, w)
    model.feature_names_in_ = np.asarray(design.feature_names, dtype=object)
    model.target_names_ = list(design.targets)
    k = 1 if y.ndim == 1 else y.shape[1]
    state = LeastSquaresState(X.shape[1], k, fit_intercept=options.fit_intercept)
    return model, state.update(X, y, w)


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
    path: str, options: FitOptions, rows: FitRows, model: Any, state: Any, stats: dict[str, Any]
) -> dict[str, Any]:
    """How the model was fitted, as kept in the model file. ``n`` counts observations,
    the rows of positive weight (as the statistical summary does, and R's ``lm``)."""
    info: dict[str, Any] = {
        "method": options.method,
        "source": os.path.basename(path) if path != "-" else "<stdin>",
        "n": state.n_observations,
        "dropped": rows.dropped,
        "fit": stats,
        "options": {
            "ridge": options.ridge,
            "fit_intercept": options.fit_intercept,
            "missing": options.missing,
            "device": options.device,
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
