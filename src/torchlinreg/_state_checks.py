"""What a model file's saved R factor must agree with: its counts, the recorded rank and
the coefficients, checked with numpy alone.

The state is the upper-triangular R of √w ⊙ [1, X − x₀, Y − y₀] (the intercept column
only with an intercept; see :mod:`torchlinreg.solvers.state`). Its leading block R_A
(intercept and features) is the design's, its trailing columns the targets'. A crafted
R with a recomputed checksum (all zeros, a singular design block) would otherwise be
used as it is: standard errors of NaN, t = ±∞ and p < 1e-16 for coefficients that no
data determined. Each check below is a property every fitted state has, with a
tolerance from the arithmetic that made it, so it never refuses a real model:

* With an intercept, R's first column is that of √w, so |R₀₀| = √(Σw).
* A design block of zeros determines no coefficients: the least-squares (minimum-norm)
  and ridge solutions are then exactly zero.
* A rank recorded as full means every singular value of the column-scaled centred
  design exceeds the rank tolerance; the smallest singular value of a triangular matrix
  is at most its smallest diagonal entry, so each diagonal entry must exceed it too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError
from .solvers.tolerance import EPS, rank_tolerance


def _column_norms(M: np.ndarray) -> np.ndarray:
    """2-norm of each column, without overflow: each column divided by its largest
    entry first (zero columns have norm 0)."""
    top = np.abs(M).max(axis=0, initial=0.0)
    safe = np.where(top > 0, top, 1.0)
    return np.asarray(top * np.linalg.norm(M / safe, axis=0))


def check_state_numbers(
    R: np.ndarray,
    counts: dict[str, Any],
    coef: np.ndarray,
    *,
    fit_intercept: bool,
    full_rank: bool,
) -> None:
    """Check a saved state's R (m, m) against its counts (``n_samples``,
    ``weight_sum``), the coefficients (k, p) and, when ``full_rank``, a recorded rank
    of full (intercept included); raises :class:`InputError`."""
    c = int(fit_intercept)
    n_params = coef.shape[1] + c
    RA = R[:n_params, :n_params]
    if fit_intercept:
        # R₀₀ is the norm of √w, Σw its square, each summed over the n rows with
        # relative rounding below n·ε; each of the (at most n) QR folds and merges a
        # row goes through adds at most m·ε to R₀₀.
        root = float(np.sqrt(counts["weight_sum"]))
        tol = 10.0 * R.shape[0] * (counts["n_samples"] + 1) * EPS
        if not abs(abs(float(R[0, 0])) - root) <= tol * root:
            raise InputError(
                f"the saved state is inconsistent: its R starts with {float(R[0, 0]):.17g}, "
                f"but a state of weight sum {counts['weight_sum']!r} has |R[0,0]| = "
                f"{root:.17g}; the file is damaged"
            )
    centred = RA[c:, c:]
    if not centred.any() and coef.any():
        raise InputError(
            "the saved state is inconsistent: its design block is zero, which determines "
            "no coefficients, but the coefficients are not zero; the file is damaged"
        )
    if full_rank:
        # Each feature's column scaled to norm 1: the solver's power-of-two scaling
        # leaves norms in [0.5, 1), so its diagonal entries are below these. Half the
        # tolerance leaves room for the rounding of its singular values (~p·ε).
        norms = _column_norms(RA)[c:]
        diagonal = np.abs(np.diag(centred))
        scaled = np.divide(diagonal, norms, out=np.zeros_like(diagonal), where=norms > 0)
        if scaled.size and float(scaled.min()) <= rank_tolerance(n_params) / 2:
            j = int(scaled.argmin())
            raise InputError(
                f"the saved state is inconsistent: the model records full rank "
                f"({n_params}), but its R is singular at feature {j} (scaled diagonal "
                f"{float(scaled[j]):.3g}); the file is damaged"
            )
