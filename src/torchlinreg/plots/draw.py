"""The pictures, drawn with matplotlib's object API from the numbers of
:mod:`.panels`, :mod:`.coefficients` and :mod:`.training`. Each function returns a
``matplotlib.figure.Figure``; :func:`~._mpl.save` writes one to a file."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._mpl import new_figure, settings
from .coefficients import CoefficientIntervals
from .panels import Panel
from .training import GradientPath, TrainingCurve

_POINT = "#4c72b0"
_SMOOTH = "#c0392b"
_REFERENCE = "#7f7f7f"
_BAND = "#f0b27a"


def draw_panel(ax: Any, panel: Panel) -> None:
    """One diagnostic panel on the axes ``ax``."""
    if panel.band is not None:
        b = panel.band
        ax.fill_between(b.x, b.lower, b.upper, color=_BAND, alpha=0.45, lw=0, label=b.label)
        ax.plot(b.x, b.middle, color=_BAND, lw=1.2)
    # Markers of one line, not a scatter collection: one marker path and a <use> per
    # point in SVG, without the collection's per-point style (4x faster to write).
    ax.plot(panel.x, panel.y, ls="none", marker="o", ms=3, mfc="none", mec=_POINT, mew=0.6)
    if panel.smooth is not None:
        ax.plot(*panel.smooth, color=_SMOOTH, lw=1.2)
    for line in panel.lines:
        ax.plot(line.x, line.y, color=_REFERENCE, lw=0.9, ls=line.style, label=line.label or None)
    for i in panel.labelled:
        ax.annotate(
            str(int(panel.rows[i])),
            (panel.x[i], panel.y[i]),
            xytext=(3, 2),
            textcoords="offset points",
            fontsize=7,
        )
    ax.set(title=panel.title, xlabel=panel.xlabel, ylabel=panel.ylabel)
    if panel.lines and panel.lines[0].label:
        _keep_limits_to_points(ax, panel)
        ax.legend(loc="best", fontsize=7, frameon=False)
    if panel.note:
        ax.text(0.01, 0.01, panel.note, transform=ax.transAxes, fontsize=7, color=_REFERENCE)


def _keep_limits_to_points(ax: Any, panel: Panel) -> None:
    """Cook's contours run off to infinity at small leverage: keep the axes on the
    points (as R does), with a little room."""
    y = panel.y[np.isfinite(panel.y)]
    if y.size:
        low, high = float(y.min()), float(y.max())
        pad = 0.08 * max(high - low, 1.0)
        ax.set_ylim(low - pad, high + pad)
    x = panel.x[np.isfinite(panel.x)]
    if x.size:
        ax.set_xlim(0, float(x.max()) * 1.08 or 1.0)


def diagnostics_figure(panels: list[Panel]) -> Any:
    """The four panels of R's ``plot.lm`` on a 2 × 2 grid."""
    with settings():
        fig = new_figure(9.0, 7.5)
        for ax, panel in zip(fig.subplots(2, 2).ravel(), panels, strict=False):
            draw_panel(ax, panel)
    return fig


def coefficient_figure(ci: CoefficientIntervals) -> Any:
    """Each coefficient's estimate and confidence interval, one row per coefficient."""
    with settings():
        fig = new_figure(6.5, 1.2 + 0.32 * len(ci.names))
        ax = fig.add_subplot()
        rows = np.arange(len(ci.names))[::-1]
        lower, upper = ci.estimate - ci.lower, ci.upper - ci.estimate
        ax.errorbar(ci.estimate, rows, xerr=[lower, upper], fmt="o", color=_POINT, capsize=3)
        ax.axvline(0.0, color=_REFERENCE, lw=0.8, ls="dotted")
        ax.set_yticks(rows, ci.names)
        ax.set(
            title=f"{ci.target}: estimates with {ci.level:.0%} confidence intervals",
            xlabel="coefficient",
        )
    return fig


def draw_training_curve(ax: Any, curve: TrainingCurve) -> None:
    """Cost per epoch on a log scale, with the exact optimum's cost as a line when it
    is within the axes (a note gives it otherwise: a cost of zero has no place there)."""
    ax.plot(curve.epoch, curve.cost, color=_POINT, lw=1.2, label="cost per epoch")
    ax.set_yscale("log", nonpositive="mask")
    positive = curve.cost[curve.cost > 0]
    exact = curve.exact_cost
    if exact is not None and positive.size and exact >= positive.min() * 1e-3:
        ax.axhline(exact, color=_SMOOTH, lw=1.0, ls="dashed", label=f"exact optimum {exact:.4g}")
    elif exact is not None:
        ax.text(0.98, 0.96, f"exact optimum: cost {exact:.3g}", transform=ax.transAxes,
                ha="right", va="top", fontsize=8, color=_SMOOTH)  # fmt: skip
    ax.set(title="Training curve", xlabel="epoch", ylabel="cost (log scale)")
    ax.legend(loc="upper right" if exact is None else "lower left", fontsize=7, frameon=False)


def training_curve_figure(curve: TrainingCurve) -> Any:
    """The training curve alone."""
    with settings():
        fig = new_figure(6.5, 4.0)
        draw_training_curve(fig.add_subplot(), curve)
    return fig


def draw_gradient_path(ax: Any, path: GradientPath) -> None:
    """The path over the cost: contours for two parameters, the cost curve for one."""
    if len(path.names) == 2:
        contours = ax.contour(*path.grid, path.cost, levels=path.levels, colors=_REFERENCE,
                              linewidths=0.6)  # fmt: skip
        ax.clabel(contours, fontsize=6, fmt="%.3g")
        ax.plot(path.path[:, 0], path.path[:, 1], color=_POINT, lw=1.0, marker=".", ms=2)
        ax.plot(*path.optimum, marker="*", ms=10, color=_SMOOTH, ls="none", label="exact optimum")
        ax.set(xlabel=path.names[0], ylabel=path.names[1])
    else:
        ax.plot(path.grid[0], path.cost, color=_REFERENCE, lw=0.9)
        ax.plot(path.path[:, 0], path.path_cost, color=_POINT, lw=1.0, marker=".", ms=3)
        ax.plot(path.optimum[0], path.optimum_cost, marker="*", ms=10, color=_SMOOTH, ls="none",
                label="exact optimum")  # fmt: skip
        ax.set(xlabel=path.names[0], ylabel="cost")
    ax.set_title("Gradient path over the cost")
    ax.legend(loc="best", fontsize=7, frameon=False)


def gradient_path_figure(path: GradientPath, curve: TrainingCurve | None = None) -> Any:
    """The gradient path, and beside it the training curve when given (the demo's
    picture)."""
    with settings():
        fig = new_figure(11.0 if curve is not None else 6.0, 4.5)
        axes = fig.subplots(1, 2 if curve is not None else 1, squeeze=False)[0]
        draw_gradient_path(axes[0], path)
        if curve is not None:
            draw_training_curve(axes[1], curve)
    return fig
