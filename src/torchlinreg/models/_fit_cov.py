"""Robust covariance chosen at fit time (``LinearRegression(cov_type="HC3")``): the
meat of the sandwich computed by the fit, from data it already holds (in memory) or by
one more pass over its stream, so that ``summary()`` needs no data and a model file
keeps it.

The meat needs the residuals of the final coefficients, so it is always a pass after
the solve: over the validated rows in memory (no copy, no second validation), over the
chunks read once more for ``fit_chunks``, over each rank's rows for a distributed fit.
It is the same arithmetic as ``summary(cov_type=..., X=, y=)`` on the same rows
(:func:`~torchlinreg.stats.inference.model_meat`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..stats.cov_types import CLUSTERED, check_cov_type, group_labels

if TYPE_CHECKING:
    from ..data.chunks import Chunk
    from ..distributed.group import Group
    from ..stats.meat import Meat
    from ._exact import ExactRegressor
    from ._stream import ChunkSource


@dataclass(frozen=True)
class FitCovariance:
    """A robust covariance computed at fit time: its type and its meat (per target, in
    the orthonormal coordinates of :class:`~torchlinreg.stats.meat.Meat`; with the
    fitted state it gives the covariance matrix exactly, as a summary does)."""

    cov_type: str
    meat: Meat


def requested(model: ExactRegressor, groups: Any) -> str:
    """The model's ``cov_type`` (``"nonrobust"`` for estimators without one), checked
    against ``groups``: ``"cluster"`` needs them, the other types take none."""
    cov_type = check_cov_type(getattr(model, "cov_type", "nonrobust"))
    if cov_type in CLUSTERED and groups is None:
        raise InputError(
            f"cov_type={cov_type!r} needs the cluster labels: fit(X, y, groups=groups), one "
            "label per row (fit_chunks: (X, y, sample_weight, groups) chunks)"
        )
    if cov_type not in CLUSTERED and groups is not None:
        has = "cov_type" in model.get_params()
        raise InputError(
            f"groups= are cluster labels, for cov_type='cluster'; this "
            f"{type(model).__name__} has "
            + (f"cov_type={cov_type!r}" if has else "no robust covariance")
            + ": drop groups="
            + (", or create it with cov_type='cluster'" if has else "")
        )
    return cov_type


def refuse_partial(model: ExactRegressor) -> None:
    """``partial_fit`` keeps no rows, and the meat needs them with the final fit."""
    cov_type = check_cov_type(getattr(model, "cov_type", "nonrobust"))
    if cov_type != "nonrobust":
        raise InputError(
            f"cov_type={cov_type!r} is computed by fit() or fit_chunks(), which can read "
            "the rows again with the final coefficients; partial_fit keeps no rows: use "
            "cov_type='nonrobust' and summary(cov_type=..., X=, y=) afterwards"
        )


def refuse_dask(cov_type: str) -> None:
    if cov_type != "nonrobust":
        raise InputError(
            f"cov_type={cov_type!r} is not computed at fit time for Dask collections; fit "
            "with cov_type='nonrobust', then summary(cov_type=..., X=X, y=y) with the "
            "same collections"
        )


def in_memory(model: ExactRegressor, cov_type: str, chunk: Chunk, labels: Any) -> FitCovariance:
    """The meat over the fit's own validated rows."""
    from ..stats.inference import model_meat

    return _kept(cov_type, model_meat(model, cov_type, [(chunk, labels)], fitted_rows=True))


def distributed(
    model: ExactRegressor,
    cov_type: str,
    group: Group,
    data: tuple[Any, Any, Any, Any],
) -> FitCovariance:
    """The meat over every rank's rows (``data``: this rank's X, y, sample_weight,
    groups), collectively; every rank gets it."""
    from ..stats.inference import model_meat
    from ._summary import robust_data

    X, y, sample_weight, groups = data
    rows = model._rank_data
    pairs = group.agree(
        lambda: robust_data(model.state_, cov_type, X, y, sample_weight, groups, rows)
    )
    return _kept(cov_type, model_meat(model, cov_type, pairs, group))


def streamed(
    model: ExactRegressor, cov_type: str, chunks: ChunkSource, group: Group | None = None
) -> FitCovariance:
    """The meat from one more pass over the chunks (each rank's own with ``group``)."""
    from ..stats.inference import model_meat

    pairs = _pairs(chunks, cov_type, model._device())
    return _kept(cov_type, model_meat(model, cov_type, pairs, group))


