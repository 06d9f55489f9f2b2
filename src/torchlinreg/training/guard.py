"""The learning rate's limits: the stable step known from the data, ``lr="auto"``, and
the watch that stops training whose cost grows.

**Exact bound.** For the squared error ``f(θ) = Σw(Aθ − y)²/Σw`` the Hessian is the
constant ``H = 2·AᵀWA/Σw`` (``A`` in the units training runs in), and full-batch plain
gradient descent ``θ ← θ − lr·∇f`` multiplies the error along the eigenvector of
``λ`` by ``1 − lr·λ`` every epoch. It converges exactly when ``lr < 2/λmax`` (plus
torch's ``weight_decay``, which adds it to every eigenvalue), the cost then falling at
every epoch; at or beyond it the error along the top eigenvector never shrinks and,
above it, grows geometrically. So when that bound applies (squared error, full batch,
``torch.optim.SGD`` without momentum, a constant ``lr``: no schedule) and ``lr`` is at
or above it, the first epoch whose cost exceeds the one before is divergence, reported
with the bound. A schedule may bring the rate under the bound after a rise (the cost
then falls again), so with one the sustained-growth rule below applies instead.

**Sustained growth.** Mini-batches, momentum, adaptive optimizers, the Huber loss and
schedules have no such exact rule (momentum and Adam-like steps may rise for a while and
then fall). Training is declared diverged when the epoch cost stays above
:data:`GROWTH` times a reference cost for :data:`SUSTAINED` consecutive epochs: worse
than where training began, or than the best constant model, and staying so. The
reference is the larger of the cost at the starting parameters, before any step, and the
best constant model's cost (``y``'s weighted mean for every row), both known from the
exact least-squares state for the squared error at no cost; a start near the optimum
(warm start) thus does not make every small rise look like growth. With weight decay,
whose pull toward θ = 0 acts on the intercept too (θ is ``[b; W]``), θ = 0's cost
counts as well: the penalised optimum's cost lies below it (its penalised cost is at
most θ = 0's), while y ≈ 10⁴ + x would otherwise read the decay's pull on the
intercept as growth. Without that state
(or for the Huber loss, whose costs it does not give) the reference is epoch 0's cost.
A NaN or infinite cost is divergence in every case.

**``lr="auto"``** (``L`` the curvature: ``λmax(H)`` for the squared error, ``λmax/2``
for the Huber loss, whose second derivative is at most 1 where the squared error's is 2):

- SGD and ASGD: ``1/L'`` on the full batch, a step with margin 2 under the exact bound,
  ``L' = L + weight_decay`` (torch's coupled decay adds ``weight_decay·θ`` to the
  gradient, so it adds to every eigenvalue). Heavy-ball momentum β is stable on the
  full batch up to ``2(1+β)/L'``, Nesterov's up to ``2(1+β)/((1+2β)L')``, both above
  ``1/L'``, which it keeps. Mini-batches of ``b`` of ``n`` rows: ``1/L_b`` with
  ``L_b = n(b−1)/(b(n−1))·L + (n−b)/(b(n−1))·L_max + weight_decay``, the expected
  smoothness of sampling ``b`` rows (Gower et al., 2019), ``L_max`` the largest single
  row's curvature ``2·(n·w_i/Σw)·‖a_i‖²`` (a batch's gradient is divided by its
  expected weight, :mod:`.batches`): one row at a time needs the row's own bound. With
  momentum β (and dampening d) on mini-batches, ``(1−β)/((1−d)·L_b)``: momentum sums
  the noisy gradients into an effective step ``lr·(1−d)/(1−β)``, which must itself
  stay within ``1/L_b``.
- Adaptive optimizers (Adam, AdamW, Adamax, NAdam, RAdam, RMSprop, Adafactor, Rprop):
  their steps are normalised, each parameter moving about ``lr`` per step whatever the
  gradient's size, so the rate is set from the size of the answer ``D`` rather than the
  curvature: the largest *slope* of the exact least-squares solution, in training units
  (the intercept, often far larger, e.g. y ≈ 10⁴ + x, would make the slopes jitter at
  its size); ``0.01·D``, so the slopes are about 100 steps away and the steps' jitter
  around them about 1% of them (RMSprop, without momentum, keeps jittering at that
  size: a schedule such as ``"cosine"`` settles it). An intercept much larger than the
  slopes then takes about ``|b|/lr`` steps to reach; a run that ends far from the
  optimum warns (:class:`~torchlinreg.errors.ConvergenceWarning`). Adagrad's steps
  shrink as ``lr/√t``, so it gets ``0.1·D`` (its steps then add up to ``D`` within
  about 25). Decoupled weight decay (AdamW, or ``decoupled_weight_decay=True``)
  multiplies θ by ``1 − lr·weight_decay`` every step, so the rate is capped at
  ``0.1/weight_decay``.
- L-BFGS and Adadelta: 1, their natural unit step (L-BFGS scales it by its curvature
  estimate and line search; Adadelta's ``lr`` only multiplies its own scaled step).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

import torch

from ..errors import InputError, TrainingDivergedError

GROWTH = 10.0
SUSTAINED = 5

_SGD = (torch.optim.SGD, torch.optim.ASGD)
_ADAPTIVE_NAMES = (
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Adagrad",
    "Adafactor",
    "Rprop",
)
_UNIT_NAMES = ("LBFGS", "Adadelta")


def family(opt: torch.optim.Optimizer) -> str:
    """``"sgd"``, ``"adaptive"``, ``"unit"`` (L-BFGS, Adadelta) or ``"other"``."""
    if isinstance(opt, _SGD):
        return "sgd"
    for kind, names in (("adaptive", _ADAPTIVE_NAMES), ("unit", _UNIT_NAMES)):
        classes = tuple(getattr(torch.optim, n) for n in names if hasattr(torch.optim, n))
        if isinstance(opt, classes):
            return kind
    return "other"


def plain_sgd(opt: torch.optim.Optimizer) -> bool:
    """``torch.optim.SGD`` with no momentum, minimising: the exact bound's method."""
    if type(opt) is not torch.optim.SGD:
        return False
    d = opt.defaults
    return not d.get("momentum") and not d.get("nesterov") and not d.get("maximize")


