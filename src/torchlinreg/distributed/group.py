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

    def reduce(
        self,
        value: T,
        combine: Callable[[T, T], T],
        pack: Callable[[T], list[torch.Tensor]],
        unpack: Callable[[list[torch.Tensor]], T],
    ) -> T:
        """Every rank's ``value`` combined up a fixed binary tree in rank order, then
        rank 0's result broadcast: the same bits on every rank, whatever the timing.

        Level ℓ: rank r with r mod 2^(ℓ+1) = 0 combines its value with that of rank
        r + 2^ℓ (``combine(mine, theirs)``, the higher ranks' rows after its own). Each
        rank sends its packed value at most once and receives the result once, in
        log₂ P rounds. ``pack`` gives tensors of the same shapes on every rank;
        ``combine`` must not raise (an error on one rank would leave the others
        waiting): mark a failed result in the value and check it after the reduction.
        """
        mine = value
        step = 1
        while step < self.size:
            if self.rank % (2 * step) == step:  # hand this subtree's value up; done
                for t in pack(mine):
                    self.send(t, self.rank - step)
                break
            partner = self.rank + step
            if partner < self.size:
                theirs = unpack([self.receive(t, partner) for t in pack(mine)])
                mine = combine(mine, theirs)
            step *= 2
        return unpack([self.broadcast(t) for t in pack(mine)])

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Σ over ranks up the tree of :meth:`reduce`: the same bits on every rank."""
        return self.reduce(tensor, torch.add, lambda t: [t], lambda ts: ts[0])

    def dd_sum(self, hi: torch.Tensor, lo: torch.Tensor) -> dd.DD:
        """Σ over ranks of double-double values (hi + lo), added in double-double up the
        tree of :meth:`reduce`: sums that cancel across ranks keep their precision."""

        def add(a: dd.DD, b: dd.DD) -> dd.DD:
            return dd.dd_add(a[0], a[1], b[0], b[1])

        return self.reduce((hi, lo), add, lambda v: [v[0], v[1]], lambda ts: (ts[0], ts[1]))

    def decide(self, value: T) -> T:
        """Rank 0's ``value`` (small, picklable) on every rank: for a decision each rank
        could compute itself but might round differently (another processor or
        library), which would send the ranks down different branches."""
        box = [value]
        self.dist.broadcast_object_list(box, self.global_rank(0), group=self.process_group)
        return box[0]  # type: ignore[no-any-return]

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
