"""Files read and written safely: an input that is not a regular file is refused before
it is opened, and a failed write never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

from .errors import InputError

_NOT_REGULAR = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_regular_file(path: str, what: str) -> None:
    """Refuse ``path`` unless it is a regular file (symlinks followed), before anything
    opens it: reading a FIFO would wait for a writer forever, a device may never end.
    ``what`` names the expected file in the message ("model file")."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what}; check the path") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f"{path}: cannot open the {what} ({reason}); check the path") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{path} is a directory, not a {what}")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _NOT_REGULAR if test(mode)), "not a regular file")
        raise InputError(f"{path} is {kind}, not a {what} (only regular files are read)")


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
