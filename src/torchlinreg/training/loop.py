"""The one epoch/batch loop: the tutorial's program, for any data and optimizer."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..errors import TrainingDivergedError
from ..solvers.theta import split_theta
from .history import History
from .log import format_log_line
from .losses import Evaluation, Loss
from .optimizers import OptimizerSpec, make_optimizer, needs_closure, plain_step
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
    n = X.shape[0]
    A = torch.cat([X.new_ones(n, 1), X], dim=1) if fit_intercept else X  # θ = [b; W]
    w = None if sample_weight is None else sample_weight.reshape(n, 1)
    w_cpu = None if sample_weight is None else sample_weight.detach().cpu()
    if group is None:
        n_total, weight_sum = n, n if w_cpu is None else float(w_cpu.sum())
    else:
        from . import sharded

        n_total, weight_sum = sharded.totals(group, n, w_cpu)

    theta = theta0.detach().clone().requires_grad_(True)
    opt = make_optimizer(optimizer, [theta], lr, optimizer_options)
    use_closure = needs_closure(opt)
    opt_step = plain_step(opt)
    full_batch = batch_size is None or batch_size >= n_total
    full = loss.bind(theta, A, y, w, weight_sum) if full_batch else None
    if group is not None and full is not None:
        full = sharded.everywhere(group, theta, full)
    record_params = theta.numel() <= _HISTORY_PARAMS_MAX
    theta_ = theta.detach()

    def step(evaluate: Evaluation) -> torch.Tensor:
        if use_closure:
            # torch types the closure as returning a float; any tensor works too.
            return opt.step(evaluate)  # type: ignore[arg-type, return-value]
        summed = evaluate()
        opt_step()
        return summed

    def epoch_cost() -> torch.Tensor:
        if full is not None:
            return step(full)
        assert batch_size is not None
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        summed = torch.zeros((), dtype=X.dtype, device=X.device)
        for batch in _mini_batches(A, y, w, w_cpu, batch_size, order):
            summed = summed + step(loss.bind(theta, *batch))
        return summed

    def sharded_epoch_cost() -> torch.Tensor:
        assert group is not None and batch_size is not None
        summed = torch.zeros((), dtype=X.dtype, device=X.device)
        for batch in shards.epoch(A, y, w):
            summed = summed + step(sharded.everywhere(group, theta, loss.bind(theta, *batch)))
        return summed

    run_epoch = epoch_cost
    if group is not None and full is None:
        assert batch_size is not None
        shards = sharded.Shards(group, n, n_total, batch_size, w_cpu, shuffle, generator)
        run_epoch = sharded_epoch_cost

    costs: list[torch.Tensor] = []  # summed weighted cost per epoch
    params: list[torch.Tensor] = []
    checked = 0
    rows_per_step = min(n, batch_size or n)  # at most; a rank's part of a step is smaller
    with torch.no_grad(), threads_for(rows_per_step * A.shape[1] * y.shape[1], X.device):
        for epoch in range(epochs + 1):
            costs.append(run_epoch())
            if record_params:
                params.append(theta_.clone())
            last = epoch == epochs
            if log is not None and log_every and (epoch % log_every == 0 or last):
                cost = (costs[-1] / weight_sum).item()
                coef, b = sklearn_layout(theta_, fit_intercept, target_1d)
                log(format_log_line(epoch, epochs, _as_logged(coef), _as_logged(b), cost))
            if epoch - checked + 1 >= _CHECK_EVERY or last:
                _raise_if_diverged(costs, checked, weight_sum, lr)
                checked = epoch + 1

    if not bool(torch.isfinite(theta).all()):
        raise _diverged(epochs, float("nan"), lr)
    if group is not None:
        # Every rank took the same steps on the same gradients; rank 0's parameters make
        # the models identical even where two ranks' processors round an update apart.
        theta_.copy_(group.broadcast(theta_))
    return TrainResult(
        theta=theta.detach(),
        history=_history(costs, params, weight_sum, fit_intercept, target_1d),
    )


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
