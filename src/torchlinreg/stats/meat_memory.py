"""The meat of a robust covariance over rows held in memory, in as few flops as the
maths allows: :func:`~.meat.robust_meat` takes it where it applies (in memory, one
process, a full-rank design whose z rows need no double-double refinement) and falls
back on its general pass otherwise.

Per block of B rows, one matrix product of B·p'² multiply-adds forms the meat,
Σ cᵢvᵢvᵢᵀ = WᵀW with W's rows √cᵢ·vᵢ, W written into one buffer reused block after
block (a fresh block of megabytes is paid in page faults). A symmetric rank-k update
would need half the flops; torch exposes none, and OpenBLAS' dsyrk (through SciPy)
measured no faster than MKL's GEMM at p' = 101 (docs/benchmarks.md).

* HC0, HC1 and cluster need no leverages, hence no z rows: the meat is formed over the
  design rows aᵢ = [1, xᵢ] themselves, M_a = Σ ẽᵢ²·aᵢaᵢᵀ (cluster: the scores
  Σ_{i∈g} ẽᵢaᵢ), and brought to the z coordinates once, R_s⁻ᵀ M_a R_s⁻¹ (p'³ flops).
  That costs digits as ε·κ² (κ: the condition number of the column-scaled design)
  where the z rows cost ε·κ (:mod:`.covariance`), so it is taken only where
  ε·κ² ≤ :data:`~torchlinreg.solvers.gram.GRAM_ACCURACY`, the bound under which the
  fit itself accepts its Gram matrix, and where the state is unshifted (x₀ = 0, as the
  Gram fit forms it); elsewhere the z rows are formed.
* HC2 and HC3 need hᵢ = ‖zᵢ‖²: z = a R_s⁻¹ per block (one product), the meat over z.
* The residuals are the least-squares ones, e − a·u with u = R_s⁻¹d (d: θ's distance
  from the state's solution, :func:`~.meat.projection`), both products in one, X·[β, u].
  Float64 residuals are kept where the cheap bound (p + 2)·ε·(‖y‖ + √B·|b| + ‖X‖_F‖β‖)
  on their rounding stays below 1e-11 of their norm; else the block goes through
  :func:`~.meat._block_residuals` (its sharper bound, double-double where needed).
* S = Σ zᵀz is probed as in :mod:`.meat` (SV, eight columns: a sixth of the meat's
  flops); a probe that finds ‖S − I‖ above what S = I allows sends the data to the
  general pass, which forms S.
* ``fitted_rows``: the pass reads the very rows the model was fitted on (fit-time
  covariance), so the fingerprints that check it (column and target sums, see
  :func:`~.covariance.check_same_data`) are not formed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data.chunks import Chunk
from ..errors import InputError
from ..solvers import dd
from ..solvers.gram import GRAM_ACCURACY
from ..solvers.solve import scaled_condition
from . import meat as general

# Rows per block: 16,384 × 101 float64 values (13 MB) per buffer. Reused buffers cost
# no page faults, and longer blocks keep the products near the GEMM's peak.
_BLOCK_VALUES = 1 << 21


@dataclass(frozen=True)
class _Buffers:
    """Reused block buffers: W (rows √cᵢ·vᵢ of the meat's product), X − x₀ (None where
    x₀ = 0), z (None over the design rows); and the shifted intercept b − y₀ + x₀ᵀβ."""

    W: torch.Tensor
    Xs: torch.Tensor | None
    Z: torch.Tensor | None
    b_s: torch.Tensor | None


@dataclass
class _Pass:
    """The running sums of one in-memory pass (see :class:`~.meat.Meat`)."""

    meat: torch.Tensor  # (k, p', p'), in the design's or the z coordinates
    probe: torch.Tensor  # Σ aᵀ(aU) (design) or Σ zᵀ(zV) (z), (p', 8)
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
        and general._EPS * scaled_condition(state.R_design) ** 2 <= GRAM_ACCURACY
    )
    probe = general._probe_vectors(state.n_params, state.device)
    sums = _run(items, ctx, cov_type, design, probe, fitted_rows)
    return _finish(sums, ctx, cov_type, design, probe)


def _run(
    items: Sequence[tuple[Chunk, Any]],
    ctx: general._Context,
    cov_type: str,
    design: bool,
    probe: torch.Tensor,
    fitted_rows: bool,
) -> _Pass:
    state = ctx.state
    p, k, device = state.n_params, state.n_targets, state.device

    def zeros(*shape: int) -> torch.Tensor:
        return torch.zeros(*shape, dtype=torch.float64, device=device)

    sums = _Pass(
        zeros(k, p, p),
        zeros(p, probe.shape[1]),
        zeros(0, k, p),
        None if fitted_rows else zeros(state.R.shape[1]),
        None if fitted_rows else zeros(p, k),
        general._Groups(),
    )
    # The probe over the design rows: Σ aᵀ(a·R_s⁻¹V), R_s⁻ᵀ applied at the end.
    U = ctx.inv @ probe if design else probe
    d = ctx.d
    assert d is not None  # full rank
    u = ctx.inv @ d  # (p', k): a·u is the residuals' projection
    rows = max(256, _BLOCK_VALUES // p)
    size = min(rows, _rows(items))

    def empty(columns: int) -> torch.Tensor:
        return torch.empty(size, columns, dtype=torch.float64, device=device)

    shifted = bool(state.shift_x.any())
    buffers = _Buffers(
        empty(p),
        empty(state.n_features) if shifted else None,
        None if design else empty(p),
        _shifted_intercept(state, ctx.theta),
    )
    for chunk, labels in items:
        labels = _labels(chunk, labels, cov_type)
        for start in range(0, chunk.X.shape[0], rows):
            block = slice(start, start + rows)
            block_labels = None if labels is None else labels[block]
            _block(ctx, sums, chunk, block, buffers, cov_type, U, u, block_labels)
    return sums


def _rows(items: Sequence[tuple[Chunk, Any]]) -> int:
    return max(1, max((chunk.X.shape[0] for chunk, _ in items), default=1))


def _labels(chunk: Chunk, labels: Any, cov_type: str) -> Any:
    if cov_type != "cluster":
        return None
    labels = np.asarray(labels)
    if len(labels) != chunk.X.shape[0]:
        raise InputError(
            f"groups has {len(labels)} labels for a chunk of {chunk.X.shape[0]} rows; give "
            "one group label per row"
        )
    return labels


def _block(
    ctx: general._Context,
    sums: _Pass,
    chunk: Chunk,
    block: slice,
    buffers: _Buffers,
    cov_type: str,
    U: torch.Tensor,
    u: torch.Tensor,
    labels: Any,
) -> None:
    """Adds one block of rows to ``sums``: over the design rows where ``buffers`` has no
    second (z) buffer, else over the z rows."""
    state = ctx.state
    device, c0 = state.device, int(state.fit_intercept)
    X = chunk.X[block].to(device=device, dtype=torch.float64)
    Y = chunk.Y[block].to(device=device, dtype=torch.float64)
    sw = None
    if chunk.sample_weight is not None:
        sw = chunk.sample_weight[block].to(device=device, dtype=torch.float64).sqrt()
        sw = (sw * ctx.weight_scale).unsqueeze(1)
    Xs = X
    if buffers.Xs is not None:  # X − x₀ rounded, as the fit formed it
        Xs = torch.sub(X, state.shift_x, out=buffers.Xs[: len(X)])
    E = _residuals(ctx, X, Y, Xs, sw, u, buffers.b_s)
    if sums.column_sums is not None:
        Ys = _shifted_targets(state, Y, sw)
        sums.column_sums += general._shifted_column_sums(
            state, Xs, Ys, None if sw is None else sw[:, 0]
        )
    if buffers.Z is None:  # rows √w·[1, x − x₀]: √w is carried by the row factors below
        _design_sums(ctx, sums, Xs, Y, sw, U)
        rows, lead, factor = Xs, bool(c0), sw
    else:
        rows, lead, factor = _z_sums(ctx, sums, Xs, Y, sw, U, buffers.Z), False, None
        if cov_type in ("HC2", "HC3"):
            factor = _leverage_factor(sums, rows, cov_type)
    W = buffers.W[: len(X)]
    if cov_type == "cluster":
        _cluster(sums, labels, sw, E if factor is None else E * factor, rows, lead, W)
        return
    for j in range(E.shape[1]):
        r = E[:, j : j + 1].abs()
        _fill(W, rows, r if factor is None else r * factor, lead)
        sums.meat[j].addmm_(W.T, W)


def _fill(W: torch.Tensor, rows: torch.Tensor, r: torch.Tensor, lead: bool) -> None:
    """W = r·[1, rows] (``lead``: the intercept's column of ones first) or r·rows."""
    if lead:
        W[:, :1] = r
        torch.mul(rows, r, out=W[:, 1:])
    else:
        torch.mul(rows, r, out=W)


def _residuals(
    ctx: general._Context,
    X: torch.Tensor,
    Y: torch.Tensor,
    Xs: torch.Tensor,
    sw: torch.Tensor | None,
    u: torch.Tensor,
    b_s: torch.Tensor | None,
) -> torch.Tensor:
    """ẽ = √w·(e − a·u): the least-squares residuals of the block (see the module's
    docstring), in the shifted coordinates, e = (y − y₀) − b_s − (x − x₀)β and
    a·u = (x − x₀)u₁ + u₀ from one product (X − x₀)·[β, u₁]."""
    state, theta = ctx.state, ctx.theta
    c0, k = int(state.fit_intercept), Y.shape[1]
    P = Xs @ torch.cat([theta[c0:], u[c0:]], 1)
    E = Y - state.shift_y - P[:, :k]
    if b_s is not None:
        E -= b_s
    if sw is not None or not _rounding_small(Xs, Y - state.shift_y, E, theta[c0:], b_s):
        E = general._block_residuals(X, Y, theta, c0, None if sw is None else sw[:, 0])
    E -= P[:, k:]
    if c0:
        E -= u[0]
    return E if sw is None else E * sw


def _rounding_small(
    Xs: torch.Tensor, Ys: torch.Tensor, E: torch.Tensor, beta: torch.Tensor, b_s: Any
) -> bool:
    """Whether float64's rounding of e = ys − b_s − xsβ, at most (p + 2)·ε·mᵢ per row
    with mᵢ = |ysᵢ| + |b_s| + Σ|xsᵢⱼβⱼ|, is below 1e-11 of ‖e‖ in each target, by the
    bound ‖m‖ ≤ ‖ys‖ + √B·|b_s| + ‖Xs‖_F·‖β‖ (Cauchy–Schwarz row by row): no |X| to
    form. (b_s itself is rounded once, by ε·|b_s|, within the same bound.)"""
    m = torch.linalg.vector_norm(Ys, dim=0)
    m += torch.linalg.vector_norm(Xs) * torch.linalg.vector_norm(beta, dim=0)
    if b_s is not None:
        m += math.sqrt(len(Xs)) * b_s.abs()
    bound = (Xs.shape[1] + 2) * general._EPS * m
    return bool((bound <= general._RESIDUAL_DIGITS * torch.linalg.vector_norm(E, dim=0)).all())


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


def _design_sums(
    ctx: general._Context,
    sums: _Pass,
    X: torch.Tensor,
    Y: torch.Tensor,
    sw: torch.Tensor | None,
    U: torch.Tensor,
) -> None:
    """The probe Σ w·aᵀ(aU) and, where checked, Σ w·aᵀ(y − y₀), over the design rows."""
    c0 = int(ctx.state.fit_intercept)
    T = X @ U[c0:]
    if c0:
        T += U[0]
    _add_design(sums.probe, X, T if sw is None else T * sw**2, c0)
    if sums.target_sums is not None:
        Ys = _shifted_targets(ctx.state, Y, sw)
        _add_design(sums.target_sums, X, Ys if sw is None else Ys * sw, c0)


def _add_design(total: torch.Tensor, X: torch.Tensor, T: torch.Tensor, c0: int) -> None:
    """total += [1, X]ᵀT (XᵀT without an intercept)."""
    if c0:
        total[0] += T.sum(0)
    total[c0:] += X.T @ T


def _z_sums(
    ctx: general._Context,
    sums: _Pass,
    Xs: torch.Tensor,
    Y: torch.Tensor,
    sw: torch.Tensor | None,
    U: torch.Tensor,
    buffer: torch.Tensor,
) -> torch.Tensor:
    """z = √w·[1, x − x₀]R_s⁻¹ of the block (into ``buffer``), with the probe Σ zᵀ(zV)
    and, where checked, Σ zᵀ√w(y − y₀) added."""
    c0 = int(ctx.state.fit_intercept)
    Z = torch.matmul(Xs, ctx.inv[c0:], out=buffer[: len(Xs)])
    if c0:
        Z += ctx.inv[0]
    if sw is not None:
        Z *= sw
    sums.probe += Z.T @ (Z @ U)
    if sums.target_sums is not None:
        sums.target_sums += Z.T @ _shifted_targets(ctx.state, Y, sw)
    return Z


def _leverage_factor(sums: _Pass, Z: torch.Tensor, cov_type: str) -> torch.Tensor:
    """1/√(1 − h) (HC2) or 1/(1 − h) (HC3) per row, h = ‖z‖² (S = I, bounded by the
    probe); rows of leverage 1 flag the meat (HC2/HC3 undefined) and count as 0."""
    h = torch.einsum("ij,ij->i", Z, Z).unsqueeze(1)
    if bool((h > 1 - 1e-8).any()):
        sums.full_leverage = True
        h = h.clamp(max=0.0)  # the result is discarded; avoid 0/0 meanwhile
    if len(h):
        sums.h_max = max(sums.h_max, float(h.max()))
    return (1 - h).rsqrt() if cov_type == "HC2" else 1 / (1 - h)


def _cluster(
    sums: _Pass,
    labels: Any,
    sw: torch.Tensor | None,
    E: torch.Tensor,
    rows: torch.Tensor,
    lead: bool,
    W: torch.Tensor,
) -> None:
    """Adds the block's scores ẽᵢ·vᵢ to their clusters' (zero-weight rows are not
    observations: they name no cluster)."""
    if sw is not None and not bool((sw > 0).all()):
        keep = sw[:, 0] > 0
        labels, E, rows = labels[keep.cpu().numpy()], E[keep], rows[keep]
    ids = sums.groups.map(labels)
    grow = len(sums.groups.ids) - sums.scores.shape[0]
    if grow:
        more = sums.scores.new_zeros(grow, *sums.scores.shape[1:])
        sums.scores = torch.cat([sums.scores, more])
    index = torch.as_tensor(ids, device=E.device)
    W = W[: len(E)]
    for j in range(E.shape[1]):
        _fill(W, rows, E[:, j : j + 1], lead)
        sums.scores[:, j].index_add_(0, index, W)


def _finish(
    sums: _Pass, ctx: general._Context, cov_type: str, design: bool, probe: torch.Tensor
) -> general.Meat | None:
    """The meat in the z coordinates, or ``None`` where the probe bounds ‖S − I‖ (or the
    one-pass leverages' error) above what S = I allows."""
    inv = ctx.inv
    gap, bound = general._gram_gap(inv.T @ sums.probe if design else sums.probe, probe)
    h = sums.h_max
    error = 2 * bound * h / (1 - h) if h < 1 else 0.0
    if bound > general._GRAM_DIGITS or error > general._LEVERAGE_DIGITS:
        return None
    meat, n_groups = sums.meat, None
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
