"""The one epoch/batch loop: the tutorial's program, for any data and optimizer."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..errors import InputError, TrainingDivergedError
from ..solvers.theta import split_theta
from . import sharded
from .averaging import Averaging
from .batches import MiniBatchEpoch
from .checkpoint import Checkpoint, restore
from .guard import Curvature, Watch, auto_lr, exact_bound, family, reference_bound
from .history import History
from .log import format_log_line
from .losses import Evaluation, Loss, SquaredError, TutorialSquaredError
from .optimizers import OptimizerSpec, make_optimizer, needs_closure, plain_step
from .scaling import Scaling
from .schedulers import PerBatch, Schedule, SchedulerSpec, make_schedule
from .sharded import Step
from .stopping import BUDGET_SPENT, CONVERGED, STOPPED_EARLY, Stopping, Validation, split_validation
from .streamed import StreamedRows
from .threads import threads_for

if TYPE_CHECKING:
    from ..distributed.group import Group

# How often (in epochs) the costs are checked for divergence when nothing else reads
# them every epoch. Checking every epoch would force a device sync per step; a diverged
# run only wastes this many epochs at worst.
_CHECK_EVERY = 100
# Per-epoch parameters are recorded in the history up to this many numbers.
_HISTORY_PARAMS_MAX = 64


@dataclass
class TrainResult:
    """``theta`` stacks the intercept row ``b`` (if any) over ``W`` (features × targets),
    intercept first as in the exact solvers."""

    theta: torch.Tensor
    history: History


def sklearn_layout(
    theta: torch.Tensor, fit_intercept: bool, target_1d: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``theta = [b; W]`` (:mod:`torchlinreg.solvers.theta`'s layout) → (coef,
    intercept) in scikit-learn's layout: coef is (targets, features), or (features,)
    and a scalar intercept for a 1-D target.

    Leading dimensions of ``theta`` (a stack of epochs) are kept."""
    W, b = split_theta(theta, fit_intercept)
    coef = W.transpose(-1, -2)
    if target_1d:
        coef = coef[..., 0, :]
        b = None if b is None else b[..., 0]
    return coef, b


def _as_logged(t: torch.Tensor | None) -> Any:
    # One number prints as a number (the tutorial's W: 0.187), more as a list.
    if t is None:
        return None
    return t.item() if t.numel() == 1 else t.tolist()


