"""The meat of a robust covariance over rows held in memory, in as few flops as the
maths allows: :func:`~.meat.robust_meat` takes it where it applies (in memory, one
process, a full-rank design whose z rows need no double-double refinement) and falls
back on its general pass otherwise.

Per block of B rows, the rows v are scaled in place, ẽᵢ·vᵢ, and one matrix product
of B·p'² multiply-adds forms the meat Σ ẽᵢ²vᵢvᵢᵀ = (ẽ·v)ᵀ(ẽ·v); the probe's sums are
a product of their own, vᵀ(aU), taken first. Every block is written into buffers
reused block after block (a fresh block of megabytes is paid in page faults). A
symmetric rank-k update would need half the flops; torch exposes none, and OpenBLAS'
dsyrk through SciPy, whose thread pool spins beside torch's, made the pass slower
(docs/benchmarks.md). The blocks are shared among threads, each running its
kernels on one torch thread (:mod:`.block_threads`): a block stays in one core's cache
from its copy to its last product, and no kernel waits for a join.

* HC0, HC1 and cluster need no leverages, hence no z rows: on unweighted rows the meat
  is formed over the design rows aᵢ = [1, xᵢ − x₀] themselves, M_a = Σ ẽᵢ²·aᵢaᵢᵀ
  (cluster: the scores Σ_{i∈g} ẽᵢaᵢ), and brought to the z coordinates once,
  R_s⁻ᵀ M_a R_s⁻¹ (p'³ flops).
  That costs digits as ε·κ² (κ: the condition number of the column-scaled design)
  where the z rows cost ε·κ (:mod:`.covariance`), so it is taken only where
  ε·κ² ≤ :data:`~torchlinreg.solvers.gram.GRAM_ACCURACY`, the bound under which the
  fit itself accepts its Gram matrix, and where its sums cannot overflow; elsewhere
  the z rows are formed.
* HC2 and HC3 need hᵢ = ‖zᵢ‖²: z = a R_s⁻¹ per block, the meat over z; on narrow
  designs z is a product with R_s⁻¹ in the thin product's own (its columns beside
  a·θ_s), on wide ones a triangular solve (:data:`_PRODUCT_MAX_COLUMNS`).
* The residuals are the least-squares ones, e − a·u with u = R_s⁻¹d (d: θ's distance
  from the state's solution, :func:`~.meat.projection`), in the shifted coordinates:
  a·θ_s, a·u and the probe's aU in one thin product per block. Float64 residuals are
  kept where a bound on their rounding from the state alone (:func:`_rounding_small`)
  stays below 1e-11 of their norm; else each block goes through
  :func:`~.meat._block_residuals` (its sharper bound, double-double where needed).
* S = Σ zᵀz is probed as in :mod:`.meat` (SV, eight columns), its sums vᵀ(aU) formed
  per block beside the meat; a probe that finds ‖S − I‖ above what S = I allows sends
  the data to the general pass, which forms S.
* ``fitted_rows``: the pass reads the very rows the model was fitted on (fit-time
  covariance), so the fingerprints that check it (column and target sums, see
  :func:`~.covariance.check_same_data`) are not formed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ..data.chunks import Chunk
from ..errors import InputError
from ..solvers import dd
from ..solvers.gram import GRAM_ACCURACY
from ..solvers.solve import design_conditioning
from . import meat as general
from .block_threads import share_blocks, thread_count

# Rows per block: 2,595 × 101 float64 values (2 MB) per buffer, so that a thread's
# block and its buffers stay in its core's cache (4 MB L2 here) between the kernels
# that read them. Reused buffers cost no page faults. At 1e6 × 100 on two threads,
# HC0's pass measured 1.9 s with blocks of 2^18 values, 2.0 s with 2^17 or 2^19 and 2.5 s
# with 2^20 (load 7; docs/benchmarks.md).
_BLOCK_VALUES = 1 << 18
# Columns p' up to which z = a·R_s⁻¹ is a product (its columns beside the thin
# product's, one product per block) rather than a triangular solve: per 1e6 rows on one
# thread, 3.3 ms against 6.3 ms at p' = 6, 14 against 29 at 21, 101 against 133 at 61,
# even at 81 and 101 (blocks of 2^18 values); the solve has half the multiplications,
# so it wins on wider designs.
_PRODUCT_MAX_COLUMNS = 80
# The meat's product (ẽ·v)ᵀ(ẽ·v) is symmetric: its columns are cut into at most
# _PANELS panels of at least _PANEL columns, each multiplied by the columns from its
# own onwards (the upper block triangle, copied down at the end). Per 1e6 rows on one
# thread: 233 ms against 284 for the whole product at p' = 101 (3 panels), 98 against
# 107 at 61, 52 against 57 at 41; at 21 one product (12.5 ms against 14.6 for two).
_PANEL = 24
_PANELS = 3
# Cluster scores (groups × targets × p' values) up to which each thread keeps its own.
_SCORES_BYTES = 64 << 20


@dataclass(frozen=True)
class _Buffers:
    """Reused block buffers: A = [1, X − x₀] (None where X itself is A: no intercept,
    x₀ = 0), z (None over the design rows or where it is a product), W (the scaled
    rows ẽ·v where they cannot be scaled in place), P (the thin product
    [a·θ_s, a·u, aU], after a·R_s⁻¹ where z is a product) and E (the residuals); and
    what every block multiplies by."""

    A: torch.Tensor | None
    Z: torch.Tensor | None
    W: torch.Tensor
    P: torch.Tensor
    E: torch.Tensor
    # [θ_s, u, U] (p', 2k + 8): the shifted coefficients [b − y₀ + x₀ᵀβ, β], the
    # residuals' projection u = R_s⁻¹d and the probe U (R_s⁻¹V over the design rows);
    # [R_s⁻¹, θ_s, u, U] where z is a product
    products: torch.Tensor
    small: bool  # float64 residuals are accurate enough (:func:`_rounding_small`)
    z_columns: int  # p' where z is a product (the first columns of P), else 0


@dataclass
class _Pass:
    """The running sums of one in-memory pass (see :class:`~.meat.Meat`)."""

    # (k, p', p' + 8): per target the meat, in the design's or the z coordinates, and
    # beside the first one's the probe Σ aᵀ(aU) (design) or Σ zᵀ(zV) (z)
    meat: torch.Tensor
    scores: torch.Tensor  # cluster: (groups, k, p'), in the order first seen
    column_sums: torch.Tensor | None
    target_sums: torch.Tensor | None
    groups: general._Groups
    h_max: float = 0.0
    full_leverage: bool = False


def memory_meat(
    items: Any, ctx: general._Context, cov_type: str, fitted_rows: bool
) -> general.Meat | None:
    """The meat of ``cov_type`` over in-memory (chunk, labels) ``items``, or ``None``
    where this path does not apply or its probe asks for S (the general pass then)."""
    state = ctx.state
    if not isinstance(items, Sequence) or not ctx.full_rank or ctx.refine:
        return None
    design = (
        cov_type in ("HC0", "HC1", "cluster")
        and all(chunk.sample_weight is None for chunk, _ in items)
        and _no_overflow(state)
        and design_conditioning(state).decide(
            lambda kappa: general._EPS * kappa**2 <= GRAM_ACCURACY
        )
    )
    probe = general._probe_vectors(state.n_params, state.device)
    sums = _run(items, ctx, cov_type, design, probe, fitted_rows)
    return _finish(sums, ctx, cov_type, design, probe)


def _no_overflow(state: Any) -> bool:
    """Whether the design rows' meat stays far from overflow: each of its entries, and
    each value eᵢ·aᵢⱼ of W, is at most ‖e‖²·maxⱼ‖aⱼ‖² (‖e‖·‖aⱼ‖), with ‖aⱼ‖ the norms
    of R's columns and ‖e‖ ≤ 4× the least-squares residual norm (θ is the fitted one).
    The z rows need no such bound: their norms are at most 1. (Weighted rows go the z
    way: √w would enter W alone.)"""
    p = state.n_params
    a = float(torch.linalg.vector_norm(state.R[:, :p], dim=0).max())
    e = 4 * float(torch.linalg.vector_norm(state.R[p:, p:]))
    return e * e * max(a, 1.0) ** 2 < 1e300


def _run(
    items: Sequence[tuple[Chunk, Any]],
    ctx: general._Context,
    cov_type: str,
    design: bool,
    probe: torch.Tensor,
    fitted_rows: bool,
) -> _Pass:
    """The pass: its row blocks shared among threads (:mod:`.block_threads`), each with
    its own buffers and sums, added at the end."""
    state = ctx.state
    groups = general._Groups()
    blocks = []
    rows = _block_rows(state.n_params)
    for chunk, labels in items:
        ids = _group_ids(groups, chunk, labels) if cov_type == "cluster" else None
        for start in range(0, chunk.X.shape[0], rows):
            block = slice(start, start + rows)
            blocks.append((chunk, block, None if ids is None else ids[block]))
    workers = thread_count(state.device, len(blocks))
    scores = len(groups) * state.n_targets * state.n_params * 8
    if cov_type == "cluster" and scores > _SCORES_BYTES:
        workers = 1  # one copy of large cluster scores
    size = min(rows, _rows(items))
    first = _buffers(ctx, design, probe, size)
    parts = [(_new_pass(state, cov_type, probe, fitted_rows, groups), first)] + [
        (_new_pass(state, cov_type, probe, fitted_rows, groups), _more_buffers(first))
        for _ in range(workers - 1)
    ]

    def step(part: tuple[_Pass, _Buffers], item: tuple[Chunk, slice, Any]) -> None:
        _block(ctx, part[0], item[0], item[1], part[1], cov_type, item[2])

    share_blocks(blocks, parts, step)
    return _combine([sums for sums, _ in parts])


def _block_rows(p: int) -> int:
    """Rows per block for ``p`` columns (see :data:`_BLOCK_VALUES`)."""
    return max(256, _BLOCK_VALUES // p)


def _new_pass(
    state: Any, cov_type: str, probe: torch.Tensor, fitted_rows: bool, groups: general._Groups
) -> _Pass:
    p, k, device = state.n_params, state.n_targets, state.device

    def zeros(*shape: int) -> torch.Tensor:
        return torch.zeros(*shape, dtype=torch.float64, device=device)

    return _Pass(
        zeros(k, p, p + probe.shape[1]),
        zeros(len(groups) if cov_type == "cluster" else 0, k, p),
        None if fitted_rows else zeros(state.R.shape[1]),
        None if fitted_rows else zeros(p, k),
        groups,
    )


def _combine(parts: list[_Pass]) -> _Pass:
    """The sums of the threads' passes."""
    total = parts[0]
    for part in parts[1:]:
        total.meat += part.meat
        total.scores += part.scores
        if total.column_sums is not None and part.column_sums is not None:
            total.column_sums += part.column_sums
        if total.target_sums is not None and part.target_sums is not None:
            total.target_sums += part.target_sums
        total.h_max = max(total.h_max, part.h_max)
        total.full_leverage = total.full_leverage or part.full_leverage
    return total


