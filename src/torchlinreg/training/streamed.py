"""Gradient training on rows read pass after pass from a chunk source: data larger than
memory.

:class:`StreamedRows` stands where :func:`.loop.train` otherwise takes ``X`` and ``y``
in memory. Its source is called once per pass and yields validated chunks (a file read
block by block, a re-iterable, a function returning a fresh iterator). The first pass
(:meth:`StreamedRows.first_pass`) learns the rows' count, total weight, shapes and
fingerprint while the estimator folds the exact least-squares state from it (the scales
of standardization, the stable step and ``exact_`` come from that state, as in memory);
every later pass must read the same rows.

An epoch is then one more pass:

- **Full batch**: one optimizer step per epoch. The cost ``Σ w·loss(r) / Σw`` is a sum
  over rows, so its gradient is the sum over chunks of each chunk's evaluation with the
  *global* ``Σw`` (:mod:`.losses`: an evaluation stores its gradient in ``theta.grad``
  and returns its summed cost); the chunks' gradients and costs are added up and the
  optimizer steps once on the total. Only the order of additions differs from the
  in-memory gradient. An optimizer that evaluates the cost several times a step
  (L-BFGS) reads the data once per evaluation.
- **Mini-batches**: the chunks' rows go through
  :func:`.shuffle_buffer.shuffled_batches` (seeded, bounded buffer) and each batch is
  one step, exactly as an in-memory batch would be (the same loss binding, a batch of
  zero weight skipped). Without shuffling the batches are the rows in the stream's order,
  cut as in memory, so training equals the in-memory one. With shuffling, rows mix
  within the buffer only; a buffer of more rows than the data holds them all and draws
  one permutation of all of them, the in-memory epoch's.

Every pass takes the rows' fingerprint (:mod:`..solvers.fingerprint`, the order-free
sum of row hashes: about a tenth of a fold's time per pass over the values) and compares
it with the first pass's at the pass's end: a file rewritten between epochs stops
training with an :class:`~torchlinreg.errors.InputError` rather than mixing two data
sets. The first pass's fingerprint is also the data's digest in checkpoints.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator

import torch

from ..data.chunks import Chunk
from ..errors import InputError
from ..solvers.fingerprint import Fingerprint
from .batches import _binder, batch_divisor
from .losses import Evaluation, Loss
from .scaling import Scaling
from .sharded import Step, skipped
from .shuffle_buffer import shuffled_batches

# The default shuffle buffer: at least this many rows, or this many batches if more,
# but at most BUFFER_BYTES of rows (design, targets and weights in the training dtype)
# and never less than one batch. 65,536 rows of 20 float32 features are 5.5 MB; the
# buffer, its shuffled copy and one chunk are what an epoch holds.
BUFFER_ROWS = 1 << 16
BUFFER_BATCHES = 16
BUFFER_BYTES = 256 << 20


def default_buffer_rows(batch_size: int, row_bytes: int) -> int:
    """``max(65,536 rows, 16 batches)``, capped at :data:`BUFFER_BYTES`, at least one
    batch."""
    wanted = max(BUFFER_ROWS, BUFFER_BATCHES * batch_size)
    return max(batch_size, min(wanted, BUFFER_BYTES // max(1, row_bytes)))


class _Seen(Fingerprint):
    """A pass's fingerprint, with a digest for checkpoints."""

    def digest(self) -> str:
        return f"stream:{self.rows}:{self.weighted_rows}:{self._sum:016x}"


