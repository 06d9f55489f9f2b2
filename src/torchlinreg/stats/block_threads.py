"""Row blocks shared among threads, each running torch's kernels on one thread.

A robust covariance's pass does a handful of kernels per block of a few thousand rows
(a copy, thin and square products, elementwise scalings). Run on torch's two threads,
every kernel pays a fork and a join, and on a loaded machine each join waits for the
slower thread; run as whole blocks per thread, each core works through its own block
in its own cache, and a thread that is held up takes fewer blocks (they are handed out
in turn, not split in advance). docs/benchmarks.md, "Robust covariance chosen at fit
time", has the measurements.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

from ..training.threads import one_thread

Block = TypeVar("Block")
State = TypeVar("State")


@functools.cache
def threads_can_change() -> bool:
    """Whether torch's thread count can be set at run time (OpenMP, the backend of the
    official builds; the native pool cannot be resized once started)."""
    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


def thread_count(device: torch.device, blocks: int) -> int:
    """Threads for a pass of ``blocks`` blocks on ``device``: torch's thread count on
    the CPU (at most one per block), one elsewhere (a GPU runs each kernel whole)."""
    if device.type != "cpu" or not threads_can_change():
        return 1
    return max(1, min(torch.get_num_threads(), blocks))


def share_blocks(
    blocks: Sequence[Block], states: Sequence[State], step: Callable[[State, Block], None]
) -> None:
    """``step(state, block)`` for every block: with one state, in order on this thread;
    with several, one thread per state takes the next block whenever it is free, torch
    on one thread meanwhile. Each state is used by its own thread only."""
    if len(states) == 1:
        for block in blocks:
            step(states[0], block)
        return
    queue = iter(blocks)
    lock = threading.Lock()

    def work(state: State) -> None:
        # MKL's thread count is kept per thread: one_thread() below sets the calling
        # thread's only, and MKL in a pool thread forked its own team for products of
        # ~1,000 rows (a product of 1,024 × 21 took 15× the CPU of one thread's).
        torch.set_num_threads(1)
        while True:
            with lock:
                block = next(queue, None)
            if block is None:
                return
            step(state, block)

    with one_thread(), ThreadPoolExecutor(len(states)) as pool:
        for done in [pool.submit(work, state) for state in states]:
            done.result()
