"""The smoother drawn through the residual panels: LOWESS (Cleveland 1979), as
statsmodels' ``lowess`` computes it (R's ``lowess`` differs only in tiny cut-offs of
the weights).

x sorted, each point's k nearest neighbours are a run of consecutive points, so the
weights of a block of points lie in a band of about k + block columns: the work is
O(n·k), not O(n²), and each robustness iteration is one matrix product over the band.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Points per block: a block's band of weights is 3 × 128 × (k + 128) floats.
_BLOCK = 128


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
    from ..training.threads import one_thread  # torch's kernels: the products are small

    with one_thread():
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


def _first_true(
    pred: Callable[[np.ndarray], np.ndarray], low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """For each point, the least ``a`` in [low, high] with ``pred(a)`` true (``high``
    when none is), ``pred`` monotone (false, then true) in ``a``: a binary search,
    vectorised over the points."""
    low, high = low.copy(), high.copy()
    while True:
        active = low < high
        if not active.any():
            return low
        mid = np.where(active, (low + high) // 2, 0)  # settled points look at 0
        true = pred(mid)
        high = np.where(active & true, mid, high)
        low = np.where(active & ~true, mid + 1, low)


def _radii(x: np.ndarray, k: int) -> np.ndarray:
    """Each point's distance to its k-th nearest point (itself included): the least,
    over runs x[a..a+k−1], of the run's largest distance from x[i]. That largest
    distance falls while x[i] − x[a] > x[a+k−1] − x[i] and rises after (the rounded
    differences are monotone in x too), so the least is at the first run where the
    right end is as far as the left, or the run before it."""
    n = x.shape[0]

    def far(a: np.ndarray) -> np.ndarray:
        return np.maximum(x - x[a], x[a + k - 1] - x)

    first = _first_true(
        lambda a: x - x[a] <= x[a + k - 1] - x, np.zeros(n, np.int64), np.full(n, n - k)
    )
    return np.minimum(far(first), far(np.maximum(first - 1, 0)))


class _Neighbourhoods:
    """For each block of points: the columns of the points within reach (distance
    below the radius, a run around the block), the tricube weights ``T`` over them and
    a centre ``c`` (the block's middle x). The robustness iterations leave ``T``
    unchanged, so each iteration is one matrix product per block, ``T`` times the
    robustness-weighted powers of ``x − c``; ``T`` is kept when it fits in ``_KEEP``
    floats, else recomputed block by block."""

    def __init__(self, x: np.ndarray, k: int) -> None:
        self.x = x
        n = x.shape[0]
        self.radius = _radii(x, k)
        # Points within reach of x[i] (distance < radius) are the run [start, stop).
        start = _first_true(lambda j: x - x[j] < self.radius, np.zeros(n, np.int64), np.arange(n))
        stop = _first_true(lambda j: x[j] - x >= self.radius, np.arange(n), np.full(n, n))
        half = self.radius / 2
        self.near_start = _first_true(
            lambda j: x - x[j] <= half, np.zeros(n, np.int64), np.arange(n)
        )
        self.near_stop = _first_true(lambda j: x[j] - x > half, np.arange(n), np.full(n, n))
        self.blocks = [slice(s, min(s + _BLOCK, n)) for s in range(0, n, _BLOCK)]
        self.columns = [slice(int(start[b].min()), int(stop[b].max())) for b in self.blocks]
        self.centres = [float(x[(b.start + b.stop - 1) // 2]) for b in self.blocks]
        size = sum(
            (b.stop - b.start) * (c.stop - c.start)
            for b, c in zip(self.blocks, self.columns, strict=True)
        )
        self.kept = [self._tricube(j) for j in range(len(self.blocks))] if size <= _KEEP else None

    def _tricube(self, j: int) -> np.ndarray:
        """(rows, columns): (1 − u³)³, u = min(|x_j − x_i| / radius_i, 1), in place."""
        rows, cols = self.blocks[j], self.columns[j]
        x = self.x
        t = np.subtract(x[None, cols], x[rows, None])
        np.abs(t, out=t)
        with np.errstate(divide="ignore", invalid="ignore"):
            t /= self.radius[rows, None]
        # u = 1 from the radius on (fmin: a zero radius's 0/0 is NaN, which is 1 too).
        np.fmin(t, 1.0, out=t)
        cube = t * t
        cube *= t
        np.subtract(1.0, cube, out=t)
        np.multiply(t, t, out=cube)
        t *= cube
        return t

    def tricube(self, j: int) -> np.ndarray:
        return self.kept[j] if self.kept is not None else self._tricube(j)

    def surely_usable(self, robustness: np.ndarray) -> np.ndarray:
        """Points with at least two weights T·r > 1e-12 for sure: two points within
        half the radius (T ≥ (7/8)³ there) of robustness r > 1e-11. The others are
        counted weight by weight."""
        strong = np.concatenate([[0], np.cumsum(robustness > 1e-11)])
        count = strong[self.near_stop] - strong[self.near_start]
        return (count >= 2) & (self.radius > 0)  # radius 0: every weight is 0


# The weights kept between iterations up to this many floats (32 MiB: 2,048 points).
_KEEP = 2048 * 2048


def _local_lines(hood: _Neighbourhoods, y: np.ndarray, robustness: np.ndarray) -> np.ndarray:
    """The locally weighted straight line's value at each ``x[i]``, in blocks of rows,
    from the weighted moments (weights ``w = T·r``) of ``v = x − c`` about the block's
    centre c: ``S = Σw``, means ``v̄ = Σw·v / S`` and ``ȳ = Σw·y / S``, spread
    ``Σw·v² / S − v̄²``, slope ``(Σw·v·y / S − v̄·ȳ) / spread``, and the line's value
    at x[i], ``ȳ + slope·(x[i] − c − v̄)`` (the moments about x[i] itself, shifted)."""
    import torch

    out = np.empty_like(y)
    sure = hood.surely_usable(robustness)
    for j, rows in enumerate(hood.blocks):
        cols, c = hood.columns[j], hood.centres[j]
        t = hood.tricube(j)
        r, v, yc = robustness[cols], hood.x[cols] - c, y[cols]
        right = np.column_stack([r, r * v, r * v * v, r * yc, r * v * yc])
        sums = (torch.from_numpy(t) @ torch.from_numpy(right)).numpy()  # (rows, 5)
        usable = sure[rows].copy()
        if not usable.all():
            unsure = np.flatnonzero(~usable)
            usable[unsure] = np.count_nonzero(t[unsure] * r > 1e-12, axis=1) >= 2
        total = sums[:, 0]
        ok = total > 0
        scale = np.divide(1.0, total, out=np.zeros_like(total), where=ok)
        mean_v, mean_y = sums[:, 1] * scale, sums[:, 3] * scale
        spread = np.maximum(sums[:, 2] * scale - mean_v**2, 1e-12)
        slope = (sums[:, 4] * scale - mean_v * mean_y) / spread
        line = mean_y + slope * (hood.x[rows] - c - mean_v)
        out[rows] = np.where(usable & ok, line, y[rows])
    return out
