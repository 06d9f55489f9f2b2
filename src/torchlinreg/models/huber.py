"""``HuberRegressor``: linear regression robust to outliers, scikit-learn's objective.

The coefficients β, intercept c and scale σ minimise (scikit-learn's ``HuberRegressor``)::

    Σ wᵢ (σ + H_ε(rᵢ/σ) σ) + α ‖β‖²,   rᵢ = yᵢ − xᵢᵀβ − c,
    H_ε(z) = z² (|z| ≤ ε),  2ε|z| − ε² (|z| > ε),

jointly convex in (β, c, σ) for σ > 0. As there, L-BFGS-B drives the minimisation
(σ bounded below by 10ε_machine, started at β = 0, c = 0, σ = 1); each evaluation of the
objective and its gradient is one pass over the rows: over the array in memory, or
over the chunks of a stream, which must therefore be readable again.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..devices import DeviceLike
from ..errors import ConvergenceWarning, InputError
from ._base import RegressorBase
from ._stream import ChunkSource, ChunkStream
from ._types import ArrayLike

if TYPE_CHECKING:
    from typing_extensions import Self

    from ..data.chunks import Chunk

__all__ = ["HuberRegressor"]


class HuberRegressor(RegressorBase):
    """L2-regularised linear regression with the Huber loss and a jointly estimated
    scale, as scikit-learn's ``HuberRegressor`` (same parameters, objective, solver and
    attributes).

    Parameters
    ----------
    epsilon : float >= 1
        Residuals beyond ``epsilon · scale_`` count linearly (1.35 gives 95% efficiency
        under normal errors).
    alpha : float >= 0
        The weight of ‖β‖² (not divided by the number of rows).
    max_iter : int >= 1
        L-BFGS-B iterations; each needs one or more passes over the data.
    fit_intercept : bool
    tol : float >= 0
        L-BFGS-B stops when every component of the projected gradient is at most
        ``tol`` (scikit-learn's ``gtol``).
    device : str or torch.device, optional
        Where the passes compute (``"cpu"``, ``"cuda"``, ``"auto"``).

    Attributes
    ----------
    coef_ (n_features,), intercept_ (float), scale_ (σ), n_iter_ (L-BFGS-B iterations),
    n_outliers_ (rows with |r| > ε σ), outliers_ (a mask per row; ``fit`` only).
    """

    def __init__(
        self,
        *,
        epsilon: float = 1.35,
        alpha: float = 1e-4,
        max_iter: int = 100,
        fit_intercept: bool = True,
        tol: float = 1e-5,
        device: DeviceLike | None = None,
    ) -> None:
        self.epsilon = epsilon
        self.alpha = alpha
        self.max_iter = max_iter
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.device = device

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = False
        return tags

    def _check_params(self) -> None:
        def real(name: str, value: Any, low: float) -> None:
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if not (ok and low <= value < np.inf):
                raise InputError(f"{name} must be a finite number >= {low:g}, got {value!r}")

        real("epsilon", self.epsilon, 1.0)
        real("alpha", self.alpha, 0.0)
        real("tol", self.tol, 0.0)
        if not isinstance(self.max_iter, numbers.Integral) or isinstance(self.max_iter, bool):
            raise InputError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        if self.max_iter < 1:
            raise InputError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        if not isinstance(self.fit_intercept, (bool, np.bool_)):
            raise InputError(f"fit_intercept must be True or False, got {self.fit_intercept!r}")

    def _device(self) -> Any:
        if self.device is None:
            return None
        from ..devices import resolve_device

        return resolve_device(self.device)

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
        """Fit on in-memory data (y one target); returns ``self``."""
        from ..data.chunks import validate_chunk

        self._check_params()
        chunk = validate_chunk(X, y, sample_weight, device=self._device())
        _one_target(chunk)
        _column_vector(y)
        self._set_feature_names(X, y)
        self._minimise(lambda: [chunk], chunk.X.shape[1])
        r = _residuals(chunk, self.coef_, float(self.intercept_))
        self.outliers_ = (r.abs() > self.scale_ * self.epsilon).cpu().numpy()
        return self

    def fit_chunks(
        self, chunks: ChunkSource, *, feature_names: Sequence[str] | None = None
    ) -> Self:
        """Fit from a stream of ``(X, y)`` or ``(X, y, sample_weight)`` chunks, read once
        per evaluation of the objective (a few per L-BFGS-B iteration): ``chunks`` must
        be re-iterable (a list, a reader object) or a function returning a fresh
        iterator. ``feature_names`` name the columns."""
        self._check_params()
        stream = ChunkStream(chunks, self._device())
        if stream.one_shot:
            raise InputError(
                "HuberRegressor reads the chunks once per iteration; pass a re-iterable "
                "(a list, a reader object) or a function returning a fresh iterator, not a "
                "one-shot iterator"
            )
        n_features = _first_width(stream())
        self._set_feature_names(None)
        if feature_names is not None:
            if len(feature_names) != n_features:
                raise InputError(f"{len(feature_names)} feature names for {n_features} columns")
            self.feature_names_in_ = np.asarray(list(feature_names), dtype=object)
        self._minimise(stream, n_features)
        self.__dict__.pop("outliers_", None)
        return self

    def _minimise(self, passes: Any, n_features: int) -> None:
        """L-BFGS-B from scikit-learn's start; sets the fitted attributes."""
        from scipy import optimize

        k = n_features + int(bool(self.fit_intercept))
        start = np.zeros(k + 1)
        start[-1] = 1.0
        bounds = [(-np.inf, np.inf)] * k + [(np.finfo(np.float64).eps * 10, np.inf)]
        result = optimize.minimize(
            _loss_and_gradient, start, method="L-BFGS-B", jac=True, bounds=bounds,
            args=(passes, n_features, bool(self.fit_intercept), float(self.epsilon),
                  float(self.alpha)),
            options={"maxiter": int(self.max_iter), "gtol": float(self.tol)},
        )  # fmt: skip
        if result.status != 0:
            warnings.warn(
                f"HuberRegressor: L-BFGS-B stopped after {result.nit} iterations without "
                f"meeting tol={self.tol:g} ({_text(result.message)}); increase max_iter, "
                "or scale the features",
                ConvergenceWarning,
                stacklevel=_stacklevel(),
            )
        theta = result.x
        self.coef_ = theta[:n_features].copy()
        self.intercept_ = float(theta[n_features]) if self.fit_intercept else 0.0
        self.scale_ = float(theta[-1])
        self.n_iter_ = int(min(result.nit, self.max_iter))
        self.n_features_in_ = n_features
        self.n_outliers_ = int(_count_outliers(passes, self.coef_, self.intercept_,
                                               self.scale_ * float(self.epsilon)))  # fmt: skip


def _text(message: Any) -> str:
    return message.decode() if isinstance(message, bytes) else str(message)


def _stacklevel() -> int:
    from ._diagnostics import user_stacklevel

    return user_stacklevel() - 1  # counted from here, a frame below warnings.warn's caller


def _one_target(chunk: Chunk) -> None:
    if chunk.Y.shape[1] != 1:
        raise InputError(
            f"HuberRegressor fits one target; y has {chunk.Y.shape[1]} columns (fit one model "
            "per column)"
        )


class DataConversionWarning(UserWarning):
    """y was a column vector where one target is fitted (scikit-learn's warning)."""


def _column_vector(y: Any) -> None:
    if len(getattr(y, "shape", ())) == 2:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; give y as a 1-d "
            "array (y.ravel())",
            DataConversionWarning,
            stacklevel=_stacklevel(),
        )