class StreamedRows:
    """The rows of ``source`` (called once per pass; it yields validated
    :class:`~torchlinreg.data.chunks.Chunk`), trained on in ``dtype`` on ``device``.

    After :meth:`first_pass` has been read to its end, ``n``/``n_total`` (rows),
    ``weight_sum``, ``weighted``, ``n_features``, ``n_targets``, ``target_1d`` and
    ``digest`` describe the data. ``buffer_rows`` is the shuffle buffer's size (``None``:
    :func:`default_buffer_rows`)."""

    def __init__(
        self,
        source: Callable[[], Iterable[Chunk]],
        dtype: torch.dtype,
        device: torch.device,
        buffer_rows: int | None = None,
    ) -> None:
        self.source, self.dtype, self.device = source, dtype, device
        self.buffer_rows = buffer_rows
        self._first: _Seen | None = None
        self.n = self.n_total = 0
        self.weight_sum = 0.0
        self.weighted = False
        self.n_features = self.n_targets = 0
        self.target_1d = True
        self.scaling: Scaling | None = None
        self.fit_intercept = True

    # -- passes ------------------------------------------------------------------------

    def first_pass(self) -> Iterator[Chunk]:
        """The first pass: each chunk in the training dtype (its targets and weights back
        in float64, as the exact solvers fold them: the values trained on), counted and
        fingerprinted; the description is set when the pass ends."""
        seen = _Seen()
        rows, weight_sum, weighted = 0, 0.0, False
        shape: tuple[int, int, bool] | None = None
        for chunk in self.source():
            cast = self._cast(chunk)
            if shape is None:
                shape = (cast.X.shape[1], cast.Y.shape[1], cast.target_1d)
            seen.add(cast)
            m = cast.X.shape[0]
            rows += m
            w = cast.sample_weight
            weighted = weighted or w is not None
            weight_sum += float(m) if w is None else float(w.double().sum())
            yield Chunk(cast.X, cast.Y.double(), None if w is None else w.double(), cast.target_1d)
        if shape is None:
            raise InputError("the chunk stream was empty; it must hold at least one row")
        self._first = seen
        self.n = self.n_total = rows
        self.weight_sum, self.weighted = weight_sum, weighted
        self.n_features, self.n_targets, self.target_1d = shape

    def exact_passes(self) -> Iterator[Chunk]:
        """The first pass, then (for an exact fit's refinement) later passes checked
        against it, each chunk as :meth:`first_pass` gives it."""
        if self._first is None:
            yield from self.first_pass()
            return
        for chunk in self.passes():
            w = chunk.sample_weight
            yield Chunk(
                chunk.X, chunk.Y.double(), None if w is None else w.double(), chunk.target_1d
            )

    @property
    def digest(self) -> str:
        """The first pass's fingerprint, as a string (the data's digest in checkpoints)."""
        assert self._first is not None, "read the first pass first"
        return self._first.digest()

    def passes(self) -> Iterator[Chunk]:
        """A later pass: the chunks in the training dtype, checked against the first
        pass (shapes as each chunk arrives, the fingerprint at the end); with weights
        anywhere, rows without them weigh 1."""
        first = self._first
        assert first is not None, "read the first pass first"
        seen = _Seen()
        for chunk in self.source():
            cast = self._cast(chunk)
            if cast.X.shape[1] != self.n_features or cast.Y.shape[1] != self.n_targets:
                raise self._changed()
            seen.add(cast)
            if self.weighted and cast.sample_weight is None:
                ones = cast.X.new_ones(cast.X.shape[0])
                cast = Chunk(cast.X, cast.Y, ones, cast.target_1d)
            yield cast
        if seen != first:
            raise self._changed()

    def _changed(self) -> InputError:
        return InputError(
            "the data changed between passes (a file modified while training read it, or "
            f"a chunk source that returns other rows): the first pass read {self.n} rows, "
            "a later epoch's pass read other rows or values; leave the input unchanged "
            "until training ends, each pass reading the same rows"
        )

    def _cast(self, chunk: Chunk) -> Chunk:
        def to(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=self.device, dtype=self.dtype)

        w = chunk.sample_weight
        return Chunk(to(chunk.X), to(chunk.Y), None if w is None else to(w), chunk.target_1d)

    # -- training units ----------------------------------------------------------------

    def in_units(self, scaling: Scaling, fit_intercept: bool) -> StreamedRows:
        """Train in ``scaling``'s units, on ``[1, X]`` with an intercept; returns self."""
        self.scaling, self.fit_intercept = scaling, fit_intercept
        return self

    @property
    def columns(self) -> int:
        """Columns of the training design ``A``."""
        return self.n_features + int(self.fit_intercept)

    def designs(self) -> Iterator[Chunk]:
        """A later pass as chunks of the training design ``A`` (in place of ``X``)."""
        scaling = self.scaling or Scaling.none(self.n_features)
        for chunk in self.passes():
            X = scaling.to_training(chunk.X)
            A = torch.cat([X.new_ones(X.shape[0], 1), X], dim=1) if self.fit_intercept else X
            yield Chunk(A, chunk.Y, chunk.sample_weight, chunk.target_1d)

    def row_max(self) -> float:
        """The largest single row's curvature ``2·(n·w_i/Σw)·‖a_i‖²`` (one more pass), as
        :func:`.loop._row_max` computes it in memory."""
        largest = 0.0
        for chunk in self.designs():
            norms = (chunk.X.double() ** 2).sum(1)
            if chunk.sample_weight is not None:
                norms = norms * chunk.sample_weight.double()
            if norms.numel():
                largest = max(largest, float(norms.max()))
        return 2.0 * self.n_total * largest / self.weight_sum

    # -- epochs ------------------------------------------------------------------------

    def epoch_runner(
        self,
        theta: torch.Tensor,
        loss: Loss,
        step: Step,
        batch_size: int | None,
        shuffle: bool,
        generator: torch.Generator | None,
    ) -> Callable[[], torch.Tensor]:
        """One epoch's steps (a pass), returning the epoch's summed cost."""
        if batch_size is None or batch_size >= self.n_total:
            return functools.partial(step, self._full_batch(theta, loss))
        buffer = self.buffer_rows
        if buffer is None:
            weight_columns = int(self.weighted)
            row_bytes = (self.columns + self.n_targets + weight_columns) * self.dtype.itemsize
            buffer = default_buffer_rows(batch_size, row_bytes)
        return _MiniBatches(
            self, theta, loss, step, batch_size, buffer, generator if shuffle else None
        )

    def _full_batch(self, theta: torch.Tensor, loss: Loss) -> Evaluation:
        """The full batch's evaluation: a pass, each chunk evaluated with the global
        ``Σw``, gradients and costs summed (module docstring)."""
        weight_sum = self.weight_sum

        def evaluate() -> torch.Tensor:
            total = torch.zeros_like(theta)
            summed = torch.zeros((), dtype=theta.dtype, device=theta.device)
            for chunk in self.designs():
                if chunk.X.shape[0] == 0:
                    continue
                w = chunk.sample_weight
                w = None if w is None else w.reshape(-1, 1)
                summed += loss.bind(theta, chunk.X, chunk.Y, w, weight_sum)()
                assert theta.grad is not None
                total += theta.grad
            theta.grad = total
            return summed

        return evaluate


