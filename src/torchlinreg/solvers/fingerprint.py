"""An exact fingerprint of a chunk stream, to tell that a second pass reads the same data.

Refinement reads the data again; a file rewritten in between, or a chunk function that
returns other data, would mix coefficients refined on the new data with counts and sums
of squares of the old. The fingerprint is the row count and, per column of X, Y and the
weights, the sum of the values' bit patterns as integers modulo 2⁶⁴: exact, so
independent of the order of the rows and of how they are chunked (a shuffling
``DataLoader`` passes), and changed by any change of a single value. (Values exchanged
between rows within one column keep every sum: that is not seen.) It costs one read of
each chunk, a few percent of the QR fold.
"""

from __future__ import annotations

import torch

from ..data.chunks import Chunk

_MODULUS = 1 << 64
_SAME_SIZE_INT = {8: torch.int64, 4: torch.int32, 2: torch.int16, 1: torch.int8}


def _bit_sums(t: torch.Tensor) -> list[int]:
    """Per column, Σ of the values' bit patterns read as integers, modulo 2⁶⁴ (int64
    addition wraps; narrower types sum without overflow)."""
    bits = t.reshape(t.shape[0], -1).view(_SAME_SIZE_INT[t.element_size()])
    return [v % _MODULUS for v in bits.sum(0).tolist()]


class Fingerprint:
    """Rows and exact bit sums of every chunk folded in with :meth:`add`."""

    def __init__(self) -> None:
        self.rows = 0
        self.weighted_rows = 0
        self._sums: dict[str, list[int]] = {}

    def add(self, chunk: Chunk) -> None:
        parts = {"X": chunk.X, "Y": chunk.Y}
        if chunk.sample_weight is not None:
            parts["w"] = chunk.sample_weight
            self.weighted_rows += chunk.X.shape[0]
        self.rows += chunk.X.shape[0]
        for name, values in parts.items():
            sums = _bit_sums(values)
            key = f"{name}{len(sums)}"  # a change of width is a change of data
            old = self._sums.get(key, [0] * len(sums))
            self._sums[key] = [(a + b) % _MODULUS for a, b in zip(old, sums, strict=True)]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Fingerprint):
            return NotImplemented
        mine = (self.rows, self.weighted_rows, self._sums)
        return mine == (other.rows, other.weighted_rows, other._sums)

    __hash__ = None  # type: ignore[assignment]
