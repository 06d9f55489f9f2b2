"""Covariances of least-squares estimates: the bread from R, robust meats from a data pass.

With A = [1, X] (weighted rows √w·a) and R its R factor, every covariance is a sandwich
R⁻¹ M R⁻ᵀ: M = σ²·I for the nonrobust one, and for robust ones M is accumulated in the
orthonormal coordinates z = ã R⁻¹ (the rows of Q) — forming Aᵀ diag(c) A directly would
square the design's condition number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data.chunks import Chunk
from ..errors import InputError
from ..solvers.dd import residual
from ..solvers.solve import column_scale
from ..solvers.state import LeastSquaresState

_MEAT_ROWS = 1 << 16
_EPS = float(torch.finfo(torch.float64).eps)
_RESIDUAL_DIGITS = 1e-11  # relative accuracy asked of the residuals


def unshifted_design_r(state: LeastSquaresState) -> torch.Tensor:
    """R of √w·[1, X] (unshifted, the data's own coordinates)."""
    p = state.n_params
    return state.unshifted_R()[:p, :p]


def triangular_inverse(R: torch.Tensor) -> torch.Tensor:
    """R⁻¹ as D (R D)⁻¹ through exactly (power-of-two) scaled columns."""
    D = column_scale(R)
    eye = torch.eye(R.shape[0], dtype=R.dtype, device=R.device)
    return D.unsqueeze(1) * torch.linalg.solve_triangular(R * D, eye, upper=True)


def bread(state: LeastSquaresState) -> torch.Tensor:
    """(AᵀWA)⁻¹ = R⁻¹R⁻ᵀ."""
    inv = triangular_inverse(unshifted_design_r(state))
    return inv @ inv.T


def sandwich(state: LeastSquaresState, meat_z: torch.Tensor) -> torch.Tensor:
    """R⁻¹ M R⁻ᵀ for a meat M in the z coordinates of :class:`Meat`."""
    inv = triangular_inverse(unshifted_design_r(state))
    return inv @ meat_z.to(inv) @ inv.T


@dataclass
class Meat:
    """The middle of a sandwich covariance, per target (k, p', p'), from a data pass,
    in the orthonormal coordinates z (rows of Q)."""

    matrices: torch.Tensor
    n_groups: int | None = None  # cluster: groups holding at least one observation
    # Σ w·[1, X − x₀, Y − y₀]² per column over the pass: equals the column norms² of the
    # state's R when the pass sees the fitted rows (Q is orthogonal).
    column_sums: torch.Tensor | None = None
    full_leverage: bool = False  # some row has leverage 1 (HC2/HC3 undefined)


def check_same_data(state: LeastSquaresState, meat: Meat) -> None:
    """Refuse a robust pass over other data than the fit's.

    The fingerprint is each column's Σ w (a − a₀)² of the shifted augmented design, which
    involves no coefficients (so no cancellation against a large intercept). Both sides
    are sums of positive terms, accurate to a few log₂(n)·ε relative; 1e-9 is far above
    that and far below any change of the data that matters to the statistics.
    """
    if meat.column_sums is None:
        return
    expected = (state.R**2).sum(0).cpu()
    seen = meat.column_sums.cpu()
    if not bool(torch.allclose(seen, expected, rtol=1e-9, atol=0)):
        raise InputError(
            "the data passed for the robust covariance are not the data the model was "
            "fitted on (their sums of squares differ); pass the same X, y and sample_weight"
        )


class _Groups:
    """Maps cluster labels, chunk by chunk, to consecutive group ids."""

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}

    def map(self, labels: np.ndarray) -> np.ndarray:
        if labels.dtype.kind == "f" and np.isnan(labels).any():
            raise InputError("groups holds missing labels (NaN); fill them in or drop those rows")
        if labels.dtype == object and any(v is None for v in labels.tolist()):
            raise InputError("groups holds missing labels (None); fill them in or drop those rows")
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
    hi, lo = residual(X, beta, Y, theta[0].expand_as(Y) if c0 else None)
    return hi + lo


