"""The one epoch/batch loop: the tutorial's program, for any data and optimizer."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..errors import TrainingDivergedError
from ..solvers.theta import split_theta
from . import sharded
from .history import History
from .log import format_log_line
from .losses import Evaluation, Loss
from .optimizers import OptimizerSpec, make_optimizer, needs_closure, plain_step
from .sharded import Step
from .threads import threads_for

if TYPE_CHECKING:
    from ..distributed.group import Group

# How often (in epochs) the costs are checked for NaN/inf. Checking every epoch would
# force a device sync per step; a diverged run only wastes this many epochs at worst.
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


def _raise_if_diverged(costs: list[torch.Tensor], start: int, weight_sum: float, lr: float) -> None:
    """Raise for the first NaN or infinite cost from epoch ``start`` on, if any."""
    finite = torch.isfinite(torch.stack(costs[start:]))
    if bool(finite.all()):
        return
    epoch = start + int((~finite).nonzero()[0, 0])
    raise _diverged(epoch, (costs[epoch] / weight_sum).item(), lr)


def _diverged(epoch: int, cost: float, lr: float) -> TrainingDivergedError:
    return TrainingDivergedError(
        f"training diverged: the cost became {cost} at epoch {epoch} with lr={lr:g}; "
        f"the learning rate is too large for this data: try lr={lr / 10:g} or smaller, "
        "or standardize the features",
        epoch=epoch,
        cost=cost,
    )


def _mini_batches(
    A: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor | None,
    w_cpu: torch.Tensor | None,
    batch_size: int,
    order: torch.Tensor,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, float]]:
    """One epoch's batches ``(A, y, w, Σw)`` in ``order`` (row indices on the CPU);
    batches of zero total weight are skipped, as they carry no gradient."""
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        idx_dev = idx.to(A.device)
        weight_sum = len(idx) if w_cpu is None else float(w_cpu[idx].sum())
        if weight_sum > 0:
            yield A[idx_dev], y[idx_dev], None if w is None else w[idx_dev], weight_sum


def train(
    X: torch.Tensor,
    y: torch.Tensor,
    sample_weight: torch.Tensor | None,
    *,
    theta0: torch.Tensor,
    fit_intercept: bool,
    target_1d: bool,
    loss: Loss,
    optimizer: OptimizerSpec,
    lr: float,
    optimizer_options: Mapping[str, Any] | None,
    epochs: int,
    batch_size: int | None,
    shuffle: bool,
    generator: torch.Generator | None,
    log_every: int | None,
    log: Callable[[str], None] | None,
    group: Group | None = None,
) -> TrainResult:
    """Minimise ``loss`` over ``y ≈ X W + b`` for epochs ``0..epochs`` (the tutorial's
    ``range(nb_epochs + 1)``), starting from ``theta0``.

    ``X`` is (n, p) and ``y`` (n, k), both already validated, on one device, in one
    dtype; ``sample_weight`` is (n,) or ``None``; ``theta0`` is ``[b; W]`` (intercept
    first), or ``W`` without an intercept. Full batch when ``batch_size`` is
    ``None`` or at least n; otherwise mini-batches, reshuffled every epoch by
    ``generator`` when ``shuffle``. A line is passed to ``log`` every ``log_every``
    epochs and at the last one.

    With a ``group``, ``X``, ``y`` and ``sample_weight`` are this rank's rows (possibly
    none) and every rank trains together on all of them (:mod:`.sharded`: gradients and
    costs summed over the ranks, mini-batches cut from every rank, ``batch_size``
    counting the rows of every rank); every rank must pass the same arguments but its
    own rows and ``generator``, and ends with the same ``theta`` and history.
    """
    rows = _Rows.of(X, y, sample_weight, fit_intercept, group)
    theta = theta0.detach().clone().requires_grad_(True)
    opt = make_optimizer(optimizer, [theta], lr, optimizer_options)
    step = _stepper(opt, theta, group)
    run_epoch = _epoch_runner(rows, theta, loss, step, batch_size, shuffle, generator, group)
    report = None
    if log is not None and log_every:
        report = _reporter(log, epochs, rows.weight_sum, fit_intercept, target_1d)
    rows_per_step = min(rows.n, batch_size or rows.n)  # at most; a rank's part is smaller
    with torch.no_grad(), threads_for(rows_per_step * rows.A.shape[1] * y.shape[1], X.device):
        costs, params = _run_epochs(
            run_epoch, theta.detach(), epochs, rows.weight_sum, lr, log_every or 0, report
        )
    _finish(theta.detach(), epochs, lr, group)
    return TrainResult(
        theta=theta.detach(),
        history=_history(costs, params, rows.weight_sum, fit_intercept, target_1d),
    )


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


def _stepper(opt: torch.optim.Optimizer, theta: torch.Tensor, group: Group | None) -> Step:
    """One optimizer step on a cost: returns the summed cost at the parameters before it."""
    if not needs_closure(opt):
        opt_step = plain_step(opt)

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
    rows: _Rows,
    theta: torch.Tensor,
    loss: Loss,
    step: Step,
    batch_size: int | None,
    shuffle: bool,
    generator: torch.Generator | None,
    group: Group | None,
) -> Callable[[], torch.Tensor]:
    """One epoch's steps, returning the epoch's summed cost: one full-batch step, or a
    step per mini-batch (of this process's rows, or cut from every rank's)."""
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

    def mini_batch_epoch() -> torch.Tensor:
        n = rows.n
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        summed = torch.zeros((), dtype=rows.A.dtype, device=rows.A.device)
        for batch in _mini_batches(rows.A, rows.y, rows.w, rows.w_cpu, batch_size, order):
            summed = summed + step(loss.bind(theta, *batch))
        return summed

    return mini_batch_epoch


def _reporter(
    log: Callable[[str], None],
    epochs: int,
    weight_sum: float,
    fit_intercept: bool,
    target_1d: bool,
) -> Callable[[int, torch.Tensor, torch.Tensor], None]:
    """Writes the tutorial's log line for an epoch, its summed cost and parameters."""

    def report(epoch: int, summed: torch.Tensor, theta: torch.Tensor) -> None:
        cost = (summed / weight_sum).item()
        coef, b = sklearn_layout(theta, fit_intercept, target_1d)
        log(format_log_line(epoch, epochs, _as_logged(coef), _as_logged(b), cost))

    return report


