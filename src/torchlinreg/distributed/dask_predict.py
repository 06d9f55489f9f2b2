"""``predict`` on a Dask collection: lazily, partition by partition, where the rows are.

A Dask array gives a Dask array (one column per target, or 1-D where the model was
fitted to a 1-D y, as ``predict`` of an array); a Dask DataFrame gives a Dask Series
(a 1-D y, named after it) or DataFrame (one column per target), with the partitions'
index. Nothing is computed until the result is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError


def predict(model: Any, X: Any) -> Any:
    """``model.predict`` of every partition of ``X``, as a Dask collection."""
    one_d = np.ndim(model.coef_) == 1  # a 1-D y (a 2-D y of one column stays 2-D)
    n_targets = 1 if one_d else int(np.shape(model.coef_)[0])
    if hasattr(X, "columns") and hasattr(X, "map_partitions"):
        meta = _meta(model, n_targets, one_d)
        return X.map_partitions(_partition, model, n_targets, one_d, meta=meta)
    if getattr(X, "ndim", None) != 2:
        raise InputError(f"X must be a 2-D Dask array or a Dask DataFrame; got {type(X).__name__}")
    if X.numblocks[1] != 1:
        raise InputError(
            f"X is chunked along its columns ({X.numblocks[1]} blocks); chunk it along rows "
            "only: X.rechunk({1: -1})"
        )
    if one_d:
        return X.map_blocks(
            _block, model, drop_axis=1, dtype=np.float64, meta=np.empty((0,), np.float64)
        )
    return X.map_blocks(
        _block,
        model,
        chunks=(X.chunks[0], (n_targets,)),
        dtype=np.float64,
        meta=np.empty((0, 0), np.float64),
    )


def _block(block: np.ndarray, model: Any) -> np.ndarray:
    if block.shape[0] == 0:  # an empty chunk (or Dask's own probe)
        if np.ndim(model.coef_) == 1:
            return np.empty((0,), np.float64)
        return np.empty((0, int(np.shape(model.coef_)[0])), np.float64)
    return np.asarray(model.predict(block), dtype=np.float64)


def _names(model: Any, n_targets: int) -> list[str]:
    names = getattr(model, "target_names_", None)
    if names and len(names) == n_targets:
        return [str(n) for n in names]
    return ["y"] if n_targets == 1 else [f"y{j}" for j in range(n_targets)]


def _meta(model: Any, n_targets: int, one_d: bool) -> Any:
    import pandas as pd

    names = _names(model, n_targets)
    if one_d:
        return pd.Series(dtype=np.float64, name=names[0])
    return pd.DataFrame({name: pd.Series(dtype=np.float64) for name in names})


def _partition(part: Any, model: Any, n_targets: int, one_d: bool) -> Any:
    import pandas as pd

    names = _names(model, n_targets)
    values = (
        np.empty((0, n_targets), np.float64)
        if len(part) == 0
        else np.asarray(model.predict(part), np.float64).reshape(len(part), n_targets)
    )
    if one_d:
        return pd.Series(values[:, 0], index=part.index, name=names[0])
    return pd.DataFrame(values, index=part.index, columns=names)
