"""Names for what the estimators accept, for readable signatures."""

from __future__ import annotations

from typing import Any, TypeAlias

# Data: a numpy array, a torch tensor (results stay on its device), a pandas or polars
# DataFrame or Series, a pyarrow Table, or nested sequences of numbers. Checked at run
# time, at the boundary (torchlinreg.data.arrays), so statically any object.
ArrayLike: TypeAlias = Any
