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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import InputError
from .binned import BinnedResiduals, ResidualBins
from .influence_rows import (
    Block,
    Fitted,
    SameData,
    Workspace,
    block_core,
    dfbetas_t,
    host,
    prepare,
    row_blocks,
)

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
            pass_.add(block_core(fit, chunk, rows, pass_.work))
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
    """The running state of the pass: rows read, top rows, counts, sample, bins.

    Each block's statistics stay tensors; only what is kept leaves them: the counts
    (summed on the device), the candidates for the top rows and the sampled rows (a
    few rows each), and the three vectors the bins take."""

    def __init__(
        self, fit: Fitted, top_k: int, sample_size: int, bins: int, rng: np.random.Generator
    ) -> None:
        self.fit = fit
        self.limits = thresholds(fit.n, fit.p)
        self.same = SameData(fit)
        self.rows = 0  # rows read
        self.seen = 0  # observations read
        self.counts = torch.zeros(len(_COUNTED), dtype=torch.int64, device=fit.state.device)
        self.dfbetas_counts = self.counts.new_zeros(fit.p)
        self.counts_any = 0  # observations with some |DFBETAS| over
        self.top = _Top(top_k)
        self.sample = _Reservoir(sample_size, rng)
        self.bins = BinnedResiduals(bins)
        self.work = Workspace()
        self._true = torch.ones(1, dtype=torch.bool, device=fit.state.device)

    def add(self, block: Block) -> None:
        self.same.add(block.n_rows, block.column_sums, block.target_sums)
        self._count(block)
        obs = None if block.observed is None else host(block.observed)
        cooks = host(block.cooks_distance)
        self.top.add(cooks, lambda rows: self._fields(block, rows, _TOP_FIELDS, top=True))
        rows = np.arange(block.n_rows) if obs is None else np.flatnonzero(obs)
        slots, source = self.sample.draw(len(rows), self.seen)
        if len(slots):
            self.sample.put(slots, self._fields(block, rows[source], _SAMPLE_FIELDS))
        self.seen += len(rows)
        self.rows += block.n_rows
        fitted, resid = host(block.fitted), host(block.weighted_resid)
        scale = np.sqrt(np.abs(host(block.student_resid_internal)))
        if obs is not None:
            fitted, resid, scale = fitted[obs], resid[obs], scale[obs]
        self.bins.add(fitted, resid, scale)

    def _fields(
        self, block: Block, rows: np.ndarray, names: tuple[str, ...], top: bool = False
    ) -> dict[str, np.ndarray]:
        """The statistics ``names`` of the block's rows ``rows`` (and their numbers)."""
        index = torch.as_tensor(rows, device=block.Z.device)
        out = {name: host(getattr(block, name)[index]) for name in names}
        out["row"] = rows + self.rows
        if top:
            out["dfbetas"] = host(dfbetas_t(self.fit, block, index).T.contiguous())
        return out

    def _count(self, block: Block) -> None:
        """Observations beyond each threshold; rows of NaN statistics (not observations,
        leverage 1) compare false and are not counted."""
        lim = self.limits
        t = block.student_resid_external.abs()
        self.counts += torch.stack(
            [
                (block.leverage > lim["leverage"]).sum(),
                (t > 2).sum(),
                (t > 3).sum(),
                (block.cooks_distance > lim["cooks_distance"]).sum(),
                (block.dffits.abs() > lim["dffits"]).sum(),
            ]
        )
        shape = (self.fit.p, block.n_rows)
        dfb = dfbetas_t(self.fit, block, out=self.work.get("dfbetas", shape, block.Z)).abs_()
        over = torch.gt(dfb, lim["dfbetas"], out=self.work.get("over", shape, self._true))
        self.dfbetas_counts += torch.count_nonzero(over, dim=1)
        # A row counts when its largest |DFBETAS| is over (NaN rows: amax is NaN).
        if dfb.shape[1]:
            self.counts_any += int((dfb.amax(0) > lim["dfbetas"]).sum())

    def result(self) -> InfluenceSummary:
        self.same.check()
        sample = self.sample.result()
        counts = dict(zip(_COUNTED, (int(c) for c in self.counts.cpu()), strict=True))
        counts["dfbetas"] = self.counts_any
        return InfluenceSummary(
            n=self.fit.n,
            n_rows=self.rows,
            k=self.fit.p,
            sigma=self.fit.sigma / self.fit.weight_scale,
            names=self.fit.names,
            top=self.top.result(self.fit.p),
            counts={name: counts[name] for name in self.limits},
            thresholds=dict(self.limits),
            dfbetas_counts=host(self.dfbetas_counts).astype(np.int64),
            sample=sample,
            bins=self.bins.result(),
            qq=_qq(sample, exact=self.seen <= self.sample.size),
        )


# The counts summed on the device, in this order ("dfbetas" apart).
_COUNTED = (
    "leverage",
    "student_resid_external_2",
    "student_resid_external_3",
    "cooks_distance",
    "dffits",
)


class _Top:
    """The ``size`` rows of largest Cook's distance seen so far (ties: the earlier
    row); rows whose distance is NaN (leverage 1, not observations) are never among
    them. Of each block only the candidates' statistics are fetched: rows at least the
    current ``size``-th distance, and of those at most ``size`` distances' worth."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.kept: dict[str, np.ndarray] | None = None

    def add(self, cooks: np.ndarray, fetch: Callable[[np.ndarray], dict[str, np.ndarray]]) -> None:
        floor = -np.inf
        if self.kept is not None and len(self.kept["row"]) == self.size:
            floor = self.kept["cooks_distance"][-1]
        rows = np.flatnonzero(cooks >= floor)  # NaN compares false
        if len(rows) > self.size:
            # Only distances ≥ the size-th largest of the block can enter (ties kept).
            d = cooks[rows]
            rows = rows[d >= np.partition(d, len(d) - self.size)[len(d) - self.size]]
        if len(rows) == 0:
            return
        new = fetch(rows)
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

    def draw(self, m: int, seen: int) -> tuple[np.ndarray, np.ndarray]:
        """The draws for the next ``m`` observations (``seen`` before them): the slots
        filled or replaced and, for each, the position of the observation (of the m)
        that stays in it."""
        if m == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        t = seen + np.arange(m)
        u = self.rng.random(m)
        j = np.where(t < self.size, t, np.floor(u * (t + 1)).astype(np.int64))
        hit = np.flatnonzero(j < self.size)
        # Of several rows of this block replacing one slot, the last one stays.
        last_first = hit[::-1]
        slots, first = np.unique(j[last_first], return_index=True)
        self.filled = min(self.size, seen + m)
        return slots, last_first[first]

    def put(self, slots: np.ndarray, values: dict[str, np.ndarray]) -> None:
        """Place the drawn observations' ``values`` in their ``slots``."""
        for name in (*_SAMPLE_FIELDS, "row"):
            if name not in self.slots:
                self.slots[name] = np.zeros(self.size, dtype=values[name].dtype)
            self.slots[name][slots] = values[name]

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
