"""Iterate averaging: the model is the mean of the parameters after every step.

Constant-step SGD on mini-batches does not settle: each step follows one batch's
gradient, so the parameters wander around the optimum in a cloud whose size grows with
the step (the noise floor of the test error). The mean of the iterates cancels that
wandering while the step stays large and the start is forgotten fast: for least squares
with a constant step below the stable one, the averaged iterate reaches the optimal
statistical error, of order σ²·p/n (Polyak and Juditsky, 1992; Bach and Moulines, 2013;
with mini-batches, Jain et al., 2018), where the last iterate stays at its noise floor.

``average`` has scikit-learn's ``SGDRegressor`` meaning: ``True`` averages the
parameters after every step; an integer ``N`` starts once ``N`` rows have been seen,
counting every step's rows over the passes (``B`` a step and ``n`` a pass: a pass of
``ceil(n/B)`` steps, its last one holding the rest). Only the model (``coef_``,
``intercept_``) is the average: the epoch costs, the log, the per-epoch parameters of
the history, the divergence watch, early stopping and checkpoints' θ follow the
iterates, as training itself does. The running mean is kept in float64 (float32 sums
of thousands of steps would lose digits the model keeps) and is part of a checkpoint,
so a resumed run averages on bit for bit.
"""

from __future__ import annotations

from typing import Any

import torch

from .sharded import Step, skipped


class Averaging:
    """The running mean of ``theta`` after each step from the one whose rows reach
    ``start_rows`` on (module docstring). ``n`` rows a pass, ``batch`` a step."""

    def __init__(self, theta: torch.Tensor, start_rows: int, n: int, batch: int) -> None:
        self.theta = theta
        self.start_rows = max(int(start_rows), 1)
        self.n, self.batch = n, min(batch, n)
        self.steps_per_pass = -(-n // self.batch)
        narrow = theta.dtype in (torch.float16, torch.bfloat16, torch.float32)
        wide = torch.float64 if narrow else theta.dtype
        self.mean = torch.zeros(theta.shape, dtype=wide, device=theta.device)
        self.count = 0  # steps averaged
        self.steps = 0  # steps taken

    def rows_seen(self, steps: int) -> int:
        """Rows seen after ``steps`` steps."""
        passes, within = divmod(steps, self.steps_per_pass)
        return passes * self.n + min(within * self.batch, self.n)

    def wrap(self, step: Step) -> Step:
        """``step`` followed by this average's update (a skipped batch, whose step left
        θ where it was, counts as a step whose parameters are θ)."""
        return _Averaged(step, self)

    def after_step(self) -> None:
        self.steps += 1
        if self.rows_seen(self.steps) >= self.start_rows:
            self.count += 1
            # mean += (θ − mean)/count; lerp with weight 1 gives θ exactly.
            self.mean.lerp_(self.theta.detach().to(self.mean.dtype), 1.0 / self.count)

    def result(self) -> torch.Tensor:
        """The average in θ's dtype, or θ itself before any step was averaged."""
        if self.count == 0:
            return self.theta.detach().clone()
        return self.mean.to(self.theta.dtype)

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps to average on."""
        return {"mean": self.mean, "count": self.count, "steps": self.steps}

    def restore(self, state: Any) -> None:
        """Continue from :meth:`state`'s values (a checkpoint's, already decoded)."""
        from ..errors import InputError

        ok = (
            isinstance(state, dict)
            and isinstance(state.get("mean"), torch.Tensor)
            and state["mean"].shape == self.mean.shape
            and all(
                isinstance(state.get(k), int) and not isinstance(state.get(k), bool)
                for k in ("count", "steps")
            )
        )
        if not ok:
            raise InputError(
                "the checkpoint's averaged parameters are missing or malformed; the file is "
                "damaged or was written without average: train afresh (without resume)"
            )
        self.mean.copy_(state["mean"])
        self.count, self.steps = state["count"], state["steps"]


class _Averaged:
    """A step, then the average's update; :meth:`skip` for a batch skipped for zero
    weight passes the skip on (a per-batch schedule counts it) and averages θ as is."""

    def __init__(self, step: Step, averaging: Averaging) -> None:
        self.step, self.averaging = step, averaging

    def __call__(self, evaluate: Any) -> torch.Tensor:
        summed = self.step(evaluate)
        self.averaging.after_step()
        return summed

    def skip(self) -> None:
        skipped(self.step)
        self.averaging.after_step()
