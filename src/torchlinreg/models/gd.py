"""``GDRegressor``: the tutorial's gradient-descent linear regression as an estimator."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from ..devices import DeviceLike, DtypeLike
from ..errors import InputError
from ..training.optimizers import OptimizerSpec
from ._base import RegressorBase, is_dask
from ._types import ArrayLike
from ._validation import INITS, check_choice, check_int, check_positive, seed_from

if TYPE_CHECKING:
    import torch
    from typing_extensions import Self

    from ..distributed.group import DistributedLike, Group
    from ..training.loop import TrainResult
    from ..training.losses import Loss


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
    group: Group | None = None,
) -> ExactGap:
    """Solve the same problem exactly and compare (costs from the exact state alone).

    With a ``group``, ``X``, ``y`` and ``sample_weight`` are this rank's rows and the
    exact problem is that of every rank's rows."""
    from .linear import LinearRegression

    exact = LinearRegression(fit_intercept=fit_intercept)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exact fit's own diagnostics are not the user's
        if group is None:
            exact.fit(X, y, sample_weight)
        else:
            exact.fit(X, y, sample_weight, distributed=group)

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

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        *,
        distributed: DistributedLike = False,
    ) -> Self:
        """Train on ``X`` (n_samples, n_features) and ``y`` (n_samples,) or
        (n_samples, n_targets); returns ``self``.

        ``distributed=True`` (the default ``torch.distributed`` process group) or a
        ``ProcessGroup``: every rank of the group calls ``fit`` with its own rows (a rank
        may hold none) and the same parameters, and every rank ends with the identical
        model trained on all the rows. Each step's gradient and cost are those of every
        rank's rows, summed over the ranks in rank order, so a full-batch fit equals the
        one-process fit on all the rows up to the order of additions. Mini-batches
        (``batch_size`` counts the rows of every rank): each epoch has
        ``ceil(N / batch_size)`` steps, ``N`` the rows of every rank, and each rank
        cuts its own rows, shuffled by a generator seeded from ``(random_state, rank)``,
        into that many consecutive parts of nearly equal size; step ``j`` trains on part
        ``j`` of every rank. ``random_state`` is rank 0's (drawn there when ``None``);
        only rank 0 writes the log. ``sample_weight`` may be given on some ranks only:
        the rows of a rank without it weigh 1, as in the exact fits. Bad data on one rank
        raises the same :class:`~torchlinreg.errors.InputError` on every rank, prefixed
        ``rank r of N:``.

        Every rank receives the same bits for every gradient, cost and step weight, and
        every branch of the training (a mini-batch skipped, divergence, an evaluation of
        the cost) is decided from those shared bits, or, for an optimizer that re-evaluates
        the cost within a step (L-BFGS), by rank 0 alone: only rank 0 runs it, and the
        other ranks evaluate their rows at the parameters rank 0 sends. So the ranks call
        the same collectives in the same order even on processors that round differently.
        Other optimizers update the parameters on every rank from the shared gradient;
        ranks whose processors round that update differently could drift apart by
        rounding during training (not in the steps they take), and rank 0's parameters,
        sent to every rank at the end, are the model everywhere.

        Raises :class:`~torchlinreg.errors.TrainingDivergedError` when the cost becomes
        NaN or infinite (the learning rate is too large); with ``distributed``, on every
        rank at the same epoch.
        """
        from ..distributed.group import resolve_group

        _refuse_dask(X)
        group = resolve_group(distributed)
        setup, init_generator, shuffler = self._prepare(X, y, sample_weight, group)
        self._set_feature_names(X, y)  # after validation: a failed fit changes nothing
        result = self._train(setup, init_generator, shuffler, group)
        self._set_fitted(result, setup.X, setup.y, setup.w, group)
        return self

    def _prepare(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None, group: Group | None
    ) -> tuple[_Setup, torch.Generator, torch.Generator]:
        """The validated problem, the generator of the random start and the one that
        shuffles this process's rows (in one process, the same generator: shuffling
        continues from the start's draws). With a group every rank checks that the
        problem is the same as everywhere else; the start is rank 0's, each rank
        shuffles with its own generator and only rank 0 logs."""
        if group is None:
            setup = self._setup(X, y, sample_weight, group)
            generator = _generator(setup.seed)
            return setup, generator, generator
        setup = group.agree(lambda: self._setup(X, y, sample_weight, group))
        setup.seed, weighted = _agree_on_problem(group, self, setup, X)
        if weighted and setup.w is None:  # the rows of a rank without weights weigh 1
            setup.w = setup.X.new_ones(setup.X.shape[0])
        if group.rank != 0:
            setup.log = None
        return setup, _generator(setup.seed), _generator(rank_seed(setup.seed, group.rank))

    def _train(
        self,
        setup: _Setup,
        init_generator: torch.Generator,
        shuffler: torch.Generator,
        group: Group | None,
    ) -> TrainResult:
        from ..training.loop import train

        Xt, yt = setup.X, setup.y
        y2 = yt if yt.ndim == 2 else yt.reshape(-1, 1)
        theta0 = self._theta0(Xt.shape[1], y2.shape[1], setup.dtype, init_generator)
        return train(
            Xt,
            y2,
            setup.w,
            theta0=theta0.to(setup.device),
            fit_intercept=self.fit_intercept,
            target_1d=yt.ndim == 1,
            loss=setup.loss,
            optimizer=self.optimizer,
            lr=self.lr,
            optimizer_options=self.optimizer_options,
            epochs=self.epochs,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            generator=shuffler,
            log_every=self.log_every,
            log=setup.log,
            group=group,
        )

    def _setup(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None, group: Group | None
    ) -> _Setup:
        """The parameters checked and the data validated; on a rank of a group the rows
        may be none and the weights all zero (the totals are checked over every rank)."""
        from ..devices import resolve_device, resolve_dtype
        from ..training.losses import make_loss

        self._check_params()
        loss = make_loss(self.loss, self.epsilon)
        device, dtype = resolve_device(self.device), resolve_dtype(self.dtype)
        seed = seed_from(self.random_state)
        if group is not None and seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
        Xt, yt, wt = _tensors(X, y, sample_weight, dtype, device, rank=group is not None)
        return _Setup(loss, device, dtype, seed, Xt, yt, wt, self._log_sink())

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
        self,
        result: TrainResult,
        X: torch.Tensor,
        y: torch.Tensor,
        w: torch.Tensor | None,
        group: Group | None,
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
            self.exact_ = exact_gap(X, y, w, self.coef_, self.intercept_, self.fit_intercept, group)


