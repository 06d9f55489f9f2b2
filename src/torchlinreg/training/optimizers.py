"""Build a ``torch.optim`` optimizer from a name, a class or a factory."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import torch

from ..errors import InputError

OptimizerFactory = Callable[..., torch.optim.Optimizer]
OptimizerSpec = str | OptimizerFactory | torch.optim.Optimizer

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
    """``spec`` is a name (``"sgd"``, ``"adam"``…), an optimizer class, any callable
    with ``torch.optim``'s signature ``factory(params, lr=..., **options)``, or an
    optimizer instance used as a template: a fresh optimizer of its class is built over
    ``params`` with its hyper-parameters, ``options`` on top and ``lr`` always from the
    caller (an optimizer is bound to the tensors it was built with, so the instance
    itself cannot train the model's parameters)."""
    options = dict(options or {})
    factory: OptimizerFactory | None
    if "lr" in options:
        raise InputError("give the learning rate as lr=..., not inside optimizer_options")
    if isinstance(spec, str):
        known = optimizer_names()
        factory = known.get(spec.lower())
        if factory is None:
            raise InputError(
                f"unknown optimizer {spec!r}; choose one of {', '.join(sorted(known))} "
                "or pass a torch.optim class or factory"
            )
        label = spec
    elif isinstance(spec, torch.optim.Optimizer):
        template = {k: v for k, v in spec.defaults.items() if k != "lr"}
        options = {**template, **options}
        factory, label = type(spec), type(spec).__name__
    elif callable(spec):
        factory, label = spec, getattr(spec, "__name__", repr(spec))
    else:
        raise InputError(
            "optimizer must be a name, a torch.optim class, a factory or an optimizer "
            f"instance, got {spec!r}"
        )
    if isinstance(factory, type):
        _check_options(factory, label, options)
    try:
        # Concrete optimizer classes take lr; the abstract base's signature does not.
        opt = cast(OptimizerFactory, factory)(params, lr=lr, **options)
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


def _check_options(cls: type, label: str, options: Mapping[str, Any]) -> None:
    """Name an option the optimizer class does not take, with those it does."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # no signature to read: torch will say
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = [k for k in options if k not in params]
    if unknown:
        takes = [p for p in list(params)[1:] if p != "lr"]
        raise InputError(
            f"optimizer {label!r} rejected its options: it does not take "
            f"{', '.join(map(repr, unknown))}; it takes {', '.join(takes)}"
        )


def needs_closure(opt: torch.optim.Optimizer) -> bool:
    """True for optimizers (L-BFGS and the like) whose ``step`` re-evaluates the cost."""
    if isinstance(opt, torch.optim.LBFGS):
        return True
    closure = inspect.signature(opt.step).parameters.get("closure")
    return closure is not None and closure.default is inspect.Parameter.empty


def plain_step(opt: torch.optim.Optimizer) -> Callable[[], object]:
    """``opt.step`` as a function of no arguments, minus torch's per-call wrapper when
    nothing would observe it.

    ``torch.optim`` wraps every ``step`` in a profiler range and a loop over step hooks;
    on small problems that wrapper costs more than the update itself (~5 µs a step).
    When no hook is registered and no profiler runs, calling the wrapped function
    directly does exactly the same update; otherwise the full ``opt.step`` is used.
    Plain SGD (no momentum, weight decay…) is then done in one call per parameter
    (:func:`_plain_sgd_update`).
    """
    step = type(opt).step
    inner = getattr(step, "__wrapped__", None)
    import torch.optim.optimizer as module

    global_pre = getattr(module, "_global_optimizer_pre_hooks", None)
    global_post = getattr(module, "_global_optimizer_post_hooks", None)
    pre = getattr(opt, "_optimizer_step_pre_hooks", None)
    post = getattr(opt, "_optimizer_step_post_hooks", None)
    profiler = torch.autograd.profiler
    # Only bypass torch's own wrapper (marked `hooked`), never a user's decorator.
    if (
        inner is None
        or not getattr(step, "hooked", False)
        or None in (global_pre, global_post, pre, post)
        or not hasattr(profiler, "_is_profiler_enabled")
    ):
        return opt.step

    update = _plain_sgd_update if type(opt) is torch.optim.SGD else None

    def run() -> object:
        if global_pre or global_post or pre or post or profiler._is_profiler_enabled:
            return opt.step()
        if update is not None and update(opt):
            return None
        return inner(opt)

    return run


def _plain_sgd_update(opt: torch.optim.Optimizer) -> bool:
    """``torch.optim.SGD.step()``'s update where it is ``p -= lr·grad`` for every
    parameter, done as SGD does it; False (nothing done) otherwise.

    With no momentum, weight decay, maximisation, gradient scaling or differentiable
    mode, a float ``lr``, and parameters on the CPU (where SGD's default is neither the
    ``foreach`` nor the ``fused`` kernel), ``SGD.step`` runs ``param.add_(grad,
    alpha=-lr)`` for each parameter with a gradient and keeps no state: the same call
    here gives the same bits, without the ~6 µs SGD spends gathering its groups. The
    settings are read at every call, so a changed ``lr`` or ``momentum`` is seen.
    """
    if getattr(opt, "grad_scale", None) is not None or getattr(opt, "found_inf", None) is not None:
        return False
    groups = opt.param_groups
    for group in groups:
        if (
            group["momentum"] != 0
            or group["weight_decay"] != 0
            or group.get("maximize")
            or group.get("differentiable")
            or group.get("foreach")
            or group.get("fused")
            or isinstance(group["lr"], torch.Tensor)
            or not all(p.is_cpu for p in group["params"])
        ):
            return False
    if torch.is_grad_enabled():
        with torch.no_grad():
            _subtract_lr_grad(groups)
    else:
        _subtract_lr_grad(groups)
    return True


def _subtract_lr_grad(groups: list[dict[str, Any]]) -> None:
    for group in groups:
        alpha = -group["lr"]
        for p in group["params"]:
            if p.grad is not None:
                p.add_(p.grad, alpha=alpha)