def train(
    X: torch.Tensor | StreamedRows,
    y: torch.Tensor | None,
    sample_weight: torch.Tensor | None,
    *,
    theta0: torch.Tensor,
    fit_intercept: bool,
    target_1d: bool,
    loss: Loss,
    optimizer: OptimizerSpec,
    lr: float | str,
    optimizer_options: Mapping[str, Any] | None,
    epochs: int,
    batch_size: int | None,
    shuffle: bool,
    generator: torch.Generator | None,
    log_every: int | None,
    log: Callable[[str], None] | None,
    group: Group | None = None,
    scaling: Scaling | None = None,
    curvature: Curvature | None = None,
    tol: float | None = None,
    n_iter_no_change: int = 5,
    validation_fraction: float | None = None,
    scheduler: SchedulerSpec | None = None,
    scheduler_options: Mapping[str, Any] | None = None,
    callbacks: Sequence[EpochCallback] = (),
    start: Checkpoint | None = None,
    average: bool | int = False,
) -> TrainResult:
    """Minimise ``loss`` over ``y ≈ X W + b`` for epochs ``0..epochs`` (the tutorial's
    ``range(nb_epochs + 1)``), starting from ``theta0``.

    ``X`` is (n, p) and ``y`` (n, k), both already validated, on one device, in one
    dtype; ``sample_weight`` is (n,) or ``None``; ``theta0`` is ``[b; W]`` (intercept
    first), or ``W`` without an intercept, in training units. Full batch when
    ``batch_size`` is ``None`` or at least n; otherwise mini-batches, reshuffled every
    epoch by ``generator`` when ``shuffle``. A line is passed to ``log`` every
    ``log_every`` epochs and at the last one.

    ``scaling`` (:mod:`.scaling`) is the change of units training runs in (none by
    default); the log, the history and the returned ``theta`` are in the data's units.
    ``curvature`` (:mod:`.guard`) is what the data say about step sizes: with it the
    divergence guard knows the exact stable bound where one holds, and ``lr="auto"``
    works. ``tol``, ``n_iter_no_change`` and ``validation_fraction`` (rows held out,
    drawn by ``generator``) stop training early (:mod:`.stopping`); ``scheduler`` and
    ``scheduler_options`` set a learning-rate schedule (:mod:`.schedulers`).
    ``callbacks`` are called after every epoch with an :class:`EpochEnd` (the epoch, its
    cost, θ, the optimizer, the scheduler, the shuffling generator, and functions that
    build the history so far and the loop's own state, for a checkpoint), after the
    epoch's cost was checked and any stopping rule consulted.

    ``average`` (scikit-learn's ``SGDRegressor`` meaning, :mod:`.averaging`): the
    returned ``theta`` is the mean of the parameters after every step (``True``), or
    after each step from the one whose rows reach ``average`` rows seen on.

    ``start`` continues a run from its checkpoint (:mod:`.checkpoint`, already checked
    against this run): everything is built as for a fresh run (θ0, the held-out rows,
    the optimizer, the schedule, ``lr="auto"``), then given the checkpoint's state
    (:func:`.checkpoint.restore`; the divergence watch and the stopping rule from its
    ``loop`` state), and epochs ``start.epoch + 1 .. epochs`` run; the history returned
    is the checkpoint's followed by the new epochs'. A checkpoint of a run that had
    ended (its last epoch, or a stopping rule met) trains no further.

    Raises :class:`~torchlinreg.errors.TrainingDivergedError` when the cost grows
    (:mod:`.guard`).

    With a ``group``, ``X``, ``y`` and ``sample_weight`` are this rank's rows (possibly
    none) and every rank trains together on all of them (:mod:`.sharded`: gradients and
    costs summed over the ranks, mini-batches cut from every rank, ``batch_size``
    counting the rows of every rank); every rank must pass the same arguments but its
    own rows and ``generator``, and ends with the same ``theta`` and history.

    ``X`` may instead be :class:`.streamed.StreamedRows` (its first pass read; ``y`` and
    ``sample_weight`` ``None``): every epoch then reads the rows again
    (:mod:`.streamed`), in one process, without held-out rows.
    """
    curvature = curvature or Curvature()
    data = _training_data(
        X, y, sample_weight, fit_intercept, scaling, validation_fraction, generator, group
    )
    rows, scaling = data.rows, data.scaling
    theta = theta0.detach().clone().requires_grad_(True)
    opt, rate, full_batch = _optimizer(
        theta, optimizer, lr, optimizer_options, curvature, rows, batch_size, group
    )
    schedule = _schedule(
        opt, scheduler, scheduler_options, rate, epochs, rows, batch_size, full_batch
    )
    if start is not None:
        _restore(opt, schedule, generator, start, group)
    step = _stepper(opt, theta, group, schedule)
    averaging = None
    if average is not False and average is not None:
        n = rows.n_total
        averaging = Averaging(theta.detach(), int(average), n, batch_size or n)
        step = averaging.wrap(step)
    run_epoch = _epoch_runner(rows, theta, loss, step, batch_size, shuffle, generator, group)
    watch = _watch(opt, rate, curvature, theta0, full_batch, loss, schedule, data.validation)
    report = None
    if log is not None and log_every:
        report = _reporter(log, epochs, rows.weight_sum, fit_intercept, target_1d, scaling)
    loop = _Epochs(
        run_epoch,
        theta.detach(),
        epochs,
        rows.weight_sum,
        watch,
        report=report,
        log_every=log_every or 0,
        stopping=_stopping(tol, n_iter_no_change, data.validation),
        validation=data.validation,
        schedule=schedule,
        callbacks=callbacks,
        optimizer=opt,
        generator=generator,
        scaling=scaling,
        averaging=averaging,
    )
    history_of = functools.partial(
        _history,
        weight_sum=rows.weight_sum,
        fit_intercept=fit_intercept,
        target_1d=target_1d,
        scaling=scaling,
    )
    loop.history_of = history_of
    if start is not None:
        loop.resume(start)
    outcome = _run(loop, data, batch_size)
    if averaging is not None:
        theta.detach().copy_(averaging.result())
    _finish(theta.detach(), outcome.epochs_run - 1, rate, group)
    history = history_of(outcome)
    return _result(theta, history, outcome, rate, tol, n_iter_no_change, scaling, fit_intercept)


