"""``NamedArray``: a numpy array that knows the names of its columns.

:func:`~torchlinreg.load_data` returns ``X`` and ``y`` as named arrays, so that
``fit(ds.X, ds.y)`` records ``feature_names_in_`` and ``target_names_`` (and warnings,
summaries and saved models speak of ``color=red``, not ``x4``) while ``ds.X`` stays a
numpy array for everything else. The names belong to that array alone: a slice, a copy
or an arithmetic result carries none (slices and results are plain ``ndarray``s), since
its columns may no longer be those.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class NamedArray(np.ndarray):
    """A 2-D array whose columns are ``names``, or a 1-D target named ``names[0]``."""

    names: tuple[str, ...]

    def __new__(cls, values: np.ndarray, names: Sequence[str]) -> NamedArray:
        array = np.asarray(values).view(cls)
        width = array.shape[1] if array.ndim == 2 else 1
        if array.ndim not in (1, 2) or len(names) != width:
            raise ValueError(f"{len(names)} names for an array of shape {array.shape}")
        array.names = tuple(names)
        return array

    def __array_finalize__(self, obj: Any) -> None:
        self.names = ()  # views, copies and reshapes are not named (see __getitem__)

    def __getitem__(self, key: Any) -> Any:
        return self.view(np.ndarray)[key]

    def __array_wrap__(
        self, array: np.ndarray, context: Any = None, return_scalar: bool = False
    ) -> Any:
        plain = array.view(np.ndarray)
        return plain[()] if return_scalar else plain

    def __reduce__(self) -> Any:
        # A copy or view has no names: it pickles as the plain array it stands for.
        plain = self.view(np.ndarray)
        if not self.names:
            return plain.__reduce__()
        return NamedArray, (plain.copy(), self.names)


def column_names(a: Any) -> list[str] | None:
    """The names of a named 2-D array's columns, else None."""
    if isinstance(a, NamedArray) and a.ndim == 2 and a.names:
        return list(a.names)
    return None


def target_name(a: Any) -> str | None:
    """The name of a named 1-D target, else None."""
    if isinstance(a, NamedArray) and a.ndim == 1 and a.names:
        return a.names[0]
    return None
