"""The influence statistics of a block of rows, from the fitted state and θ alone.

With A = [1, X] and weights w, every statistic is that of ordinary least squares on the
whitened rows ãᵢ = √wᵢ·aᵢ, ỹᵢ = √wᵢ·yᵢ (a weighted fit *is* that fit), and follows
from zᵢ = ãᵢ R⁻¹, the row of Q: R is the state's factor of the shifted design
√w·[1, X − x₀] (the same Q as the unshifted one, without the offset's cancellation), so
no n×n matrix and no second factorisation are needed:

* leverage hᵢ = ‖zᵢ‖² (the diagonal of the hat matrix of √W·A);
* ẽᵢ = √wᵢ·eᵢ, eᵢ = yᵢ − ŷᵢ; σ² = Σ ẽ² / (n − p) (RSS from the state);
* internally studentized rᵢ = ẽᵢ / (σ·√(1 − hᵢ));
* leave-one-out σ₍ᵢ₎² = ((n − p)·σ² − ẽᵢ²/(1 − hᵢ)) / (n − p − 1), exactly the residual
  variance of the fit without row i (no refit);
* externally studentized tᵢ = ẽᵢ / (σ₍ᵢ₎·√(1 − hᵢ));
* Cook's Dᵢ = rᵢ²·hᵢ / (p·(1 − hᵢ)); DFFITSᵢ = tᵢ·√(hᵢ/(1 − hᵢ));
* β − β₍ᵢ₎ = (ÃᵀÃ)⁻¹ãᵢᵀẽᵢ/(1 − hᵢ) = K zᵢᵀ ẽᵢ/(1 − hᵢ), K = T R⁻¹ (T the change from
  the shifted to the data's coordinates), and DFBETASᵢⱼ = (β − β₍ᵢ₎)ⱼ / (σ₍ᵢ₎·‖Kⱼ‖),
  ‖Kⱼ‖² the j-th diagonal entry of (ÃᵀÃ)⁻¹, computed as zᵢK̂ⱼᵀ·ẽᵢ/((1 − hᵢ)·σ₍ᵢ₎) with
  K̂ⱼ = Kⱼ/‖Kⱼ‖ (one product and one scaling per entry).

n is the number of observations (rows of positive weight) and p the number of
parameters, the intercept included. Rows of zero weight are not observations: their
leverage is 0 and their studentized residuals, Cook's distance, DFFITS and DFBETAS are
NaN. Rows of leverage 1 (to 10·ε, as R's ``lm.influence`` rounds them) determine their
own fit: those statistics are NaN there too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data.chunks import Chunk
from ..errors import InputError
from ..solvers.solve import design_conditioning
from ..solvers.state import LeastSquaresState
from .covariance import pairing_decides, to_data_coordinates, triangular_inverse

# The z rows, residuals and column sums are those of the robust covariance's pass, which
# already keeps them accurate on offset, badly conditioned designs (see .meat).
from .meat import _block_residuals, _z_rows
from .scaling import scale_weights

_EPS = float(torch.finfo(torch.float64).eps)
_Z_DIGITS = 1e-10  # z rows refined in double-double where ε·κ exceeds this (as in .meat)
_RESIDUAL_DIGITS = 1e-11  # relative accuracy asked of the residuals (as in .meat)
# Rows per block: at tens of columns a block's (rows, p) temporaries are a few MB (kept
# in reused buffers by the one-pass summary); larger blocks mean fewer kernel calls, each
# a release and retake of the GIL that the reading thread shares (measured on 1M rows:
# 0.39 s CPU at 2¹⁵ rows, 0.45 s at 2¹³).
ROW_BLOCK = 1 << 15


@dataclass(frozen=True)
class Fitted:
    """What every block needs: the (weight-scaled) state, θ, R⁻¹, K and σ."""

    state: LeastSquaresState
    theta: torch.Tensor  # (p, 1), intercept first
    inv: torch.Tensor  # R_s⁻¹
    K: torch.Tensor  # T R_s⁻¹: (ÃᵀÃ)⁻¹ = K Kᵀ
    k_norms: torch.Tensor  # ‖Kⱼ‖
    k_unit: torch.Tensor  # K̂: the rows of K over their norms
    rss: float
    weight_scale: float  # factor of every √w (a power of two; 1 unless w overflows)
    refine: bool
    names: tuple[str, ...]

    @property
    def n(self) -> int:
        return self.state.n_observations

    @property
    def p(self) -> int:
        return self.state.n_params

    @property
    def df_resid(self) -> int:
        return self.n - self.p

    @property
    def sigma(self) -> float:
        """The scaled fit's σ; the reported σ is that of the original weights."""
        return math.sqrt(self.rss / self.df_resid)


