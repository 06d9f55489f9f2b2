"""``GDRegressor``: the tutorial's gradient-descent linear regression as an estimator.

Its parts live in modules of one idea each: the exact reference (``_gd_exact``), a fit's
validated data (``_gd_setup``), checkpointed and partial runs (``_gd_runs``), the
distributed fit's checks (``_gd_distributed``) and streamed training (``_gd_stream``).
Their names stay importable from here (the ``name as name`` imports re-export them).
"""

from __future__ import annotations

import contextlib
import numbers
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from ..devices import DeviceLike, DtypeLike
from ..errors import ConvergenceWarning, InputError
from ..training.optimizers import OptimizerSpec
from ..training.stopping import BUDGET_SPENT
from ._base import RegressorBase
from ._gd_distributed import _agree_on_problem, rank_seed
from ._gd_distributed import _no_rows as _no_rows
from ._gd_distributed import _rows as _rows
from ._gd_distributed import _shared_params as _shared_params
from ._gd_exact import ExactGap, _null_theta, exact_fit, gap_to
from ._gd_exact import _null_cost as _null_cost
from ._gd_exact import exact_gap as exact_gap
from ._gd_runs import TRAJECTORY_PARAMS as TRAJECTORY_PARAMS
from ._gd_runs import _Partial, _Run
from ._gd_runs import data_digest as data_digest
from ._gd_setup import _generator, _refuse_dask, _Setup, _tensors
from ._types import ArrayLike
from ._validation import INITS, check_choice, check_int, check_positive, seed_from

if TYPE_CHECKING:
    import torch
    from typing_extensions import Self

    from ..distributed.group import DistributedLike, Group
    from ..training.checkpoint import Checkpoint
    from ..training.guard import Curvature
    from ..training.loop import EpochCallback, TrainResult
    from ..training.scaling import Scaling
    from ..training.schedulers import SchedulerSpec
    from ._stream import ChunkSource


