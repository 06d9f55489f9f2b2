"""The ranks of a ``torch.distributed`` process group, as the fits use them.

Every collective here gives every rank the same answer, computed in the same order
whatever the timing: sums are taken in rank order after an all-gather, never by an
all-reduce whose order the backend chooses, so a distributed fit is reproducible and
every rank ends with the identical model. A step that can fail on one rank (bad data) is
run through :meth:`Group.agree`: every rank then raises that rank's error, so no rank
waits forever for a peer that gave up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch

from ..errors import InputError
from ..solvers import dd

T = TypeVar("T")

DistributedLike = Any  # False, True, or a torch.distributed ProcessGroup


class RankFailedError(RuntimeError):
    """Another rank stopped with an error that is not an input error (a bug, a crash)."""


class Group:
    """A process group (``None``: the default group) and this process's place in it."""

    def __init__(self, process_group: Any = None) -> None:
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized():
            raise InputError(
                "distributed=True needs torch.distributed initialised on every rank: launch "
                "with torchrun and call torch.distributed.init_process_group() first"
            )
        self.dist = dist
        self.process_group = process_group
        self.rank = dist.get_rank(process_group)
        self.size = dist.get_world_size(process_group)
        backend = str(dist.get_backend(process_group))
        # nccl moves CUDA tensors only; gloo moves CPU tensors (CUDA too, via the host).
        self.device = (
            torch.device("cuda", torch.cuda.current_device())
            if backend == "nccl"
            else torch.device("cpu")
        )

    # -- objects -------------------------------------------------------------------

    def gather_objects(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable, small), in rank order, on every rank."""
        out: list[Any] = [None] * self.size
        self.dist.all_gather_object(out, value, group=self.process_group)
        return out

    def agree(self, step: Callable[[], T]) -> T:
        """Run ``step`` here; if it failed on any rank, raise on every rank.

        An :class:`InputError` on a rank becomes an InputError everywhere, its message
        prefixed with that rank (the lowest failing rank when several failed); any other
        exception is re-raised where it happened and a :class:`RankFailedError` elsewhere.
        """
        result: Any = None
        error: BaseException | None = None
        try:
            result = step()
        except InputError as e:
            error = e
            report: tuple[str, str] | None = ("input", str(e))
        except Exception as e:  # a bug: stop every rank, not only this one
            error = e
            report = ("other", f"{type(e).__name__}: {e}")
        else:
            report = None
        reports = self.gather_objects(report)
        for rank, seen in enumerate(reports):
            if seen is None:
                continue
            kind, message = seen
            if rank == self.rank and kind == "other":
                assert error is not None
                raise error
            if kind == "input":
                raise InputError(self.prefixed(rank, message))
            raise RankFailedError(f"rank {rank} of {self.size} failed: {message}")
        return result

    def prefixed(self, rank: int, message: str) -> str:
        return f"rank {rank} of {self.size}: {message}"

    # -- tensors -------------------------------------------------------------------

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's ``tensor`` (the same shape and dtype on every rank), in rank
        order, on ``tensor``'s device."""
        home = tensor.device
        t = tensor.to(self.device).contiguous()
        out = [torch.empty_like(t) for _ in range(self.size)]
        self.dist.all_gather(out, t, group=self.process_group)
        return [o.to(home) for o in out]

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Σ over ranks, added in rank order: the same bits on every rank."""
        parts = self.gather(tensor)
        total = parts[0].clone()
        for part in parts[1:]:
            total += part
        return total

    def dd_sum(self, hi: torch.Tensor, lo: torch.Tensor) -> dd.DD:
        """Σ over ranks of double-double values (hi + lo), in double-double and rank
        order: sums that cancel across ranks keep their extra precision."""
        his, los = self.gather(hi), self.gather(lo)
        total_hi, total_lo = his[0].clone(), los[0].clone()
        for h, lo_part in zip(his[1:], los[1:], strict=True):
            total_hi, total_lo = dd.dd_add(total_hi, total_lo, h, lo_part)
        return total_hi, total_lo

    def max(self, value: float) -> float:
        return max(self.gather_objects(value))

    def broadcast(self, tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
        """``tensor`` as rank ``src`` holds it (same shape and dtype everywhere)."""
        home = tensor.device
        t = tensor.to(self.device).contiguous().clone()
        self.dist.broadcast(t, self.global_rank(src), group=self.process_group)
        return t.to(home)

    def send(self, tensor: torch.Tensor, to: int) -> None:
        self.dist.send(
            tensor.to(self.device).contiguous(), self.global_rank(to), self.process_group
        )

    def receive(self, like: torch.Tensor, source: int) -> torch.Tensor:
        t = torch.empty_like(like, device=self.device)
        self.dist.recv(t, self.global_rank(source), self.process_group)
        return t.to(like.device)

    def global_rank(self, rank: int) -> int:
        if self.process_group is None:
            return rank
        return int(self.dist.get_global_rank(self.process_group, rank))


def resolve_group(distributed: DistributedLike) -> Group | None:
    """``distributed`` as fits take it: False (one process), True (the default group)
    or a ``torch.distributed`` process group."""
    if distributed is False or distributed is None:
        return None
    if distributed is True:
        return Group(None)
    if isinstance(distributed, Group):
        return distributed
    import torch.distributed as dist

    if isinstance(distributed, dist.ProcessGroup):
        return Group(distributed)
    raise InputError(
        "distributed must be False, True (the default process group) or a "
        f"torch.distributed ProcessGroup; got {type(distributed).__name__}"
    )
