"""Goodness-of-fit metrics, as pure functions on arrays."""

from __future__ import annotations

from typing import Any

import numpy as np


def r2_score(y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
    """Coefficient of determination, averaged uniformly over targets.

    R² = 1 − Σ w (y − ŷ)² / Σ w (y − ȳ_w)²  per target. A constant target gives 1.0 when
    predicted exactly and 0.0 otherwise (scikit-learn's convention).
    """
    yt = np.asarray(y_true, dtype=np.float64)
    yp = np.asarray(y_pred, dtype=np.float64)
    if yt.ndim == 1:
        yt = yt[:, None]
    if yp.ndim == 1:
        yp = yp[:, None]
    w = np.ones(len(yt)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    w = w[:, None]
    ss_res = (w * (yt - yp) ** 2).sum(axis=0)
    mean = (w * yt).sum(axis=0) / w.sum()
    ss_tot = (w * (yt - mean) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.where(ss_res == 0, 1.0, 0.0))
    return float(r2.mean())
