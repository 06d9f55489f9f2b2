"""What serves only the distributed gradient fit: a rank's share without rows, the
check that every rank fits the same problem, and each rank's shuffling seed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from ..distributed.group import Group
    from ._gd_setup import _Setup
    from .gd import GDRegressor


def _rows(a: Any) -> int | None:
    shape = getattr(a, "shape", None)
    return None if shape is None or len(shape) == 0 else int(shape[0])


def _no_rows(
    X: Any, y: Any, sample_weight: Any, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A rank's empty share: the shapes still count (columns, targets)."""
    import torch

    from ..errors import InputError

    if len(X.shape) != 2 or X.shape[1] == 0:
        raise InputError(
            f"X has shape {tuple(X.shape)}; give a rank without rows X of shape (0, n_features)"
        )
    y_shape = tuple(getattr(y, "shape", np.shape(y)))
    if len(y_shape) not in (1, 2) or y_shape[0] != 0:
        raise InputError(f"X has 0 rows but y has shape {y_shape}; give y as many rows")
    w_rows = None if sample_weight is None else _rows(np.asarray(sample_weight))
    if w_rows not in (None, 0):
        raise InputError(f"X has 0 rows but sample_weight has {w_rows}; give one weight per row")
    k = 1 if len(y_shape) == 1 else y_shape[1]
    empty = torch.zeros(0, X.shape[1], dtype=dtype, device=device)
    yt = torch.zeros((0,) if len(y_shape) == 1 else (0, k), dtype=dtype, device=device)
    wt = None if sample_weight is None else torch.zeros(0, dtype=dtype, device=device)
    return empty, yt, wt


def rank_seed(seed: int, rank: int) -> int:
    """The seed of ``rank``'s shuffling generator in a distributed fit: from numpy's
    ``SeedSequence([seed, rank])``, so that ranks draw independent orders."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint64)[0])


def _agree_on_problem(group: Group, model: GDRegressor, setup: _Setup, X: Any) -> tuple[int, bool]:
    """Every rank holds the same problem (columns, targets, parameters) and, over every
    rank, rows of positive weight; or every rank raises the same error. Returns rank 0's
    seed, the one every rank uses, and whether any rank gave ``sample_weight`` (then
    every rank trains weighted, rows without weights weighing 1, as the exact fits do)."""
    from ..errors import InputError
    from ._base import _column_names

    names = _column_names(X)
    mine = {
        "features": setup.X.shape[1],
        "targets": 1 if setup.y.ndim == 1 else setup.y.shape[1],
        "target shape (1-D or 2-D)": setup.y.ndim,
        "feature names": None if names is None else list(names),
        "parameters": _shared_params(model, setup),
    }
    positive = setup.X.shape[0] > 0 and (setup.w is None or bool((setup.w > 0).any()))
    seen = group.gather_objects((mine, positive, setup.seed, setup.w is not None))
    first = seen[0][0]
    for rank, (theirs, *_) in enumerate(seen):
        for label, value in theirs.items():
            if value != first[label]:
                raise InputError(
                    f"rank {rank} of {group.size} has other {label} than rank 0 ({value!r} "
                    f"vs {first[label]!r}); every rank must fit the same problem, each on "
                    "its own rows"
                )
    if not any(p for _, p, *_ in seen):
        raise InputError(
            "no rank has a row of positive weight (every rank's X is empty or its "
            "sample_weight zero); give at least one row of positive weight"
        )
    return int(seen[0][2]), any(weighted for *_, weighted in seen)


def _shared_params(model: GDRegressor, setup: _Setup) -> dict[str, Any]:
    """The parameters every rank must share: those that shape the training's steps and
    collectives (a mismatch would hang the ranks or leave them with different models)."""
    optimizer = model.optimizer
    named = optimizer if isinstance(optimizer, str) else getattr(optimizer, "__name__", None)
    return {
        "loss": model.loss,
        "epsilon": model.epsilon,
        "optimizer": named if named is not None else type(optimizer).__name__,
        "lr": model.lr,
        "optimizer_options": repr(model.optimizer_options),
        "epochs": model.epochs,
        "batch_size": model.batch_size,
        "shuffle": model.shuffle,
        "fit_intercept": model.fit_intercept,
        "init": model.init,
        "dtype": str(setup.dtype),
        "compare_exact": model.compare_exact,
        "standardize": model.standardize,
        "tol": model.tol,
        "n_iter_no_change": model.n_iter_no_change,
        "early_stopping": model.early_stopping,
        "validation_fraction": model.validation_fraction,
        "scheduler": repr(model.scheduler),
        "scheduler_options": repr(model.scheduler_options),
        "average": model.average,
    }
