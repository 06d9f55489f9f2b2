"""What a training run leaves behind, epoch by epoch, and why it ended."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class History:
    """Per-epoch record of a gradient fit.

    ``cost[i]`` is the mean cost over epoch ``epoch[i]``, measured before each update, as
    the tutorial prints it. ``coef[i]`` and ``intercept[i]`` are the parameters *after*
    that epoch's updates, in the data's units; they are kept only for small models
    (``None`` otherwise). Shapes follow the estimator's ``coef_`` and ``intercept_``.
    ``validation_score[i]`` is the held-out rows' R² after epoch ``i`` (with
    ``early_stopping``; ``None`` otherwise).

    ``status`` says how the run ended: ``"converged"`` (the training cost stopped
    improving by ``tol``), ``"stopped early"`` (the held-out score stopped improving),
    or ``"budget spent"`` (every epoch ran); ``reason`` says it in words, with the gap to
    the exact least-squares optimum when it is known. ``lr`` is the learning rate the
    run started with (the one ``lr="auto"`` chose, or the one given).
    """

    epoch: list[int] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    coef: list | None = None
    intercept: list | None = None
    validation_score: list[float] | None = None
    status: str = ""
    reason: str = ""
    lr: float | None = None

    def __len__(self) -> int:
        return len(self.epoch)