def fit_source(chunks: ChunkSource, cov_type: str) -> ChunkSource:
    """The chunks the fit's passes read: without their cluster labels (the fourth item
    of a chunk). A robust covariance needs a pass after the fit: a one-shot iterator is
    refused before anything is read."""
    if cov_type == "nonrobust":
        return chunks
    if not callable(chunks) and isinstance(chunks, Iterable) and iter(chunks) is chunks:
        raise InputError(
            f"cov_type={cov_type!r} reads the chunks once more after the fit, and a "
            "one-shot iterator (a generator) can be read once: give a list or a function "
            "returning a fresh iterator"
        )
    fresh = _fresh(chunks)

    def without_labels() -> Iterator[Any]:
        for item in fresh():
            yield tuple(item[:3]) if isinstance(item, (tuple, list)) and len(item) == 4 else item

    return without_labels


def _fresh(chunks: ChunkSource) -> Callable[[], Iterable[Any]]:
    return chunks if callable(chunks) else lambda: chunks  # type: ignore[return-value]


def _pairs(chunks: ChunkSource, cov_type: str, device: Any) -> Iterator[tuple[Chunk, Any]]:
    """(chunk, cluster labels) pairs of a pass over the chunks, validated with their
    row numbers in the whole stream."""
    from ..data.chunks import Chunk, validate_chunk

    rows = 0
    for item in _fresh(chunks)():
        labels = None
        if isinstance(item, Chunk):
            chunk = item
        elif isinstance(item, (tuple, list)) and len(item) in (2, 3, 4):
            chunk = validate_chunk(*item[:3], device=device, row_offset=rows, whole=False)
            if len(item) == 4:
                if cov_type not in CLUSTERED:
                    raise InputError(
                        "a chunk's fourth item (cluster labels) is for cov_type='cluster'; "
                        "give (X, y) or (X, y, sample_weight) chunks"
                    )
                labels = group_labels(item[3], chunk.X.shape[0], row_offset=rows)
        else:
            raise InputError(
                "each chunk must be a tuple (X, y), (X, y, sample_weight) or, for "
                "cov_type='cluster', (X, y, sample_weight, groups)"
            )
        if cov_type in CLUSTERED and labels is None:
            raise InputError(
                "cov_type='cluster' needs the cluster labels with every chunk: give "
                "(X, y, sample_weight, groups) chunks (sample_weight may be None)"
            )
        rows += chunk.X.shape[0]
        yield chunk, labels


def _kept(cov_type: str, meat: Meat) -> FitCovariance:
    """What the model keeps of a meat: its matrices, cluster count and leverage flag
    (the sums that checked the pass read the fitted rows have done their work)."""
    if cov_type == "cluster" and meat.n_groups is not None and meat.n_groups < 2:
        raise InputError(f"cluster-robust covariance needs at least 2 groups; got {meat.n_groups}")
    kept = replace(meat, column_sums=None, target_sums=None, gram=None)
    return FitCovariance(cov_type, kept)


def kept_meat(model: ExactRegressor, cov_type: str) -> Meat:
    """The meat computed at fit time for ``cov_type``, for a summary without data."""
    fitted = getattr(model, "_fit_covariance", None)
    if fitted is not None and fitted.cov_type == cov_type:
        return fitted.meat
    held = "no robust covariance" if fitted is None else f"cov_type={fitted.cov_type!r}"
    labels = ", groups=groups" if cov_type in CLUSTERED else ""
    refit = (
        f"create the model with cov_type={cov_type!r} (computed by the fit), or "
        if "cov_type" in model.get_params()
        else ""
    )
    raise InputError(
        f"cov_type={cov_type!r} needs a second pass over the training data, and it was not "
        f"made at fit time (this model holds {held}): {refit}pass the training data: "
        f"summary(cov_type={cov_type!r}, X=X, y=y{labels})"
    )


def adopt(model: ExactRegressor, cov_type: str, meat: Meat) -> None:
    """Keep ``meat``, made by a pass over the rows the model was just fitted on (the
    command line's), as the fit's own: the model then is as if fitted with
    ``cov_type``. Estimators without a ``cov_type`` (Ridge: no standard errors) keep
    nothing."""
    if "cov_type" in model.get_params():
        model.set_params(cov_type=cov_type)
        model._fit_covariance = _kept(cov_type, meat)
