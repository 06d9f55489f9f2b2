"""Influence of data too large to hold n values: one pass, bounded memory.

:func:`influence_summary` reads arrays or a stream of chunks once, computes every row's
statistics in row blocks (:mod:`.influence_rows`) and keeps only

* the ``top_k`` most influential rows by Cook's distance (ties: the earlier row);
* counts of observations beyond the usual thresholds (:func:`thresholds`);
* a reservoir sample of ``sample_size`` observations, seeded by ``random_state``:
  the points a plot draws;
* residuals binned by fitted value (:mod:`.binned`), exact per-bin counts, means and
  standard deviations: the bands a plot draws behind the sample;
* the normal Q-Q plot's points, from the sample.

Memory is O(top_k + sample_size + bins) values, whatever the number of rows. Rows of
zero weight are not observations: they are counted in ``n_rows`` and left out of
everything else.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from .binned import BinnedResiduals, ResidualBins
from .influence_rows import Fitted, Rows, SameData, block_rows, prepare, row_blocks

if TYPE_CHECKING:
    from ..data.chunks import Chunk

__all__ = [
    "InfluenceSample",
    "InfluenceSummary",
    "QQPoints",
    "ResidualBins",
    "TopRows",
    "influence_summary",
    "thresholds",
]

# The statistics kept for the top rows, as named in Influence.
_TOP_FIELDS = (
    "fitted",
    "resid",
    "weighted_resid",
    "leverage",
    "student_resid_internal",
    "student_resid_external",
    "cooks_distance",
    "dffits",
)
_SAMPLE_FIELDS = (
    "fitted",
    "resid",
    "weighted_resid",
    "student_resid_internal",
    "leverage",
    "cooks_distance",
)


def thresholds(n: int, k: int) -> dict[str, float]:
    """The usual cut-offs for n observations and k parameters, by the name of the count
    in :attr:`InfluenceSummary.counts` (a row counts when its statistic is *above*):

    * ``leverage``: hᵢ > 2k/n (twice the mean leverage; Belsley, Kuh and Welsch);
    * ``student_resid_external_2`` and ``_3``: |tᵢ| > 2 and > 3;
    * ``cooks_distance``: Dᵢ > 4/n;
    * ``dffits``: |DFFITSᵢ| > 2√(k/n) (statsmodels' ``dffits`` threshold);
    * ``dfbetas``: |DFBETASᵢⱼ| > 2/√n for some coefficient j (per coefficient in
      :attr:`InfluenceSummary.dfbetas_counts`).
    """
    return {
        "leverage": 2 * k / n,
        "student_resid_external_2": 2.0,
        "student_resid_external_3": 3.0,
        "cooks_distance": 4 / n,
        "dffits": 2 * math.sqrt(k / n),
        "dfbetas": 2 / math.sqrt(n),
    }


@dataclass(frozen=True)
class TopRows:
    """The most influential observations by Cook's distance, largest first: ``row``
    (0-based, in the whole data or stream, zero-weight rows counted) and each
    statistic as :class:`~torchlinreg.stats.influence.Influence` names it."""

    row: np.ndarray
    fitted: np.ndarray
    resid: np.ndarray
    weighted_resid: np.ndarray
    leverage: np.ndarray
    student_resid_internal: np.ndarray
    student_resid_external: np.ndarray
    cooks_distance: np.ndarray
    dffits: np.ndarray
    dfbetas: np.ndarray  # (rows, k)


@dataclass(frozen=True)
class InfluenceSample:
    """A uniform random sample of the observations (reservoir sampling, seeded), in row
    order: every observation when there are at most ``sample_size``."""

    row: np.ndarray
    fitted: np.ndarray
    resid: np.ndarray
    weighted_resid: np.ndarray
    student_resid_internal: np.ndarray
    leverage: np.ndarray
    cooks_distance: np.ndarray


@dataclass(frozen=True)
class QQPoints:
    """A normal Q-Q plot of the internally studentized residuals: ``sample`` sorted,
    ``theoretical`` the standard normal quantiles at R's ``ppoints`` ((i − a)/(m + 1 −
    2a), a = 3/8 for m ≤ 10 points, else 1/2), ``row`` each point's row. Order
    statistics of n values cannot be had in one bounded pass: the points are those of
    the sample, ``exact`` when the sample holds every observation."""

    theoretical: np.ndarray
    sample: np.ndarray
    row: np.ndarray
    exact: bool


@dataclass(frozen=True)
class InfluenceSummary:
    """What :func:`influence_summary` keeps of one pass (see the module's docstring).

    ``n``: observations (rows of positive weight); ``n_rows``: rows read; ``k``:
    parameters; ``sigma``: the residual standard deviation; ``names``: the parameters
    (DFBETAS columns); ``counts`` and ``thresholds``: keyed as :func:`thresholds`;
    ``dfbetas_counts``: per coefficient, observations with |DFBETAS| > 2/√n."""

    n: int
    n_rows: int
    k: int
    sigma: float
    names: tuple[str, ...]
    top: TopRows
    counts: dict[str, int]
    thresholds: dict[str, float]
    dfbetas_counts: np.ndarray
    sample: InfluenceSample
    bins: ResidualBins
    qq: QQPoints


def influence_summary(
    model: Any,
    data: Any,
    *,
    top_k: int = 10,
    sample_size: int = 2000,
    bins: int = 50,
    random_state: Any = 0,
    sample_weight: Any = None,
) -> InfluenceSummary:
    """Influence of the rows ``model`` was fitted on, in one pass and bounded memory.

    ``data``: the rows as ``(X, y)`` or ``(X, y, sample_weight)`` arrays (or tensors,
    DataFrames; ``sample_weight=`` may be given instead), or chunks as
    :meth:`~torchlinreg.LinearRegression.fit_chunks` takes them (an iterable of
    ``(X, y[, sample_weight])``, or a function returning one), in the order fitted.
    ``top_k``: rows kept by Cook's distance; ``sample_size``: observations sampled;
    ``bins``: the most bins of residuals by fitted value; ``random_state``: the seed
    (an int, a numpy Generator, or None for fresh entropy). The pass checks that the
    rows are the fitted ones (count, sums of squares, pairing of x and y).
    """
    from ..solvers.state import check_count

    top_k = check_count("top_k", top_k, 1)
    sample_size = check_count("sample_size", sample_size, 1)
    bins = check_count("bins", bins, 1)
    fit = prepare(model)
    rng = np.random.default_rng(random_state)
    pass_ = _Pass(fit, top_k, sample_size, bins, rng)
    for chunk in _chunks(model, data, sample_weight):
        for rows in row_blocks(chunk.X.shape[0]):
            pass_.add(block_rows(fit, chunk, rows))
    return pass_.result()


def _chunks(model: Any, data: Any, sample_weight: Any) -> Iterator[Chunk]:
    """The validated chunks of ``data``: one for arrays, those of a stream."""
    from ..models._stream import ChunkStream
    from .influence import check_targets, fitted_chunk

    if _is_arrays(data):
        if sample_weight is not None and len(data) == 3:
            raise InputError("sample_weight is given twice: in data and as sample_weight=")
        X, y, *rest = data
        yield fitted_chunk(model, X, y, rest[0] if rest else sample_weight)
        return
    if sample_weight is not None:
        raise InputError(
            "sample_weight= is for data given as arrays; in a stream, each chunk carries "
            "its weights: (X, y, sample_weight)"
        )
    for chunk in ChunkStream(data, None)():
        model._check_n_features(chunk.X.shape[1])
        check_targets(chunk.Y.shape[1])
        yield chunk


def _is_arrays(data: Any) -> bool:
    """``(X, y)`` or ``(X, y, w)`` of arrays rather than a stream of chunks: a tuple
    whose first item is 2-D data (it has a shape) rather than a chunk."""
    return (
        isinstance(data, tuple)
        and len(data) in (2, 3)
        and hasattr(data[0], "shape")
        and len(data[0].shape) == 2
    )


class _Pass:
    """The running state of the pass: rows read, top rows, counts, sample, bins."""

    def __init__(
        self, fit: Fitted, top_k: int, sample_size: int, bins: int, rng: np.random.Generator
    ) -> None:
        self.fit = fit
        self.limits = thresholds(fit.n, fit.p)
        self.same = SameData(fit)
        self.rows = 0  # rows read
        self.seen = 0  # observations read
        self.counts = dict.fromkeys(self.limits, 0)
        self.dfbetas_counts = np.zeros(fit.p, dtype=np.int64)
        self.top = _Top(top_k)
        self.sample = _Reservoir(sample_size, rng)
        self.bins = BinnedResiduals(bins)

    def add(self, block: Rows) -> None:
        self.same.add(block)
        obs = block.observed
        rows = np.flatnonzero(obs) + self.rows
        self.rows += len(obs)
        picked = {name: getattr(block, name)[obs] for name in (*_TOP_FIELDS, "dfbetas")}
        picked["row"] = rows
        self._count(picked)
        self.top.add(picked)
        self.sample.add(picked, self.seen)
        self.seen += len(rows)
        scale = np.sqrt(np.abs(picked["student_resid_internal"]))
        self.bins.add(picked["fitted"], picked["weighted_resid"], scale)

    def _count(self, b: dict[str, np.ndarray]) -> None:
        lim, c = self.limits, self.counts
        t = np.abs(b["student_resid_external"])
        c["leverage"] += int((b["leverage"] > lim["leverage"]).sum())
        c["student_resid_external_2"] += int((t > 2).sum())
        c["student_resid_external_3"] += int((t > 3).sum())
        c["cooks_distance"] += int((b["cooks_distance"] > lim["cooks_distance"]).sum())
        c["dffits"] += int((np.abs(b["dffits"]) > lim["dffits"]).sum())
        over = np.abs(b["dfbetas"]) > lim["dfbetas"]
        c["dfbetas"] += int(over.any(1).sum())
        self.dfbetas_counts += over.sum(0)

    def result(self) -> InfluenceSummary:
        self.same.check()
        sample = self.sample.result()
        return InfluenceSummary(
            n=self.fit.n,
            n_rows=self.rows,
            k=self.fit.p,
            sigma=self.fit.sigma / self.fit.weight_scale,
            names=self.fit.names,
            top=self.top.result(self.fit.p),
            counts=dict(self.counts),
            thresholds=dict(self.limits),
            dfbetas_counts=self.dfbetas_counts.copy(),
            sample=sample,
            bins=self.bins.result(),
            qq=_qq(sample, exact=self.seen <= self.sample.size),
        )


class _Top:
    """The ``size`` rows of largest Cook's distance seen so far (ties: the earlier
    row); rows whose distance is NaN (leverage 1) are never among them."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.kept: dict[str, np.ndarray] | None = None

    def add(self, block: dict[str, np.ndarray]) -> None:
        d = block["cooks_distance"]
        keep = ~np.isnan(d)
        if self.kept is not None and len(self.kept["row"]) == self.size:
            keep &= d >= self.kept["cooks_distance"][-1]  # only these can enter
        new = {name: a[keep] for name, a in block.items()}
        if self.kept is not None:
            new = {name: np.concatenate([self.kept[name], a]) for name, a in new.items()}
        order = np.lexsort((new["row"], -new["cooks_distance"]))[: self.size]
        self.kept = {name: a[order] for name, a in new.items()}

    def result(self, k: int) -> TopRows:
        kept = self.kept
        if kept is None:
            kept = {name: np.zeros(0) for name in (*_TOP_FIELDS, "row")}
            kept["row"] = np.zeros(0, dtype=np.int64)
            kept["dfbetas"] = np.zeros((0, k))
        return TopRows(**kept)


