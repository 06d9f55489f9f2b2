"""Running the command line inside a test: its exit code and what it printed."""

from __future__ import annotations

import contextlib
import io
import sys
from typing import Any

from torchlinreg.cli import main


def run_cli(argv: list[Any], stdin: str | None = None) -> tuple[int, str, str]:
    """``torchlinreg ARGV`` (text ``stdin`` where given): (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    try:
        if stdin is not None:
            sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in argv])
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()
