"""The units gradient training runs in, and the curvature of the cost in those units.

Gradient descent on raw columns of very different scales is slow or unstable: the cost's
Hessian ``H = 2·AᵀWA/Σw`` (``A = [1, X]``) then has eigenvalues spread over the squares
of those scales, and one learning rate cannot suit them all. So training runs on
``X_t = (X − c)/s``: ``c`` the weighted column means and ``s`` the weighted standard
deviations (with an intercept), or ``c = 0`` and ``s`` the columns' weighted root mean
squares (without one: centring would add an intercept the model does not have). A
column whose spread is zero, up to rounding of its values, keeps ``s = 1``.

Both come from the exact least-squares state's R factor of ``√w ⊙ [1, X − x₀, …]`` with
no further pass over the data: ``R[0, j]/R[0, 0]`` is the weighted mean of column ``j``
minus ``x₀``, and the columns of the trailing block are the weighted centred columns
rotated, so their norms are ``√Σw`` times the standard deviations, free of cancellation.
The training design is ``A_t = [1, X − x₀]·T`` for the upper-triangular ``T`` of the
change of units, so its R factor is ``R_design·T`` and ``λmax(H) = 2·σmax(R_design·T)²/Σw``
costs O(p³), whatever the rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ..solvers.state import LeastSquaresState


@dataclass
class Scaling:
    """``X_t = (X − center)/scale`` column by column (float64, on the CPU)."""

    center: torch.Tensor
    scale: torch.Tensor

    @property
    def identity(self) -> bool:
        return bool((self.center == 0).all() and (self.scale == 1).all())

    @classmethod
    def none(cls, n_features: int) -> Scaling:
        return cls(
            torch.zeros(n_features, dtype=torch.float64),
            torch.ones(n_features, dtype=torch.float64),
        )

    @classmethod
    def of_state(cls, state: LeastSquaresState, standardize: bool) -> Scaling:
        """Weighted means and standard deviations from the state (module docstring);
        no change of units when ``standardize`` is false."""
        p = state.n_features
        if not standardize:
            return cls.none(p)
        R = state.R_design.detach().cpu().double()
        root = math.sqrt(state.weight_sum)
        if state.fit_intercept:
            center = state.shift_x.detach().cpu().double() + R[0, 1:] / R[0, 0]
            spread = torch.linalg.vector_norm(R[1:, 1:], dim=0) / root
        else:
            center = torch.zeros(p, dtype=torch.float64)
            spread = torch.linalg.vector_norm(R, dim=0) / root
        # Zero spread up to the rounding of the column's values (scikit-learn's
        # StandardScaler leaves such columns unscaled too).
        floor = 64 * torch.finfo(torch.float64).eps * center.abs()
        constant = (spread <= floor) | (spread == 0)
        return cls(center, torch.where(constant, torch.ones_like(spread), spread))

    def to_training(self, X: torch.Tensor) -> torch.Tensor:
        """``X`` in training units (``X`` itself when no change of units)."""
        if self.identity:
            return X
        return (X - self.center.to(X)) / self.scale.to(X)

    def theta_to_data(self, theta: torch.Tensor, fit_intercept: bool) -> torch.Tensor:
        """``θ_t = [b_t; W_t]`` (leading dims kept) in the data's units:
        ``W = W_t/s``, ``b = b_t − cᵀW``."""
        if self.identity:
            return theta
        scale = self.scale.to(theta).unsqueeze(-1)
        if not fit_intercept:
            return theta / scale
        W = theta[..., 1:, :] / scale
        b = theta[..., :1, :] - (self.center.to(theta).unsqueeze(-1) * W).sum(-2, keepdim=True)
        return torch.cat([b, W], dim=-2)

    def theta_to_training(self, theta: torch.Tensor, fit_intercept: bool) -> torch.Tensor:
        """Inverse of :meth:`theta_to_data`: ``W_t = s·W``, ``b_t = b + cᵀW``."""
        if self.identity:
            return theta
        scale = self.scale.to(theta).unsqueeze(-1)
        if not fit_intercept:
            return theta * scale
        W = theta[..., 1:, :]
        b = theta[..., :1, :] + (self.center.to(theta).unsqueeze(-1) * W).sum(-2, keepdim=True)
        return torch.cat([b, W * scale], dim=-2)

    def hessian_max(self, state: LeastSquaresState) -> float:
        """λmax of the squared error's Hessian ``2·A_tᵀWA_t/Σw`` in training units."""
        R = state.R_design.detach().cpu().double()
        inverse = 1.0 / self.scale
        if state.fit_intercept:
            T = torch.zeros(R.shape[1], R.shape[1], dtype=torch.float64)
            T[0, 0] = 1.0
            T[0, 1:] = (state.shift_x.detach().cpu().double() - self.center) * inverse
            T[1:, 1:] = torch.diag(inverse)
        else:
            T = torch.diag(inverse)
        sigma = float(torch.linalg.matrix_norm(R @ T, ord=2))
        return 2.0 * sigma * sigma / state.weight_sum
