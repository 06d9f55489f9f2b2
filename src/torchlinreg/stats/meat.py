"""The data pass of a robust covariance: the meat of the sandwich, in the orthonormal
coordinates z = ã R_s⁻¹ (the rows of Q), and a fingerprint of the data it saw.

Where precision goes on a design with a large offset (x ≈ 10⁶ with x², κ ≈ 10⁷), and
what keeps it:

* the residuals y − b − Xβ cancel against the intercept: double-double where they do;
* the model's float64 coefficients are not the exact least-squares ones (rounding θ
  alone moves the residuals by ε·Σ|aⱼθⱼ|, 10⁻⁶ of them here): the residuals are
  projected onto the complement of the column space, ẽ − z·d with d = Qᵀẽ from the
  state, which is what the least-squares residuals are;
* z rows from R_s⁻¹ in float64 carry errors of ε·κ: they come from the shifted data
  X − x₀ (formed exactly, as a double-double) refined once in double-double, and the
  meat is taken relative to S = Σ zᵀz (= I up to R's own rounding, also ε·κ):
  R_s⁻¹ S⁻¹ M S⁻¹ R_s⁻ᵀ is exactly (AᵀA)⁻¹ Aᵀ C A (AᵀA)⁻¹ for any R_s;
* leverages h = z S⁻¹ zᵀ: S is known after the pass, so in-memory data are passed twice
  where the one-pass leverages ‖z‖² could cost digits.

S costs a p'×p' product per row block, as much as the meat. Where ‖S − I‖ is far below
what it would correct (ε·κ small; 4e-14 at 1e6 × 100), in-memory passes measure it by
probing instead, ‖(S − I)V‖ for a few random vectors V, at a sixth of the cost, and take
S = I; a probe that finds more passes the data again for S. Streamed passes, read once
and bound by reading, always form S.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..data.chunks import Chunk
from ..errors import InputError
from ..solvers import dd
from ..solvers.solve import design_conditioning
from ..solvers.state import LeastSquaresState
from .cov_types import missing_label
from .covariance import pairing_decides, triangular_inverse
from .scores import LabelIds

if TYPE_CHECKING:
    from ..distributed.group import Group

# Row blocks of about 4 MB: a block and its temporaries (z, weighted z) stay in the
# cache and are served from the heap. At 1e6 × 100 the pass took 2.3 s in blocks of
# 65,536 rows (52 MB each: every temporary is a fresh mapping, paid in page faults)
# and 1.4 s in blocks of 4,096.
_BLOCK_ELEMENTS = 1 << 19
_EPS = float(torch.finfo(torch.float64).eps)
_RESIDUAL_DIGITS = 1e-11  # relative accuracy asked of the residuals
# z rows are refined in double-double when ε·κ(R_s) exceeds this (κ > 4.5e5): the
# refinement costs p double-double passes over a block (~30·p² flops a row: 4 s for
# 1e5 rows × 31 columns, against 0.15 s without), and below this the ε·κ that z
# carries leaves, S-corrected, ~0.1·ε·κ ≤ 1e-11 in the covariance (measured at
# κ = 1.7e6 and 1.7e7: 3e-11 and 3e-10 unrefined).
_Z_DIGITS = 1e-10
# A second pass for HC2/HC3 where the one-pass leverages may cost more than this.
_LEVERAGE_DIGITS = 1e-12
# S = I is taken, uncorrected, where ‖S − I‖₂ is below this: the meat moves by about
# twice as much, relative (the accuracy asked of the residuals, _RESIDUAL_DIGITS).
_GRAM_DIGITS = 1e-11
# The probe: ‖(S − I)V‖_F² / r for r standard normal columns has the mean ‖S − I‖_F²
# and falls below 1/100 of it with probability ≤ P(χ²₈ < 0.08) = 1.0e-7 (S − I of rank
# one is the worst case), so ten times the estimate bounds ‖S − I‖₂ but for that chance.
# The chance is over V, which is fixed (seeded by p′): for given data the probe either
# bounds ‖S − I‖ or not, the same in every run.
_PROBES = 8
_PROBE_MARGIN = 10.0


@dataclass
class Meat:
    """The middle of a sandwich covariance, per target (k, p', p'), from a data pass,
    in the orthonormal coordinates of the exact data (S⁻¹ M S⁻¹ of the z rows)."""

    matrices: torch.Tensor
    n_groups: int | None = None  # cluster: groups holding at least one observation
    # Σ w·[1, X − x₀, Y − y₀]² per column over the pass: equals the column norms² of the
    # state's R when the pass sees the fitted rows (Q is orthogonal).
    column_sums: torch.Tensor | None = None
    # Σ zᵢᵀ·√wᵢ(yᵢ − y₀) (p', k) and S = Σ zᵢᵀzᵢ: Qᵀỹ and QᵀQ, which equal the state's
    # R target block and I when x and y rows are paired as they were fitted; None
    # where R_s is singular.
    target_sums: torch.Tensor | None = None
    gram: torch.Tensor | None = None  # None where probed (see the module's docstring)
    # ‖S − I‖_F (the probe's estimate of it where probed) and a bound on ‖S − I‖₂
    gram_gap: float = 0.0
    gram_bound: float = 0.0
    full_leverage: bool = False  # some row has leverage 1 (HC2/HC3 undefined)
    leverage_error: float = 0.0  # bound on the relative error leverages leave in M


class _Groups(LabelIds):
    """Maps cluster labels, chunk by chunk, to consecutive group ids; missing labels
    refused."""

    def map(self, labels: np.ndarray) -> np.ndarray:
        if labels.dtype.kind == "f" and np.isnan(labels).any():
            raise InputError("groups holds missing labels (NaN); fill them in or drop those rows")
        if labels.dtype == object and any(missing_label(v) for v in labels.tolist()):
            raise InputError(
                "groups holds missing labels (None, NaN or NA); fill them in or drop those rows"
            )
        return super().map(labels)


def _block_residuals(
    X: torch.Tensor, Y: torch.Tensor, theta: torch.Tensor, c0: int, sw: torch.Tensor | None
) -> torch.Tensor:
    """e = y − b − Xβ, to ≥ 11 digits whatever the cancellation.

    In float64 each eᵢ is good to (p + 2)·ε·mᵢ, mᵢ = |yᵢ| + |b| + Σ|xᵢⱼβⱼ|. When that
    bound, in the weighted 2-norm, exceeds 1e-11 of ‖e‖ (a large offset cancelling
    against the intercept: x ≈ 10⁶ with x²), the residuals are recomputed in
    double-double, exact before the final rounding but ~50 times a matrix product.
    """
    beta = theta[c0:]
    E = Y - X @ beta
    magnitude = Y.abs() + X.abs() @ beta.abs()
    if c0:
        E -= theta[0]
        magnitude += theta[0].abs()
    w = 1.0 if sw is None else sw.unsqueeze(1)
    bound = (X.shape[1] + 2) * _EPS * torch.linalg.vector_norm(magnitude * w, dim=0)
    if bool((bound <= _RESIDUAL_DIGITS * torch.linalg.vector_norm(E * w, dim=0)).all()):
        return E
    hi, lo = dd.residual(X, beta, Y, theta[0].expand_as(Y) if c0 else None)
    return hi + lo


def projection(state: LeastSquaresState, theta: torch.Tensor) -> torch.Tensor:
    """d = Qᵀ√w(y − Aθ) = R_target − R_design·θ_s (p', k), in double-double: θ's
    distance from the state's least-squares solution, in the z coordinates. The shifted
    intercept b_s = b − y₀ + x₀ᵀβ cancels when x₀ is large, hence double-double."""
    beta = theta[int(state.fit_intercept) :]
    hi, lo = beta, torch.zeros_like(beta)
    if state.fit_intercept:
        p, e = dd.two_prod(state.shift_x.to(theta).unsqueeze(1), beta)
        bh, bl = dd.dd_sum(p, e, 0)
        bh, bl = dd.dd_add(bh, bl, theta[0], torch.zeros_like(bh))
        bh, bl = dd.dd_add(bh, bl, -state.shift_y.to(theta), torch.zeros_like(bh))
        hi, lo = torch.cat([bh.unsqueeze(0), hi]), torch.cat([bl.unsqueeze(0), lo])
    R = state.R_design.unsqueeze(2)
    p, e = dd.two_prod(R, hi.unsqueeze(0))  # (p', p', k) products R_ij·θ_j
    ph, pl = dd.dd_sum(p, e + R * lo.unsqueeze(0), 1)
    dh, dl = dd.dd_add(state.R_target, torch.zeros_like(ph), -ph, -pl)
    return dh + dl


def robust_meat(
    items: Iterable[tuple[Chunk, Any]],
    state: LeastSquaresState,
    theta: torch.Tensor,
    cov_type: str,
    weight_scale: float = 1.0,
    group: Group | Parts | None = None,
    fitted_rows: bool = False,
) -> Meat:
    """One pass over the data for HC0–HC3 or cluster meats (two for HC2/HC3 on
    in-memory data where the leverages need S).

    With ẽ the least-squares residuals √w·e and zᵢ = √wᵢ·[1, xᵢ − x₀] R_s⁻¹ (R_s the
    state's shifted design factor: the same Q as the unshifted design, without the
    cancellation of large offsets): HC0/HC1 use Σ ẽᵢ² zᵢzᵢᵀ; HC2 divides ẽᵢ² by
    (1 − hᵢ), HC3 by (1 − hᵢ)²; cluster uses Σ_g s_g s_gᵀ with s_g = Σ_{i∈g} zᵢẽᵢ over
    the groups that hold an observation (a zero-weight row is not one). ``items`` are
    (chunk, group labels) pairs, the labels ``None`` unless ``cov_type`` is
    ``"cluster"``. With ``group`` (a :class:`~torchlinreg.distributed.group.Group`)
    each rank passes over its own rows and every rank gets the meat of all of them;
    with :class:`Parts` (``items`` then unused) each part is passed where it lies.
    ``weight_scale`` (a power of two) multiplies every √w, as the state's
    R was scaled (:func:`~torchlinreg.stats.inference.summarize` does so for weights
    whose sums of squares overflow). ``fitted_rows``: ``items`` are the very rows the
    model was fitted on (fit time), so the sums that check it are not formed. In-memory
    passes in one process go through :func:`~.meat_memory.memory_meat` where it applies.
    """
    theta = theta.to(device=state.device, dtype=torch.float64)
    inv = triangular_inverse(state.R_design)  # shifted coordinates
    full_rank = bool(torch.isfinite(inv).all())
    ctx = _Context(state, inv, theta, weight_scale, full_rank)
    if group is None:
        from .meat_memory import memory_meat

        fast = memory_meat(items, ctx, cov_type, fitted_rows)
        if fast is not None:
            return fast
    again = isinstance(items, Sequence)  # in memory: passing again is cheap
    if isinstance(group, Parts):
        again = True  # as in memory: the parts are passed again where they lie
    elif group is not None:
        again = all(group.gather_objects(again))
    meat = _pass(items, ctx, cov_type, None, not again or ctx.refine, group)
    leverages = cov_type in ("HC2", "HC3") and not meat.full_leverage
    inexact = meat.gram_bound > _GRAM_DIGITS or (
        leverages and meat.leverage_error > _LEVERAGE_DIGITS
    )
    # A probe that finds S far from I beyond the pairing tolerance is other data: the
    # check refuses it, no need to pass again.
    gap = meat.gram_gap
    if meat.gram is None and inexact and pairing_decides(state, lambda tol: gap <= tol):
        meat = _pass(items, ctx, cov_type, None, True, group)
    if leverages and meat.leverage_error > _LEVERAGE_DIGITS and again and meat.gram is not None:
        meat = _pass(items, ctx, cov_type, torch.linalg.inv(meat.gram), True, group)
    if meat.gram is None or not bool(torch.isfinite(meat.gram).all()):
        return meat  # probed: S = I to _GRAM_DIGITS, or R_s singular
    # In the coordinates of the exact data: S⁻¹ M S⁻¹ (see the module's docstring).
    S_inv = torch.linalg.inv(meat.gram)
    return replace(meat, matrices=S_inv @ meat.matrices @ S_inv)


@dataclass(frozen=True)
class _Context:
    """What every block of a pass needs."""

    state: LeastSquaresState
    inv: torch.Tensor  # R_s⁻¹
    theta: torch.Tensor
    weight_scale: float
    full_rank: bool

    @property
    def refine(self) -> bool:
        # The cached bracket of κ decides (κ itself only where the threshold is inside).
        conditioning = design_conditioning(self.state)
        return self.full_rank and conditioning.decide(lambda kappa: _EPS * kappa > _Z_DIGITS)

    @property
    def d(self) -> torch.Tensor | None:
        return projection(self.state, self.theta) if self.full_rank else None


def _pass(
    items: Iterable[tuple[Chunk, Any]],
    ctx: _Context,
    cov_type: str,
    S_inv: torch.Tensor | None,
    gram: bool,
    group: Group | Parts | None = None,
) -> Meat:
    """One pass: the meat with leverages from ``S_inv`` (one-pass ‖z‖² where None), and
    S formed where ``gram`` (else probed); with ``group``, each rank (or part) passes
    over its own rows and the sums are taken over every one of them."""
    gram = gram and ctx.full_rank
    probe = None if gram else _probe_vectors(ctx.state.n_params, ctx.state.device)
    accumulate = functools.partial(
        _accumulate, ctx=ctx, cov_type=cov_type, S_inv=S_inv, probe=probe
    )
    if group is None:
        sums = accumulate(items)
    elif isinstance(group, Parts):
        sums = group.sums(accumulate)
    else:
        sums = _across(group, group.agree(lambda: accumulate(items)))
    sums = collapse(sums)
    h_max = sums.h_max
    gap, bound = _gram_gap(sums.S, probe)
    error = 2 * bound * h_max / (1 - h_max) if S_inv is None and h_max < 1 else 0.0
    return Meat(
        sums.meat,
        n_groups=sums.n_groups,
        column_sums=sums.column_sums,
        target_sums=sums.target_sums if ctx.full_rank else None,
        gram=sums.S if gram else None,
        gram_gap=gap,
        gram_bound=bound,
        full_leverage=sums.full_leverage,
        leverage_error=error,
    )


class Parts:
    """Rows held in parts that this process does not hold (the partitions of a Dask
    collection, :mod:`torchlinreg.distributed.dask`), given to :func:`robust_meat` as
    ``group``. The data may be passed again (each pass computes the parts anew)."""

    def sums(self, accumulate: Callable[[Iterable[tuple[Chunk, Any]]], _Sums]) -> _Sums:
        """The sums of every part: ``accumulate`` applied to each part's (chunk, group
        labels) pairs where it lies, the results :func:`combine`-d in part order and
        :func:`collapse`-d, so that only O(k·p'²) numbers come back."""
        raise NotImplementedError


@dataclass
class _Sums:
    """What a pass adds up over the rows (see :class:`Meat`); ``scores`` (groups, k, p')
    of the cluster labels ``labels``, in the order first seen. ``n_groups`` is set (and
    the scores dropped) once the cluster meat is formed from them (:func:`collapse`)."""

    meat: torch.Tensor
    column_sums: torch.Tensor
    target_sums: torch.Tensor
    S: torch.Tensor  # S, or SV where probed
    scores: torch.Tensor
    labels: list[Any]
    h_max: float = 0.0
    full_leverage: bool = False
    cluster: bool = False
    n_groups: int | None = None


def _accumulate(
    items: Iterable[tuple[Chunk, Any]],
    ctx: _Context,
    cov_type: str,
    S_inv: torch.Tensor | None,
    probe: torch.Tensor | None,
) -> _Sums:
    state = ctx.state
    p, k = state.n_params, state.n_targets
    device = state.device
    refine, d = ctx.refine, ctx.d
    zeros = functools.partial(torch.zeros, dtype=torch.float64, device=device)
    sums = _Sums(
        zeros(k, p, p),
        zeros(state.R.shape[1]),
        zeros(p, k),
        zeros(p, p if probe is None else _PROBES),
        zeros(0, k, p),
        [],
        cluster=cov_type == "cluster",
    )
    groups = _Groups()
    block_rows = _block_rows(state.R.shape[1])
    for chunk, labels_all in items:
        if cov_type == "cluster":
            labels_all = np.asarray(labels_all)
            if len(labels_all) != chunk.X.shape[0]:
                raise InputError(
                    f"groups has {len(labels_all)} labels for a chunk of {chunk.X.shape[0]} "
                    "rows; give one group label per row"
                )
        # Row blocks keep the temporaries (a copy of the block and its z rows) small.
        for start in range(0, chunk.X.shape[0], block_rows):
            rows = slice(start, start + block_rows)
            Z, E, Ys, sw, column_sums = _block(ctx, chunk, rows, refine)
            if d is not None:
                E = E - Z @ d  # the least-squares residuals
            sums.column_sums += column_sums
            sums.target_sums += Z.T @ Ys
            sums.S += Z.T @ Z if probe is None else Z.T @ (Z @ probe)
            c = E**2
            if cov_type == "cluster":
                labels = labels_all[rows]
                if sw is not None and not bool((sw > 0).all()):  # not observations
                    keep = sw > 0
                    labels, E, Z = labels[keep.cpu().numpy()], E[keep], Z[keep]
                ids = groups.map(labels)
                if len(groups.ids) > sums.scores.shape[0]:
                    grow = zeros(len(groups.ids) - sums.scores.shape[0], k, p)
                    sums.scores = torch.cat([sums.scores, grow])
                index = torch.as_tensor(ids, device=device)
                sums.scores.index_add_(0, index, E.unsqueeze(2) * Z.unsqueeze(1))
                continue
            if cov_type in ("HC2", "HC3"):
                h = _leverages(Z, S_inv)
                if bool((h > 1 - 1e-8).any()):
                    sums.full_leverage = True
                    h = h.clamp(max=0.0)  # the result is discarded; avoid 0/0 meanwhile
                sums.h_max = max(sums.h_max, float(h.max())) if len(h) else sums.h_max
                c = c / (1 - h) if cov_type == "HC2" else c / (1 - h) ** 2
            for j in range(k):
                sums.meat[j] += Z.T @ (Z * c[:, j : j + 1])
    sums.labels = list(groups.ids)  # in id order: dicts keep insertion order
    return sums


def combine(parts: Sequence[_Sums]) -> _Sums:
    """The sums of several parts of the rows (ranks, partitions), added in the order
    given; cluster scores added by label, so that a cluster whose rows are in several
    parts is one cluster (labels in the order first seen, part after part)."""
    first = parts[0]
    scores, labels = _scores_by_label([(part.labels, part.scores) for part in parts])

    def total(name: str) -> torch.Tensor:
        out: torch.Tensor = getattr(first, name).clone()
        for part in parts[1:]:
            out += getattr(part, name).to(out.device)
        return out

    return _Sums(
        total("meat"),
        total("column_sums"),
        total("target_sums"),
        total("S"),
        scores,
        labels,
        max(part.h_max for part in parts),
        any(part.full_leverage for part in parts),
        first.cluster,
    )


def collapse(sums: _Sums) -> _Sums:
    """Cluster sums with the meat Σ_g s_g s_gᵀ formed from the scores s_g, the scores
    then dropped and their count kept (``n_groups``); other sums as they are. Only the
    sums of all the rows may be collapsed: a cluster may span parts."""
    if not sums.cluster or sums.n_groups is not None:
        return sums
    meat = sums.meat.clone()
    for j in range(meat.shape[0]):
        meat[j] = sums.scores[:, j].T @ sums.scores[:, j]
    return replace(
        sums, meat=meat, scores=sums.scores[:0], labels=[], n_groups=sums.scores.shape[0]
    )


def on_device(sums: _Sums, device: torch.device) -> _Sums:
    """The sums with their tensors on ``device``."""
    tensors = ("meat", "column_sums", "target_sums", "S", "scores")
    return replace(sums, **{name: getattr(sums, name).to(device) for name in tensors})


def _scores_by_label(
    parts: Sequence[tuple[list[Any], torch.Tensor]],
) -> tuple[torch.Tensor, list[Any]]:
    """Cluster scores of several parts added by label (labels in the order first seen,
    part after part), on the first part's device."""
    first = parts[0][1]
    index: dict[Any, int] = {}
    for labels, _ in parts:
        for label in labels:
            index.setdefault(label, len(index))
    scores = first.new_zeros(len(index), *first.shape[1:])
    for labels, part in parts:
        if labels:
            rows = torch.as_tensor([index[v] for v in labels], device=scores.device)
            scores.index_add_(0, rows, part.to(scores.device))
    return scores, list(index)


def _across(group: Group, sums: _Sums) -> _Sums:
    """Every rank's sums, on every rank: the fixed-size ones added up the tree of
    :meth:`~torchlinreg.distributed.group.Group.reduce` (each rank sends and receives
    them once: O(k·p′²) numbers, whatever the number of ranks), the cluster scores,
    whose labels differ by rank, gathered and added by label in rank order."""
    fixed = ("meat", "column_sums", "target_sums", "S")
    flags = torch.tensor([sums.h_max, float(sums.full_leverage)], dtype=torch.float64)
    packed = torch.cat([getattr(sums, n).reshape(-1) for n in fixed] + [flags.to(sums.S)])

    def add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a[:-2] + b[:-2], torch.maximum(a[-2:], b[-2:])])

    total = group.reduce(packed, add, lambda t: [t], lambda ts: ts[0])
    parts, start = [], 0
    for name in fixed:
        shape = getattr(sums, name).shape
        parts.append(total[start : start + shape.numel()].reshape(shape))
        start += shape.numel()
    scores, labels = sums.scores, sums.labels
    if sums.cluster:
        seen = group.gather_objects((sums.labels, sums.scores.cpu()))
        scores, labels = _scores_by_label(seen)
        scores = scores.to(sums.scores.device)
    h_max, full = float(total[-2]), bool(total[-1] > 0)
    meat, column_sums, target_sums, S = parts
    return replace(
        sums,
        meat=meat,
        column_sums=column_sums,
        target_sums=target_sums,
        S=S,
        scores=scores,
        labels=labels,
        h_max=h_max,
        full_leverage=full,
    )


