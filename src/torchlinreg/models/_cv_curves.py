"""Cross-validation curves from fold states: the models of each training state along a
grid of penalties, scored on the test state by :func:`~._fold_states.fold_mse`.

Everything here works on (p + 2) × (p + 2) factors, never on rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..solvers.state import LeastSquaresState
from ._fold_states import FoldStates, fold_mse


@dataclass(frozen=True)
class Centred:
    """The weighted, centred (with an intercept) cross products of one target:
    G = XᵀWX, q = XᵀWy, yᵀWy, and n = Σ w, as the elastic-net solver takes them."""

    gram: np.ndarray
    xty: np.ndarray
    yty: float
    n: float


def centred(state: LeastSquaresState) -> Centred:
    """From R: with the intercept column first, the trailing block of R is the R factor
    of the weighted-centred [X, y], so its cross products are the centred ones."""
    c, p = int(state.fit_intercept), state.n_features
    Rc = state.R[c:, c:].cpu().numpy()
    RX, ry = Rc[:, :p], Rc[:, p]
    return Centred(RX.T @ RX, RX.T @ ry, float(ry @ ry), state.weight_sum)


def intercepts(state: LeastSquaresState, coefs: torch.Tensor) -> torch.Tensor:
    """The intercept of each slope vector (column of ``coefs``, p × a) on ``state``'s
    rows, from R's first row (the weighted means), back in the data's units; zeros
    without an intercept."""
    R = state.R
    if not state.fit_intercept:
        return torch.zeros(coefs.shape[1], dtype=R.dtype, device=R.device)
    p1 = state.n_params
    r00 = R[0, 0]
    b_s = (R[0, p1] - R[0, 1:p1] @ coefs) / r00
    return b_s + state.shift_y - state.shift_x @ coefs


def ridge_coefs(state: LeastSquaresState, alphas: np.ndarray) -> torch.Tensor:
    """Ridge slopes (p × a) of ``state`` for each alpha: min ‖R_c β − r‖² + α‖β‖² with
    R_c = U S Vᵀ, so β(α) = V·diag(s / (s² + α))·Uᵀr for every alpha from one SVD.
    Alpha 0 gives the minimum-norm least-squares slopes (zero singular values are
    dropped; a column with no variation gets zero)."""
    from ..solvers.tolerance import rank_tolerance

    c, p = int(state.fit_intercept), state.n_features
    R = state.R
    Rc, r = R[c : c + p, c : c + p], R[c : c + p, c + p]
    U, s, Vh = torch.linalg.svd(Rc)
    a = torch.as_tensor(alphas, dtype=R.dtype, device=R.device)
    keep = s > rank_tolerance(p) * max(float(s[0]), 1e-300)
    factor = torch.where(keep.unsqueeze(1), s.unsqueeze(1) / (s.unsqueeze(1) ** 2 + a), 0.0)
    return Vh.T @ (factor * (U.T @ r).unsqueeze(1))


def ridge_curve(folds: FoldStates, alphas: np.ndarray) -> np.ndarray:
    """MSE of ridge on each test fold: (n_alphas, n_folds)."""
    out = np.empty((len(alphas), folds.n_folds))
    for k, (train, test) in enumerate(zip(folds.train, folds.test, strict=True)):
        coefs = ridge_coefs(train, alphas)
        out[:, k] = fold_mse(test, coefs, intercepts(train, coefs))
    return out


def alpha_grid(full: Centred, l1_ratio: float, eps: float, n_alphas: int) -> np.ndarray:
    """scikit-learn's grid: alpha_max = max|Xcᵀ W yc| / (Σw · l1_ratio), the smallest
    penalty with all slopes zero, then ``n_alphas`` log-spaced values down to
    ``eps · alpha_max``."""
    if l1_ratio == 0:
        raise InputError(
            "the automatic alpha grid needs l1_ratio > 0 (with l1_ratio = 0 no penalty "
            "zeroes every slope); give the penalties with alphas=[...]"
        )
    alpha_max = float(np.abs(full.xty).max()) / (full.n * l1_ratio) if full.xty.size else 0.0
    resolution = float(np.finfo(np.float64).resolution)
    if alpha_max <= resolution:
        return np.full(n_alphas, resolution)
    return np.geomspace(alpha_max, alpha_max * eps, num=n_alphas)


def enet_curve(
    folds: FoldStates, alphas: np.ndarray, l1_ratio: float, tol: float, max_iter: int
) -> np.ndarray:
    """MSE of the elastic-net path of each training fold on its test fold:
    (n_alphas, n_folds). ``alphas`` decreasing (the path is warm-started)."""
    from ..solvers.enet import enet_path

    out = np.empty((len(alphas), folds.n_folds))
    for k, (train, test) in enumerate(zip(folds.train, folds.test, strict=True)):
        cc = centred(train)
        path = enet_path(cc.gram, cc.xty, cc.yty, cc.n, alphas, l1_ratio,
                         tol=tol, max_iter=max_iter)  # fmt: skip
        coefs = torch.as_tensor(path.coefs.T, dtype=torch.float64)
        out[:, k] = fold_mse(test, coefs, intercepts(train, coefs.to(train.R)))
    return out
