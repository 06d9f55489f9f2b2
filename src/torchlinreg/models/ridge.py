"""``Ridge``: least squares with an L2 penalty on the slopes, solved exactly."""

from __future__ import annotations

import math
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

    def _alphas(self, n_targets: int, device: torch.device | None = None) -> torch.Tensor:
        """α per target (n_targets,), float64, checked: finite and >= 0."""
        import torch

        alpha = _scalar(self.alpha)
        if alpha is not None:  # one number for every target (the common case, cheap)
            _check_alpha(alpha, self.alpha)
            return torch.full((n_targets,), alpha, dtype=torch.float64, device=device)
        alphas = np.atleast_1d(np.asarray(self.alpha, dtype=np.float64))
        if alphas.ndim != 1 or (alphas.size != 1 and alphas.size != n_targets):
            raise InputError(
                f"alpha must be a number or one per target ({n_targets}); got shape {alphas.shape}"
            )
        if not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
            raise InputError(f"alpha must be finite and >= 0; got {self.alpha!r}")
        return torch.as_tensor(np.broadcast_to(alphas, (n_targets,)).copy(), device=device)

    def _check_params(self) -> None:
        super()._check_params()
        if not isinstance(self.alpha, (numbers.Real, list, tuple, np.ndarray)) or isinstance(
            self.alpha, bool
        ):
            raise InputError(f"alpha must be a number or one per target; got {self.alpha!r}")
        alpha = _scalar(self.alpha)
        if alpha is not None:
            _check_alpha(alpha, self.alpha)
        else:
            self._alphas(int(np.size(np.asarray(self.alpha))))

    def _penalised(self) -> bool:
        alpha = _scalar(self.alpha)
        return alpha != 0 if alpha is not None else bool(np.any(np.asarray(self.alpha) != 0))

    def _solve(self, state: LeastSquaresState) -> Solution:
        from ..solvers.solve import solve_ridge

        return solve_ridge(state, self._alphas(state.n_targets, state.device))


def _scalar(alpha: object) -> float | None:
    """``alpha`` as a float when it is one real number (not a bool, not an array),
    else None: the fast path of the checks a grid search repeats at every fit."""
    if isinstance(alpha, numbers.Real) and not isinstance(alpha, (bool, np.bool_)):
        return float(alpha)
    return None


def _check_alpha(value: float, given: object) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise InputError(f"alpha must be finite and >= 0; got {given!r}")
