"""The statistical summary of an exact fit from a file: the library's one summary path
(:func:`~torchlinreg.stats.inference.model_summaries`), fed with the file read again
(and its cluster labels) when the covariance is robust. That covariance is kept by the
model as if fitted with its ``cov_type`` (the model file holds it: ``summary MODEL``
and a loaded model's ``summary()`` give it without the data)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..data.design import Design, chunks
from ..data.sources import Source
from .common import kept_labels

if TYPE_CHECKING:
    from .fit import FitOptions


def summaries(
    source: Source, design: Design, options: FitOptions, model: Any, group: Any = None
) -> list[Any]:
    """One summary per target, with the options as checked by :class:`FitOptions`; with
    ``group`` (the ranks of ``torchrun``) a robust covariance reads each rank's share."""
    from ..models._fit_cov import adopt
    from ..stats.inference import model_meat, model_summaries

    if not options.robust:
        return model_summaries(model, level=options.level)
    from ..stats.cov_types import LabelPair
    from .econometrics import cluster_columns

    keep = cluster_columns(options)

    def data() -> Iterator[tuple[Any, Any]]:
        for chunk, raw in chunks(source, design, keep=keep):
            found = [kept_labels(source, chunk, raw, name, "cluster label") for name in keep]
            labels = None if not found else found[0] if len(found) == 1 else LabelPair(*found)
            yield chunk.as_solver_chunk(), labels

    meat = model_meat(model, options.cov_type, data(), group, lags=options.lags)
    adopt(model, options.cov_type, meat)
    return model_summaries(model, level=options.level, cov_type=options.cov_type, meat=meat)
