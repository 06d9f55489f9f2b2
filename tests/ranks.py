"""Worker processes forming a ``torch.distributed`` gloo group, for tests.

``Ranks(2)`` spawns two processes that join one process group and then run test
functions on request: ``ranks.run(fn, *args)`` calls ``fn(rank, world_size, *args)`` on
every rank at once and returns each rank's result (or the error it raised) in rank
order. ``fn`` must be a module-level function (the workers import it by name). One
group serves many calls, so the cost of starting processes (importing torch) is paid
once per test module.
"""

from __future__ import annotations

import datetime
import importlib
import multiprocessing as mp
import os
import queue
import socket
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# A collective that waits longer than this fails rather than hangs the suite.
GROUP_TIMEOUT_S = 60
CALL_TIMEOUT_S = 300


@dataclass
class Failed:
    """What a rank raised: its type's name, message and traceback."""

    kind: str
    message: str
    trace: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, tasks: Any, results: Any) -> None:
    import warnings

    import torch
    import torch.distributed as dist

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)  # two ranks share the machine's cores
    dist.init_process_group(
        "gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=GROUP_TIMEOUT_S)
    )
    while (task := tasks.get()) is not None:
        call, module, name, args = task
        try:
            fn = getattr(importlib.import_module(module), name)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                value = fn(rank, world, *args)
            out: Any = (value, [(w.category.__name__, str(w.message)) for w in caught])
        except BaseException as e:  # reported to the test, which decides
            out = Failed(type(e).__name__, str(e), traceback.format_exc())
        results.put((call, rank, out))
    dist.destroy_process_group()


class Ranks:
    """``world`` spawned processes in one gloo group."""

    def __init__(self, world: int = 2) -> None:
        context = mp.get_context("spawn")
        self.world = world
        self.tasks = [context.Queue() for _ in range(world)]
        self.results = context.Queue()
        self.calls = 0
        port = free_port()
        self.processes = [
            context.Process(
                target=_worker, args=(r, world, port, self.tasks[r], self.results), daemon=True
            )
            for r in range(world)
        ]
        for p in self.processes:
            p.start()

    def run_with_warnings(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        """Each rank's (result, warnings as (category name, message)) or :class:`Failed`."""
        self.calls += 1  # answers to an earlier call that timed out are left aside
        for q in self.tasks:
            q.put((self.calls, fn.__module__, fn.__name__, args))
        out: list[Any] = [None] * self.world
        answered = 0
        while answered < self.world:
            try:
                call, rank, value = self.results.get(timeout=CALL_TIMEOUT_S)
            except queue.Empty:
                raise AssertionError(f"{fn.__name__}: no answer in {CALL_TIMEOUT_S} s") from None
            if call == self.calls:
                out[rank] = value
                answered += 1
        return out

    def run(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        """Each rank's result, or :class:`Failed` where it raised."""
        return [r if isinstance(r, Failed) else r[0] for r in self.run_with_warnings(fn, *args)]

    def close(self) -> None:
        for q in self.tasks:
            q.put(None)
        for p in self.processes:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()


def check(results: list[Any]) -> list[Any]:
    """The results, after failing the test with a rank's traceback if one raised."""
    for rank, r in enumerate(results):
        if isinstance(r, Failed):
            raise AssertionError(f"rank {rank} raised {r.kind}: {r.message}\n{r.trace}")
    return results