def robust_meat(
    items: Iterable[tuple[Chunk, Any]],
    state: LeastSquaresState,
    theta: torch.Tensor,
    cov_type: str,
) -> Meat:
    """One pass over the data for HC0–HC3 or cluster meats.

    With ẽ = √w·(y − Aθ) and zᵢ = √wᵢ·[1, xᵢ − x₀] R_s⁻¹ (R_s the state's shifted design
    factor: the same Q as the unshifted design, without the cancellation of large
    offsets): HC0/HC1 use Σ ẽᵢ² zᵢzᵢᵀ; HC2 divides ẽᵢ² by (1 − hᵢ), HC3 by (1 − hᵢ)²,
    hᵢ = ‖zᵢ‖²; cluster uses Σ_g s_g s_gᵀ with s_g = Σ_{i∈g} zᵢẽᵢ over the groups that
    hold an observation (a zero-weight row is not one). ``items`` are (chunk, group
    labels) pairs, the labels ``None`` unless ``cov_type`` is ``"cluster"``.
    """
    p, k = state.n_params, state.n_targets
    device = state.device
    inv = triangular_inverse(state.R_design)  # shifted coordinates
    theta = theta.to(device=device, dtype=torch.float64)
    meat = torch.zeros(k, p, p, dtype=torch.float64, device=device)
    column_sums = torch.zeros(state.R.shape[1], dtype=torch.float64, device=device)
    groups = _Groups()
    scores = torch.zeros(0, k, p, dtype=torch.float64, device=device)
    full_leverage = False
    for chunk, labels_all in items:
        if cov_type == "cluster":
            labels_all = np.asarray(labels_all)
            if len(labels_all) != chunk.X.shape[0]:
                raise InputError(
                    f"groups has {len(labels_all)} labels for a chunk of {chunk.X.shape[0]} "
                    "rows; give one group label per row"
                )
        # Row blocks keep the temporaries (a copy of the block and its z rows) small.
        for start in range(0, chunk.X.shape[0], _MEAT_ROWS):
            Z, E, sw, sums = _block(state, inv, theta, chunk, slice(start, start + _MEAT_ROWS))
            column_sums += sums
            c = E**2
            if cov_type == "cluster":
                labels = labels_all[start : start + _MEAT_ROWS]
                if sw is not None and not bool((sw > 0).all()):  # not observations
                    keep = sw > 0
                    labels, E, Z = labels[keep.cpu().numpy()], E[keep], Z[keep]
                ids = groups.map(labels)
                if len(groups.ids) > scores.shape[0]:
                    extra = len(groups.ids) - scores.shape[0]
                    grow = torch.zeros(extra, k, p, dtype=torch.float64, device=device)
                    scores = torch.cat([scores, grow])
                index = torch.as_tensor(ids, device=device)
                scores.index_add_(0, index, E.unsqueeze(2) * Z.unsqueeze(1))
                continue
            if cov_type in ("HC2", "HC3"):
                h = torch.einsum("ij,ij->i", Z, Z).unsqueeze(1)  # leverage: ‖zᵢ‖²
                if bool((h > 1 - 1e-8).any()):
                    full_leverage = True
                    h = h.clamp(max=0.0)  # the result is discarded; avoid 0/0 meanwhile
                c = c / (1 - h) if cov_type == "HC2" else c / (1 - h) ** 2
            for j in range(k):
                meat[j] += Z.T @ (Z * c[:, j : j + 1])
    if cov_type == "cluster":
        for j in range(k):
            meat[j] = scores[:, j].T @ scores[:, j]
        return Meat(meat, scores.shape[0], column_sums)
    return Meat(meat, column_sums=column_sums, full_leverage=full_leverage)


def _block(
    state: LeastSquaresState, inv: torch.Tensor, theta: torch.Tensor, chunk: Chunk, rows: slice
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """For a block of rows: z (rows of Q), ẽ = √w·e, √w and the column sums of squares."""
    device, c0 = state.device, int(state.fit_intercept)
    X = chunk.X[rows].to(device=device, dtype=torch.float64)
    Y = chunk.Y[rows].to(device=device, dtype=torch.float64)
    sw = None
    if chunk.sample_weight is not None:
        sw = chunk.sample_weight[rows].to(device=device, dtype=torch.float64).sqrt()
    E = _block_residuals(X, Y, theta, c0, sw)
    Xs = X - state.shift_x
    Z = Xs @ inv[c0:]
    if c0:
        Z += inv[0]
    if sw is not None:
        Z *= sw.unsqueeze(1)
        E *= sw.unsqueeze(1)
    return Z, E, sw, _shifted_column_sums(state, Xs, Y, sw)


def _shifted_column_sums(
    state: LeastSquaresState, Xs: torch.Tensor, Y: torch.Tensor, sw: torch.Tensor | None
) -> torch.Tensor:
    """Σ w·a² per column of [1, X − x₀, Y − y₀] for one block (see :func:`check_same_data`)."""
    parts = [Xs, Y - state.shift_y]
    if state.fit_intercept:
        parts.insert(0, torch.ones(len(Y), 1, dtype=Y.dtype, device=Y.device))
    A = torch.cat(parts, 1)
    if sw is not None:
        A = A * sw.unsqueeze(1)
    return (A**2).sum(0)


def robust_wald(
    state: LeastSquaresState, meat_z: torch.Tensor, slopes: torch.Tensor, skip: int
) -> float | None:
    """βᵀ V⁻¹ β / q for V = S M Sᵀ (S the slope rows of R⁻¹, the same for the shifted
    and unshifted design), without forming V: with M = L Lᵀ and (S L)ᵀ = Q T, it is
    ‖T⁻ᵀ β‖² / q. Forming V and solving would lose the digits a nearly collinear design
    leaves in it."""
    inv = triangular_inverse(state.R_design)
    try:
        vals, vecs = torch.linalg.eigh(meat_z.to(inv))
    except RuntimeError:  # not finite: nothing to test
        return None
    L = vecs * vals.clamp(min=0).sqrt()
    T = torch.linalg.qr((inv[skip:] @ L).T).R
    d = torch.diagonal(T).abs()
    if float(d.min()) <= 1e-10 * float(d.max()):
        return None  # singular robust covariance (e.g. fewer clusters than slopes)
    z = torch.linalg.solve_triangular(T.T, slopes.to(inv).unsqueeze(1), upper=False)
    return float((z**2).sum()) / len(slopes)
