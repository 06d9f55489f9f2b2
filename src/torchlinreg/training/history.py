"""What a training run leaves behind, epoch by epoch."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class History:
    """Per-epoch record of a gradient fit.

    ``cost[i]`` is the mean cost over epoch ``epoch[i]``, measured before each update, as
    the tutorial prints it. ``coef[i]`` and ``intercept[i]`` are the parameters *after*
    that epoch's updates; they are kept only for small models (``None`` otherwise).
    Shapes follow the estimator's ``coef_`` and ``intercept_``.
    """

    epoch: list[int] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    coef: list | None = None
    intercept: list | None = None

    def __len__(self) -> int:
        return len(self.epoch)