def prepare(model: Any) -> Fitted:
    """The fitted model's state and θ, checked to have influence statistics: a fitted
    least-squares model (not penalised) of one target, full rank, n > p + 1."""
    check_model(model)
    scaled = scale_weights(model.state_)
    state = scaled.state
    theta = model._theta().to(device=state.device, dtype=torch.float64)
    inv = triangular_inverse(state.R_design)
    K = to_data_coordinates(state, inv)
    # The cached bracket of κ decides (κ itself only where the threshold is inside).
    refine = design_conditioning(state).decide(lambda kappa: _EPS * kappa > _Z_DIGITS)
    features, _ = model._names()
    names = (("intercept",) if state.fit_intercept else ()) + tuple(features)
    rss = float(state.rss_of(theta)[0])
    k_norms = torch.linalg.vector_norm(K, dim=1)
    return Fitted(
        state,
        theta,
        inv,
        K,
        k_norms,
        K / k_norms.unsqueeze(1),
        rss,
        scaled.sqrt_weight_scale,
        refine,
        names,
    )


def check_model(model: Any) -> None:
    """Refuse what has no influence statistics here, in one line each."""
    model._check_is_fitted()
    name = type(model).__name__
    if model._penalised():
        raise InputError(
            f"influence statistics are for least squares; {name}'s penalty changes the hat "
            "matrix and the leave-one-out fits: fit a LinearRegression for them"
        )
    if getattr(model, "absorbed_", None) is not None:
        raise InputError(
            "influence statistics are not computed for a fit with fixed effects absorbed: "
            "a row's leverage includes its levels' share, which the demeaned fit does not "
            "keep; fit with the factors as one-hot columns for them"
        )
    state = model.state_
    if state.n_targets != 1:
        raise InputError(
            f"influence statistics are for one target; this model has {state.n_targets}: "
            "fit one model per target"
        )
    if model.rank_ < state.n_params:
        aliased = ", ".join(model.aliased_) or "linearly dependent columns"
        raise InputError(
            f"the design is rank deficient (aliased: {aliased}); leverages are not unique "
            "for the parameters: drop the aliased features and fit again"
        )
    n, p = state.n_observations, state.n_params
    if n < p + 2:
        raise InputError(
            f"influence statistics need at least p + 2 = {p + 2} observations (rows of "
            f"positive weight) for {p} parameters; the fit has {n}"
        )


@dataclass(frozen=True)
class Block:
    """The per-row statistics of a block of rows as tensors (float64, on the state's
    device), before any of them is copied to the host: what both the in-memory
    statistics (:func:`block_rows`) and the one-pass summary take from a block.

    ``observed`` is None when every row has positive weight (an unweighted fit).
    ``scale`` is ẽᵢ/((1 − hᵢ)·σ₍ᵢ₎): DFBETASᵢ = scaleᵢ·zᵢK̂ᵀ (:func:`dfbetas_t`). The
    statistics of rows that are not observations or have leverage 1 are NaN."""

    n_rows: int
    fitted: torch.Tensor
    resid: torch.Tensor
    weighted_resid: torch.Tensor  # √w·e, in the original weights
    leverage: torch.Tensor
    student_resid_internal: torch.Tensor
    student_resid_external: torch.Tensor
    cooks_distance: torch.Tensor
    dffits: torch.Tensor
    scale: torch.Tensor
    Z: torch.Tensor  # (rows, p): the weighted z rows
    observed: torch.Tensor | None
    column_sums: torch.Tensor
    target_sums: torch.Tensor


