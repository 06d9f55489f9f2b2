"""Costs the trainer minimises.

Every loss works on the augmented design ``A = [X, 1]`` (just ``X`` without an
intercept) and the parameter matrix ``theta = [W; b]``, so the model is ``A @ theta``.
``bind`` ties a loss to one batch and returns an *evaluation*: a function of no
arguments that stores the gradient of the batch's mean cost ``Σ w·loss(r) / Σ w`` in
``theta.grad`` and returns the batch's *summed* cost ``Σ w·loss(r)`` (the trainer divides
by the epoch's total weight once, so per-epoch costs need no extra work per step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from ..errors import InputError

Evaluation = Callable[[], torch.Tensor]


class Loss(Protocol):
    def bind(
        self,
        theta: torch.Tensor,
        A: torch.Tensor,
        y: torch.Tensor,
        w: torch.Tensor | None,
        weight_sum: float,
    ) -> Evaluation: ...


class SquaredError:
    """Mean squared error, the tutorial's cost, with its gradient in closed form.

    r = A θ − y;   cost = Σ w·r² / Σ w;   ∂cost/∂θ = 2/Σw · Aᵀ (w ⊙ r)

    The closed form skips autograd's graph building, which dominates the tutorial's
    loop; buffers are allocated once per batch, so a step is three kernel calls.
    """

    def bind(
        self,
        theta: torch.Tensor,
        A: torch.Tensor,
        y: torch.Tensor,
        w: torch.Tensor | None,
        weight_sum: float,
    ) -> Evaluation:
        th = theta.detach()  # no graph, even when an optimizer enables grad mode
        At = A.T
        r = torch.empty_like(y)
        wr = r if w is None else torch.empty_like(y)
        r_flat, wr_flat = r.view(-1), wr.view(-1)
        grad = torch.zeros_like(th)
        alpha = 2.0 / weight_sum

        def evaluate() -> torch.Tensor:
            torch.addmm(y, A, th, beta=-1, out=r)
            if w is not None:
                torch.mul(w, r, out=wr)
            if theta.grad is not grad:
                theta.grad = grad
            torch.addmm(grad, At, wr, beta=0, alpha=alpha, out=grad)
            return torch.dot(r_flat, wr_flat)

        return evaluate


class Huber:
    """Huber cost: r²/2 for |r| ≤ epsilon, epsilon·(|r| − epsilon/2) beyond.

    Robust to outliers in y; gradients come from autograd.
    """

    def __init__(self, epsilon: float) -> None:
        self.epsilon = epsilon

    def bind(
        self,
        theta: torch.Tensor,
        A: torch.Tensor,
        y: torch.Tensor,
        w: torch.Tensor | None,
        weight_sum: float,
    ) -> Evaluation:
        def evaluate() -> torch.Tensor:
            with torch.enable_grad():
                r = A @ theta - y
                per_row = torch.nn.functional.huber_loss(
                    r, torch.zeros_like(r), reduction="none", delta=self.epsilon
                )
                total = per_row.sum() if w is None else (w * per_row).sum()
                theta.grad = None
                (total / weight_sum).backward()
            return total.detach()

        return evaluate


LOSSES = ("squared_error", "huber")


def make_loss(name: str, epsilon: float) -> Loss:
    """Look a loss up by its scikit-learn name."""
    if name == "squared_error":
        return SquaredError()
    if name == "huber":
        if not epsilon > 0:
            raise InputError(f"epsilon must be > 0 for the huber loss, got {epsilon!r}")
        return Huber(epsilon)
    raise InputError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
