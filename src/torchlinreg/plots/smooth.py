"""The smoother drawn through the residual panels: LOWESS (Cleveland 1979), as
statsmodels' ``lowess`` computes it (R's ``lowess`` differs only in tiny cut-offs of
the weights), on numpy alone."""

from __future__ import annotations

import numpy as np

# Rows of the distance matrix held at once: 256 × n floats stays small for any sample.
_BLOCK = 256


def lowess(
    x: np.ndarray, y: np.ndarray, frac: float = 2 / 3, iterations: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """The LOWESS smooth of ``y`` on ``x``: ``(x sorted, smoothed y at each x)``.

    At each ``x[i]`` a straight line is fitted by weighted least squares to its
    ``k = floor(frac * n)`` nearest points (2 ≤ k ≤ n), weighted by the tricube
    ``(1 - (d/h)³)³`` of the distance ``d`` over the distance ``h`` to the farthest of
    them; where fewer than two weights are positive the point keeps its own ``y``.
    Then ``iterations`` times the fit is redone with each point's weight also
    multiplied by the bisquare ``(1 - u²)²`` of ``u = min(|residual| / (6 × median
    |residual|), 1)``, so that outliers do not drag the line (a zero median keeps only
    the points fitted exactly). This is statsmodels'
    ``lowess(y, x, frac, it=iterations, delta=0)``; R's ``panel.smooth`` (used by
    ``plot.lm``) has the same ``frac`` and ``iterations`` defaults.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    n = x.shape[0]
    if n == 0:
        return x, y.copy()
    k = max(2, min(n, int(frac * n + 1e-10)))
    robustness = np.ones(n)
    fitted = _local_lines(x, y, robustness, k)
    for _ in range(iterations):
        robustness = _robustness(np.abs(y - fitted))
        fitted = _local_lines(x, y, robustness, k)
    return x, fitted


def _robustness(residual: np.ndarray) -> np.ndarray:
    """Bisquare weights of the residuals scaled by six times their median."""
    median = float(np.median(residual))
    u = (residual > 0).astype(np.float64) if median == 0 else residual / (6.0 * median)
    return (1.0 - np.minimum(u, 1.0) ** 2) ** 2


def _local_lines(x: np.ndarray, y: np.ndarray, robustness: np.ndarray, k: int) -> np.ndarray:
    """The locally weighted straight line's value at each ``x[i]``, in blocks of rows."""
    out = np.empty_like(y)
    for start in range(0, x.shape[0], _BLOCK):
        stop = min(start + _BLOCK, x.shape[0])
        out[start:stop] = _block(x, y, robustness, k, slice(start, stop))
    return out


def _block(x: np.ndarray, y: np.ndarray, robustness: np.ndarray, k: int, rows: slice) -> np.ndarray:
    at = x[rows]
    distance = np.abs(x[None, :] - at[:, None])
    # The k-th smallest distance: the radius of the k nearest points.
    h = np.partition(distance, k - 1, axis=1)[:, k - 1 : k]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(distance < h, distance / h, 1.0)
    w = (1.0 - u**3) ** 3 * robustness[None, :]
    usable = np.count_nonzero(w > 1e-12, axis=1) >= 2
    total = w.sum(axis=1, keepdims=True)
    w = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
    centre = w @ x
    offset = x[None, :] - centre[:, None]
    spread = np.maximum(np.einsum("ij,ij->i", w, offset**2), 1e-12)
    projection = w * (1.0 + (at - centre)[:, None] * offset / spread[:, None])
    return np.where(usable, projection @ y, y[rows])
