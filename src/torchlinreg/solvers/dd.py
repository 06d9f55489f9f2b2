"""Double-double arithmetic in plain torch: error-free transformations, any device.

A double-double number is an unevaluated sum ``hi + lo`` with ``|lo| <= ulp(hi)/2``,
about 106 bits of significand. Only what residual computation needs is here:
exact products (Dekker's TwoProduct), exact sums (Knuth's TwoSum), and reductions.
Every op is a separate kernel, so no compiler may fuse ``a*b + c`` into an FMA and
break the error-free property.
"""

from __future__ import annotations

import torch

# Dekker's splitter for float64: 2^27 + 1 splits a double into two 26-bit halves.
_SPLITTER = 134217729.0


def two_sum(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """s + e == a + b exactly, s = fl(a + b) (Knuth; no ordering of |a|, |b| needed)."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def split(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """a == hi + lo exactly with hi, lo holding at most 26 significant bits each."""
    c = a * _SPLITTER
    hi = c - (c - a)
    return hi, a - hi


# The halves of :func:`split`.
Halves = tuple[torch.Tensor, torch.Tensor]


def two_prod(
    a: torch.Tensor, b: torch.Tensor, a_split: Halves | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """p + e == a * b exactly, p = fl(a * b) (Dekker's TwoProduct). ``a_split``: the
    :func:`split` of a where already made (a factor used again)."""
    p = a * b
    return p, product_error(p, split(a) if a_split is None else a_split, split(b))


def product_error(p: torch.Tensor, a_split: Halves, b_split: Halves) -> torch.Tensor:
    """a·b − p exactly, for p = fl(a·b) and the :func:`split` halves of a and b."""
    (ah, al), (bh, bl) = a_split, b_split
    # Every step of Dekker's sum is exact (its value is a float64), so t + u·v gives
    # the same bits whether or not it is fused into an FMA: three kernels, not six.
    return torch.addcmul(torch.addcmul(torch.addcmul(ah * bh - p, ah, bl), al, bh), al, bl)


def dd_sum(hi: torch.Tensor, lo: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum double-doubles along ``dim`` by pairwise TwoSum (log2 n vector steps)."""
    hi, lo = hi.movedim(dim, 0), lo.movedim(dim, 0)
    while hi.shape[0] > 1:
        if hi.shape[0] % 2:
            pad = hi.new_zeros((1, *hi.shape[1:]))
            hi, lo = torch.cat([hi, pad]), torch.cat([lo, pad])
        s, e = two_sum(hi[0::2], hi[1::2])
        e = e + (lo[0::2] + lo[1::2])
        hi, lo = two_sum(s, e)
    return hi[0], lo[0]


def residual(
    A: torch.Tensor, x: torch.Tensor, b: torch.Tensor, r: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``b - r - A @ x`` in double-double, for A (n, p), x (p, k), b and r (n, k).

    Each product a_ij·x_j is formed exactly and the row sums are accumulated with
    TwoSum, so the result is accurate to ~2⁻¹⁰⁶ relative to Σ|a_ij x_j| + |b_i| + |r_i|
    whatever the cancellation.
    """
    if r is None:
        hi, lo = b.clone(), torch.zeros_like(b)
    else:
        hi, lo = two_sum(b, -r)
    for j in range(A.shape[1]):
        p, e = two_prod(A[:, j : j + 1], -x[j : j + 1, :])
        hi, err = two_sum(hi, p)
        lo = lo + (err + e)
    return two_sum(hi, lo)


def rmatvec(
    A: torch.Tensor, r_hi: torch.Tensor, r_lo: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``Aᵀ r`` in double-double for A (n, p) and r = r_hi + r_lo (n, k): (p, k)."""
    p, e = two_prod(A.unsqueeze(2), r_hi.unsqueeze(1))  # (n, p, k)
    e = e + A.unsqueeze(2) * r_lo.unsqueeze(1)
    return dd_sum(p, e, dim=0)


# Arithmetic on double-double numbers (hi, lo), elementwise with broadcasting: what a
# small linear solve in double-double needs. "Sloppy" forms (Dekker): each result is
# accurate to a few units of 2⁻¹⁰⁶ relative to its operands' magnitudes.
DD = tuple[torch.Tensor, torch.Tensor]


def dd_add(ah: torch.Tensor, al: torch.Tensor, bh: torch.Tensor, bl: torch.Tensor) -> DD:
    """(ah + al) + (bh + bl) as a double-double."""
    s, e = two_sum(ah, bh)
    return two_sum(s, e + (al + bl))


def dd_mul(ah: torch.Tensor, al: torch.Tensor, bh: torch.Tensor, bl: torch.Tensor) -> DD:
    """(ah + al) · (bh + bl) as a double-double (the al·bl term is below 2⁻¹⁰⁶)."""
    p, e = two_prod(ah, bh)
    return two_sum(p, e + (ah * bl + al * bh))


def dd_div(ah: torch.Tensor, al: torch.Tensor, bh: torch.Tensor, bl: torch.Tensor) -> DD:
    """(ah + al) / (bh + bl): a float64 quotient corrected by its double-double remainder."""
    q = ah / bh
    ph, pl = dd_mul(q, torch.zeros_like(q), bh, bl)
    rh, rl = dd_add(ah, al, -ph, -pl)
    return two_sum(q, (rh + rl) / bh)


def dd_sqrt(a: torch.Tensor) -> DD:
    """√a of float64 a ≥ 0 as a double-double: s + (a − s²)/(2s), a − s² formed exactly."""
    s = a.sqrt()
    p, e = two_prod(s, s)
    correction = ((a - p) - e) / (2 * s)
    return two_sum(s, torch.where(s > 0, correction, torch.zeros_like(s)))
