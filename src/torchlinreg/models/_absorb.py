"""Fitting with fixed effects absorbed (``fit(X, y, absorb=...)``, ``fit_chunks(...,
absorb=[...])``): y and X demeaned by the factors (:mod:`torchlinreg.solvers.absorb`),
then folded into the ordinary least-squares state without an intercept (the factors
absorb it), so the solve, its refinement, the warnings and the covariances are the
usual ones; :mod:`torchlinreg.stats.absorbed` adds the fixed effects' degrees of
freedom to the summary.

A regressor the factors absorb entirely (constant within the levels of a factor, such
as a firm-level variable with firm effects) is dropped with a warning naming it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import InputError, RankDeficientWarning

if TYPE_CHECKING:
    from ..data.chunks import Chunk
    from ..solvers.absorb.demean import DemeanedXY
    from ..stats.absorbed import AbsorbedEffects
    from ._exact import ExactRegressor

# A regressor whose weighted norm the demeaning reduces below this fraction is absorbed
# (the direct solve leaves ~1e-15 of it, alternating projections ~ their tolerance).
ABSORBED_RTOL = 1e-7
SUPPORTED = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster")


def check_cov_type(cov_type: str, groups: Any = None) -> None:
    """The covariances whose degrees of freedom are worked out with fixed effects."""
    from ..stats.cov_types import two_columns

    if cov_type not in SUPPORTED or (groups is not None and two_columns(groups) is not None):
        what = "two-way clusters" if cov_type == "cluster" else f"cov_type={cov_type!r}"
        raise InputError(
            f"{what} with absorbed fixed effects is not supported; choose one of "
            f"{', '.join(SUPPORTED)} (one-way clusters)"
        )


def fit(model: ExactRegressor, X: Any, y: Any, sample_weight: Any, groups: Any, absorb: Any) -> Any:
    """:meth:`ExactRegressor.fit` with ``absorb`` (factor labels, one row per row of X)."""
    from ..data.chunks import validate_chunk
    from ..solvers.absorb.demean import absorbed_columns, demean_xy
    from ..solvers.absorb.factors import encode_in_memory, factor_columns
    from ..stats.cov_types import group_labels
    from . import _fit_cov

    model._check_params()
    cov_type = _fit_cov.requested(model, groups)
    check_cov_type(cov_type, groups)
    chunk = validate_chunk(X, y, sample_weight, device=model._device())
    n, p = chunk.X.shape
    names, columns = factor_columns(absorb, n)
    codes = encode_in_memory(names, columns)
    labels = None if groups is None else group_labels(groups, n)
    model._set_feature_names(X, y)
    X64, Y64 = chunk.X.to(torch.float64).cpu(), chunk.Y.to(torch.float64).cpu()
    w = None if chunk.sample_weight is None else chunk.sample_weight.cpu()
    levels = [int(c.max()) + 1 if len(c) else 0 for c in codes]
    demeaned = demean_xy(X64, Y64, w, codes, levels, **tolerances(model))
    dropped = absorbed_columns(X64, demeaned.X, w, ABSORBED_RTOL)
    inner = _demeaned_xy_chunk(chunk, demeaned.X, demeaned.Y, dropped)
    features = _drop_features(model, p, dropped)
    model._fit_chunk(inner, fit_intercept=False)  # the factors absorb the intercept
    nested = (
        _nested_xy(codes, levels, labels, columns)
        if cov_type == "cluster"
        else (False,) * len(codes)
    )
    model.absorbed_ = _effects(names, codes, levels, w, nested, features, demeaned, Y64)
    if cov_type != "nonrobust":
        model._fit_covariance = _fit_cov.in_memory(model, cov_type, inner, labels)
    return model


def tolerances(model: Any) -> dict[str, Any]:
    """The alternating projections' tolerance and sweep limit (defaults if the
    estimator has none)."""
    from ..solvers.absorb.alternating import DEFAULT_MAX_ITER, DEFAULT_TOL

    return {
        "tol": getattr(model, "fixef_tol", DEFAULT_TOL),
        "max_iter": getattr(model, "fixef_maxiter", DEFAULT_MAX_ITER),
    }


def _demeaned_xy_chunk(chunk: Chunk, X: torch.Tensor, Y: torch.Tensor, dropped: list[int]) -> Chunk:
    """The demeaned rows as a chunk on the model's device, without the dropped
    columns (no copy on the CPU when none is dropped)."""
    from ..data.chunks import Chunk

    if dropped:
        X = X[:, [j for j in range(X.shape[1]) if j not in dropped]]
    device = chunk.X.device
    return Chunk(X.to(device), Y.to(device), chunk.sample_weight, chunk.target_1d, finite=True)


def _drop_features(model: ExactRegressor, p: int, dropped: list[int]) -> list[str]:
    """Warn about the absorbed regressors and name the kept ones (``feature_names_in_``
    becomes the kept columns' names: ``x0``, ``x2``… for an array); returns the names
    of the dropped ones."""
    if not dropped:
        return []
    names = getattr(model, "feature_names_in_", None)
    labels = [str(c) for c in names] if names is not None else [f"x{j}" for j in range(p)]
    gone = [labels[j] for j in dropped]
    if len(dropped) == p:
        raise InputError(
            "the fixed effects absorb every regressor ("
            + ", ".join(gone)
            + "): each is constant within the levels of a factor, so nothing is left "
            "to estimate; absorb fewer or coarser factors"
        )
    warnings.warn(
        "the fixed effects absorb " + ", ".join(gone) + " entirely (constant within the "
        "levels of a factor): dropped from the regression (absorbed_.dropped)",
        RankDeficientWarning,
        stacklevel=4,
    )
    model.feature_names_in_ = np.asarray(
        [name for j, name in enumerate(labels) if j not in dropped], dtype=object
    )
    return gone


def _nested_xy(
    codes: list[torch.Tensor], levels: list[int], labels: Any, columns: Sequence[np.ndarray]
) -> tuple[bool, ...]:
    """Whether each factor is nested in the clusters; the clusters coded once, or not at
    all where they are a factor's own labels (clusters by firm with firm effects)."""
    from ..solvers.absorb.factors import cluster_codes, nested_in

    cluster = cluster_codes(labels, columns, codes)
    return tuple(nested_in(c, L, cluster) for c, L in zip(codes, levels, strict=True))


def _effects(
    names: Sequence[str],
    codes: list[torch.Tensor],
    levels: list[int],
    w: torch.Tensor | None,
    nested: tuple[bool, ...],
    dropped: list[str],
    demeaned: DemeanedXY,
    Y: torch.Tensor,
) -> AbsorbedEffects:
    """What the model reports of the absorbed effects (``absorbed_``)."""
    from ..stats.absorbed import AbsorbedEffects

    level_weights = getattr(demeaned, "level_weights", None)
    if level_weights is None:
        ones = torch.ones(len(Y), dtype=torch.float64) if w is None else w
        level_weights = [
            torch.zeros(L, dtype=torch.float64).index_add_(0, c, ones)
            for c, L in zip(codes, levels, strict=True)
        ]
    positive = [int((lw > 0).sum()) for lw in level_weights]
    if w is None:  # unweighted: no column of ones multiplied in
        tss = ((Y - Y.mean(0)) ** 2).sum(0)
    else:
        mean = (w.unsqueeze(1) * Y).sum(0) / w.sum()
        tss = (w.unsqueeze(1) * (Y - mean) ** 2).sum(0)
    return AbsorbedEffects(
        tuple(names), tuple(positive), nested, tuple(dropped), demeaned.method,
        demeaned.iterations, demeaned.redundant, tuple(float(t) for t in tss),
    )  # fmt: skip
