"""Score rows of a fitted least-squares model, block by block, in the order the data
come: the pass behind the HAC (:mod:`.hac`), two-way cluster (:mod:`.cluster2`) and
CRV3 (:mod:`.crv3`) covariances.

As in :mod:`.meat`, rows are taken in the orthonormal coordinates zᵢ = √wᵢ·[1, xᵢ − x₀]
R_s⁻¹ (R_s the state's shifted design factor) with the least-squares residuals
ẽᵢ = √wᵢ·eᵢ − zᵢ·d (d = Qᵀẽ from the state: the model's rounded coefficients moved to
the exact least-squares ones). The pass also forms S = Σ zᵢᵀzᵢ, which equals I up to
the rounding of R: a meat M of the z rows gives the covariance K S⁻¹ M S⁻¹ Kᵀ exactly
(:func:`exact_meat`), whatever that rounding; and it forms the fingerprints that
:func:`~.covariance.check_same_data` compares with the fitted state.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data.chunks import Chunk
from ..errors import InputError
from ..solvers import dd
from ..solvers.state import LeastSquaresState
from .covariance import triangular_inverse

# Rows per block: a block's z rows and their products stay a few MB.
_BLOCK_ELEMENTS = 1 << 19


@dataclass
class Block:
    """A block of rows: z (b, p'), least-squares ẽ (b, k), √w (b,) or None, and the
    labels the caller gave with the rows (sliced alike), or None. z and ẽ are the
    transposes of contiguous (p', b) and (k, b) tensors: work on ``Z.T`` and ``E.T``."""

    Z: torch.Tensor
    E: torch.Tensor
    sqrt_weight: torch.Tensor | None
    labels: Any


@dataclass
class Fingerprint:
    """What :func:`~.covariance.check_same_data` compares with the state: Σ w·a² per
    column of [1, X − x₀, Y − y₀], Qᵀỹ and S = QᵀQ."""

    column_sums: torch.Tensor
    target_sums: torch.Tensor
    S: torch.Tensor
    rows: int = 0
    observations: int = 0

    @property
    def gram_gap(self) -> float:
        eye = torch.eye(self.S.shape[0], dtype=self.S.dtype, device=self.S.device)
        return float(torch.linalg.matrix_norm(self.S - eye))


def block_rows(p: int, per_row: int | None = None) -> int:
    """Rows per block so that a block's temporaries (``per_row`` values a row, p′ by
    default) hold about :data:`_BLOCK_ELEMENTS` values; 64 to 65,536."""
    size = max(per_row or p, 1)
    return min(max(_BLOCK_ELEMENTS // size, 64), 1 << 16)


def score_blocks(
    items: Iterable[tuple[Chunk, Any]],
    state: LeastSquaresState,
    theta: torch.Tensor,
    weight_scale: float,
    fingerprint: Fingerprint,
    rows_per_block: int | None = None,
) -> Iterator[Block]:
    """The blocks of ``items`` ((chunk, labels) pairs, labels one per row or None), in
    order; the fingerprint of every row is added to ``fingerprint`` on the way.
    ``weight_scale`` multiplies every √w, as the state's weights were scaled
    (:func:`~.scaling.scale_weights`). A block's tensors are views of a buffer reused
    by the next block: use them before drawing the next."""
    theta = theta.to(device=state.device, dtype=torch.float64)
    inv = triangular_inverse(state.R_design)
    if not bool(torch.isfinite(inv).all()):
        raise InputError(
            "the design is rank deficient: the coefficients' covariance is not identified"
        )
    maps = _BlockMaps.of(state, theta, inv)
    step = rows_per_block or block_rows(state.n_params)
    buffer = torch.empty(0, dtype=torch.float64, device=state.device)
    for chunk, labels in items:
        n = chunk.X.shape[0]
        if labels is not None and len(labels) != n:
            raise InputError(
                f"groups has {len(labels)} labels for a chunk of {n} rows; give one label per row"
            )
        if buffer.numel() < maps.width * min(step, n):
            buffer = buffer.new_empty(maps.width * min(step, n))
        for start in range(0, n, step):
            rows = slice(start, start + step)
            block = _block(maps, buffer, weight_scale, chunk, rows, fingerprint)
            block.labels = None if labels is None else labels[rows]
            yield block


@dataclass(frozen=True)
class _BlockMaps:
    """What every block multiplies by. A block's buffer holds, one column of the data a
    row of it (elementwise work and products then run along contiguous rows), the
    columns [ẽ (k) | z (p′) | y − y₀ (k) | x − x₀ (f)]. With u = R_s⁻¹d (d:
    :func:`~.meat.projection`) and the shifted intercept b_s = b − y₀ + x₀ᵀβ
    (double-double: it cancels where x₀ is large),

        [ẽ | z]ᵀ = c + M (x − x₀)ᵀ + [y − y₀ | 0]ᵀ,
        M = [−(β + u_x) ; R_s⁻¹'s rows of x]ᵀ (k + p′, f),
        c = [−(b_s + u₀) ; R_s⁻¹'s intercept row] (k + p′, 1), zero z part without one,

    so ẽ = y − b − xβ − z·d, the least-squares residual, in one product over the
    shifted rows (whose terms are no larger than the unshifted ones)."""

    M: torch.Tensor
    c: torch.Tensor
    shift_x: torch.Tensor  # (f, 1)
    shift_y: torch.Tensor  # (k, 1)
    k: int
    p: int
    c0: int

    @property
    def width(self) -> int:
        return 2 * self.k + self.p + self.shift_x.numel()

    @classmethod
    def of(cls, state: LeastSquaresState, theta: torch.Tensor, inv: torch.Tensor) -> _BlockMaps:
        from .meat import projection

        c0, k = int(state.fit_intercept), state.n_targets
        u = inv @ projection(state, theta)  # (p', k)
        M = torch.cat([-(theta[c0:] + u[c0:]), inv[c0:]], dim=1).T.contiguous()
        c = torch.zeros(k + inv.shape[1], 1, dtype=torch.float64, device=inv.device)
        c[:k, 0] = -(_shifted_intercept(state, theta) + (u[0] if c0 else 0.0))
        if c0:
            c[k:, 0] = inv[0]
        shift_x, shift_y = (s.to(theta).unsqueeze(1) for s in (state.shift_x, state.shift_y))
        return cls(M, c, shift_x, shift_y, k, inv.shape[1], c0)


def _shifted_intercept(state: LeastSquaresState, theta: torch.Tensor) -> torch.Tensor:
    """b_s = b − y₀ + x₀ᵀβ (k,) in double-double (b = 0 without an intercept)."""
    c0 = int(state.fit_intercept)
    p, e = dd.two_prod(state.shift_x.to(theta).unsqueeze(1), theta[c0:])
    hi, lo = dd.dd_sum(p, e, 0)
    if c0:
        hi, lo = dd.dd_add(hi, lo, theta[0], torch.zeros_like(hi))
    hi, lo = dd.dd_add(hi, lo, -state.shift_y.to(theta), torch.zeros_like(hi))
    return hi + lo


def _block(
    maps: _BlockMaps,
    buffer: torch.Tensor,
    weight_scale: float,
    chunk: Chunk,
    rows: slice,
    fp: Fingerprint,
) -> Block:
    device, k, p = buffer.device, maps.k, maps.p
    X = chunk.X[rows].to(device=device)
    Y = chunk.Y[rows].to(device=device)
    n = len(X)
    B = buffer[: maps.width * n].view(maps.width, n)  # one column of the data a row
    torch.sub(X.T, maps.shift_x, out=B[2 * k + p :])
    torch.sub(Y.T, maps.shift_y, out=B[k + p : 2 * k + p])
    torch.addmm(maps.c, maps.M, B[2 * k + p :], out=B[: k + p])
    B[:k] += B[k + p : 2 * k + p]
    sw = None
    if chunk.sample_weight is not None:
        sw = chunk.sample_weight[rows].to(device=device, dtype=torch.float64).sqrt()
        sw = sw * weight_scale
        B *= sw
    Z = B[k : k + p]
    ZY = Z @ B[k : 2 * k + p].T  # [S | Qᵀỹ] of these rows
    # Σ (y − y₀)², Σ (x − x₀)² (the norm's kernel is the fastest; squaring it moves
    # each sum by a few ε, far below the 1e-9 the check allows)
    squares = torch.linalg.vector_norm(B[k + p :], dim=1).square()
    sums = [squares[k:], squares[:k]]
    if maps.c0:
        ones = float(n) if sw is None else (sw**2).sum()
        sums.insert(0, torch.as_tensor(ones, dtype=B.dtype, device=device).reshape(1))
    fp.column_sums += torch.cat(sums)
    fp.target_sums += ZY[:, p:]
    fp.S += ZY[:, :p]
    fp.rows += n
    fp.observations += n if sw is None else int((sw > 0).sum())
    return Block(Z.T, B[:k].T, sw, None)


def new_fingerprint(state: LeastSquaresState) -> Fingerprint:
    p, k = state.n_params, state.n_targets
    device = state.device
    return Fingerprint(
        torch.zeros(state.R.shape[1], dtype=torch.float64, device=device),
        torch.zeros(p, k, dtype=torch.float64, device=device),
        torch.zeros(p, p, dtype=torch.float64, device=device),
    )


def exact_meat(meat: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """S⁻¹ M S⁻¹ for each target's meat M (k, p', p'): the meat in the coordinates of the
    exact data (see the module's docstring)."""
    S_inv = torch.linalg.inv(S)
    return S_inv @ meat @ S_inv


# Integer labels from 0 to below this are mapped through a lookup table (8 bytes an
# entry: 16 MB at most) rather than sorted block after block.
_TABLE_LABELS = 1 << 21


class LabelIds:
    """Maps labels, block after block, to consecutive ids: the block that first holds a
    label gives it the next id, the labels new to a block taken in sorted order.

    ``ids`` (label → id) is the mapping; small non-negative integer labels are looked
    up in ``table`` (id by label, −1 where not seen yet), a cache of it."""

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}
        self.table = np.full(0, -1, dtype=np.int64)

    def map(self, labels: np.ndarray) -> np.ndarray:
        labels = np.asarray(labels)
        if labels.dtype == object:  # mixed Python objects: map row by row
            return np.fromiter(
                (self.ids.setdefault(v, len(self.ids)) for v in labels.tolist()),
                dtype=np.int64,
                count=len(labels),
            )
        if labels.dtype.kind in "iu" and len(labels):
            low, high = int(labels.min()), int(labels.max())
            if low >= 0 and high < _TABLE_LABELS:
                return self._look_up(labels, high)
        return self._by_distinct(labels)

    def _by_distinct(self, labels: np.ndarray) -> np.ndarray:
        # Map each distinct label once, then every row by the inverse index.
        uniq, inverse = np.unique(labels, return_inverse=True)
        mapped = np.array(
            [self.ids.setdefault(u, len(self.ids)) for u in uniq.tolist()], dtype=np.int64
        )
        return mapped[inverse.reshape(-1)]

    def _look_up(self, labels: np.ndarray, high: int) -> np.ndarray:
        if high >= len(self.table):
            grown = np.full(max(high + 1, 2 * len(self.table)), -1, dtype=np.int64)
            grown[: len(self.table)] = self.table
            self.table = grown[: min(len(grown), _TABLE_LABELS)]
        ids = self.table[labels]
        unseen = ids < 0
        if unseen.any():
            values = np.unique(labels[unseen])  # sorted, as by :meth:`_by_distinct`
            self.table[values] = [self.ids.setdefault(v, len(self.ids)) for v in values.tolist()]
            ids = self.table[labels]
        return ids

    def __len__(self) -> int:
        return len(self.ids)


def observed(block: Block) -> Block:
    """The block without its zero-weight rows (they are not observations); z and ẽ kept
    one column a row (their transposes contiguous), as :func:`score_blocks` gives them."""
    sw = block.sqrt_weight
    if sw is None or bool((sw > 0).all()):
        return block
    keep = sw > 0
    labels = block.labels
    if labels is not None:
        labels = labels[keep.cpu().numpy()]
    return Block(block.Z.T[:, keep].T, block.E.T[:, keep].T, sw[keep], labels)