def _buffers(ctx: general._Context, design: bool, probe: torch.Tensor, size: int) -> _Buffers:
    state = ctx.state
    p = state.n_params

    def empty(columns: int) -> torch.Tensor:
        return torch.empty(size, columns, dtype=torch.float64, device=state.device)

    A = None
    if state.fit_intercept or bool(state.shift_x.any()):
        A = empty(p)
    b_s = _shifted_intercept(state, ctx.theta)
    products = _products(ctx, probe)
    z_product = not design and p <= _PRODUCT_MAX_COLUMNS
    if z_product:
        products = torch.cat([ctx.inv, products], 1)
    return _Buffers(
        A,
        None if design or z_product else empty(p),
        empty(p),
        empty(products.shape[1]),
        empty(state.n_targets),
        products,
        _rounding_small(state, ctx.theta, b_s),
        p if z_product else 0,
    )


def _more_buffers(first: _Buffers) -> _Buffers:
    """Another thread's buffers, shaped as ``first``'s; what every block multiplies by
    is shared (read only)."""

    def like(buffer: torch.Tensor | None) -> torch.Tensor | None:
        return None if buffer is None else torch.empty_like(buffer)

    W, P, E = torch.empty_like(first.W), torch.empty_like(first.P), torch.empty_like(first.E)
    return replace(first, A=like(first.A), Z=like(first.Z), W=W, P=P, E=E)


