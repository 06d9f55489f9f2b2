"""``GDRegressor``: the tutorial's gradient-descent linear regression as an estimator."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from ..devices import DeviceLike, DtypeLike
from ..training.optimizers import OptimizerSpec
from ._base import RegressorBase
from ._types import ArrayLike
from ._validation import INITS, check_choice, check_int, check_positive, seed_from

if TYPE_CHECKING:
    import torch
    from typing_extensions import Self

    from ..training.loop import TrainResult


@dataclass
class ExactGap:
    """How far a gradient fit is from the exact least-squares answer on the same data.

    ``coef``/``intercept`` are the exact solution (scikit-learn layout), ``cost`` its
    mean squared error and ``gd_cost`` that of the gradient coefficients (after the last
    epoch); ``coef_gap`` is the largest absolute difference over coefficients and
    intercepts, ``cost_gap = gd_cost - cost`` (≥ 0 up to rounding).
    """

    coef: np.ndarray
    intercept: float | np.ndarray
    cost: float
    gd_cost: float
    coef_gap: float
    cost_gap: float


def exact_gap(
    X: ArrayLike,
    y: ArrayLike,
    sample_weight: ArrayLike | None,
    coef: ArrayLike,
    intercept: ArrayLike,
    fit_intercept: bool,
) -> ExactGap:
    """Solve the same problem exactly and compare (costs from the exact state alone)."""
    from .linear import LinearRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exact fit's own diagnostics are not the user's
        exact = LinearRegression(fit_intercept=fit_intercept).fit(X, y, sample_weight)

    gap = max(
        float(np.max(np.abs(np.asarray(coef, np.float64) - exact.coef_))),
        float(np.max(np.abs(np.asarray(intercept, np.float64) - exact.intercept_))),
    )
    cost, gd_cost = exact.cost_of(exact.coef_, exact.intercept_), exact.cost_of(coef, intercept)
    return ExactGap(exact.coef_, exact.intercept_, cost, gd_cost, gap, gd_cost - cost)


class GDRegressor(RegressorBase):
    """Linear regression ``y = X W + b`` trained by gradient descent with torch.optim.

    With the defaults this is the tutorial's program: W and b start at zero, plain SGD
    with ``lr=0.01`` minimises the mean squared error over the full batch, for epochs
    ``0..3000``.

    Parameters
    ----------
    loss : {"squared_error", "huber"}
        The cost. ``"squared_error"`` (MSE) uses a closed-form gradient, equal to
        autograd's up to rounding (``torchlinreg.demo.replay`` rounds exactly as the
        tutorial's autograd does, for a byte-identical log); ``"huber"`` is robust to
        outliers and uses autograd.
    epsilon : float
        Huber threshold: residuals beyond it count linearly.
    optimizer : str, torch.optim class, callable or optimizer instance
        A ``torch.optim`` name (``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``,
        ``"lbfgs"``, ...; case-insensitive), an optimizer class, any factory called
        as ``optimizer(params, lr=lr, **optimizer_options)``, or an optimizer instance
        used as a template (its class and hyper-parameters; ``lr`` still comes from
        this estimator).
    lr : float
        Learning rate.
    optimizer_options : dict, optional
        Further keyword options for the optimizer, e.g. ``{"momentum": 0.9}``.
    epochs : int
        Index of the last epoch: epochs ``0..epochs`` run (``epochs + 1`` passes), as in
        the tutorial's ``range(nb_epochs + 1)``.
    batch_size : int, optional
        Rows per update. ``None`` (default) uses the full batch, as the tutorial does.
    shuffle : bool
        Reshuffle the rows every epoch when using mini-batches.
    fit_intercept : bool
        Fit ``b``; when False the model is ``y = X W``.
    init : {"zeros", "random"}
        Starting point. ``"random"`` draws W and b uniformly from ±1/√n_features, as
        ``torch.nn.Linear`` does, seeded by ``random_state``.
    log_every : int, optional
        Write the tutorial's log line every this many epochs (and at the last epoch).
    log_to : stream or callable, optional
        Where log lines go: a text stream (``write`` is called) or a function taking the
        line. Default: standard output.
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when available).
    dtype : {"float32", "float64"}
        Precision of training; float32 as in the tutorial.
    random_state : int, numpy RandomState or None
        Seed for shuffling and random initialisation.
    compare_exact : bool
        After training with the squared error, also solve the problem exactly and
        record the gap in ``exact_`` (one extra pass over the data).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
    intercept_ : float or ndarray of shape (n_targets,)
    history_ : History
        Per-epoch cost, and per-epoch ``coef``/``intercept`` for small models.
    n_features_in_ : int
    n_iter_ : int
        Passes over the data (``epochs + 1``).
    exact_ : ExactGap or None
        The exact least-squares answer and the gap to it (squared error only).
    """

    def __init__(
        self,
        *,
        loss: str = "squared_error",
        epsilon: float = 1.35,
        optimizer: OptimizerSpec = "sgd",
        lr: float = 0.01,
        optimizer_options: Mapping[str, Any] | None = None,
        epochs: int = 3000,
        batch_size: int | None = None,
        shuffle: bool = True,
        fit_intercept: bool = True,
        init: str = "zeros",
        log_every: int | None = None,
        log_to: TextIO | Callable[[str], None] | None = None,
        device: DeviceLike = "cpu",
        dtype: DtypeLike = "float32",
        random_state: int | np.random.RandomState | None = None,
        compare_exact: bool = True,
    ) -> None:
        self.loss = loss
        self.epsilon = epsilon
        self.optimizer = optimizer
        self.lr = lr
        self.optimizer_options = optimizer_options
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.fit_intercept = fit_intercept
        self.init = init
        self.log_every = log_every
        self.log_to = log_to
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.compare_exact = compare_exact

    def _log_sink(self) -> Callable[[str], None] | None:
        if not self.log_every:
            return None
        target = sys.stdout if self.log_to is None else self.log_to
        if hasattr(target, "write"):
            return lambda line: (target.write(line + "\n"), None)[1]
        if callable(target):
            return target  # type: ignore[no-any-return]
        raise ValueError(f"log_to must be a text stream or a callable, got {target!r}")

    def _check_params(self) -> None:
        check_positive("lr", self.lr)
        check_int("epochs", self.epochs, low=0)
        check_int("batch_size", self.batch_size, low=1, allow_none=True)
        check_int("log_every", self.log_every, low=1, allow_none=True)
        check_choice("init", self.init, INITS)

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
        """Train on ``X`` (n_samples, n_features) and ``y`` (n_samples,) or
        (n_samples, n_targets); returns ``self``.

        Raises :class:`~torchlinreg.errors.TrainingDivergedError` when the cost becomes
        NaN or infinite (the learning rate is too large).
        """
        from ..devices import resolve_device, resolve_dtype
        from ..training.loop import train
        from ..training.losses import make_loss

        self._check_params()
        loss = make_loss(self.loss, self.epsilon)
        device, dtype = resolve_device(self.device), resolve_dtype(self.dtype)
        generator = _generator(seed_from(self.random_state))
        Xt, yt, wt = _tensors(X, y, sample_weight, dtype, device)
        self._set_feature_names(X, y)  # after validation: a failed fit changes nothing
        y2 = yt.reshape(len(yt), -1)
        theta0 = self._theta0(Xt.shape[1], y2.shape[1], dtype, generator)
        result = train(
            Xt,
            y2,
            wt,
            theta0=theta0.to(device),
            fit_intercept=self.fit_intercept,
            target_1d=yt.ndim == 1,
            loss=loss,
            optimizer=self.optimizer,
            lr=self.lr,
            optimizer_options=self.optimizer_options,
            epochs=self.epochs,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            generator=generator,
            log_every=self.log_every,
            log=self._log_sink(),
        )
        self._set_fitted(result, Xt, yt, wt)
        return self

    def _theta0(
        self, n_features: int, n_targets: int, dtype: torch.dtype, generator: torch.Generator
    ) -> torch.Tensor:
        """The starting θ = [b; W] (intercept first): zeros, or uniform on ±1/√p."""
        import torch

        theta0 = torch.zeros(n_features + int(self.fit_intercept), n_targets, dtype=dtype)
        if self.init == "random":
            bound = 1.0 / n_features**0.5
            theta0.uniform_(-bound, bound, generator=generator)
        return theta0

    def _set_fitted(
        self, result: TrainResult, X: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None
    ) -> None:
        from ..training.loop import sklearn_layout

        target_1d = y.ndim == 1
        coef, intercept = sklearn_layout(result.theta.cpu(), self.fit_intercept, target_1d)
        self.coef_ = coef.numpy().copy()
        if intercept is None:
            n_targets = 1 if target_1d else y.shape[1]
            self.intercept_: Any = 0.0 if target_1d else np.zeros(n_targets, self.coef_.dtype)
        else:
            self.intercept_ = intercept.item() if target_1d else intercept.numpy().copy()
        self.history_ = result.history
        self.n_features_in_ = X.shape[1]
        self.n_iter_ = self.epochs + 1
        self.exact_ = None
        if self.compare_exact and self.loss == "squared_error":
            self.exact_ = exact_gap(X, y, w, self.coef_, self.intercept_, self.fit_intercept)


def _generator(seed: int | None) -> torch.Generator:
    import torch

    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def _tensors(
    X: ArrayLike,
    y: ArrayLike,
    sample_weight: ArrayLike | None,
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """X (n, p), y (n,) or (n, k) and the weights (n,) or None, validated, in ``dtype``
    on ``device``."""
    from ..data.arrays import as_tensor, check_lengths, check_sample_weight

    Xt = as_tensor(X, "X", ndim=(2,), dtype=dtype, device=device)
    yt = as_tensor(y, "y", ndim=(1, 2), dtype=dtype, device=device)
    wt = None
    if sample_weight is not None:
        wt = as_tensor(sample_weight, "sample_weight", ndim=(1,), dtype=dtype, device=device)
        check_sample_weight(wt)
    check_lengths(Xt, yt, wt)
    return Xt, yt, wt
