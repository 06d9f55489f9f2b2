"""``fit``'s work: a model fitted to a file, streamed (read twice if refinement is due,
once more for a robust covariance), with its statistics and how it was fitted. Under
``torchrun`` (a ``group``) each rank reads its share of the file, rank 0 decides the
columns, the one-hot categories are found over every share, and the library's
distributed fit and summary give every rank the same model."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.design import Design, plan, require_columns
from ..data.prefetch import one_core_for_reading
from ..data.sources import CsvSource, Source
from ..errors import InputError, RankDeficientWarning
from ..progress import Progress
from .common import open_data
from .econometrics import cluster_columns
from .passes import FitRows, Passes, too_few_rows
from .penalized import chosen as penalized_method
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
    # (or "CRV3"); "a,b": two columns, two-way clustering (jobs/econometrics.py)
    lags: int | None = None  # HAC's lag (None: automatic)
    tests: list[str] = field(default_factory=list)  # --test restrictions, F-tested
    level: float = 0.95
    checkpoint: str | None = None  # gradient training: where checkpoints go
    resume: str | None = None  # gradient training: the checkpoint to continue from
    formula: str | None = None  # "y ~ x1 + C(g)": the columns, targets and intercept
    absorb: list[str] = field(default_factory=list)  # --absorb: fixed effects (jobs/absorb.py)
    # Cross-validation (jobs/cv.py): --cv K, --ridge-path/--lasso-path, --alphas,
    # --fold-column (else hashed row numbers with --seed)
    cv: int | None = None
    cv_path: str | None = None
    cv_alphas: Any = None
    fold_column: str | None = None
    cv_seed: int = 0
    # Penalised and robust fits (jobs/penalized.py): --lasso ALPHA, --elasticnet ALPHA
    # with --l1-ratio, --huber EPSILON with --alpha (Huber's l2 penalty)
    lasso: float | None = None
    elasticnet: float | None = None
    l1_ratio: float | None = None
    huber: float | None = None
    huber_alpha: float | None = None

    def __post_init__(self) -> None:
        _check_formula_options(self)
        if self.method not in METHODS:
            raise InputError(f"unknown method {self.method!r}; use 'exact' or 'gd'")
        if self.cluster is not None:
            if self.cov_type not in ("nonrobust", "cluster", "CRV3"):
                raise InputError("--cluster goes with --cov-type cluster or CRV3 (or on its own)")
            self.cov_type = "cluster" if self.cov_type == "nonrobust" else self.cov_type
        elif self.cov_type == "cluster":
            raise InputError("--cov-type cluster needs --cluster COL, the column of group labels")
        from .absorb import check_absorb_options

        check_absorb_options(self)
        from .econometrics import check as check_econometrics

        check_econometrics(self)
        self.summary = self.summary or self.cov_type != "nonrobust"
        from .penalized import check_penalized_options

        check_penalized_options(self)
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
        from .cv import check_cv_options

        check_cv_options(self)

    @property
    def robust(self) -> bool:
        """A robust covariance, which reads the data once more."""
        return self.cov_type != "nonrobust"


def _check_formula_options(options: FitOptions) -> None:
    """A formula names the targets, features, encodings and intercept itself."""
    if options.formula is None:
        if not options.targets:
            raise InputError("give the target column (--target COL) or a formula (--formula)")
        return
    given = [flag for flag, value in (("--target", options.targets),
             ("--features", options.features), ("--exclude", options.exclude),
             ("--one-hot", options.one_hot), ("--no-intercept", not options.fit_intercept))
             if value]  # fmt: skip
    if given:
        raise InputError(
            f"--formula names the columns itself; drop {', '.join(given)} (in a formula: "
            "C(g) encodes a column, '- 1' removes the intercept)"
        )


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


def fit_file(
    path: str, options: FitOptions, *, quiet: bool = False, group: Any = None
) -> FitResult:
    """Fit a model to the data in ``path``. ``seconds`` counts from opening the file to
    the finished summary: reading, fitting and statistics, not the program's start-up.

    With ``group`` (a :class:`~torchlinreg.distributed.group.Group`: the ranks of
    ``torchrun``), every rank calls this, reads its share, and gets the same result;
    ``rows`` and ``dropped`` count every rank's rows."""
    from ..stats.fit import fit_statistics

    if options.absorb and group is not None:
        raise InputError(
            "fixed effects (--absorb, or a formula's '|') are absorbed in one process (the "
            "passes over the file are not split across ranks); it does not run under "
            "torchrun: fit in one process"
        )
    if options.robust and path == "-" and not options.absorb:  # refused before reading
        raise InputError(
            f"--cov-type {options.cov_type} reads the data twice; standard input cannot "
            "be: write the data to a file first"
        )
    if group is not None and options.method == "gd":
        raise InputError(
            "--method gd does not run under torchrun yet; use the exact method (the "
            "default), or run gradient descent in one process"
        )
    _import_libraries()  # the clock measures the work, not the imports
    started = time.perf_counter()
    source = open_data(path, options.delimiter, group)
    progress = Progress("reading", total=source.row_count, enabled=not quiet)
    passes = Passes(source, progress, planned=1 + bool(options.one_hot) + options.robust)
    spec = None
    try:
        if options.formula is not None:
            source, design, spec = _formula_plan(source, options, passes, group)
            skipped: list[str] = []
        else:
            if options.one_hot:
                passes.begin("categories of --one-hot columns")
            design, skipped = _plan(source, options, group)
        n_params = len(design.feature_names) + options.fit_intercept
        # A rank's share says nothing of the whole's row count, unless it is the whole.
        whole = group is None or isinstance(source, CsvSource)
        rows = FitRows(source, design, passes, n_params if whole else 0)
        counted = _Counted(source, rows, n_params, group)
        counted.known_enough()
        try:
            model, state = _fit(source, design, options, rows, group)
        except InputError:
            counted.enough()  # fewer rows than parameters over all ranks says it best
            raise
        counted.enough()
        if spec is not None:
            model.formula_ = spec  # kept in the model file, applied by predict
            if options.absorb:  # (a formula's '| firm + year')
                spec.drop_absorbed(model.absorbed_.dropped)
        stats = fit_statistics(state, model.coef_, model.intercept_)
        if options.absorb:
            from .absorb import absorbed_statistics

            stats = absorbed_statistics(stats, model)
        info = _fit_info(path, options, counted.dropped, model, state, stats, group)
        if options.summary:
            if options.robust and not options.absorb:  # absorbed: computed at fit time
                passes.begin(f"{options.cov_type} covariance")
            if options.absorb:  # its covariance was computed at fit time
                one = model.summary(level=options.level)
                found = one if isinstance(one, list) else [one]
            else:
                found = summaries(source, design, options, model, group)
            info["summary"] = [s.to_dict() for s in found]
            if options.tests:
                from .econometrics import restriction_tests

                info["tests"] = restriction_tests(found, options.tests)
    finally:
        progress.close()
    return FitResult(
        estimator=model,
        design=design,
        stats=stats,
        rows=counted.rows,
        dropped=counted.dropped,
        seconds=time.perf_counter() - started,
        skipped_text=skipped,
        info=info,
    )


