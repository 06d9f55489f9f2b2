"""The fast path for well-conditioned in-memory data: the state from the Gram matrix.

Forming G = MᵀM (M = √w·[1, X − x₀, Y − y₀]) is one matrix multiply, about twice as fast
as a Householder QR, and a Cholesky factor of G is an R factor of M: the same state the
QR fold builds (same shift, so the same R up to rounding), and every solve applies
unchanged. Its price is accuracy: errors grow with κ² instead of κ. So the result is
accepted only when the condition number of the (column-scaled, shifted) design keeps
ε·κ² small, when no column is so small or large that its squares leave the normal
range, and the residual block of R, which the Gram matrix gets by cancellation
(yᵀy − fitted²), is recomputed from the residuals where that cancellation could cost
digits (a close fit: :func:`residual_block_accurate`).

The shift (x₀, y₀: the first rows' means, as the QR fold takes them) is what makes the
rule usable for wide data: offsets from zero make the *uncentred* [1, X] badly
conditioned (κ ≈ 850 at p = 1,000 for unit-variance columns with offsets of a few
units) while the shifted design stays near κ ≈ 2–3. X − x₀ is written block by block
into one reused buffer, together with the ones column and Y − y₀, so that one
multiply per block gives every sum.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..data.chunks import Chunk
from .qr import fill_augmented
from .solve import EPS, design_conditioning, solve_ols
from .state import BLOCK_ROWS, LeastSquaresState, RowCounts
from .theta import split_theta

# Bytes of the reused block buffer [1, X − x₀, Y − y₀]: blocks of thousands of rows let
# the multiply run at its full rate (50k × 1,000: 8,192-row blocks 20% faster than
# 2,048), at most 16,384 rows: the block just written is still in cache when it is
# multiplied (1M × 100: 0.29–0.30 s per Gram against 0.30–0.36 s with 65,536 rows).
_BUFFER_BYTES = 64 << 20
_MAX_ROWS = 1 << 14
# Columns per panel of the blocked product BᵀB (see _accumulator): (k + 1)/2k of a full
# product's work for k panels, near a symmetric rank-k update's half. At least _PANEL
# columns (200k × 300: 0.29 s against 0.42 s with one product of all 302 columns;
# numpy's XᵀX, a syrk, 0.25 s), and at most _PANELS panels: each panel reads the whole
# block again, and wide blocks do not stay in cache (10k × 5,000: 1.97 s with
# 64-column panels, 1.80 s with 8 panels).
_PANEL = 64
_PANELS = 8
# Rows per block: at least this many, so that each multiply is a real matrix product.
_MIN_ROWS = 256
# Accept the Gram-built state when ε·κ² stays below this (about 11 correct digits).
GRAM_ACCURACY = 1e-11
# The same rule on κ itself: ε·κ² ≤ GRAM_ACCURACY ⇔ κ ≤ GRAM_KAPPA.
GRAM_KAPPA = (GRAM_ACCURACY / EPS) ** 0.5
# Up to this many columns ([1, X, Y]) the data are first multiplied as they are.
NARROW = 64
# Squares of entries must stay in the normal float64 range (no subnormal underflow).
_SAFE = (1e-280, 1e280)


def _rows(n: int, m: int) -> int:
    return max(1, min(n, _MAX_ROWS, max(_MIN_ROWS, _BUFFER_BYTES // (8 * m))))


def _blocks(chunk: Chunk, device: torch.device, shift_y: torch.Tensor):  # type: ignore[no-untyped-def]
    """(X, Y − y₀, w) as float64 blocks: the whole data when no conversion is needed
    (few large kernels: on a loaded machine each kernel's thread wake-up costs)."""
    X, Y, w = chunk.X, chunk.Y, chunk.sample_weight
    whole = X.dtype == torch.float64 and w is None
    step = max(X.shape[0], 1) if whole else _rows(X.shape[0], X.shape[1])
    for start in range(0, X.shape[0], step):
        rows = slice(start, start + step)
        Xb = X[rows].to(device=device, dtype=torch.float64)
        Yb = Y[rows].to(device=device, dtype=torch.float64) - shift_y
        wb = None if w is None else w[rows].to(device=device, dtype=torch.float64).unsqueeze(1)
        yield Xb, Yb, wb


def _plain_gram(chunk: Chunk, fit_intercept: bool, shift_y: torch.Tensor) -> torch.Tensor:
    """G for M = √w·[1, X, Y − y₀]: X unshifted, used as it is (no copy for float64
    unweighted data). For narrow designs, where copying X − x₀ costs as much as the
    multiply; accepted only where the uncentred design is well conditioned.

    X is read twice, by XᵀX and by Xᵀ[Y − y₀, 1] (the cross products and the column
    sums in one product): these designs are memory-bound, and a third pass (the sums on
    their own) cost a third of the time at 10M × 20 (docs/benchmarks.md, Shapes)."""
    device = chunk.X.device
    p, k = chunk.X.shape[1], chunk.Y.shape[1]
    f64 = torch.float64
    XtX = torch.zeros(p, p, dtype=f64, device=device)
    XtZ = torch.zeros(p, k + 1, dtype=f64, device=device)
    ZtZ = torch.zeros(k + 1, k + 1, dtype=f64, device=device)
    for Xb, Yb, wb in _blocks(chunk, device, shift_y):
        Z = torch.cat([Yb, torch.ones(Yb.shape[0], 1, dtype=f64, device=device)], 1)
        Zw = Z if wb is None else Z * wb
        XtX += Xb.T @ (Xb if wb is None else Xb * wb)
        XtZ += Xb.T @ Zw
        ZtZ += Zw.T @ Z
    XtY, YtY = XtZ[:, :k], ZtZ[:k, :k]
    if not fit_intercept:
        return torch.cat([torch.cat([XtX, XtY], 1), torch.cat([XtY.T, YtY], 1)])
    # The ones column's row: [Σw, Σw·x, Σw·(y − y₀)] (Σw exact for unit weights).
    ones = torch.cat([ZtZ[k:, k:], XtZ[:, k:].T, ZtZ[k:, :k]], 1)
    return torch.cat(
        [
            ones,
            torch.cat([XtZ[:, k:], XtX, XtY], 1),
            torch.cat([ZtZ[:k, k:], XtY.T, YtY], 1),
        ]
    )


def _gram(
    chunk: Chunk, fit_intercept: bool, shift_x: torch.Tensor, shift_y: torch.Tensor
) -> torch.Tensor:
    """G = MᵀM for M = √w·[1, X − x₀, Y − y₀] (no ones column without an intercept),
    one multiply per block of rows written into a reused buffer."""
    X, Y, w = chunk.X, chunk.Y, chunk.sample_weight
    device = X.device
    n = X.shape[0]
    m = X.shape[1] + Y.shape[1] + int(fit_intercept)
    step = _rows(n, m)
    buffer = torch.empty(step, m, dtype=torch.float64, device=device)
    sqrt_w = None if w is None else w.sqrt()
    update = _accumulator(m, device)
    for start in range(0, n, step):
        rows = slice(start, start + step)
        B = buffer[: min(step, n - start)]
        fill_augmented(
            B,
            X[rows],
            Y[rows],
            None if sqrt_w is None else sqrt_w[rows],
            fit_intercept,
            shift_x if fit_intercept else None,
            shift_y if fit_intercept else None,
        )
        update(B)
    return update(None)


def _accumulator(m: int, device: torch.device) -> Callable[[torch.Tensor | None], torch.Tensor]:
    """``update(B)`` adds BᵀB to an m × m sum; ``update(None)`` returns a matrix whose
    upper triangle is that of the sum and whose strict lower triangle holds zeros or
    other roundings of the same sums: the Cholesky factorization reads the upper one
    only, and a symmetric copy cost three passes over the matrix (0.4 s at p = 5,000).

    The sum is symmetric, so only its upper block triangle is formed: the columns are
    cut into panels (see :data:`_PANEL`) and panel i is multiplied by the columns from its
    own onwards (one general product per panel), (k + 1)/2k of a full product's
    multiplications for k panels. Torch's own matrix multiply throughout: on the CPU
    builds it is MKL, which ran these products faster than OpenBLAS's ``dsyrk`` (SciPy,
    numpy) on a busy two-core machine, 4× at 200,000 × 300 and 13% at 50,000 × 1,000,
    and ``XᵀX`` at 1M × 101 in 0.19 s against numpy's 0.29 s on a quiet one
    (docs/benchmarks.md, Shapes)."""
    G = torch.zeros(m, m, dtype=torch.float64, device=device)
    width = max(_PANEL, -(-m // _PANELS))
    starts = range(0, m, width)

    def add(B: torch.Tensor | None) -> torch.Tensor:
        if B is not None:
            for start in starts:
                rows = slice(start, min(start + width, m))
                G[rows, start:].addmm_(B[:, rows].T, B[:, start:])
        return G

    return add


def gram_state(chunk: Chunk, fit_intercept: bool) -> LeastSquaresState | None:
    """The state of ``chunk`` via G = MᵀM and Cholesky, or ``None`` when that would not
    be accurate (non-finite or out-of-range sums, failed Cholesky, ε·κ² > GRAM_ACCURACY
    for κ of the column-scaled design). Narrow designs try X as it is first (no copy),
    then the shifted block; wide ones go straight to the shifted block. The residual
    block is recomputed from the residuals unless the Gram's own is accurate
    (:func:`residual_block_accurate`)."""
    device = chunk.X.device
    p, k = chunk.X.shape[1], chunk.Y.shape[1]
    shift_x = torch.zeros(p, dtype=torch.float64, device=device)
    shift_y = torch.zeros(k, dtype=torch.float64, device=device)
    if fit_intercept and chunk.X.shape[0]:
        # The QR fold's shift: the first rows' means (any shift gives the same slopes).
        shift_x = chunk.X[:BLOCK_ROWS].to(device=device, dtype=torch.float64).mean(0)
        shift_y = chunk.Y[:BLOCK_ROWS].to(device=device, dtype=torch.float64).mean(0)
    counts = RowCounts.of(chunk)
    state = None
    if p + k + 1 <= NARROW:
        G = _plain_gram(chunk, fit_intercept, shift_y)
        state = _factor(G, torch.zeros_like(shift_x), shift_y, counts, fit_intercept)
    if state is None:
        G = _gram(chunk, fit_intercept, shift_x, shift_y)
        state = _factor(G, shift_x, shift_y, counts, fit_intercept)
    if state is None:
        return None
    if residual_block_accurate(state):
        return state
    R = state.R.clone()
    c = state.n_params
    R[c:, c:] = _residual_block(state, chunk)
    final = LeastSquaresState.from_parts(
        R, state.shift_x, shift_y, counts, fit_intercept=fit_intercept
    )
    final.share_design_memo(state)  # same design block: its conditioning is known
    return final


def _factor(
    G: torch.Tensor,
    shift_x: torch.Tensor,
    shift_y: torch.Tensor,
    counts: RowCounts,
    fit_intercept: bool,
) -> LeastSquaresState | None:
    """The state whose R is the Cholesky factor of G (its upper triangle read), if
    accurate enough (else None).

    G is factored as it is, not as D·G·D for the power-of-two scale D of its diagonal:
    the factor of D·G·D is R·D to the bit (each step of the factorization, blocked or
    not, scales by the exact dᵢ·dⱼ, a square root by dⱼ), so the scaling bought nothing
    but two copies of the matrix once the diagonal is known to lie in the normal range
    (then every |Gᵢⱼ| ≤ √(GᵢᵢGⱼⱼ) and every partial sum of the factorization does)."""
    diag = torch.diagonal(G)
    if not bool(torch.isfinite(diag).all()):
        return None  # the QR path finds and names the bad value
    if bool(((diag > 0) & ((diag < _SAFE[0]) | (diag > _SAFE[1]))).any()):
        return None
    # One read for the rest: a NaN or ±inf among the sums makes the total non-finite
    # (the lower triangle holds zeros or the same sums), and finite entries
    # (|Gᵢⱼ| ≤ 1e280) cannot overflow it below 1e14 columns.
    if not bool(torch.isfinite(G.sum())):
        return None
    R, info = torch.linalg.cholesky_ex(G, upper=True)
    if int(info) != 0:
        return None
    state = LeastSquaresState.from_parts(R, shift_x, shift_y, counts, fit_intercept=fit_intercept)
    return None if design_conditioning(state).kappa_exceeds(GRAM_KAPPA) else state


def residual_block_accurate(state: LeastSquaresState) -> bool:
    """Whether the residual block of a Gram-built ``state`` is accurate as it is, so
    that the pass recomputing it from the residuals can be skipped.

    The Cholesky factor gives SSR = ỹᵀỹ − ỹᵀA(AᵀA)⁻¹Aᵀỹ (ỹ = √w·(y − y₀), A the
    design) by cancellation. An error E in the sums of G = MᵀM, |Eᵢⱼ| ≲ ε·‖mᵢ‖·‖mⱼ‖
    (forming G, and the Cholesky's own backward error, are of that form), moves it by
    E_yy − 2βᵀE_Ay + βᵀE_AAβ: about ε·(‖ỹ‖ + ‖Dβ‖)² for D the design's column norms
    (factors growing with p and n left out, as in the coefficients' rule ε·κ²; the
    worst case over y is ‖Dβ‖ ≤ κ·‖ỹ‖). Accepted per target when that is within
    :data:`GRAM_ACCURACY` of SSR, from the solution itself (O(p²)); a close fit (SSR ≪
    ‖ỹ‖², NIST Longley and Wampler, or coefficients that cancel) gets the recomputed
    block."""
    c = state.n_params
    theta = state.to_shifted(solve_ols(state).theta)  # β of the shifted design, (c, k)
    norms = torch.linalg.vector_norm(state.R_design, dim=0)  # ‖mⱼ‖: R's column norms
    fitted = torch.linalg.vector_norm(norms.unsqueeze(1) * theta, dim=0)  # ‖Dβ‖
    total = torch.linalg.vector_norm(state.R[:, c:], dim=0)  # ‖ỹ‖
    ssr = (state.R_residual**2).sum(0)
    return bool((EPS * (total + fitted) ** 2 <= GRAM_ACCURACY * ssr).all())


def _residual_block(state: LeastSquaresState, chunk: Chunk) -> torch.Tensor:
    """R's residual block recomputed from the residuals themselves (one pass over X, a
    matrix-vector product per block): the Cholesky factor of EᵀWE, E = (Y − y₀) −
    (X − x₀)β − b_s, which the Gram matrix would give only by cancellation."""
    coef, b = split_theta(state.to_shifted(solve_ols(state).theta), state.fit_intercept)
    # X enters unshifted, without a copy: (X − x₀)β + b_s = Xβ + (b_s − x₀ᵀβ). The
    # rounding is that of the shift itself (ε·Σ|xᵢⱼ·βⱼ| per row either way).
    offset = None if b is None else b - state.shift_x @ coef
    k = state.n_targets
    cross = torch.zeros(k, k, dtype=torch.float64, device=state.device)
    for Xb, Yb, wb in _blocks(chunk, state.device, state.shift_y):
        E = Yb - Xb @ coef
        if offset is not None:
            E -= offset
        Ew = E if wb is None else E * wb
        cross += Ew.T @ E
    L, info = torch.linalg.cholesky_ex(cross)
    return L.T if int(info) == 0 else torch.diag(torch.diagonal(cross).clamp(min=0).sqrt())
