"""The numbers behind R's ``plot.lm`` panels, as plain arrays: what is drawn where,
the smoother's input and output, the reference lines and which points are labelled.
No drawing here (:mod:`.diagnostics` draws them), so every number can be tested."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .smooth import lowess

# R's plot.lm labels the three most extreme points of each panel (id.n = 3).
ID_N = 3
# The Cook's distances whose contours R draws on the residuals-against-leverage panel.
COOK_LEVELS = (0.5, 1.0)


@dataclass(frozen=True)
class Line:
    """A reference line: points ``(x, y)`` joined, with a legend ``label``."""

    x: np.ndarray
    y: np.ndarray
    label: str = ""
    style: str = "dashed"


@dataclass(frozen=True)
class Band:
    """Exact aggregates by bins of ``x`` (every row, not a sample): at each bin's
    centre ``x``, the ``lower``/``upper`` edges drawn as a band and ``middle`` as a
    line; ``count`` rows in each bin."""

    x: np.ndarray
    lower: np.ndarray
    middle: np.ndarray
    upper: np.ndarray
    count: np.ndarray
    label: str = ""


@dataclass(frozen=True)
class Panel:
    """One diagnostic panel: the points ``(x, y)`` (row numbers ``rows``), the
    smoother's output through them (``smooth``: x sorted and the smoothed y, from
    :func:`~.smooth.lowess` on exactly these points), the positions in ``x`` of the
    points labelled by row (``labelled``), reference ``lines`` and an exact ``band``
    when the points are a sample of more rows."""

    title: str
    xlabel: str
    ylabel: str
    x: np.ndarray
    y: np.ndarray
    rows: np.ndarray
    smooth: tuple[np.ndarray, np.ndarray] | None
    labelled: np.ndarray
    lines: list[Line] = field(default_factory=list)
    band: Band | None = None
    note: str = ""


def most_extreme(score: np.ndarray, id_n: int = ID_N) -> np.ndarray:
    """The positions of the ``id_n`` largest ``score`` values, largest first; ties go
    to the earlier position (R's ``sort.list(score, decreasing = TRUE)[1:id.n]``).
    Non-finite scores are never labelled."""
    score = np.asarray(score, dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(score))
    order = finite[np.argsort(-score[finite], kind="stable")]
    return order[: max(0, id_n)]


def _rows(rows: np.ndarray | None, n: int) -> np.ndarray:
    return np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)


def _smooth(
    x: np.ndarray, y: np.ndarray, first: int | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """LOWESS through the finite points among the ``first`` (all when None)."""
    x, y = x[:first], y[:first]
    finite = np.isfinite(x) & np.isfinite(y)
    return lowess(x[finite], y[finite]) if np.count_nonzero(finite) >= 2 else None


def residuals_fitted(
    fitted: np.ndarray,
    resid: np.ndarray,
    rows: np.ndarray | None = None,
    *,
    id_n: int = ID_N,
    band: Band | None = None,
    smooth_first: int | None = None,
) -> Panel:
    """Residuals against fitted values, a smoother through them (through the first
    ``smooth_first`` points when given: a sample's) and a line at zero; the ``id_n``
    points of largest absolute residual are labelled."""
    x, y = np.asarray(fitted, np.float64), np.asarray(resid, np.float64)
    zero = Line(np.array([np.min(x), np.max(x)]) if x.size else np.zeros(2), np.zeros(2))
    return Panel(
        "Residuals vs Fitted",
        "Fitted values",
        "Residuals",
        x,
        y,
        _rows(rows, x.size),
        _smooth(x, y, smooth_first),
        most_extreme(np.abs(y), id_n),
        [Line(zero.x, zero.y, "", "dotted")],
        band,
    )


def normal_quantiles(n: int) -> np.ndarray:
    """The standard normal quantiles at R's ``ppoints(n)``: ``(i - a) / (n + 1 - 2a)``,
    ``i = 1..n``, with ``a = 3/8`` for ``n <= 10`` and ``1/2`` above."""
    from scipy.special import ndtri

    a = 3 / 8 if n <= 10 else 1 / 2
    return ndtri((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))


def normal_qq(std_resid: np.ndarray, rows: np.ndarray | None = None, *, id_n: int = ID_N) -> Panel:
    """Standardized residuals against normal quantiles (R's ``qqnorm``: the i-th
    smallest residual at the i-th of :func:`normal_quantiles`), with the line through
    the first and third quartiles (R's ``qqline``); the ``id_n`` points of largest
    absolute standardized residual are labelled."""
    y = np.asarray(std_resid, np.float64)
    x = np.empty_like(y)
    x[np.argsort(y, kind="stable")] = normal_quantiles(y.size)
    return Panel(
        "Normal Q-Q",
        "Theoretical quantiles",
        "Standardized residuals",
        x,
        y,
        _rows(rows, y.size),
        None,
        most_extreme(np.abs(y), id_n),
        [quartile_line(y)] if y.size else [],
    )


def quartile_line(sample: np.ndarray) -> Line:
    """R's ``qqline``: through (Φ⁻¹(0.25), q₀.₂₅) and (Φ⁻¹(0.75), q₀.₇₅) of the sample
    (quantiles interpolated as R's type 7, numpy's default), over ±3."""
    from scipy.special import ndtri

    qx = ndtri(np.array([0.25, 0.75]))
    qy = np.quantile(sample, [0.25, 0.75])
    slope = (qy[1] - qy[0]) / (qx[1] - qx[0])
    x = np.array([-3.0, 3.0])
    return Line(x, qy[0] + slope * (x - qx[0]), "", "dotted")


def scale_location(
    fitted: np.ndarray,
    std_resid: np.ndarray,
    rows: np.ndarray | None = None,
    *,
    id_n: int = ID_N,
    band: Band | None = None,
    smooth_first: int | None = None,
) -> Panel:
    """The square root of the absolute standardized residuals against fitted values,
    with a smoother (as :func:`residuals_fitted`); the ``id_n`` points of largest
    absolute standardized residual are labelled."""
    x = np.asarray(fitted, np.float64)
    y = np.sqrt(np.abs(np.asarray(std_resid, np.float64)))
    return Panel(
        "Scale-Location",
        "Fitted values",
        "√|Standardized residuals|",
        x,
        y,
        _rows(rows, x.size),
        _smooth(x, y, smooth_first),
        most_extreme(y, id_n),
        [],
        band,
    )


def cook_contours(
    n_params: int, h_max: float, levels: tuple[float, ...] = COOK_LEVELS, points: int = 101
) -> list[Line]:
    """Where Cook's distance equals each level on the standardized residual against
    leverage plane: ``r = ±√(D p (1 − h) / h)`` (``D = r² h / (p (1 − h))``), for
    ``h`` from ``h_max / 100`` to ``h_max`` (below 1), one line per sign and level."""
    top = min(float(h_max), 1.0 - 1e-9)
    h = np.linspace(top / 100, top, points)
    lines = []
    for level in levels:
        r = np.sqrt(level * n_params * (1 - h) / h)
        label = f"Cook's distance {level:g}"
        lines += [Line(h, r, label), Line(h, -r, "")]
    return lines


def residuals_leverage(
    leverage: np.ndarray,
    std_resid: np.ndarray,
    cooks: np.ndarray,
    n_params: int,
    rows: np.ndarray | None = None,
    *,
    id_n: int = ID_N,
    levels: tuple[float, ...] = COOK_LEVELS,
    smooth_first: int | None = None,
) -> Panel:
    """Standardized residuals against leverage, a smoother (as
    :func:`residuals_fitted`), and the contours of Cook's
    distance at ``levels`` (``n_params``: the fitted parameters, p); the ``id_n``
    points of largest Cook's distance are labelled."""
    x = np.asarray(leverage, np.float64)
    y = np.asarray(std_resid, np.float64)
    finite = x[np.isfinite(x) & (x < 1)]
    h_max = float(np.max(finite)) if finite.size else 0.0
    lines = cook_contours(n_params, h_max, levels) if h_max > 0 else []
    return Panel(
        "Residuals vs Leverage",
        "Leverage",
        "Standardized residuals",
        x,
        y,
        _rows(rows, x.size),
        _smooth(x, y, smooth_first),
        most_extreme(np.asarray(cooks, np.float64), id_n),
        lines,
    )