class _Reservoir:
    """Algorithm R over the observations: the t-th (0-based) fills slot t while t <
    ``size``, then replaces slot ⌊u·(t + 1)⌋ where that is < ``size``, u uniform in
    [0, 1). One u is drawn per observation, in row order, so the sample depends on the
    seed and the data, not on how the rows are cut into chunks or blocks."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size = size
        self.rng = rng
        self.slots: dict[str, np.ndarray] = {}
        self.filled = 0

    def add(self, block: dict[str, np.ndarray], seen: int) -> None:
        m = len(block["row"])
        if m == 0:
            return
        t = seen + np.arange(m)
        u = self.rng.random(m)
        j = np.where(t < self.size, t, np.floor(u * (t + 1)).astype(np.int64))
        hit = np.flatnonzero(j < self.size)
        # Of several rows of this block replacing one slot, the last one stays.
        last_first = hit[::-1]
        slots, first = np.unique(j[last_first], return_index=True)
        source = last_first[first]
        for name in (*_SAMPLE_FIELDS, "row"):
            if name not in self.slots:
                self.slots[name] = np.zeros(self.size, dtype=block[name].dtype)
            self.slots[name][slots] = block[name][source]
        self.filled = min(self.size, seen + m)

    def result(self) -> InfluenceSample:
        if not self.slots:
            empty = np.zeros(0)
            return InfluenceSample(np.zeros(0, dtype=np.int64), *[empty] * 6)
        kept = {name: a[: self.filled] for name, a in self.slots.items()}
        order = np.argsort(kept["row"], kind="stable")
        return InfluenceSample(**{name: kept[name][order] for name in ("row", *_SAMPLE_FIELDS)})


def _qq(sample: InfluenceSample, *, exact: bool) -> QQPoints:
    from scipy import special

    r = sample.student_resid_internal
    finite = np.flatnonzero(np.isfinite(r))
    order = finite[np.argsort(r[finite], kind="stable")]
    m = len(order)
    a = 3 / 8 if m <= 10 else 1 / 2
    p = (np.arange(1, m + 1) - a) / (m + 1 - 2 * a)
    return QQPoints(special.ndtri(p), r[order], sample.row[order], exact)
