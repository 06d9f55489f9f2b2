"""Elastic net on the Gram matrix: coordinate descent with covariance updates.

The problem, scikit-learn's ``ElasticNet`` objective with weights w (Σ w = n)::

    f(β) = Σ wᵢ (yᵢ − xᵢᵀβ)² / (2n) + α ρ ‖β‖₁ + α (1 − ρ) ‖β‖² / 2

needs the data only through G = XᵀWX, q = XᵀWy and yᵀWy (centred when an intercept is
fitted; the intercept is not penalised). Multiplied by n it is

    F(β) = ½ βᵀGβ − qᵀβ + ½ yᵀWy + a ‖β‖₁ + b ‖β‖² / 2,   a = nαρ, b = nα(1 − ρ),

which is what the solver works with (scikit-learn's ``cd_fast`` does the same).

Each pass over one alpha does two things:

1. An exact solve on the working set: the coefficients that are nonzero keep their
   signs, the zero ones whose gradient violates the optimality condition |gⱼ| ≤ a enter
   with the sign of gⱼ, and the smooth problem on that sign pattern is one linear
   system, (G_AA + b I) β_A = q_A − a s_A. When its solution keeps the signs it is the
   exact minimiser on that face and lowers F; it is accepted then, else discarded.
   With warm starts along a path the support changes little between alphas, so this
   usually finishes an alpha in one solve.
2. Otherwise one sweep of coordinate descent over the working set (glmnet's covariance
   updates: Gβ is kept up to date, so a coordinate costs O(p)), which always makes
   progress and guarantees convergence where the guessed signs are wrong.

The stopping rule is scikit-learn's: the duality gap of F at most ``tol · yᵀWy``
(equivalently, the gap of f at most ``tol · yᵀWy / n``), with the dual point scaled
to feasibility as in its ``cd_fast`` (Mairal's rescaling; formulation B for pure ridge).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from ..errors import ConvergenceWarning, InputError

if TYPE_CHECKING:
    from .state import LeastSquaresState

__all__ = ["EnetPath", "duality_gap", "enet_path", "objective", "state_gram"]


@dataclass(frozen=True)
class EnetPath:
    """The solutions along a path of penalties.

    Attributes
    ----------
    alphas : ndarray (n_alphas,)
        The penalties, in the order given (decreasing).
    coefs : ndarray (n_alphas, n_features)
        ``coefs[i]`` minimises the objective at ``alphas[i]``.
    dual_gaps : ndarray (n_alphas,)
        The duality gap of the objective f (scikit-learn's units) at each solution.
    n_iters : ndarray (n_alphas,) of int
        Passes spent on each alpha (each an exact working-set solve and, unless that
        solved it, one coordinate-descent sweep); 0 when the warm start already met
        the tolerance.
    """

    alphas: np.ndarray
    coefs: np.ndarray
    dual_gaps: np.ndarray
    n_iters: np.ndarray


def state_gram(state: LeastSquaresState) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(G (p, p), XᵀWy (p, k), yᵀWy (k,), Σ w) of a state's rows, centred (weighted
    means) when it fits an intercept: the inputs of :func:`enet_path`, one target a
    column.

    The state's R factors √w·[1, X − x₀, Y − y₀]; dropping its intercept row and column
    leaves the R factor T of the centred [X, Y] (the Schur complement of the intercept
    in RᵀR is TᵀT), so the centred cross products come from T without cancellation.
    """
    c = int(state.fit_intercept)
    p = state.n_features
    T = state.R[c:, c:].to("cpu").numpy()
    cross = T.T @ T
    return cross[:p, :p], cross[:p, p:], np.diag(cross)[p:].copy(), float(state.weight_sum)


def check_penalty(alpha: Any, l1_ratio: Any) -> tuple[float, float]:
    """(alpha, l1_ratio) as floats, or an InputError naming the bad one."""
    try:
        a, r = float(alpha), float(l1_ratio)
    except (TypeError, ValueError):
        raise InputError(
            f"alpha and l1_ratio must be numbers, got alpha={alpha!r}, l1_ratio={l1_ratio!r}"
        ) from None
    if not (math.isfinite(a) and a >= 0):
        raise InputError(f"alpha must be a finite number >= 0, got {alpha!r}")
    if not 0.0 <= r <= 1.0:
        raise InputError(f"l1_ratio must lie in [0, 1], got {l1_ratio!r}")
    return a, r


def _problem(gram: Any, xty: Any, yty: Any, n: Any) -> tuple[np.ndarray, np.ndarray, float, float]:
    G = np.ascontiguousarray(gram, dtype=np.float64)
    q = np.ascontiguousarray(xty, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1] or q.shape != (G.shape[0],):
        raise InputError(
            f"gram must be (p, p) and xty (p,), got {G.shape} and {q.shape}; "
            "pass one target at a time"
        )
    yty_f, n_f = float(yty), float(n)
    if not (np.isfinite(G).all() and np.isfinite(q).all() and math.isfinite(yty_f)):
        raise InputError("gram, xty and yty must be finite")
    if not (math.isfinite(n_f) and n_f > 0):
        raise InputError(f"n (the sum of the weights) must be > 0, got {n!r}")
    return G, q, yty_f, n_f


def _primal(Gw: np.ndarray, w: np.ndarray, q: np.ndarray, yty: float, a: float, b: float) -> float:
    """F(w), n times the objective."""
    qw = float(q @ w)
    rss = yty - 2.0 * qw + float(w @ Gw)
    return 0.5 * (rss + b * float(w @ w)) + a * float(np.abs(w).sum())


def _gap(Gw: np.ndarray, w: np.ndarray, q: np.ndarray, yty: float, a: float, b: float) -> float:
    """The duality gap of F at w (scikit-learn's ``gap_enet_gram``)."""
    qw = float(q @ w)
    rss = yty - 2.0 * qw + float(w @ Gw)  # ‖y − Xw‖²_W
    ry = yty - qw  # (y − Xw)ᵀWy
    w2 = float(w @ w)
    if a == 0.0:
        XtR = q - Gw
        norm2 = float(XtR @ XtR)
        if b == 0.0:  # least squares: no dual; the squared gradient, as scikit-learn
            return norm2
        return rss + 0.5 * b * w2 - ry + norm2 / (2.0 * b)
    XtA = q - Gw - b * w
    dual_norm = float(np.abs(XtA).max()) if XtA.size else 0.0
    scale = a / dual_norm if dual_norm > a else 1.0
    primal = 0.5 * (rss + b * w2) + a * float(np.abs(w).sum())
    dual = -0.5 * scale**2 * (rss + b * w2) + scale * ry
    return primal - dual


def objective(
    gram: Any, xty: Any, yty: Any, n: Any, coef: Any, alpha: float, l1_ratio: float = 1.0
) -> float:
    """scikit-learn's elastic-net objective f at ``coef`` from the (weighted, centred)
    Gram matrix ``gram`` = XᵀWX, ``xty`` = XᵀWy, ``yty`` = yᵀWy and ``n`` = Σ w."""
    G, q, yty_f, n_f = _problem(gram, xty, yty, n)
    alpha_f, rho = check_penalty(alpha, l1_ratio)
    w = np.asarray(coef, dtype=np.float64)
    a, b = n_f * alpha_f * rho, n_f * alpha_f * (1.0 - rho)
    return _primal(G @ w, w, q, yty_f, a, b) / n_f


def duality_gap(
    gram: Any, xty: Any, yty: Any, n: Any, coef: Any, alpha: float, l1_ratio: float = 1.0
) -> float:
    """The duality gap of f at ``coef`` (an upper bound on f(coef) − min f; scikit-learn's
    ``dual_gap_``), from the same quantities as :func:`objective`."""
    G, q, yty_f, n_f = _problem(gram, xty, yty, n)
    alpha_f, rho = check_penalty(alpha, l1_ratio)
    w = np.asarray(coef, dtype=np.float64)
    a, b = n_f * alpha_f * rho, n_f * alpha_f * (1.0 - rho)
    return _gap(G @ w, w, q, yty_f, a, b) / n_f


class _Problem:
    """G, q, yᵀWy with the iterate w and Gw kept in step."""

    def __init__(self, G: np.ndarray, q: np.ndarray, yty: float, w: np.ndarray) -> None:
        self.G, self.q, self.yty = G, q, yty
        self.diag = np.diag(G).tolist()
        self.w = w
        self.Gw = G @ w

    def gradient(self, b: float) -> np.ndarray:
        """−∇ of the smooth part of F: q − Gw − b w."""
        return self.q - self.Gw - b * self.w

    def working_set(self, a: float, b: float) -> np.ndarray:
        """The nonzero coefficients and the zero ones violating |gⱼ| ≤ a."""
        return (self.w != 0.0) | (np.abs(self.gradient(b)) > a)

    def polish(self, a: float, b: float) -> bool:
        """Feature-sign search steps (Lee et al., 2007) until the working set's sign
        pattern is optimal or a step makes no progress. True when F went down."""
        improved = False
        for _ in range(self.w.size + 8):  # each step lowers F; a few more than p suffice
            # Every violator at once is fastest when their guessed signs hold. When they
            # do not (correlated columns entering together), first the optimum on the
            # support alone, then the largest violator alone, as in feature-sign search
            # (from a sign pattern's optimum that step always makes progress).
            for entering in ("all", "none", "largest"):
                step = self._sign_step(a, b, entering)
                if step is not None:
                    break
            if step is None:
                return improved
            improved = True
            if step:  # the exact minimiser on the pattern, with no violator left
                return True
        return improved

    def _sign_step(self, a: float, b: float, entering: str) -> bool | None:
        """One step: solve the smooth problem on the working set's sign pattern, then
        move to the lowest of F at that solution and at every point of the segment to it
        where a coefficient changes sign. None when no point lowers F; True when the
        solution itself was taken and no coordinate violates optimality there."""
        w, g = self.w, self.gradient(b)
        violation = np.where(w == 0.0, np.abs(g) - a, 0.0)
        enter = violation > 0
        if entering == "none":
            enter[:] = False
        elif entering == "largest" and enter.any():
            enter = violation == violation.max()
        idx = np.flatnonzero((w != 0.0) | enter)
        if idx.size == 0:
            return None
        start = w[idx]
        signs = np.where(start != 0.0, np.sign(start), np.sign(g[idx]))
        GA = self.G[np.ix_(idx, idx)]
        H = GA + b * np.eye(idx.size) if b else GA
        try:
            factor = cho_factor(H, check_finite=False)
        except np.linalg.LinAlgError:  # singular on this set: leave it to the sweeps
            return None
        z = cho_solve(factor, self.q[idx] - a * signs, check_finite=False)
        # Candidate steps: the whole way, and where a nonzero coefficient reaches zero.
        cross = (start != 0.0) & (start * z < 0)
        ts = np.append(start[cross] / (start[cross] - z[cross]), 1.0)
        points = start + ts[:, None] * (z - start)
        hits = np.flatnonzero(cross)
        points[np.arange(hits.size), hits] = 0.0  # exactly zero where it crosses
        values = self._restricted_primal(np.vstack([start, points]), idx, GA, a, b)
        best = int(np.argmin(values[1:]))
        if not values[1 + best] < values[0]:
            return None
        chosen = points[best]
        self.w[:] = 0.0
        self.w[idx] = chosen
        self.Gw = self.G[:, idx] @ chosen
        if best != ts.size - 1 or not (chosen * signs > 0).all():
            return False
        return not (np.abs(self.gradient(b)) > a * (1 + 1e-12))[self.w == 0.0].any()

    def _restricted_primal(
        self, points: np.ndarray, idx: np.ndarray, GA: np.ndarray, a: float, b: float
    ) -> np.ndarray:
        """F at each row of ``points`` (coefficients on ``idx``, zero elsewhere)."""
        quad = ((points @ GA) * points).sum(1) + b * (points * points).sum(1)
        return 0.5 * quad - points @ self.q[idx] + a * np.abs(points).sum(1)

    def sweep(self, a: float, b: float) -> None:
        """One cycle of coordinate descent over the working set."""
        G, q, w, Gw, diag = self.G, self.q, self.w, self.Gw, self.diag
        for j in np.flatnonzero(self.working_set(a, b)).tolist():
            d = diag[j]
            if d == 0.0:  # a zero column stays at zero (scikit-learn skips it too)
                continue
            wj = float(w[j])
            t = float(q[j] - Gw[j]) + wj * d
            new = (t - a if t > a else t + a if t < -a else 0.0) / (d + b)
            if new != wj:
                Gw += (new - wj) * G[j]  # G is symmetric: row j is column j
                w[j] = new

    def gap(self, a: float, b: float) -> float:
        return _gap(self.Gw, self.w, self.q, self.yty, a, b)


def _solve(prob: _Problem, a: float, b: float, tol: float, max_iter: int) -> tuple[float, int]:
    """Minimise F at one penalty from the current iterate; (gap of F, passes)."""
    gap = prob.gap(a, b)
    if gap <= tol:
        return gap, 0
    for it in range(1, max_iter + 1):
        if prob.polish(a, b):
            gap = prob.gap(a, b)
            if gap <= tol:
                return gap, it
        prob.sweep(a, b)
        gap = prob.gap(a, b)
        if gap <= tol:
            return gap, it
    return gap, max_iter


def _check_alphas(alphas: Any) -> np.ndarray:
    values = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if values.ndim != 1 or values.size == 0:
        raise InputError("alphas must be a non-empty 1-d sequence of penalties")
    if not (np.isfinite(values).all() and (values >= 0).all()):
        bad = values[~(np.isfinite(values) & (values >= 0))][0]
        raise InputError(f"alpha must be a finite number >= 0, got {bad!r}")
    if (np.diff(values) > 0).any():
        raise InputError("alphas must be in decreasing order (warm starts go from large to small)")
    return values


def enet_path(
    gram: Any,
    xty: Any,
    yty: Any,
    n: Any,
    alphas: Any,
    l1_ratio: float = 1.0,
    *,
    tol: float = 1e-4,
    max_iter: int = 1000,
    coef_init: Any = None,
) -> EnetPath:
    """Elastic-net (lasso when ``l1_ratio`` = 1) solutions along ``alphas``, warm-started.

    Parameters
    ----------
    gram, xty, yty : the weighted, centred (with an intercept) XᵀWX (p, p), XᵀWy (p,)
        and yᵀWy of one target.
    n : float
        Σ w, the number of rows when unweighted (scikit-learn rescales weights to sum to
        the number of rows; the objective depends only on w / Σ w).
    alphas : sequence of float, decreasing
        The penalties; each solution starts from the previous one.
    l1_ratio : float in [0, 1]
        ρ: the l1 share of the penalty.
    tol, max_iter :
        Stop an alpha when its duality gap is at most ``tol · yty / n`` (scikit-learn's
        rule); after ``max_iter`` passes a :class:`~torchlinreg.errors.ConvergenceWarning`
        names the gap reached.
    coef_init : array (p,), optional
        Start of the first alpha (default zeros).
    """
    G, q, yty_f, n_f = _problem(gram, xty, yty, n)
    values = _check_alphas(alphas)
    _, rho = check_penalty(values[-1], l1_ratio)
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 1):
        raise InputError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    if not (math.isfinite(float(tol)) and float(tol) >= 0):
        raise InputError(f"tol must be a finite number >= 0, got {tol!r}")
    p = G.shape[0]
    w = np.zeros(p) if coef_init is None else np.array(coef_init, dtype=np.float64).reshape(p)
    prob = _Problem(G, q, yty_f, w)
    stop = float(tol) * yty_f  # the gap of F = n · f: tol · yᵀWy / n on f
    coefs = np.empty((values.size, p))
    gaps = np.empty(values.size)
    iters = np.empty(values.size, dtype=np.int64)
    for i, alpha in enumerate(values.tolist()):
        a, b = n_f * alpha * rho, n_f * alpha * (1.0 - rho)
        gap, iters[i] = _solve(prob, a, b, stop, int(max_iter))
        coefs[i], gaps[i] = prob.w, gap / n_f
    missed = np.flatnonzero(gaps * n_f > stop)
    if missed.size:
        _warn_unconverged(values, gaps, missed, stop / n_f, int(max_iter))
    return EnetPath(values, coefs, gaps, iters)


def _warn_unconverged(
    alphas: np.ndarray, gaps: np.ndarray, missed: np.ndarray, tol: float, max_iter: int
) -> None:
    from ..models._diagnostics import user_stacklevel  # models import solvers: lazily

    i = int(missed[0])
    where = f"alpha={alphas[i]:.6g}"
    if missed.size > 1:
        where += f" (and {missed.size - 1} more of {alphas.size} alphas)"
    warnings.warn(
        f"coordinate descent did not converge within max_iter={max_iter} at {where}: "
        f"duality gap {gaps[i]:.3e} > tolerance {tol:.3e}; increase max_iter or tol, "
        "or scale the features",
        ConvergenceWarning,
        stacklevel=user_stacklevel(),
    )
