"""Coefficients from a :class:`~.state.LeastSquaresState`: pure functions of R.

Notation: the state's R factor of √w ⊙ [1, X − x₀, Y − y₀] has blocks R_A (design,
intercept row first), R_AY (design–target) and R_Y (residual). With the intercept
first, the trailing block of R_A is the R factor of the centred X, so slopes are solved
from the centred problem (the intercept is never part of a norm or a penalty) and the
intercept follows from the first row, R₀₀·b + R₀,ₓ·β = R₀,ᵧ, then is shifted back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .state import LeastSquaresState

EPS = float(torch.finfo(torch.float64).eps)


def rank_tolerance(n_params: int) -> float:
    """Singular values of the column-scaled design below this are treated as zero.

    Columns are scaled so that each one's 2-norm lies in [0.5, 1); Householder QR
    leaves rounding of order p·ε there. Exactly collinear or constant columns show
    singular values of that size; genuinely ill-conditioned but independent ones (NIST
    Filip, κ ≈ 5·10⁹ scaled) stay far above it.
    """
    return 1000.0 * max(n_params, 1) * EPS


def power_of_two_scale(size: torch.Tensor) -> torch.Tensor:
    """d_j = 2^(−e_j) with size_j = m·2^e_j, m ∈ [0.5, 1): an exact scaling (no
    rounding) that brings each size into [0.5, 1). Zero sizes get 1."""
    _, exponent = torch.frexp(size)
    scale = torch.ldexp(torch.ones_like(size), -exponent)
    return torch.where(size > 0, scale, torch.ones_like(size))


def column_norms(M: torch.Tensor) -> torch.Tensor:
    """2-norm of each column, without overflow or underflow: columns are first brought
    to max |entry| ∈ [0.5, 1) by an exact power of two."""
    pre = power_of_two_scale(M.abs().amax(dim=0))
    return torch.linalg.vector_norm(M * pre, dim=0) / pre


def column_scale(M: torch.Tensor) -> torch.Tensor:
    """Power-of-two scale of each column's 2-norm. The norms of R's columns are those of
    the data's columns, so the scaling (and the condition number) is the same whether
    computed from the data or from the state."""
    return power_of_two_scale(column_norms(M))


@dataclass
class Solution:
    """Coefficients and what the solve learned about the problem.

    ``coef`` is (n_features, n_targets); ``intercept`` (n_targets,) or ``None``, both in
    the data's own units. ``condition_number`` is κ₂ of the column-scaled design
    (intercept column included). ``dependent`` lists the feature indices involved in
    exact linear dependencies, ``constant`` those with no variation (or all zero).
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
    """κ₂ of the design √w·[1, X − x₀] after exact power-of-two column scaling."""
    RA = state.R_design
    s = torch.linalg.svdvals(RA * column_scale(RA))
    return float("inf") if float(s[-1]) == 0.0 else float(s[0] / s[-1])