class GDRegressor(RegressorBase):
    """Linear regression ``y = X W + b`` trained by gradient descent with torch.optim.

    With the defaults this is the tutorial's program on standardized features: W and b
    start at zero, plain SGD with ``lr=0.01`` minimises the mean squared error over the
    full batch, for epochs ``0..3000``. ``standardize=False`` runs it on the raw columns,
    as the tutorial does (``torchlinreg.demo.replay`` reproduces its log byte for byte;
    with standardization the log's W, b and cost follow another path to the same answer).

    Training tells the truth: a cost that grows stops it with
    :class:`~torchlinreg.errors.TrainingDivergedError`, naming the largest stable
    learning rate where the data give one exactly (:mod:`torchlinreg.training.guard`);
    ``history_.status`` says how it ended, and a run that ends (budget spent or ``tol``
    met) far from the
    exact least-squares optimum warns with
    :class:`~torchlinreg.errors.ConvergenceWarning`.

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
    lr : float or "auto"
        Learning rate. ``"auto"`` picks one from the data's curvature, by a rule for each
        optimizer family (:mod:`torchlinreg.training.guard`: SGD ``1/L``, adaptive
        optimizers 1% of the exact solution's largest slope, L-BFGS 1); the rate
        used is ``lr_``.
    optimizer_options : dict, optional
        Further keyword options for the optimizer, e.g. ``{"momentum": 0.9}``.
    epochs : int
        Index of the last epoch, at least 1: epochs ``0..epochs`` run (``epochs + 1``
        passes), as in the tutorial's ``range(nb_epochs + 1)``. One pass at a time is
        ``partial_fit``.
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
        With the squared error, also solve the problem exactly and record the gap in
        ``exact_``: costs nothing more when ``standardize`` is on (the same pass gives
        the feature scales), one pass over the data otherwise.
    standardize : bool
        Train on features centred and scaled to unit weighted standard deviation
        (scaled to unit root mean square without an intercept; constant columns left
        unscaled), from one exact pass over the data; coefficients, history, log and
        ``exact_`` are in the data's units. False trains on the columns as given.
    tol : float or None
        Stopping tolerance (scikit-learn's ``SGDRegressor`` rule): training stops when
        the epoch cost (or, with ``early_stopping``, the held-out R²) has not improved
        by ``tol`` for ``n_iter_no_change`` epochs in a row. ``None`` (the default,
        unlike scikit-learn's 1e-3) runs every epoch, as the tutorial does. The epoch
        cost compared is this estimator's: the weighted mean squared error
        ``Σw·r²/Σw`` (summed over targets) of the epoch's batches, each before its
        step. ``SGDRegressor`` compares the unweighted mean of ``½·r²``, half of it: an
        improvement of ``δ`` there is ``2δ`` here, so the same ``tol`` stops later here
        (it is twice as strict), and ``tol=t`` here stops as ``SGDRegressor``'s
        ``tol=t/2`` does (on the cost; R² is the same number in both).
    n_iter_no_change : int
        Epochs without improvement before stopping.
    early_stopping : bool
        Judge improvement on ``validation_fraction`` of the rows held out (drawn by
        ``random_state``) instead of the training cost; needs ``tol``.
    validation_fraction : float
        Share of the rows held out with ``early_stopping``, in (0, 1).
    scheduler : str, scheduler class or factory, optional
        A ``torch.optim.lr_scheduler`` by name (``"step"``, ``"multistep"``,
        ``"exponential"``, ``"cosine"``, ``"onecycle"``, ``"cyclic"``, ``"plateau"``,
        ...; :mod:`torchlinreg.training.schedulers`), stepped per epoch (per batch for
        one-cycle and cyclic; with the epoch's cost for plateau).
    scheduler_options : dict, optional
        The scheduler's keyword options, e.g. ``{"step_size": 100, "gamma": 0.5}``.
    warm_start : bool
        scikit-learn's meaning: ``fit`` starts from the previous fit's ``coef_`` and
        ``intercept_`` (same features and targets) instead of ``init``; the optimizer
        and schedule start afresh and ``history_`` holds this fit's epochs only.
    checkpoint_every : int, optional
        With ``fit(..., checkpoint=path)``: write a checkpoint every this many epochs
        (``None``: only when interrupted). It changes nothing of the training.
    average : bool or int
        scikit-learn's ``SGDRegressor`` meaning: ``True`` makes ``coef_`` and
        ``intercept_`` the mean of the parameters after every step (Polyak–Ruppert
        averaging); an integer N starts averaging once N rows have been seen. With
        mini-batches and a constant step this removes most of the noise floor the last
        step leaves (:mod:`torchlinreg.training.averaging`); the history, the log and
        the stopping rules follow the iterates. ``False`` (the default) keeps the last
        iterate, as the tutorial does.

    Checkpoints
    -----------
    ``fit(X, y, checkpoint="run.ckpt")`` writes the training state (θ, the optimizer's,
    scheduler's and shuffling generator's states, the epoch, the history;
    :mod:`torchlinreg.training.checkpoint`) atomically every ``checkpoint_every``
    epochs, and at the end of the epoch when Ctrl-C or SIGTERM arrives, then raises
    :class:`~torchlinreg.training.interrupt.InterruptedTraining` (a
    ``KeyboardInterrupt``). ``fit(X, y, resume="run.ckpt")`` with the same parameters
    and data continues that run and ends with the model an uninterrupted run gives, bit
    for bit on the same device and torch. A checkpoint of other parameters (those that
    shape training: everything but ``log_every``, ``log_to``, ``device``,
    ``compare_exact``, ``warm_start`` and ``checkpoint_every``), other data or another
    format version is refused before anything is written. Not yet available with
    ``distributed``.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
    intercept_ : float or ndarray of shape (n_targets,)
    history_ : History
        Per-epoch cost, per-epoch ``coef``/``intercept`` for small models, and how the
        run ended: ``status`` (``"converged"``, ``"stopped early"``, ``"budget spent"``)
        and ``reason``.
    n_features_in_ : int
    n_iter_ : int
        Passes over the data (``epochs + 1`` unless training stopped early); after
        ``partial_fit``, the passes of every call since the first.
    lr_ : float
        The learning rate training started with (the one ``lr="auto"`` chose).
    exact_ : ExactGap or None
        The exact least-squares answer and the gap to it (squared error only).
    """

    def __init__(
        self,
        *,
        loss: str = "squared_error",
        epsilon: float = 1.35,
        optimizer: OptimizerSpec = "sgd",
        lr: float | str = 0.01,
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
        standardize: bool = True,
        tol: float | None = None,
        n_iter_no_change: int = 5,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        scheduler: SchedulerSpec | None = None,
        scheduler_options: Mapping[str, Any] | None = None,
        warm_start: bool = False,
        checkpoint_every: int | None = None,
        average: bool | int = False,
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
        self.standardize = standardize
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.scheduler = scheduler
        self.scheduler_options = scheduler_options
        self.warm_start = warm_start
        self.checkpoint_every = checkpoint_every
        self.average = average

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
        if not (isinstance(self.lr, str) and self.lr == "auto"):
            if isinstance(self.lr, str):
                raise InputError(f"lr must be a finite number > 0 or 'auto', got {self.lr!r}")
            check_positive("lr", self.lr)
        if (
            isinstance(self.epochs, bool)
            or not isinstance(self.epochs, numbers.Integral)
            or (self.epochs < 1)
        ):
            raise InputError(
                f"epochs must be an integer >= 1 (training runs epochs 0..epochs, the "
                f"tutorial's range(epochs + 1)), got {self.epochs!r}"
            )
        check_int("n_iter_no_change", self.n_iter_no_change, low=1)
        if self.tol is not None and not (
            isinstance(self.tol, numbers.Real) and not isinstance(self.tol, bool) and self.tol >= 0
        ):
            raise InputError(f"tol must be a number >= 0 or None, got {self.tol!r}")
        if self.early_stopping:
            if self.tol is None:
                raise InputError("early_stopping=True needs a tolerance: give tol (e.g. tol=1e-3)")
            fraction = self.validation_fraction
            if isinstance(fraction, bool) or not (
                isinstance(fraction, numbers.Real) and 0 < fraction < 1
            ):
                raise InputError(
                    f"validation_fraction must be a number in (0, 1), got {fraction!r}"
                )
        check_int("batch_size", self.batch_size, low=1, allow_none=True)
        check_int("log_every", self.log_every, low=1, allow_none=True)
        check_choice("init", self.init, INITS)
        check_int("checkpoint_every", self.checkpoint_every, low=1, allow_none=True)
        if not isinstance(self.average, (bool, np.bool_)):
            check_int("average", self.average, low=1)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise InputError(f"warm_start must be True or False, got {self.warm_start!r}")

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        *,
        distributed: DistributedLike = False,
        checkpoint: str | None = None,
        resume: str | None = None,
    ) -> Self:
        """Train on ``X`` (n_samples, n_features) and ``y`` (n_samples,) or
        (n_samples, n_targets); returns ``self``.

        ``checkpoint``: a path to write checkpoints to, every ``checkpoint_every``
        epochs and when Ctrl-C or SIGTERM arrives (then
        :class:`~torchlinreg.training.interrupt.InterruptedTraining` is raised once it
        is written). ``resume``: a checkpoint of this run (same parameters, same data)
        to continue from; it is read and checked before anything is written, so it may
        be the ``checkpoint`` path too. See the class docstring.

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

        Raises :class:`~torchlinreg.errors.TrainingDivergedError` when the cost grows
        (:mod:`torchlinreg.training.guard`: at the first rise when a constant learning
        rate (no schedule) is at or above the exact stable bound, otherwise when the cost
        stays above 10× the larger of its starting cost and the best constant model's
        for 5 epochs, or becomes NaN or infinite); with ``distributed``,
        on every rank at the same epoch. Warns with
        :class:`~torchlinreg.errors.ConvergenceWarning` when, with the squared error and
        ``compare_exact``, training ended (budget spent or a ``tol`` rule met) and the
        fit's cost exceeds the exact optimum's
        by more than 0.1% of y's variance (``exact_.relative_cost_gap > 1e-3``: an R²
        short of the exact fit's by more than 0.001).
        """
        from ..distributed.group import resolve_group

        _refuse_dask(X)
        group = resolve_group(distributed)
        if group is not None and (checkpoint is not None or resume is not None):
            raise InputError(
                "checkpoint and resume are not available with distributed training yet; "
                "fit without them"
            )
        if self.checkpoint_every is not None and checkpoint is None:
            raise InputError(
                "checkpoint_every needs a path to write to: fit(X, y, checkpoint='run.ckpt')"
            )
        if group is None and (checkpoint is not None or resume is not None):
            setup = self._setup(X, y, sample_weight, None)
            run = _Run.of(self, setup, resume)  # the checkpoint read before any write
            init_generator = shuffler = _generator(run.seed)
        else:
            setup, init_generator, shuffler = self._prepare(X, y, sample_weight, group)
            run = None
        exact = self._exact(setup, group)
        scaling, curvature = self._geometry(setup, exact)
        theta0 = self._start(setup, init_generator, scaling)
        self._set_feature_names(X, y)  # after validation: a failed fit changes nothing
        result = self._train_run(
            setup, theta0, shuffler, group, scaling, curvature, checkpoint, run
        )
        self._set_fitted(result, setup.X, setup.y, exact)
        self._partial: _Partial | None = None
        return self

    def _train_run(
        self,
        setup: _Setup,
        theta0: torch.Tensor,
        shuffler: torch.Generator,
        group: Group | None,
        scaling: Scaling,
        curvature: Curvature,
        checkpoint: str | None,
        run: _Run | None,
    ) -> Any:
        """Train, writing checkpoints to ``checkpoint`` where given (every
        ``checkpoint_every`` epochs, and on Ctrl-C or SIGTERM, which then stop training
        with :class:`~torchlinreg.training.checkpoint.InterruptedTraining`)."""
        from ..training.interrupt import interruptible

        with contextlib.ExitStack() as stack:
            callbacks: list[EpochCallback] = []
            if checkpoint is not None and run is not None:
                stop = stack.enter_context(interruptible())
                callbacks.append(run.writer(checkpoint, self.checkpoint_every, stop))
            return self._train(
                setup, theta0, shuffler, group, scaling, curvature, callbacks,
                None if run is None else run.start,
            )  # fmt: skip

    def fit_chunks(
        self,
        chunks: ChunkSource,
        *,
        feature_names: Sequence[str] | None = None,
        buffer_rows: int | None = None,
        checkpoint: str | None = None,
        resume: str | None = None,
        distributed: DistributedLike = False,
    ) -> Self:
        """Train on a stream of ``(X, y)`` or ``(X, y, sample_weight)`` chunks (or
        :class:`~torchlinreg.data.chunks.Chunk`), reading it again every epoch: data
        larger than memory. Returns ``self``.

        ``chunks`` is a re-iterable (a list, a reader object) or a function returning a
        fresh iterator each call; a one-shot iterator (a generator) is refused, since
        every epoch reads the data again. The first pass folds the exact least-squares
        state (standardization, ``lr="auto"``, the stable-step bound and ``exact_``, as
        in :meth:`fit`); each epoch is one more pass, checked to read the same rows
        (:mod:`torchlinreg.training.streamed`). Full batch: one step per epoch on the
        gradient summed over the chunks, :meth:`fit` on all the rows up to the order of
        additions. Mini-batches: the rows pass through a shuffle buffer of
        ``buffer_rows`` rows (default ``max(65,536, 16 batches)``, at most 256 MiB of
        rows), shuffled there by ``random_state``; without ``shuffle`` the batches are
        :meth:`fit`'s. ``lr="auto"`` with SGD on mini-batches reads the data once more
        (the largest row's curvature). ``checkpoint``/``resume`` as for :meth:`fit`
        (the data's digest is the first pass's fingerprint). ``early_stopping`` and
        ``distributed`` are not available.
        """
        from ._gd_stream import fit_stream

        fit_stream(
            self, chunks, feature_names=feature_names, buffer_rows=buffer_rows,
            checkpoint=checkpoint, resume=resume, distributed=distributed,
        )  # fmt: skip
        return self

    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> Self:
        """One pass over ``X`` and ``y`` (full batch, or ``batch_size`` mini-batches),
        continuing from the previous call: scikit-learn's ``SGDRegressor.partial_fit``,
        one epoch and no convergence check (``tol`` and ``early_stopping`` are not
        used; a ``scheduler`` is refused, as the run's length is unknown).

        The first call starts from ``coef_``/``intercept_`` when the model is fitted
        (else from ``init``) and fixes the units training runs in: with ``standardize``
        the features are scaled by the first call's rows, for every later call; so are
        ``lr="auto"``'s rate and the random start. Later calls continue the optimizer's
        state (momentum, Adam's moments) and the shuffling generator, and need the same
        features and targets. ``n_iter_`` counts the passes of every call, ``history_``
        has one entry per call (its cost is that chunk's mean cost before the pass);
        ``exact_`` is ``None``. ``fit`` starts afresh.
        """
        from ..training.checkpoint import Checkpoint, RunIdentity

        if self.scheduler is not None:
            raise InputError(
                "partial_fit does not take a scheduler (one pass per call: the run's length "
                "is unknown); set scheduler=None, or train with fit"
            )
        _refuse_dask(X)
        setup = self._setup(X, y, sample_weight, None)
        partial: _Partial | None = getattr(self, "_partial", None)
        if partial is not None:
            partial.check(setup, self)
            self._check_feature_names(X)
        captured: list[Checkpoint] = []

        def keep(end: Any) -> None:
            # The running average (with ``average``) goes on across calls, too.
            state = end.loop_state()
            loop = {"average": state["average"]} if "average" in state else None
            captured.append(
                Checkpoint.capture(
                    RunIdentity.of({}, setup.X, setup.y), end.epoch, end.theta, end.optimizer,
                    None, end.generator, loop=loop,
                )
            )  # fmt: skip

        if partial is None:
            generator = _generator(setup.seed)
            exact = self._exact(setup, None)
            scaling, curvature = self._geometry(setup, exact)
            theta0 = self._start(setup, generator, scaling, partial=True)
            result = self._train(setup, theta0, generator, None, scaling, curvature, [keep],
                                 None, partial=True)  # fmt: skip
            self._set_feature_names(X, y)
        else:
            theta0 = partial.state.theta.clone()  # its value is the state's (restored)
            result = self._train(
                setup, theta0, _generator(0), None, partial.scaling, None, [keep],
                partial.state, partial=True, lr=partial.lr, epochs=partial.state.epoch + 1,
            )  # fmt: skip
            scaling = partial.scaling
        state = captured[-1]
        state.history = result.history
        self._set_fitted(result, setup.X, setup.y, None)
        self._partial = _Partial.of(setup, scaling, state, float(result.history.lr or 0.0))
        return self

    def _start(
        self, setup: _Setup, generator: torch.Generator, scaling: Scaling, *, partial: bool = False
    ) -> torch.Tensor:
        """θ0 in training units: the previous fit's ``coef_``/``intercept_`` with
        ``warm_start`` (or for ``partial_fit``'s first call on a fitted model), else
        ``init``'s draw."""
        import torch

        y2 = setup.y if setup.y.ndim == 2 else setup.y.reshape(-1, 1)
        p, k = setup.X.shape[1], y2.shape[1]
        fitted = hasattr(self, "coef_") and hasattr(self, "n_features_in_")
        if not (fitted and (self.warm_start or partial)):
            return self._theta0(p, k, setup.dtype, generator)
        coef = np.asarray(self.coef_, dtype=np.float64).reshape(-1, self.n_features_in_)
        if coef.shape != (k, p):
            raise InputError(
                f"warm start from a fit of {coef.shape[1]} features and {coef.shape[0]} "
                f"target(s), but X has {p} features and y {k} target(s); give data of the "
                "same shape, or set warm_start=False"
            )
        theta = torch.as_tensor(coef.T.copy())
        if self.fit_intercept:
            b = torch.as_tensor(np.asarray(self.intercept_, np.float64).reshape(1, k))
            theta = torch.cat([b, theta])
        return scaling.theta_to_training(theta, self.fit_intercept).to(setup.dtype)

    def _exact(self, setup: _Setup, group: Group | None) -> Any:
        """The exact least-squares fit on the same rows, where anything needs it: the
        feature scales, ``lr="auto"``, the exact stable bound and ``exact_``."""
        if not self._wants_exact():
            return None
        return exact_fit(setup.X, setup.y, setup.w, self.fit_intercept, group)

    def _wants_exact(self) -> bool:
        squared = self.loss == "squared_error"
        return bool(self.standardize or self.lr == "auto" or (squared and self.compare_exact))

    def _geometry(self, setup: _Setup, exact: Any) -> tuple[Scaling, Curvature]:
        """The units training runs in and the curvature of the cost in them (with the
        squared error's cost of any θ and the best constant model's, from the state)."""
        import torch

        from ..training.guard import Curvature
        from ..training.scaling import Scaling

        squared = self.loss == "squared_error"
        if exact is None:
            return Scaling.none(setup.X.shape[1]), Curvature(squared=squared)
        state = exact.state_
        scaling = Scaling.of_state(state, bool(self.standardize))
        null = _null_theta(state)
        coef = torch.as_tensor(np.atleast_2d(exact.coef_), dtype=torch.float64).T
        intercept = torch.as_tensor(np.atleast_1d(exact.intercept_), dtype=torch.float64)
        theta = torch.cat([intercept.reshape(1, -1), coef]) if self.fit_intercept else coef
        # The slopes' size sizes lr="auto" for adaptive optimizers (not the intercept's).
        slopes = scaling.theta_to_training(theta, self.fit_intercept)[int(self.fit_intercept) :]
        fit_intercept = bool(self.fit_intercept)

        def cost_of(theta_t: torch.Tensor) -> float:
            """Σw·r²/Σw (summed over targets) of θ in training units, from the state."""
            data = scaling.theta_to_data(theta_t.detach().cpu().double(), fit_intercept)
            return float(state.rss_of(data).sum()) / state.weight_sum

        return scaling, Curvature(
            hessian_max=scaling.hessian_max(state),
            solution_max=float(slopes.abs().max()) if slopes.numel() else None,
            squared=squared,
            cost_of=cost_of,
            null_cost=float(state.rss_of(null).sum()) / state.weight_sum,
        )

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
        theta0: torch.Tensor,
        shuffler: torch.Generator,
        group: Group | None,
        scaling: Scaling,
        curvature: Curvature | None,
        callbacks: list[EpochCallback] | None = None,
        start: Checkpoint | None = None,
        *,
        partial: bool = False,
        lr: float | None = None,
        epochs: int | None = None,
    ) -> TrainResult:
        """Train from ``theta0`` (training units). ``partial``: ``partial_fit``'s one
        pass, without stopping rules."""
        from ..training.loop import train

        Xt, yt = setup.X, setup.y
        y2 = yt if yt.ndim == 2 else yt.reshape(-1, 1)
        fraction = self.validation_fraction if self.early_stopping and not partial else None
        return train(
            Xt if setup.stream is None else setup.stream,
            y2 if setup.stream is None else None,
            setup.w,
            theta0=theta0.to(setup.device),
            fit_intercept=self.fit_intercept,
            target_1d=yt.ndim == 1,
            loss=setup.loss,
            optimizer=self.optimizer,
            lr=self.lr if lr is None else lr,
            optimizer_options=self.optimizer_options,
            epochs=(0 if partial else self.epochs) if epochs is None else epochs,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            generator=shuffler,
            log_every=self.log_every,
            log=setup.log,
            group=group,
            scaling=scaling,
            curvature=curvature,
            tol=None if partial else self.tol,
            n_iter_no_change=self.n_iter_no_change,
            validation_fraction=fraction,
            scheduler=self.scheduler,
            scheduler_options=self.scheduler_options,
            callbacks=callbacks or (),
            start=start,
            average=_average(self.average),
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
        self,
        n_features: int,
        n_targets: int,
        dtype: torch.dtype,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """The starting θ = [b; W] (intercept first): zeros, or uniform on ±1/√p."""
        import torch

        theta0 = torch.zeros(n_features + int(self.fit_intercept), n_targets, dtype=dtype)
        if self.init == "random":
            bound = 1.0 / n_features**0.5
            theta0.uniform_(-bound, bound, generator=generator)
        return theta0

    def _set_fitted(
        self, result: TrainResult, X: torch.Tensor, y: torch.Tensor, exact: Any
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
        self.n_iter_ = len(result.history)
        self.lr_ = result.history.lr
        self.exact_ = None
        if self.compare_exact and self.loss == "squared_error" and exact is not None:
            self.exact_ = gap_to(exact, self.coef_, self.intercept_)
            self._judge(self.exact_)

    def _judge(self, gap: ExactGap) -> None:
        """The gap to the exact optimum in the history's reason, and a warning when
        training ended far from it, however it ended (``fit``'s docstring)."""
        history = self.history_
        relative = gap.relative_cost_gap
        history.reason += (
            f"; cost {gap.gd_cost:.6g} against the exact optimum's {gap.cost:.6g} "
            f"({relative:.2%} of the variance of y)"
        )
        if not relative > FAR:
            return
        # Far from the optimum whatever the status: a stopping rule met with a loose tol
        # is no more converged than a budget spent.
        if history.status == BUDGET_SPENT:
            head = f"GDRegressor spent its budget of {len(history)} epochs far from the optimum"
            advice = (
                "train longer, change the learning rate (lr='auto' picks one from the "
                "data), settle mini-batch noise with average=True, larger batches or a "
                "schedule, or fit LinearRegression"
            )
        else:
            head = (
                f"tol={self.tol:g} stopped training after {len(history)} epochs "
                f"({history.status}) far from the optimum"
            )
            advice = "lower tol, or raise n_iter_no_change, or fit LinearRegression"
        warnings.warn(
            f"{head}: its cost {gap.gd_cost:.6g} exceeds the exact least-squares cost "
            f"{gap.cost:.6g} by {relative:.2%} of the variance of y; {advice}",
            ConvergenceWarning,
            stacklevel=4,
        )


# A run that spent its budget is far from the optimum when its cost exceeds the exact
# one by more than this share of the variance of y (its R² short by more than it).
FAR = 1e-3


def _average(average: bool | int | np.bool_) -> bool | int:
    """``average`` as the trainer takes it: a numpy bool as a bool."""
    return bool(average) if isinstance(average, (bool, np.bool_)) else int(average)
