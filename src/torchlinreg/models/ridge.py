"""``Ridge``: least squares with an L2 penalty on the slopes, solved exactly."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..devices import DeviceLike
from ..errors import InputError
from ._exact import ExactRegressor
from ._validation import RIDGE_SOLVERS

if TYPE_CHECKING:
    import torch

    from ..solvers.solve import Solution
    from ..solvers.state import LeastSquaresState


class Ridge(ExactRegressor):
    """Ridge regression: minimises ‖√w(y − Xβ − b)‖² + α‖β‖² exactly.

    The intercept is never penalised. ``alpha`` may be one number or one per target.
    Parameters as :class:`~torchlinreg.LinearRegression`; ``alpha=0`` is ordinary
    least squares (refined and diagnosed as such).
    """

    _solvers = RIDGE_SOLVERS

    def __init__(
        self,
        alpha: float | Sequence[float] | np.ndarray = 1.0,
        *,
        fit_intercept: bool = True,
        solver: str = "auto",
        refine: bool | str = "auto",
        device: DeviceLike | None = None,
    ) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.refine = refine
        self.device = device

    def _alphas(self, n_targets: int) -> torch.Tensor:
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

    def _penalised(self) -> bool:
        return bool(np.any(np.asarray(self.alpha) != 0))

    def _solve(self, state: LeastSquaresState) -> Solution:
        from ..solvers.solve import solve_ridge

        return solve_ridge(state, self._alphas(state.n_targets).to(state.device))
