"""Fitted models as deployable programs: ``torch.export`` and ONNX.

Every export computes ``predict``: its one input ``X`` is (n, n_features_in_) (any n),
its one output ``prediction`` is shaped like ``predict(X)``, (n,) for a 1-D target and
(n, n_targets) otherwise. The columns of ``X`` are ``feature_names_in_``, in that order
(a model fitted from a file with categories takes their one-hot columns, as
``predict_array`` does). ONNX needs the optional extra ``onnx``
(``pip install 'torchlinreg[onnx]'``). See ``docs/torch.md``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._files import atomic_path, check_output_path
from .devices import DeviceLike
from .errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["predictor_module", "save_program", "to_onnx", "to_program"]

_ONNX_EXTRA = "ONNX export needs the optional extra 'onnx': pip install 'torchlinreg[onnx]'"


def predictor_module(
    model: Any, dtype: torch.dtype | str | None = None, device: DeviceLike | None = None
) -> torch.nn.Module:
    """``model.to_torch(dtype, device)`` in evaluation mode, its output shaped like
    ``predict``'s (the one column of a 1-D target dropped). What the exports trace."""
    import torch

    model._check_is_fitted()
    linear = model.to_torch(dtype=dtype, device=device)
    one_target = len(getattr(model.coef_, "shape", ())) == 1

    class Predictor(torch.nn.Module):
        """The fitted model: ``X W + b``, shaped like ``predict``."""

        def __init__(self) -> None:
            super().__init__()
            self.linear = linear

        def forward(self, X: torch.Tensor) -> torch.Tensor:
            out = self.linear(X)
            return out.squeeze(-1) if one_target else out

    return Predictor().eval().requires_grad_(False)


def _example(module: torch.nn.Module) -> tuple[torch.Tensor]:
    """Two rows of the module's input (two, not one: a batch of 1 would be specialised)."""
    import torch

    weight = module.get_parameter("linear.weight")
    return (torch.zeros(2, weight.shape[1], dtype=weight.dtype, device=weight.device),)


def _dynamic_rows() -> dict[str, dict[int, Any]]:
    import torch

    return {"X": {0: torch.export.Dim("rows")}}


def to_program(
    model: Any, dtype: torch.dtype | str | None = None, device: DeviceLike | None = None
) -> torch.export.ExportedProgram:
    """The fitted model as a ``torch.export.ExportedProgram`` taking ``X`` of any number
    of rows: ``to_program(model).module()(X)`` equals ``predict(X)`` (to the rounding of
    ``dtype``, torch's default float32 unless given)."""
    import torch

    module = predictor_module(model, dtype, device)
    return torch.export.export(module, _example(module), dynamic_shapes=_dynamic_rows())


def save_program(model: Any, path: str, dtype: torch.dtype | str | None = None) -> None:
    """Write :func:`to_program`'s program to ``path`` (``torch.export.save``'s ``.pt2``
    archive; read it back with ``torch.export.load(path).module()``), atomically."""
    import torch

    check_output_path(path)  # before the export's seconds
    program = to_program(model, dtype)
    with atomic_path(path) as tmp:
        torch.export.save(program, tmp)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The ONNX exporter's notes that concern other models (torchvision's operators not
    installed) and torch's own deprecation notices are not the user's business."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def _check_onnx_installed() -> None:
    import importlib.util

    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"{_ONNX_EXTRA} ({', '.join(missing)} not installed)")


def to_onnx(
    model: Any, path: str, *, dtype: torch.dtype | str | None = None, opset: int | None = None
) -> None:
    """Write the fitted model to ``path`` as an ONNX model (torch's dynamo exporter),
    atomically: input ``X`` (rows, n_features_in_), output ``prediction`` shaped like
    ``predict(X)``, in ``dtype`` (float32 unless given; float64 also runs in
    onnxruntime). The feature names (when the model has them) are in the model's
    metadata, key ``feature_names`` (a JSON list). ``opset``: the exporter's default
    unless given."""
    import torch

    _check_onnx_installed()
    check_output_path(path)  # before the export's seconds
    module = predictor_module(model, dtype)
    kwargs: dict[str, Any] = {} if opset is None else {"opset_version": opset}
    with _quiet_exporter():
        program = torch.onnx.export(
            module,
            _example(module),
            input_names=["X"],
            output_names=["prediction"],
            dynamic_shapes=_dynamic_rows(),
            dynamo=True,
            verbose=False,
            **kwargs,
        )
    if program is None:  # only the legacy exporter returns None; dynamo=True never does
        raise InputError("the ONNX exporter returned no program")
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        program.model.metadata_props["feature_names"] = json.dumps([str(n) for n in names])
    with atomic_path(path) as tmp:
        program.save(tmp)
