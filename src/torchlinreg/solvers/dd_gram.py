"""The cross-product matrix of every row seen, in double-double, in one pass.

``partial_fit`` sees each chunk once. Householder QR of the chunks is backward stable,
but its error ε(κ + κ² tan θ) cannot be refined away without the data. What *can* be
kept is G = Σ wᵢ eᵢ eᵢᵀ for the rows eᵢ = [1, xᵢ − x₀, yᵢ − y₀] (the state's shift),
accurate to 2⁻¹⁰³ of ‖e_j‖·‖e_k‖ at worst: from it the normal equations can be solved
in double-double (:mod:`.single_pass`), leaving an error of about κ²·2⁻¹⁰⁵: ≥ 12
digits up to κ ≈ 6·10⁹. It is a sum, so chunks simply add, and it takes 2·m² numbers
(m = columns of [1, X, Y]).

How G is formed exactly with ordinary matrix products (Ozaki's error-free splitting):
each column of a block of rows is cut into slices Q₁, Q₂, … of ``BITS`` bits on a
fixed grid relative to the column's largest entry (Rump–Ogita–Oishi's extraction,
(v + σ) − σ). An entry of QₛᵀQₜ is then a sum of at most ``ROWS`` products of small
integers (in grid units) whose every partial sum stays below 2⁵², so any BLAS, in any
order, on any device, computes it without rounding; the products are added in
double-double. Products of slices finer than 2⁻¹²⁰ of the largest entries together
are dropped: at most ~6·2⁻¹⁰⁶ of ‖e_j‖·‖e_k‖, reached only when every row sits at its
column's largest value. The rows themselves are formed exactly:
x − x₀ by TwoSum, and √w as a double-double.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..data.chunks import Chunk
from . import dd
from .state import LeastSquaresState

# Rows per exact product and bits per slice: a slice holds at most 2·(2^BITS + 1) grid
# units (a slice of x − x₀'s rounding error is added from the third slice on), so a
# product of two slices summed over ROWS rows stays below 2^(2·BITS + 2 + 10) = 2⁵².
ROWS = 1024
BITS = 20
# Slices per column: 6·20 = 120 bits, beyond double-double's 106. Products QₛᵀQₜ with
# s + t > SLICES + 1 (counting from 1) are dropped: each is below
# ROWS·2^(4 − 6·BITS) = 2⁻¹⁰⁶ of ‖e_j‖·‖e_k‖ (|e_j| < 2^e_j ≤ 2‖e_j‖).
SLICES = 6
# The low part of x − x₀ lies below 2⁻⁵³ of the column's largest entry: it first
# reaches the slice whose grid is finer than that.
_LOW_FROM = 53 // BITS
# Columns of [1, X, Y] up to which partial_fit keeps G. Per row the slices cost ~40·m
# operations and the products 2·12·m² flops, against ~4·m² for the QR fold: several
# times the fold's cost, which for narrow designs is small beside the fixed cost of a
# call (validation, the solve), and for wide ones would dominate it.
MAX_COLUMNS = 16
# Rows buffered before the products are formed, as one batch of blocks: small chunks
# then cost no products each, and the fixed cost of the slicing is shared.
BUFFER_ROWS = 8 * ROWS


def _slices(hi: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    """Cut the double-double blocks (hi + lo, shape (blocks, rows, m)) into ``SLICES``
    slices, returned as (SLICES, blocks, rows, m): slice s lies on the grid
    2^(e_j − (s+1)·BITS) of column j of its block (|hi_j| < 2^e_j there); their sum
    leaves out less than 2^(e_j − 119)."""
    _, e = torch.frexp(hi.abs().amax(dim=1, keepdim=True))
    one = torch.ones_like(e, dtype=hi.dtype)
    hi, lo = hi.clone(), lo.clone()  # the remainders, updated in place
    Q = hi.new_empty(SLICES, *hi.shape)
    for s in range(1, SLICES + 1):
        # σ = 2^(e − s·BITS + 53): (v + σ) − σ rounds v to the grid 2^(e − s·BITS)
        # exactly, leaving a remainder below that grid (|v| ≤ σ holds at every step).
        sigma = torch.ldexp(one, e - s * BITS + 53)
        q = torch.add(hi, sigma, out=Q[s - 1])
        q -= sigma
        hi -= q
        if s > _LOW_FROM:
            q_lo = lo + sigma
            q_lo -= sigma
            lo -= q_lo
            q += q_lo  # both on one grid and small: exact
    return Q


def exact_gram(hi: torch.Tensor, lo: torch.Tensor) -> dd.DD:
    """Σᵢ eᵢ eᵢᵀ of the rows of E = hi + lo (n, m) as a double-double (m, m).

    The rows are cut into blocks of at most ``ROWS`` (zero rows pad the last), each
    with its own slicing grid; all blocks go through one batched product."""
    n, m = hi.shape
    blocks = max(1, -(-n // ROWS))
    rows = -(-n // blocks)
    pad = blocks * rows - n
    if pad:
        hi = torch.cat([hi, hi.new_zeros(pad, m)])
        lo = torch.cat([lo, lo.new_zeros(pad, m)])
    Q = _slices(hi.reshape(blocks, rows, m), lo.reshape(blocks, rows, m))
    # The exact products QₛᵀQₜ of the pairs s ≤ t with s + t < SLICES; the pair (t, s)
    # is the transpose.
    terms = []
    for s in range((SLICES + 1) // 2):
        for t in range(s, SLICES - s):
            P = Q[s].transpose(1, 2) @ Q[t]
            terms += [P] if s == t else [P, P.transpose(1, 2)]
    stacked = torch.cat(terms).reshape(-1, m, m)
    return dd.dd_sum(stacked, torch.zeros_like(stacked), dim=0)


def augmented_rows(chunk: Chunk, state: LeastSquaresState) -> dd.DD:
    """√w ⊙ [1, X − x₀, Y − y₀] in double-double, exactly (to 2⁻¹⁰⁶ with weights)."""
    X = chunk.X.to(device=state.device, dtype=torch.float64)
    Y = chunk.Y.to(device=state.device, dtype=torch.float64)
    xh, xl = dd.two_sum(X, -state.shift_x)
    yh, yl = dd.two_sum(Y, -state.shift_y)
    hi, lo = [xh, yh], [xl, yl]
    if state.fit_intercept:
        hi.insert(0, torch.ones_like(X[:, :1]))
        lo.insert(0, torch.zeros_like(X[:, :1]))
    rows_hi, rows_lo = torch.cat(hi, dim=1), torch.cat(lo, dim=1)
    if chunk.sample_weight is None:
        return rows_hi, rows_lo
    sh, sl = dd.dd_sqrt(chunk.sample_weight.to(rows_hi).unsqueeze(1))
    return dd.dd_mul(rows_hi, rows_lo, sh, sl)


class DDGram:
    """G = Σ wᵢ eᵢ eᵢᵀ over the rows folded into one :class:`LeastSquaresState`, in
    double-double; rows are buffered up to ``BUFFER_ROWS``.

    It follows ``state`` (its shift, its row count): :meth:`covers` tells whether it
    holds exactly the rows the state holds.
    """

    def __init__(self, state: LeastSquaresState) -> None:
        self.state = state
        m = state.R.shape[0]
        self.n_samples = 0
        self._hi = torch.zeros(m, m, dtype=torch.float64, device=state.device)
        self._lo = torch.zeros_like(self._hi)
        self._pending: list[dd.DD] = []
        self._pending_rows = 0

    def covers(self, state: LeastSquaresState) -> bool:
        return state is self.state and self.n_samples == state.n_samples

    def update_chunk(self, chunk: Chunk) -> None:
        """Add the rows of a validated chunk (after the state has folded it)."""
        n = chunk.X.shape[0]
        for start in range(0, n, BUFFER_ROWS):
            part = slice(start, start + BUFFER_ROWS)
            w = chunk.sample_weight
            rows = augmented_rows(
                Chunk(
                    chunk.X[part], chunk.Y[part], None if w is None else w[part], chunk.target_1d
                ),
                self.state,
            )
            self._pending.append(rows)
            self._pending_rows += rows[0].shape[0]
            if self._pending_rows >= BUFFER_ROWS:
                self._flush()
        self.n_samples += n

    def _flush(self) -> None:
        if not self._pending:
            return
        hi = torch.cat([h for h, _ in self._pending])
        lo = torch.cat([lo for _, lo in self._pending])
        self._pending, self._pending_rows = [], 0
        gh, gl = exact_gram(hi, lo)
        self._hi, self._lo = dd.dd_add(self._hi, self._lo, gh, gl)

    def combine(self, total: Callable[[torch.Tensor, torch.Tensor], dd.DD], rows: int) -> None:
        """Make G the ``total`` of this G and those of other parts of the data (ranks),
        each formed with the same shift; ``rows`` is the rows of all parts, which the
        state now holds."""
        self._flush()
        self._hi, self._lo = total(self._hi, self._lo)
        self.n_samples = rows

    def gram(self) -> dd.DD | None:
        """G as (hi, lo), or ``None`` where it is not exact: an entry overflowed, or a
        column's squares lie so far below 1 (under 2⁻⁷⁰⁰) that its finest slices would
        have fallen below float64's normal range."""
        self._flush()
        diag = self._hi.diagonal()
        if not bool(
            torch.isfinite(self._hi).all()
            & torch.isfinite(self._lo).all()
            & ((diag == 0) | (diag >= 2.0**-700)).all()
        ):
            return None
        return self._hi, self._lo