class _Counted:
    """The rows fitted and dropped over every rank, and the check that there are at
    least as many as parameters (one process: :class:`FitRows` checks it as it reads).
    Every rank calls each method: they exchange counts."""

    def __init__(self, source: Source, rows: FitRows, n_params: int, group: Any) -> None:
        self.source, self.fit_rows, self.n_params, self.group = source, rows, n_params, group

    @property
    def rows(self) -> int:
        return self._totals()[0]

    @property
    def dropped(self) -> int:
        return self._totals()[1]

    def _totals(self) -> tuple[int, int]:
        if self.group is None:
            return self.fit_rows.rows, self.fit_rows.dropped
        if not hasattr(self, "_summed"):
            counts = self.group.gather_objects((self.fit_rows.rows, self.fit_rows.dropped))
            self._summed = (sum(c[0] for c in counts), sum(c[1] for c in counts))
        return self._summed

    def known_enough(self) -> None:
        """Refused before reading, where every share's row count is known (Parquet,
        .npy)."""
        if self.group is None:
            return
        known = self.group.gather_objects(self.source.row_count)
        if None not in known and sum(known) < self.n_params:
            raise too_few_rows(self.source, sum(known), 0, self.n_params)

    def enough(self) -> None:
        if self.group is not None and self.rows < self.n_params:
            raise too_few_rows(self.source, self.rows, self.dropped, self.n_params)


def _import_libraries() -> None:
    """torch (with the estimators) and pyarrow's readers take a second or two to import."""
    import pyarrow.csv  # noqa: F401
    import pyarrow.dataset  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    from ..models import gd, linear  # noqa: F401


