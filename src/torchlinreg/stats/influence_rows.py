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
  ‖Kⱼ‖² the j-th diagonal entry of (ÃᵀÃ)⁻¹.

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
from ..solvers.solve import scaled_condition
from ..solvers.state import LeastSquaresState
from .covariance import pairing_tolerance, to_data_coordinates, triangular_inverse

# The z rows, residuals and column sums are those of the robust covariance's pass, which
# already keeps them accurate on offset, badly conditioned designs (see .meat).
from .meat import _block_residuals, _shifted_column_sums, _z_rows
from .scaling import scale_weights

_EPS = float(torch.finfo(torch.float64).eps)
_Z_DIGITS = 1e-10  # z rows refined in double-double where ε·κ exceeds this (as in .meat)
ROW_BLOCK = 1 << 14  # rows per block: temporaries of a few MB at tens of columns


@dataclass(frozen=True)
class Fitted:
    """What every block needs: the (weight-scaled) state, θ, R⁻¹, K and σ."""

    state: LeastSquaresState
    theta: torch.Tensor  # (p, 1), intercept first
    inv: torch.Tensor  # R_s⁻¹
    K: torch.Tensor  # T R_s⁻¹: (ÃᵀÃ)⁻¹ = K Kᵀ
    k_norms: torch.Tensor  # ‖Kⱼ‖
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
    refine = _EPS * scaled_condition(state.R_design) > _Z_DIGITS
    features, _ = model._names()
    names = (("intercept",) if state.fit_intercept else ()) + tuple(features)
    rss = float(state.rss_of(theta)[0])
    return Fitted(
        state,
        theta,
        inv,
        K,
        torch.linalg.vector_norm(K, dim=1),
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


def block_rows(fit: Fitted, chunk: Chunk, rows: slice) -> Rows:
    """The statistics of ``chunk``'s rows ``rows``."""
    state = fit.state
    device, c0 = state.device, int(state.fit_intercept)
    X = chunk.X[rows].to(device=device, dtype=torch.float64)
    Y = chunk.Y[rows].to(device=device, dtype=torch.float64)
    w = None if chunk.sample_weight is None else chunk.sample_weight[rows].to(device)
    sw = None if w is None else w.to(torch.float64).sqrt() * fit.weight_scale
    E = _block_residuals(X, Y, fit.theta, c0, sw)[:, 0]
    fitted = X @ fit.theta[c0:, 0] + (fit.theta[0, 0] if c0 else 0.0)
    Z, Xs = _z_rows(state, fit.inv, X, fit.refine)
    Ys = Y - state.shift_y
    if sw is not None:
        Z *= sw.unsqueeze(1)
        Ys *= sw.unsqueeze(1)
    column_sums = _shifted_column_sums(state, Xs, Ys, sw)
    target_sums = Z.T @ Ys
    E_w = E if sw is None else E * sw  # ẽ, in the scaled weights
    h = (Z**2).sum(1).clamp(max=1.0)
    h = torch.where(h > 1 - 10 * _EPS, torch.ones_like(h), h)
    stats = _studentize(fit, Z, E_w, h)
    observed = torch.ones_like(h, dtype=torch.bool) if w is None else w > 0
    undefined = ~observed | (h >= 1)
    for t in stats.values():
        t[undefined] = math.nan
    weighted = E if w is None else E * w.to(torch.float64).sqrt()

    def host(t: torch.Tensor) -> np.ndarray:
        return t.cpu().numpy()

    return Rows(
        fitted=host(fitted),
        resid=host(E),
        weighted_resid=host(weighted),
        leverage=host(h),
        student_resid_internal=host(stats["internal"]),
        student_resid_external=host(stats["external"]),
        cooks_distance=host(stats["cooks"]),
        dffits=host(stats["dffits"]),
        dfbetas=host(stats["dfbetas"]),
        observed=host(observed),
        column_sums=column_sums,
        target_sums=target_sums,
    )


def _studentize(
    fit: Fitted, Z: torch.Tensor, E_w: torch.Tensor, h: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The statistics built on ẽ and h (formulas in the module's docstring)."""
    one_minus_h = 1 - h
    df = fit.df_resid
    # Rows of h = 1 or zero weight divide by zero here (torch gives inf or NaN, no
    # error); the caller sets them to NaN.
    press = E_w**2 / one_minus_h
    sigma_i = ((fit.rss - press).clamp(min=0) / (df - 1)).sqrt()
    internal = E_w / (fit.sigma * one_minus_h.sqrt())
    external = E_w / (sigma_i * one_minus_h.sqrt())
    ratio = h / one_minus_h
    dfbeta = (Z @ fit.K.T) * (E_w / one_minus_h).unsqueeze(1)
    dfbetas = dfbeta / (sigma_i.unsqueeze(1) * fit.k_norms)
    return {
        "internal": internal,
        "external": external,
        "cooks": internal**2 * ratio / fit.p,
        "dffits": external * ratio.sqrt(),
        "dfbetas": dfbetas,
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

    def add(self, rows: Rows) -> None:
        self.rows += len(rows.fitted)
        self.column_sums += rows.column_sums
        self.target_sums += rows.target_sums

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
        if gap > pairing_tolerance(state):
            raise InputError(
                "the rows of X and y are not paired as they were in the fit (rows "
                "reordered in one of them?); " + fix
            )


def row_blocks(n_rows: int) -> list[slice]:
    """The row blocks of a chunk of ``n_rows`` rows."""
    return [slice(s, min(s + ROW_BLOCK, n_rows)) for s in range(0, n_rows, ROW_BLOCK)]
