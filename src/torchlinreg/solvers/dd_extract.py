"""Residuals and gradients in double-double with a few whole-array kernels.

The residual ``b − A x`` and the product ``Aᵀ r`` that refinement needs are sums of
exact products (Dekker's TwoProduct, :mod:`.dd`). :mod:`.dd` sums them by TwoSum, one
column or one halving at a time: about 400 small kernels for a 1,000 × 11 design,
whose launch costs dominate a small fit. Here each sum is split instead by Rump, Ogita
and Oishi's extraction (ExtractVector, "Accurate floating-point summation part I",
SIAM J. Sci. Comput. 31, 2008): with σ = 2^M·2^e, 2^e ≥ max |vᵢ| and 2^M ≥ N + 2 for
N terms, ``qᵢ = (σ + vᵢ) − σ`` and ``vᵢ − qᵢ`` are exact, every qᵢ is a multiple of
2⁻⁵³σ and any partial sum of them is below σ, so ``Σ qᵢ`` is exact in float64 in any
order. Each round takes at least ``52 − M`` bits off the largest remaining term; after
two rounds (three beyond 2¹¹ terms) the remainders are small enough that their float64
sum errs by less than 2⁻¹⁰⁶ of the largest term, and the exact partial sums with it
make the double-double result: about 25 kernels per sum, the accuracy of :mod:`.dd`
(tests/test_dd_extract.py, against rational arithmetic).
"""

from __future__ import annotations

import math

import torch

from .dd import DD, Halves, product_error, split, two_prod, two_sum

# Bits below the largest term left to the remainder, as in double-double.
_BITS = 106
# The least σ used: the grid 2⁻⁵³σ of its round stays above the subnormals, so a round
# on tiny terms stays exact (terms below ~2⁻⁹⁰⁰ count for nothing at 2⁻¹⁰⁶ of others).
_FLOOR_EXPONENT = -900


def _rounds(n_terms: int) -> tuple[int, int]:
    """(M, rounds): 2^M ≥ n_terms + 2, and enough rounds that the remainders' float64
    sum errs by less than 2⁻¹⁰⁶ of the largest term. After K rounds every remainder is
    below 2^(K(M − 53) + 1) of the largest term, and a float64 sum of N of them errs by
    at most N·2⁻⁵³ times their total: N²·2^(K(M − 53) − 52) ≤ 2⁻¹⁰⁶ when
    K(53 − M) ≥ 54 + 2M (N < 2^M). Two rounds up to N = 2¹¹ terms, three to 2¹⁹."""
    m = max(1, math.ceil(math.log2(n_terms + 2)))
    if m > 40:
        raise ValueError(f"too many terms for one extraction: {n_terms}")
    return m, max(2, math.ceil((_BITS - 52 + 2 * m) / (53 - m)))


def extract_sum(
    v: torch.Tensor, dim: int, *, tail: torch.Tensor | None = None, overwrite: bool = False
) -> DD:
    """Σ v along ``dim`` (plus ``tail``, small terms already summed) as a double-double
    ``(hi, lo)``, accurate to a few units of 2⁻¹⁰⁶ of the largest term, or to about
    2⁻¹⁰⁰⁰ where every term is below 2⁻⁸⁵⁰ (float64, finite, below 2⁹⁰⁰ in magnitude).
    With ``overwrite`` v's memory holds the remainders.

    Only the first σ is measured: a round leaves every remainder below 2⁻⁵³σ, so
    σ·2^(M−53) is a valid σ for the next (a power of two ≥ 2^M times every term)."""
    m, rounds = _rounds(v.shape[dim])
    _, exponent = torch.frexp(v.abs().amax(dim, keepdim=True))  # max |v| < 2^e
    # σ = 2^(e + M), raised where the last round's σ would fall below 2^_FLOOR_EXPONENT.
    lowest = _FLOOR_EXPONENT + (rounds - 1) * (53 - m)
    sigma = torch.ldexp(torch.ones_like(v.narrow(dim, 0, 1)), (exponent + m).clamp_min(lowest))
    if not overwrite:
        v = v.clone()  # the remainders, in place: two buffers stay in cache
    q = torch.empty_like(v)
    exact = []
    for k in range(rounds):
        torch.add(sigma, v, out=q)
        q.sub_(sigma)
        v.sub_(q)
        exact.append(q.sum(dim))
        if k + 1 < rounds:
            sigma = sigma * 2.0 ** (m - 53)
    hi, lo = two_sum(exact[0], exact[1])  # rounds ≥ 2
    # Any later partial sums are each 53 − M bits below the one before, the remainders
    # below them all: one rounding of their total costs nothing at double-double accuracy.
    rest = v.sum(dim) if tail is None else v.sum(dim) + tail
    for part in reversed(exact[2:]):
        rest = part + rest
    return two_sum(hi, lo + rest)


def transposed(A: torch.Tensor) -> tuple[torch.Tensor, Halves]:
    """Aᵀ (p, n) in contiguous memory and its :func:`.dd.split`: what :func:`residual`
    and :func:`rmatvec` make of A at each call, made once for an A used again."""
    At = A.T.contiguous()
    return At, split(At)


def residual(
    A: torch.Tensor,
    x: torch.Tensor,
    b: torch.Tensor,
    prepared: tuple[torch.Tensor, Halves] | None = None,
) -> DD:
    """``b − A @ x`` in double-double for A (n, p), x (p, k), b (n, k), as
    :func:`.dd.residual`: accurate to ~2⁻¹⁰⁶ of Σ_j |a_ij x_j| + |b_i| per row.
    ``prepared``: :func:`transposed` of A."""
    # Terms laid out (k, p + 1, n): the sums run across rows of contiguous n-vectors,
    # which torch vectorizes; a sum along a short last axis costs several times more.
    # A transposed in memory: every product is then laid out (k, p, n) contiguously.
    At, halves = transposed(A) if prepared is None else prepared
    k, (p, n) = x.shape[1], At.shape
    terms = torch.empty(k, p + 1, n, dtype=At.dtype, device=At.device)
    terms[:, 0] = b.T
    minus_x = -x.T.unsqueeze(2)
    products = torch.mul(At.unsqueeze(0), minus_x, out=terms[:, 1:])
    errors = product_error(products, halves, split(minus_x))
    # The product errors are below 2⁻⁵³ of their products: summed in float64 they are
    # exact to 2⁻¹⁰⁶ of Σ |a_ij x_j| (up to the log of their count).
    hi, lo = extract_sum(terms, dim=1, tail=errors.sum(1), overwrite=True)  # (k, n)
    return hi.T, lo.T


def rmatvec(
    A: torch.Tensor,
    r_hi: torch.Tensor,
    r_lo: torch.Tensor,
    prepared: tuple[torch.Tensor, Halves] | None = None,
) -> DD:
    """``Aᵀ r`` in double-double for A (n, p) and r = r_hi + r_lo (n, k): (p, k), as
    :func:`.dd.rmatvec`: accurate to ~2⁻¹⁰⁶ of Σ_i |a_ij r_i|. ``prepared``:
    :func:`transposed` of A."""
    At, halves = transposed(A) if prepared is None else prepared
    At = At.unsqueeze(1)  # (p, 1, n), n contiguous: the sums run along it
    halves = (halves[0].unsqueeze(1), halves[1].unsqueeze(1))
    products, errors = two_prod(At, r_hi.T.unsqueeze(0), halves)  # (p, k, n)
    errors = torch.addcmul(errors, At, r_lo.T.unsqueeze(0))
    return extract_sum(products, dim=2, tail=errors.sum(2), overwrite=True)
