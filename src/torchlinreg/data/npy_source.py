"""NumPy ``.npy`` files: one 2-D array of numbers, memory-mapped."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import InputError
from .source_base import BATCH_ROWS, Source, one_line


class NpySource(Source):
    """A 2-D ``.npy`` array (memory-mapped); its columns are named "0", "1", ..."""

    def __init__(self, path: str) -> None:
        import numpy as np
        import pyarrow as pa

        self.path = self.name = path
        try:
            self.array = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - numpy's header parser raises many types
            # numpy checks the magic, the header dict, the dtype (no objects without
            # pickle) and that the shape fits the file; a damaged header fails there.
            raise InputError(f"{path} could not be read as .npy: {one_line(str(exc))}") from None
        if not isinstance(self.array, np.ndarray) or self.array.ndim != 2:
            raise InputError(
                f"{path}: expected a 2-D array (rows × columns), got {np.ndim(self.array)}-D"
            )
        if self.array.dtype.kind not in "biuf" or self.array.dtype.itemsize > 8:
            raise InputError(f"{path}: expected numbers, got dtype {self.array.dtype}")
        self.columns = [str(j) for j in range(self.array.shape[1])]
        self.types = {c: pa.from_numpy_dtype(self._dtype) for c in self.columns}
        self.stop = self.array.shape[0]  # rows [first_row, stop) are read

    def rows(self, start: int, stop: int) -> NpySource:
        """The rows ``[start, stop)`` alone (one rank's share), numbered as in the file."""
        part = copy.copy(self)
        part.first_row, part.stop = start, stop
        return part

    @property
    def _dtype(self) -> Any:
        import numpy as np

        # Native byte order (arrow takes no other); float16 as float32 (arrow cannot cast it).
        kind = self.array.dtype.newbyteorder("=")
        return np.dtype(np.float32) if kind == np.float16 else kind

    @property
    def empty(self) -> bool:
        return self.stop == self.first_row

    @property
    def row_count(self) -> int | None:
        return int(self.stop - self.first_row)

    def _record_batches(self, columns: Sequence[str]) -> Iterator[Any]:
        import numpy as np
        import pyarrow as pa

        index = [int(c) for c in columns]
        for start in range(self.first_row, self.stop, BATCH_ROWS):
            block = np.asarray(self.array[start : min(start + BATCH_ROWS, self.stop)][:, index])
            block = block.astype(self._dtype, copy=False)
            arrays = [pa.array(block[:, j]) for j in range(len(index))]
            yield pa.RecordBatch.from_arrays(arrays, names=list(columns))
