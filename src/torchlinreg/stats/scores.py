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
from ..solvers.state import LeastSquaresState
from .covariance import triangular_inverse

# Rows per block: a block's z rows and their products stay a few MB.
_BLOCK_ELEMENTS = 1 << 19


@dataclass
class Block:
    """A block of rows: z (b, p'), least-squares ẽ (b, k), √w (b,) or None, and the
    labels the caller gave with the rows (sliced alike), or None."""

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
    (:func:`~.scaling.scale_weights`)."""
    from .meat import projection

    theta = theta.to(device=state.device, dtype=torch.float64)
    inv = triangular_inverse(state.R_design)
    if not bool(torch.isfinite(inv).all()):
        raise InputError(
            "the design is rank deficient: the coefficients' covariance is not identified"
        )
    d = projection(state, theta)
    step = rows_per_block or block_rows(state.n_params)
    for chunk, labels in items:
        n = chunk.X.shape[0]
        if labels is not None and len(labels) != n:
            raise InputError(
                f"groups has {len(labels)} labels for a chunk of {n} rows; give one label per row"
            )
        for start in range(0, n, step):
            rows = slice(start, start + step)
            block = _block(state, inv, theta, d, weight_scale, chunk, rows, fingerprint)
            block.labels = None if labels is None else labels[rows]
            yield block


def _block(
    state: LeastSquaresState,
    inv: torch.Tensor,
    theta: torch.Tensor,
    d: torch.Tensor,
    weight_scale: float,
    chunk: Chunk,
    rows: slice,
    fp: Fingerprint,
) -> Block:
    device, c0 = state.device, int(state.fit_intercept)
    X = chunk.X[rows].to(device=device, dtype=torch.float64)
    Y = chunk.Y[rows].to(device=device, dtype=torch.float64)
    Xs = X - state.shift_x.to(X)
    Ys = Y - state.shift_y.to(Y)
    Z = Xs @ inv[c0:]
    if c0:
        Z += inv[0]
    E = Y - X @ theta[c0:]
    if c0:
        E -= theta[0]
    sw = None
    if chunk.sample_weight is not None:
        sw = chunk.sample_weight[rows].to(device=device, dtype=torch.float64).sqrt()
        sw = sw * weight_scale
        Z, E, Ys, Xs = (t * sw.unsqueeze(1) for t in (Z, E, Ys, Xs))
    E = E - Z @ d  # the least-squares residuals
    sums = [(Xs**2).sum(0), (Ys**2).sum(0)]
    if c0:
        ones = float(len(X)) if sw is None else (sw**2).sum()
        sums.insert(0, torch.as_tensor(ones, dtype=X.dtype, device=device).reshape(1))
    fp.column_sums += torch.cat(sums)
    fp.target_sums += Z.T @ Ys
    fp.S += Z.T @ Z
    fp.rows += len(X)
    fp.observations += len(X) if sw is None else int((sw > 0).sum())
    return Block(Z, E, sw, None)


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


class LabelIds:
    """Maps labels, block after block, to consecutive ids in the order first seen."""

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}

    def map(self, labels: np.ndarray) -> np.ndarray:
        labels = np.asarray(labels)
        if labels.dtype == object:  # mixed Python objects: map row by row
            return np.fromiter(
                (self.ids.setdefault(v, len(self.ids)) for v in labels.tolist()),
                dtype=np.int64,
                count=len(labels),
            )
        # Map each distinct label once, then every row by the inverse index.
        uniq, inverse = np.unique(labels, return_inverse=True)
        mapped = np.array(
            [self.ids.setdefault(u, len(self.ids)) for u in uniq.tolist()], dtype=np.int64
        )
        return mapped[inverse.reshape(-1)]

    def __len__(self) -> int:
        return len(self.ids)


def observed(block: Block) -> Block:
    """The block without its zero-weight rows (they are not observations)."""
    sw = block.sqrt_weight
    if sw is None or bool((sw > 0).all()):
        return block
    keep = sw > 0
    labels = block.labels
    if labels is not None:
        labels = labels[keep.cpu().numpy()]
    return Block(block.Z[keep], block.E[keep], sw[keep], labels)
