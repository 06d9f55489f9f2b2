"""Writing files so that a failure never leaves a half-written one behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

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


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one
    rename, on failure it is removed and ``path`` (if any) is untouched."""
    check_output_path(path)
    real = os.path.realpath(path)  # through a symlink: replace its target, not the link
    directory = os.path.dirname(real)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + os.path.basename(real))
    os.close(fd)
    # mkstemp makes 0600 files; outputs get the usual mode (or the replaced file's).
    umask = os.umask(0)
    os.umask(umask)
    mode = os.stat(real).st_mode & 0o7777 if os.path.exists(real) else 0o666 & ~umask
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, real)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise InputError(f"{path} could not be written: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