def _products(ctx: general._Context, probe: torch.Tensor) -> torch.Tensor:
    """[θ_s, u, R_s⁻¹V]: what each block's design rows are multiplied by, in one product."""
    state, theta, d = ctx.state, ctx.theta, ctx.d
    assert d is not None  # full rank
    theta_s = theta.clone()
    b_s = _shifted_intercept(state, theta)
    if b_s is not None:
        theta_s[0] = b_s
    return torch.cat([theta_s, ctx.inv @ d, ctx.inv @ probe], 1)


def _rows(items: Sequence[tuple[Chunk, Any]]) -> int:
    return max(1, max((chunk.X.shape[0] for chunk, _ in items), default=1))


def _group_ids(groups: general._Groups, chunk: Chunk, labels: Any) -> torch.Tensor:
    """The chunk's cluster labels as group ids (consecutive, shared by every chunk of the
    pass), mapped once for the whole chunk: per block, the distinct labels of each block
    were mapped again (2 s of Python per 5e6 rows with 1e5 clusters). Rows of weight 0
    are no observations: their labels name no group (their ids, -1, are not used)."""
    labels = np.asarray(labels)
    if len(labels) != chunk.X.shape[0]:
        raise InputError(
            f"groups has {len(labels)} labels for a chunk of {chunk.X.shape[0]} rows; give "
            "one group label per row"
        )
    w = chunk.sample_weight
    keep = None if w is None or bool((w > 0).all()) else (w > 0).cpu().numpy()
    observed = labels if keep is None else labels[keep]
    mapped = _dense_ids(groups, observed)
    if mapped is None:
        mapped = groups.map(observed)
    ids = mapped
    if keep is not None:
        ids = np.full(len(labels), -1, dtype=np.int64)
        ids[keep] = mapped
    return torch.as_tensor(ids, device=chunk.X.device)


