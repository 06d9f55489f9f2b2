"""Statistics of weights whose sums of squares overflow float64, from R scaled by 2⁻ᵉ.

Multiplying every weight by one constant c (R by √c) changes no statistic: RSS and TSS
scale together, so R², F, t and p do not move; σ² scales by c and (AᵀWA)⁻¹ by 1/c, so
standard errors do not; nor does the Gaussian log-likelihood when Σ log w shifts by
n·log c with RSS. With c = 4⁻ᵉ the scaling is exact (a power of two), so statistics of
weights near 1e308 are computed as those of weights near 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..solvers.state import LeastSquaresState

# |R| up to 2⁴⁰⁰: its squares, and sums of them over any number of columns, are finite.
_LIMIT_EXPONENT = 400


@dataclass(frozen=True)
class ScaledWeights:
    """``state`` with every weight multiplied by 4⁻ᵉ (``exponent`` e; 0: unchanged)."""

    state: LeastSquaresState
    exponent: int
    original: LeastSquaresState

    @property
    def sqrt_weight_scale(self) -> float:
        """2⁻ᵉ, the factor of every √w."""
        return math.ldexp(1.0, -self.exponent)

    @property
    def log_weight_sum(self) -> float:
        """Σ log(w·4⁻ᵉ) over the observations."""
        n = self.original.n_observations
        return self.original.log_weight_sum - 2 * self.exponent * math.log(2) * n

    @property
    def weight_sum(self) -> float | None:
        """Σ w·4⁻ᵉ; None where Σ w overflowed and no intercept column holds it (R₀₀² = Σ w)."""
        total = self.original.weight_sum
        if math.isfinite(total):
            return math.ldexp(total, -2 * self.exponent)
        return float(self.state.R[0, 0]) ** 2 if self.state.fit_intercept else None


def scale_weights(state: LeastSquaresState) -> ScaledWeights:
    """The state with weights scaled by a power of four where R's squares could overflow."""
    top = float(state.R.abs().max())
    if not math.isfinite(top) or top <= math.ldexp(1.0, _LIMIT_EXPONENT):
        return ScaledWeights(state, 0, state)
    e = math.frexp(top)[1] - _LIMIT_EXPONENT
    R = state.R * math.ldexp(1.0, -e)
    scaled = LeastSquaresState.from_parts(
        R, state.shift_x, state.shift_y, state.counts, fit_intercept=state.fit_intercept
    )
    return ScaledWeights(scaled, e, state)
