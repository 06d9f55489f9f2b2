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
    hood = _Neighbourhoods(x, k)
    fitted = _local_lines(hood, y, np.ones(n))
    for _ in range(iterations):
        fitted = _local_lines(hood, y, _robustness(np.abs(y - fitted)))
    return x, fitted


def _robustness(residual: np.ndarray) -> np.ndarray:
    """Bisquare weights of the residuals scaled by six times their median."""
    median = float(np.median(residual))
    u = (residual > 0).astype(np.float64) if median == 0 else residual / (6.0 * median)
    return (1.0 - np.minimum(u, 1.0) ** 2) ** 2


class _Neighbourhoods:
    """For each block of points: the tricube weights ``T`` of every point's k nearest,
    and ``T·d``, ``T·d²`` with ``d = x_j − x_i``. The robustness iterations leave them
    unchanged, so each iteration is two matrix products; they are kept when they fit in
    ``_KEEP`` floats, else recomputed block by block (memory O(block × n) for any n)."""

    def __init__(self, x: np.ndarray, k: int) -> None:
        self.x, self.k = x, k
        n = x.shape[0]
        self.blocks = [slice(s, min(s + _BLOCK, n)) for s in range(0, n, _BLOCK)]
        self.kept = [self._moments(b) for b in self.blocks] if 3 * n * n <= _KEEP else None

    def _moments(self, rows: slice) -> np.ndarray:
        x = self.x
        d = x[None, :] - x[rows, None]
        distance = np.abs(d)
        # The k-th smallest distance: the radius of the k nearest points.
        h = np.partition(distance, self.k - 1, axis=1)[:, self.k - 1 : self.k]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(distance < h, distance / h, 1.0)
        t = (1.0 - u**3) ** 3
        td = t * d
        return np.stack([t, td, td * d])  # (3, rows, n)

    def moments(self, j: int) -> np.ndarray:
        return self.kept[j] if self.kept is not None else self._moments(self.blocks[j])


# The weights kept between iterations up to this many floats (96 MiB: 2,048 points).
_KEEP = 3 * 2048 * 2048


def _local_lines(hood: _Neighbourhoods, y: np.ndarray, robustness: np.ndarray) -> np.ndarray:
    """The locally weighted straight line's value at each ``x[i]``, in blocks of rows:
    from the weighted moments about ``x[i]`` (weights ``w = T·r``): ``S = Σw``,
    ``c = Σw·d / S``, spread ``Σw·d² / S − c²``, and the line's value
    ``Σw·y / S − c·(Σw·d·y / S − c·Σw·y / S) / spread``."""
    out = np.empty_like(y)
    columns = np.column_stack([robustness, robustness * y])
    for j, rows in enumerate(hood.blocks):
        m = hood.moments(j)
        sums = m @ columns  # (3, rows, 2): Σw, Σw·y; Σw·d, Σw·d·y; Σw·d², ·
        usable = np.count_nonzero(m[0] * robustness[None, :] > 1e-12, axis=1) >= 2
        total = sums[0, :, 0]
        ok = total > 0
        scale = np.divide(1.0, total, out=np.zeros_like(total), where=ok)
        mean_y = sums[0, :, 1] * scale
        centre = sums[1, :, 0] * scale
        spread = np.maximum(sums[2, :, 0] * scale - centre**2, 1e-12)
        slope_term = (sums[1, :, 1] * scale - centre * mean_y) / spread
        line = mean_y - centre * slope_term
        out[rows] = np.where(usable & ok, line, y[rows])
    return out
