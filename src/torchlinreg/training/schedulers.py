"""Learning-rate schedules: any ``torch.optim.lr_scheduler`` by name, with its options.

Short names (``"step"``, ``"cosine"``, ``"onecycle"``, ``"plateau"``, ...) and the
lower-cased class names (``"steplr"``, ``"cosineannealinglr"``) both work; so does a
scheduler class or a factory called as ``factory(optimizer, **options)``.

When a scheduler steps: :class:`~torch.optim.lr_scheduler.OneCycleLR` and
:class:`~torch.optim.lr_scheduler.CyclicLR` describe a cycle in optimizer steps, so they
step after every batch; :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` steps after
every epoch with that epoch's mean training cost; every other scheduler steps after
every epoch. Filled in when not given: ``OneCycleLR``'s ``max_lr`` (the learning rate)
and ``total_steps`` (every step of the run: epochs × steps per epoch),
``CosineAnnealingLR``'s ``T_max`` (the run's epochs).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim import lr_scheduler as ls

from ..errors import InputError

SchedulerSpec = str | Callable[..., Any]

SHORT_NAMES: dict[str, str] = {
    "step": "StepLR",
    "multistep": "MultiStepLR",
    "constant": "ConstantLR",
    "linear": "LinearLR",
    "exponential": "ExponentialLR",
    "polynomial": "PolynomialLR",
    "cosine": "CosineAnnealingLR",
    "cosine_restarts": "CosineAnnealingWarmRestarts",
    "cyclic": "CyclicLR",
    "onecycle": "OneCycleLR",
    "plateau": "ReduceLROnPlateau",
    "lambda": "LambdaLR",
    "multiplicative": "MultiplicativeLR",
}
# Schedulers of schedulers (they take other schedulers, not options).
_COMPOSITE = {"SequentialLR", "ChainedScheduler"}
_PER_BATCH = ("OneCycleLR", "CyclicLR")


def scheduler_names() -> dict[str, type]:
    """Every usable scheduler by short name and by lower-cased class name."""
    classes = {
        name: cls
        for name, cls in vars(ls).items()
        if isinstance(cls, type)
        and issubclass(cls, (ls.LRScheduler, ls.ReduceLROnPlateau))
        and not name.startswith("_")
        and name not in ("LRScheduler", *_COMPOSITE)
    }
    names = {short: classes[full] for short, full in SHORT_NAMES.items() if full in classes}
    names.update({full.lower(): cls for full, cls in classes.items()})
    return names


@dataclass
class Schedule:
    """A built scheduler and when it steps."""

    scheduler: Any
    per_batch: bool
    on_cost: bool

    def after_batch(self) -> None:
        if self.per_batch:
            self.scheduler.step()

    def after_epoch(self, mean_cost: float) -> None:
        """``mean_cost``: the epoch's mean cost (read only by a plateau schedule)."""
        if self.on_cost:
            self.scheduler.step(mean_cost)
        elif not self.per_batch:
            self.scheduler.step()


class PerBatch:
    """A step followed by a per-batch schedule's step. :meth:`skip` steps the schedule
    alone, for a batch skipped for zero weight: the cycle's ``total_steps`` counts every
    batch of every epoch, so a schedule that missed the skipped ones would end the run
    short of its annealed rate."""

    def __init__(self, step: Callable[[Any], Any], schedule: Schedule) -> None:
        self.step, self.schedule = step, schedule

    def __call__(self, evaluate: Any) -> Any:
        summed = self.step(evaluate)
        self.schedule.after_batch()
        return summed

    def skip(self) -> None:
        if getattr(self.schedule.scheduler, "_step_count", 0) > 1:
            self.schedule.after_batch()
            return
        # Skipped batches first: torch warns that the schedule steps before the
        # optimizer and "skips" its first rate, which is what a skipped batch means.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
            self.schedule.after_batch()


def make_schedule(
    spec: SchedulerSpec | None,
    options: Mapping[str, Any] | None,
    opt: torch.optim.Optimizer,
    *,
    lr: float,
    epochs: int,
    steps_per_epoch: int,
) -> Schedule | None:
    """The scheduler ``spec`` with ``options`` over ``opt`` (module docstring), or
    ``None`` without one. ``epochs`` counts the run's epochs (passes)."""
    if spec is None:
        if options:
            raise InputError(
                "scheduler_options given without a scheduler; name one with scheduler=..."
            )
        return None
    options = dict(options or {})
    factory: Callable[..., Any]
    if isinstance(spec, str):
        found = scheduler_names().get(spec.lower())
        if found is None:
            shown = ", ".join(sorted(SHORT_NAMES)) + " (or a torch.optim.lr_scheduler class name)"
            raise InputError(f"unknown scheduler {spec!r}; choose one of {shown}")
        factory, label = found, spec
    elif callable(spec):
        factory, label = spec, getattr(spec, "__name__", repr(spec))
    else:
        raise InputError(f"scheduler must be a name, a scheduler class or a factory, got {spec!r}")
    name = factory.__name__ if isinstance(factory, type) else ""
    _fill_defaults(name, options, lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch)
    if isinstance(factory, type):
        _check_options(factory, label, options)
    try:
        scheduler = factory(opt, **options)
    except TypeError as exc:
        raise InputError(f"scheduler {label!r} rejected its options: {exc}") from None
    except ValueError as exc:
        raise InputError(f"scheduler {label!r} rejected a value: {exc}") from None
    per_batch = name in _PER_BATCH
    on_cost = isinstance(scheduler, ls.ReduceLROnPlateau)
    return Schedule(scheduler, per_batch, on_cost)


def _fill_defaults(
    name: str, options: dict[str, Any], *, lr: float, epochs: int, steps_per_epoch: int
) -> None:
    if name == "OneCycleLR":
        options.setdefault("max_lr", lr)
        if not {"total_steps", "epochs", "steps_per_epoch"} & options.keys():
            options["total_steps"] = epochs * steps_per_epoch
    elif name == "CosineAnnealingLR":
        options.setdefault("T_max", epochs)


def _check_options(cls: type, label: str, options: Mapping[str, Any]) -> None:
    """Name an option the scheduler does not take, and one it needs but lacks."""
    params = inspect.signature(cls).parameters
    takes = [p for p in list(params)[1:] if params[p].kind is not inspect.Parameter.VAR_KEYWORD]
    unknown = [k for k in options if k not in params]
    if unknown:
        raise InputError(
            f"scheduler {label!r} does not take the option {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(takes)}"
        )
    missing = [
        p
        for p in takes
        if params[p].default is inspect.Parameter.empty
        and params[p].kind is not inspect.Parameter.VAR_POSITIONAL
        and p not in options
    ]
    if missing:
        raise InputError(
            f"scheduler {label!r} needs the option {', '.join(missing)} "
            f"(e.g. scheduler_options={{{missing[0]!r}: ...}})"
        )
