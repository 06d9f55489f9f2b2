"""Coefficients from a :class:`~.state.LeastSquaresState`: pure functions of R.

Notation: the state's R factor of √w ⊙ [1, X − x₀, Y − y₀] has blocks R_A (design,
intercept row first), R_AY (design–target) and R_Y (residual). With the intercept
first, the trailing block of R_A is the R factor of the centred X, so slopes are solved
from the centred problem (the intercept is never part of a norm or a penalty) and the
intercept follows from the first row, R₀₀·b + R₀,ₓ·β = R₀,ᵧ, then is shifted back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from ..training.threads import one_thread
from .conditioning import Conditioning
from .min_norm import min_norm_solve, null_structure
from .scaling import column_scale
from .state import LeastSquaresState
from .theta import split_theta, stack_theta
from .tolerance import EPS as EPS  # the solvers' machine epsilon, imported from here
from .tolerance import rank_tolerance


@dataclass
class Solution:
    """Coefficients and what the solve learned about the problem.

    ``coef`` is (n_features, n_targets); ``intercept`` (n_targets,) or ``None``, both in
    the data's own units. ``conditioning`` brackets κ₂ of the column-scaled design
    (intercept column included); ``condition_number`` is κ₂ itself, computed on first
    use. ``dependent`` lists the feature indices involved in exact linear
    dependencies, ``constant`` those with no variation (or all zero).
    """

    coef: torch.Tensor
    intercept: torch.Tensor | None
    rank: int
    conditioning: Conditioning
    dependent: list[int] = field(default_factory=list)
    constant: list[int] = field(default_factory=list)

    @property
    def condition_number(self) -> float:
        """κ₂ of the column-scaled design (singular values computed once, on demand)."""
        return self.conditioning.value

    @property
    def theta(self) -> torch.Tensor:
        """Parameters stacked intercept first, (p', k)."""
        return stack_theta(self.coef, self.intercept)

    def with_theta(self, theta: torch.Tensor) -> Solution:
        """The same solution with other parameters θ (p', k), e.g. refined ones."""
        coef, intercept = split_theta(theta, self.intercept is not None)
        return replace(self, coef=coef, intercept=intercept)


def scaled_condition(RA: torch.Tensor) -> float:
    """κ₂ of the design whose R factor is ``RA``, after power-of-two column scaling."""
    s = torch.linalg.svdvals(RA * column_scale(RA))
    return float("inf") if float(s[-1]) == 0.0 else float(s[0] / s[-1])


def design_conditioning(state: LeastSquaresState) -> Conditioning:
    """The bracket of κ₂ of √w·[1, X − x₀] after exact power-of-two column scaling,
    computed once per R (cached on the state)."""
    R, RA = state.R, state.R_design
    # The scale goes with R rather than into a copy of it (see Conditioning).
    return state.memo("design", lambda: Conditioning(RA, lambda: _design_scale(state, R)))  # type: ignore[no-any-return]


def _design_scale(state: LeastSquaresState, R: torch.Tensor) -> torch.Tensor:
    """Power-of-two scale of the design columns of ``R``, the state's R factor when
    asked: computed once while it still is (the solve and the bracket both need it)."""
    RA = R[: state.n_params, : state.n_params]
    if state.R is not R:  # rows folded in since: the scale of the R the caller holds
        return column_scale(RA)
    return state.memo("design scale", lambda: column_scale(RA))  # type: ignore[no-any-return]


def condition_number(state: LeastSquaresState) -> float:
    """κ₂ of the design √w·[1, X − x₀] after exact power-of-two column scaling."""
    return design_conditioning(state).value


def _split(state: LeastSquaresState) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(R of centred X, its target block, scale of each feature's full column)."""
    c = int(state.fit_intercept)
    RA = state.R_design
    return RA[c:, c:], state.R_target[c:], _design_scale(state, state.R)[c:]


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


def solve_ols(state: LeastSquaresState, *, min_norm: bool = False) -> Solution:
    """Least squares from the state: a triangular solve on scaled columns when R is of
    full rank, else the minimum-norm solution (:mod:`.min_norm`). ``min_norm`` judges
    the rank by SVD even when a triangular factor looks regular.

    Minimum norm is over the slopes only (the intercept is not penalised), in the
    data's own units: ``numpy.linalg.lstsq`` on the (weighted-)centred design.
    """
    if min_norm:
        return _solve_min_norm(state)
    # A pure function of R: solved once per R (the Gram path's residual rule and the
    # model ask for the same solution; at p = 5,000 each solve read the 200 MB factor).
    # Copies of the tensors go out, so that a caller writing into its coefficients
    # (a model's coef_ shares them) cannot change what the next caller gets.
    solution: Solution = state.memo("ols", lambda: _solve_without_autograd(state))
    copy = None if solution.intercept is None else solution.intercept.clone()
    return replace(solution, coef=solution.coef.clone(), intercept=copy)


def _solve_without_autograd(state: LeastSquaresState) -> Solution:
    """:func:`_solve_ols` in inference mode: its few dozen small kernels skip autograd's
    bookkeeping (a sixth of a 1,000 × 10 solve). The state's R was formed before, by
    :meth:`~.state.LeastSquaresState.memo`, so it stays an ordinary tensor (later
    folds update the state in place); what is made inside (the solution, cached
    numbers of R) is only read, and the coefficients leave :func:`solve_ols` as
    copies."""
    with torch.inference_mode():
        return _solve_ols(state)


def _solve_ols(state: LeastSquaresState) -> Solution:
    # The full-rank path is O(p²) memory-bound work: one thread (no pool wake-ups per
    # kernel, milliseconds each on a busy machine); the SVD path below keeps the pool.
    with one_thread(state.device.type == "cpu"):
        solution = _solve_full_rank(state)
    return solution if solution is not None else _solve_min_norm(state)


def _tolerance(state: LeastSquaresState) -> Callable[[float], float]:
    """The rank tolerance as a function of σ₁."""
    return lambda s1: rank_tolerance(state.n_params) * max(s1, 1.0)


def _solve_full_rank(state: LeastSquaresState) -> Solution | None:
    """The triangular solve where the bracket shows R of full rank, else ``None``.
    Each feature is scaled by its full (uncentred) column: a column whose spread is
    below the rounding of its mean is numerically constant and shows up as rank loss."""
    Rc, Rcy, D = _split(state)
    conditioning = design_conditioning(state)
    tolerance = _tolerance(state)
    # S = Rc·D is the trailing block of the scaled design's triangle, so S⁻¹ is the
    # trailing block of its inverse: σₚ(S) ≥ σₚ(design), σ₁(S) ≤ σ₁(design). The
    # design's bracket (already known) settles the common case; S's own otherwise.
    if not conditioning.sigma_min[0] > tolerance(conditioning.sigma_max[1]):
        centred: Conditioning = state.memo("centred", lambda: Conditioning(Rc, D))
        if centred.rank_below(tolerance):
            return None
    coef = _triangular_solve(Rc, Rcy, D)
    return Solution(
        coef=coef,
        intercept=_intercept(state, coef),
        rank=Rc.shape[1] + int(state.fit_intercept),
        conditioning=conditioning,
    )


def _triangular_solve(Rc: torch.Tensor, Rcy: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """β = D·(Rc·D)⁻¹·Rcy, computed as Rc⁻¹·Rcy without forming Rc·D (a copy of the
    factor: 200 MB at p = 5,000).

    The two are the same to the bit while every intermediate stays in the normal range:
    D holds powers of two, so in any substitution order (blocked or not) each product
    (Rc·D)ᵢⱼ·zⱼ equals Rcᵢⱼ·βⱼ exactly (zⱼ = βⱼ/dⱼ), the sums are the same numbers, and
    a division by (Rc·D)ᵢᵢ differs from one by Rcᵢᵢ by the exact factor dᵢ. Where that
    range could be left (a non-finite result), the scaled solve is done instead."""
    beta = torch.linalg.solve_triangular(Rc, Rcy, upper=True)
    if bool(torch.isfinite(beta).all()):
        return beta
    return D.unsqueeze(1) * torch.linalg.solve_triangular(Rc * D, Rcy, upper=True)


def _solve_min_norm(state: LeastSquaresState) -> Solution:
    """The minimum-norm solution, the rank judged by the singular values of S."""
    Rc, Rcy, D = _split(state)
    p = Rc.shape[1]
    S = Rc * D
    s = state.memo("centred", lambda: Conditioning(S)).singular_values
    tol = _tolerance(state)(float(s[0]))
    rank = int((s > tol).sum())
    _, s, Vh = torch.linalg.svd(S)
    structure = null_structure(S, Vh, s, rank, tol)
    coef = min_norm_solve(Rc, Rcy, D, structure)
    # Constant (with an intercept; all zero without): nothing left after centring.
    norms = torch.linalg.vector_norm(S, dim=0).tolist()
    constant = [j for j, v in enumerate(norms) if v <= rank_tolerance(p)]
    return Solution(
        coef=coef,
        intercept=_intercept(state, coef),
        rank=rank + int(state.fit_intercept),
        conditioning=design_conditioning(state),
        dependent=[j for j in structure.dependent if j not in constant],
        constant=constant,
    )


def solve_ridge(state: LeastSquaresState, alpha: torch.Tensor) -> Solution:
    """Ridge: min ‖√w(y − b − Xβ)‖² + α‖β‖² per target, α (n_targets,) ≥ 0.

    Targets sharing an α are solved together, as least squares on [Rc; √α·I]: the R
    factor of [Rc Rcy; √α·I 0] (a QR of a 2p × (p + k) matrix, no Q formed) carries
    the transformed right-hand sides in its last columns. XᵀX + αI is never formed.
    Targets with α = 0 get the ordinary least-squares solution, minimum norm and rank
    diagnosis included.
    """
    c = int(state.fit_intercept)
    Rc, Rcy = state.R_design[c:, c:], state.R_target[c:]
    p, k = Rc.shape[1], Rcy.shape[1]
    values = alpha.tolist()
    ols = solve_ols(state) if 0.0 in values else None
    shared = len(set(values)) == 1  # one α for every target: no column bookkeeping
    coef = None if shared else torch.empty(p, k, dtype=Rc.dtype, device=Rc.device)
    for a in sorted(set(values)):
        cols = list(range(k)) if shared else [j for j, v in enumerate(values) if v == a]
        if a == 0.0:
            assert ols is not None
            solved = ols.coef[:, cols]
        else:
            block = torch.zeros(2 * p, p + len(cols), dtype=Rc.dtype, device=Rc.device)
            block[:p, :p] = Rc
            block[:p, p:] = Rcy[:, cols]
            block[p:, :p].diagonal().fill_(a**0.5)
            Rr = torch.linalg.qr(block, mode="r").R
            solved = torch.linalg.solve_triangular(Rr[:p, :p], Rr[:p, p:], upper=True)
        if coef is None:
            coef = solved
        else:
            coef[:, cols] = solved
    assert coef is not None
    return Solution(
        coef=coef,
        intercept=_intercept(state, coef),
        rank=ols.rank if ols is not None else p + int(state.fit_intercept),
        conditioning=design_conditioning(state),
        dependent=ols.dependent if ols is not None else [],
        constant=ols.constant if ols is not None else [],
    )
