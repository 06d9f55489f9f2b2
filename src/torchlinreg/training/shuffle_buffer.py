"""Mini-batches of a stream too large for memory, shuffled in a bounded buffer.

Rows arrive in chunks (a file read block by block). They are gathered into a buffer of
at most ``buffer_rows`` rows; when it is full, its rows are put in a random order drawn
from the generator and every whole batch is given out, the rows left over (fewer than a
batch) staying for the next fill. At the end of the stream the rest is shuffled and
given out, the last batch possibly short. So every row is in exactly one batch per
epoch, the memory held is the buffer plus one chunk, and the order depends only on the
rows' order in the stream and the generator's state: the same seed gives the same
batches, and a generator restored from a checkpoint continues the same sequence.

A row can only move within its buffer's span: rows far apart in the file never share a
batch unless the buffer holds them both. For data sorted by the target (or by time) make
the buffer large, or shuffle the file once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

from ..data.chunks import Chunk
from ..errors import InputError


def shuffled_batches(
    chunks: Iterable[Chunk],
    batch_size: int,
    buffer_rows: int,
    generator: torch.Generator | None,
) -> Iterator[Chunk]:
    """The rows of ``chunks`` as batches of ``batch_size`` rows (the last may be
    shorter), shuffled within a buffer of ``buffer_rows`` rows (at least one batch);
    ``generator`` None keeps the stream's order."""
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    if buffer_rows < batch_size:
        raise InputError(
            f"the shuffle buffer ({buffer_rows} rows) must hold at least one batch "
            f"({batch_size} rows)"
        )
    held: list[Chunk] = []
    rows = 0
    for chunk in chunks:
        for start in range(0, chunk.X.shape[0], buffer_rows):
            part = _rows(chunk, slice(start, start + buffer_rows))
            held.append(part)
            rows += part.X.shape[0]
            if rows >= buffer_rows:
                buffer = _shuffled(_joined(held), generator)
                whole = (buffer.X.shape[0] // batch_size) * batch_size
                yield from _batches(_rows(buffer, slice(0, whole)), batch_size)
                rest = _rows(buffer, slice(whole, None))
                held, rows = ([rest] if rest.X.shape[0] else []), rest.X.shape[0]
    if rows:
        yield from _batches(_shuffled(_joined(held), generator), batch_size)


def _rows(chunk: Chunk, rows: slice) -> Chunk:
    w = chunk.sample_weight
    return Chunk(chunk.X[rows], chunk.Y[rows], None if w is None else w[rows], chunk.target_1d)


def _joined(parts: list[Chunk]) -> Chunk:
    if len(parts) == 1:
        return parts[0]
    weights = [p.sample_weight for p in parts]
    if any(w is None for w in weights) and not all(w is None for w in weights):
        # A stream whose chunks come with and without weights: rows without weigh 1.
        weights = [torch.ones(len(p.X), dtype=torch.float64) if w is None else w
                   for p, w in zip(parts, weights, strict=True)]  # fmt: skip
    w = None if weights[0] is None else torch.cat(weights)  # type: ignore[arg-type]
    return Chunk(
        torch.cat([p.X for p in parts]), torch.cat([p.Y for p in parts]), w, parts[0].target_1d
    )


def _shuffled(chunk: Chunk, generator: torch.Generator | None) -> Chunk:
    if generator is None:
        return chunk
    order = torch.randperm(chunk.X.shape[0], generator=generator)
    w = chunk.sample_weight
    return Chunk(
        chunk.X[order.to(chunk.X.device)],
        chunk.Y[order.to(chunk.Y.device)],
        None if w is None else w[order.to(w.device)],
        chunk.target_1d,
    )


def _batches(chunk: Chunk, batch_size: int) -> Iterator[Chunk]:
    for start in range(0, chunk.X.shape[0], batch_size):
        yield _rows(chunk, slice(start, start + batch_size))
