"""How a message names an option: as the interface in use spells it.

The same column rules serve the command line (``--missing drop``) and the library
(``load_data(..., missing="drop")``), and an error's suggested fix must be one the user
can type where they are. Messages spell options with :func:`option`; the library's entry
points run inside :func:`keywords`, the command line keeps the default (flags). A
context variable rather than a parameter: the messages come from every layer of reading
(sources, categories, designs), and the interface is a fact about the whole call.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator, Sequence
from contextvars import ContextVar

_KEYWORDS: ContextVar[bool] = ContextVar("torchlinreg_keywords", default=False)


def option(name: str, value: str | Sequence[str] | None = None) -> str:
    """Option ``name`` (a flag's name: ``one-hot``), set to ``value`` when given (a list
    for several columns), as the user types it: ``--one-hot a,b`` on the command line,
    ``one_hot=['a', 'b']`` in Python."""
    if keywords_in_use():
        keyword = name.replace("-", "_")
        return keyword if value is None else f"{keyword}={_python(value)}"
    flag = f"--{name}"
    if value is None:
        return flag
    return f"{flag} {shlex.quote(value if isinstance(value, str) else ','.join(value))}"


def keywords_in_use() -> bool:
    """Whether the library (not the command line) is the interface in use."""
    return _KEYWORDS.get()


def _python(value: str | Sequence[str]) -> str:
    return repr(value if isinstance(value, str) else list(value))


@contextlib.contextmanager
def keywords() -> Iterator[None]:
    """Within this block, messages name options as the library's keywords."""
    token = _KEYWORDS.set(True)
    try:
        yield
    finally:
        _KEYWORDS.reset(token)
