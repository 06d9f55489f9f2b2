"""The training data handed back to ``summary()`` for a robust covariance, checked
against what the model was fitted on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError

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
) -> list[tuple[Chunk, np.ndarray | None]]:
    """The data for the robust covariance ``cov_type`` as (chunk, group labels) pairs:
    the training rows again (as many as ``state`` holds, weighted as it was), with one
    group label per row for ``"cluster"``."""
    from ..data.chunks import validate_chunk

    if X is None or y is None:
        raise InputError(
            f"cov_type={cov_type!r} needs a second pass over the training data: "
            f"call summary(cov_type={cov_type!r}, X=X, y=y"
            + (", groups=groups)" if cov_type == "cluster" else ")")
        )
    if cov_type == "cluster" and groups is None:
        raise InputError("cov_type='cluster' needs groups=, one label per row of X")
    if (sample_weight is not None) != state.weighted:
        raise InputError(
            "the model was fitted "
            + ("with" if state.weighted else "without")
            + " sample_weight; pass the same sample_weight to summary()"
        )
    chunk = validate_chunk(X, y, sample_weight, device=state.device)
    if chunk.X.shape[0] != state.n_samples:
        raise InputError(
            f"X has {chunk.X.shape[0]} rows but the model was fitted on "
            f"{state.n_samples}; pass the training data"
        )
    return [(chunk, None if groups is None else np.asarray(groups))]
