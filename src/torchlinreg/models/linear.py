"""Exact least squares estimators: ``LinearRegression`` and ``Ridge``.

Both fold the data into a :class:`~torchlinreg.solvers.state.LeastSquaresState` and
solve from it, so ``fit`` (one fold), ``partial_fit`` (a fold per call) and
``fit_chunks`` (a fold over a stream) give the same coefficients up to rounding.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import (
    AccuracyWarning,
    IllConditionedWarning,
    InputError,
    RankDeficientWarning,
)
from ._base import RegressorBase
from ._validation import check_choice

# Warn about conditioning above this κ (column-scaled): float64 data then determine
# fewer than ~8 digits of the coefficients in the worst case.
ILL_CONDITIONED = 1e8
# Refine in memory when the estimated error of the QR solution exceeds this, or always
# when the data are small enough for it to cost nothing noticeable.
RISK = 1e-13
CHEAP_CELLS = 1 << 17


def error_estimate(state: Any, cond: float) -> float:
    """First-order bound on the relative error of a backward-stable solve:
    ε·(κ + κ²·tan θ), tan θ = ‖residual‖ / ‖fitted‖ of the centred target (the worst
    target), from R alone. A target with nothing fitted (y ⟂ X) has coefficients near
    zero, accurate in absolute terms: it does not count."""
    from ..solvers.solve import EPS

    c = int(state.fit_intercept)
    fitted = (state.R_target[c:] ** 2).sum(0).sqrt()
    resid = (state.R_residual**2).sum(0).sqrt()
    ratios = [float(r / f) for f, r in zip(fitted, resid, strict=True) if float(f) > 0]
    tan = max(ratios, default=0.0)
    return EPS * (cond + cond**2 * tan)


class _ExactRegressor(RegressorBase):
    """Shared fitting logic; subclasses choose the solve (OLS or ridge)."""

    fit_intercept: bool
    solver: str
    refine: Any
    device: Any
    _solvers: tuple[str, ...] = ("auto", "qr", "svd", "cholesky")

    def _solve(self, state: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _can_refine(self) -> bool:
        return True

    def _check_params(self) -> None:
        if not isinstance(self.fit_intercept, (bool, np.bool_)):
            raise InputError(f"fit_intercept must be True or False, got {self.fit_intercept!r}")
        check_choice("solver", self.solver, self._solvers)
        if self.refine not in ("auto", True, False):
            raise InputError(f"refine must be 'auto', True or False; got {self.refine!r}")

    def _device(self) -> Any:
        if self.device is None:
            return None
        from ..devices import resolve_device

        return resolve_device(self.device)

    def _new_state(self, chunk: Any) -> Any:
        from ..solvers.state import LeastSquaresState

        return LeastSquaresState(
            chunk.X.shape[1],
            chunk.Y.shape[1],
            fit_intercept=self.fit_intercept,
            device=chunk.X.device,
        )

    def _wants_refinement(self, state: Any, solution: Any, small: bool) -> bool:
        if self.refine is False or not self._can_refine():
            return False
        if solution.rank < state.n_params:
            return False  # minimum-norm answers are not refined
        if self.refine is True:
            return True
        return small or error_estimate(state, solution.condition_number) > RISK

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        """Fit on in-memory data; returns ``self``. float32 input is accumulated in float64.

        X: array or tensor (n_samples, n_features); y: (n_samples,) or (n_samples,
        n_targets); sample_weight: (n_samples,), non-negative, not all zero.
        """
        from ..data.chunks import validate_chunk
        from ..solvers.gram import gram_state
        from ..solvers.refine import refine_in_memory

        self._check_params()
        chunk = validate_chunk(X, y, sample_weight, device=self._device())
        self._set_feature_names(X, y)  # after validation: a failed fit changes nothing
        small = chunk.X.shape[0] * (chunk.X.shape[1] + 1) <= CHEAP_CELLS
        state = None
        self.solver_used_ = "qr"
        if self.solver == "cholesky" or (self.solver == "auto" and not small):
            # Normal equations when they are accurate enough, else the QR fold below.
            state = gram_state(chunk, self.fit_intercept)
            if state is not None:
                self.solver_used_ = "cholesky"
        if state is None:
            state = self._new_state(chunk).update_chunk(chunk)
        solution = self._solve(state)
        self.refined_ = False
        if self.solver_used_ == "qr" and self._wants_refinement(state, solution, small):
            theta = refine_in_memory(chunk, state, solution.theta)
            solution = solution.with_theta(theta)
            self.refined_ = True
        return self._finish(state, solution, chunk.target_1d)

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        """Fold one more chunk in and re-solve; returns ``self``.

        The data are not kept. Beside the QR state, the cross products of the rows are
        kept in double-double (designs up to ``solvers.dd_gram.MAX_COLUMNS`` columns),
        so that where accuracy is at risk the solution is recomputed from them in
        extended precision (``refined_``). Where even that leaves digits at risk, an
        :class:`~torchlinreg.errors.AccuracyWarning` says so (``fit`` or ``fit_chunks``
        with a re-iterable source refine with the data).
        """
        from ..data.chunks import validate_chunk
        from ..solvers.dd_gram import MAX_COLUMNS, DDGram
        from ..solvers.single_pass import solve_from_gram

        self._check_params()
        if not hasattr(self, "state_"):
            chunk = validate_chunk(X, y, sample_weight, device=self._device(), whole=False)
            self._set_feature_names(X, y)
            state = self._new_state(chunk)
            wide = state.n_params + state.n_targets > MAX_COLUMNS
            self._dd_gram = None if wide or not self._can_refine() else DDGram(state)
        else:
            state = self.state_
            if state.fit_intercept != bool(self.fit_intercept):
                raise InputError(
                    "fit_intercept changed since the first partial_fit; call fit() to start over"
                )
            self._check_feature_names(X)
            chunk = validate_chunk(
                X,
                y,
                sample_weight,
                device=state.device,
                row_offset=state.n_samples,
                whole=False,
            )
            self._check_n_features(chunk.X.shape[1])
            if chunk.Y.shape[1] != state.n_targets:
                raise InputError(
                    f"y has {chunk.Y.shape[1]} target(s) but earlier chunks had {state.n_targets}"
                )
        gram = getattr(self, "_dd_gram", None)
        follows = gram is not None and gram.covers(state)
        state.update_chunk(chunk)
        if gram is not None and follows:
            gram.update_chunk(chunk)
        solution = self._solve(_nonzero_weight(state))
        self.refined_ = False
        self.solver_used_ = "qr"
        at_risk = True
        reason = "partial_fit does not keep the data"
        if self._wants_refinement(state, solution, small=False):
            found = solve_from_gram(gram, state, solution.condition_number)
            if found.theta is not None:
                solution = solution.with_theta(found.theta)
                self.refined_ = True
                at_risk = found.error_estimate > 10 * RISK
            reason = found.reason
        if at_risk:
            self._warn_unrefined(state, solution, reason)
        # Fewer observations (rows of positive weight) than parameters is expected early
        # in a stream: no rank warning yet.
        return self._finish(
            state, solution, chunk.target_1d, warn=state.n_observations >= state.n_params
        )

    def fit_chunks(
        self,
        chunks: Iterable[Any] | Callable[[], Iterable[Any]],
        *,
        feature_names: Sequence[str] | None = None,
    ) -> Any:
        """Fit from a stream of ``(X, y)`` or ``(X, y, sample_weight)`` chunks.

        ``chunks`` is a re-iterable (a list, a reader object) or a function returning a
        fresh iterator each call; either allows a second pass for refinement when
        accuracy is at risk. A one-shot iterator (a generator) is read once.
        ``feature_names`` name the columns (``feature_names_in_``, warnings).
        """
        from ..data.chunks import Chunk, validate_chunk
        from ..solvers.fingerprint import Fingerprint
        from ..solvers.refine import refine_from_chunks

        self._check_params()
        if not callable(chunks) and not isinstance(chunks, Iterable):
            raise InputError(
                f"fit_chunks takes an iterable of (X, y[, sample_weight]) chunks or a function "
                f"returning one; got {type(chunks).__name__}"
            )
        one_shot = not callable(chunks) and iter(chunks) is chunks

        def make() -> Iterable[Any]:
            made = chunks() if callable(chunks) else chunks
            if not isinstance(made, Iterable):
                raise InputError(
                    f"the chunk function returned {type(made).__name__}, not an iterable of chunks"
                )
            return made

        def validated() -> Iterable[Any]:
            rows = 0
            for item in make():
                if isinstance(item, Chunk):  # already validated (the file readers)
                    rows += item.X.shape[0]
                    yield item
                    continue
                # Tuples, or lists as a torch DataLoader's default collation yields.
                if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
                    raise InputError("each chunk must be a tuple (X, y) or (X, y, sample_weight)")
                chunk = validate_chunk(*item, device=self._device(), row_offset=rows, whole=False)
                rows += chunk.X.shape[0]
                yield chunk

        state = None
        target_1d = True
        # What the first pass read, to refuse a refinement pass that reads other data
        # (kept only where a refinement pass may come).
        may_refine = not one_shot and self.refine is not False and self._can_refine()
        first_pass = Fingerprint() if may_refine else None
        for i, chunk in enumerate(validated()):
            if state is None:
                self._set_feature_names(None)
                if feature_names is not None:
                    if len(feature_names) != chunk.X.shape[1]:
                        raise InputError(
                            f"{len(feature_names)} feature names for {chunk.X.shape[1]} columns"
                        )
                    self.feature_names_in_ = np.asarray(list(feature_names), dtype=object)
                state = self._new_state(chunk)
                target_1d = chunk.target_1d
            elif chunk.X.shape[1] != state.n_features:
                raise InputError(
                    f"chunk {i} has {chunk.X.shape[1]} features, the first had {state.n_features}"
                )
            state.update_chunk(chunk)
            if first_pass is not None:
                first_pass.add(chunk)
        if state is None:
            raise InputError("the chunk stream was empty; it must hold at least one row")
        solution = self._solve(_nonzero_weight(state))
        self.refined_ = False
        self.solver_used_ = "qr"
        reason = (
            "the stream is a one-shot iterator and cannot be read twice"
            if one_shot
            else "refine=False was given"
        )
        if first_pass is not None and self._wants_refinement(state, solution, small=False):
            theta, passes = refine_from_chunks(validated, state, solution.theta, first_pass)
            if passes:
                solution = solution.with_theta(theta)
                self.refined_ = True
            reason = "refining from a stream needs condition number² · ε < 0.01"
        if not self.refined_:
            self._warn_unrefined(state, solution, reason)
        return self._finish(state, solution, target_1d)

    def _warn_unrefined(self, state: Any, solution: Any, reason: str) -> None:
        if (
            self._can_refine()
            and solution.rank == state.n_params
            and error_estimate(state, solution.condition_number) > 10 * RISK
        ):
            warnings.warn(
                f"accuracy at risk (condition number {solution.condition_number:.2g}, "
                f"residual size considered) and the solution could not be refined: {reason}; "
                "fit() on in-memory data refines in extended precision",
                AccuracyWarning,
                stacklevel=3,
            )

    def _finish(self, state: Any, solution: Any, target_1d: bool, warn: bool = True) -> Any:
        coef = solution.coef.T.cpu().numpy()  # (k, p)
        intercept = (
            np.zeros(state.n_targets)
            if solution.intercept is None
            else solution.intercept.cpu().numpy()
        )
        self.coef_ = coef[0] if target_1d else coef
        self.intercept_ = float(intercept[0]) if target_1d else intercept
        self.rank_ = solution.rank
        self.condition_number_ = solution.condition_number
        self.n_features_in_ = state.n_features
        self.n_samples_seen_ = state.n_samples
        self.state_ = state
        self.aliased_ = [self._feature_label(j) for j in (*solution.constant, *solution.dependent)]
        if warn:
            self._warn_about(solution, state)
        return self

    def _feature_label(self, j: int) -> str:
        names = getattr(self, "feature_names_in_", None)
        return str(names[j]) if names is not None else f"x{j}"

    def _feature_list(self, indices: list[int], shown: int = 10) -> str:
        labels = [self._feature_label(j) for j in indices[:shown]]
        if len(indices) > shown:
            labels.append(f"... ({len(indices)} columns)")
        return ", ".join(labels)

    def _warn_about(self, solution: Any, state: Any) -> None:
        if solution.constant or solution.dependent:
            parts = []
            if solution.constant:
                what = "constant" if state.fit_intercept else "all zero"
                cols = self._feature_list(solution.constant)
                parts.append(f"{what}: {cols}")
            if solution.dependent:
                cols = self._feature_list(solution.dependent)
                parts.append(f"linearly dependent: {cols}")
            if state.n_observations < state.n_params:
                # Zero-weight rows are not observations: they determine nothing.
                parts.insert(
                    0,
                    f"only {state.n_observations} observations (rows of positive weight) for "
                    f"{state.n_params} parameters",
                )
            warnings.warn(
                f"X is rank deficient (rank {solution.rank} of {state.n_params} parameters); "
                f"{'; '.join(parts)}. The minimum-norm solution is returned; drop redundant "
                "columns for unique coefficients",
                RankDeficientWarning,
                stacklevel=3,
            )
        elif solution.condition_number > ILL_CONDITIONED:
            warnings.warn(
                f"X is badly conditioned (condition number {solution.condition_number:.2g} "
                "after scaling columns): the coefficients are sensitive to tiny changes in the "
                "data; centre/scale polynomial terms or drop nearly collinear features",
                IllConditionedWarning,
                stacklevel=3,
            )

    def _theta(self) -> Any:
        """Fitted parameters as (p', k), intercept first, float64 tensor."""
        return self._theta_of(self.coef_, self.intercept_)

    def _theta_of(self, coef: Any, intercept: Any) -> Any:
        """θ (p', k), intercept first, from parameters laid out as ``coef_`` and
        ``intercept_``."""
        import torch

        from ..solvers.theta import stack_theta

        slopes = torch.as_tensor(np.atleast_2d(coef).T, dtype=torch.float64)
        b = torch.as_tensor(np.atleast_1d(intercept), dtype=torch.float64)
        return stack_theta(slopes, b if self.fit_intercept else None)

    def _names(self) -> tuple[list[str], list[str]]:
        features = [self._feature_label(j) for j in range(self.n_features_in_)]
        k = self.state_.n_targets
        targets = getattr(self, "target_names_", None) or (
            ["y"] if k == 1 else [f"y{j}" for j in range(k)]
        )
        return features, list(targets)

    def summary(
        self,
        level: float = 0.95,
        cov_type: str = "nonrobust",
        *,
        X: Any = None,
        y: Any = None,
        sample_weight: Any = None,
        groups: Any = None,
    ) -> Any:
        """Coefficient table and fit statistics, as R's ``summary.lm`` gives them.

        Returns a :class:`~torchlinreg.stats.inference.Summary` (a list of them, one per
        target, for several targets); ``str()`` is the text table, ``to_dict()`` the
        JSON contract, ``to_frame()`` a pandas DataFrame. ``cov_type`` is
        ``"nonrobust"`` (from the fitted state alone) or ``"HC0"``–``"HC3"`` /
        ``"cluster"``, which need the training data again (``X``, ``y``,
        ``sample_weight``; ``groups``, one label per row, for ``"cluster"``).
        """
        from ..data.chunks import validate_chunk
        from ..stats.inference import check_cov_type, check_level, model_summaries

        self._check_is_fitted()
        check_level(level)
        check_cov_type(cov_type)
        data = None
        if cov_type != "nonrobust":
            if X is None or y is None:
                raise InputError(
                    f"cov_type={cov_type!r} needs a second pass over the training data: "
                    f"call summary(cov_type={cov_type!r}, X=X, y=y"
                    + (", groups=groups)" if cov_type == "cluster" else ")")
                )
            if cov_type == "cluster" and groups is None:
                raise InputError("cov_type='cluster' needs groups=, one label per row of X")
            if (sample_weight is not None) != self.state_.weighted:
                raise InputError(
                    "the model was fitted "
                    + ("with" if self.state_.weighted else "without")
                    + " sample_weight; pass the same sample_weight to summary()"
                )
            chunk = validate_chunk(X, y, sample_weight, device=self.state_.device)
            if chunk.X.shape[0] != self.state_.n_samples:
                raise InputError(
                    f"X has {chunk.X.shape[0]} rows but the model was fitted on "
                    f"{self.state_.n_samples}; pass the training data"
                )
            data = [(chunk, None if groups is None else np.asarray(groups))]
        out = model_summaries(self, level=level, cov_type=cov_type, data=data)
        return out[0] if len(out) == 1 else out

    def cost_of(self, coef: Any, intercept: Any) -> float:
        """Mean (weighted) squared error of any coefficients on the data this model was
        fitted to, computed from the state alone (no pass over the data).

        ``coef`` and ``intercept`` are in the layout of ``coef_`` and ``intercept_``;
        ``cost_of(model.coef_, model.intercept_)`` is the fit's own minimum.
        """
        self._check_is_fitted()
        theta = self._theta_of(coef, intercept)
        rss = self.state_.rss_of(theta)
        return float(rss.sum() / (self.state_.weight_sum * self.state_.n_targets))


def _nonzero_weight(state: Any) -> Any:
    if state.n_observations == 0:
        raise InputError(
            "sample_weight is zero for every row seen; give at least one positive weight"
        )
    return state


class LinearRegression(_ExactRegressor):
    """Ordinary (or weighted) least squares, solved exactly and accurately.

    The data are folded into a small mergeable state (the R factor of a tall-skinny QR
    of √w·[1, X, y]); coefficients come from a triangular solve on power-of-two scaled
    columns. When the problem is ill-conditioned enough to put digits at risk, the
    solution is refined with residuals computed in double-double precision.

    Parameters
    ----------
    fit_intercept : bool
        Fit an intercept (never part of the minimum norm or of any penalty).
    solver : {"auto", "qr", "svd", "cholesky"}
        ``"qr"``: tall-skinny QR and a triangular solve, minimum-norm fallback if rank
        deficient; ``"svd"``: always the SVD minimum-norm solution; ``"cholesky"``:
        normal equations (one matrix multiply, about twice as fast), used only when the
        condition number keeps them accurate (ε·κ² ≤ 1e-11), else QR; ``"auto"``:
        ``"cholesky"`` for large in-memory data, ``"qr"`` otherwise (streams and
        ``partial_fit`` always fold by QR). ``solver_used_`` tells which ran.
    refine : {"auto", True, False}
        Iterative refinement in extended precision: when accuracy is at risk (default),
        always, or never.
    device : str, optional
        Where to compute (``"cpu"``, ``"cuda"``, ``"auto"``); default: where the data are.

    Attributes
    ----------
    coef_ : ndarray (n_features,) or (n_targets, n_features)
    intercept_ : float or ndarray (n_targets,)
    rank_ : int
        Numerical rank of the design, the intercept column included.
    condition_number_ : float
        2-norm condition number of the column-scaled design (intercept included).
    refined_ : bool
        Whether iterative refinement was applied.
    solver_used_ : str
        ``"cholesky"`` or ``"qr"`` (set by ``fit``).
    state_ : LeastSquaresState
        The folded data; ``partial_fit`` continues from it.
    n_features_in_, n_samples_seen_ : int
    """

    def __init__(
        self,
        *,
        fit_intercept: bool = True,
        solver: str = "auto",
        refine: Any = "auto",
        device: str | None = None,
    ) -> None:
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.refine = refine
        self.device = device

    def _solve(self, state: Any) -> Any:
        from ..solvers.solve import solve_ols

        return solve_ols(state, min_norm=self.solver == "svd")

    def predict(self, X: Any, interval: str | None = None, level: float = 0.95) -> Any:
        """``X W + b``; with ``interval="confidence"`` (for the mean) or
        ``"prediction"`` (for a new observation) also the bounds at ``level``, as a
        :class:`~torchlinreg.stats.intervals.Prediction` (``mean``, ``lower``,
        ``upper``, ``se``; numpy arrays shaped like ``predict(X)``)."""
        if interval is None:
            return super().predict(X)
        from ..stats.intervals import prediction_interval

        self._check_is_fitted()
        self._check_feature_names(X)
        return prediction_interval(self, X, interval, level)


class Ridge(_ExactRegressor):
    """Ridge regression: minimises ‖√w(y − Xβ − b)‖² + α‖β‖² exactly.

    The intercept is never penalised. ``alpha`` may be one number or one per target.
    Parameters as :class:`LinearRegression`; ``alpha=0`` is ordinary least squares.
    """

    _solvers = ("auto", "qr", "cholesky")

    def __init__(
        self,
        alpha: Any = 1.0,
        *,
        fit_intercept: bool = True,
        solver: str = "auto",
        refine: Any = "auto",
        device: str | None = None,
    ) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.refine = refine
        self.device = device

    def _alphas(self, n_targets: int) -> Any:
        import torch

        alpha = np.atleast_1d(np.asarray(self.alpha, dtype=np.float64))
        if alpha.ndim != 1 or (alpha.size != 1 and alpha.size != n_targets):
            raise InputError(
                f"alpha must be a number or one per target ({n_targets}); got shape {alpha.shape}"
            )
        if not np.all(np.isfinite(alpha)) or np.any(alpha < 0):
            raise InputError(f"alpha must be finite and >= 0; got {self.alpha!r}")
        return torch.as_tensor(np.broadcast_to(alpha, (n_targets,)).copy())

    def _check_params(self) -> None:
        super()._check_params()
        if not isinstance(self.alpha, (numbers.Real, list, tuple, np.ndarray)) or isinstance(
            self.alpha, bool
        ):
            raise InputError(f"alpha must be a number or one per target; got {self.alpha!r}")
        self._alphas(int(np.size(np.asarray(self.alpha))))

    def _can_refine(self) -> bool:
        return bool(np.all(np.asarray(self.alpha) == 0))

    def _solve(self, state: Any) -> Any:
        from ..solvers.solve import solve_ridge

        return solve_ridge(state, self._alphas(state.n_targets).to(state.R.device))

    def _warn_about(self, solution: Any, state: Any) -> None:
        if self._can_refine():
            super()._warn_about(solution, state)