def _refuse_dask(X: Any) -> None:
    if is_dask(X):
        raise InputError(
            "GDRegressor trains on rows in memory, and X is a Dask collection; compute "
            "it first (X.compute()), or fit LinearRegression, which folds Dask "
            "partitions where they are"
        )


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
    rank: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """X (n, p), y (n,) or (n, k) and the weights (n,) or None, validated, in ``dtype``
    on ``device``. One ``rank``'s share of a distributed fit may have no rows and weights
    that are all zero."""
    from ..data.arrays import as_tensor, check_lengths, check_sample_weight

    if rank and _rows(X) == 0:
        return _no_rows(X, y, sample_weight, dtype, device)
    Xt = as_tensor(X, "X", ndim=(2,), dtype=dtype, device=device)
    yt = as_tensor(y, "y", ndim=(1, 2), dtype=dtype, device=device)
    wt = None
    if sample_weight is not None:
        wt = as_tensor(sample_weight, "sample_weight", ndim=(1,), dtype=dtype, device=device)
        check_sample_weight(wt, allow_all_zero=rank)
    check_lengths(Xt, yt, wt)
    return Xt, yt, wt


def _rows(a: Any) -> int | None:
    shape = getattr(a, "shape", None)
    return None if shape is None or len(shape) == 0 else int(shape[0])