def _plan(source: Source, options: FitOptions, group: Any) -> tuple[Design, list[str]]:
    """The design for fitting, checked against the data's columns. Under ``torchrun``
    rank 0 decides the columns for every rank, and the one-hot categories are those of
    every rank's share, in the order one pass over the whole file finds them."""
    from ..data.categories import decide_categories, merge_levels, seen_levels

    if options.fold_column is not None:  # named as the fold column, not as --exclude
        require_columns(source, [options.fold_column], "fold")
    if options.absorb and options.formula is None:  # named as a factor, not as --exclude
        require_columns(source, options.absorb, "--absorb")
    if group is None:
        design, skipped = _columns(source, options, categories=True)
    else:
        planned = group.agree(
            lambda: _columns(source, options, categories=False) if group.rank == 0 else None
        )
        design, skipped = group.gather_objects(planned)[0]
        if options.one_hot:
            found = group.agree(lambda: seen_levels(source, list(options.one_hot)))
            design.one_hot = decide_categories(merge_levels(group.gather_objects(found)))
    design.drop_reference = options.fit_intercept
    if options.fit_intercept and "intercept" in design.feature_names:
        raise InputError(
            f"{source.name}: a feature named 'intercept' would be confused with the fitted "
            "intercept; rename the column, leave it out with --exclude, or use --no-intercept"
        )
    if options.cluster is not None:
        require_columns(source, cluster_columns(options), "cluster")
    return design, skipped


def _formula_plan(
    source: Source, options: FitOptions, passes: Passes, group: Any
) -> tuple[Source, Design, Any]:
    """The file as the formula's columns, the design over them, and the formula's
    learned state (categories from a first pass over the file where it has any)."""
    from ..formula.source import FormulaSource, learn_from_source

    if group is not None:
        raise InputError("--formula does not run under torchrun yet; fit in one process")
    assert options.formula is not None
    spec = learn_from_source(options.formula, source, passes.begin)
    options.fit_intercept = spec.fit_intercept
    if options.weights is not None:
        require_columns(source, [options.weights], "weights")
    if options.cluster is not None:
        require_columns(source, cluster_columns(options), "cluster")
    design = Design(list(spec.target_names), list(spec.feature_names), {}, options.weights,
                    options.missing)  # fmt: skip
    return FormulaSource(source, spec, options.missing), design, spec


def _columns(source: Source, options: FitOptions, categories: bool) -> tuple[Design, list[str]]:
    return plan(
        source,
        targets=options.targets,
        features=options.features,
        exclude=options.exclude,
        weights=options.weights,
        one_hot=options.one_hot,
        missing=options.missing,
        categories=categories,
    )


