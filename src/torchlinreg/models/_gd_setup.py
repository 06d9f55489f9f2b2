"""A gradient fit's validated parameters and data (``_Setup``), the checks and tensors
they come from, and the generator that draws its random start and shuffles its rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ._base import is_dask
from ._gd_distributed import _no_rows, _rows
from ._types import ArrayLike

if TYPE_CHECKING:
    import torch

    from ..training.losses import Loss


def _refuse_dask(X: Any) -> None:
    if is_dask(X):
        raise InputError(
            "GDRegressor trains on rows in memory, and X is a Dask collection; compute "
            "it first (X.compute()), or fit LinearRegression, which folds Dask "
            "partitions where they are"
        )


def _generator(seed: int | None) -> torch.Generator:
    import torch

    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def _tensors(
    X: ArrayLike,
    y: ArrayLike,
    sample_weight: ArrayLike | None,
    dtype: torch.dtype,
    device: torch.device,
    rank: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """X (n, p), y (n,) or (n, k) and the weights (n,) or None, validated, in ``dtype``
    on ``device``. One ``rank``'s share of a distributed fit may have no rows and weights
    that are all zero."""
    from ..data.arrays import as_tensor, check_lengths, check_sample_weight

    if rank and _rows(X) == 0:
        return _no_rows(X, y, sample_weight, dtype, device)
    Xt = as_tensor(X, "X", ndim=(2,), dtype=dtype, device=device)
    yt = as_tensor(y, "y", ndim=(1, 2), dtype=dtype, device=device)
    wt = None
    if sample_weight is not None:
        wt = as_tensor(sample_weight, "sample_weight", ndim=(1,), dtype=dtype, device=device)
        check_sample_weight(wt, allow_all_zero=rank)
    check_lengths(Xt, yt, wt)
    return Xt, yt, wt


@dataclass
class _Setup:
    """A fit's validated parameters and data."""

    loss: Loss
    device: torch.device
    dtype: torch.dtype
    seed: int | None
    X: torch.Tensor
    y: torch.Tensor
    w: torch.Tensor | None
    log: Callable[[str], None] | None
    # Streamed rows (models/_gd_stream.py): X and y are then empty, of the data's shapes.
    stream: Any = None
