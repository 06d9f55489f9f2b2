"""The parameters a model file may record for each estimator, and the values each may
take, checked without torch (``summary MODEL`` stays light).

The constructors only store their parameters and check them when fitting, so a crafted
value would surface late (``summary MODEL`` would show it as if it had been used): here
every recorded parameter must be one the estimator has, with a value it accepts. The
allowed values are the estimators' own (:mod:`torchlinreg.models._validation`,
:data:`torchlinreg.devices.DTYPES`). Parameters the writer could not record (an
optimizer class, a stream) are absent and take their defaults. Left to the estimator
when the model is used: whether torch.optim has the optimizer named, and whether the
device named exists on this machine.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

from ._json_checks import boolean, integer, invalid, json_object, real
from .devices import DTYPES
from .errors import InputError
from .models._validation import (
    EXACT_SOLVERS,
    INITS,
    LOSSES,
    REFINE,
    RIDGE_SOLVERS,
    SEED_LIMIT,
)
from .stats.cov_types import COV_TYPES

Check = Callable[[Any, str], Any]

# A torch device as text ("cpu", "cuda:1", "mps") or "auto"; "meta" devices hold no data.
_DEVICE = re.compile(r"auto|(?!auto\b|meta\b)[a-z][a-z0-9_]*(?::[0-9]{1,4})?")


def _choice(choices: tuple[Any, ...]) -> Check:
    """One of ``choices``, of the same JSON type (``1`` is not ``True``)."""

    def check(value: Any, where: str) -> None:
        if not any(type(value) is type(c) and value == c for c in choices):
            raise invalid(where, value, "one of " + ", ".join(map(repr, choices)))

    return check


def _optional(check: Check) -> Check:
    return lambda value, where: None if value is None else check(value, where)


def _device(value: Any, where: str) -> None:
    if not isinstance(value, str) or not _DEVICE.fullmatch(value):
        raise invalid(where, value, "a device such as 'cpu', 'cuda', 'cuda:1' or 'auto'")


def _optimizer(value: Any, where: str) -> None:
    if not isinstance(value, str) or not value.isidentifier():
        raise invalid(where, value, "a torch.optim optimizer's name, such as 'sgd'")


def _rate(value: Any, where: str) -> None:
    """A learning rate: a number > 0, or "auto" (chosen from the data at fit time)."""
    if value != "auto":
        _positive(value, where)


def _scheduler(value: Any, where: str) -> None:
    if not isinstance(value, str) or not value.isidentifier():
        raise invalid(where, value, "a torch.optim.lr_scheduler name, such as 'step'")


def _fraction(value: Any, where: str) -> None:
    real(value, where, low=sys.float_info.min, high=1 - sys.float_info.epsilon)


def _alpha(value: Any, where: str) -> None:
    for i, a in enumerate(value if isinstance(value, list) else [value]):
        real(a, f"{where}[{i}]" if isinstance(value, list) else where, low=0)


def _positive(value: Any, where: str) -> None:
    real(value, where, low=sys.float_info.min)


def _count(low: int) -> Check:
    return lambda value, where: integer(value, where, low)


def _options(value: Any, where: str) -> None:
    json_object(value, where, (), strict=False)  # any keys, plain JSON values


def _average(value: Any, where: str) -> None:
    """``average``: true or false, or the rows seen before averaging starts (≥ 1)."""
    if not isinstance(value, bool):
        integer(value, where, 1)


def _none(value: Any, where: str) -> None:
    if value is not None:
        raise invalid(where, value, "null (a stream is never recorded)")


_EXACT: dict[str, Check] = {
    "fit_intercept": boolean,
    "solver": _choice(EXACT_SOLVERS),
    "refine": _choice(REFINE),
    "device": _optional(_device),
}
PARAMS: dict[str, dict[str, Check]] = {
    "LinearRegression": {**_EXACT, "cov_type": _choice(COV_TYPES)},
    "Ridge": {**_EXACT, "solver": _choice(RIDGE_SOLVERS), "alpha": _alpha},
    "GDRegressor": {
        "loss": _choice(LOSSES), "epsilon": _positive, "optimizer": _optimizer,
        "lr": _rate, "optimizer_options": _optional(_options), "epochs": _count(0),
        "batch_size": _optional(_count(1)), "shuffle": boolean, "fit_intercept": boolean,
        "init": _choice(INITS), "log_every": _optional(_count(1)), "log_to": _none,
        "device": _device, "dtype": _choice(DTYPES), "compare_exact": boolean,
        "random_state": _optional(lambda v, w: integer(v, w, 0, SEED_LIMIT - 1)),
        "standardize": boolean, "tol": _optional(lambda v, w: real(v, w, low=0)),
        "n_iter_no_change": _count(1), "early_stopping": boolean,
        "validation_fraction": _fraction, "scheduler": _optional(_scheduler),
        "scheduler_options": _optional(_options), "warm_start": boolean,
        "checkpoint_every": _optional(_count(1)), "average": _average,
    },
}  # fmt: skip


def _non_negative(value: Any, where: str) -> None:
    real(value, where, low=0)


# Lasso and ElasticNet (models/penalized.py), HuberRegressor (models/huber.py): the
# ranges their _check_params accept.
_PENALIZED: dict[str, Check] = {
    "alpha": _non_negative, "fit_intercept": boolean, "max_iter": _count(1),
    "tol": _non_negative, "warm_start": boolean, "device": _optional(_device),
}  # fmt: skip
PARAMS["Lasso"] = _PENALIZED
PARAMS["ElasticNet"] = {**_PENALIZED, "l1_ratio": lambda v, w: real(v, w, low=0, high=1)}
PARAMS["HuberRegressor"] = {
    "epsilon": lambda v, w: real(v, w, low=1), "alpha": _non_negative, "max_iter": _count(1),
    "fit_intercept": boolean, "tol": _non_negative, "device": _optional(_device),
}  # fmt: skip
ESTIMATORS = tuple(PARAMS)


def check_params(estimator: str, params: Any, n_targets: int) -> dict[str, Any]:
    """The recorded parameters of ``estimator`` (one of :data:`ESTIMATORS`), each known
    to it and of an allowed value; raises :class:`InputError`."""
    checks = PARAMS[estimator]
    json_object(params, "params", (), tuple(checks))
    for name, value in params.items():
        checks[name](value, f"params.{name}")
    alpha = params.get("alpha")
    if isinstance(alpha, list) and len(alpha) not in (1, n_targets):
        raise InputError(
            f"the model metadata is invalid: params.alpha has {len(alpha)} values for "
            f"{n_targets} target(s)"
        )
    return params