def _run_epochs(
    run_epoch: Callable[[], torch.Tensor],
    theta: torch.Tensor,
    epochs: int,
    weight_sum: float,
    lr: float,
    log_every: int,
    report: Callable[[int, torch.Tensor, torch.Tensor], None] | None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Epochs ``0..epochs``: each epoch's summed cost and, for small models, parameters
    after it; reported every ``log_every`` epochs and at the last, checked for NaN/inf
    every :data:`_CHECK_EVERY` epochs and at the last."""
    costs: list[torch.Tensor] = []
    params: list[torch.Tensor] = []
    record_params = theta.numel() <= _HISTORY_PARAMS_MAX
    checked = 0
    for epoch in range(epochs + 1):
        costs.append(run_epoch())
        if record_params:
            params.append(theta.clone())
        last = epoch == epochs
        if report is not None and (epoch % log_every == 0 or last):
            report(epoch, costs[-1], theta)
        if epoch - checked + 1 >= _CHECK_EVERY or last:
            _raise_if_diverged(costs, checked, weight_sum, lr)
            checked = epoch + 1
    return costs, params


def _finish(theta: torch.Tensor, epochs: int, lr: float, group: Group | None) -> None:
    """Refuse non-finite parameters; with a group, give every rank rank 0's."""
    if not bool(torch.isfinite(theta).all()):
        raise _diverged(epochs, float("nan"), lr)
    if group is not None:
        # Every rank took the same steps on the same gradients; rank 0's parameters make
        # the models identical even where two ranks' processors round an update apart.
        theta.copy_(group.broadcast(theta))


def _history(
    costs: list[torch.Tensor],
    params: list[torch.Tensor],
    weight_sum: float,
    fit_intercept: bool,
    target_1d: bool,
) -> History:
    history = History(
        epoch=list(range(len(costs))), cost=(torch.stack(costs) / weight_sum).tolist()
    )
    if params:
        coef, b = sklearn_layout(torch.stack(params).cpu(), fit_intercept, target_1d)
        history.coef = coef.tolist()
        history.intercept = None if b is None else b.tolist()
    return history
