"""What the exact estimators share: ``fit``, ``partial_fit``, ``fit_chunks``, and the
statistics of the fitted state.

All three fold the data into a :class:`~torchlinreg.solvers.state.LeastSquaresState`
and solve from it, so one fold in memory, a fold per call and a fold over a stream
give the same coefficients up to rounding. Where accuracy is at risk the solution is
refined in extended precision, with the data where they can be read again
(:mod:`._diagnostics` decides and warns).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..devices import DeviceLike
from ..errors import InputError
from ._base import RegressorBase, is_dask
from ._diagnostics import (
    CHEAP_CELLS,
    RISK,
    wants_refinement,
    warn_about_design,
    warn_unrefined,
)
from ._stream import ChunkSource, ChunkStream
from ._types import ArrayLike
from ._validation import EXACT_SOLVERS, REFINE, check_choice

if TYPE_CHECKING:
    import torch
    from typing_extensions import Self

    from ..data.chunks import Chunk
    from ..distributed.group import DistributedLike, Group
    from ..solvers.dd_gram import DDGram
    from ..solvers.fingerprint import Fingerprint
    from ..solvers.solve import Solution
    from ..solvers.state import LeastSquaresState
    from ..stats.influence import Influence, InfluenceSummary
    from ..stats.summary import Summary


class ExactRegressor(RegressorBase):
    """Shared fitting logic; subclasses choose the solve (OLS or ridge)."""

    fit_intercept: bool
    solver: str
    refine: bool | str
    device: DeviceLike | None
    _solvers: tuple[str, ...] = EXACT_SOLVERS
    # Set by a distributed fit: its process group and this rank's (rows, weighted).
    _distributed: Any
    _rank_data: tuple[int, bool]
    absorbed_: Any  # fit(absorb=...): the fixed effects absorbed (stats.absorbed)

    def __getstate__(self) -> dict[str, Any]:
        # A fit's process group lives in this process only.
        state = dict(super().__getstate__())  # type: ignore[misc]
        state.pop("_distributed", None)
        state.pop("_rank_data", None)
        return state

    def _solve(self, state: LeastSquaresState) -> Solution:  # pragma: no cover - abstract
        raise NotImplementedError

    def _penalised(self) -> bool:
        """A penalised solve is neither refined nor diagnosed as least squares is."""
        return False

    def _refinement(self) -> bool | str:
        """``refine``, or False where the solve is penalised."""
        return False if self._penalised() else self.refine

    def _check_params(self) -> None:
        if not isinstance(self.fit_intercept, (bool, np.bool_)):
            raise InputError(f"fit_intercept must be True or False, got {self.fit_intercept!r}")
        check_choice("solver", self.solver, self._solvers)
        if self.refine not in REFINE:
            raise InputError(f"refine must be 'auto', True or False; got {self.refine!r}")

    def _device(self) -> torch.device | None:
        if self.device is None:
            return None
        from ..devices import resolve_device

        return resolve_device(self.device)

    def _new_state(self, chunk: Chunk, fit_intercept: bool | None = None) -> LeastSquaresState:
        from ..solvers.state import LeastSquaresState

        return LeastSquaresState(
            chunk.X.shape[1],
            chunk.Y.shape[1],
            fit_intercept=self.fit_intercept if fit_intercept is None else fit_intercept,
            device=chunk.X.device,
        )

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        groups: ArrayLike | None = None,
        *,
        absorb: Any = None,
        distributed: DistributedLike = False,
    ) -> Self:
        """Fit on in-memory data; returns ``self``. float32 input is accumulated in float64.

        X: array or tensor (n_samples, n_features); y: (n_samples,) or (n_samples,
        n_targets); sample_weight: (n_samples,), non-negative, not all zero; groups:
        (n_samples,) cluster labels, for ``cov_type="cluster"`` only (labels are data,
        so they come with the rows, as ``sample_weight`` does).

        A robust ``cov_type`` (HC0–HC3, cluster) is computed here, by one more pass over
        the rows with the final coefficients: ``summary()`` then needs no data.

        ``distributed=True`` (the default ``torch.distributed`` process group) or a
        process group: every rank calls ``fit`` with its own rows (a rank may have none)
        and every rank gets the identical model, that of all the rows together (see
        docs/distributed.md).

        ``absorb``: fixed effects absorbed by demeaning (a DataFrame of factor columns,
        a dict of name → labels, a 1-D array for one factor or a 2-D array of several),
        one label per row; the factors absorb the intercept (``intercept_`` is 0) and
        ``absorbed_`` describes them (docs/econometrics.md, Fixed effects).
        """
        if absorb is not None:
            from . import _absorb

            if distributed is not False or is_dask(X):
                raise InputError("absorb= is fitted in one process, on in-memory rows or chunks")
            return _absorb.fit(self, X, y, sample_weight, groups, absorb)  # type: ignore[no-any-return]
        from ..data.chunks import validate_chunk
        from ..stats.cov_types import group_labels
        from . import _fit_cov

        group = _group(distributed)
        if group is not None:
            from . import _distributed

            cov_type = group.agree(lambda: _fit_cov.requested(self, groups))
            _distributed.fit(self, group, X, y, sample_weight)
            if cov_type != "nonrobust":
                data = (X, y, sample_weight, groups)
                self._fit_covariance = _fit_cov.distributed(self, cov_type, group, data)
            return self
        cov_type = _fit_cov.requested(self, groups)
        if is_dask(X):
            from ..distributed import dask

            _fit_cov.refuse_dask(cov_type)
            return dask.fit(self, X, y, sample_weight)  # type: ignore[return-value]
        self._check_params()
        chunk = validate_chunk(X, y, sample_weight, device=self._device())
        labels = None if groups is None else group_labels(groups, chunk.X.shape[0])
        self._set_feature_names(X, y)  # after validation: a failed fit changes nothing
        self._fit_chunk(chunk)
        if cov_type != "nonrobust":
            self._fit_covariance = _fit_cov.in_memory(self, cov_type, chunk, labels)
        return self

    def _fit_chunk(self, chunk: Chunk, fit_intercept: bool | None = None) -> None:
        """:meth:`fit`'s fold, solve and refinement of validated in-memory rows (with the
        estimator's intercept, or ``fit_intercept`` where given: the demeaned rows of a
        fixed-effects fit have none). A small problem runs on one thread: its kernels
        take microseconds, and waking the thread pool for each cost milliseconds on a
        busy machine (docs/benchmarks.md)."""
        from ..solvers.gram import gram_state
        from ..solvers.refine import refine_in_memory
        from ..training.threads import threads_for

        cells = chunk.X.shape[0] * (chunk.X.shape[1] + 1)
        small = cells <= CHEAP_CELLS
        with threads_for(cells * chunk.Y.shape[1], chunk.X.device):
            state, solver_used = None, "qr"
            if self.solver == "cholesky" or (self.solver == "auto" and not small):
                # Normal equations when they are accurate enough, else the QR fold below.
                intercept = self.fit_intercept if fit_intercept is None else fit_intercept
                state = gram_state(chunk, intercept)
                if state is not None:
                    solver_used = "cholesky"
            if state is None:
                state = self._new_state(chunk, fit_intercept).update_chunk(chunk)
            solution = self._solve(state)
            refined = solver_used == "qr" and wants_refinement(
                self._refinement(), state, solution, small=small
            )
            if refined:
                solution = solution.with_theta(refine_in_memory(chunk, state, solution.theta))
            self._finish(state, solution, chunk.target_1d, refined, solver_used)

    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> Self:
        """Fold one more chunk in and re-solve; returns ``self``.

        The data are not kept. Beside the QR state, the cross products of the rows are
        kept in double-double (designs up to ``solvers.dd_gram.MAX_COLUMNS`` columns),
        so that where accuracy is at risk the solution is recomputed from them in
        extended precision (``refined_``). Where even that leaves digits at risk, an
        :class:`~torchlinreg.errors.AccuracyWarning` says so (``fit`` or ``fit_chunks``
        with a re-iterable source refine with the data).
        """
        from ..data.chunks import validate_chunk
        from ._fit_cov import refuse_partial

        self._check_params()
        refuse_partial(self)
        if getattr(self, "absorbed_", None) is not None:
            raise InputError(
                "partial_fit cannot continue a fit with absorbed fixed effects; fit() again"
            )
        if hasattr(self, "state_"):
            self._check_feature_names(X)
            state = self.state_
            chunk = self._next_chunk(state, X, y, sample_weight)
        else:
            chunk = validate_chunk(X, y, sample_weight, device=self._device(), whole=False)
            self._set_feature_names(X, y)
            state = self._new_state(chunk)
            self._dd_gram = self._new_gram(state)
        gram = getattr(self, "_dd_gram", None)
        follows = gram is not None and gram.covers(state)
        state.update_chunk(chunk)
        if gram is not None and follows:
            gram.update_chunk(chunk)
        solution, refined = self._single_pass_solution(state, gram)
        # Fewer observations (rows of positive weight) than parameters is expected early
        # in a stream: no rank warning yet.
        warn = state.n_observations >= state.n_params
        return self._finish(state, solution, chunk.target_1d, refined, "qr", warn=warn)

    def _new_gram(self, state: LeastSquaresState) -> DDGram | None:
        """The double-double cross products kept beside a new ``partial_fit`` state,
        where the design is narrow enough and the solve can use them."""
        from ..solvers.dd_gram import MAX_COLUMNS, DDGram

        wide = state.n_params + state.n_targets > MAX_COLUMNS
        return None if wide or self._penalised() else DDGram(state)

    def _next_chunk(
        self, state: LeastSquaresState, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike
    ) -> Chunk:
        """A later ``partial_fit`` chunk, validated against the state it continues."""
        from ..data.chunks import validate_chunk

        if state.fit_intercept != bool(self.fit_intercept):
            raise InputError(
                "fit_intercept changed since the first partial_fit; call fit() to start over"
            )
        chunk = validate_chunk(
            X, y, sample_weight, device=state.device, row_offset=state.n_samples, whole=False
        )
        self._check_n_features(chunk.X.shape[1])
        if chunk.Y.shape[1] != state.n_targets:
            raise InputError(
                f"y has {chunk.Y.shape[1]} target(s) but earlier chunks had {state.n_targets}"
            )
        return chunk

    def _single_pass_solution(
        self, state: LeastSquaresState, gram: DDGram | None
    ) -> tuple[Solution, bool]:
        """The solution of ``state``, recomputed from the double-double ``gram`` where
        accuracy is at risk, and whether it was; warns where digits stay at risk."""
        from ..solvers.single_pass import solve_from_gram

        solution = self._solve(_nonzero_weight(state))
        refined, at_risk, reason = False, True, "partial_fit does not keep the data"
        if wants_refinement(self._refinement(), state, solution, small=False):
            found = solve_from_gram(gram, state, solution.condition_number)
            reason = found.reason
            if found.theta is not None:
                solution, refined = solution.with_theta(found.theta), True
                at_risk = found.error_estimate > 10 * RISK
        if at_risk and not self._penalised():
            advice = "fit() with the data in memory refines in extended precision"
            warn_unrefined(state, solution, f"{reason}; {advice}")
        return solution, refined

    def fit_chunks(
        self,
        chunks: ChunkSource,
        *,
        feature_names: Sequence[str] | None = None,
        distributed: DistributedLike = False,
        absorb: Sequence[str] | None = None,
    ) -> Self:
        """Fit from a stream of ``(X, y)`` or ``(X, y, sample_weight)`` chunks.

        ``chunks`` is a re-iterable (a list, a reader object) or a function returning a
        fresh iterator each call; either allows a second pass for refinement when
        accuracy is at risk. A one-shot iterator (a generator) is read once.
        ``feature_names`` name the columns (``feature_names_in_``, warnings).
        ``distributed`` as for :meth:`fit`: each rank streams its own share.

        A robust ``cov_type`` reads the chunks once more after the fit (the residuals
        need the final coefficients), so it needs chunks that can be read again; for
        ``"cluster"`` each chunk is ``(X, y, sample_weight, groups)`` (``sample_weight``
        may be None), ``groups`` its rows' cluster labels.

        ``absorb``: the names of fixed effects to absorb (``["firm", "year"]``); each
        chunk is then ``(X, y, sample_weight, factors)`` (``groups`` fifth for
        ``"cluster"``), ``factors`` its rows' labels as :meth:`fit` takes ``absorb``.
        Two passes (one more for a robust ``cov_type``), memory bounded by the factors'
        levels (docs/econometrics.md, Streamed).
        """
        from . import _fit_cov

        if absorb is not None:
            from . import _absorb_stream

            if distributed is not False:
                raise InputError("absorb= is fitted in one process, on in-memory rows or chunks")
            return _absorb_stream.fit_chunks(self, chunks, absorb, feature_names)  # type: ignore[no-any-return]
        group = _group(distributed)
        cov_type = self._stream_cov_type() if group is None else group.agree(self._stream_cov_type)
        source = _fit_cov.fit_source(chunks, cov_type)
        if group is not None:
            from . import _distributed

            _distributed.fit_chunks(self, group, source, feature_names)
        else:
            self._fit_stream(source, feature_names)
        if cov_type != "nonrobust":
            self._fit_covariance = _fit_cov.streamed(self, cov_type, chunks, group)
        return self

    def _stream_cov_type(self) -> str:
        """The model's ``cov_type`` for a stream, whose chunks carry the cluster labels."""
        from . import _fit_cov

        cov_type = getattr(self, "cov_type", "nonrobust")
        return _fit_cov.requested(self, "chunks" if cov_type in ("cluster", "CRV3") else None)

    def _fit_stream(self, chunks: ChunkSource, feature_names: Sequence[str] | None) -> Self:
        """:meth:`fit_chunks` in one process."""
        from ..solvers.fingerprint import Fingerprint

        self._check_params()
        stream = ChunkStream(chunks, self._device())
        may_refine = not stream.one_shot and self._refinement() is not False
        state, target_1d = self._fold(stream(), feature_names, None)
        solution, obstacle = self._stream_solution(stream, state, may_refine)
        if obstacle is not None:
            if not self._penalised():
                warn_unrefined(state, solution, obstacle)
            return self._finish(state, solution, target_1d, False, "qr")
        # Refinement reads the data again, and every pass must read the same rows. The
        # fit is made again from the second pass, which takes a fingerprint of the rows
        # that each refinement pass must match: coefficients, counts and statistics all
        # come from the rows the refinement was checked against, and the first pass,
        # which every streamed fit makes, pays nothing for the check (a fingerprint
        # there cost a third of the fit).
        from ..solvers.refine import refine_from_chunks

        fingerprint = Fingerprint()
        state, target_1d = self._fold(stream(), feature_names, fingerprint)
        solution = self._solve(_nonzero_weight(state))
        theta = refine_from_chunks(stream, state, solution.theta, fingerprint)
        return self._finish(state, solution.with_theta(theta), target_1d, True, "qr")

    def _fold(
        self,
        chunks: Iterable[Chunk],
        feature_names: Sequence[str] | None,
        fingerprint: Fingerprint | None,
        *,
        allow_empty: bool = False,
    ) -> tuple[Any, bool]:
        """One pass over ``chunks``, each also added to ``fingerprint`` (on the pass
        that refinement passes are checked against): the state of them all, and whether
        the target is 1-D (as the first chunk's); ``(None, True)`` for no chunks where
        ``allow_empty`` (one rank's share of a distributed fit)."""
        state = None
        target_1d = True
        for i, chunk in enumerate(chunks):
            if state is None:
                self._name_features(feature_names, chunk.X.shape[1])
                state = self._new_state(chunk)
                target_1d = chunk.target_1d
            elif chunk.X.shape[1] != state.n_features:
                raise InputError(
                    f"chunk {i} has {chunk.X.shape[1]} features, the first had {state.n_features}"
                )
            state.update_chunk(chunk)
            if fingerprint is not None:
                fingerprint.add(chunk)
        if state is None and allow_empty:
            return None, target_1d
        if state is None and fingerprint is not None:
            raise InputError(
                "the data changed between passes: the second pass (for refinement) read no "
                "rows; a stream read again must give the same rows (a function returning a "
                "fresh iterator, or a re-iterable such as a list)"
            )
        if state is None:
            raise InputError("the chunk stream was empty; it must hold at least one row")
        return state, target_1d

    def _name_features(self, feature_names: Sequence[str] | None, n_columns: int) -> None:
        self._set_feature_names(None)
        if feature_names is not None:
            if len(feature_names) != n_columns:
                raise InputError(f"{len(feature_names)} feature names for {n_columns} columns")
            self.feature_names_in_ = np.asarray(list(feature_names), dtype=object)

    def _stream_solution(
        self, stream: ChunkStream, state: LeastSquaresState, may_refine: bool
    ) -> tuple[Solution, str | None]:
        """The solution of ``state`` and why it is not to be refined by further passes
        over ``stream`` (``None``: refine it; accuracy is at risk and the stream can be
        read again)."""
        from ..solvers.refine import seminormal_obstacle

        solution = self._solve(_nonzero_weight(state))
        if not may_refine:
            return solution, (
                "the data can be read only once (a one-shot iterator, standard input); "
                "data that can be read again allow refinement by further passes"
                if stream.one_shot
                else "refine=False was given"
            )
        if not wants_refinement(self._refinement(), state, solution, small=False):
            return solution, "refinement was not due"  # warn_unrefined stays quiet
        return solution, seminormal_obstacle(state)

    def _finish(
        self,
        state: LeastSquaresState,
        solution: Solution,
        target_1d: bool,
        refined: bool,
        solver_used: str,
        *,
        warn: bool = True,
    ) -> Self:
        """Set the fitted attributes from ``solution`` and warn about the design."""
        # set again by a distributed fit, a robust cov_type
        for attr in ("_distributed", "_rank_data", "_fit_covariance", "absorbed_"):
            self.__dict__.pop(attr, None)
        coef = solution.coef.T.cpu().numpy()  # (k, p)
        intercept = (
            np.zeros(state.n_targets)
            if solution.intercept is None
            else solution.intercept.cpu().numpy()
        )
        self.coef_ = coef[0] if target_1d else coef
        self.intercept_ = float(intercept[0]) if target_1d else intercept
        self.rank_ = solution.rank
        # κ₂ itself costs an SVD of the p × p factor: computed when first read.
        self.__dict__.pop("_condition_number", None)
        self._conditioning = solution.conditioning
        self.refined_ = refined
        self.solver_used_ = solver_used
        self.n_features_in_ = state.n_features
        self.n_samples_seen_ = state.n_samples
        self.state_ = state
        aliased = (*solution.constant, *solution.dependent)
        # Labels only name aliased columns (here and in the rank warning): built when any.
        features = self._feature_labels() if aliased else []
        self.aliased_ = [features[j] for j in aliased]
        if warn and not self._penalised():
            warn_about_design(state, solution, features)
        return self

    @property
    def condition_number_(self) -> float:
        """κ₂ of the column-scaled design, intercept column included: computed from the
        fitted R factor when first read (an SVD of p × p), then kept."""
        known = self.__dict__.get("_condition_number")
        if known is None:
            conditioning = self.__dict__.get("_conditioning")
            if conditioning is None:
                raise AttributeError(f"{type(self).__name__} has no condition_number_ until fitted")
            known = self.__dict__["_condition_number"] = conditioning.value
        return float(known)

    @condition_number_.setter
    def condition_number_(self, value: float) -> None:
        self.__dict__["_condition_number"] = value
        self.__dict__.pop("_conditioning", None)

    def _feature_labels(self) -> list[str]:
        """A label per feature: its name, else ``x0``, ``x1``, …"""
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            return [str(name) for name in names]
        return [f"x{j}" for j in range(self.n_features_in_)]

    def _names(self) -> tuple[list[str], list[str]]:
        """(feature labels, target labels), as summaries name them."""
        k = self.state_.n_targets
        targets = getattr(self, "target_names_", None) or (
            ["y"] if k == 1 else [f"y{j}" for j in range(k)]
        )
        return self._feature_labels(), list(targets)

    def _theta(self) -> torch.Tensor:
        """Fitted parameters as (p', k), intercept first, float64 tensor."""
        return self._theta_of(self.coef_, self.intercept_)

    def _theta_of(self, coef: ArrayLike, intercept: ArrayLike) -> torch.Tensor:
        """θ (p', k), intercept first, from parameters laid out as ``coef_`` and
        ``intercept_``."""
        import torch

        from ..solvers.theta import stack_theta

        slopes = torch.as_tensor(np.atleast_2d(coef).T, dtype=torch.float64)
        b = torch.as_tensor(np.atleast_1d(intercept), dtype=torch.float64)
        fitted = getattr(self, "state_", None)  # absorbed fixed effects: no intercept
        with_b = self.fit_intercept if fitted is None else fitted.fit_intercept
        return stack_theta(slopes, b if with_b else None)

    @classmethod
    def from_formula(
        cls,
        formula: str,
        data: Any,
        *,
        weights: str | ArrayLike | None = None,
        groups: str | ArrayLike | None = None,
        missing: str = "error",
        **params: Any,
    ) -> Self:
        """A model fitted to an R-style ``formula`` (``"y ~ x1 + C(g)"``) on ``data``
        (a pandas or polars DataFrame, a pyarrow Table or a file path), built by
        formulaic; ``params`` are the constructor's, less ``fit_intercept`` (the formula
        says it); ``groups``: cluster labels for ``cov_type="cluster"`` (a column name
        or one label per row). See :func:`torchlinreg.ols` and docs/formulas.md."""
        from ..formula.api import fit_formula

        return fit_formula(cls, formula, data, weights=weights, groups=groups,  # type: ignore[no-any-return]
                           missing=missing, params=params)  # fmt: skip

    def summary(
        self,
        level: float = 0.95,
        cov_type: str | None = None,
        *,
        X: ArrayLike | None = None,
        y: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
        groups: ArrayLike | None = None,
        distributed: DistributedLike | None = None,
        lags: int | None = None,
        use_t: bool | None = None,
        small_sample: bool | None = None,
    ) -> Summary | list[Summary]:
        """Coefficient table and fit statistics, as R's ``summary.lm`` gives them.

        Returns a :class:`~torchlinreg.stats.summary.Summary` (a list of them, one per
        target, for several targets); ``str()`` is the text table, ``to_dict()`` the
        JSON contract, ``to_frame()`` a pandas DataFrame. ``cov_type`` is
        ``"nonrobust"`` (from the fitted state alone) or ``"HC0"``–``"HC3"`` /
        ``"cluster"``. The default is the model's own ``cov_type``, computed at fit
        time: no data needed. Another robust type needs the training data again
        (``X``, ``y``, ``sample_weight``; ``groups``, one label per row, for
        ``"cluster"``); given them, the covariance is computed from them.

        A model fitted with ``distributed`` takes each rank's own rows here, on every
        rank (clusters may span ranks); ``distributed`` defaults to the fit's group.

        ``"HAC"`` (Newey–West; rows in time order, ``lags`` or the automatic lag),
        ``"CRV3"`` (cluster jackknife, ``groups``) and two-way clusters
        (``cov_type="cluster", groups=(a, b)``) are computed in one process;
        ``use_t`` asks for Student t (t(n − k); cluster types t(G − 1)) or the normal
        (default: t for nonrobust only); ``small_sample`` turns the robust small-sample
        factor on or off (default: statsmodels'). See docs/econometrics.md.
        """
        from ..stats.inference import check_cov_type, check_level, model_summaries
        from ._summary import robust_data

        self._check_is_fitted()
        check_level(level)
        fitted_cov = getattr(self, "_fit_covariance", None)
        if cov_type is None:
            cov_type = "nonrobust" if fitted_cov is None else fitted_cov.cov_type
        check_cov_type(cov_type)
        if cov_type != "nonrobust" and X is None and y is None:
            from ._fit_cov import kept_meat

            meat = kept_meat(self, cov_type)
            from ..stats.extra_meat import check_kept

            check_kept(meat, lags)
            out = model_summaries(
                self, level=level, cov_type=cov_type, meat=meat, use_t=use_t,
                small_sample=small_sample,
            )  # fmt: skip
            return out[0] if len(out) == 1 else out
        if cov_type != "nonrobust" and getattr(self, "absorbed_", None) is not None:
            # The state is the demeaned rows': the raw rows given again do not match it.
            kept = fitted_cov is not None and fitted_cov.cov_type == cov_type
            raise InputError(
                "a model with fixed effects absorbed computes its covariance at fit time: "
                + ("call summary() without data" if kept else
                   f"fit LinearRegression(cov_type={cov_type!r}) with absorb=..., then call "
                   "summary() without data")
            )  # fmt: skip
        if getattr(self, "formula_", None) is not None and X is not None and y is None:
            from ..formula.api import training_data  # X is the table the formula reads

            X, y, sample_weight, groups = training_data(self.formula_, X, sample_weight, groups)
        data = None
        group = getattr(self, "_distributed", None) if distributed is None else _group(distributed)
        if cov_type != "nonrobust" and is_dask(X):
            from ..distributed import dask

            out = dask.summaries(self, level, cov_type, X, y, sample_weight, groups)
            return out[0] if len(out) == 1 else out
        if cov_type != "nonrobust":
            if group is None:
                data = robust_data(self.state_, cov_type, X, y, sample_weight, groups)
            else:
                fitted = getattr(self, "_rank_data", None)
                if fitted is None:  # a copy (pickled, loaded): every rank's rows again
                    from ._distributed import rank_share

                    fitted = rank_share(group, self.state_, X, sample_weight)
                data = group.agree(
                    lambda: robust_data(self.state_, cov_type, X, y, sample_weight, groups, fitted)
                )
        out = model_summaries(
            self, level=level, cov_type=cov_type, data=data, group=group, use_t=use_t,
            small_sample=small_sample, lags=lags,
        )  # fmt: skip
        return out[0] if len(out) == 1 else out

    def influence(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> Influence:
        """Leverage, studentized residuals, Cook's distance, DFFITS and DFBETAS of every
        row of the training data (``X``, ``y``, ``sample_weight`` as fitted), as
        statsmodels' ``OLSInfluence``; see :func:`torchlinreg.stats.influence.influence`
        and docs/diagnostics.md."""
        from ..stats.influence import influence

        return influence(self, X, y, sample_weight)

    def influence_summary(
        self,
        data: Any,
        *,
        top_k: int = 10,
        sample_size: int = 2000,
        bins: int = 50,
        random_state: Any = 0,
        sample_weight: ArrayLike | None = None,
    ) -> InfluenceSummary:
        """Influence of training data too large for n values, in one pass: the
        ``top_k`` rows by Cook's distance, counts above the usual thresholds, a sample
        and binned residuals for plots; ``data`` as arrays ``(X, y[, w])`` or chunks as
        :meth:`fit_chunks` takes them. See
        :func:`torchlinreg.stats.influence.influence_summary`."""
        from ..stats.influence import influence_summary

        return influence_summary(
            self,
            data,
            top_k=top_k,
            sample_size=sample_size,
            bins=bins,
            random_state=random_state,
            sample_weight=sample_weight,
        )

    def cost_of(self, coef: ArrayLike, intercept: ArrayLike) -> float:
        """Mean (weighted) squared error of any coefficients on the data this model was
        fitted to, computed from the state alone (no pass over the data).

        ``coef`` and ``intercept`` are in the layout of ``coef_`` and ``intercept_``;
        ``cost_of(model.coef_, model.intercept_)`` is the fit's own minimum.
        """
        self._check_is_fitted()
        theta = self._theta_of(coef, intercept)
        rss = self.state_.rss_of(theta)
        return float(rss.sum() / (self.state_.weight_sum * self.state_.n_targets))


def _group(distributed: DistributedLike) -> Group | None:
    if distributed is False:
        return None
    from ..distributed.group import resolve_group

    return resolve_group(distributed)


def _nonzero_weight(state: LeastSquaresState) -> LeastSquaresState:
    if state.n_observations == 0:
        raise InputError(
            "sample_weight is zero for every row seen; give at least one positive weight"
        )
    return state
