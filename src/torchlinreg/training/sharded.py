"""Training with the rows spread over the ranks of a ``torch.distributed`` group.

Every rank binds the loss to its own rows with the *global* weight of the step, so its
gradient is ``(1/Σw) · Σ_its rows ∂(w·loss)/∂θ``: its rows' gradient sum divided by the
weight of every rank's rows. Those shares, and the summed costs, are added over the ranks
in rank order (:meth:`~torchlinreg.distributed.group.Group.sum`), so every rank receives
the same bits: the gradient and cost of all the rows, as one process would compute them
up to the order of the additions. Every rank then takes the identical optimizer step and
holds identical parameters, whatever the optimizer.

Mini-batches: an epoch has ``S = ceil(N / batch_size)`` steps (``N`` the rows of every
rank), as in one process. Each rank orders its own rows (shuffled by its own generator)
and cuts them into ``S`` consecutive parts of nearly equal size, part ``j`` being rows
``[⌊j·n/S⌋, ⌊(j+1)·n/S⌋)`` of its order; step ``j`` is part ``j`` of every rank, so a
step holds about ``N/S ≤ batch_size`` rows drawn from every rank in proportion to its
rows. A rank with fewer rows than steps (or none) contributes no rows to some steps.
The steps' global weights and rows are agreed once per epoch; a step of zero weight is
skipped on every rank, as one process skips a batch of zero weight (a per-batch schedule
still counts it). A step of ``m`` rows of every rank is bound with its expected weight
``Σw·m/N`` (:func:`.batches.expected_weight`), as one process binds a batch: its
gradient is an unbiased estimate of the full weighted gradient.

Optimizers that re-evaluate the cost within a step (L-BFGS) decide from floats how many
evaluations a step takes (line search, tolerances) and compute those floats from their
own state. Ranks on processors that round differently could decide differently and call
the collectives a different number of times: a deadlock. So only rank 0 runs such an
optimizer; before each evaluation it sends its parameters, and the other ranks evaluate
their rows' share there, until rank 0 sends the parameters after the step
(:func:`led_by_rank_0`). Every decision is rank 0's, whatever the hardware.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch

from .losses import Evaluation, Loss

if TYPE_CHECKING:
    from ..distributed.group import Group

# One optimizer step on a cost: the summed cost at the parameters before the step.
Step = Callable[[Evaluation], torch.Tensor]


def skipped(step: Step) -> None:
    """Tell ``step`` that a batch was skipped for zero weight: a step that carries a
    per-batch schedule (:class:`.schedulers.PerBatch`) steps the schedule alone, so that
    the schedule's count of batches is the epoch's, skipped or not."""
    skip = getattr(step, "skip", None)
    if skip is not None:
        skip()


def totals(group: Group, n: int, w_cpu: torch.Tensor | None) -> tuple[int, float]:
    """Rows and total weight over every rank (the weight is the row count unweighted)."""
    local_weight = 0.0 if w_cpu is None else float(w_cpu.double().sum())
    total = group.sum(torch.tensor([float(n), local_weight], dtype=torch.float64))
    n_total = int(total[0])
    return n_total, float(n_total) if w_cpu is None else float(total[1])


def everywhere(group: Group, theta: torch.Tensor, evaluate: Evaluation) -> Evaluation:
    """``evaluate`` (bound to this rank's rows with the step's global weight) summed over
    the ranks: ``theta.grad`` becomes the gradient of every rank's rows and the summed
    cost of every rank's rows is returned, the same bits on every rank."""

    def evaluate_everywhere() -> torch.Tensor:
        cost = evaluate()
        grad = theta.grad
        assert grad is not None
        # One collective a step: the gradient and the cost travel together.
        total = group.sum(torch.cat([grad.reshape(-1), cost.reshape(1).to(grad.dtype)]))
        grad.copy_(total[:-1].view_as(grad))
        return total[-1]

    return evaluate_everywhere


# The first number of rank 0's messages in a step led by rank 0: evaluate there, or the
# step is over (the message then carries the step's cost and the new parameters).
_EVALUATE, _DONE = 0.0, 1.0


