"""When a singular value counts as zero: torch-free, so that a model file's recorded
rank is checked against its R factor without loading torch (``torchlinreg._state_checks``)."""

from __future__ import annotations

import sys

EPS = sys.float_info.epsilon  # float64's unit roundoff ×2: 2⁻⁵²


def rank_tolerance(n_params: int) -> float:
    """Singular values of the column-scaled design below this are treated as zero.

    Columns are scaled so that each one's 2-norm lies in [0.5, 1); Householder QR
    leaves rounding of order p·ε there. Exactly collinear or constant columns show
    singular values of that size; genuinely ill-conditioned but independent ones (NIST
    Filip, κ ≈ 5·10⁹ scaled) stay far above it.
    """
    return 1000.0 * max(n_params, 1) * EPS
