"""Build a ``torch.optim`` optimizer from a name, a class or a factory."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Union

import torch

from ..errors import InputError

OptimizerFactory = Callable[..., torch.optim.Optimizer]
OptimizerSpec = Union[str, OptimizerFactory]

# Optimizers that cannot work on a dense parameter, so they are not offered by name.
_UNSUITABLE = {"sparseadam"}


def optimizer_names() -> dict[str, type[torch.optim.Optimizer]]:
    """Every dense optimizer in ``torch.optim``, keyed by its lower-cased class name."""
    return {
        name.lower(): cls
        for name, cls in vars(torch.optim).items()
        if isinstance(cls, type)
        and issubclass(cls, torch.optim.Optimizer)
        and cls is not torch.optim.Optimizer
        and name.lower() not in _UNSUITABLE
    }


def make_optimizer(
    spec: OptimizerSpec,
    params: Iterable[torch.Tensor],
    lr: float,
    options: Mapping[str, Any] | None,
) -> torch.optim.Optimizer:
    """``spec`` is a name (``"sgd"``, ``"adam"``…), an optimizer class, or any callable
    with ``torch.optim``'s signature ``factory(params, lr=..., **options)``."""
    options = dict(options or {})
    if "lr" in options:
        raise InputError("give the learning rate as lr=..., not inside optimizer_options")
    if isinstance(spec, str):
        known = optimizer_names()
        factory: OptimizerFactory | None = known.get(spec.lower())
        if factory is None:
            raise InputError(
                f"unknown optimizer {spec!r}; choose one of {', '.join(sorted(known))} "
                "or pass a torch.optim class or factory"
            )
        label = spec
    elif callable(spec):
        factory, label = spec, getattr(spec, "__name__", repr(spec))
    else:
        raise InputError(
            f"optimizer must be a name, a torch.optim class or a factory, got {spec!r}"
        )
    try:
        opt = factory(params, lr=lr, **options)
    except TypeError as exc:
        raise InputError(f"optimizer {label!r} rejected its options: {exc}") from None
    except ValueError as exc:
        raise InputError(f"optimizer {label!r} rejected a value: {exc}") from None
    if not isinstance(opt, torch.optim.Optimizer):
        raise InputError(
            f"optimizer factory {label!r} returned {type(opt).__name__}, "
            "not a torch.optim.Optimizer"
        )
    return opt


def needs_closure(opt: torch.optim.Optimizer) -> bool:
    """True for optimizers (L-BFGS and the like) whose ``step`` re-evaluates the cost."""
    if isinstance(opt, torch.optim.LBFGS):
        return True
    closure = inspect.signature(opt.step).parameters.get("closure")
    return closure is not None and closure.default is inspect.Parameter.empty
