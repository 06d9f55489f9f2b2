"""``fit --lasso ALPHA``, ``--elasticnet ALPHA [--l1-ratio R]`` and ``--huber EPSILON
[--alpha A]``: the options checked, the model built and fitted on the stream, and what
the report and the model file keep of it.

The lasso and the elastic net fold the file into the same least-squares state as
least squares does (one pass, merged over ranks under ``torchrun``) and solve on its
Gram matrix, so they slot into the exact path. The Huber fit minimises its loss with
L-BFGS-B, one pass over the file per evaluation; the first complete pass also folds the
least-squares state, from which R² and RMSE of the Huber coefficients follow (the
squared error of any coefficients is a quadratic form in the state's R).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from ..data.design import Design
    from ..data.sources import Source
    from .fit import FitOptions
    from .passes import FitRows

# info["method"] of each model (the report's and the model file's)
METHODS = ("lasso", "elasticnet", "huber")


def chosen(options: FitOptions) -> str | None:
    """``"lasso"``, ``"elasticnet"`` or ``"huber"`` when one is asked for, else None."""
    for name in METHODS:
        if getattr(options, name) is not None:
            return name
    return None


def check_penalized_options(options: FitOptions) -> None:
    """One model at a time; the options that only one of them reads given with it; no
    standard errors for a penalised or robust fit. Values are checked here too (the
    command line checked each already), so the library's callers get the same lines."""
    flags = [f"--{name}" for name in METHODS if getattr(options, name) is not None]
    if not flags:
        _refuse_stray(options)
        return
    flag = flags[0]
    clashes = flags[1:] + [other for other, given in (
        ("--ridge", options.ridge is not None), ("--method gd", options.method == "gd"),
        ("--cv", options.cv is not None)) if given]  # fmt: skip
    if clashes:
        hint = " (--cv K --lasso-path chooses the lasso's alpha)" if clashes[0] == "--cv" else ""
        raise InputError(f"{flag} and {clashes[0]} fit different models; give one of them{hint}")
    inference = _inference_flags(options)
    if inference:
        raise InputError(
            f"{flag} has no standard errors (a penalised or robust fit has no classical "
            f"inference); drop {', '.join(inference)}, or fit least squares for a summary"
        )
    if options.l1_ratio is not None and flag != "--elasticnet":
        raise InputError("--l1-ratio goes with --elasticnet (the lasso's is 1); drop it")
    if options.huber_alpha is not None and flag != "--huber":
        raise InputError(
            f"--alpha is Huber's l2 penalty and goes with --huber; {flag} ALPHA takes the "
            "penalty itself"
        )
    estimator(options)._check_params()  # alpha < 0, l1_ratio outside [0, 1], epsilon < 1


def _refuse_stray(options: FitOptions) -> None:
    if options.l1_ratio is not None:
        raise InputError("--l1-ratio goes with --elasticnet ALPHA; add it")
    if options.huber_alpha is not None:
        raise InputError("--alpha (Huber's l2 penalty) goes with --huber EPSILON; add it")


def _inference_flags(options: FitOptions) -> list[str]:
    """The options asking for a statistical summary (--level asks for one too)."""
    given = [flag for flag, value in (("--cov-type", options.cov_type not in
             ("nonrobust", "cluster")), ("--cluster", options.cluster is not None),
             ("--level", options.level != 0.95), ("--lags", getattr(options, "lags", None)
             is not None), ("--test", getattr(options, "tests", None))) if value]  # fmt: skip
    return given or (["--summary"] if options.summary else [])


def estimator(options: FitOptions) -> Any:
    """The unfitted estimator the options name (one of :data:`METHODS`)."""
    fit_intercept, device = options.fit_intercept, options.device
    if options.huber is not None:
        from ..models.huber import HuberRegressor

        alpha = 1e-4 if options.huber_alpha is None else options.huber_alpha
        return HuberRegressor(epsilon=options.huber, alpha=alpha, fit_intercept=fit_intercept,
                              device=device)  # fmt: skip
    from ..models.penalized import ElasticNet, Lasso

    if options.lasso is not None:
        return Lasso(alpha=options.lasso, fit_intercept=fit_intercept, device=device)
    assert options.elasticnet is not None, "no penalised model was asked for"
    l1_ratio = 0.5 if options.l1_ratio is None else options.l1_ratio
    return ElasticNet(alpha=options.elasticnet, l1_ratio=l1_ratio, fit_intercept=fit_intercept,
                      device=device)  # fmt: skip


