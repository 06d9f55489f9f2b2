"""Coefficients from a :class:`~.state.LeastSquaresState`: pure functions of R.

Notation: the state's R factor of √w ⊙ [1, X, Y] has blocks R_A (design, intercept row
first), R_AY (design–target) and R_Y (residual). With the intercept first, the trailing
block of R_A is the R factor of the centred X, so slopes are solved from the centred
problem (the intercept is never part of a norm or a penalty) and the intercept follows
from the first row: R₀₀·b + R₀,ₓ·β = R₀,ᵧ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .state import LeastSquaresState

EPS = float(torch.finfo(torch.float64).eps)


def rank_tolerance(n_params: int) -> float:
    """Singular values below this fraction of the largest are treated as zero.

    Householder QR leaves rounding of order p·ε·‖A‖ in R; exactly collinear columns
    show singular values of that size, genuinely ill-conditioned but independent ones
    (NIST Filip, κ ≈ 5·10⁹ scaled) stay far above it.
    """
    return 1000.0 * max(n_params, 1) * EPS


def power_of_two_scale(norms: torch.Tensor) -> torch.Tensor:
    """d_j = 2^(−round(log₂ ‖a_j‖)): exact column scaling (no rounding), zero columns get 1."""
    safe = torch.where(norms > 0, norms, torch.ones_like(norms))
    return torch.exp2(-torch.round(torch.log2(safe)))


@dataclass
class Solution:
    """Coefficients and what the solve learned about the problem.

    ``coef`` is (n_features, n_targets); ``intercept`` (n_targets,) or ``None``.
    ``condition_number`` is κ₂ of the column-scaled design (intercept column included),
    the number that governs how many digits the inputs determine. ``dependent`` lists
    the feature indices involved in exact linear dependencies (rank deficiency).
    """

    coef: torch.Tensor
    intercept: torch.Tensor | None
    rank: int
    condition_number: float
    dependent: list[int] = field(default_factory=list)
    constant: list[int] = field(default_factory=list)

    @property
    def theta(self) -> torch.Tensor:
        """Parameters stacked intercept first, (p', k)."""
        if self.intercept is None:
            return self.coef
        return torch.cat([self.intercept.unsqueeze(0), self.coef])


def condition_number(state: LeastSquaresState) -> float:
    """κ₂ of the design √w·[1, X] after exact power-of-two column scaling."""
    RA = state.R_design
    if RA.shape[0] == 0:
        return 1.0
    D = power_of_two_scale(torch.linalg.vector_norm(RA, dim=0))
    s = torch.linalg.svdvals(RA * D)
    return math.inf if float(s[-1]) == 0.0 else float(s[0] / s[-1])


def _split(state: LeastSquaresState) -> tuple[torch.Tensor, torch.Tensor]:
    """(R of centred X, its target block): the slope problem ‖Rc β − Rcy‖."""
    c = int(state.fit_intercept)
    return state.R_design[c:, c:], state.R_target[c:]


def _intercept(state: LeastSquaresState, coef: torch.Tensor) -> torch.Tensor | None:
    if not state.fit_intercept:
        return None
    R = state.R
    r00 = R[0, 0]
    if float(r00) == 0.0:  # no rows with weight: nothing determines the intercept
        return torch.zeros(state.n_targets, dtype=R.dtype, device=R.device)
    return (state.R_target[0] - R[0, 1 : state.n_params] @ coef) / r00


def _dependencies(V_null: torch.Tensor, Rc: torch.Tensor) -> tuple[list[int], list[int]]:
    """Features in the null space (dependent) and those with nothing left after centring
    (constant, when there is an intercept; all-zero otherwise). ``Rc`` is scaled so
    that every feature's full column has norm ~1."""
    norms = torch.linalg.vector_norm(Rc, dim=0)
    constant = [j for j, v in enumerate(norms.tolist()) if v <= rank_tolerance(len(norms))]
    weight = V_null.abs().amax(dim=1) if V_null.numel() else torch.zeros(Rc.shape[1])
    dependent = [j for j, v in enumerate(weight.tolist()) if v > 1e-6 and j not in constant]
    return dependent, constant


def solve_ols(state: LeastSquaresState, *, min_norm: bool = False) -> Solution:
    """Least squares from the state: a triangular solve on scaled columns when R is of
    full rank, else (or with ``min_norm``) the minimum-norm solution by SVD.

    Minimum norm is over the slopes only (the intercept is not penalised), which is
    ``numpy.linalg.lstsq`` on the (weighted-)centred design.
    """
    Rc, Rcy = _split(state)
    cond = condition_number(state)
    p = Rc.shape[1]
    # Scale by each feature's full (uncentred) norm: a column whose spread is below the
    # rounding of its mean is numerically constant and must show up as rank loss.
    full = torch.linalg.vector_norm(state.R_design, dim=0)[int(state.fit_intercept) :]
    D = power_of_two_scale(full)
    U, s, Vh = torch.linalg.svd(Rc * D)
    tol = rank_tolerance(state.n_params) * float(s[0]) if p else 0.0
    rank = int((s > tol).sum()) if p else 0
    dependent: list[int] = []
    constant: list[int] = []
    if rank == p and not min_norm:
        z = torch.linalg.solve_triangular(Rc * D, Rcy, upper=True)
        coef = D.unsqueeze(1) * z
    else:
        if rank < p:
            dependent, constant = _dependencies(Vh[rank:].T, Rc * D)
        # Minimum norm in the original units: SVD of the unscaled block, same rank.
        U0, s0, Vh0 = torch.linalg.svd(Rc)
        r = rank
        coef = Vh0[:r].T @ ((U0[:, :r].T @ Rcy) / s0[:r].unsqueeze(1))
    return Solution(
        coef=coef,
        intercept=_intercept(state, coef),
        rank=rank + int(state.fit_intercept),
        condition_number=cond,
        dependent=dependent,
        constant=constant,
    )


def solve_ridge(state: LeastSquaresState, alpha: torch.Tensor) -> Solution:
    """Ridge: min ‖√w(y − b − Xβ)‖² + α‖β‖² per target, α (n_targets,) ≥ 0.

    Solved as least squares on [Rc; √α·I] (a QR of a (2p × p) matrix), never by forming
    XᵀX + αI.
    """
    Rc, Rcy = _split(state)
    p = Rc.shape[1]
    eye = torch.eye(p, dtype=Rc.dtype, device=Rc.device)
    columns = []
    for j in range(state.n_targets):
        a = float(alpha[j])
        if a == 0.0:
            columns.append(solve_ols(state).coef[:, j])
            continue
        Q, Rr = torch.linalg.qr(torch.cat([Rc, math.sqrt(a) * eye]))
        rhs = Q.T @ torch.cat([Rcy[:, j], torch.zeros(p, dtype=Rc.dtype, device=Rc.device)])
        columns.append(torch.linalg.solve_triangular(Rr, rhs.unsqueeze(1), upper=True)[:, 0])
    coef = torch.stack(columns, dim=1)
    return Solution(
        coef=coef,
        intercept=_intercept(state, coef),
        rank=p + int(state.fit_intercept),
        condition_number=condition_number(state),
    )
