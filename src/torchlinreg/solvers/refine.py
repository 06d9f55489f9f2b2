"""Iterative refinement with residuals in double-double, for when accuracy is at risk.

A backward-stable QR solve is accurate to about κ·ε + κ²·ε·tanθ (θ the angle between y
and the column space): on large-residual, ill-conditioned problems (NIST Wampler5) that
is 6 digits. Refinement recovers the rest by computing residuals of the *original*
float64 data in double-double, which needs the data again:

* corrected semi-normal equations with the state's R: one pass over the data per step,
  no extra memory beyond a block; converges when κ²·ε < 1, so it is used when
  κ²·ε < 0.01, from memory or from a re-readable chunk stream;
* beyond that, in memory only, Björck's refinement of the augmented system
  [I A; Aᵀ 0][r; x] = [b; 0] with the Householder QR of A (a copy of the data and its
  Q); it converges when κ·ε < 1.

Residuals are those of the data exactly as given, W(Y − [1, X]θ) with the weights
applied in double-double (never through a rounded √w, which would perturb every row),
never of the state's shifted copy: X − x₀ is rounded, and for a nearly collinear
design that rounding alone moves the solution. So refinement runs in the data's own
coordinates, with the state's R carried back to them (R·T for the unit-triangular shift
T) as the preconditioner, and with columns (and each target) scaled by exact powers of
two, so the problem keeps its solution bits and the double-double splitting cannot
overflow. The factors (the state's R, the QR of √w·A) only precondition: their rounding
slows the iteration, it does not move its limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from ..data.chunks import Chunk
from ..errors import InputError
from . import dd, dd_extract
from .conditioning import Conditioning
from .fingerprint import Fingerprint
from .scaling import column_scale
from .solve import EPS
from .state import LeastSquaresState

_MAX_STEPS = 6
_STALLED = 2
# Bytes of double-double temporaries per block (A·x products, Aᵀr products).
_BLOCK_BYTES = 64 << 20


def _block_rows(p: int, k: int) -> int:
    return max(256, _BLOCK_BYTES // (8 * 8 * max(p * k, 1)))


def _unshifted(state: LeastSquaresState) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(R of the rows as given, the power-of-two scales D of its design columns and T
    of its targets), computed once per R: the bracket of κ and the refinement share
    them."""

    def compute() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        Ru = state.unshifted_R()
        return (Ru, *_scales(Ru, state.n_params))

    return state.memo("unshifted R", compute)  # type: ignore[no-any-return]


def unshifted_conditioning(state: LeastSquaresState) -> Conditioning:
    """The bracket of κ₂ of the unshifted, column-scaled design (what governs the
    refinement), computed once per R."""

    def compute() -> Conditioning:
        Ru, D, _ = _unshifted(state)
        return Conditioning(Ru[: state.n_params, : state.n_params], D)  # scaled on the fly

    return state.memo("unshifted", compute)  # type: ignore[no-any-return]


def design_condition(state: LeastSquaresState) -> float:
    """κ₂ of the unshifted, column-scaled design: what governs the refinement."""
    return unshifted_conditioning(state).value


# Corrected semi-normal equations converge when κ²·ε < 1; this margin for safety.
SEMINORMAL_LIMIT = 0.01


def seminormal_obstacle(state: LeastSquaresState) -> str | None:
    """None where refinement by passes over the data (corrected semi-normal equations)
    converges for ``state``: κ²·ε < ``SEMINORMAL_LIMIT``, κ of :func:`design_condition`.
    Else why not, naming the number the rule tests and what would allow refinement."""
    # κ²·ε < limit ⇔ κ < √(limit/ε): decided from the bracket where it can be.
    if not unshifted_conditioning(state).kappa_exceeds((SEMINORMAL_LIMIT / EPS) ** 0.5):
        return None
    kappa = design_condition(state)
    return (
        f"refining by passes over the data needs condition number² · ε < {SEMINORMAL_LIMIT} "
        f"for the uncentred design (columns scaled, intercept column included), whose "
        f"condition number is {kappa:.2g} (condition number² · ε = {kappa**2 * EPS:.2g}); "
        "refinement needs all the rows in memory at once, or columns centred before "
        "their powers or products are formed"
    )


