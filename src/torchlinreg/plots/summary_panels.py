"""The four diagnostic panels from what an influence pass keeps: for any number of
rows, a bounded sample of points, the most influential rows, and exact binned bands."""

from __future__ import annotations

from typing import Any

import numpy as np

from .panels import (
    ID_N,
    Band,
    Panel,
    most_extreme,
    quartile_line,
    residuals_fitted,
    residuals_leverage,
    scale_location,
)

_DRAWN = ("fitted", "weighted_resid", "student_resid_internal", "leverage", "cooks_distance")


def drawn_points(summary: Any) -> dict[str, np.ndarray]:
    """The points drawn: the sample, then the top rows by Cook's distance that it
    lacks (so the most influential rows are always drawn and can be labelled), each
    as ``{"row": ..., statistic: ...}`` with the statistics of :data:`_DRAWN`."""
    sample, top = summary.sample, summary.top
    extra = ~np.isin(top.row, sample.row)
    return {
        name: np.concatenate([getattr(sample, name), getattr(top, name)[extra]])
        for name in ("row", *_DRAWN)
    }


def residual_band(summary: Any) -> Band:
    """Every observation's weighted residuals by fitted value: mean ± one standard
    deviation in each non-empty bin, at the bin's mean fitted value."""
    b = summary.bins
    keep = b.count > 0
    mean, sd = b.resid_mean[keep], b.resid_std[keep]
    return Band(
        b.fitted_mean[keep], mean - sd, mean, mean + sd, b.count[keep], "all rows: mean ± sd"
    )


def scale_band(summary: Any) -> Band:
    """As :func:`residual_band`, for √|standardized residual|."""
    b = summary.bins
    keep = b.count > 0
    mean, sd = b.scale_mean[keep], b.scale_std[keep]
    return Band(
        b.fitted_mean[keep], mean - sd, mean, mean + sd, b.count[keep], "all rows: mean ± sd"
    )


def summary_panels(summary: Any, *, id_n: int = ID_N) -> list[Panel]:
    """R's four ``plot.lm`` panels from an
    :class:`~torchlinreg.stats.influence.InfluenceSummary`.

    When the sample holds every observation (``summary.qq.exact``) they are R's
    panels: every point, the smoother through all of them, the ``id_n`` most extreme
    labelled. Otherwise the points are the sample plus the most influential rows, the
    smoother runs through the sample alone (a uniform sample: no bias toward the
    extremes), the residual panels carry the exact band of every row (mean ± sd by
    fitted value), the Q-Q panel is the sample's, and labels go to the most extreme
    points drawn: on the leverage panel those are exactly the rows of largest Cook's
    distance of all (the top rows are drawn); on the others, of the points drawn."""
    points = drawn_points(summary)
    exact = bool(summary.qq.exact)
    n_sample = summary.sample.row.shape[0]
    # The smoother through the uniform sample only (the top rows follow it).
    first = None if exact else n_sample
    note = "" if exact else (
        f"{n_sample:,} of {summary.n:,} observations sampled, plus the most influential"
    )  # fmt: skip
    bands = (None, None) if exact else (residual_band(summary), scale_band(summary))
    row, fitted = points["row"], points["fitted"]
    resid, std = points["weighted_resid"], points["student_resid_internal"]
    panel_1 = residuals_fitted(fitted, resid, row, id_n=id_n, band=bands[0], smooth_first=first)
    panel_3 = scale_location(fitted, std, row, id_n=id_n, band=bands[1], smooth_first=first)
    panel_4 = residuals_leverage(
        points["leverage"], std, points["cooks_distance"], summary.k, row, id_n=id_n,
        smooth_first=first,
    )  # fmt: skip
    qq = summary.qq
    second = Panel("Normal Q-Q", "Theoretical quantiles", "Standardized residuals",
                   qq.theoretical, qq.sample, qq.row, None, most_extreme(np.abs(qq.sample), id_n),
                   [quartile_line(qq.sample)] if qq.sample.size else [])  # fmt: skip
    return [_noted(p, note) for p in (panel_1, second, panel_3, panel_4)]


def _noted(panel: Panel, note: str) -> Panel:
    from dataclasses import replace

    return replace(panel, note=note) if note else panel