def led_by_rank_0(group: Group, opt: torch.optim.Optimizer, theta: torch.Tensor) -> Step:
    """A step of a closure optimizer (``opt.step(closure)``) taken by rank 0 alone,
    every rank evaluating at rank 0's parameters (module docstring). Every rank returns
    the step's cost as rank 0's ``opt.step`` returns it and ends with rank 0's ``theta``;
    the other ranks' ``opt`` is never used. Each evaluation costs one more collective, a
    broadcast of ``theta`` (the ranks' sum of gradients is the first)."""
    params = theta.detach()

    def message(flag: float, cost: torch.Tensor) -> torch.Tensor:
        head = torch.tensor([flag, float(cost)], dtype=params.dtype, device=params.device)
        return group.broadcast(torch.cat([head, params.reshape(-1)]))

    def lead(evaluate: Evaluation) -> torch.Tensor:
        def closure() -> torch.Tensor:
            message(_EVALUATE, torch.zeros(()))
            return evaluate()

        cost = opt.step(closure)  # type: ignore[arg-type]
        return message(_DONE, torch.as_tensor(math.nan if cost is None else cost))[1]

    def follow(evaluate: Evaluation) -> torch.Tensor:
        while True:
            received = message(_EVALUATE, torch.zeros(()))
            params.copy_(received[2:].view_as(params))
            if received[0] == _DONE:
                return received[1]
            evaluate()

    return lead if group.rank == 0 else follow


class Shards:
    """This rank's part of every mini-batch step of an epoch (module docstring)."""

    def __init__(
        self,
        group: Group,
        n: int,
        n_total: int,
        batch_size: int,
        w_cpu: torch.Tensor | None,
        shuffle: bool,
        generator: torch.Generator | None,
    ) -> None:
        self.group, self.n, self.w_cpu = group, n, w_cpu
        self.shuffle, self.generator = shuffle, generator
        steps = -(-n_total // batch_size)
        self.cuts = [j * n // steps for j in range(steps + 1)]

    def epoch(
        self, A: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, float] | None]:
        """One epoch's steps ``(A, y, w, expected Σw)`` of this rank's rows (the step's
        expected weight over every rank, module docstring), steps of zero global weight
        left out (on every rank alike), ``None`` in their place."""
        if self.shuffle:
            order = torch.randperm(self.n, generator=self.generator)
        else:
            order = torch.arange(self.n)
        parts = [order[a:b] for a, b in zip(self.cuts[:-1], self.cuts[1:], strict=True)]
        # One collective: every step's weight and rows over every rank.
        sizes = torch.tensor([float(len(idx)) for idx in parts], dtype=torch.float64)
        agreed = self.group.sum(torch.cat([self._weights(parts, sizes), sizes]))
        weights, rows = agreed[: len(parts)], agreed[len(parts) :]
        # The same bits on every rank: the agreed weights summed in one order.
        weight_sum, n_total = float(weights.sum()), float(rows.sum())
        for idx, weight, m in zip(parts, weights.tolist(), rows.tolist(), strict=True):
            if not weight > 0:
                yield None
                continue
            idx_dev = idx.to(A.device)
            expected = weight_sum * m / n_total
            yield A[idx_dev], y[idx_dev], None if w is None else w[idx_dev], expected

    def run_epoch(
        self,
        A: torch.Tensor,
        y: torch.Tensor,
        w: torch.Tensor | None,
        theta: torch.Tensor,
        loss: Loss,
        step: Step,
    ) -> torch.Tensor:
        """One epoch of steps on every rank's rows; returns the epoch's summed cost."""
        summed = torch.zeros((), dtype=A.dtype, device=A.device)
        for batch in self.epoch(A, y, w):
            if batch is None:
                skipped(step)
                continue
            summed = summed + step(everywhere(self.group, theta, loss.bind(theta, *batch)))
        return summed

    def _weights(self, parts: list[torch.Tensor], sizes: torch.Tensor) -> torch.Tensor:
        if self.w_cpu is None:
            return sizes
        w64 = self.w_cpu.double()
        return torch.stack([w64[idx].sum() for idx in parts])
