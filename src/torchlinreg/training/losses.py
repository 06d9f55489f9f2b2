"""Costs the trainer minimises.

Every loss works on the augmented design ``A = [1, X]`` (just ``X`` without an
intercept) and the parameter matrix ``theta = [b; W]`` (intercept first, as in the exact
solvers), so the model is ``A @ theta``.
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
from ..models._validation import LOSSES

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
    loop; buffers are allocated once per batch (once per run of batches with
    :meth:`batches`), so a step is three kernel calls.
    """

    def bind(
        self,
        theta: torch.Tensor,
        A: torch.Tensor,
        y: torch.Tensor,
        w: torch.Tensor | None,
        weight_sum: float,
    ) -> Evaluation:
        return self.batches(theta, A.shape[0], w is not None)(A, y, w, weight_sum)

    def batches(self, theta: torch.Tensor, rows: int, weighted: bool) -> BatchBinder:
        """``bind`` for a run of batches of at most ``rows`` rows each, all weighted or
        none: the buffers are allocated once and every batch's evaluation writes into
        them (so only the latest batch's evaluation may be used). Each evaluation runs
        the same kernels on the same shapes as ``bind``'s, so it gives the same bits."""
        th = theta.detach()  # no graph, even when an optimizer enables grad mode
        k = th.shape[1]
        r_all = th.new_empty(rows, k)
        wr_all = th.new_empty(rows, k) if weighted else r_all
        grad = torch.zeros_like(th)

        def bind_batch(
            A: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None, weight_sum: float
        ) -> Evaluation:
            m = A.shape[0]
            r, wr = r_all[:m], wr_all[:m]  # contiguous: the first m rows
            return _squared_evaluation(theta, th, A, y, w, r, wr, grad, 2.0 / weight_sum)

        return bind_batch


# Binds a loss to one batch (A, y, w, Σw of the step) with buffers made beforehand.
BatchBinder = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None, float], Evaluation]


def _squared_evaluation(
    theta: torch.Tensor,
    th: torch.Tensor,
    A: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor | None,
    r: torch.Tensor,
    wr: torch.Tensor,
    grad: torch.Tensor,
    alpha: float,
) -> Evaluation:
    """:class:`SquaredError`'s evaluation on one batch: the residual into ``r`` (and
    ``w ⊙ r`` into ``wr``), the gradient ``alpha · Aᵀ(w ⊙ r)`` into ``grad``."""
    At = A.T
    r_flat = r.view(-1)
    wr_flat = r_flat if w is None else wr.view(-1)

    def evaluate() -> torch.Tensor:
        torch.addmm(y, A, th, beta=-1, out=r)
        if w is not None:
            torch.mul(w, r, out=wr)
        if theta.grad is not grad:
            theta.grad = grad
        torch.addmm(grad, At, r if w is None else wr, beta=0, alpha=alpha, out=grad)
        return torch.dot(r_flat, wr_flat)

    return evaluate


class TutorialSquaredError:
    """Mean squared error computed op for op as the tutorial's autograd computes
    ``torch.mean((W * x + b - y) ** 2)`` and its gradient, so that a replay rounds
    exactly as the tutorial does (same kernels on same-shaped tensors, same dtype).

    :class:`SquaredError` gets the same numbers up to rounding, but its matrix products
    fuse multiply-adds and sum in their own order, and float32 rounding then shows in
    the tutorial's log within a few epochs. Here, with ``a_j`` the columns of ``A``::

        pred = Σ_j a_j θ_j          (1·b, then + x·W: the tutorial's W * x + b)
        r = pred − y;   cost = Σ w·r²          (the mean divides by Σ w later)
        g = (1/Σw) · (2·r) [· w]    (autograd: mean's backward, then pow's)
        ∂cost/∂θ_j = Σ_i a_ij g_i   (a product, then a sum over a contiguous column)

    4p + 8 small kernels a step (12 for the tutorial) against :class:`SquaredError`'s
    three, and no matrix product: meant for small problems such as the tutorial's.
    """

    def bind(
        self,
        theta: torch.Tensor,
        A: torch.Tensor,
        y: torch.Tensor,
        w: torch.Tensor | None,
        weight_sum: float,
    ) -> Evaluation:
        th = theta.detach()
        columns = [A[:, j : j + 1] for j in range(A.shape[1])]
        grad = torch.zeros_like(th)
        # Row views, made once: the optimizer updates θ in place.
        theta_rows, grad_rows = th.unbind(0), grad.unbind(0)
        # Autograd's seed for a mean: 1 / n, divided in the parameters' dtype.
        inverse_weight = torch.ones((), dtype=th.dtype, device=th.device) / weight_sum

        def evaluate() -> torch.Tensor:
            pred = columns[0] * theta_rows[0]
            for a_j, theta_j in zip(columns[1:], theta_rows[1:], strict=True):
                pred = pred + a_j * theta_j
            r = pred - y
            g = inverse_weight * (2.0 * r)
            if w is not None:
                g = g * w
            for a_j, grad_j in zip(columns, grad_rows, strict=True):
                torch.sum(a_j * g, dim=0, out=grad_j)
            if theta.grad is not grad:
                theta.grad = grad
            return (r**2).sum() if w is None else (w * r**2).sum()

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


def make_loss(name: str, epsilon: float) -> Loss:
    """Look a loss up by its scikit-learn name."""
    if name == "squared_error":
        return SquaredError()
    if name == "huber":
        if not epsilon > 0:
            raise InputError(f"epsilon must be > 0 for the huber loss, got {epsilon!r}")
        return Huber(epsilon)
    raise InputError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
