"""The training data handed back to ``summary()`` for a robust covariance, checked
against what the model was fitted on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..stats.cov_types import CLUSTERED, group_labels

if TYPE_CHECKING:
    from ..data.chunks import Chunk
    from ..solvers.state import LeastSquaresState


def robust_data(
    state: LeastSquaresState,
    cov_type: str,
    X: Any,
    y: Any,
    sample_weight: Any,
    groups: Any,
    fitted: tuple[int, bool] | None = None,
) -> list[tuple[Chunk, np.ndarray | None]]:
    """The data for the robust covariance ``cov_type`` as (chunk, group labels) pairs:
    the training rows again (as many as ``state`` holds, weighted as it was), with one
    group label per row for ``"cluster"``. ``fitted``: (rows, weighted) of this rank's
    share of a distributed fit, which the data must match instead (it may be empty)."""
    from ..data.chunks import validate_chunk

    if X is None or y is None:
        raise InputError(
            f"cov_type={cov_type!r} needs a second pass over the training data: "
            f"call summary(cov_type={cov_type!r}, X=X, y=y"
            + (", groups=groups)" if cov_type in CLUSTERED else ")")
        )
    if cov_type in CLUSTERED and groups is None:
        raise InputError(f"cov_type={cov_type!r} needs groups=, one label per row of X")
    rows, weighted = (state.n_samples, state.weighted) if fitted is None else fitted
    if (sample_weight is not None) != weighted:
        raise InputError(
            "the model was fitted "
            + ("with" if weighted else "without")
            + " sample_weight; pass the same sample_weight to summary()"
        )
    n = int(getattr(X, "shape", (None,))[0] or 0) if fitted is not None else None
    if n == 0 and rows == 0:
        return []  # a rank that holds none of the rows
    chunk = validate_chunk(X, y, sample_weight, device=state.device)
    if chunk.X.shape[0] != rows:
        raise InputError(
            f"X has {chunk.X.shape[0]} rows but the model was fitted on "
            f"{rows}{'' if fitted is None else ' on this rank'}; pass the training data"
        )
    if cov_type not in CLUSTERED:
        return [(chunk, None)]
    return [(chunk, group_labels(groups, chunk.X.shape[0]))]