class Workspace:
    """Buffers reused from block to block for a pass's (rows, p) temporaries: a fresh
    megabyte-sized tensor per block is a fresh mapping from the system each time (page
    faults cost as much as the arithmetic on it)."""

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """A tensor of ``shape`` with ``like``'s dtype and device, its contents
        undefined: a view of the buffer ``name``, grown when too small."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.numel() < size or buffer.dtype != like.dtype:
            buffer = torch.empty(size, dtype=like.dtype, device=like.device)
            self._buffers[name] = buffer
        return buffer[:size].view(shape)


def block_core(fit: Fitted, chunk: Chunk, rows: slice, work: Workspace | None = None) -> Block:
    """The statistics of ``chunk``'s rows ``rows`` (formulas in the module's docstring);
    with ``work``, the large temporaries live in its buffers (the block's ``Z`` until
    the next block)."""
    state = fit.state
    device, c0 = state.device, int(state.fit_intercept)
    X = chunk.X[rows].to(device=device, dtype=torch.float64)
    Y = chunk.Y[rows].to(device=device, dtype=torch.float64)
    w = None if chunk.sample_weight is None else chunk.sample_weight[rows].to(device)
    sw = None if w is None else w.to(torch.float64).sqrt() * fit.weight_scale
    Z, Xs = _z(fit, X, work)
    Ys = Y - state.shift_y
    if sw is not None:
        Z *= sw.unsqueeze(1)
        Ys *= sw.unsqueeze(1)
    column_sums = _column_sums(state, Xs, Ys, sw)
    xb = X @ fit.theta[c0:, 0]
    E = _residuals(fit, X, Y, xb, sw, column_sums)
    fitted = xb + fit.theta[0, 0] if c0 else xb
    E_w = E if sw is None else E * sw  # ẽ, in the scaled weights
    # h = ‖zᵢ‖²: one pass over Z (a row norm), not a squared copy of it then a sum.
    h = torch.linalg.vector_norm(Z, dim=1).square_().clamp_(max=1.0)
    h.masked_fill_(h > 1 - 10 * _EPS, 1.0)
    stats = _studentize(fit, E_w, h)
    observed = None if w is None else w > 0
    undefined = h >= 1 if observed is None else ~observed | (h >= 1)
    if bool(undefined.any()):
        for t in stats.values():
            t[undefined] = math.nan
    return Block(
        n_rows=X.shape[0],
        fitted=fitted,
        resid=E,
        weighted_resid=E if w is None else E * w.to(torch.float64).sqrt(),
        leverage=h,
        student_resid_internal=stats["internal"],
        student_resid_external=stats["external"],
        cooks_distance=stats["cooks"],
        dffits=stats["dffits"],
        scale=stats["scale"],
        Z=Z,
        observed=observed,
        column_sums=column_sums,
        target_sums=Z.T @ Ys,
    )


def dfbetas_t(
    fit: Fitted, block: Block, rows: Any = None, out: torch.Tensor | None = None
) -> torch.Tensor:
    """DFBETAS of the block's rows (all, or the index ``rows``), transposed: (p, rows),
    (β − β₍ᵢ₎)ⱼ/(σ₍ᵢ₎‖Kⱼ‖) = K̂ⱼzᵢᵀ·scaleᵢ, K̂ⱼ = Kⱼ/‖Kⱼ‖. Transposed so that the
    summary's counts per coefficient reduce contiguous rows; the in-memory statistics
    take the same product. ``out``: where to write them."""
    Z, scale = (block.Z, block.scale) if rows is None else (block.Z[rows], block.scale[rows])
    return torch.mm(fit.k_unit, Z.T, out=out).mul_(scale)


def block_rows(fit: Fitted, chunk: Chunk, rows: slice) -> Rows:
    """The statistics of ``chunk``'s rows ``rows``, every row's, on the host."""
    block = block_core(fit, chunk, rows)
    observed = block.observed
    if observed is None:
        observed = torch.ones(block.n_rows, dtype=torch.bool, device=block.Z.device)
    return Rows(
        fitted=host(block.fitted),
        resid=host(block.resid),
        weighted_resid=host(block.weighted_resid),
        leverage=host(block.leverage),
        student_resid_internal=host(block.student_resid_internal),
        student_resid_external=host(block.student_resid_external),
        cooks_distance=host(block.cooks_distance),
        dffits=host(block.dffits),
        dfbetas=host(dfbetas_t(fit, block).T),
        observed=host(observed),
        column_sums=block.column_sums,
        target_sums=block.target_sums,
    )


def host(t: torch.Tensor) -> np.ndarray:
    """``t`` as a numpy array (no copy on the CPU)."""
    return t.cpu().numpy()


@dataclass(frozen=True)
class Rows:
    """The statistics of a block of rows (numpy, float64), and its sums for the check
    that the rows are the fitted ones."""

    fitted: np.ndarray
    resid: np.ndarray
    weighted_resid: np.ndarray
    leverage: np.ndarray
    student_resid_internal: np.ndarray
    student_resid_external: np.ndarray
    cooks_distance: np.ndarray
    dffits: np.ndarray
    dfbetas: np.ndarray  # (rows, p)
    observed: np.ndarray  # bool: positive weight
    column_sums: torch.Tensor
    target_sums: torch.Tensor


def _z(fit: Fitted, X: torch.Tensor, work: Workspace | None) -> tuple[torch.Tensor, torch.Tensor]:
    """z = [1, x − x₀] R_s⁻¹ for unweighted rows, and X − x₀ as the state formed it:
    one product with the intercept's row added in it; refined in double-double where
    the design's condition asks (:func:`~torchlinreg.stats.meat._z_rows`)."""
    state = fit.state
    if fit.refine or not state.fit_intercept:
        return _z_rows(state, fit.inv, X, fit.refine)
    m, p = X.shape[0], fit.p
    Xs = None if work is None else work.get("Xs", (m, p - 1), X)
    Z = None if work is None else work.get("Z", (m, p), X)
    Xs = torch.sub(X, state.shift_x.to(X), out=Xs)
    return torch.addmm(fit.inv[0], Xs, fit.inv[1:], out=Z), Xs


