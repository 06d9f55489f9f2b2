"""matplotlib, imported when a picture is drawn: figures are made with its object API
(``matplotlib.figure.Figure``, rendered by the Agg/SVG backends on saving), never
through pyplot, so the user's backend and open figures are left alone."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..errors import InputError

MISSING = "plots need matplotlib: pip install 'torchlinreg[plot]'"
# Fixed ids in SVG output, so the same figure gives the same file (matplotlib hashes
# them with this salt instead of a random one).
_RC: Any = {"svg.hashsalt": "torchlinreg", "svg.fonttype": "path", "font.size": 9.0}


def require_matplotlib() -> None:
    """Refuse with the extra to install when matplotlib is absent."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError(MISSING) from None


def new_figure(width: float, height: float) -> Any:
    """A figure of ``width`` × ``height`` inches, detached from pyplot."""
    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


@contextlib.contextmanager
def settings() -> Iterator[None]:
    """matplotlib's settings for drawing and saving our figures, restored after."""
    require_matplotlib()
    import matplotlib

    with matplotlib.rc_context(_RC):
        yield


# The image formats a figure is written in, by the path's suffix.
IMAGE_FORMATS = ("png", "svg", "pdf")


def image_format(path: str) -> str:
    """The format of an image path, from its suffix (none: PNG); any other suffix is a
    one-line InputError naming the ones written."""
    import os

    from ..errors import InputError

    kind = os.path.splitext(path)[1].lower().lstrip(".") or "png"
    if kind not in IMAGE_FORMATS:
        raise InputError(
            f"{path}: cannot write a {kind!r} image; name the file "
            + ", ".join(f".{k}" for k in IMAGE_FORMATS)
        )
    return kind


def save(figure: Any, path: str, dpi: int = 120) -> None:
    """Write ``figure`` to ``path`` (format by its suffix: .png, .svg, .pdf)
    atomically, so a failed write leaves nothing behind."""
    from .._files import atomic_path, check_output_path

    check_output_path(path)
    kind = image_format(path)
    with settings(), atomic_path(path) as tmp:
        figure.savefig(tmp, format=kind, dpi=dpi)
