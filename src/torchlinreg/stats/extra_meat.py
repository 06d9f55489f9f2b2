"""The covariances beyond HC0–HC3 and one-way clusters: HAC (:mod:`.hac`), two-way
cluster (:mod:`.cluster2`) and CRV3 (:mod:`.crv3`), computed by one pass over the rows
in one process (:mod:`.scores`) and kept as an :class:`ExtraMeat`, which the summary
(:mod:`.inference`) turns into the covariance like any other meat.

Small-sample factors (``small_sample=``; the defaults are statsmodels'): HAC n/(n − k),
off by default; two-way cluster G/(G − 1)·(n − 1)/(n − k) per term, on; CRV3
(G − 1)/G, on.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..errors import InputError
from .meat import Meat

if TYPE_CHECKING:
    from ..data.chunks import Chunk
    from ..solvers.state import LeastSquaresState

# cov_type names computed here; two-way clustering is "cluster" with two label columns.
EXTRA_TYPES = ("HAC", "CRV3")
# Designs of at most this many columns p′ are passed over on one torch thread (see
# :func:`_one_thread`).
ONE_THREAD_COLUMNS = 32
# statsmodels' defaults of use_correction
_DEFAULT_SMALL_SAMPLE = {"HAC": False, "CRV3": True, "cluster2": True}


@dataclass
class ExtraMeat(Meat):
    """A meat of :mod:`.extra_meat`: ``matrices`` without small-sample factors,
    ``corrected`` with them; ``kind`` is ``"HAC"``, ``"CRV3"`` or ``"cluster2"``
    (``n_groups`` then min(G_a, G_b), the t and F degrees of freedom + 1)."""

    kind: str = ""
    lags: int | None = None
    corrected: torch.Tensor | None = None
    group_counts: tuple[int, ...] = ()


def is_extra(cov_type: str, items: Iterable[tuple[Chunk, Any]]) -> tuple[bool, Iterable[Any]]:
    """Whether ``cov_type`` over ``items`` is computed here (HAC, CRV3, a cluster
    covariance whose labels come in pairs), and the items to pass (the first one peeked
    at where it takes a look)."""
    from .cov_types import LabelPair

    if cov_type in EXTRA_TYPES:
        return True, items
    if cov_type != "cluster":
        return False, items
    if isinstance(items, Sequence):  # in memory: kept a sequence (passes may repeat)
        return bool(items) and isinstance(items[0][1], LabelPair), items
    iterator = iter(items)
    first = next(iterator, None)
    if first is None:
        return False, []
    chained: Iterator[Any] = itertools.chain([first], iterator)
    return isinstance(first[1], LabelPair), chained


def compute(
    items: Iterable[tuple[Chunk, Any]],
    state: LeastSquaresState,
    theta: torch.Tensor,
    cov_type: str,
    weight_scale: float,
    lags: int | None = None,
) -> ExtraMeat:
    """The meat of ``cov_type`` ("HAC", "CRV3" or "cluster" with label pairs) from one
    pass over ``items`` ((chunk, labels) pairs in row order)."""
    with _one_thread(state.n_params, state.device):
        return _compute(items, state, theta, cov_type, weight_scale, lags)


def _one_thread(p: int, device: torch.device) -> AbstractContextManager[None]:
    """torch's CPU kernels on one thread for a design of at most
    :data:`ONE_THREAD_COLUMNS` columns. Every operation of the pass then works on a
    block of a few MB ((rows, p′) products of a few MFlop, elementwise products,
    scatters): a second thread shortens it by a fraction of a millisecond, while waking
    it costs as much as the operation itself on a busy machine (measured 10–25 times
    slower with two threads than one on two shared cores, docs/benchmarks.md). The
    setting is process-wide, so it is restored as soon as the pass ends."""
    from ..training.threads import one_thread

    return one_thread(device.type == "cpu" and p <= ONE_THREAD_COLUMNS)


def _compute(
    items: Iterable[tuple[Chunk, Any]],
    state: LeastSquaresState,
    theta: torch.Tensor,
    cov_type: str,
    weight_scale: float,
    lags: int | None,
) -> ExtraMeat:
    from . import cluster2, crv3, hac
    from .scores import block_rows, exact_meat, new_fingerprint, score_blocks

    p, k = state.n_params, state.n_targets
    zeros: dict[str, Any] = {"dtype": torch.float64, "device": state.device}
    fp = new_fingerprint(state)
    kind = "cluster2" if cov_type == "cluster" else cov_type
    per_row = p * p if kind == "CRV3" else None
    blocks = score_blocks(items, state, theta, weight_scale, fp, block_rows(p, per_row))
    if kind == "HAC":
        lags = hac.check_lags(lags, state.n_samples)
        raw = exact_meat(hac.hac_meat(blocks, k, p, lags, **zeros), fp.S)
        n = state.n_observations
        factor = n / (n - p) if n > p else 1.0
        return _meat(fp, kind, raw, raw * factor, None, lags=lags)
    if kind == "CRV3":
        grams, scores, labels = crv3.cluster_sums(_labelled(blocks, cov_type), k, p, **zeros)
        G = len(labels)
        _check_groups(G, "CRV3")
        raw = crv3.jackknife_meat(grams, scores, fp.S, labels)
        return _meat(fp, kind, raw, raw * ((G - 1) / G), G, counts=(G,))
    meats, counts = cluster2.two_way_meats(_labelled(blocks, cov_type), k, p, **zeros)
    _check_groups(min(counts[:2]), "two-way cluster")
    n = fp.observations
    raw = exact_meat(meats[0] + meats[1] - meats[2], fp.S)
    corrected = exact_meat(cluster2.combine(meats, counts, n, p), fp.S)
    return _meat(fp, kind, raw, corrected, min(counts[:2]), counts=tuple(counts))


def _labelled(blocks: Iterable[Any], cov_type: str) -> Iterator[Any]:
    for block in blocks:
        if block.labels is None:
            raise InputError(f"cov_type={cov_type!r} needs groups=, one label per row")
        yield block


def _check_groups(groups: int, what: str) -> None:
    if groups < 2:
        raise InputError(f"{what} covariance needs at least 2 clusters; got {groups}")


def _meat(
    fp: Any,
    kind: str,
    raw: torch.Tensor,
    corrected: torch.Tensor,
    n_groups: int | None,
    lags: int | None = None,
    counts: tuple[int, ...] = (),
) -> ExtraMeat:
    return ExtraMeat(
        raw,
        n_groups=n_groups,
        column_sums=fp.column_sums,
        target_sums=fp.target_sums,
        gram=fp.S,
        gram_gap=fp.gram_gap,
        kind=kind,
        lags=lags,
        corrected=corrected,
        group_counts=counts,
    )


def scaled_meat(meat: ExtraMeat, j: int, small_sample: bool | None) -> torch.Tensor:
    """Target j's meat with or without its small-sample factor (None: the default of
    its kind)."""
    on = _DEFAULT_SMALL_SAMPLE[meat.kind] if small_sample is None else small_sample
    if on:
        assert meat.corrected is not None
        return meat.corrected[j]
    return meat.matrices[j]


def describe(meat: ExtraMeat) -> str:
    """A note naming what was computed."""
    if meat.kind == "HAC":
        return f"HAC (Newey–West, Bartlett kernel) with {meat.lags} lags, rows in time order"
    if meat.kind == "CRV3":
        return f"CRV3 (cluster jackknife) over {meat.n_groups} clusters"
    a, b, ab = meat.group_counts
    return (
        f"two-way cluster-robust covariance over {a} × {b} clusters ({ab} intersections); "
        f"t and F use min(G) − 1 = {min(a, b) - 1} degrees of freedom"
    )


def check_kept(meat: Meat, lags: int | None) -> None:
    """A summary from the meat kept at fit time asks for no other HAC lag than its."""
    if lags is None:
        return
    kept = getattr(meat, "lags", None)
    if getattr(meat, "kind", "") != "HAC":
        raise InputError("lags= is for cov_type='HAC'")
    if kept != lags:
        raise InputError(
            f"this model's HAC covariance was computed with {kept} lags; for lags={lags} "
            "pass the training data again: summary(cov_type='HAC', lags=..., X=X, y=y)"
        )


def refuse_group(cov_type: str) -> None:
    """HAC, CRV3 and two-way clusters are computed in one process."""
    raise InputError(
        f"cov_type={cov_type!r} (and two-way clusters) are computed in one process over "
        "rows in order; compute them from a model fitted in one process"
    )
