"""The numbers behind the pictures of gradient training: the cost per epoch against
the exact optimum's (the training curve), and the path of (W, b) over the contours of
the exact quadratic cost (the tutorial's picture)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

# Contour levels J* + (J_top − J*)·2^(−k): one per halving of the excess cost, which a
# gradient path crosses at an even pace while it converges linearly.
N_LEVELS = 12


@dataclass(frozen=True)
class TrainingCurve:
    """Cost per epoch (``cost[i]`` over epoch ``epoch[i]``, before its updates, as the
    tutorial prints it) and the exact least-squares optimum's cost (None when it was
    not computed: another loss, or ``compare_exact=False``)."""

    epoch: np.ndarray
    cost: np.ndarray
    exact_cost: float | None


def _history(model: Any) -> Any:
    history = getattr(model, "history_", None)
    if history is None or len(history) == 0:
        name = type(model).__name__
        raise InputError(
            f"this {name} has no training history (a model read from a file keeps none, "
            "and exact models train no epochs); fit it to plot its training curve"
        )
    return history


def training_curve(model: Any) -> TrainingCurve:
    """The training curve of a fitted :class:`~torchlinreg.GDRegressor` (its
    ``history_`` and ``exact_``); a model without history is refused."""
    history = _history(model)
    gap = getattr(model, "exact_", None)
    return curve_from(history.epoch, history.cost, None if gap is None else gap.cost)


def curve_from(epoch: Any, cost: Any, exact_cost: float | None) -> TrainingCurve:
    """A training curve from plain numbers (a model file's, the demo's)."""
    e = np.asarray(epoch, dtype=np.int64).ravel()
    c = np.asarray(cost, dtype=np.float64).ravel()
    if e.size == 0 or e.shape != c.shape:
        raise InputError("a training curve needs one cost per epoch, and at least one epoch")
    return TrainingCurve(e, c, None if exact_cost is None else float(exact_cost))


@dataclass(frozen=True)
class GradientPath:
    """The path of the parameters over the cost surface. ``names`` are the
    parameters (``("W", "b")``, ``("W1", "W2")`` or ``("W",)``); ``path[i]`` their
    values after epoch ``i``; ``optimum``/``optimum_cost`` the exact least-squares
    answer and its cost. For two parameters ``grid`` holds the axes and ``cost`` the
    exact cost on that grid (``cost[j, i]`` at ``(grid[0][i], grid[1][j])``), drawn at
    ``levels``; for one, ``grid[0]`` and ``cost`` are the cost curve itself."""

    names: tuple[str, ...]
    path: np.ndarray
    path_cost: np.ndarray
    optimum: np.ndarray
    optimum_cost: float
    grid: tuple[np.ndarray, ...]
    cost: np.ndarray
    levels: np.ndarray


@dataclass(frozen=True)
class Quadratic:
    """The mean squared error as an exact quadratic in θ: ``J(θ) = J* + (θ − θ*)ᵀ A
    (θ − θ*)`` with ``A = X̃ᵀ W X̃ / Σw`` (X̃: the columns of the parameters, a column
    of ones for b), computed in float64 from the data."""

    A: np.ndarray
    optimum: np.ndarray
    optimum_cost: float

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        """J at each row of ``theta`` (…, P)."""
        d = np.asarray(theta, dtype=np.float64) - self.optimum
        return self.optimum_cost + np.einsum("...i,ij,...j->...", d, self.A, d)


def quadratic_cost(columns: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> Quadratic:
    """The exact least-squares quadratic of ``y`` on ``columns`` (n, P), weighted by
    ``w``: the cost is ``Σ w (y − X̃θ)² / Σ w``, its optimum by a least-squares solve."""
    X = np.asarray(columns, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    w = np.ones(y.shape[0]) if w is None else np.asarray(w, dtype=np.float64).ravel()
    root = np.sqrt(w)[:, None]
    theta, *_ = np.linalg.lstsq(X * root, y * root[:, 0], rcond=None)
    resid = y - X @ theta
    total = float(w.sum())
    return Quadratic((X * w[:, None]).T @ X / total, theta, float(w @ resid**2 / total))


def contour_levels(optimum_cost: float, top_cost: float, n: int = N_LEVELS) -> np.ndarray:
    """``J* + (J_top − J*)·2^(−k)`` for ``k = n−1, …, 0`` (increasing)."""
    k = np.arange(n - 1, -1, -1, dtype=np.float64)
    return optimum_cost + (top_cost - optimum_cost) * 2.0**-k


def _parameters(model: Any, n_features: int) -> tuple[tuple[str, ...], np.ndarray]:
    """The parameter names and their path (epochs × P) from ``history_``."""
    history = _history(model)
    if history.coef is None:
        raise InputError(
            "this model's history keeps no per-epoch coefficients (only small models "
            "do); the gradient path cannot be drawn"
        )
    coef = np.asarray(history.coef, dtype=np.float64).reshape(len(history), -1)
    if coef.shape[1] != n_features:
        raise InputError("the gradient path is drawn for one target only")
    columns = [coef]
    names = ("W",) if n_features == 1 else tuple(f"W{i + 1}" for i in range(n_features))
    if model.fit_intercept:
        columns.append(np.asarray(history.intercept, dtype=np.float64).reshape(-1, 1))
        names = (*names, "b")
    return names, np.hstack(columns)


def gradient_path(
    model: Any, X: Any, y: Any, sample_weight: Any = None, *, n_levels: int = N_LEVELS
) -> GradientPath:
    """The path of a fitted :class:`~torchlinreg.GDRegressor` with one or two
    parameters (one feature with an intercept, or one or two without) over the exact
    squared-error cost of ``X``, ``y`` (its training data). The grid spans the path
    and the optimum with a tenth of margin; ``n_levels`` contour levels by
    :func:`contour_levels` up to the highest cost on the path."""
    if getattr(model, "loss", "squared_error") != "squared_error":
        raise InputError("the gradient path is drawn over the squared error; this model used "
                         f"loss={model.loss!r}")  # fmt: skip
    X = np.asarray(X, dtype=np.float64)
    X = X.reshape(-1, 1) if X.ndim == 1 else X
    names, path = _parameters(model, X.shape[1])
    if len(names) > 2:
        raise InputError(
            f"the gradient path is drawn for one or two parameters; this model has "
            f"{len(names)} ({', '.join(names)})"
        )
    columns = np.hstack([X, np.ones((X.shape[0], 1))]) if model.fit_intercept else X
    q = quadratic_cost(columns, y, sample_weight)
    return path_over(names, path, q, n_levels)


def path_over(
    names: tuple[str, ...], path: np.ndarray, q: Quadratic, n_levels: int = N_LEVELS
) -> GradientPath:
    """The path and the cost surface around it (see :func:`gradient_path`)."""
    both = np.vstack([path, q.optimum[None, :]])
    low, high = both.min(axis=0), both.max(axis=0)
    margin = np.maximum(0.1 * (high - low), 1e-3 * np.maximum(1.0, np.abs(high)))
    axes = tuple(
        np.linspace(low[i] - margin[i], high[i] + margin[i], 121) for i in range(len(names))
    )
    if len(names) == 1:
        cost = q(axes[0][:, None])
    else:
        gx, gy = np.meshgrid(axes[0], axes[1])
        cost = q(np.stack([gx, gy], axis=-1))
    path_cost = q(path)
    levels = contour_levels(q.optimum_cost, float(np.max(path_cost)), n_levels)
    return GradientPath(names, path, path_cost, q.optimum, q.optimum_cost, axes, cost, levels)
