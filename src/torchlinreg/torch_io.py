"""Fitted models to ``torch.nn.Linear`` and back.

:meth:`~torchlinreg.models._base.RegressorBase.to_torch` puts a fitted model's
coefficients into a ``torch.nn.Linear`` that can be part of a network;
:func:`from_torch` builds a fitted predictor from one (a ``Linear``, or a ``Sequential``
holding exactly one ``Linear`` and nothing else). See ``docs/torch.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .devices import DeviceLike, resolve_device
from .errors import InputError

if TYPE_CHECKING:
    import torch

    from .models.gd import GDRegressor

__all__ = ["from_torch", "to_linear"]

_FLOAT_NAMES = ("float16", "bfloat16", "float32", "float64")


def resolve_float_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    """A torch floating dtype from itself or its name; ``None``: torch's default."""
    import torch

    if dtype is None:
        return torch.get_default_dtype()
    if isinstance(dtype, str) and dtype in _FLOAT_NAMES:
        return getattr(torch, dtype)  # type: ignore[no-any-return]
    if isinstance(dtype, torch.dtype) and dtype.is_floating_point and not dtype.is_complex:
        return dtype
    raise InputError(f"unsupported dtype {dtype!r}; use one of {', '.join(_FLOAT_NAMES)}")


def to_linear(
    model: Any, dtype: torch.dtype | str | None = None, device: DeviceLike | None = None
) -> torch.nn.Linear:
    """``torch.nn.Linear(n_features_in_, n_targets)`` holding ``model``'s fitted
    ``coef_`` (as ``weight``) and ``intercept_`` (as ``bias``; none without an
    intercept), in ``dtype`` (default: torch's default dtype) on ``device`` (default:
    the CPU). The module owns a copy: training it leaves ``model`` as it was."""
    import torch

    dtype_ = resolve_float_dtype(dtype)
    device_ = torch.device("cpu") if device is None else resolve_device(device)
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    k, p = coef.shape
    bias = bool(getattr(model, "fit_intercept", True))
    linear = torch.nn.Linear(p, k, bias=bias, device=device_, dtype=dtype_)
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(coef))
        if linear.bias is not None:
            intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
            linear.bias.copy_(torch.as_tensor(intercept))
    return linear


def _the_linear(module: Any) -> torch.nn.Linear:
    """The one ``Linear`` of ``module``, or a clear error naming what it is instead."""
    import torch

    if isinstance(module, torch.nn.Sequential):
        layers = list(module)
        kinds = ", ".join(type(m).__name__ for m in layers) or "nothing"
        if len(layers) != 1:
            raise InputError(
                f"from_torch takes a Sequential of exactly one Linear; this one holds "
                f"{kinds}: pass the Linear layer itself"
            )
        module = layers[0]
    if not isinstance(module, torch.nn.Linear):
        raise InputError(
            f"from_torch takes a torch.nn.Linear (or a Sequential of one), got "
            f"{type(module).__name__}: a linear model is one affine layer"
        )
    if any(isinstance(p, torch.nn.parameter.UninitializedParameter) for p in module.parameters()):
        raise InputError(
            "from_torch got a LazyLinear whose shape is not known yet; run it on one "
            "batch first so that it has weights"
        )
    return module


def _weights(linear: torch.nn.Linear) -> tuple[np.ndarray, np.ndarray | None]:
    """(weight (k, p), bias (k,) or None) as float64 host arrays, checked finite."""
    if linear.weight.device.type == "meta":
        raise InputError("the module is on the 'meta' device and holds no weights")
    weight = linear.weight.detach().to("cpu").double().numpy().copy()
    bias = None
    if linear.bias is not None:
        bias = linear.bias.detach().to("cpu").double().numpy().copy()
    for name, values in (("weight", weight), ("bias", bias)):
        if values is not None and not np.isfinite(values).all():
            raise InputError(f"the module's {name} holds NaN or infinite values")
    return weight, bias


def from_torch(
    module: Any, *, feature_names: Any = None, target_1d: bool | None = None
) -> GDRegressor:
    """A fitted predictor holding the weights of ``module`` (a ``torch.nn.Linear``, or a
    ``torch.nn.Sequential`` of exactly one): ``predict``, ``score``, ``to_torch`` and
    :func:`~torchlinreg.save_model` work on it.

    It is a :class:`~torchlinreg.GDRegressor` (the estimator of models trained by
    gradient), with ``fit_intercept`` set from whether the layer has a bias and
    ``dtype`` from the layer's (float64 stays float64, other dtypes become float32);
    ``fit`` with ``warm_start=True`` continues training from these weights.
    ``feature_names`` (one per input column) become ``feature_names_in_``, so DataFrames
    are matched by column name. ``target_1d``: whether ``coef_`` is 1-D and predictions
    ``(n,)``; by default, when the layer has one output. The weights are copied.
    """
    from .models.gd import GDRegressor

    linear = _the_linear(module)
    weight, bias = _weights(linear)
    k, p = weight.shape
    one = k == 1 if target_1d is None else bool(target_1d)
    if one and k != 1:
        raise InputError(f"target_1d=True needs a layer of one output; this one has {k}")
    import torch

    dtype = "float64" if linear.weight.dtype == torch.float64 else "float32"
    model = GDRegressor(fit_intercept=bias is not None, dtype=dtype)
    model.coef_ = weight[0] if one else weight
    intercept = np.zeros(k) if bias is None else bias
    model.intercept_ = float(intercept[0]) if one else intercept
    model.n_features_in_ = p
    if feature_names is not None:
        model.feature_names_in_ = _feature_names(feature_names, p)  # type: ignore[attr-defined]
    return model


def _feature_names(names: Any, p: int) -> np.ndarray:
    """``names`` as scikit-learn's ``feature_names_in_``: p distinct strings."""
    listed = list(names)
    if len(listed) != p or not all(isinstance(n, str) for n in listed):
        raise InputError(f"feature_names must be {p} strings, one per input of the layer")
    if len(set(listed)) != p:
        raise InputError("feature_names must be distinct; some name repeats")
    return np.asarray(listed, dtype=object)
