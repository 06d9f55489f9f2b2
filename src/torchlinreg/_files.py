"""Writing files so that a failure never leaves a half-written one behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from .errors import InputError


def check_output_path(path: str, inputs: tuple[str, ...] = ()) -> None:
    """Refuse outputs that cannot work or would destroy an input, before any work."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise InputError(f"{path}: the directory {directory} does not exist; create it first")
    if os.path.isdir(path):
        raise InputError(f"{path} is a directory; give a file name for the output")
    for source in inputs:
        exists = source != "-" and os.path.exists(source) and os.path.exists(path)
        if exists and os.path.samefile(source, path):
            raise InputError(f"{path} is also the input; write the output to another file")


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one
    rename, on failure it is removed and ``path`` (if any) is untouched."""
    check_output_path(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + os.path.basename(path))
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