def _times(
    factor: tuple[torch.Tensor, torch.Tensor] | torch.Tensor | None,
    hi: torch.Tensor,
    lo: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """factor ⊙ (hi + lo) in double-double, rows scaled by a float64 column (exactly,
    to 2⁻¹⁰⁶) or by a double-double pair; None is the identity."""
    if factor is None:
        return hi, lo
    if isinstance(factor, torch.Tensor):
        p, e = dd.two_prod(factor, hi)
        return dd.two_sum(p, e + factor * lo)
    return dd.dd_mul(*factor, hi, lo)


def _weighted_gradient(
    A: torch.Tensor, x: torch.Tensor, b: torch.Tensor, w: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Aᵀ W (b − A x) over row blocks, in double-double: the negative gradient of the
    weighted problem as given. The pair stays unrounded so that sums over chunks, which
    may cancel, keep their accuracy."""
    rows = _block_rows(A.shape[1], b.shape[1])
    total = None
    for start in range(0, A.shape[0], rows):
        sl = slice(start, start + rows)
        block = dd_extract.transposed(A[sl])  # the block's split, for both products
        e = dd_extract.residual(A[sl], x, b[sl], block)
        e_hi, e_lo = _times(None if w is None else w[sl], *e)
        total = _accumulate(total, dd_extract.rmatvec(A[sl], e_hi, e_lo, block))
    return _total(total, x)


# A double-double sum of parts, and whether it holds more than one (a single part,
# already a normalised pair, needs no renormalising).
Partial = tuple[dd.DD, bool]


def _accumulate(total: Partial | None, part: dd.DD) -> Partial:
    """total + part, unrounded (the pair is renormalised once, by :func:`_total`); the
    first part is taken as it is (adding it to zeros changes no bit)."""
    if total is None:
        return part, False
    (hi, lo), _ = total
    g_hi, err = dd.two_sum(hi, part[0])
    return (g_hi, lo + (err + part[1])), True


def _total(total: Partial | None, like: torch.Tensor) -> dd.DD:
    """The accumulated sum renormalised (zeros where there were no parts)."""
    if total is None:
        return torch.zeros_like(like), torch.zeros_like(like)
    pair, several = total
    return dd.two_sum(*pair) if several else pair


def _augmented_residuals(
    A: torch.Tensor,
    x: torch.Tensor,
    b: torch.Tensor,
    s: torch.Tensor,
    sqrt_w: tuple[torch.Tensor, torch.Tensor] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Residuals of [I Ã; Ãᵀ 0][s; x] = [b̃; 0] for Ã = √W·A, b̃ = √W·b with √w in
    double-double: f = √W(b − A x) − s (rounded) and g = −Ãᵀ s = −Aᵀ(√W s), over row
    blocks. A and b are the unweighted data, so no rounding of √w·A enters."""
    rows = _block_rows(A.shape[1], b.shape[1])
    f = torch.empty_like(b)
    g_hi = torch.zeros_like(x)
    g_lo = torch.zeros_like(x)
    for start in range(0, A.shape[0], rows):
        sl = slice(start, start + rows)
        block = None if sqrt_w is None else (sqrt_w[0][sl], sqrt_w[1][sl])
        prepared = dd_extract.transposed(A[sl])  # the block's split, for both products
        e_hi, e_lo = _times(block, *dd_extract.residual(A[sl], x, b[sl], prepared))
        f_hi, f_lo = dd.dd_add(e_hi, e_lo, -s[sl], torch.zeros_like(e_lo))
        f[sl] = f_hi + f_lo
        v_hi, v_lo = _times(block, s[sl], torch.zeros_like(s[sl]))
        h, lo = dd_extract.rmatvec(A[sl], v_hi, v_lo, prepared)
        g_hi, err = dd.two_sum(g_hi, h)
        g_lo = g_lo + (err + lo)
    g_hi, g_lo = dd.two_sum(g_hi, g_lo)
    return f, -(g_hi + g_lo)


def _scales(R: torch.Tensor, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Power-of-two scales of the design columns and of each target, from an R factor
    (its columns have the norms of the data's columns; R is upper triangular, so the
    first p columns are those of R[:p, :p])."""
    scale = column_scale(R)
    return scale[:p], scale[p:]


def _iterate(x: torch.Tensor, correction: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """x += correction(x) until the step is at rounding level.

    Gives up after ``_STALLED`` steps in a row that are no smaller than the smallest so
    far (the iteration does not converge), keeping the iterate that smallest step led
    to. One larger step is allowed: the augmented iteration's second step can exceed
    its first while the residual settles (seen with x ≈ 1e6 and x², weights of 3)."""
    best, best_size, stalled = x, math.inf, 0
    for _ in range(_MAX_STEPS):
        dx = correction(x)
        size = float(dx.abs().max())
        if not math.isfinite(size):
            break
        x = x + dx
        if size < best_size:
            best, best_size, stalled = x, size, 0
        else:
            stalled += 1
            if stalled == _STALLED:
                break  # diverging: keep the best iterate
        if size <= 4 * EPS * float(x.abs().max()):
            return x
    return best


# The total over every part of the data (ranks) of a double-double sum that each part
# computes locally (the thunk); None: the data are all here.
Reduce = Callable[[Callable[[], dd.DD]], dd.DD]
Share = Callable[[torch.Tensor], torch.Tensor]


def _seminormal(
    chunks: Callable[[], Iterable[Chunk]],
    state: LeastSquaresState,
    theta: torch.Tensor,
    reduce: Reduce | None = None,
    share: Share | None = None,
) -> torch.Tensor:
    """Corrected semi-normal equations: x += (RᵀR)⁻¹ AᵀW(b − A x), one pass over
    ``chunks()`` per step, columns and targets scaled by powers of two. ``reduce`` sums
    the double-double gradient over the other parts of the data (ranks), unrounded;
    ``share`` makes each step every part's (rank 0's), so that the parts stop together
    even where they would round the step differently."""
    return _seminormal_scaled(
        lambda: (_scaled_design(chunk, state) for chunk in chunks()),
        state, theta, reduce, share,
    )  # fmt: skip


# ([1, X], Y, w) of one block, as the residuals take them.
Design = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


def _scaled_design(chunk: Chunk, state: LeastSquaresState) -> Design:
    """([1, X]·D, Y·T, w) in float64: the data as given, unshifted and unweighted, the
    columns and targets scaled by the refinement's powers of two (exactly). The
    weights are applied by the residual computations in double-double, never through
    a rounded √w, which would perturb every row and move the solution by up to
    κ²·ε·tan θ (six digits lost on NIST Wampler5 with weights of 2).

    [1, X]·D is a view of its transpose, stored contiguously: the residuals
    (:mod:`.dd_extract`) run along rows of Aᵀ and would otherwise copy A every step."""
    _, D, T = _unshifted(state)
    device, c = state.device, int(state.fit_intercept)
    X, Y = chunk.X.to(device), chunk.Y.to(device)
    At = torch.empty(state.n_params, X.shape[0], dtype=torch.float64, device=device)
    if c:
        At[0] = D[0]
    torch.mul(X.T, D[c:].unsqueeze(1), out=At[c:])  # float32 data widen exactly
    w = chunk.sample_weight
    w = None if w is None else w.to(device, torch.float64).unsqueeze(1)
    return At.T, Y * T, w


def _seminormal_scaled(
    blocks: Callable[[], Iterable[Design]],
    state: LeastSquaresState,
    theta: torch.Tensor,
    reduce: Reduce | None = None,
    share: Share | None = None,
) -> torch.Tensor:
    """:func:`_seminormal` over the data as :func:`_scaled_design` gives them."""
    p = state.n_params
    Ru, D, T = _unshifted(state)
    RS = Ru[:p, :p] * D

    def gradient(x: torch.Tensor) -> dd.DD:
        total = None
        for A, b, w in blocks():
            total = _accumulate(total, _weighted_gradient(A, x, b, w))
        return _total(total, x)

    def correction(x: torch.Tensor) -> torch.Tensor:
        g_hi, g_lo = gradient(x) if reduce is None else reduce(lambda: gradient(x))
        y = torch.linalg.solve_triangular(RS.T, g_hi + g_lo, upper=False)
        dx = torch.linalg.solve_triangular(RS, y, upper=True)
        return dx if share is None else share(dx)

    x = _iterate(theta.to(Ru) / D.unsqueeze(1) * T, correction)
    return x * D.unsqueeze(1) / T


def _row_blocks(chunk: Chunk, rows: int) -> Iterable[Chunk]:
    w = chunk.sample_weight
    for start in range(0, chunk.X.shape[0], rows):
        sl = slice(start, start + rows)
        yield Chunk(chunk.X[sl], chunk.Y[sl], None if w is None else w[sl], chunk.target_1d)


def refine_in_memory(
    chunk: Chunk,
    state: LeastSquaresState,
    theta: torch.Tensor,
    reduce: Reduce | None = None,
    share: Share | None = None,
) -> torch.Tensor:
    """Refine θ (p', k; intercept first, data units) for the in-memory problem.

    With ``reduce`` the chunk is one part of the data (one rank's rows, ``state`` that
    of all of them) and ``reduce`` sums gradients over the parts; only the corrected
    semi-normal equations are open to it (:func:`seminormal_obstacle` must be None);
    ``share`` as for :func:`_seminormal`."""
    # A few hundred small kernels, run without autograd's bookkeeping (inference mode:
    # a fifth of a 1,000 × 10 refinement). What it caches on the state is only read
    # later; θ is copied out of inference mode, so that it may enter autograd graphs
    # (a model's coef_ in a prediction on inputs that require grad).
    with torch.inference_mode():
        refined = _refine_in_memory(chunk, state, theta, reduce, share)
    return refined.clone()


def _refine_in_memory(
    chunk: Chunk,
    state: LeastSquaresState,
    theta: torch.Tensor,
    reduce: Reduce | None,
    share: Share | None,
) -> torch.Tensor:
    if seminormal_obstacle(state) is None or reduce is not None:
        rows = _block_rows(state.n_params, state.n_targets)
        if chunk.X.shape[0] <= rows:  # one block: scaled once, not once per step
            block = [_scaled_design(chunk, state)]
            return _seminormal_scaled(lambda: block, state, theta, reduce, share)
        return _seminormal(lambda: _row_blocks(chunk, rows), state, theta, reduce, share)
    _, D, T = _unshifted(state)
    A, b, w = _scaled_design(chunk, state)
    # Björck's iteration in the √w-scaled variables: the residuals of the problem as
    # given, with √w in double-double; the QR of the rounded √w·A only preconditions.
    sqrt_w = None if w is None else dd.dd_sqrt(w)
    Aw, bw = (A, b) if sqrt_w is None else (A * sqrt_w[0], b * sqrt_w[0])
    Q, R = torch.linalg.qr(Aw)
    x = theta.to(A) / D.unsqueeze(1) * T
    s = bw - Aw @ x

    def correction(x: torch.Tensor) -> torch.Tensor:
        nonlocal s
        f, g = _augmented_residuals(A, x, b, s, sqrt_w)
        # Solve [I Ã; Ãᵀ 0][δs; δx] = [f; g] with Ã = Q R.
        h = torch.linalg.solve_triangular(R.T, g, upper=False)
        d = Q.T @ f
        s = s + (f - Q @ (d - h))
        return torch.linalg.solve_triangular(R, d - h, upper=True)

    x = _iterate(x, correction)
    return x * D.unsqueeze(1) / T


def refine_from_chunks(
    chunks: Callable[[], Iterable[Chunk]],
    state: LeastSquaresState,
    theta: torch.Tensor,
    first_pass: Fingerprint,
    reduce: Reduce | None = None,
    share: Share | None = None,
) -> torch.Tensor:
    """Refine θ by corrected semi-normal equations, one pass over ``chunks()`` per step.

    For a state whose :func:`seminormal_obstacle` is None: beyond, the iteration cannot
    converge (and stops at its best iterate). Every pass must read exactly the data of
    the first one (``first_pass``), else :class:`~torchlinreg.errors.InputError`.
    ``reduce`` and ``share`` as for :func:`refine_in_memory`.
    """

    def changed() -> InputError:
        return InputError(
            "the data changed between passes (a file modified while it was read, or a "
            f"chunk source that returns other rows): the first pass read {first_pass.rows} "
            "rows, a second pass (for refinement) read other rows or values; leave the "
            "input unchanged until the fit ends, each pass reading the same rows"
        )

    def checked() -> Iterable[Chunk]:
        seen = Fingerprint()
        for chunk in chunks():
            if chunk.X.shape[1:] != (state.n_features,) or chunk.Y.shape[1:] != (state.n_targets,):
                raise changed()
            seen.add(chunk)
            yield chunk
        if seen != first_pass:
            raise changed()

    return _seminormal(checked, state, theta, reduce, share)
