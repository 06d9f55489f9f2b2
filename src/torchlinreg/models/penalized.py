"""``ElasticNet`` and ``Lasso``: l1 (and l2) penalised least squares from the exact state.

The data are folded into the same mergeable state as ``LinearRegression``'s (in memory,
streamed, or merged over ranks), so one pass reads them; the penalised problem is then
solved on the centred Gram matrix the state holds (:mod:`torchlinreg.solvers.enet`),
in O(p²) per pass, independent of the number of rows.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

from ..devices import DeviceLike
from ..errors import InputError
from ._exact import ExactRegressor

if TYPE_CHECKING:
    from collections.abc import Sequence

    from typing_extensions import Self

    from ..solvers.solve import Solution
    from ..solvers.state import LeastSquaresState
    from ._types import ArrayLike

__all__ = ["ElasticNet", "Lasso"]


class ElasticNet(ExactRegressor):
    """Linear regression with a combined l1 and l2 penalty, scikit-learn's objective::

        Σ wᵢ (yᵢ − b − xᵢᵀβ)² / (2 Σ w) + α ρ ‖β‖₁ + α (1 − ρ) ‖β‖² / 2

    (ρ = ``l1_ratio``; without weights Σ w is the number of rows). The intercept b is
    not penalised.

    Parameters
    ----------
    alpha : float >= 0
        The penalty's strength. ``alpha=0`` is least squares (prefer
        :class:`~torchlinreg.LinearRegression`, which is exact and diagnosed).
    l1_ratio : float in [0, 1]
        1 is the lasso, 0 ridge (with scikit-learn's scaling of alpha).
    fit_intercept : bool
    max_iter : int >= 1
        Passes of the solver (each an exact solve on the working set's signs and, when
        that does not finish, a coordinate-descent sweep) before it stops with a
        :class:`~torchlinreg.errors.ConvergenceWarning` naming the duality gap.
    tol : float >= 0
        Stop when the duality gap is at most ``tol · yᵀWy / Σ w`` (scikit-learn's rule).
    warm_start : bool
        Start from the previous fit's coefficients.
    device : str or torch.device, optional
        Where the state is folded (``"cpu"``, ``"cuda"``, ``"auto"``); the solve on the
        p × p Gram matrix runs on the CPU.

    Attributes
    ----------
    coef_, intercept_ : as scikit-learn's (``coef_`` (n_features,) or (n_targets,
        n_features)).
    n_iter_ : int or list of int
        Solver passes (one per target for several targets).
    dual_gap_ : float or ndarray
        The duality gap reached.
    state_ : LeastSquaresState
        The fitted state; merging states and solving again gives the fit of all rows.

    ``fit``, ``partial_fit``, ``fit_chunks`` and ``distributed=`` work as for
    ``LinearRegression``. Statistical summaries are refused: the penalty biases the
    coefficients and selection invalidates the classical standard errors.
    """

    solver = "auto"  # the state is folded as LinearRegression's (not a parameter here)
    refine = False

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        l1_ratio: float = 0.5,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        warm_start: bool = False,
        device: DeviceLike | None = None,
    ) -> None:
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.device = device

    def _l1_ratio(self) -> Any:
        return self.l1_ratio

    def _check_params(self) -> None:
        from ..solvers.enet import check_penalty

        super()._check_params()
        for name, value in (("alpha", self.alpha), ("l1_ratio", self._l1_ratio())):
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                raise InputError(f"{name} must be a number, got {value!r}")
        check_penalty(self.alpha, self._l1_ratio())
        if not isinstance(self.max_iter, numbers.Integral) or isinstance(self.max_iter, bool):
            raise InputError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        if self.max_iter < 1:
            raise InputError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        tol = self.tol
        if not isinstance(tol, numbers.Real) or isinstance(tol, bool) or not 0 <= tol < np.inf:
            raise InputError(f"tol must be a finite number >= 0, got {tol!r}")
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise InputError(f"warm_start must be True or False, got {self.warm_start!r}")

    def _penalised(self) -> bool:
        return True

    def _start(self, p: int, k: int) -> np.ndarray:
        """The first iterate per target (k, p): the previous fit's with ``warm_start``."""
        previous = getattr(self, "coef_", None) if self.warm_start else None
        if previous is not None and np.shape(np.atleast_2d(previous)) == (k, p):
            return np.array(np.atleast_2d(previous), dtype=np.float64)
        return np.zeros((k, p))

    def _solve(self, state: LeastSquaresState) -> Solution:
        import torch

        from ..solvers.enet import enet_path, state_gram
        from ..solvers.solve import Solution, _intercept, design_conditioning

        G, Q, yty, n = state_gram(state)
        start = self._start(state.n_features, state.n_targets)
        coef = np.empty((state.n_features, state.n_targets))
        gaps, iters = [], []
        for k in range(state.n_targets):
            path = enet_path(
                G, Q[:, k], yty[k], n, [float(self.alpha)], float(self._l1_ratio()),
                tol=float(self.tol), max_iter=int(self.max_iter), coef_init=start[k],
            )  # fmt: skip
            coef[:, k] = path.coefs[0]
            gaps.append(float(path.dual_gaps[0]))
            iters.append(int(path.n_iters[0]))
        # Set here, where the solve happens; _finish sets the rest of the fitted state.
        single = state.n_targets == 1
        self.n_iter_: int | list[int] = iters[0] if single else iters
        self.dual_gap_: float | np.ndarray = gaps[0] if single else np.asarray(gaps)
        beta = torch.as_tensor(coef, dtype=torch.float64, device=state.device)
        return Solution(
            coef=beta,
            intercept=_intercept(state, beta),
            rank=state.n_features + int(state.fit_intercept),
            conditioning=design_conditioning(state),
        )

    def fit_state(
        self, state: LeastSquaresState, *, feature_names: Sequence[str] | None = None
    ) -> Self:
        """Fit from a :class:`~torchlinreg.LeastSquaresState` whose rows were folded
        elsewhere (e.g. states of parts merged with ``merge``): the fit of all its
        rows, as :meth:`fit` on them would give. A single target gives 1-D ``coef_``."""
        from ..solvers.state import LeastSquaresState

        if not isinstance(state, LeastSquaresState):
            raise InputError(f"fit_state takes a LeastSquaresState, got {type(state).__name__}")
        self._check_params()
        if state.fit_intercept != bool(self.fit_intercept):
            raise InputError(
                f"the state was built with fit_intercept={state.fit_intercept}, the model "
                f"has fit_intercept={self.fit_intercept}; build the state as the model fits"
            )
        if state.n_samples == 0:
            raise InputError("the state holds no rows; fold data in before fitting")
        self._name_features(feature_names, state.n_features)
        return self._finish(state, self._solve(state), state.n_targets == 1, False, "qr")

    def _refuse_inference(self) -> None:
        name = type(self).__name__
        raise InputError(
            f"{name} has no classical standard errors (the penalty biases the coefficients "
            "and selects features); fit a LinearRegression on the selected features for a "
            "summary"
        )

    def summary(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: see the class notes."""
        self._refuse_inference()

    def influence(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: see the class notes."""
        self._refuse_inference()

    def influence_summary(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: see the class notes."""
        self._refuse_inference()

    def path(self, X: ArrayLike, y: ArrayLike, alphas: Any, sample_weight: Any = None) -> Any:
        """Solutions along ``alphas`` (decreasing), warm-started, on the data given (one
        target): :func:`torchlinreg.solvers.enet.enet_path` on their state, with this
        model's ``l1_ratio``, ``tol`` and ``max_iter``. Returns its ``EnetPath``."""
        from ..data.chunks import validate_chunk
        from ..solvers.enet import enet_path, state_gram

        self._check_params()
        chunk = validate_chunk(X, y, sample_weight, device=self._device())
        state = self._new_state(chunk).update_chunk(chunk)
        if state.n_targets != 1:
            raise InputError("path() takes one target; pass y as one column")
        G, Q, yty, n = state_gram(state)
        return enet_path(
            G, Q[:, 0], yty[0], n, alphas, float(self._l1_ratio()),
            tol=float(self.tol), max_iter=int(self.max_iter),
        )  # fmt: skip


class Lasso(ElasticNet):
    """Linear regression with an l1 penalty, scikit-learn's objective::

        Σ wᵢ (yᵢ − b − xᵢᵀβ)² / (2 Σ w) + α ‖β‖₁

    :class:`ElasticNet` with ``l1_ratio=1``; parameters and attributes as there.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        warm_start: bool = False,
        device: DeviceLike | None = None,
    ) -> None:
        # l1_ratio is set (to 1) but is no parameter of Lasso, as in scikit-learn's.
        super().__init__(alpha, l1_ratio=1.0, fit_intercept=fit_intercept, max_iter=max_iter,
                         tol=tol, warm_start=warm_start, device=device)  # fmt: skip

    def _l1_ratio(self) -> Any:
        return 1.0