def _dense_ids(groups: general._Groups, labels: np.ndarray) -> np.ndarray | None:
    """Integer labels of a range at most twice the rows: ids by a lookup table over the
    range, without sorting the labels (``None`` for other labels)."""
    if labels.dtype.kind not in "iu" or not len(labels):
        return None
    low, high = int(labels.min()), int(labels.max())
    if high - low > 2 * len(labels):
        return None
    offsets = labels - low if low else labels
    present = np.zeros(high - low + 1, dtype=bool)
    present[offsets] = True
    values = np.flatnonzero(present) + low  # the distinct labels, sorted
    table = np.zeros(len(present), dtype=np.int64)
    table[present] = [groups.ids.setdefault(v, len(groups.ids)) for v in values.tolist()]
    return table[offsets]


def _block(
    ctx: general._Context,
    sums: _Pass,
    chunk: Chunk,
    block: slice,
    buffers: _Buffers,
    cov_type: str,
    ids: torch.Tensor | None,
) -> None:
    """Adds one block of rows to ``sums``: over the design rows where ``buffers`` has no
    z buffer, else over the z rows. Each row block is read from X once; what follows
    works on it while it is in the cache."""
    state = ctx.state
    device, c0, k = state.device, int(state.fit_intercept), state.n_targets
    X = chunk.X[block].to(device=device, dtype=torch.float64)
    Y = chunk.Y[block].to(device=device, dtype=torch.float64)
    m = len(X)
    sw = None
    if chunk.sample_weight is not None:
        sw = chunk.sample_weight[block].to(device=device, dtype=torch.float64).sqrt()
        sw = (sw * ctx.weight_scale).unsqueeze(1)
    A = X
    if buffers.A is not None:  # [1, X − x₀], X − x₀ rounded as the fit formed it
        A = buffers.A[:m]
        torch.sub(X, state.shift_x, out=A[:, c0:])
        A[:, :c0].fill_(1.0)  # the ones (the last block's meat scaled A in place)
    P = torch.mm(A, buffers.products, out=buffers.P[:m])  # [(a R_s⁻¹,) a·θ_s, a·u, a·U]
    Z, P = P[:, : buffers.z_columns], P[:, buffers.z_columns :]
    E = _residuals(ctx, X, Y, P, sw, buffers.small, buffers.E[:m])
    if buffers.Z is None and not buffers.z_columns:  # design rows (unweighted)
        rows, factor, probe = A, None, P[:, 2 * k :]
    else:  # z = √w·a R_s⁻¹, and zV = √w·aU
        rows = _z_rows(ctx, A, Z, buffers.Z, sw)
        probe = P[:, 2 * k :] if sw is None else P[:, 2 * k :] * sw
        factor = _leverage_factor(sums, rows, cov_type) if cov_type in ("HC2", "HC3") else None
    _data_sums(ctx, sums, A, rows, Y, sw)
    own = buffers.A is not None or rows is not A  # rows in a buffer, not X itself
    if factor is not None:
        E = E * factor
    if cov_type == "cluster":
        assert ids is not None
        sums.meat[0, :, -probe.shape[1] :].addmm_(rows.T, probe)
        _cluster(sums, ids, sw, E, rows, buffers.W[:m], own)
        return
    _meat(sums, rows, E, probe, buffers.W[:m], own)


