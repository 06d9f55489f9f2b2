"""The command line under ``torchrun``: the process group it joins, and what becomes of
a rank that stops answering.

``torchrun --nproc-per-node N -m torchlinreg fit ...`` starts N processes with
``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and ``MASTER_ADDR`` set; :func:`process_group`
then joins them (gloo on the CPU, nccl for ``--device cuda``, each rank on the GPU of
its ``LOCAL_RANK``) and leaves the group at the end, however the command ends. A
program that calls :func:`torchlinreg.cli.main` after joining the group itself keeps
its group (and its timeout): the command uses it and leaves it joined. Started any
other way (``WORLD_SIZE`` unset or 1), nothing happens here: no process group, no
``torch.distributed`` call.

A collective that fails (a peer crashed, was killed, or did not answer within
``--timeout`` seconds) raises :class:`LostRankError`, one line that the command line
reports with exit code 3. A dead peer is noticed at once (its connections close); a
stalled one after the timeout.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from typing import Any

# How long a rank waits for the others at one exchange (joining included) by default:
# the command line's --timeout default (cli.parser.TIMEOUT_S).
DEFAULT_TIMEOUT_S = 1800.0
_SET_BY_TORCHRUN = ("RANK", "LOCAL_RANK", "MASTER_ADDR")


class LostRankError(Exception):
    """The ranks lost contact: a peer stopped, crashed or stalled beyond the timeout."""


def launched() -> bool:
    """Whether this process is one of several started by ``torchrun``."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return False
    return world > 1 and all(os.environ.get(name) for name in _SET_BY_TORCHRUN)


def launch_rank() -> int:
    """This process's rank under ``torchrun`` (0 when not launched by it)."""
    return int(os.environ["RANK"]) if launched() else 0


@contextlib.contextmanager
def process_group(device: str = "cpu", timeout: float = DEFAULT_TIMEOUT_S) -> Iterator[Any]:
    """The :class:`~torchlinreg.distributed.group.Group` of the ``torchrun`` ranks for a
    command whose work runs on ``device``, left at the end; None (and nothing imported)
    when the process was not launched by ``torchrun``."""
    if not launched():
        yield None
        return
    import torch.distributed as dist

    joined = dist.is_initialized()  # by a program that runs the command line
    group = _join(device, timeout, joined)
    try:
        yield group
    finally:
        if not joined:
            _leave()


def _join(device: str, timeout: float, joined: bool) -> Any:
    import datetime

    import torch
    import torch.distributed as dist

    from ..devices import resolve_device
    from ..errors import InputError
    from .group import Group

    where = resolve_device(device)
    if where.type not in ("cpu", "cuda"):
        raise InputError(f"under torchrun the work runs on 'cpu' or 'cuda'; got {device!r}")
    if where.type == "cuda" and where.index is not None:
        raise InputError(
            f"under torchrun each rank uses the GPU of its LOCAL_RANK; give --device cuda "
            f"(not {device})"
        )
    if where.type == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    try:
        if not joined:
            dist.init_process_group(
                "nccl" if where.type == "cuda" else "gloo",
                timeout=datetime.timedelta(seconds=timeout),
            )
    except (RuntimeError, ValueError) as exc:
        raise LostRankError(
            f"rank {rank} of {world}: could not join the other ranks within --timeout "
            f"{timeout:g} s: {_first_line(exc)}"
        ) from None
    group = Group(None)
    group.dist = _Guarded(dist, f"rank {rank} of {world}", timeout)  # type: ignore[assignment]
    return group


def _leave() -> None:
    """Leave the group: a process that exits without it after a failed exchange is
    aborted by the communication library's threads."""
    import torch.distributed as dist

    with contextlib.suppress(Exception):
        if dist.is_initialized():
            dist.destroy_process_group()


class _Guarded:
    """``torch.distributed`` as :class:`Group` calls it, a failed call made a
    :class:`LostRankError` naming this rank and the timeout."""

    def __init__(self, dist: Any, rank: str, timeout: float) -> None:
        self._dist, self._rank, self._timeout = dist, rank, timeout

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._dist, name)
        if not callable(value):
            return value

        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return value(*args, **kwargs)
            except RuntimeError as exc:  # torch.distributed's errors derive from it
                raise LostRankError(
                    f"{self._rank}: lost contact with the other ranks (one stopped, crashed "
                    f"or did not answer within --timeout {self._timeout:g} s); nothing was "
                    f"written: {_first_line(exc)}"
                ) from None

        return guarded


def _first_line(exc: BaseException) -> str:
    """The library's message, its first line without the source location in brackets."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"^\[[^\]]*\]\s*", "", text)
