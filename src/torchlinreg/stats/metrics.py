"""Goodness-of-fit metrics, as pure functions on arrays."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..errors import InputError


def r2_score(y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
    """Coefficient of determination, averaged uniformly over targets: scikit-learn's
    ``r2_score`` (``force_finite=True``), in the same arithmetic, except for constant
    targets, which it can turn into huge numbers.

    R² = 1 − Σ w (y − ŷ)² / Σ w (y − ȳ_w)²  per target, ȳ_w = Σ w y / Σ w. A target
    with no variation (the same value in every row of non-zero weight) has
    Σ w (y − ȳ_w)² = 0 exactly, and gives 1.0 when predicted exactly and 0.0
    otherwise; fewer than two rows give NaN (R² is not defined), with a warning.
    """
    yt = np.asarray(y_true, dtype=np.float64)
    yp = np.asarray(y_pred, dtype=np.float64)
    if yt.ndim == 1:
        yt = yt[:, None]
    if yp.ndim == 1:
        yp = yp[:, None]
    if len(yp) < 2:
        warnings.warn(
            "R² is not well-defined with fewer than two samples", UserWarning, stacklevel=2
        )
        return float("nan")
    w = np.ones(len(yt)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    if yp.shape != yt.shape or w.shape != (len(yt),):
        raise InputError(
            f"y_true {yt.shape}, y_pred {yp.shape} and sample_weight {w.shape} must "
            "describe the same rows and targets"
        )
    if not w.any():
        raise InputError(
            "sample_weight is zero for every row; R² needs at least one positive weight"
        )
    w = w[:, None]
    ss_res = (w * (yt - yp) ** 2).sum(axis=0)
    mean = (w * yt).sum(axis=0) / w.sum()
    ss_tot = (w * (yt - mean) ** 2).sum(axis=0)
    # ȳ_w, rounded, need not be the constant itself (e.g. 0.1 under uneven weights, or
    # 123.456 over 40 rows): Σ w (y − ȳ_w)² is then ~1e-30 instead of 0, and dividing by
    # it gives R² ≈ −1e35 (scikit-learn's answer). Constancy is decided exactly instead.
    counted = yt[w[:, 0] != 0]
    ss_tot[counted.max(axis=0) == counted.min(axis=0)] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_res == 0, 1.0, np.where(ss_tot != 0, 1.0 - ss_res / ss_tot, 0.0))
    return float(r2.mean())


class StreamingMetrics:
    """MSE, RMSE, MAE and R² accumulated chunk by chunk, in one pass.

    The target's variance uses Chan et al.'s pairwise update of (count, mean, M2), so R²
    does not suffer the cancellation of Σy² − (Σy)²/n on large, offset data.
    """

    def __init__(self, n_targets: int) -> None:
        self.shift: np.ndarray | None = None  # the first y: keeps sums small for offset data
        self.n = 0
        self.sse = np.zeros(n_targets)
        self.sae = np.zeros(n_targets)
        self.mean = np.zeros(n_targets)
        self.m2 = np.zeros(n_targets)

    def update(self, y: Any, pred: Any) -> None:
        y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        pred = np.asarray(pred, dtype=np.float64).reshape(len(y), -1)
        m = len(y)
        if m == 0:
            return
        if self.shift is None:
            self.shift = y[0].copy()
        err = y - pred
        y = y - self.shift
        self.sse += (err**2).sum(0)
        self.sae += np.abs(err).sum(0)
        mean_b = y.mean(0)
        self._add_moments(m, mean_b, ((y - mean_b) ** 2).sum(0))

    def merge(self, other: StreamingMetrics) -> StreamingMetrics:
        """Add the metrics of the rows after these (another rank's); returns ``self``."""
        if other.n == 0:
            return self
        assert other.shift is not None
        if self.shift is None:
            self.shift = other.shift.copy()
        self.sse += other.sse
        self.sae += other.sae
        # The other part's mean, moved to this part's shift.
        self._add_moments(other.n, other.mean + (other.shift - self.shift), other.m2)
        return self

    def _add_moments(self, m: int, mean_b: np.ndarray, m2_b: np.ndarray) -> None:
        """Chan et al.'s pairwise rule: (count, mean, M2) of these rows and m more."""
        total = self.n + m
        delta = mean_b - self.mean
        self.mean += delta * m / total
        self.m2 += m2_b + delta**2 * self.n * m / total
        self.n = total

    def result(self, names: list[str]) -> dict[str, Any]:
        mse = self.sse / self.n
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(self.m2 > 0, 1.0 - self.sse / self.m2, np.nan)
        per = {
            name: {
                "mse": float(mse[j]),
                "rmse": float(np.sqrt(mse[j])),
                "mae": float(self.sae[j] / self.n),
                "r2": None if np.isnan(r2[j]) else float(r2[j]),
            }
            for j, name in enumerate(names)
        }
        return {"n": self.n, "targets": per}