class _MiniBatches:
    """Calling it runs one epoch of mini-batch steps over a pass (module docstring) and
    returns the epoch's summed cost."""

    def __init__(
        self,
        rows: StreamedRows,
        theta: torch.Tensor,
        loss: Loss,
        step: Step,
        batch_size: int,
        buffer_rows: int,
        generator: torch.Generator | None,
    ) -> None:
        if buffer_rows < batch_size:
            raise InputError(
                f"the shuffle buffer ({buffer_rows} rows) must hold at least one batch "
                f"({batch_size} rows); give buffer_rows >= batch_size"
            )
        self.rows, self.step = rows, step
        self.batch_size, self.buffer_rows, self.generator = batch_size, buffer_rows, generator
        self.bind = _binder(loss, theta, min(batch_size, rows.n_total), rows.weighted)
        self.dtype, self.device = theta.dtype, theta.device

    def __call__(self) -> torch.Tensor:
        summed = torch.zeros((), dtype=self.dtype, device=self.device)
        step, bind = self.step, self.bind
        batches = shuffled_batches(
            self.rows.designs(), self.batch_size, self.buffer_rows, self.generator
        )
        rows = self.rows
        divisor = batch_divisor(rows.weight_sum, self.batch_size, rows.n_total, rows.weighted)
        for batch in batches:
            w = batch.sample_weight
            if w is None:
                summed.add_(step(bind(batch.X, batch.Y, None, divisor)))
                continue
            # A batch of no weight carries no gradient: skipped, but counted by a
            # per-batch schedule; the others are divided by a full batch's expected
            # weight, as in memory (training/batches.py).
            if float(w.cpu().sum()) > 0:
                summed.add_(step(bind(batch.X, batch.Y, w.reshape(-1, 1), divisor)))
            else:
                skipped(step)
        return summed