def _no_rows(
    X: Any, y: Any, sample_weight: Any, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A rank's empty share: the shapes still count (columns, targets)."""
    import torch

    from ..errors import InputError

    if len(X.shape) != 2 or X.shape[1] == 0:
        raise InputError(
            f"X has shape {tuple(X.shape)}; give a rank without rows X of shape (0, n_features)"
        )
    y_shape = tuple(getattr(y, "shape", np.shape(y)))
    if len(y_shape) not in (1, 2) or y_shape[0] != 0:
        raise InputError(f"X has 0 rows but y has shape {y_shape}; give y as many rows")
    w_rows = None if sample_weight is None else _rows(np.asarray(sample_weight))
    if w_rows not in (None, 0):
        raise InputError(f"X has 0 rows but sample_weight has {w_rows}; give one weight per row")
    k = 1 if len(y_shape) == 1 else y_shape[1]
    empty = torch.zeros(0, X.shape[1], dtype=dtype, device=device)
    yt = torch.zeros((0,) if len(y_shape) == 1 else (0, k), dtype=dtype, device=device)
    wt = None if sample_weight is None else torch.zeros(0, dtype=dtype, device=device)
    return empty, yt, wt


def rank_seed(seed: int, rank: int) -> int:
    """The seed of ``rank``'s shuffling generator in a distributed fit: from numpy's
    ``SeedSequence([seed, rank])``, so that ranks draw independent orders."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint64)[0])


def _agree_on_problem(group: Group, model: GDRegressor, setup: _Setup, X: Any) -> tuple[int, bool]:
    """Every rank holds the same problem (columns, targets, parameters) and, over every
    rank, rows of positive weight; or every rank raises the same error. Returns rank 0's
    seed, the one every rank uses, and whether any rank gave ``sample_weight`` (then
    every rank trains weighted, rows without weights weighing 1, as the exact fits do)."""
    from ..errors import InputError
    from ._base import _column_names

    names = _column_names(X)
    mine = {
        "features": setup.X.shape[1],
        "targets": 1 if setup.y.ndim == 1 else setup.y.shape[1],
        "target shape (1-D or 2-D)": setup.y.ndim,
        "feature names": None if names is None else list(names),
        "parameters": _shared_params(model, setup),
    }
    positive = setup.X.shape[0] > 0 and (setup.w is None or bool((setup.w > 0).any()))
    seen = group.gather_objects((mine, positive, setup.seed, setup.w is not None))
    first = seen[0][0]
    for rank, (theirs, *_) in enumerate(seen):
        for label, value in theirs.items():
            if value != first[label]:
                raise InputError(
                    f"rank {rank} of {group.size} has other {label} than rank 0 ({value!r} "
                    f"vs {first[label]!r}); every rank must fit the same problem, each on "
                    "its own rows"
                )
    if not any(p for _, p, *_ in seen):
        raise InputError(
            "no rank has a row of positive weight (every rank's X is empty or its "
            "sample_weight zero); give at least one row of positive weight"
        )
    return int(seen[0][2]), any(weighted for *_, weighted in seen)


def _shared_params(model: GDRegressor, setup: _Setup) -> dict[str, Any]:
    """The parameters every rank must share: those that shape the training's steps and
    collectives (a mismatch would hang the ranks or leave them with different models)."""
    optimizer = model.optimizer
    named = optimizer if isinstance(optimizer, str) else getattr(optimizer, "__name__", None)
    return {
        "loss": model.loss,
        "epsilon": model.epsilon,
        "optimizer": named if named is not None else type(optimizer).__name__,
        "lr": model.lr,
        "optimizer_options": repr(model.optimizer_options),
        "epochs": model.epochs,
        "batch_size": model.batch_size,
        "shuffle": model.shuffle,
        "fit_intercept": model.fit_intercept,
        "init": model.init,
        "dtype": str(setup.dtype),
        "compare_exact": model.compare_exact,
    }


@dataclass
class _Setup:
    """A fit's validated parameters and data."""

    loss: Loss
    device: torch.device
    dtype: torch.dtype
    seed: int | None
    X: torch.Tensor
    y: torch.Tensor
    w: torch.Tensor | None
    log: Callable[[str], None] | None
