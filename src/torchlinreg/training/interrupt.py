"""Ctrl-C and SIGTERM during training: finish the epoch, write a checkpoint, then stop.

While :func:`interruptible` is active (the CLI wraps ``fit --method gd`` in it), SIGINT
and SIGTERM do not interrupt the program where it stands: they set a flag
(:class:`StopRequest`) that the training loop reads at the end of each epoch, where
its state is whole, so it can write a checkpoint and raise :class:`InterruptedTraining`.
A second signal while the first is being honoured (a slow epoch, a slow disk) acts at
once, as it would without the guard: Ctrl-C raises ``KeyboardInterrupt`` and SIGTERM
ends the process; files being written are still never left half-written
(:mod:`torchlinreg._files`).

Handlers can only be set in the main thread: elsewhere the guard installs nothing and
its flag is never set. A signal that is ignored when the guard starts (SIGINT in a
background job, ``nohup``) stays ignored; the previous handlers are back on exit.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

# The signals turned into a request to stop (SIGTERM exists on every platform Python
# supports, SIGINT too).
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class InterruptedTraining(KeyboardInterrupt):
    """Training stopped at the end of an epoch because of a signal, after writing a
    checkpoint to resume from.

    A ``KeyboardInterrupt`` so that code catching ``Exception`` lets it through, as it
    would Ctrl-C itself.

    Attributes
    ----------
    signum:
        The signal received (``signal.SIGINT`` or ``signal.SIGTERM``).
    epoch:
        The last epoch completed (and saved).
    checkpoint:
        The checkpoint's path, or ``None`` when none was written.
    exit_code:
        The shell's code for death by that signal: 130 for SIGINT, 143 for SIGTERM.
    """

    def __init__(self, signum: int, epoch: int, checkpoint: str | None) -> None:
        self.signum = signum
        self.epoch = epoch
        self.checkpoint = checkpoint
        saved = "" if checkpoint is None else f"; checkpoint written to {checkpoint}"
        super().__init__(f"interrupted by {signal_name(signum)} at epoch {epoch}{saved}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def signal_name(signum: int) -> str:
    """``"SIGINT"`` for ``signal.SIGINT``; the number for a signal without a name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopRequest:
    """The flag a signal sets: :attr:`signum` is the first signal received, or ``None``."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None


@contextlib.contextmanager
def interruptible(signals: tuple[int, ...] = _SIGNALS) -> Iterator[StopRequest]:
    """Turn ``signals`` into a :class:`StopRequest` for the duration of the block.

    Yields the request, which the loop checks at the end of each epoch (see
    :class:`~torchlinreg.training.checkpoint.Checkpointer`). Nothing is installed
    outside the main thread."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous: dict[int, Any] = {}

    def put_back() -> None:
        for s, handler in previous.items():
            signal.signal(s, handler)

    def on_signal(signum: int, frame: Any) -> None:
        if stop.signum is None:
            stop.signum = signum
            return
        # Asked twice: stop now, as without the guard (the previous handler acts).
        put_back()
        signal.raise_signal(signum)

    for s in signals:
        handler = signal.getsignal(s)
        # Ignored stays ignored; None: a handler set outside Python, left alone.
        if handler is not None and handler != signal.SIG_IGN:
            previous[s] = signal.signal(s, on_signal)
    try:
        yield stop
    finally:
        put_back()
