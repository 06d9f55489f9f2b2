"""``GDRegressor.fit_chunks``: gradient training on a chunk stream read every epoch.

The first pass fits the exact least-squares model on the rows as trained on (in the
training dtype), which gives what :meth:`GDRegressor.fit` takes from its exact fit:
the scales of standardization, the curvature (the stable step, ``lr="auto"``) and
``exact_``; the training itself is :func:`~torchlinreg.training.loop.train` on
:class:`~torchlinreg.training.streamed.StreamedRows`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ._stream import ChunkSource, ChunkStream
from ._validation import check_int, seed_from
from .gd import TRAJECTORY_PARAMS, GDRegressor, _generator, _Run, _Setup

if TYPE_CHECKING:
    from ..distributed.group import DistributedLike
    from ..solvers.state import LeastSquaresState
    from ..training.streamed import StreamedRows


def fit_stream(
    model: GDRegressor,
    chunks: ChunkSource,
    *,
    feature_names: Sequence[str] | None = None,
    buffer_rows: int | None = None,
    checkpoint: str | None = None,
    resume: str | None = None,
    distributed: DistributedLike = False,
) -> LeastSquaresState:
    """Fit ``model`` on the stream (``GDRegressor.fit_chunks``); returns the first
    pass's least-squares state (the fit statistics of the command line come from it)."""

    setup, rows = _checked(model, chunks, buffer_rows, checkpoint, distributed)
    exact_model = _first_pass(model, rows, feature_names)
    _shape_setup(setup, rows)
    exact = exact_model if model._wants_exact() else None
    scaling, curvature = model._geometry(setup, exact)
    run = None
    if checkpoint is not None or resume is not None:
        run = _Run.resumed(model, _identity(model, rows, buffer_rows), rows.digest, setup.seed,
                           resume)  # fmt: skip
        generator = _generator(run.seed)
    else:
        generator = _generator(setup.seed)
    theta0 = model._start(setup, generator, scaling)
    _name_features(model, feature_names)
    result = model._train_run(setup, theta0, generator, None, scaling, curvature, checkpoint, run)
    model._set_fitted(result, setup.X, setup.y, exact)
    model._partial = None
    return exact_model.state_


def _checked(
    model: GDRegressor,
    chunks: ChunkSource,
    buffer_rows: int | None,
    checkpoint: str | None,
    distributed: DistributedLike,
) -> tuple[_Setup, StreamedRows]:
    """The parameters checked; the fit's setup (no rows yet) and its streamed rows."""
    from ..devices import resolve_device, resolve_dtype
    from ..training.losses import make_loss
    from ..training.streamed import StreamedRows

    if distributed is not False and distributed is not None:
        raise InputError(
            "GDRegressor.fit_chunks runs in one process; for distributed training give "
            "each rank's rows to fit(X, y, distributed=...)"
        )
    model._check_params()
    if model.early_stopping:
        raise InputError(
            "early_stopping=True holds rows out of training, which fit_chunks does not do "
            "(a stream is read again every epoch, and the held-out rows would be kept in "
            "memory); stop on the training cost (tol without early_stopping), or fit in "
            "memory"
        )
    if model.checkpoint_every is not None and checkpoint is None:
        raise InputError(
            "checkpoint_every needs a path to write to: fit_chunks(chunks, checkpoint='run.ckpt')"
        )
    check_int("buffer_rows", buffer_rows, low=1, allow_none=True)
    device, dtype = resolve_device(model.device), resolve_dtype(model.dtype)
    stream = ChunkStream(chunks, device)
    if stream.one_shot:
        raise InputError(
            "GDRegressor.fit_chunks reads the data again every epoch, and chunks is a "
            "one-shot iterator (a generator); give a list, a re-iterable reader, or a "
            "function returning a fresh iterator"
        )
    loss = make_loss(model.loss, model.epsilon)
    rows = StreamedRows(stream, dtype, device, buffer_rows)
    empty = _empty(dtype, device)
    setup = _Setup(
        loss, device, dtype, seed_from(model.random_state), empty, empty, None,
        model._log_sink(), stream=rows,
    )  # fmt: skip
    return setup, rows


def _first_pass(model: GDRegressor, rows: StreamedRows, feature_names: Sequence[str] | None) -> Any:
    """The exact least-squares fit of the stream's first pass (refined by further passes
    where accuracy is at risk), its own diagnostics silenced as in ``fit``."""
    from .linear import LinearRegression

    exact = LinearRegression(fit_intercept=model.fit_intercept)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exact.fit_chunks(rows.exact_passes, feature_names=feature_names)
    return exact


def _empty(dtype: Any, device: Any, *shape: int) -> Any:
    import torch

    return torch.empty((0, *shape), dtype=dtype, device=device)


def _shape_setup(setup: _Setup, rows: StreamedRows) -> None:
    """The setup's X and y: empty, of the stream's columns and targets (what the
    estimator's shape-reading steps look at)."""
    setup.X = _empty(setup.dtype, setup.device, rows.n_features)
    target_shape = () if rows.target_1d else (rows.n_targets,)
    setup.y = _empty(setup.dtype, setup.device, *target_shape)


def _identity(model: GDRegressor, rows: StreamedRows, buffer_rows: int | None) -> Any:
    """What a checkpoint of this run must match: the trajectory's parameters (the
    shuffle buffer's size among them) and the stream's shape."""
    from ..training.checkpoint import RunIdentity

    params: dict[str, Any] = {k: getattr(model, k) for k in TRAJECTORY_PARAMS}
    params["dtype"] = str(rows.dtype).removeprefix("torch.")
    params["buffer_rows"] = buffer_rows
    return RunIdentity(params, rows.n, rows.n_features, rows.n_targets, params["dtype"])


def _name_features(model: GDRegressor, feature_names: Sequence[str] | None) -> None:
    model._set_feature_names(None)
    if feature_names is not None:
        model.feature_names_in_ = np.asarray(list(feature_names), dtype=object)  # type: ignore[attr-defined]