def _meat(
    sums: _Pass,
    rows: torch.Tensor,
    E: torch.Tensor,
    probe: torch.Tensor,
    W: torch.Tensor,
    own: bool,
) -> None:
    """Adds the probe's sums vᵀ(probe) beside the first target's meat, then per target
    Σ ẽᵢ²·vᵢvᵢᵀ as (ẽ·v)ᵀ(ẽ·v), the last target's rows scaled in place where they are
    ``own`` (a buffer of the pass, not the caller's X) and the others into ``W``. One
    block of scaled rows read twice by one product: on one thread, 44 ms per 1e6 × 21
    against 68 for vᵀ(ẽ²·v) written into W and the probe apart, 430 against 478 for
    vᵀ[ẽ²·v | probe] at 101 columns (docs/benchmarks.md, narrow designs). A symmetric
    rank-k update would take half the multiplications; torch has none, and OpenBLAS'
    through SciPy, with its own thread pool beside torch's, made the pass slower."""
    p = rows.shape[1]
    sums.meat[0, :, p:].addmm_(rows.T, probe)
    k = E.shape[1]
    for j in range(k):
        e = E[:, j : j + 1]
        scaled = rows.mul_(e) if own and j == k - 1 else torch.mul(rows, e, out=W)
        for start, end in _panels(p):
            sums.meat[j, start:end, start:p].addmm_(scaled[:, start:end].T, scaled[:, start:])


