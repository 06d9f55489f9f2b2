"""Under ``torchrun``, the output rows of every rank written once, by rank 0, in the
input's row order, and only once every rank has succeeded.

Each rank first keeps its record batches in a local temporary file (:class:`Spill`:
bounded memory, unlinked at once so that nothing is left behind, however the process
ends); the ranks then agree that every one succeeded; rank 0 writes its own batches,
then receives and writes rank 1's, rank 2's, ... (:func:`collect`). Batches travel as
Arrow IPC messages over the process group: no shared file system is needed.
"""

from __future__ import annotations

import errno
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import InputError

_LENGTH = 8  # bytes of the length before each batch in a spill


class Spill:
    """Record batches kept in an anonymous temporary file, read back in order."""

    def __init__(self) -> None:
        # Closed by __exit__; unlinked at once, so nothing is left however we end.
        self.file: Any = tempfile.TemporaryFile(prefix="torchlinreg-")  # noqa: SIM115

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def extend(self, batches: Iterator[Any]) -> None:
        for batch in batches:
            blob = _serialized(batch)
            self.file.write(len(blob).to_bytes(_LENGTH, "little"))
            self.file.write(blob)

    def blobs(self) -> Iterator[bytes]:
        self.file.flush()
        self.file.seek(0)
        while header := self.file.read(_LENGTH):
            yield self.file.read(int.from_bytes(header, "little"))


def _serialized(batch: Any) -> bytes:
    """One batch as an IPC stream with its own schema (a kept column's type may differ
    from batch to batch)."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue())


def _batch(blob: bytes) -> Any:
    import pyarrow as pa

    return pa.ipc.open_stream(blob).read_next_batch()


def collect(group: Any, spill: Spill, write: Callable[[Iterator[Any]], None]) -> None:
    """Every rank's spilled batches, in rank order, given to ``write`` on rank 0; the
    other ranks send theirs. A failure to write on rank 0 (a full disk) is every rank's
    error, once rank 0 has received everything (no rank is left waiting)."""
    failure: InputError | None = None
    if group.rank == 0:
        ordered = _in_rank_order(group, spill)
        try:
            write(ordered)
        except BrokenPipeError:
            pass  # the reader stopped reading (| head): not a failure, as in one process
        except InputError as exc:
            failure = exc
        except OSError as exc:
            if exc.errno is None or exc.errno == errno.EPIPE:
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            failure = InputError(f"{where}{exc.strerror or exc}")
        for _ in ordered:  # what is left once writing stopped, so that no rank waits
            pass
    else:
        _send(group, spill)

    def outcome() -> None:
        if failure is not None:
            raise failure

    group.agree(outcome)


def _in_rank_order(group: Any, spill: Spill) -> Iterator[Any]:
    import torch

    for blob in spill.blobs():
        yield _batch(blob)
    for rank in range(1, group.size):
        while length := int(group.receive(torch.zeros(1, dtype=torch.int64), rank)):
            blob = group.receive(torch.empty(length, dtype=torch.uint8), rank)
            yield _batch(blob.numpy().tobytes())


def _send(group: Any, spill: Spill) -> None:
    import torch

    for blob in spill.blobs():
        group.send(torch.tensor([len(blob)], dtype=torch.int64), 0)
        group.send(torch.frombuffer(bytearray(blob), dtype=torch.uint8), 0)
    group.send(torch.zeros(1, dtype=torch.int64), 0)  # the end of this rank's batches


def summed(group: Any, counts: dict[str, int]) -> dict[str, int]:
    """Counts summed over the ranks."""
    parts = group.gather_objects(counts)
    return {name: sum(p[name] for p in parts) for name in counts}