def _split(state: LeastSquaresState) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(R of centred X, its target block, scale of each feature's full column)."""
    c = int(state.fit_intercept)
    RA = state.R_design
    return RA[c:, c:], state.R_target[c:], column_scale(RA)[c:]


def _intercept(state: LeastSquaresState, coef: torch.Tensor) -> torch.Tensor | None:
    """b from the first row of R (shifted data), then shifted back to the data's units."""
    if not state.fit_intercept:
        return None
    R = state.R
    r00 = R[0, 0]
    if float(r00) == 0.0:  # no rows with weight: nothing determines the intercept
        b_shifted = torch.zeros(state.n_targets, dtype=R.dtype, device=R.device)
    else:
        b_shifted = (state.R_target[0] - R[0, 1 : state.n_params] @ coef) / r00
    return b_shifted + state.shift_y - state.shift_x @ coef


def _dependencies(V_null: torch.Tensor, S: torch.Tensor) -> tuple[list[int], list[int]]:
    """Features in the null space (dependent) and those with nothing left after centring
    (constant with an intercept; all zero without). ``S`` is the scaled centred block."""
    tol = rank_tolerance(S.shape[1])
    norms = torch.linalg.vector_norm(S, dim=0)
    constant = [j for j, v in enumerate(norms.tolist()) if v <= tol]
    weight = V_null.abs().amax(dim=1) if V_null.numel() else torch.zeros(S.shape[1])
    dependent = [j for j, v in enumerate(weight.tolist()) if v > 1e-6 and j not in constant]
    return dependent, constant


def solve_ols(state: LeastSquaresState, *, min_norm: bool = False) -> Solution:
    """Least squares from the state: a triangular solve on scaled columns when R is of
    full rank, else (or with ``min_norm``) the minimum-norm solution by SVD.

    Minimum norm is over the slopes only (the intercept is not penalised), in the
    data's own units: ``numpy.linalg.lstsq`` on the (weighted-)centred design.
    """
    Rc, Rcy, D = _split(state)
    cond = condition_number(state)
    p = Rc.shape[1]
    # Scale by each feature's full (uncentred) column: a column whose spread is below
    # the rounding of its mean is numerically constant and shows up as rank loss.
    S = Rc * D
    # Singular values alone decide the rank (cheap); the vectors only when needed.
    s = torch.linalg.svdvals(S)
    tol = rank_tolerance(state.n_params) * max(float(s[0]), 1.0)
    rank = int((s > tol).sum())
    dependent: list[int] = []
    constant: list[int] = []
    if rank == p and not min_norm:
        coef = D.unsqueeze(1) * torch.linalg.solve_triangular(S, Rcy, upper=True)
    else:
        U, s, Vh = torch.linalg.svd(S)
        if rank < p:
            dependent, constant = _dependencies(Vh[rank:].T, S)
        # A solution from the well-scaled SVD, then its component along the null space
        # removed in the original units (the null space of Rc is D·null(S)).
        z = Vh[:rank].T @ ((U[:, :rank].T @ Rcy) / s[:rank].unsqueeze(1))
        coef = D.unsqueeze(1) * z
        if rank < p:
            # Entries of the null vectors at rounding level belong to columns outside
            # the dependency; D could amplify them by its whole dynamic range.
            V_null = Vh[rank:].T
            significant = V_null.abs() > 1e-6 * V_null.abs().amax(dim=0, keepdim=True)
            V_null = torch.where(significant, V_null, torch.zeros_like(V_null))
            N = torch.linalg.qr(D.unsqueeze(1) * V_null).Q
            coef = coef - N @ (N.T @ coef)
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

    Targets sharing an α are solved together, as least squares on [Rc; √α·I] (a QR of a
    (2p × p) matrix), never by forming XᵀX + αI. Targets with α = 0 get the ordinary
    least-squares solution, minimum norm and rank diagnosis included.
    """
    Rc, Rcy, _ = _split(state)
    p = Rc.shape[1]
    coef = torch.empty(p, state.n_targets, dtype=Rc.dtype, device=Rc.device)
    ols = solve_ols(state) if bool((alpha == 0).any()) else None
    for a in torch.unique(alpha).tolist():
        cols = (alpha == a).nonzero().flatten()
        if a == 0.0:
            assert ols is not None
            coef[:, cols] = ols.coef[:, cols]
            continue
        stacked = torch.cat([Rc, (a**0.5) * torch.eye(p, dtype=Rc.dtype, device=Rc.device)])
        Q, Rr = torch.linalg.qr(stacked)
        rhs = Q[:p].T @ Rcy[:, cols]  # the zero rows of [Rcy; 0] add nothing
        coef[:, cols] = torch.linalg.solve_triangular(Rr, rhs, upper=True)
    return Solution(
        coef=coef,
        intercept=_intercept(state, coef),
        rank=ols.rank if ols is not None else p + int(state.fit_intercept),
        condition_number=ols.condition_number if ols is not None else condition_number(state),
        dependent=ols.dependent if ols is not None else [],
        constant=ols.constant if ols is not None else [],
    )
