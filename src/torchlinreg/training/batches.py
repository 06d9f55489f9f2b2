"""One process's mini-batch epoch, reading the rows of many batches at once.

An epoch visits the rows in one order, ``randperm(n)`` drawn from the shuffling
generator (``0..n-1`` without shuffling), and batch ``j`` is rows
``order[j·B : (j+1)·B]``; a batch of zero total weight is skipped (its gradient is
zero; a per-batch schedule still counts it, :func:`.sharded.skipped`). Every batch is
bound with the *expected* weight of a full batch, ``Σw·B/n`` (:func:`batch_divisor`),
not its own ``Σ_batch w``: a full batch's gradient ``2/(Σw·B/n)·A_bᵀ(w_b ⊙ r_b)`` is
then, over the draw of the batch, an unbiased estimate of the full weighted gradient
``2/Σw·Aᵀ(w ⊙ r)``, and SGD on the weighted cost converges to the weighted
least-squares fit. Dividing by the batch's own weight would not: at ``batch_size=1``
the weight cancels and every row counts alike. The short last batch of an epoch (``m``
rows, ``n`` not a multiple of ``B``) is divided by the same full-batch weight, so it
moves θ by ``m/B`` of a step: every row moves θ alike within an epoch, as in
per-sample SGD, and the epoch does not end on a full-size step taken on a few rows'
noise (which left 1e6 × 100 at batch 256 a tenth worse in test MSE: docs/benchmarks.md).
Unweighted, the divisor is ``B``. That is the definition; this module only changes how
the rows reach the arithmetic.

Indexing a batch of 256 random rows out of a large design (``A[idx]``) costs far more
than the step's arithmetic: on 1,000,000 × 101 float32, ~170 µs against ~11 µs
(docs/benchmarks.md, "Gradient training"). Copying the rows of a *chunk* of consecutive
batches at once with ``index_select`` into a buffer made once per fit costs ~23 µs a
batch, and each batch is then a contiguous slice of that buffer: no allocation, no
per-batch gather, and only :data:`CHUNK_BYTES` of extra memory whatever the data's size
(a shuffled copy of the whole design would double it, and allocating it every epoch
costs its page faults again). Without shuffling, batches are slices of the design
itself. The loss is bound once per epoch where it can be (:meth:`.SquaredError.batches`:
buffers reused by every batch), and the epoch's cost is summed in place.

Each batch's tensors hold the same numbers, contiguous and of the same shape, as the
indexed ones, and the same kernels run on them in the same order; the shuffling
generator draws exactly as before (one ``randperm`` an epoch), so a seed gives the same
batches, checkpoints resume the same way and the parameters agree to the rounding of
the kernels (tests/test_batches.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .losses import BatchBinder, Evaluation, Loss, SquaredError
from .sharded import Step, skipped

# Bytes of rows (design, targets, weights) gathered at once. Measured on 1,000,000 ×
# 101 float32 at batch 256 (µs a batch): 33 one batch at a time, 25 at 32 batches
# (3 MB), 23 at 128 (13 MB), 27 at 512 or more (the chunk no longer stays in cache).
CHUNK_BYTES = 16 << 20


class MiniBatchEpoch:
    """Calling it runs one epoch of steps over ``A``'s rows (module docstring) and
    returns the epoch's summed cost.

    ``A`` (n, q), ``y`` (n, k) and ``w`` (n, 1) or ``None`` are on one device;
    ``w_cpu`` is ``w`` as (n,) on the CPU, where the batches' weights are summed (they
    decide which batches are skipped without a device sync)."""

    def __init__(
        self,
        A: torch.Tensor,
        y: torch.Tensor,
        w: torch.Tensor | None,
        w_cpu: torch.Tensor | None,
        theta: torch.Tensor,
        loss: Loss,
        step: Step,
        batch_size: int,
        shuffle: bool,
        generator: torch.Generator | None,
    ) -> None:
        self.A, self.y, self.w, self.w_cpu = A, y, w, w_cpu
        self.step, self.batch_size = step, batch_size
        self.shuffle, self.generator = shuffle, generator
        self.n = A.shape[0]
        # The total weight as the trainer sums it (loop._Rows: in the weights' dtype).
        self.weight_sum = float(self.n) if w_cpu is None else float(w_cpu.sum())
        self.divisor = batch_divisor(self.weight_sum, batch_size, self.n, w is not None)
        self.chunk_rows = chunk_rows(A, y, w, batch_size)
        self.bind = _binder(loss, theta, min(batch_size, self.n), w is not None)
        # Unweighted squared error: a batch's evaluation depends only on where its rows
        # lie (a slice of the chunk buffer, or of A), so each is bound once per fit.
        self.reuse = type(loss) is SquaredError and w is None
        self._bound: dict[tuple[bool, int], list[Evaluation]] = {}
        self._buffers: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None

    def __call__(self) -> torch.Tensor:
        summed = torch.zeros((), dtype=self.A.dtype, device=self.A.device)
        step = self.step
        for evaluate in self.evaluations():
            summed.add_(step(evaluate))
        return summed

    def evaluations(self) -> Iterator[Evaluation]:
        """The loss bound to each of this epoch's batches in turn, batches of zero weight
        left out; each is valid until the next is drawn (they share buffers)."""
        if not self.shuffle:
            yield from self._bind_chunk(self.A, self.y, self.w, self.w_cpu, gathered=False)
            return
        order = torch.randperm(self.n, generator=self.generator)
        for start in range(0, self.n, self.chunk_rows):
            chunk = self._gather(order[start : start + self.chunk_rows])
            yield from self._bind_chunk(*chunk, gathered=True)

    def _gather(
        self, idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The rows ``idx`` (on the CPU) copied into the chunk buffers, in order."""
        A_buf, y_buf, w_buf = self._buffers or self._allocate()
        m = len(idx)
        idx_dev = idx.to(self.A.device)
        A = torch.index_select(self.A, 0, idx_dev, out=A_buf[:m])
        y = torch.index_select(self.y, 0, idx_dev, out=y_buf[:m])
        if self.w is None or self.w_cpu is None or w_buf is None:
            return A, y, None, None
        w = torch.index_select(self.w, 0, idx_dev, out=w_buf[:m])
        return A, y, w, self.w_cpu[idx]

    def _allocate(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        rows = min(self.chunk_rows, self.n)
        A, y, w = self.A, self.y, self.w
        self._buffers = (
            A.new_empty(rows, A.shape[1]),
            y.new_empty(rows, y.shape[1]),
            None if w is None else w.new_empty(rows, w.shape[1]),
        )
        return self._buffers

    def _bind_chunk(
        self,
        A: torch.Tensor,
        y: torch.Tensor,
        w: torch.Tensor | None,
        w_cpu: torch.Tensor | None,
        gathered: bool,
    ) -> Iterator[Evaluation]:
        """The evaluations of consecutive batches of ``batch_size`` rows of a chunk (the
        last may be shorter)."""
        if self.reuse:
            key = (gathered, A.shape[0])
            bound = self._bound.get(key)
            if bound is None:
                bound = self._bound[key] = list(self._bind_each(A, y, w, w_cpu))
            return iter(bound)
        return self._bind_each(A, y, w, w_cpu)

    def _bind_each(
        self,
        A: torch.Tensor,
        y: torch.Tensor,
        w: torch.Tensor | None,
        w_cpu: torch.Tensor | None,
    ) -> Iterator[Evaluation]:
        B, m = self.batch_size, A.shape[0]
        for start in range(0, m, B):
            end = min(start + B, m)
            if w is None or w_cpu is None:
                yield self.bind(A[start:end], y[start:end], None, self.divisor)
                continue
            # A batch of no weight carries no gradient: skipped, but counted by a
            # per-batch schedule.
            if float(w_cpu[start:end].sum()) > 0:
                yield self.bind(A[start:end], y[start:end], w[start:end], self.divisor)
            else:
                skipped(self.step)


def batch_divisor(weight_sum: float, batch_size: int, n: int, weighted: bool) -> float:
    """What every batch's summed gradient is divided by: the expected weight of a full
    batch, ``Σw·B/n`` (exactly ``B`` unweighted); see the module docstring."""
    return expected_weight(weight_sum, batch_size, n) if weighted else float(batch_size)


def expected_weight(weight_sum: float, rows: int, n: int) -> float:
    """The weight a batch of ``rows`` of the ``n`` rows carries on average,
    ``Σw·rows/n``: the divisor of its gradient (module docstring). Exactly ``rows``
    when every weight is 1."""
    return weight_sum * rows / n


def chunk_rows(A: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None, batch_size: int) -> int:
    """Rows gathered at once: whole batches, as many as fit in :data:`CHUNK_BYTES`
    (at least one)."""
    row_bytes = A.shape[1] * A.element_size() + y.shape[1] * y.element_size()
    if w is not None:
        row_bytes += w.shape[1] * w.element_size()
    batches = max(1, CHUNK_BYTES // max(1, row_bytes * batch_size))
    return batches * batch_size


def _binder(loss: Loss, theta: torch.Tensor, rows: int, weighted: bool) -> BatchBinder:
    """The loss bound batch after batch: with buffers made once where the loss offers
    it (:meth:`.SquaredError.batches`), otherwise :meth:`Loss.bind` per batch."""
    if type(loss) is SquaredError:
        return loss.batches(theta, rows, weighted)

    def bind(
        A: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None, weight_sum: float
    ) -> Evaluation:
        return loss.bind(theta, A, y, w, weight_sum)

    return bind
