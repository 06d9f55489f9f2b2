"""What rounding alone leaves in a least-squares state: the yardstick of the checks and
decisions that must tell rounding from a real difference."""

from __future__ import annotations

import math

import torch

from ..solvers.state import LeastSquaresState

_EPS = float(torch.finfo(torch.float64).eps)


def householder_gamma(state: LeastSquaresState) -> float:
    """γ with Householder's R the exact R factor of the rows perturbed by γ·‖column‖ in
    each column (Higham, Accuracy and Stability, Thm 19.4).

    γ = 16·√(n·m)·ε for n rows and m columns of R: rounding errors grow like √(n·m)·ε
    (Higham and Mary's probabilistic analysis), not as the n·m·ε worst case, and 16
    covers the constants."""
    n, m = max(state.n_samples, 1), state.R.shape[1]
    return 16 * math.sqrt(n * m) * _EPS
