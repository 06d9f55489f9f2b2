"""How far an exact solution can be trusted, and what the user is told about it.

The decision to refine a solution in extended precision, and the three warnings of
the exact estimators: a rank-deficient design, an ill-conditioned one, and accuracy
at risk where no refinement was possible. Each warning points at the user's call: the
first frame outside the package (:func:`user_stacklevel`).
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import AccuracyWarning, IllConditionedWarning, RankDeficientWarning

if TYPE_CHECKING:
    from types import FrameType

    from ..solvers.solve import Solution
    from ..solvers.state import LeastSquaresState

# Warn about conditioning above this κ (column-scaled): float64 data then determine
# fewer than ~8 digits of the coefficients in the worst case.
ILL_CONDITIONED = 1e8
# Refine in memory when the error bound of the QR solution exceeds this, or always
# when the data have at most CHEAP_CELLS values of [1, X]: there a step costs about a
# fit (~0.5 ms at 1,000 × 10), and the normwise bound misses a small coefficient's digits
# (NIST Norris: bound 1.5ε, intercept right to 12.8 digits unrefined, 14.1 refined).
RISK = 1e-13
CHEAP_CELLS = 1 << 17
# Columns named in a warning before the rest are only counted.
SHOWN = 10


def error_bound(state: LeastSquaresState, cond: float) -> float:
    """First-order worst-case bound on the relative error of a backward-stable solve:
    ε·(κ + κ²·tan θ), tan θ = ‖residual‖ / ‖fitted‖ of the centred target (the worst
    target), from R alone. A target with nothing fitted (y ⟂ X) has coefficients near
    zero, accurate in absolute terms: it does not count. A bound, not an estimate: the
    actual error is often orders of magnitude below it (two columns collinear to 1e-9
    bound 7e2, while the solution is right to 1e-8)."""
    from ..solvers.solve import EPS

    c = int(state.fit_intercept)
    fitted = (state.R_target[c:] ** 2).sum(0).sqrt()
    resid = (state.R_residual**2).sum(0).sqrt()
    ratios = [float(r / f) for f, r in zip(fitted, resid, strict=True) if float(f) > 0]
    tan = max(ratios, default=0.0)
    return EPS * (cond + cond**2 * tan)


def _worst_tan(state: LeastSquaresState) -> float:
    """tan θ of :func:`error_bound` (the worst target), from R alone."""
    c = int(state.fit_intercept)
    fitted = (state.R_target[c:] ** 2).sum(0).sqrt()
    resid = (state.R_residual**2).sum(0).sqrt()
    pairs = zip(fitted.tolist(), resid.tolist(), strict=True)
    return max((r / f for f, r in pairs if f > 0), default=0.0)


def bound_exceeds(state: LeastSquaresState, solution: Solution, limit: float) -> bool:
    """Whether :func:`error_bound` exceeds ``limit``, deciding from the bracket of κ
    where it can: the bound grows with κ, so it exceeds ``limit`` exactly when κ
    exceeds the root κ* of ε·(κ + κ²·tan θ) = limit."""
    from ..solvers.solve import EPS

    tan = _worst_tan(state)
    ratio = limit / EPS
    # The positive root, in the form without cancellation (κ* = limit/ε for tan θ = 0).
    kappa_star = 2 * ratio / (1 + math.sqrt(1 + 4 * tan * ratio))
    return solution.conditioning.kappa_exceeds(kappa_star)


def wants_refinement(
    refine: bool | str, state: LeastSquaresState, solution: Solution, *, small: bool
) -> bool:
    """Whether to refine ``solution``: never with ``refine=False`` or for a
    minimum-norm answer, always with ``refine=True``; with ``"auto"`` when the data
    are ``small`` (it costs nothing noticeable) or the error bound exceeds ``RISK``."""
    if refine is False or solution.rank < state.n_params:
        return False
    return refine is True or small or bound_exceeds(state, solution, RISK)


def warn_unrefined(state: LeastSquaresState, solution: Solution, reason: str) -> None:
    """:class:`AccuracyWarning` when a full-rank solution that could not be refined has
    digits at risk. ``reason`` says why, and what would allow refinement, in words true
    for every caller (the library and the command line)."""
    if solution.rank == state.n_params and bound_exceeds(state, solution, 10 * RISK):
        cond = solution.condition_number
        bound = error_bound(state, cond)
        warnings.warn(
            "accuracy at risk (worst-case relative error bound ε·(κ + κ²·tan θ) = "
            f"{bound:.1g}, κ = {cond:.2g} the condition number of the centred design, "
            "tan θ the residual over the fitted size; the actual error is often far "
            f"smaller) and the solution could not be refined: {reason}",
            AccuracyWarning,
            stacklevel=user_stacklevel(),
        )


def warn_about_design(
    state: LeastSquaresState, solution: Solution, features: Sequence[str]
) -> None:
    """:class:`RankDeficientWarning` naming the constant and dependent columns (from
    ``features``, one label per column), else :class:`IllConditionedWarning` when κ
    exceeds ``ILL_CONDITIONED``."""
    if solution.constant or solution.dependent:
        warnings.warn(
            f"X is rank deficient (rank {solution.rank} of {state.n_params} parameters); "
            f"{'; '.join(_rank_deficiency(state, solution, features))}. The minimum-norm "
            "solution is returned; drop redundant columns for unique coefficients",
            RankDeficientWarning,
            stacklevel=user_stacklevel(),
        )
    elif solution.conditioning.kappa_exceeds(ILL_CONDITIONED):
        warnings.warn(
            f"X is badly conditioned (condition number {solution.condition_number:.2g} "
            "after scaling columns): the coefficients are sensitive to tiny changes in the "
            "data; centre/scale polynomial terms or drop nearly collinear features",
            IllConditionedWarning,
            stacklevel=user_stacklevel(),
        )


def _rank_deficiency(
    state: LeastSquaresState, solution: Solution, features: Sequence[str]
) -> list[str]:
    """The causes of a rank deficiency, each naming its columns."""
    parts = []
    if state.n_observations < state.n_params:
        # Zero-weight rows are not observations: they determine nothing.
        parts.append(
            f"only {state.n_observations} observations (rows of positive weight) for "
            f"{state.n_params} parameters"
        )
    if solution.constant:
        what = "constant" if state.fit_intercept else "all zero"
        parts.append(f"{what}: {_listed(solution.constant, features)}")
    if solution.dependent:
        parts.append(f"linearly dependent: {_listed(solution.dependent, features)}")
    return parts


def _listed(indices: Sequence[int], features: Sequence[str]) -> str:
    labels = [features[j] for j in indices[:SHOWN]]
    if len(indices) > SHOWN:
        labels.append(f"... ({len(indices)} columns)")
    return ", ".join(labels)


def user_stacklevel() -> int:
    """``warnings.warn``'s ``stacklevel`` for a warning issued by the caller of this
    function that points at the first frame outside torchlinreg: the user's call,
    however many of the package's functions lie between (a count fixed by hand breaks
    whenever a public method gains a helper)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame: FrameType | None = sys._getframe(1)  # the caller of warnings.warn: level 1
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level