def _fit(
    source: Source, design: Design, options: FitOptions, rows: FitRows, group: Any
) -> tuple[Any, Any]:
    """The estimator fitted on the rows, and a state of the data for fit statistics.
    Dependent columns are refused; the library's other warnings are passed on."""
    with warnings.catch_warnings(record=True) as caught, one_core_for_reading():
        warnings.simplefilter("always")
        if options.absorb:
            from .absorb import fit_absorbed

            model = fit_absorbed(source, design, options, rows)
            state = model.state_
        elif options.huber is not None:
            from .penalized import fit_huber

            model, state = fit_huber(source, design, options, rows, group)
        elif options.method == "exact":
            model = _fit_exact(source, design, options, rows, group)
            state = model.state_
        else:
            model, state = _fit_gd(design, options, rows)
    _refuse_aliased(source, model)
    for w in caught:
        if not issubclass(w.category, RankDeficientWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model, state


def _fit_exact(
    source: Source, design: Design, options: FitOptions, rows: FitRows, group: Any
) -> Any:
    """Least squares (ridge, lasso or elastic net with their options) on the stream; a
    file is read again if refinement is due, standard input cannot be. With ``group``,
    each rank streams its share and the library merges the ranks' states."""
    from ..models.linear import LinearRegression, Ridge

    if options.cv is not None:
        from .cv import fit_cv

        return fit_cv(source, design, options, rows, group)
    model: Any
    fit_intercept, device = options.fit_intercept, options.device
    if options.lasso is not None or options.elasticnet is not None:
        from .penalized import estimator

        model = estimator(options)
    elif options.ridge is not None:
        model = Ridge(alpha=options.ridge, fit_intercept=fit_intercept, device=device)
    else:
        model = LinearRegression(fit_intercept=fit_intercept, device=device)
    model.fit_chunks(
        rows if source.reiterable else rows(),
        feature_names=design.feature_names,
        distributed=False if group is None else group,
    )
    model.target_names_ = list(design.targets)
    return model


def _fit_gd(design: Design, options: FitOptions, rows: FitRows) -> tuple[Any, Any]:
    """Gradient descent streamed from the file, read again every epoch (standard input,
    which cannot be, is held in memory), and the rows' least-squares state for the fit
    statistics: the one the first pass folds."""
    from ..models._gd_stream import fit_stream
    from ..models.gd import GDRegressor

    model: Any = GDRegressor(
        fit_intercept=options.fit_intercept, device=options.device, **options.gd
    )
    if not rows.source.reiterable:
        state = _fit_gd_in_memory(model, design, options, rows)
    else:
        state = fit_stream(
            model,
            _epoch_passes(rows),
            feature_names=design.feature_names,
            checkpoint=options.checkpoint,
            resume=options.resume,
        )
    model.feature_names_in_ = np.asarray(design.feature_names, dtype=object)
    model.target_names_ = list(design.targets)
    return model, state


def _epoch_passes(rows: FitRows) -> Any:
    """Each call a pass over the file: the first the fit's (rows and dropped rows
    counted, too short a file refused), each later one an epoch's (or, rarely, the
    exact fit's refinement), named on the progress line."""
    from ..data.design import chunks
    from ..data.prefetch import prefetched

    def read() -> Any:
        if rows.reads == 0:
            yield from rows()
            return
        rows.passes.planned += 1
        rows.passes.begin("gradient descent")
        for chunk, _ in prefetched(chunks(rows.source, rows.design)):
            yield chunk.as_solver_chunk()

    return read


def _fit_gd_in_memory(model: Any, design: Design, options: FitOptions, rows: FitRows) -> Any:
    """Gradient descent on every row in memory, and their least-squares state."""
    from ..solvers.state import LeastSquaresState

    parts = list(rows())
    X = np.concatenate([p.X.numpy() for p in parts])
    y = np.concatenate([p.Y.numpy() for p in parts])
    y = y[:, 0] if y.shape[1] == 1 else y
    w = np.concatenate([p.sample_weight.numpy() for p in parts]) if design.weights else None
    model.fit(X, y, w, checkpoint=options.checkpoint, resume=options.resume)
    k = 1 if y.ndim == 1 else y.shape[1]
    state = LeastSquaresState(X.shape[1], k, fit_intercept=options.fit_intercept)
    return state.update(X, y, w)


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


def _training_info(model: Any, stats: dict[str, Any]) -> dict[str, Any]:
    """How gradient training ended and how far from the exact least-squares fit (the
    costs are the fitted model's and the exact optimum's, where the exact fit was
    computed; otherwise ``cost`` is the last epoch's). ``relative_cost_gap`` is the
    share of y's variance the fit gives up, so with one target the exact fit's R² is
    the fit's plus it (``exact_r2``)."""
    history, gap = model.history_, model.exact_
    training: dict[str, Any] = {
        "status": history.status,
        "reason": history.reason,
        "epochs": len(history),
        "lr": history.lr,
        "cost": history.cost[-1],  # before the last step; after it with exact_cost
        "exact_cost": None,
        "relative_cost_gap": None,
        "exact_r2": None,
    }
    if gap is not None:
        training["cost"], training["exact_cost"] = gap.gd_cost, gap.cost
        training["relative_cost_gap"] = gap.relative_cost_gap
        r2 = stats.get("r2") or [None]
        if len(r2) == 1 and r2[0] is not None:
            training["exact_r2"] = r2[0] + gap.relative_cost_gap
    return training


def _fit_info(
    path: str,
    options: FitOptions,
    dropped: int,
    model: Any,
    state: Any,
    stats: dict[str, Any],
    group: Any,
) -> dict[str, Any]:
    """How the model was fitted, as kept in the model file. ``n`` counts observations,
    the rows of positive weight (as the statistical summary does, and R's ``lm``);
    ``ranks``, the processes of a ``torchrun`` fit."""
    info: dict[str, Any] = {
        "method": options.method,
        "source": os.path.basename(path) if path != "-" else "<stdin>",
        "n": state.n_observations,
        "dropped": dropped,
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
            # The training curve, for `torchlinreg report` (~20 bytes an epoch).
            "epoch": list(model.history_.epoch),
            "cost": [float(c) for c in model.history_.cost],
            "exact_cost": None if model.exact_ is None else float(model.exact_.cost),
        }
        info["training"] = _training_info(model, stats)
    elif penalized_method(options) is not None:
        from .penalized import penalized_info, penalized_options

        info.update(penalized_info(model, options))
        info["options"].update(penalized_options(options))
    else:
        info["condition_number"] = model.condition_number_
        info["rank"] = model.rank_
        info["refined"] = model.refined_
    if group is not None:
        info["ranks"] = group.size
    if hasattr(model, "cv_info_"):
        info["cv"] = model.cv_info_
    return info