def _column_sums(
    state: LeastSquaresState, Xs: torch.Tensor, Ys: torch.Tensor, sw: torch.Tensor | None
) -> torch.Tensor:
    """Σ w·a² per column of [1, X − x₀, Y − y₀] for one block (see
    :func:`~torchlinreg.stats.covariance.check_same_data`); ``Ys`` is already
    weighted. Column norms, squared: one pass over the block, no squared copy."""
    Xw = Xs if sw is None else Xs * sw.unsqueeze(1)
    sums = [torch.linalg.vector_norm(Xw, dim=0), torch.linalg.vector_norm(Ys, dim=0)]
    if state.fit_intercept:
        ones = math.sqrt(len(Ys)) if sw is None else torch.linalg.vector_norm(sw)
        sums.insert(0, torch.as_tensor(ones, dtype=Ys.dtype, device=Ys.device).reshape(1))
    return torch.cat(sums).square_()


def _residuals(
    fit: Fitted,
    X: torch.Tensor,
    Y: torch.Tensor,
    xb: torch.Tensor,
    sw: torch.Tensor | None,
    column_sums: torch.Tensor,
) -> torch.Tensor:
    """e = y − b − Xβ (``xb`` = Xβ), to ≥ 11 digits whatever the cancellation.

    Each eᵢ is good to (p + 2)·ε·mᵢ, mᵢ = |yᵢ| + |b| + Σ|xᵢⱼβⱼ| (see
    :func:`~torchlinreg.stats.meat._block_residuals`). ‖√w·m‖ is bounded without
    another pass over the block, by the triangle inequality, from the block's column
    sums: ‖√w·xⱼ‖ ≤ ‖√w·(xⱼ − x₀ⱼ)‖ + |x₀ⱼ|·‖√w‖ (and so for y). Where that bound is
    not below 1e-11 of ‖√w·e‖, the tight bound decides and, failing it, double-double
    recomputes e (.meat's rule)."""
    state, c0 = fit.state, int(fit.state.fit_intercept)
    E = Y[:, 0] - xb
    if c0:
        E -= fit.theta[0, 0]
    p = state.n_params
    root_w = column_sums[0].sqrt() if c0 else _root_weight(sw, len(E), E)
    norms = column_sums[c0:].sqrt()
    shifts = torch.cat([state.shift_x.to(E), state.shift_y.to(E).reshape(-1)[:1]])
    norms = norms + shifts.abs() * root_w  # ‖√w·xⱼ‖..., ‖√w·y‖
    beta = fit.theta[c0:, 0].abs()
    magnitude = norms[-1] + (beta * norms[:-1]).sum()
    if c0:
        magnitude += fit.theta[0, 0].abs() * root_w
    e_norm = torch.linalg.vector_norm(E if sw is None else E * sw)
    if bool((p + 2) * _EPS * magnitude <= _RESIDUAL_DIGITS * e_norm):
        return E
    return _block_residuals(X, Y, fit.theta, c0, sw)[:, 0]