@dataclass
class _Data:
    """The rows training steps on (in training units), the held-out rows' scorer, the
    units, and the cells of a row (columns × targets) and their device, which size the
    threads of a step."""

    rows: _Rows | StreamedRows
    validation: Validation | None
    scaling: Scaling
    cells: int
    device: torch.device


def _training_data(
    X: torch.Tensor | StreamedRows,
    y: torch.Tensor | None,
    sample_weight: torch.Tensor | None,
    fit_intercept: bool,
    scaling: Scaling | None,
    validation_fraction: float | None,
    generator: torch.Generator | None,
    group: Group | None,
) -> _Data:
    """The training rows and, with ``validation_fraction``, the held-out rows (drawn by
    ``generator`` before anything else draws from it)."""
    validation = None
    rows: _Rows | StreamedRows
    if isinstance(X, StreamedRows):
        _check_streamed(validation_fraction, group)
        scaling = scaling or Scaling.none(X.n_features)
        rows = X.in_units(scaling, fit_intercept)
        return _Data(rows, None, scaling, rows.columns * rows.n_targets, rows.device)
    assert y is not None
    scaling = scaling or Scaling.none(X.shape[1])
    if validation_fraction is not None:
        X, y, sample_weight, validation = _hold_out(
            X, y, sample_weight, validation_fraction, generator, fit_intercept, scaling, group
        )
    rows = _Rows.of(scaling.to_training(X), y, sample_weight, fit_intercept, group)
    return _Data(rows, validation, scaling, rows.A.shape[1] * y.shape[1], X.device)


def _optimizer(
    theta: torch.Tensor,
    optimizer: OptimizerSpec,
    lr: float | str,
    optimizer_options: Mapping[str, Any] | None,
    curvature: Curvature,
    rows: _Rows | StreamedRows,
    batch_size: int | None,
    group: Group | None,
) -> tuple[torch.optim.Optimizer, float, bool]:
    """The optimizer of ``theta``, the learning rate it starts with (``lr="auto"``'s
    from the curvature) and whether every step takes the full batch."""
    largest = torch.finfo(theta.dtype).max
    if lr != "auto" and float(lr) > largest:
        # torch.optim would fail on the first step, converting lr to the parameters' type.
        raise InputError(
            f"lr={float(lr):g} is beyond the range of {theta.dtype} (largest {largest:.3g}); "
            "give a learning rate that the training dtype can hold, or lr='auto'"
        )
    opt = make_optimizer(optimizer, [theta], 1.0 if lr == "auto" else float(lr), optimizer_options)
    full_batch = batch_size is None or batch_size >= rows.n_total
    if lr == "auto":
        lr = _auto(opt, curvature, rows, batch_size, full_batch, group)
    return opt, float(lr), full_batch


