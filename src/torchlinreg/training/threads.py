"""Small problems train on one thread.

A step on a small design is a few microseconds of arithmetic; waking the intra-op thread
pool and waiting for it costs more than that (docs/benchmarks.md: one thread was faster
for every design measured, 23% on 1,000 × 10; the tutorial's 3 × 1 runs nothing in
parallel either way).
The setting is process-wide, so it is restored as soon as training ends.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import torch

# Numbers in the design a step touches (rows per step × columns × targets) up to which
# one thread is used.
ONE_THREAD_MAX_WORK = 1 << 16


@functools.cache
def _threads_can_change() -> bool:
    # The native thread pool cannot be resized once it has started (torch warns and
    # keeps its size); OpenMP, the backend of the official builds, can.
    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


@contextmanager
def one_thread(when: bool = True) -> Iterator[None]:
    """Run the body on one torch thread where ``when`` holds (otherwise, or where the
    pool cannot be resized, leave the setting alone). The setting is process-wide, so
    it is restored as soon as the body ends, however it ends."""
    before = torch.get_num_threads()
    if not when or before == 1 or not _threads_can_change():
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def threads_for(work: int, device: torch.device) -> AbstractContextManager[None]:
    """One torch thread when ``work`` (numbers touched per step) is at most
    :data:`ONE_THREAD_MAX_WORK` on the CPU; otherwise the setting is left alone."""
    return one_thread(device.type == "cpu" and work <= ONE_THREAD_MAX_WORK)