def _root_weight(sw: torch.Tensor | None, rows: int, like: torch.Tensor) -> torch.Tensor:
    """‖√w‖ over the block's rows."""
    if sw is None:
        return torch.tensor(math.sqrt(rows), dtype=like.dtype, device=like.device)
    return torch.linalg.vector_norm(sw)


def _studentize(fit: Fitted, E_w: torch.Tensor, h: torch.Tensor) -> dict[str, torch.Tensor]:
    """The statistics built on ẽ and h (formulas in the module's docstring)."""
    one_minus_h = 1 - h
    df = fit.df_resid
    # Rows of h = 1 or zero weight divide by zero here (torch gives inf or NaN, no
    # error); the caller sets them to NaN.
    press = E_w**2 / one_minus_h
    sigma_i = ((fit.rss - press).clamp(min=0) / (df - 1)).sqrt()
    root = one_minus_h.sqrt()
    internal = E_w / (fit.sigma * root)
    external = E_w / (sigma_i * root)
    ratio = h / one_minus_h
    return {
        "internal": internal,
        "external": external,
        "cooks": internal**2 * ratio / fit.p,
        "dffits": external * ratio.sqrt(),
        "scale": E_w / (one_minus_h * sigma_i),
    }


class SameData:
    """Adds up what shows that a pass reads the fitted rows: the row count, each
    column's Σ w·(a − a₀)² (= the column norms² of R) and Σ zᵢᵀ√wᵢ(yᵢ − y₀) (= R's target
    block when x and y rows are paired as fitted); see
    :func:`~torchlinreg.stats.covariance.check_same_data`, whose tests these are."""

    def __init__(self, fit: Fitted) -> None:
        self.fit = fit
        self.rows = 0
        self.column_sums = torch.zeros_like(fit.state.R[0])
        self.target_sums = torch.zeros_like(fit.state.R_target)

    def add(self, n_rows: int, column_sums: torch.Tensor, target_sums: torch.Tensor) -> None:
        self.rows += n_rows
        self.column_sums += column_sums
        self.target_sums += target_sums

    def check(self) -> None:
        state = self.fit.state
        fix = (
            "influence statistics are for the rows the model was fitted on: give the same "
            "X, y and sample_weight"
        )
        if self.rows != state.n_samples:
            raise InputError(
                f"the model was fitted on {state.n_samples} rows but {self.rows} were given; " + fix
            )
        expected = (state.R**2).sum(0)
        if not bool(torch.allclose(self.column_sums, expected, rtol=1e-9, atol=0)):
            raise InputError(
                "the data given are not the data the model was fitted on (their sums of "
                "squares differ); " + fix
            )
        y_norm = float(expected[state.n_params :].sqrt()[0])
        gap = float((self.target_sums - state.R_target).abs().max()) / y_norm
        if pairing_decides(state, lambda tol: gap > tol):
            raise InputError(
                "the rows of X and y are not paired as they were in the fit (rows "
                "reordered in one of them?); " + fix
            )


def row_blocks(n_rows: int) -> list[slice]:
    """The row blocks of a chunk of ``n_rows`` rows."""
    return [slice(s, min(s + ROW_BLOCK, n_rows)) for s in range(0, n_rows, ROW_BLOCK)]