def _schedule(
    opt: torch.optim.Optimizer,
    scheduler: SchedulerSpec | None,
    scheduler_options: Mapping[str, Any] | None,
    lr: float,
    epochs: int,
    rows: _Rows | StreamedRows,
    batch_size: int | None,
    full_batch: bool,
) -> Schedule | None:
    """The learning-rate schedule over epochs ``0..epochs`` of their steps (or None)."""
    steps = 1 if full_batch else -(-rows.n_total // (batch_size or 1))
    return make_schedule(
        scheduler, scheduler_options, opt, lr=lr, epochs=epochs + 1, steps_per_epoch=steps
    )


def _restore(
    opt: torch.optim.Optimizer,
    schedule: Schedule | None,
    generator: torch.Generator | None,
    start: Checkpoint,
    group: Group | None,
) -> None:
    """The optimizer's, the schedule's and the generator's states from ``start``."""
    if group is not None:
        raise InputError(
            "resuming from a checkpoint is not supported for distributed training yet; "
            "train afresh (without resume)"
        )
    restore(opt, None if schedule is None else schedule.scheduler, generator, start)


def _watch(
    opt: torch.optim.Optimizer,
    lr: float,
    curvature: Curvature,
    theta0: torch.Tensor,
    full_batch: bool,
    loss: Loss,
    schedule: Schedule | None,
    validation: Validation | None,
) -> Watch:
    """The divergence watch (:mod:`.guard`): the exact stable bound where one holds
    (not with held-out rows), against the cost at θ0 or the best constant model's."""
    bound = exact_bound(curvature, opt, full_batch) if validation is None else None
    return Watch(
        lr,
        bound,
        reference_bound(curvature),
        _method(opt, full_batch, loss),
        constant=schedule is None,  # a schedule may take the rate below the bound
        reference_cost=curvature.reference_cost(
            theta0, decay=bool(opt.defaults.get("weight_decay"))
        ),
    )


def _stopping(
    tol: float | None, n_iter_no_change: int, validation: Validation | None
) -> Stopping | None:
    """The stopping rule with ``tol``: on the held-out R² (which should rise) with
    held-out rows, else on the training cost; None without ``tol``."""
    if tol is None:
        return None
    return Stopping(tol, n_iter_no_change, higher=validation is not None)


def _run(loop: _Epochs, data: _Data, batch_size: int | None) -> _Outcome:
    """Run the epochs without autograd, on as many threads as a step's size is worth."""
    rows = data.rows
    rows_per_step = min(rows.n, batch_size or rows.n)  # at most; a rank's part is smaller
    with torch.no_grad(), threads_for(rows_per_step * data.cells, data.device):
        return loop.run()


def _result(
    theta: torch.Tensor,
    history: History,
    outcome: _Outcome,
    lr: float,
    tol: float | None,
    n_iter_no_change: int,
    scaling: Scaling,
    fit_intercept: bool,
) -> TrainResult:
    """θ in the data's units and the history, told the rate and how the run ended."""
    history.lr = lr
    history.status, history.reason = outcome.status, _reason(outcome, tol, n_iter_no_change)
    return TrainResult(theta=scaling.theta_to_data(theta.detach(), fit_intercept), history=history)


def _check_streamed(validation_fraction: float | None, group: Group | None) -> None:
    if validation_fraction is not None:
        raise InputError(
            "early stopping on held-out rows is not available when training streams its "
            "rows (they would be held in memory or read apart every epoch); stop on the "
            "training cost (tol without early_stopping), or fit in memory"
        )
    if group is not None:
        raise InputError(
            "streamed gradient training runs in one process; fit each rank's rows in "
            "memory with distributed, or stream in one process"
        )


def _auto(
    opt: torch.optim.Optimizer,
    curvature: Curvature,
    rows: _Rows | StreamedRows,
    batch_size: int | None,
    full_batch: bool,
    group: Group | None,
) -> float:
    """``lr="auto"``'s rate (:func:`.guard.auto_lr`), set on every parameter group."""
    row_max = None
    if not full_batch and family(opt) == "sgd":
        row_max = rows.row_max() if isinstance(rows, StreamedRows) else _row_max(rows, group)
    lr = auto_lr(opt, curvature, n=rows.n_total, batch=batch_size or rows.n_total, row_max=row_max)
    for g in opt.param_groups:
        g["lr"] = lr
    opt.defaults["lr"] = lr
    return lr


def _row_max(rows: _Rows, group: Group | None) -> float:
    """The largest single row's curvature ``2·(n·w_i/Σw)·‖a_i‖²`` over every rank."""
    # Accumulated in float64 without a float64 copy of the design (2 × 800 MB at 1e6 × 100).
    norms = torch.linalg.vector_norm(rows.A, dim=1, dtype=torch.float64) ** 2
    if rows.w is not None:
        norms = norms * rows.w[:, 0].double()
    local = float(norms.max()) if norms.numel() else 0.0
    if group is not None:
        local = max(group.gather_objects(local))
    return 2.0 * rows.n_total * local / rows.weight_sum


def _method(opt: torch.optim.Optimizer, full_batch: bool, loss: Loss) -> str:
    what = type(opt).__name__
    if not full_batch:
        what += " on mini-batches"
    if not isinstance(loss, (SquaredError, TutorialSquaredError)):
        what += f" with the {type(loss).__name__} loss"
    return what


def _hold_out(
    X: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor | None,
    fraction: float,
    generator: torch.Generator | None,
    fit_intercept: bool,
    scaling: Scaling,
    group: Group | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, Validation]:
    """Training rows and the held-out rows' scorer (:mod:`.stopping`)."""
    kept, held = split_validation(X.shape[0], fraction, generator)
    kept_dev, held_dev = kept.to(X.device), held.to(X.device)
    Xv = scaling.to_training(X[held_dev])
    Av = torch.cat([Xv.new_ones(Xv.shape[0], 1), Xv], dim=1) if fit_intercept else Xv
    validation = Validation(Av, y[held_dev], None if w is None else w[held_dev], group)
    if not validation.rows > 0:
        raise InputError(
            f"validation_fraction={fraction:g} holds out no row of positive weight; "
            "give more rows or a larger validation_fraction"
        )
    return X[kept_dev], y[kept_dev], None if w is None else w[kept_dev], validation


def _reason(outcome: _Outcome, tol: float | None, n_iter_no_change: int) -> str:
    n = outcome.epochs_run
    if outcome.status == CONVERGED:
        return (
            f"converged: the training cost fell by less than tol={tol:g} for "
            f"{n_iter_no_change} epochs in a row (stopped after {n} epochs)"
        )
    if outcome.status == STOPPED_EARLY:
        return (
            f"stopped early: the held-out R² rose by less than tol={tol:g} for "
            f"{n_iter_no_change} epochs in a row (stopped after {n} epochs)"
        )
    return f"budget spent: all {n} epochs ran"


@dataclass
class _Rows:
    """The training rows: the design ``A = [1, X]`` (or ``X``) of ``θ = [b; W]``, the
    targets, the weights as a column and on the CPU, and the rows and total weight of
    the whole problem (of every rank, with a group)."""

    A: torch.Tensor
    y: torch.Tensor
    w: torch.Tensor | None
    w_cpu: torch.Tensor | None
    n: int
    n_total: int
    weight_sum: float

    @classmethod
    def of(
        cls,
        X: torch.Tensor,
        y: torch.Tensor,
        sample_weight: torch.Tensor | None,
        fit_intercept: bool,
        group: Group | None,
    ) -> _Rows:
        n = X.shape[0]
        A = torch.cat([X.new_ones(n, 1), X], dim=1) if fit_intercept else X
        w = None if sample_weight is None else sample_weight.reshape(n, 1)
        w_cpu = None if sample_weight is None else sample_weight.detach().cpu()
        if group is None:
            n_total, weight_sum = n, n if w_cpu is None else float(w_cpu.sum())
        else:
            n_total, weight_sum = sharded.totals(group, n, w_cpu)
        return cls(A, y, w, w_cpu, n, n_total, weight_sum)


def _stepper(
    opt: torch.optim.Optimizer, theta: torch.Tensor, group: Group | None, schedule: Schedule | None
) -> Step:
    """One optimizer step on a cost: returns the summed cost at the parameters before it.
    A schedule that steps per batch steps after each (and for each batch skipped)."""
    step = _optimizer_step(opt, theta, group, scheduled=schedule is not None)
    if schedule is None or not schedule.per_batch:
        return step
    return PerBatch(step, schedule)


def _optimizer_step(
    opt: torch.optim.Optimizer, theta: torch.Tensor, group: Group | None, scheduled: bool
) -> Step:
    if not needs_closure(opt):
        # A scheduler counts the optimizer's steps through the instance's step method.
        opt_step = opt.step if scheduled else plain_step(opt)

        def step(evaluate: Evaluation) -> torch.Tensor:
            summed = evaluate()
            opt_step()
            return summed

        return step
    if group is not None:
        return sharded.led_by_rank_0(group, opt, theta)

    def closure_step(evaluate: Evaluation) -> torch.Tensor:
        # torch types the closure as returning a float; any tensor works too.
        return opt.step(evaluate)  # type: ignore[arg-type, return-value]

    return closure_step


def _epoch_runner(
    rows: _Rows | StreamedRows,
    theta: torch.Tensor,
    loss: Loss,
    step: Step,
    batch_size: int | None,
    shuffle: bool,
    generator: torch.Generator | None,
    group: Group | None,
) -> Callable[[], torch.Tensor]:
    """One epoch's steps, returning the epoch's summed cost: one full-batch step, or a
    step per mini-batch (of this process's rows, or cut from every rank's), or a pass
    over streamed rows."""
    if isinstance(rows, StreamedRows):
        return rows.epoch_runner(theta, loss, step, batch_size, shuffle, generator)
    if batch_size is None or batch_size >= rows.n_total:
        full = loss.bind(theta, rows.A, rows.y, rows.w, rows.weight_sum)
        if group is not None:
            full = sharded.everywhere(group, theta, full)
        return functools.partial(step, full)
    if group is not None:
        shards = sharded.Shards(
            group, rows.n, rows.n_total, batch_size, rows.w_cpu, shuffle, generator
        )
        return functools.partial(shards.run_epoch, rows.A, rows.y, rows.w, theta, loss, step)

    return MiniBatchEpoch(
        rows.A, rows.y, rows.w, rows.w_cpu, theta, loss, step, batch_size, shuffle, generator
    )


def _reporter(
    log: Callable[[str], None],
    epochs: int,
    weight_sum: float,
    fit_intercept: bool,
    target_1d: bool,
    scaling: Scaling,
) -> Callable[[int, torch.Tensor, torch.Tensor], None]:
    """Writes the tutorial's log line for an epoch, its summed cost and parameters (in
    the data's units)."""

    def report(epoch: int, summed: torch.Tensor, theta: torch.Tensor) -> None:
        cost = (summed / weight_sum).item()
        coef, b = sklearn_layout(
            scaling.theta_to_data(theta, fit_intercept), fit_intercept, target_1d
        )
        log(format_log_line(epoch, epochs, _as_logged(coef), _as_logged(b), cost))

    return report


@dataclass
class EpochEnd:
    """What a callback sees after an epoch: live objects, copy what is kept.

    ``theta`` is in training units (``scaling.theta_to_data`` gives the data's units);
    ``summed_cost`` is the epoch's summed cost (divide by ``weight_sum`` for the mean);
    ``status`` is ``"budget spent"`` unless a stopping rule just ended the run.
    ``history()`` builds the run's history so far (it reads the costs back from the
    device) and ``loop_state()`` the loop's own state (the divergence watch, the stopping
    rule, whether the run has ended), as a checkpoint keeps them."""

    epoch: int
    summed_cost: torch.Tensor
    weight_sum: float
    theta: torch.Tensor
    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator | None
    scaling: Scaling
    status: str
    history: Callable[[], History] = History
    loop_state: Callable[[], dict[str, Any]] = dict


# Called after every epoch, after its cost was checked for divergence, the schedule
# stepped and the stopping rule consulted; raising stops training with that error.
EpochCallback = Callable[[EpochEnd], None]


@dataclass
class _Outcome:
    """The epochs run by this call (from ``first``), after ``earlier``'s."""

    costs: list[torch.Tensor]
    params: list[torch.Tensor]
    scores: list[float] | None
    status: str
    epochs_run: int  # every epoch of the run, the earlier ones included
    first: int = 0
    earlier: History | None = None


class _Epochs:
    """Epochs ``first..epochs``: each epoch's summed cost and, for small models,
    parameters after it; reported every ``log_every`` epochs and at the last; costs
    watched for divergence (every :data:`_CHECK_EVERY` epochs and at the last, or every
    epoch when a stopping rule or a plateau schedule reads them anyway); then the
    schedule, the stopping rule and the callbacks, in that order. ``first`` is 0 but
    for a resumed run (:meth:`resume`)."""

    def __init__(
        self,
        run_epoch: Callable[[], torch.Tensor],
        theta: torch.Tensor,
        epochs: int,
        weight_sum: float,
        watch: Watch,
        *,
        report: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
        log_every: int = 0,
        stopping: Stopping | None = None,
        validation: Validation | None = None,
        schedule: Schedule | None = None,
        callbacks: Sequence[EpochCallback] = (),
        optimizer: torch.optim.Optimizer | None = None,
        generator: torch.Generator | None = None,
        scaling: Scaling | None = None,
        averaging: Averaging | None = None,
    ) -> None:
        self.run_epoch, self.theta, self.epochs = run_epoch, theta, epochs
        self.averaging = averaging
        self.optimizer, self.generator, self.scaling = optimizer, generator, scaling
        self.weight_sum, self.watch, self.report, self.log_every = (
            weight_sum,
            watch,
            report,
            log_every,
        )
        self.stopping, self.validation, self.schedule = stopping, validation, schedule
        self.callbacks = list(callbacks)
        # Costs read on the host every epoch only where something needs them.
        self.each = (
            stopping is not None
            or validation is not None
            or (schedule is not None and schedule.on_cost)
        )
        self.history_of: Callable[[_Outcome], History] | None = None
        self.first, self.status = 0, BUDGET_SPENT
        self.earlier: History | None = None
        self.costs: list[torch.Tensor] = []
        self.params: list[torch.Tensor] = []
        self.scores: list[float] | None = [] if validation is not None else None
        self.watched = 0  # costs[:watched] were seen by the watch

    def resume(self, start: Checkpoint) -> None:
        """Continue after ``start``'s epoch, with its history and loop state."""
        self.first, self.earlier = start.epoch + 1, start.history
        state = start.loop
        watch = state.get("watch") or {}
        self.watch.start = watch.get("start")
        self.watch.previous = watch.get("previous")
        self.watch.above = int(watch.get("above", 0))
        stopping = state.get("stopping")
        if self.stopping is not None and stopping is not None:
            self.stopping.best = float(stopping["best"])
            self.stopping.count = int(stopping["count"])
        self.status = str(state.get("status", BUDGET_SPENT))
        if self.averaging is not None and "average" in state:
            # Without one (partial_fit's earlier calls ran unaveraged) averaging starts now.
            self.averaging.restore(state["average"])
        if self.scores is not None:
            self.scores = []

    def loop_state(self) -> dict[str, Any]:
        """The watch's, the stopping rule's and the run's state: what a resumed run needs
        besides the optimizer's, scheduler's and generator's. The watch first sees every
        cost not yet seen, so that a resumed run watches on from here."""
        self._catch_up()
        watch = self.watch
        state: dict[str, Any] = {
            "watch": {"start": watch.start, "previous": watch.previous, "above": watch.above},
            "status": self.status,
        }
        if self.stopping is not None:
            state["stopping"] = {"best": self.stopping.best, "count": self.stopping.count}
        if self.averaging is not None:
            state["average"] = self.averaging.state()
        return state

    def history_so_far(self) -> History:
        assert self.history_of is not None
        return self.history_of(self._outcome())

    def _outcome(self) -> _Outcome:
        return _Outcome(
            self.costs,
            self.params,
            self.scores,
            self.status,
            self.first + len(self.costs),
            self.first,
            self.earlier,
        )

    def run(self) -> _Outcome:
        if self.status != BUDGET_SPENT:  # the checkpoint's run had ended
            return self._outcome()
        theta, report, schedule, costs = self.theta, self.report, self.schedule, self.costs
        record_params = theta.numel() <= _HISTORY_PARAMS_MAX
        for epoch in range(self.first, self.epochs + 1):
            summed = self.run_epoch()
            costs.append(summed)
            if record_params:
                self.params.append(theta.clone())
            last = epoch == self.epochs
            if report is not None and (epoch % self.log_every == 0 or last):
                report(epoch, summed, theta)
            mean = math.nan
            if self.each:
                mean = (summed / self.weight_sum).item()
                self.watch.see(epoch, mean)
                self.watched = len(costs)
            elif len(costs) - self.watched >= _CHECK_EVERY or last:
                self._catch_up()
            if schedule is not None:
                schedule.after_epoch(mean)
            if not self._go_on(mean, self.scores):
                self.status = STOPPED_EARLY if self.validation is not None else CONVERGED
            if self.callbacks:
                self._call_back(epoch, summed, self.status)
            if self.status != BUDGET_SPENT:
                break
        return self._outcome()

    def _call_back(self, epoch: int, summed: torch.Tensor, status: str) -> None:
        assert self.optimizer is not None and self.scaling is not None
        end = EpochEnd(
            epoch,
            summed,
            self.weight_sum,
            self.theta,
            self.optimizer,
            None if self.schedule is None else self.schedule.scheduler,
            self.generator,
            self.scaling,
            status,
            self.history_so_far,
            self.loop_state,
        )
        for callback in self.callbacks:
            callback(end)

    def _go_on(self, mean: float, scores: list[float] | None) -> bool:
        value = mean
        if self.validation is not None:
            value = self.validation.score(self.theta)
            assert scores is not None
            scores.append(value)
        return self.stopping is None or self.stopping.improved_enough(value)

    def _catch_up(self) -> None:
        """Show the watch the epochs' costs it has not seen (one read from the device)."""
        start, costs = self.watched, self.costs
        if start >= len(costs):
            return
        means = (torch.stack(costs[start:]) / self.weight_sum).tolist()
        see = self.watch.see
        for i, mean in enumerate(means):
            see(self.first + start + i, mean)
        self.watched = len(costs)


def _finish(theta: torch.Tensor, last_epoch: int, lr: float, group: Group | None) -> None:
    """Refuse non-finite parameters; with a group, give every rank rank 0's."""
    if not bool(torch.isfinite(theta).all()):
        raise TrainingDivergedError(
            f"training diverged at epoch {last_epoch}: the parameters became infinite or "
            f"NaN with lr={lr:g}; try a smaller lr or lr='auto'",
            epoch=last_epoch,
            cost=math.nan,
        )
    if group is not None:
        # Every rank took the same steps on the same gradients; rank 0's parameters make
        # the models identical even where two ranks' processors round an update apart.
        theta.copy_(group.broadcast(theta))


def _history(
    outcome: _Outcome,
    weight_sum: float,
    fit_intercept: bool,
    target_1d: bool,
    scaling: Scaling,
) -> History:
    """The history of the epochs run, after the earlier epochs' of a resumed run."""
    costs, params = outcome.costs, outcome.params
    history = History(
        epoch=list(range(outcome.first, outcome.first + len(costs))),
        cost=(torch.stack(costs) / weight_sum).tolist() if costs else [],
    )
    if params:
        thetas = scaling.theta_to_data(torch.stack(params), fit_intercept)
        coef, b = sklearn_layout(thetas.cpu(), fit_intercept, target_1d)
        history.coef = coef.tolist()
        history.intercept = None if b is None else b.tolist()
    history.validation_score = outcome.scores
    if outcome.earlier is not None:
        history = _joined(outcome.earlier, history)
    return history


def _joined(earlier: History, later: History) -> History:
    """``earlier``'s epochs followed by ``later``'s (a field unset in both stays unset)."""

    def join(a: list[Any] | None, b: list[Any] | None) -> list[Any] | None:
        return None if a is None and b is None else [*(a or []), *(b or [])]

    return History(
        epoch=[*earlier.epoch, *later.epoch],
        cost=[*earlier.cost, *later.cost],
        coef=join(earlier.coef, later.coef),
        intercept=join(earlier.intercept, later.intercept),
        validation_score=join(earlier.validation_score, later.validation_score),
    )