def _panels(p: int) -> list[tuple[int, int]]:
    """The column panels of a p' × p' meat (see :data:`_PANEL`)."""
    width = max(_PANEL, -(-p // _PANELS))
    return [(start, min(start + width, p)) for start in range(0, p, width)]


def _from_upper(meat: torch.Tensor) -> torch.Tensor:
    """The symmetric meats (k, p', p') whose upper block triangles ``meat`` holds."""
    meat = meat.clone()
    p = meat.shape[-1]
    for start, end in _panels(p):
        meat[:, end:, start:end] = meat[:, start:end, end:].transpose(1, 2)
    return meat


def _z_rows(
    ctx: general._Context,
    A: torch.Tensor,
    product: torch.Tensor,
    out: torch.Tensor | None,
    sw: torch.Tensor | None,
) -> torch.Tensor:
    """z = √w·a R_s⁻¹: the block's ``product`` a R_s⁻¹ (narrow designs, see
    :data:`_PRODUCT_MAX_COLUMNS`), or where ``out`` is given (a buffer) by a triangular
    solve with R_s (half the multiplications of the product with R_s⁻¹)."""
    Z = product
    if out is not None:
        Z = torch.linalg.solve_triangular(
            ctx.state.R_design, A, upper=True, left=False, out=out[: len(A)]
        )
    if sw is not None:
        Z *= sw
    return Z


def _data_sums(
    ctx: general._Context,
    sums: _Pass,
    A: torch.Tensor,
    rows: torch.Tensor,
    Y: torch.Tensor,
    sw: torch.Tensor | None,
) -> None:
    """The fingerprint of the rows (column sums, Qᵀỹ over the design or z ``rows``)
    where they are not the fitted ones (see :func:`~.covariance.check_same_data`)."""
    if sums.column_sums is None or sums.target_sums is None:
        return
    state = ctx.state
    Ys = _shifted_targets(state, Y, sw)
    sw1 = None if sw is None else sw[:, 0]
    sums.column_sums += general._shifted_column_sums(
        state, A[:, int(state.fit_intercept) :], Ys, sw1
    )
    sums.target_sums += rows.T @ Ys


def _residuals(
    ctx: general._Context,
    X: torch.Tensor,
    Y: torch.Tensor,
    P: torch.Tensor,
    sw: torch.Tensor | None,
    small: bool,
    out: torch.Tensor,
) -> torch.Tensor:
    """ẽ = √w·(e − a·u): the least-squares residuals of the block (see the module's
    docstring), from the shifted coordinates, e = (y − y₀) − a·θ_s, a·θ_s and a·u
    columns of one product ``P``; in float64 into the buffer ``out``."""
    state, theta = ctx.state, ctx.theta
    c0, k = int(state.fit_intercept), Y.shape[1]
    if sw is None and small:
        E = torch.sub(Y, state.shift_y, out=out)
        E -= P[:, :k]
    else:  # a block-wise bound, double-double where it fails
        E = general._block_residuals(X, Y, theta, c0, None if sw is None else sw[:, 0])
    E -= P[:, k : 2 * k]
    return E if sw is None else E * sw


def _rounding_small(state: Any, theta: torch.Tensor, b_s: torch.Tensor | None) -> bool:
    """Whether float64's rounding of the unweighted residuals e = ys − b_s − xsβ (shifted
    coordinates), at most (p + 2)·ε·mᵢ per row with mᵢ = |ysᵢ| + |b_s| + Σ|xsᵢⱼβⱼ|, is
    below 1e-11 of ‖e‖ in each target, over all the rows at once, from the state alone:
    ‖m‖ ≤ ‖ys‖ + √n·|b_s| + ‖Xs‖_F·‖β‖ (Cauchy–Schwarz row by row), the norms of the
    columns of R (Q is orthogonal), and ‖e‖ ≥ the least-squares residual norm, that of
    R's residual block. (b_s itself is rounded once, by ε·|b_s|, within the bound.)"""
    c0, p = int(state.fit_intercept), state.n_params
    R = state.R
    ys = torch.linalg.vector_norm(R[:, p:], dim=0)
    xs = torch.linalg.vector_norm(R[:, c0:p])
    m = ys + xs * torch.linalg.vector_norm(theta[c0:], dim=0)
    if b_s is not None:
        m += math.sqrt(state.n_samples) * b_s.abs()
    e = torch.linalg.vector_norm(R[p:, p:], dim=0)
    bound = (state.n_features + 2) * general._EPS * m
    return bool((bound <= general._RESIDUAL_DIGITS * e).all())


def _shifted_intercept(state: Any, theta: torch.Tensor) -> torch.Tensor | None:
    """b_s = b − y₀ + x₀ᵀβ (k,), formed in double-double and rounded once: it cancels
    where x₀ is large against the spread of X."""
    if not state.fit_intercept:
        return None
    beta = theta[1:]
    p, e = dd.two_prod(state.shift_x.to(theta).unsqueeze(1), beta)
    hi, lo = dd.dd_sum(p, e, 0)
    hi, lo = dd.dd_add(hi, lo, theta[0], torch.zeros_like(hi))
    hi, lo = dd.dd_add(hi, lo, -state.shift_y.to(theta), torch.zeros_like(hi))
    return hi + lo


def _shifted_targets(state: Any, Y: torch.Tensor, sw: torch.Tensor | None) -> torch.Tensor:
    """√w·(y − y₀)."""
    Ys = Y - state.shift_y
    return Ys if sw is None else Ys * sw


def _leverage_factor(sums: _Pass, Z: torch.Tensor, cov_type: str) -> torch.Tensor:
    """1/√(1 − h) (HC2) or 1/(1 − h) (HC3) per row, h = ‖z‖² (S = I, bounded by the
    probe); rows of leverage 1 flag the meat (HC2/HC3 undefined) and count as 0. One
    reduction decides both (some h > 1 − 1e-8 iff max h is)."""
    # zᵢ·zᵢ as a batch of 1 × p' by p' × 1 products: what einsum("ij,ij->i") runs,
    # without its dispatch (15% of it per 1e6 × 21), the same numbers
    h = torch.bmm(Z.unsqueeze(1), Z.unsqueeze(2)).reshape(-1, 1)
    if len(h):
        h_max = float(h.max())
        if h_max > 1 - 1e-8:
            sums.full_leverage = True
            h = h.clamp(max=0.0)  # the result is discarded; avoid 0/0 meanwhile
            h_max = 0.0  # the clamped h's largest (each h ≥ 0)
        sums.h_max = max(sums.h_max, h_max)
    return (1 - h).rsqrt() if cov_type == "HC2" else 1 / (1 - h)


def _cluster(
    sums: _Pass,
    ids: torch.Tensor,
    sw: torch.Tensor | None,
    E: torch.Tensor,
    rows: torch.Tensor,
    W: torch.Tensor,
    own: bool,
) -> None:
    """Adds the block's scores ẽᵢ·vᵢ to their clusters' (zero-weight rows are not
    observations: they name no cluster), by ``index_add_`` of the rows ẽᵢ·vᵢ (scaled
    in place for the last target where the rows are ``own``, as in :func:`_meat`, else
    written into the buffer ``W``) at one torch thread per block: a sparse (groups ×
    rows) product costs groups × p' per block on top, and at two threads per kernel
    ``index_add_`` was the slower (docs/benchmarks.md)."""
    if sw is not None and not bool((sw > 0).all()):
        keep = sw[:, 0] > 0
        ids, E, rows = ids[keep], E[keep], rows[keep]
        W = W[: len(ids)]
    k = E.shape[1]
    for j in range(k):
        e = E[:, j : j + 1]
        weighted = rows.mul_(e) if own and j == k - 1 else torch.mul(rows, e, out=W)
        sums.scores[:, j].index_add_(0, ids, weighted)


def _finish(
    sums: _Pass, ctx: general._Context, cov_type: str, design: bool, probe: torch.Tensor
) -> general.Meat | None:
    """The meat in the z coordinates, or ``None`` where the probe bounds ‖S − I‖ (or the
    one-pass leverages' error) above what S = I allows."""
    inv, p = ctx.inv, ctx.state.n_params
    SV = sums.meat[0, :, p:]
    gap, bound = general._gram_gap(inv.T @ SV if design else SV, probe)
    h = sums.h_max
    error = 2 * bound * h / (1 - h) if h < 1 else 0.0
    if bound > general._GRAM_DIGITS or error > general._LEVERAGE_DIGITS:
        return None
    meat, n_groups = _from_upper(sums.meat[:, :, :p]), None
    if cov_type == "cluster":
        scores = sums.scores @ inv if design else sums.scores
        meat = torch.stack([scores[:, j].T @ scores[:, j] for j in range(scores.shape[1])])
        n_groups = scores.shape[0]
    elif design:
        meat = inv.T @ meat @ inv
    target_sums = sums.target_sums
    if design and target_sums is not None:
        target_sums = inv.T @ target_sums
    return general.Meat(
        meat,
        n_groups=n_groups,
        column_sums=sums.column_sums,
        target_sums=target_sums,
        gram=None,
        gram_gap=gap,
        gram_bound=bound,
        full_leverage=sums.full_leverage,
        leverage_error=error,
    )
