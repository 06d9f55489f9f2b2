"""When training stops before its budget, with scikit-learn's ``SGDRegressor`` rules.

With ``tol`` set, after every epoch:

- on the training cost (``early_stopping=False``): an epoch whose mean cost is above
  ``best − tol`` counts as no improvement (``best`` the lowest cost so far); after
  ``n_iter_no_change`` such epochs in a row training stops, status ``"converged"``;
- on held-out rows (``early_stopping=True``): the score is the R² of the held-out rows
  (weighted, averaged over targets, as ``score`` computes it); an epoch whose score is
  below ``best + tol`` counts as no improvement, and ``n_iter_no_change`` in a row stop
  training, status ``"stopped early"``.

A run that does neither ends with status ``"budget spent"``.

The cost is the trainer's, ``Σw·r²/Σw`` (summed over targets), where ``SGDRegressor``'s
is the mean of ``½·r²``: the same ``tol`` is twice as strict here (``tol=t`` here stops
as ``SGDRegressor``'s ``tol=t/2`` would on the same costs). R² is the same in both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ..distributed.group import Group

CONVERGED, STOPPED_EARLY, BUDGET_SPENT = "converged", "stopped early", "budget spent"


@dataclass
class Stopping:
    """Counts epochs without improvement (module docstring). ``higher`` is True for a
    score (R²), False for a cost."""

    tol: float
    n_iter_no_change: int
    higher: bool
    best: float = math.nan
    count: int = 0

    def improved_enough(self, value: float) -> bool:
        """Record ``value``; True while training should go on."""
        if math.isnan(self.best):
            self.best = value
            return True
        if self.higher:
            worse = value < self.best + self.tol
            self.best = max(self.best, value)
        else:
            worse = value > self.best - self.tol
            self.best = min(self.best, value)
        self.count = self.count + 1 if worse else 0
        return self.count < self.n_iter_no_change


class Validation:
    """The held-out rows' R² at the current parameters (training units), summed over
    the ranks of ``group`` when there is one."""

    def __init__(
        self,
        A: torch.Tensor,
        y: torch.Tensor,
        w: torch.Tensor | None,
        group: Group | None,
    ) -> None:
        self.A, self.y, self.group = A, y, group
        self.w = None if w is None else w.reshape(-1, 1)
        w64 = (
            torch.ones(y.shape[0], 1, dtype=torch.float64)
            if w is None
            else w.double().cpu().reshape(-1, 1)
        )
        y64 = y.double().cpu()
        sums = torch.cat([w64.sum(0), (w64 * y64).sum(0), (w64 * y64 * y64).sum(0)])
        if group is not None:
            sums = group.sum(sums)
        k = y.shape[1]
        sw, swy, swy2 = sums[0], sums[1 : 1 + k], sums[1 + k :]
        self.total = (swy2 - swy * swy / sw).clamp_min(0)  # Σw(y − ȳ)² per target
        self.rows = float(sw)

    def score(self, theta: torch.Tensor) -> float:
        r = torch.addmm(self.y, self.A, theta, beta=-1)
        sse = ((r * r) if self.w is None else self.w * r * r).sum(0).double().cpu()
        if self.group is not None:
            sse = self.group.sum(sse)
        r2 = torch.where(self.total > 0, 1 - sse / self.total.clamp_min(1e-300), -sse)
        return float(r2.mean())


def split_validation(
    n: int, fraction: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of ``n`` rows: (training rows, held-out rows); at least one
    row held out when ``n`` is at least 2 and ``fraction`` > 0 (a rank with fewer rows
    holds none out)."""
    order = torch.randperm(n, generator=generator)
    held = int(math.ceil(fraction * n)) if n >= 2 else 0
    return order[held:].sort().values, order[:held].sort().values
