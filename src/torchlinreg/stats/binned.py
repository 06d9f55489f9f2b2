"""Residuals binned by fitted value in one pass, exactly, with no range known first.

The bins are the dyadic intervals [j·2ᵉ, (j + 1)·2ᵉ): a value's bin is ⌊f·2⁻ᵉ⌋, exact
in floating point. The pass keeps the bins from the lowest to the highest occupied one,
at most ``max_bins`` of them; when a value falls so far out that more would be needed,
e grows by one and neighbouring bins pair up (their counts, means and sums of squared
deviations combine exactly, by Chan et al.'s formulas). At the end e is the smallest
exponent at which the fitted range spans at most ``max_bins`` bins (so at least about
half as many), whatever the order of the rows or how they were cut into chunks (unless
the fitted values agree to about 60 bits: they then share one or a few bins).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ResidualBins:
    """Residuals by fitted value: bin i is [``edges[i]``, ``edges[i + 1]``), all of one
    width (a power of two), from the lowest to the highest fitted value; ``count``
    observations in it, ``fitted_mean`` their mean fitted value, ``resid_mean`` and
    ``resid_std`` the mean and standard deviation of their weighted residuals √w·e
    (the residuals R's ``plot.lm`` draws), ``scale_mean`` and ``scale_std`` those of
    √|rᵢ|, rᵢ the internally studentized residual (the scale-location panel's
    ordinate). Standard deviations divide by count (NaN, as the means, in an empty
    bin)."""

    edges: np.ndarray
    count: np.ndarray
    fitted_mean: np.ndarray
    resid_mean: np.ndarray
    resid_std: np.ndarray
    scale_mean: np.ndarray
    scale_std: np.ndarray


_STATS = ("fitted", "resid", "scale")  # (mean, M2) kept for each
_RESOLUTION_BITS = 60


class BinnedResiduals:
    """The running bins (see the module's docstring)."""

    def __init__(self, max_bins: int) -> None:
        self.max_bins = max_bins
        self.exponent: int | None = None
        self.low = 0  # index of the first bin
        self.count: np.ndarray = np.zeros(0)
        self.mean: dict[str, np.ndarray] = {name: np.zeros(0) for name in _STATS}
        self.m2: dict[str, np.ndarray] = {name: np.zeros(0) for name in _STATS}

    def add(self, fitted: np.ndarray, resid: np.ndarray, scale: np.ndarray) -> None:
        if len(fitted) == 0:
            return
        lo, hi = float(fitted.min()), float(fitted.max())
        # Bins no finer than 2⁻⁶⁰ of the largest value: indices stay below 2⁶¹ (int64).
        # The final bins are far coarser unless all values agree to ~60 bits.
        floor = math.frexp(max(abs(lo), abs(hi)) or 1.0)[1] - _RESOLUTION_BITS
        if self.exponent is None:
            self.exponent = floor
            self.low = _index(lo, self.exponent)
            self.count = np.zeros(1)
            self.mean = {name: np.zeros(1) for name in _STATS}
            self.m2 = {name: np.zeros(1) for name in _STATS}
        elif self.exponent < floor:
            self._coarsen(floor - self.exponent)
        first = min(_index(lo, self.exponent), self.low)
        last = max(_index(hi, self.exponent), self.low + len(self.count) - 1)
        shift = 0
        while (last >> shift) - (first >> shift) + 1 > self.max_bins:
            shift += 1
        self._coarsen(shift)
        self._extend(_index(lo, self.exponent), _index(hi, self.exponent))
        self._merge_block(fitted, {"fitted": fitted, "resid": resid, "scale": scale})

    def _coarsen(self, shift: int) -> None:
        """Pair bins up ``shift`` times: bin j becomes bin j >> shift."""
        if shift == 0:
            return
        assert self.exponent is not None
        old = self.low + np.arange(len(self.count))
        new = old >> shift
        self.exponent += shift
        self.low = int(new[0])
        self._combine_into(new - self.low, int(new[-1] - new[0]) + 1)

    def _extend(self, first: int, last: int) -> None:
        """Make room for bins ``first`` to ``last``."""
        start = min(first, self.low)
        stop = max(last, self.low + len(self.count) - 1)
        if start == self.low and stop == self.low + len(self.count) - 1:
            return
        size, offset = stop - start + 1, self.low - start

        def grow(a: np.ndarray) -> np.ndarray:
            out = np.zeros(size)
            out[offset : offset + len(a)] = a
            return out

        self.count = grow(self.count)
        self.mean = {k: grow(v) for k, v in self.mean.items()}
        self.m2 = {k: grow(v) for k, v in self.m2.items()}
        self.low = start

    def _combine_into(self, target: np.ndarray, size: int) -> None:
        """Merge bin i into bin ``target[i]`` of ``size`` bins (Chan et al.)."""
        count: np.ndarray = np.bincount(target, self.count, minlength=size)
        safe = np.where(count > 0, count, 1)
        for k in _STATS:
            mean: np.ndarray = np.bincount(target, self.count * self.mean[k], minlength=size) / safe
            dev = self.mean[k] - mean[target]
            m2: np.ndarray = np.bincount(target, self.m2[k] + self.count * dev**2, minlength=size)
            self.mean[k], self.m2[k] = mean, m2
        self.count = count

    def _merge_block(self, fitted: np.ndarray, values: dict[str, np.ndarray]) -> None:
        """Add a block's values to their bins: the block's own per-bin count, mean and
        M2 first, then combined with the running ones."""
        assert self.exponent is not None
        size = len(self.count)
        index = np.floor(np.ldexp(fitted, -self.exponent)).astype(np.int64) - self.low
        n_b = np.bincount(index, minlength=size).astype(np.float64)
        safe = np.where(n_b > 0, n_b, 1)
        total = self.count + n_b
        safe_total = np.where(total > 0, total, 1)
        for k in _STATS:
            v = values[k]
            mean_b = np.bincount(index, v, minlength=size) / safe
            m2_b = np.bincount(index, (v - mean_b[index]) ** 2, minlength=size)
            delta = mean_b - self.mean[k]
            self.m2[k] = self.m2[k] + m2_b + delta**2 * self.count * n_b / safe_total
            self.mean[k] = self.mean[k] + delta * n_b / safe_total
        self.count = total

    def result(self) -> ResidualBins:
        if self.exponent is None:
            empty = np.zeros(0)
            return ResidualBins(empty, empty, empty, empty, empty, empty, empty)
        size = len(self.count)
        edges = np.ldexp((self.low + np.arange(size + 1)).astype(np.float64), self.exponent)
        empty = self.count == 0
        count = np.where(empty, 1, self.count)

        def mean(k: str) -> np.ndarray:
            return np.where(empty, np.nan, self.mean[k])

        def std(k: str) -> np.ndarray:
            return np.where(empty, np.nan, np.sqrt(self.m2[k] / count))

        return ResidualBins(
            edges,
            self.count.astype(np.int64),
            mean("fitted"),
            mean("resid"),
            std("resid"),
            mean("scale"),
            std("scale"),
        )


def _index(value: float, exponent: int) -> int:
    """The bin ⌊value·2⁻ᵉ⌋ (exact: scaling by a power of two)."""
    return math.floor(math.ldexp(value, -exponent))