@dataclass
class Curvature:
    """What the data say about step sizes, in training units (``None``: unknown)."""

    hessian_max: float | None = None  # λmax of the squared error's Hessian
    solution_max: float | None = None  # largest |slope| of the exact solution
    squared: bool = True  # the loss is the squared error (else Huber: half the curvature)
    # The squared error Σw·r²/Σw (summed over targets) of θ in training units, and the
    # best constant model's, from the exact state (no pass over the data).
    cost_of: Callable[[torch.Tensor], float] | None = None
    null_cost: float | None = None

    def reference_cost(self, theta0: torch.Tensor, decay: bool = False) -> float | None:
        """The growth rule's reference (module docstring): the larger of θ0's cost and
        the best constant model's, and with weight ``decay`` θ = 0's; ``None`` where the
        state does not give them."""
        if not self.squared or self.cost_of is None or self.null_cost is None:
            return None
        costs = [self.cost_of(theta0), self.null_cost]
        if decay:
            costs.append(self.cost_of(torch.zeros_like(theta0)))
        return max(costs)

    @property
    def smoothness(self) -> float | None:
        if self.hessian_max is None:
            return None
        return self.hessian_max if self.squared else self.hessian_max / 2


def exact_bound(curvature: Curvature, opt: torch.optim.Optimizer, full_batch: bool) -> float | None:
    """``2/(λmax + weight_decay)`` where it is exact (module docstring), else ``None``."""
    if curvature.hessian_max is None or not curvature.squared or not full_batch:
        return None
    if not plain_sgd(opt):
        return None
    return 2.0 / (curvature.hessian_max + float(opt.defaults.get("weight_decay") or 0.0))


def reference_bound(curvature: Curvature) -> float | None:
    """``2/L``, the full-batch plain-GD bound of the loss's largest curvature ``L``
    (exact for the squared error, an upper curvature for Huber's), quoted where no exact
    bound holds."""
    L = curvature.smoothness
    return None if L is None or not L > 0 else 2.0 / L


def auto_lr(
    opt: torch.optim.Optimizer,
    curvature: Curvature,
    *,
    n: int,
    batch: int,
    row_max: float | None,
) -> float:
    """The rate ``lr="auto"`` picks for ``opt`` (module docstring). ``n`` rows, ``batch``
    rows a step, ``row_max`` the largest row curvature ``2·(n·w_i/Σw)·‖a_i‖²``."""
    kind = family(opt)
    if kind == "unit":
        return 1.0
    if kind == "adaptive":
        return _adaptive_lr(opt, curvature.solution_max)
    if kind == "sgd":
        L = curvature.smoothness
        if L is None or not L > 0:
            raise InputError(
                "lr='auto' needs the data's curvature, which is zero here; give lr as a number"
            )
        d = opt.defaults
        mini_batch = batch < n and n > 1
        if mini_batch and row_max is not None:
            loss_scale = 1.0 if curvature.squared else 0.5
            L = (
                n * (batch - 1) / (batch * (n - 1)) * L
                + (n - batch) / (batch * (n - 1)) * row_max * loss_scale
            )
        L += float(d.get("weight_decay") or 0.0)
        momentum = float(d.get("momentum") or 0.0)
        if mini_batch and 0 < momentum < 1:
            dampening = float(d.get("dampening") or 0.0)
            return (1.0 - momentum) / (max(1.0 - dampening, 1e-12) * L)
        return 1.0 / L
    raise InputError(
        f"lr='auto' has a rule for SGD, adaptive optimizers (Adam, RMSprop, ...), L-BFGS "
        f"and Adadelta, not for {type(opt).__name__}; give lr as a number"
    )


