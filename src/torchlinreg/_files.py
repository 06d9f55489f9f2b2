"""Writing files so that a failure never leaves a half-written one behind."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

from .errors import InputError


def check_output_path(path: str, inputs: tuple[str, ...] = ()) -> None:
    """Refuse outputs that cannot work or would destroy an input, before any work."""
    real = os.path.realpath(path)
    directory = os.path.dirname(real)
    if not os.path.isdir(directory):
        raise InputError(f"{path}: the directory {directory} does not exist; create it first")
    if os.path.isdir(real):
        raise InputError(f"{path} is a directory; give a file name for the output")
    if os.path.exists(real) and not os.path.isfile(real):
        raise InputError(f"{path} exists and is not a regular file; write to a file instead")
    if not os.access(directory, os.W_OK):
        raise InputError(f"{path}: the directory {directory} is not writable")
    for source in inputs:
        exists = source != "-" and os.path.exists(source) and os.path.exists(path)
        if exists and os.path.samefile(source, path):
            raise InputError(f"{path} is also the input; write the output to another file")


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: str) -> None:
    """Make a rename durable; not every OS can open a directory (Windows), so best effort."""
    with contextlib.suppress(OSError):
        _fsync(directory)


_TERMINATION = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


@contextlib.contextmanager
def _removed_on_termination(tmp: str) -> Iterator[None]:
    """Remove ``tmp`` when SIGTERM or SIGHUP arrives, then let the signal do what it did
    before (by default, end the process). Ctrl-C needs no handler: its KeyboardInterrupt
    unwinds through the caller's cleanup. Handlers can only be set in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def on_signal(signum: int, frame: Any) -> None:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        for s, handler in previous.items():
            signal.signal(s, handler)
        signal.raise_signal(signum)  # delivered again, to the previous handler

    for s in _TERMINATION:
        handler = signal.getsignal(s)
        # An ignored signal stays ignored (e.g. SIGHUP under nohup); None: set outside Python.
        if handler is not None and handler != signal.SIG_IGN:
            previous[s] = signal.signal(s, on_signal)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it is flushed to disk and
    replaces ``path`` in one rename, on failure (an error, Ctrl-C, SIGTERM, SIGHUP) it is
    removed and ``path`` (if any) is untouched. Failures to write (a full disk, a file
    size limit) become a one-line :class:`InputError`."""
    check_output_path(path)
    real = os.path.realpath(path)  # through a symlink: replace its target, not the link
    directory = os.path.dirname(real)
    # mkstemp makes 0600 files; outputs get the usual mode (or the replaced file's).
    umask = os.umask(0)
    os.umask(umask)
    mode = os.stat(real).st_mode & 0o7777 if os.path.exists(real) else 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + os.path.basename(real))
    os.close(fd)
    try:
        with _removed_on_termination(tmp):
            yield tmp
            os.chmod(tmp, mode)
            _fsync(tmp)  # the data on disk before the rename makes it the output
            os.replace(tmp, real)
        _fsync_directory(directory)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise InputError(f"{path} could not be written: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
