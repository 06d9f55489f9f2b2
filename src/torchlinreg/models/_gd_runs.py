"""A gradient run's identity across calls: the trajectory parameters and data digest a
checkpoint is resumed against (``_Run``), and what ``partial_fit`` carries (``_Partial``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    import torch

    from ..training.checkpoint import Checkpoint, RunIdentity
    from ..training.loop import EpochCallback
    from ..training.scaling import Scaling
    from ._gd_setup import _Setup
    from .gd import GDRegressor


# The parameters that shape a run's trajectory: a checkpoint is resumed only by a run
# with the same values (the others, such as log_every or device, may change).
TRAJECTORY_PARAMS = (
    "loss", "epsilon", "optimizer", "lr", "optimizer_options", "epochs", "batch_size",
    "shuffle", "fit_intercept", "init", "random_state", "standardize", "tol",
    "n_iter_no_change", "early_stopping", "validation_fraction", "scheduler",
    "scheduler_options", "average",
)  # fmt: skip


def data_digest(setup: _Setup) -> str:
    """SHA-256 of the training data's values (X, y and the weights, as trained on)."""
    h = hashlib.sha256()
    for t in (setup.X, setup.y, setup.w):
        if t is not None:
            h.update(str(tuple(t.shape)).encode())
            h.update(t.detach().cpu().contiguous().numpy().data)  # its buffer: no copy
    return h.hexdigest()


@dataclass
class _Run:
    """A checkpointed run: its identity, the seed its generator starts from, the data's
    digest, and the checkpoint it resumes from (already read and checked)."""

    identity: RunIdentity
    seed: int
    digest: str
    start: Checkpoint | None

    @classmethod
    def of(cls, model: GDRegressor, setup: _Setup, resume: str | None) -> _Run:
        """The run of ``model`` on ``setup``; ``resume`` read and checked against it.

        With ``random_state`` an int, the seed is it; otherwise a fresh seed is drawn
        and saved in the checkpoint, and a resumed run takes the checkpoint's (so a
        random start and the held-out rows are drawn again as the run drew them)."""
        from ..training.checkpoint import RunIdentity

        params = {k: getattr(model, k) for k in TRAJECTORY_PARAMS}
        params["dtype"] = str(setup.dtype).removeprefix("torch.")
        identity = RunIdentity.of(params, setup.X, setup.y)
        return cls.resumed(model, identity, data_digest(setup), setup.seed, resume)

    @classmethod
    def resumed(
        cls,
        model: GDRegressor,
        identity: RunIdentity,
        digest: str,
        seed: int | None,
        resume: str | None,
    ) -> _Run:
        """The run of ``identity`` on data of ``digest``; ``resume`` read and checked."""
        from ..training.checkpoint import load_checkpoint

        start = None
        if resume is not None:
            start = load_checkpoint(str(resume), identity)
            if start.loop.get("data_sha256") != digest:
                raise InputError(
                    f"{resume} is a checkpoint of training on other data (of the same "
                    "shape, other values); resume on the data it was trained on, or train "
                    "afresh (without resume)"
                )
            saved_seed = start.loop.get("seed")
            if seed is None or isinstance(model.random_state, np.random.RandomState):
                if isinstance(saved_seed, bool) or not isinstance(saved_seed, int):
                    raise InputError(
                        f"{resume}: the checkpoint's seed is missing; the file is damaged"
                    )
                seed = saved_seed
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
        return cls(identity, seed, digest, start)

    def writer(self, path: str, every: int | None, stop: Any) -> EpochCallback:
        """The epoch callback that writes this run's checkpoints to ``path``."""
        from ..training.checkpoint import Checkpointer

        checkpointer = Checkpointer(str(path), every, self.identity, stop)
        extra = {"seed": self.seed, "data_sha256": self.digest}

        def after_epoch(end: Any) -> None:
            checkpointer.after_epoch(
                end.epoch, end.theta, end.optimizer, end.scheduler, end.generator,
                end.history, lambda: {**end.loop_state(), **extra},
            )  # fmt: skip

        return after_epoch


@dataclass
class _Partial:
    """What ``partial_fit`` carries from one call to the next."""

    n_features: int
    n_targets: int
    target_ndim: int
    dtype: torch.dtype
    scaling: Scaling
    state: Checkpoint
    lr: float

    @classmethod
    def of(cls, setup: _Setup, scaling: Scaling, state: Checkpoint, lr: float) -> _Partial:
        y = setup.y
        k = 1 if y.ndim == 1 else y.shape[1]
        return cls(setup.X.shape[1], k, y.ndim, setup.dtype, scaling, state, lr)

    def check(self, setup: _Setup, model: GDRegressor) -> None:
        """The data of a later call have the first call's shape and dtype."""
        y = setup.y
        k = 1 if y.ndim == 1 else y.shape[1]
        if setup.X.shape[1] != self.n_features:
            raise InputError(
                f"X has {setup.X.shape[1]} features, but GDRegressor is expecting "
                f"{self.n_features} features as input (partial_fit started with them); "
                "give the same columns, or call fit to start afresh"
            )
        if (k, y.ndim) != (self.n_targets, self.target_ndim):
            shape = "1-D" if self.target_ndim == 1 else f"{self.n_targets} columns"
            raise InputError(
                f"y has shape {tuple(y.shape)}, but partial_fit started with y {shape}; "
                "give targets of the same shape (or call fit to start afresh)"
            )
        if setup.dtype != self.dtype:
            raise InputError(
                f"dtype is {setup.dtype} now, but partial_fit started in {self.dtype}; "
                "keep the dtype (or call fit to start afresh)"
            )