def fit_huber(
    source: Source, design: Design, options: FitOptions, rows: FitRows, group: Any
) -> tuple[Any, Any]:
    """The Huber fit, read from the file once per evaluation of its loss (standard
    input, which cannot be read again, is held in memory), and the least-squares state
    of the rows for the fit statistics."""
    if group is not None:
        raise InputError("--huber does not run under torchrun yet; run it in one process")
    if len(design.targets) != 1:
        raise InputError(
            f"--huber fits one target; {len(design.targets)} are given (fit one model per target)"
        )
    model = estimator(options)
    passes = _Evaluations(source, design, rows, options.fit_intercept)
    stream: Any = passes if source.reiterable else list(passes())
    model.fit_chunks(stream, feature_names=design.feature_names)
    model.target_names_ = list(design.targets)
    return model, passes.state


class _Evaluations:
    """Each call a pass over the file for the Huber loss: the first named "fitting",
    later ones "Huber loss" on the progress line. Each complete pass sets the rows and
    dropped rows counted; the first complete one refuses fewer rows than parameters and
    leaves the rows' least-squares state in ``state``."""

    def __init__(self, source: Source, design: Design, rows: FitRows, fit_intercept: bool) -> None:
        self.source, self.design, self.rows = source, design, rows
        self.fit_intercept = fit_intercept
        self.state: Any = None
        self.calls = 0

    def __call__(self) -> Iterator[Any]:
        from ..data.design import chunks
        from ..data.prefetch import prefetched
        from ..solvers.state import LeastSquaresState
        from .passes import too_few_rows

        passes = self.rows.passes
        self.calls += 1
        if self.calls > 1:
            passes.planned += 1
        passes.begin("fitting" if self.calls == 1 else "Huber loss (L-BFGS-B)")
        p = len(self.design.feature_names)
        state = None
        if self.state is None:
            state = LeastSquaresState(p, 1, fit_intercept=self.fit_intercept)
        n = dropped = 0
        for chunk, _ in prefetched(chunks(self.source, self.design)):
            n += chunk.X.shape[0]
            dropped += chunk.dropped
            solver_chunk = chunk.as_solver_chunk()
            if state is not None:
                state.update_chunk(solver_chunk)
            yield solver_chunk
        if n < p + self.fit_intercept:
            raise too_few_rows(self.source, n, dropped, p + self.fit_intercept)
        self.rows.rows, self.rows.dropped = n, dropped
        if state is not None:
            self.state = state


def penalized_info(model: Any, options: FitOptions) -> dict[str, Any]:
    """What the report and the model file keep: the method, and the penalty's or the
    Huber fit's outcome (``penalty``: alpha, l1_ratio and, per target, the solver's
    passes, the duality gap reached and the nonzero coefficients; ``huber``: epsilon,
    alpha, the scale, the outliers and the L-BFGS-B iterations)."""
    import numpy as np

    name = chosen(options)
    if name == "huber":
        return {
            "method": name,
            "huber": {
                "epsilon": float(model.epsilon),
                "alpha": float(model.alpha),
                "scale": float(model.scale_),
                "n_outliers": int(model.n_outliers_),
                "n_iter": int(model.n_iter_),
            },
        }
    coef = np.atleast_2d(model.coef_)
    return {
        "method": name,
        "penalty": {
            "alpha": float(model.alpha),
            "l1_ratio": float(model._l1_ratio()),
            "n_iter": [int(i) for i in np.atleast_1d(model.n_iter_)],
            "dual_gap": [float(g) for g in np.atleast_1d(model.dual_gap_)],
            "nonzero": [int(np.count_nonzero(row)) for row in coef],
        },
    }


def penalized_options(options: FitOptions) -> dict[str, Any]:
    """The model's options as recorded in the model file's ``info.options``."""
    name = chosen(options)
    if name is None:
        return {}
    record: dict[str, Any] = {name: getattr(options, name)}
    if name == "elasticnet":
        record["l1_ratio"] = 0.5 if options.l1_ratio is None else options.l1_ratio
    if name == "huber":
        record["alpha"] = 1e-4 if options.huber_alpha is None else options.huber_alpha
    return record
