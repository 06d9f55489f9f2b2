"""Covariances of least-squares estimates: the bread from R, robust sandwiches.

With A = [1, X] (weighted rows √w·a), every covariance is K M Kᵀ with K = J R_s⁻¹: R_s
the state's R factor of the shifted design √w·[1, X − x₀] (the design's own condition,
without the offset x₀ in it) and J the change back to the data's coordinates
(b = b_s − x₀ᵀβ, slopes unchanged), applied in double-double. M = I for the bread; for
robust covariances M is the meat of a data pass (:mod:`.meat`) in the orthonormal
coordinates z = ã R_s⁻¹ (rows of Q): forming Aᵀ diag(c) A directly would square the
design's condition number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from ..errors import InputError
from ..solvers import dd
from ..solvers.solve import column_scale, design_conditioning
from ..solvers.state import LeastSquaresState
from .rounding import householder_gamma

if TYPE_CHECKING:
    from .meat import Meat


def unshifted_design_r(state: LeastSquaresState) -> torch.Tensor:
    """R of √w·[1, X] (unshifted, the data's own coordinates)."""
    p = state.n_params
    return state.unshifted_R()[:p, :p]


def triangular_inverse(R: torch.Tensor) -> torch.Tensor:
    """R⁻¹ as D (R D)⁻¹ through exactly (power-of-two) scaled columns."""
    D = column_scale(R)
    eye = torch.eye(R.shape[0], dtype=R.dtype, device=R.device)
    return D.unsqueeze(1) * torch.linalg.solve_triangular(R * D, eye, upper=True)


def to_data_coordinates(state: LeastSquaresState, inv: torch.Tensor) -> torch.Tensor:
    """K = J R_s⁻¹: the intercept row becomes r₀ − x₀ᵀR_s⁻¹[1:], formed in double-double
    (it cancels when x₀ is large against the spread of X)."""
    if not state.fit_intercept:
        return inv
    p, e = dd.two_prod(state.shift_x.to(inv).unsqueeze(1), -inv[1:])
    hi, lo = dd.dd_sum(p, e, 0)
    hi, lo = dd.dd_add(inv[0], torch.zeros_like(hi), hi, lo)
    return torch.cat([(hi + lo).unsqueeze(0), inv[1:]])


def bread(state: LeastSquaresState) -> torch.Tensor:
    """(AᵀWA)⁻¹ = K Kᵀ."""
    K = to_data_coordinates(state, triangular_inverse(state.R_design))
    return K @ K.T


def sandwich(state: LeastSquaresState, meat_z: torch.Tensor) -> torch.Tensor:
    """K M Kᵀ for a meat M in the z coordinates of :class:`~.meat.Meat`."""
    K = to_data_coordinates(state, triangular_inverse(state.R_design))
    return K @ meat_z.to(K) @ K.T


def check_same_data(state: LeastSquaresState, meat: Meat) -> None:
    """Refuse a robust pass over other data than the fit's, or the same rows of x and y
    paired differently. Two fingerprints, neither involving the coefficients (so no
    cancellation against a large intercept):

    * each column's Σ w (a − a₀)² of the shifted augmented design [1, X − x₀, Y − y₀]
      equals the column norm² of R. Both sides are sums of positive terms, accurate to a
      few log₂(n)·ε relative; 1e-9 is far above that and far below any change of the
      data that matters to the statistics. Sums of squares are blind to the order of
      rows, hence:
    * Qᵀỹ = Σ zᵢᵀ√wᵢ(yᵢ − y₀) equals R's target block and QᵀQ = Σ zᵢᵀzᵢ equals I (or its
      probe does: :mod:`.meat`), up to :func:`pairing_tolerance`. Exchanging yᵢ and yⱼ
      moves Qᵀỹ by (zᵢ − zⱼ)ᵀ(ỹⱼ − ỹᵢ).
    """
    if meat.column_sums is None:
        return
    expected = (state.R**2).sum(0).cpu()
    seen = meat.column_sums.cpu()
    if not bool(torch.allclose(seen, expected, rtol=1e-9, atol=0)):
        raise InputError(
            "the data read for the robust covariance are not the data the model was "
            "fitted on (their sums of squares differ: other data, or a file modified "
            "between passes); give the data it was fitted on (in Python the same X, y and "
            "sample_weight), unchanged until the end"
        )
    if meat.target_sums is None:
        return  # R_s singular: no Q to compare in
    y_norms = expected[state.n_params :].sqrt()
    target_gap = (meat.target_sums.cpu() - state.R_target.cpu()).abs().amax(0) / y_norms
    if pairing_decides(state, lambda tol: bool((target_gap > tol).any()) or meat.gram_gap > tol):
        raise InputError(
            "the data read for the robust covariance are not the data the model was "
            "fitted on (the rows of X and y are not paired as they were: rows reordered "
            "in one of them, or a file modified between passes); give the data it was "
            "fitted on (in Python the same X, y and sample_weight), unchanged until the end"
        )


def pairing_tolerance(state: LeastSquaresState) -> float:
    """Bound on |Qᵀỹ − R_target|/‖ỹ‖ and ‖QᵀQ − I‖_F for the fitted data.

    R is the exact factor of the rows perturbed by γ·‖column‖ in each column
    (:func:`~.rounding.householder_gamma`); through R_s⁻¹ that leaves γ·(1 + 2√p'·κ), κ
    that of the column-scaled R_s (power-of-two scales leave each column's norm in
    [½, 1)). The pass adds its own rounding of n terms, below γ.
    """
    return _pairing_tolerance_at(state, design_conditioning(state).value)


def pairing_decides(state: LeastSquaresState, test: Callable[[float], bool]) -> bool:
    """``test(pairing_tolerance(state))`` for a ``test`` monotone in the tolerance (a gap
    against it): decided from the cached bracket of κ where its ends agree, so the
    singular values are computed only where a gap falls between the two tolerances."""
    conditioning = design_conditioning(state)
    return conditioning.decide(lambda kappa: test(_pairing_tolerance_at(state, kappa)))


def _pairing_tolerance_at(state: LeastSquaresState, kappa: float) -> float:
    # Nondecreasing in κ, also in floating point: tests of it stay monotone.
    return householder_gamma(state) * (1 + 2 * math.sqrt(state.n_params) * kappa)


def robust_wald(
    state: LeastSquaresState, meat_z: torch.Tensor, slopes: torch.Tensor, skip: int
) -> float | None:
    """βᵀ V⁻¹ β / q for V = S M Sᵀ (S the slope rows of R⁻¹, the same for the shifted
    and unshifted design), without forming V: with M = L Lᵀ and (S L)ᵀ = Q T, it is
    ‖T⁻ᵀ β‖² / q. Forming V and solving would lose the digits a nearly collinear design
    leaves in it."""
    inv = triangular_inverse(state.R_design)
    try:
        vals, vecs = torch.linalg.eigh(meat_z.to(inv))
    except RuntimeError:  # not finite: nothing to test
        return None
    L = vecs * vals.clamp(min=0).sqrt()
    T = torch.linalg.qr((inv[skip:] @ L).T).R
    d = torch.diagonal(T).abs()
    if float(d.min()) <= 1e-10 * float(d.max()):
        return None  # singular robust covariance (e.g. fewer clusters than slopes)
    z = torch.linalg.solve_triangular(T.T, slopes.to(inv).unsqueeze(1), upper=False)
    return float((z**2).sum()) / len(slopes)