def _probe_vectors(p: int, device: torch.device) -> torch.Tensor:
    """V: :data:`_PROBES` standard normal columns, the same in every pass and run."""
    generator = torch.Generator().manual_seed(p)
    return torch.randn(p, _PROBES, dtype=torch.float64, generator=generator).to(device)


def _gram_gap(S: torch.Tensor, probe: torch.Tensor | None) -> tuple[float, float]:
    """(‖S − I‖_F, a bound on ‖S − I‖₂) from S, or from SV = ``S`` where probed (the
    probe's estimate of ‖S − I‖_F). Leverages ‖z‖² instead of z S⁻¹ zᵀ are then off
    by ≤ bound·h."""
    if probe is None:
        gap = S - torch.eye(S.shape[0], dtype=S.dtype, device=S.device)
        return float(torch.linalg.matrix_norm(gap)), float(torch.linalg.matrix_norm(gap, 2))
    estimate = float(torch.linalg.matrix_norm(S - probe)) / math.sqrt(_PROBES)
    return estimate, _PROBE_MARGIN * estimate


def _block_rows(columns: int) -> int:
    """A power of two of rows holding about :data:`_BLOCK_ELEMENTS` values, 256 to 65,536."""
    rows = 1 << max(0, (_BLOCK_ELEMENTS // max(columns, 1)).bit_length() - 1)
    return min(max(rows, 256), 1 << 16)


def _leverages(Z: torch.Tensor, S_inv: torch.Tensor | None) -> torch.Tensor:
    """hᵢ = zᵢ S⁻¹ zᵢᵀ, or ‖zᵢ‖² before S is known, as a column."""
    ZS = Z if S_inv is None else Z @ S_inv
    return torch.einsum("ij,ij->i", ZS, Z).unsqueeze(1)


def _block(
    ctx: _Context, chunk: Chunk, rows: slice, refine: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """For a block of rows: z (rows of Q), ẽ = √w·e, √w·(y − y₀), √w and the column
    sums of squares."""
    state = ctx.state
    device, c0 = state.device, int(state.fit_intercept)
    X = chunk.X[rows].to(device=device, dtype=torch.float64)
    Y = chunk.Y[rows].to(device=device, dtype=torch.float64)
    sw = None
    if chunk.sample_weight is not None:
        w = chunk.sample_weight[rows].to(device=device, dtype=torch.float64)
        sw = w.sqrt() * ctx.weight_scale
    E = _block_residuals(X, Y, ctx.theta, c0, sw)
    Z, Xs = _z_rows(state, ctx.inv, X, refine)
    Ys = Y - state.shift_y
    if sw is not None:
        Z *= sw.unsqueeze(1)
        E *= sw.unsqueeze(1)
        Ys *= sw.unsqueeze(1)
    return Z, E, Ys, sw, _shifted_column_sums(state, Xs, Ys, sw)


def _z_rows(
    state: LeastSquaresState, inv: torch.Tensor, X: torch.Tensor, refine: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """z = [1, x − x₀] R_s⁻¹ for unweighted rows, and X − x₀ as the state formed it.

    X − x₀ is exactly hi + lo (TwoSum). With ``refine``, z is corrected once by the
    residual a − z R_s in double-double: z's error drops from ε·κ to ε·(1 + (ε·κ)²)."""
    shift = state.shift_x.to(X)
    if not refine:
        # hi alone (the rounded X − x₀, as the fold formed it); z = 1·R⁻¹[0] + hi·R⁻¹[1:]
        # without building [1, hi]: on 1e6 × 100 the copies cost as much as the product.
        hi = X - shift
        c0 = int(state.fit_intercept)
        Z = hi @ inv[c0:]
        if c0:
            Z += inv[0]
        return Z, hi
    hi, lo = dd.two_sum(X, -shift)
    if state.fit_intercept:
        ones = torch.ones(len(X), 1, dtype=X.dtype, device=X.device)
        A_hi, A_lo = torch.cat([ones, hi], 1), torch.cat([ones * 0, lo], 1)
    else:
        A_hi, A_lo = hi, lo
    Z = A_hi @ inv
    rh, rl = dd.residual(Z, state.R_design, A_hi, -A_lo)
    Z = Z + (rh + rl) @ inv
    return Z, hi


def _shifted_column_sums(
    state: LeastSquaresState, Xs: torch.Tensor, Ys: torch.Tensor, sw: torch.Tensor | None
) -> torch.Tensor:
    """Σ w·a² per column of [1, X − x₀, Y − y₀] for one block (see
    :func:`~torchlinreg.stats.covariance.check_same_data`); ``Ys`` is already weighted."""
    # Σ (√w·a)² = Σ w·a², column by column, without concatenating the columns first.
    x_sums = (Xs**2).sum(0) if sw is None else (Xs**2 * (sw**2).unsqueeze(1)).sum(0)
    sums = [x_sums, (Ys**2).sum(0)]
    if state.fit_intercept:
        ones = float(len(Ys)) if sw is None else (sw**2).sum()
        sums.insert(0, torch.as_tensor(ones, dtype=Ys.dtype, device=Ys.device).reshape(1))
    return torch.cat(sums)