def _first_width(chunks: Iterable[Chunk]) -> int:
    for chunk in chunks:
        return int(chunk.X.shape[1])
    raise InputError("the chunk stream was empty; it must hold at least one row")


def _residuals(chunk: Chunk, coef: np.ndarray, intercept: float) -> Any:
    import torch

    X = chunk.X.to(torch.float64)
    beta = torch.as_tensor(coef, dtype=torch.float64, device=X.device)
    return chunk.Y[:, 0] - X @ beta - intercept


def _loss_and_gradient(
    theta: np.ndarray, passes: Any, p: int, fit_intercept: bool, epsilon: float, alpha: float
) -> tuple[float, np.ndarray]:
    """scikit-learn's Huber objective and its gradient in (β, c, σ), summed over one pass."""
    import torch

    from ..data.arrays import check_finite

    beta, sigma = theta[:p], float(theta[-1])
    c = float(theta[p]) if fit_intercept else 0.0
    loss, grad = 0.0, np.zeros(theta.size)
    width = None
    for chunk in passes():
        _one_target(chunk)
        if width is None:
            width = chunk.X.shape[1]
        if chunk.X.shape[1] != p:
            raise InputError(f"a chunk has {chunk.X.shape[1]} features, the first had {p}")
        if not chunk.finite:
            check_finite(chunk.X, "X")
        X = chunk.X.to(torch.float64)
        r = _residuals(chunk, beta, c)
        w = torch.ones_like(r) if chunk.sample_weight is None else chunk.sample_weight
        out = r.abs() > epsilon * sigma
        w_in = torch.where(out, 0.0, w)
        w_out = torch.where(out, w, 0.0)
        squared = float((w_in * r * r).sum())
        # d/dr of the inlier terms r²/σ is 2r/σ; of the outlier terms 2ε|r|, 2ε sign(r).
        dr = w_in * r * (2.0 / sigma) + w_out * torch.sign(r) * (2.0 * epsilon)
        grad[:p] -= (dr @ X).cpu().numpy()
        if fit_intercept:
            grad[p] -= float(dr.sum())
        total, total_out = float(w.sum()), float(w_out.sum())
        loss += total * sigma + squared / sigma
        loss += 2.0 * epsilon * float((w_out * r.abs()).sum()) - sigma * total_out * epsilon**2
        grad[-1] += total - total_out * epsilon**2 - squared / sigma**2
    loss += alpha * float(beta @ beta)
    grad[:p] += 2.0 * alpha * beta
    return loss, grad


def _count_outliers(passes: Any, coef: np.ndarray, intercept: float, bound: float) -> int:
    count = 0
    for chunk in passes():
        count += int((_residuals(chunk, coef, intercept).abs() > bound).sum())
    return count
