"""formulaic, imported when a formula is used, with the fix when it is not installed."""

from __future__ import annotations

import re
from typing import Any

from ..errors import InputError

_ANSI = re.compile(r"\x1b\[[0-9;]*m|[⧛⧚]")


def formulaic() -> Any:
    """The formulaic module, or the InputError that says how to install it."""
    try:
        import formulaic as module
    except ImportError:
        raise InputError("formulas need formulaic: pip install 'torchlinreg[formula]'") from None
    return module


def one_line(exc: BaseException) -> str:
    """formulaic's message on one line: its colour codes and markers removed (a syntax
    error underlines the bad part of the formula on a second line)."""
    return " ".join(_ANSI.sub("", str(exc)).split())
