"""Validate array-likes once, at the boundary, and turn them into tensors.

Errors say where the problem is (row and column) and what to do about it.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError, InputTypeError
from .exact import first_inexact

if TYPE_CHECKING:
    import torch


def _is_sparse(a: Any) -> bool:
    # scipy.sparse matrices and arrays all carry these; importing scipy to ask is too heavy.
    return hasattr(a, "tocsr") and hasattr(a, "nnz")


def _is_arrow_table(a: Any) -> bool:
    return hasattr(a, "column_names") and hasattr(a, "num_rows") and hasattr(a, "column")


def _is_polars(a: Any) -> bool:
    return type(a).__module__.startswith("polars") and hasattr(a, "to_numpy")


def _text_columns_error(name: str, text: list[str]) -> InputError:
    return InputError(
        f"{name} column {', '.join(map(repr, text))} holds text, not numbers; "
        "encode it (one-hot) or drop it before fitting"
    )


def _arrow_to_numpy(table: Any, name: str) -> np.ndarray:
    import pyarrow as pa

    text = [
        c
        for c, f in zip(table.column_names, table.schema, strict=True)
        if not (
            pa.types.is_integer(f.type)
            or pa.types.is_floating(f.type)
            or pa.types.is_boolean(f.type)
        )
    ]
    if text:
        raise _text_columns_error(name, text)
    if table.num_columns == 0:
        return np.empty((table.num_rows, 0))
    columns = [
        np.asarray(table.column(i).to_numpy(zero_copy_only=False), dtype=np.float64)
        for i in range(table.num_columns)
    ]
    return np.column_stack(columns)


def _check_frame_dtypes(frame: Any, name: str) -> None:
    text = [str(c) for c, dt in frame.dtypes.items() if getattr(dt, "kind", "O") not in "biuf"]
    if text:
        raise _text_columns_error(name, text)


def _to_numpy_or_tensor(a: Any, name: str) -> Any:
    import torch

    if isinstance(a, torch.Tensor):
        if a.is_sparse or a.layout != torch.strided:
            raise InputTypeError(
                f"{name} is a sparse tensor, which is not supported; convert it with "
                f"{name}.to_dense()"
            )
        if a.is_complex():
            raise InputError(f"Complex data not supported: {name} is complex; use real numbers")
        return a
    if _is_arrow_table(a):
        return _arrow_to_numpy(a, name)
    if _is_polars(a):
        a = a.to_numpy()
    elif hasattr(a, "dtypes") and hasattr(a, "columns") and hasattr(a.dtypes, "items"):
        _check_frame_dtypes(a, name)  # pandas: name the text columns before converting
    if _is_sparse(a):
        raise InputTypeError(
            f"{name} is a sparse matrix, which is not supported; convert it with {name}.toarray()"
        )
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} could not be read as a numeric array: {exc}") from None
    if np.iscomplexobj(arr):
        raise InputError(f"Complex data not supported: {name} is complex; use real numbers")
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))  # torch reads native byte order only
    if any(s < 0 for s in arr.strides):
        arr = np.ascontiguousarray(arr)  # reversed views: torch takes no negative strides
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            error = InputTypeError if isinstance(exc, TypeError) else InputError
            raise error(
                f"{name} holds non-numeric values ({exc}); encode or drop the text columns first"
            ) from None
    return arr


def check_finite(t: torch.Tensor, name: str, row_offset: int = 0, source: Any = None) -> None:
    """Raise an :class:`InputError` naming the first NaN/inf cell of ``t``.

    ``row_offset`` is added to the row so that a block of a larger array reports the
    row in the whole array; ``source`` (the original values) tells an overflow in a
    conversion apart from a value that was never finite.
    """
    import torch

    # One reduction, no temporary: a finite sum means no NaN or inf (a NaN or an inf makes
    # the sum so); a sum that overflows with finite entries falls through to the cell check.
    if not t.is_floating_point() or bool(torch.isfinite(t.sum())):
        return
    finite = torch.isfinite(t)
    if bool(finite.all()):
        return
    bad = (~finite).nonzero()[0].tolist()
    value = float(t[tuple(bad)])
    bad[0] += row_offset
    where = f"{name}[{', '.join(map(str, bad))}]"
    if source is not None:
        original = float(source[tuple(bad)])
        if np.isfinite(original):
            raise InputError(f"{where} = {original!r} overflows {t.dtype}; use dtype='float64'")
    kind = "NaN" if np.isnan(value) else "infinity"
    raise InputError(
        f"{name} contains {kind} at {where}; remove or impute those rows before fitting"
    )


def as_tensor(
    a: Any,
    name: str,
    *,
    ndim: tuple[int, ...],
    dtype: torch.dtype | None,
    device: torch.device | None,
    finite: bool = True,
) -> torch.Tensor:
    """Return ``a`` as a tensor with one of ``ndim`` dims, of ``dtype`` on ``device``.

    ``dtype=None`` keeps float32 and float64 as they are (no copy of a large input) and
    turns anything else into float64; ``device=None`` keeps a tensor where it is (numpy
    goes to the CPU). With ``finite`` every value is checked for NaN/inf; callers that
    check block by block pass ``finite=False``.
    """
    import torch

    if a is None:
        raise InputError(
            f"requires {name} to be passed, but the target {name} is None"
            if name == "y"
            else f"{name} is required but is None"
        )
    src = _to_numpy_or_tensor(a, name)
    if src.ndim not in ndim:
        if ndim == (2,) and src.ndim == 1:
            hint = (
                f"; Reshape your data with {name}.reshape(-1, 1) for a single feature "
                f"or {name}.reshape(1, -1) for a single sample"
            )
        else:
            hint = ""
        expected = " or ".join(f"{d}-D" for d in ndim)
        raise InputError(f"expected a {expected} {name}, got {src.ndim}-D{hint}")
    if src.shape[0] == 0:
        raise InputError(
            f"{name} has 0 sample(s) (shape={tuple(src.shape)}) while a minimum of 1 is required."
        )
    if dtype is None:
        dtype = torch.float32 if src.dtype in (torch.float32, np.float32) else torch.float64
    if isinstance(src, torch.Tensor):
        t = src.detach().to(device=device if device is not None else src.device, dtype=dtype)
    else:
        with warnings.catch_warnings():
            # Read-only arrays (memmaps) are fine: inputs are never written to.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            t = torch.as_tensor(src, dtype=dtype, device=device)
    if src.ndim == 2 and src.shape[1] == 0:
        raise InputError(
            f"{name} has 0 feature(s) (shape={tuple(src.shape)}) while a minimum of 1 is required."
        )
    if t.dtype == torch.float64:
        check_exact(src, name)
    if finite:
        check_finite(t, name, source=src)
    return t


def check_exact(src: Any, name: str) -> None:
    """Refuse 64-bit integers that float64 would round (beyond 2^53), naming the cell."""
    import torch

    if isinstance(src, torch.Tensor):
        if src.dtype not in (torch.int64, torch.uint64):
            return
        src = src.detach().cpu().numpy()
    row = first_inexact(src)
    if row is not None:
        cell = np.unravel_index(row, src.shape)
        raise InputError(
            f"{name}[{', '.join(map(str, cell))}] = {int(src[cell])} has no exact float64 "
            "value (an integer beyond 2^53); give it as a float or leave the column out"
        )


def check_lengths(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None = None) -> None:
    """Every input must describe the same rows."""
    if y.shape[0] != X.shape[0]:
        raise InputError(
            f"X has {X.shape[0]} samples but y has {y.shape[0]}; they must describe the same rows"
        )
    if w is not None and w.shape[0] != X.shape[0]:
        raise InputError(
            f"X has {X.shape[0]} samples but sample_weight has {w.shape[0]}; "
            "give one weight per row"
        )


def check_sample_weight(w: torch.Tensor, allow_all_zero: bool = False) -> None:
    """Weights must be non-negative and (for a whole data set) not all zero."""
    if bool((w < 0).any()):
        row = int((w < 0).nonzero()[0, 0])
        raise InputError(
            f"sample_weight[{row}] = {float(w[row])!r} is negative; weights must be >= 0"
        )
    if not allow_all_zero and not bool((w > 0).any()):
        raise InputError("sample_weight is zero for every row; give at least one positive weight")
