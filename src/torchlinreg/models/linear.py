"""``LinearRegression``: ordinary (or weighted) least squares, solved exactly.

``Ridge`` (:mod:`.ridge`) is importable from here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, overload

from ..devices import DeviceLike
from ..errors import InputError
from ._base import is_dask
from ._exact import ExactRegressor
from ._types import ArrayLike
from .ridge import Ridge

if TYPE_CHECKING:
    import numpy as np
    import torch

    from ..solvers.solve import Solution
    from ..solvers.state import LeastSquaresState
    from ..stats.intervals import Prediction
    from ..stats.summary import Summary
    from ..stats.wald import TestResult

__all__ = ["LinearRegression", "Ridge"]


class LinearRegression(ExactRegressor):
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
    device : str or torch.device, optional
        Where to compute (``"cpu"``, ``"cuda"``, ``"auto"``); default: where the data are.
    cov_type : {"nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster"}
        The covariance ``summary()`` gives by default. A robust one is computed by the
        fit itself (one more pass over the rows with the final coefficients: in memory,
        over the rows already held; ``fit_chunks``, over the chunks read again), so
        ``summary()`` needs no data and a saved model keeps it. ``"cluster"`` takes
        the labels as ``fit(X, y, groups=groups)``.

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
        ``"cholesky"`` or ``"qr"``.
    aliased_ : list of str
        The features a rank deficiency involves (constant, or all zero without an
        intercept; linearly dependent), as the rank warning names them; empty for a
        full-rank fit.
    state_ : LeastSquaresState
        The folded data; ``partial_fit`` continues from it.
    n_features_in_, n_samples_seen_ : int
    """

    def __init__(
        self,
        *,
        fit_intercept: bool = True,
        solver: str = "auto",
        refine: bool | str = "auto",
        device: DeviceLike | None = None,
        cov_type: str = "nonrobust",
    ) -> None:
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.refine = refine
        self.device = device
        self.cov_type = cov_type

    def _solve(self, state: LeastSquaresState) -> Solution:
        from ..solvers.solve import solve_ols

        return solve_ols(state, min_norm=self.solver == "svd")

    @overload
    def predict(
        self, X: ArrayLike, interval: None = None, level: float = 0.95
    ) -> np.ndarray | torch.Tensor: ...

    @overload
    def predict(self, X: ArrayLike, interval: str, level: float = 0.95) -> Prediction: ...

    def predict(
        self, X: ArrayLike, interval: str | None = None, level: float = 0.95
    ) -> np.ndarray | torch.Tensor | Prediction:
        """``X W + b``; with ``interval="confidence"`` (for the mean) or
        ``"prediction"`` (for a new observation) also the bounds at ``level``, as a
        :class:`~torchlinreg.stats.intervals.Prediction` (``mean``, ``lower``,
        ``upper``, ``se``; numpy arrays shaped like ``predict(X)``)."""
        self._check_is_fitted()
        X = self._check_feature_names(X, by_name=True)  # a DataFrame's columns by name
        if interval is None:
            return self._predict_checked(X)  # type: ignore[no-any-return]
        if is_dask(X):
            raise InputError(
                "prediction intervals of a Dask collection are not computed; call "
                "predict(X, interval=...) on each partition (X.map_partitions) or on "
                "computed rows"
            )
        from ..stats.intervals import prediction_interval

        return prediction_interval(self, X, interval, level)

    def wald_test(
        self,
        restrictions: Any = None,
        q: Any = None,
        *,
        columns: Sequence[str] | str | None = None,
        target: int = 0,
        **summary_options: Any,
    ) -> TestResult:
        """χ² Wald test of linear restrictions Rβ = q: text over the coefficient names
        (``"x1 = x2"``, ``"x1 = 0, x2 = 0"``, ``"2*x1 + x2 = 1"``; ``intercept`` names
        the intercept), a matrix R (columns intercept first) with ``q``, or
        ``columns=[...]`` (those coefficients jointly 0; a string: every coefficient
        whose name starts with it, e.g. a one-hot column's levels). The covariance is
        the summary's: ``summary_options`` go to :meth:`summary` (``cov_type``, ``X``,
        ``y``, ``groups``, ``lags``, …). See docs/econometrics.md."""
        from ..stats.wald import test

        summary = self._test_summary(target, summary_options)
        return test(summary, restrictions, q, columns=columns, use_f=False)

    def f_test(
        self,
        restrictions: Any = None,
        q: Any = None,
        *,
        columns: Sequence[str] | str | None = None,
        target: int = 0,
        **summary_options: Any,
    ) -> TestResult:
        """F test of linear restrictions (as :meth:`wald_test`, F = W/J referred to
        F(J, df): df = n − k, or G − 1 for cluster covariances)."""
        from ..stats.wald import test

        summary = self._test_summary(target, summary_options)
        return test(summary, restrictions, q, columns=columns, use_f=True)

    def _test_summary(self, target: int, options: dict[str, Any]) -> Summary:
        out = self.summary(**options)
        if isinstance(out, list):
            if not isinstance(target, int) or not 0 <= target < len(out):
                raise InputError(f"target must be a target's index, 0 to {len(out) - 1}")
            return out[target]
        return out
