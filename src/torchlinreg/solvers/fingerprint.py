"""A fingerprint of a chunk stream, to tell that a second pass reads the same data.

Refinement reads the data again; a file rewritten in between, or a chunk function that
returns other data, would mix coefficients refined on the new data with counts and sums
of squares of the old. The fingerprint is the row count and the sum, modulo 2⁶⁴, of a
64-bit hash of each whole row. A row's values (X, Y and the weight, as float64) have
bit patterns vⱼ = 2³²hⱼ + lⱼ (hⱼ = vⱼ >> 32 the high half, signed; 0 ≤ lⱼ < 2³²); the
row's hash is splitmix64's finaliser of s = Σⱼ Kⱼvⱼ + Lⱼhⱼ modulo 2⁶⁴, with two fixed
pseudo-random keys per column. What it tells apart:

- Rows reordered or chunked otherwise are the same data: a sum over rows does not
  depend on their order (OLS is invariant under permuting rows: a shuffling
  ``DataLoader`` passes).
- Any change within a row (a value, values swapped between columns or between X and y,
  signs) changes s but with probability ≤ 2⁻³³ over the keys: s = Σⱼ Kⱼlⱼ +
  (2³²Kⱼ + Lⱼ)hⱼ is a linear form in the row's 32-bit pieces with independent uniform
  coefficients, two different rows differ in some piece by d = 2ᵗ·odd with t ≤ 31, and
  c·d ≡ e (mod 2⁶⁴) holds for at most 2ᵗ of the 2⁶⁴ coefficients c. The high halves
  are what makes this hold: a form in the whole patterns, Σ Kⱼvⱼ alone, misses values
  that differ in their high bits only (a sign: d = 2⁶³, two flipped signs in a row
  cancel for half the keys; 0 and 1 exchanged between dummy columns: d = 1023·2⁵², missed
  for one key pair in 4096).
- A value moved to another row changes the s of two rows by opposite amounts; their
  finalised hashes change unpredictably, so the total differs but with probability
  about 2⁻⁶⁴ (a hash linear across rows, such as column sums, would miss the move).

Cost: three passes over each block of a chunk, the block staying in cache: the shift,
and two integer matrix–vector products (on GPUs, multiplies and row sums), then the
finaliser on one value per row. Measured on one thread, 2,000,000 × 20 float64 in
131,072-row chunks (``fit_chunks``, medians of 7, three runs): the fold alone
(``refine=False``) 0.54–0.58 s, with the fingerprint (``refine="auto"``) 0.74–0.78 s,
+35% (with a splitmix64 finaliser on every value, before: +125–150%). Each pass over
the values costs about a tenth of the fold; the one pass of Σ Kⱼvⱼ alone would miss the
sign and exponent changes above. That price is paid only by fits that are refined: the
fingerprint is taken on their second pass, from which the fit is made again
(``models/_exact.py``), never on the first pass every streamed fit makes.
"""

from __future__ import annotations

import torch

from ..data.chunks import Chunk

_MODULUS = 1 << 64


def _signed(value: int) -> int:
    """An unsigned 64-bit constant as the int64 with the same bits."""
    return value - _MODULUS if value >= 1 << 63 else value


_GOLDEN = 0x9E3779B97F4A7C15  # splitmix64's increment: keys spread over all 64 bits
_MUL1 = _signed(0xBF58476D1CE4E5B9)
_MUL2 = _signed(0x94D049BB133111EB)


def _xor_shift(z: torch.Tensor, bits: int) -> torch.Tensor:
    """z ^= z >>> bits in place (a logical shift: torch's ``>>`` on int64 is arithmetic)."""
    shifted = z >> bits
    shifted &= (1 << (64 - bits)) - 1
    return z.bitwise_xor_(shifted)


def mix_(z: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser on int64 bit patterns, in place (multiplication wraps
    modulo 2⁶⁴): a bijection whose every output bit depends on every input bit."""
    _xor_shift(z, 30).mul_(_MUL1)
    _xor_shift(z, 27).mul_(_MUL2)
    return _xor_shift(z, 31)


_BLOCK_VALUES = 1 << 15  # values per block: its 256 KiB stay in cache


def _keys(n_columns: int, seed: int, device: torch.device) -> torch.Tensor:
    """Pseudo-random 64-bit keys, one per column: splitmix64's outputs from ``seed``."""
    counters = torch.arange(1, n_columns + 1, dtype=torch.int64, device=device)
    return mix_(counters.mul_(_signed(_GOLDEN)).add_(seed))


def _keyed_row_sums(values: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Σⱼ keysⱼ·valuesᵢⱼ modulo 2⁶⁴ for each row i of int64 ``values``."""
    if values.device.type == "cpu":
        return torch.mv(values, keys)  # one fused pass; integer mv exists on CPU only
    return (values * keys).sum(1)


def _add_row_sums(
    values: torch.Tensor, low_keys: torch.Tensor, high_keys: torch.Tensor, sums: torch.Tensor
) -> None:
    """sums += Σⱼ Kⱼ·vⱼ + Lⱼ·(vⱼ >> 32) modulo 2⁶⁴ over the columns of ``values``
    (n, m), v the bit patterns of the values as float64 and >> arithmetic; block by
    block through reused buffers, so the blocks stay in cache (float32 is converted
    per block; float64 is read in place)."""
    n, m = values.shape
    rows = max(1, min(n, _BLOCK_VALUES // m))
    high = torch.empty((rows, m), dtype=torch.int64, device=values.device)
    converted = None if values.dtype == torch.float64 else torch.empty_like(high)
    for start in range(0, n, rows):
        block = values[start : start + rows]
        if converted is None:
            bits = block.view(torch.int64)
        else:
            bits = converted[: len(block)]
            bits.view(torch.float64).copy_(block)
        block_high = torch.bitwise_right_shift(bits, 32, out=high[: len(block)])
        low_sum = _keyed_row_sums(bits, low_keys)
        sums[start : start + rows] += low_sum.add_(_keyed_row_sums(block_high, high_keys))


def row_hashes(chunk: Chunk) -> torch.Tensor:
    """A 64-bit hash of each row of ``chunk`` (X, Y and the weight), as int64: (n,):
    the keyed sum of its values' bit patterns and their high halves, mixed."""
    parts = [chunk.X, chunk.Y]
    if chunk.sample_weight is not None:
        parts.append(chunk.sample_weight.unsqueeze(1))
    device = chunk.X.device
    n_columns = sum(part.shape[1] for part in parts)
    low_keys, high_keys = _keys(n_columns, 1, device), _keys(n_columns, 2, device)
    sums = torch.zeros(chunk.X.shape[0], dtype=torch.int64, device=device)
    column = 0
    for part in parts:
        width = part.shape[1]
        keys = slice(column, column + width)
        _add_row_sums(part, low_keys[keys], high_keys[keys], sums)
        column += width
    return mix_(sums)


class Fingerprint:
    """Rows and the order-free sum of row hashes of every chunk folded in with :meth:`add`."""

    def __init__(self) -> None:
        self.rows = 0
        self.weighted_rows = 0
        self._sum = 0

    def add(self, chunk: Chunk) -> None:
        n = chunk.X.shape[0]
        self.rows += n
        if chunk.sample_weight is not None:
            self.weighted_rows += n
        if n:
            self._sum = (self._sum + int(row_hashes(chunk).sum())) % _MODULUS

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Fingerprint):
            return NotImplemented
        mine = (self.rows, self.weighted_rows, self._sum)
        return mine == (other.rows, other.weighted_rows, other._sum)

    __hash__ = None  # type: ignore[assignment]
