"""A validated chunk of rows: the unit every exact solver and statistic folds in.

Validation happens once, at the boundary (shapes, numbers, NaN/inf named by row); the
solvers, refinement and inference passes then trust the chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .arrays import as_tensor, check_finite, check_lengths, check_sample_weight


@dataclass
class Chunk:
    """A validated chunk: X (n, p), Y (n, k) on one device, weights (n,) or None.

    ``finite`` tells that X is already known to hold no NaN/inf (the file readers check
    every value), so folding need not check again."""

    X: torch.Tensor
    Y: torch.Tensor
    sample_weight: torch.Tensor | None
    target_1d: bool
    finite: bool = False


def validate_chunk(
    X: Any,
    y: Any,
    sample_weight: Any = None,
    *,
    device: torch.device | None = None,
    row_offset: int = 0,
    whole: bool = True,
) -> Chunk:
    """Check a chunk at the boundary: shapes, numbers, finiteness (naming the cell).

    ``X`` keeps float32/float64 (no copy of large inputs); it is checked for NaN/inf
    block by block, ``row_offset`` giving rows in the whole data set. With ``whole``
    false (one chunk of a stream) a chunk may have all-zero weights; the total is
    checked when solving.
    """
    Xt = as_tensor(X, "X", ndim=(2,), dtype=None, device=device, finite=False)
    yt = as_tensor(y, "y", ndim=(1, 2), dtype=torch.float64, device=Xt.device, finite=False)
    check_finite(yt, "y", row_offset)
    wt = None
    if sample_weight is not None:
        wt = as_tensor(
            sample_weight,
            "sample_weight",
            ndim=(1,),
            dtype=torch.float64,
            device=Xt.device,
            finite=False,
        )
        check_finite(wt, "sample_weight", row_offset)
        check_sample_weight(wt, allow_all_zero=not whole)
    check_lengths(Xt, yt, wt)
    return Chunk(Xt, yt.reshape(len(yt), -1), wt, yt.ndim == 1)
