"""Resolve the ``device`` and ``dtype`` options users pass as strings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

from .errors import InputError

if TYPE_CHECKING:
    import torch

DeviceLike = Union[str, "torch.device"]
DtypeLike = Union[str, "torch.dtype"]

DTYPES = ("float32", "float64")


def resolve_device(device: DeviceLike) -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU; anything else goes to torch."""
    import torch

    if isinstance(device, torch.device):
        resolved = device
    elif device == "auto":
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError):
            raise InputError(
                f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'"
            ) from None
    if resolved.type == "meta":
        raise InputError(
            f"device {device!r} holds no data (tensors there have shapes only); "
            "use 'cpu', 'cuda' or 'auto'"
        )
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"device {device!r} was asked for but CUDA is not available here; "
            "use the device 'cpu' or 'auto'"
        )
    if resolved.type != "cpu":
        _check_usable(torch, resolved, device)
    return resolved


def _check_usable(torch: Any, resolved: torch.device, asked: DeviceLike) -> None:
    """Put one number on the device: a missing backend or a device index beyond the
    machine's is refused here, with the reason, rather than half-way through a fit."""
    try:
        torch.zeros(1, device=resolved)
    except (RuntimeError, NotImplementedError, AssertionError, ValueError) as exc:
        reason = " ".join(str(exc).split()).split(". ")[0][:200]
        raise InputError(
            f"device {asked!r} cannot be used here ({reason}); use 'cpu' or 'auto'"
        ) from None


def resolve_dtype(dtype: DtypeLike) -> torch.dtype:
    """Accept ``"float32"``/``"float64"`` (or the torch dtypes themselves)."""
    import torch

    if dtype in (torch.float32, torch.float64):
        return dtype  # type: ignore[return-value]
    if isinstance(dtype, str) and dtype in DTYPES:
        return getattr(torch, dtype)  # type: ignore[no-any-return]
    raise InputError(f"unsupported dtype {dtype!r}; use 'float32' or 'float64'")
