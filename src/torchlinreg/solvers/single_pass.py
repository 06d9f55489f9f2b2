"""Coefficients from the one-pass double-double Gram (:mod:`.dd_gram`), without the data.

With G = [G_AA G_AY; · G_YY] the cross products of √w ⊙ [1, X − x₀, Y − y₀] to
~2⁻¹⁰⁶, the normal equations G_AA θ_s = G_AY are solved in double-double: columns
scaled by exact powers of two, Gaussian elimination without pivoting (stable for a
symmetric positive definite matrix), back substitution. Forming G squares the condition
number, so the result is accurate to about κ²·2⁻¹⁰⁵ relative (κ of the column-scaled,
shifted design): 12 digits up to κ ≈ 6·10⁹, 10 up to 6·10¹⁰, against ε(κ + κ² tan θ)
for the QR solution (6 digits on NIST Wampler5). The intercept is shifted back in
double-double too, so a large offset x₀ costs nothing.

Why not iterative refinement with the state's R as preconditioner (corrected
semi-normal equations, which G would allow): it converges only while κ²·ε < 1, and
the direct double-double solve is as accurate, costs O(p³) on the small p kept here,
and needs no second path for κ beyond 10⁸ (NIST Filip).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import dd
from .dd_gram import DDGram
from .scaling import power_of_two_scale
from .state import LeastSquaresState
from .theta import split_theta, stack_theta

# The machine epsilon of double-double, as EPS = 2⁻⁵² is float64's: the Gram is exact
# to 2⁻¹⁰⁶ relative and each operation of the solve rounds at that level.
EPS_DD = 2.0**-105


_NOT_KEPT = (
    "partial_fit keeps the data's cross products only for designs narrow enough "
    "(see solvers.dd_gram.MAX_COLUMNS)"
)
_OTHER_ROWS = (
    "the model holds rows that partial_fit did not see one by one (fitted by fit() or "
    "loaded); refit with fit()"
)


@dataclass
class GramSolution:
    """θ (n_params, n_targets; intercept first, data units) from the Gram, or ``None``
    with the reason; ``error_estimate`` is the first-order relative error κ²·2⁻¹⁰⁵."""

    theta: torch.Tensor | None
    error_estimate: float
    reason: str


def _gaussian_elimination(Wh: torch.Tensor, Wl: torch.Tensor, p: int) -> dd.DD | None:
    """Solve W[:, :p] z = W[:, p:] in double-double (W symmetric positive definite in
    its first p columns); ``None`` when a pivot is not positive (numerically singular)."""
    Wh, Wl = Wh.clone(), Wl.clone()
    for j in range(p):
        if not float(Wh[j, j]) > 0:
            return None
        lh, ll = dd.dd_div(Wh[j + 1 :, j : j + 1], Wl[j + 1 :, j : j + 1], Wh[j, j], Wl[j, j])
        th, tl = dd.dd_mul(lh, ll, Wh[j : j + 1, j + 1 :], Wl[j : j + 1, j + 1 :])
        Wh[j + 1 :, j + 1 :], Wl[j + 1 :, j + 1 :] = dd.dd_add(
            Wh[j + 1 :, j + 1 :], Wl[j + 1 :, j + 1 :], -th, -tl
        )
    zh, zl = Wh[:, p:].clone(), Wl[:, p:].clone()
    for j in reversed(range(p)):
        zh[j], zl[j] = dd.dd_div(zh[j], zl[j], Wh[j, j], Wl[j, j])
        th, tl = dd.dd_mul(Wh[:j, j : j + 1], Wl[:j, j : j + 1], zh[j : j + 1], zl[j : j + 1])
        zh[:j], zl[:j] = dd.dd_add(zh[:j], zl[:j], -th, -tl)
    return zh, zl


def _unshift(state: LeastSquaresState, th: torch.Tensor, tl: torch.Tensor) -> torch.Tensor:
    """θ_s (shifted data) → θ in the data's units, in double-double: b = b_s + y₀ − x₀ᵀβ."""
    if not state.fit_intercept:
        return th + tl
    (beta_h, b_h), (beta_l, b_l) = split_theta(th, True), split_theta(tl, True)
    assert b_h is not None and b_l is not None
    x0 = state.shift_x.unsqueeze(1)
    ph, pl = dd.dd_mul(x0, torch.zeros_like(x0), beta_h, beta_l)
    sh, sl = dd.dd_sum(ph, pl, dim=0)
    bh, bl = dd.dd_add(b_h, b_l, state.shift_y, torch.zeros_like(state.shift_y))
    bh, bl = dd.dd_add(bh, bl, -sh, -sl)
    return stack_theta(beta_h + beta_l, bh + bl)


def solve_from_gram(gram: DDGram | None, state: LeastSquaresState, cond: float) -> GramSolution:
    """Least-squares θ from the double-double Gram kept beside ``state``.

    ``cond`` is the state's condition number (column-scaled, shifted design); it sets the
    error estimate κ²·2⁻¹⁰⁵. No θ when no Gram was kept for exactly these rows, when it
    overflowed, or when the normal equations are numerically singular in double-double.
    """
    estimate = EPS_DD * cond**2
    if gram is None:
        return GramSolution(None, estimate, _NOT_KEPT)
    if not gram.covers(state):
        return GramSolution(None, estimate, _OTHER_ROWS)
    G = gram.gram()
    if G is None:
        return GramSolution(None, estimate, "the data's cross products overflow float64")
    Gh, Gl = G
    p = state.n_params
    # Power-of-two scaling by the columns' norms: exact, and it balances the pivots.
    D = power_of_two_scale(Gh.diagonal().sqrt())
    D[p:] = 1.0
    Wh, Wl = Gh[:p] * D[:p].unsqueeze(1) * D, Gl[:p] * D[:p].unsqueeze(1) * D
    z = _gaussian_elimination(Wh, Wl, p)
    if z is None:
        return GramSolution(None, estimate, "the double-double normal equations are singular")
    scale = D[:p].unsqueeze(1)
    theta = _unshift(state, z[0] * scale, z[1] * scale)
    reason = (
        "partial_fit's one-pass double-double cross products bring the error only to "
        f"about condition number² · 2⁻¹⁰⁵ = {estimate:.1g}"
    )
    return GramSolution(theta, estimate, reason)