def _adaptive_lr(opt: torch.optim.Optimizer, size: float | None) -> float:
    """An adaptive optimizer's rate from the size of the slopes (module docstring)."""
    share = 0.1 if isinstance(opt, torch.optim.Adagrad) else 0.01
    lr = share * size if size is not None and size > 0 else share
    d = opt.defaults
    decay = float(d.get("weight_decay") or 0.0)
    decoupled = isinstance(opt, torch.optim.AdamW) or bool(d.get("decoupled_weight_decay"))
    if decoupled and decay > 0:
        lr = min(lr, 0.1 / decay)
    return lr


def floor_g(x: float, digits: int = 6) -> str:
    """``x`` (> 0) written with ``digits`` significant digits, rounded down (not to the
    nearest, as ``:.6g`` does): a bound quoted as ``lr < value`` stays true of every
    ``lr`` up to the value printed."""
    if not (math.isfinite(x) and x > 0):
        return f"{x:g}"
    exact = Decimal(x)  # the float's exact binary value
    quantum = Decimal(1).scaleb(exact.adjusted() - digits + 1)
    # At most `digits` digits: the float nearest to them prints them back with :g.
    return f"{float(exact.quantize(quantum, rounding=ROUND_FLOOR)):.{digits}g}"


class Watch:
    """Looks at the epochs' mean costs, in order, and raises
    :class:`~torchlinreg.errors.TrainingDivergedError` at divergence (module docstring).

    ``constant``: the rate stays ``lr`` (no schedule), so the exact rule may apply.
    ``reference``: the growth rule's reference cost where the exact state gives one
    (:meth:`Curvature.reference_cost`), else ``None`` and epoch 0's cost is used."""

    def __init__(
        self,
        lr: float,
        bound: float | None,
        reference: float | None,
        what: str,
        *,
        constant: bool = True,
        reference_cost: float | None = None,
    ) -> None:
        self.lr, self.bound, self.reference, self.what = lr, bound, reference, what
        self.exact = constant and bound is not None and lr >= bound
        self.known = reference_cost is not None  # the reference is not epoch 0's cost
        self.start: float | None = reference_cost
        self.previous: float | None = None
        self.above = 0

    def see(self, epoch: int, cost: float) -> None:
        if not math.isfinite(cost):
            raise self._error(epoch, cost, f"the cost became {cost}")
        if self.start is None:
            self.start = cost
        previous, self.previous = self.previous, cost
        if self.exact and previous is not None and cost > previous:
            raise self._error(epoch, cost, f"the cost grew from {previous:.9g} to {cost:.9g}")
        self.above = self.above + 1 if cost > GROWTH * self.start else 0
        if self.above >= SUSTAINED:
            what = (
                "the larger of its starting cost and the best constant model's"
                if self.known
                else "its starting value"
            )
            raise self._error(
                epoch,
                cost,
                f"the cost stayed above {GROWTH:g}x {what}, {self.start:.6g}, for "
                f"{SUSTAINED} epochs, reaching {cost:.6g}",
            )

    def _error(self, epoch: int, cost: float, seen: str) -> TrainingDivergedError:
        head = f"training diverged at epoch {epoch}: {seen} with lr={self.lr:g}"
        if self.bound is not None:
            advice = (
                f"full-batch gradient descent on this data is stable only for lr < "
                f"{floor_g(self.bound)} (2/λmax of the cost's Hessian, in the units training "
                f"runs in); use a smaller lr, e.g. lr='auto' ({self.bound / 2:.6g})"
            )
        elif self.reference is not None:
            advice = (
                f"{self.what} has no exact stable bound; for reference, full-batch plain "
                f"gradient descent on this data and loss is stable below "
                f"lr={floor_g(self.reference)}; try a smaller lr or lr='auto'"
            )
        else:
            advice = (
                f"the learning rate is too large for this data: try lr={self.lr / 10:g} or "
                "smaller, or standardize the features"
            )
        return TrainingDivergedError(f"{head}; {advice}", epoch=epoch, cost=cost)
