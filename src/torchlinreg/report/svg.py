"""A matplotlib figure as an ``<svg>`` element to place inside an HTML page: no XML
prologue, no metadata, no namespace URLs (HTML needs none), and ids made unique to the
figure so several figures can share one page."""

from __future__ import annotations

import io
import re
from typing import Any

_PROLOGUE = re.compile(r"\A.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)
_NAMESPACE = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_ID = re.compile(r'\bid="([^"]+)"')
_REFERENCE = re.compile(r'(?:xlink:href|href)="#([^"]+)"|url\(#([^)]+)\)')


def figure_svg(figure: Any, prefix: str) -> str:
    """``figure`` as inline SVG, its ids prefixed with ``prefix`` (letters, digits,
    ``-``), text drawn as paths so that no font is needed."""
    from ..plots._mpl import settings

    buffer = io.StringIO()
    with settings():
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return inline_svg(buffer.getvalue(), prefix)


def inline_svg(svg: str, prefix: str) -> str:
    """An SVG document made an element of an HTML page (see :func:`figure_svg`)."""
    svg = _PROLOGUE.sub("", svg, count=1)
    svg = _METADATA.sub("", svg)
    svg = _NAMESPACE.sub("", svg)
    svg = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', svg)

    def reference(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return f'href="#{prefix}-{m.group(1)}"'
        return f"url(#{prefix}-{m.group(2)})"

    svg = _REFERENCE.sub(reference, svg)
    # Scale with the page: the width the figure was drawn at is its largest.
    return re.sub(r'<svg\b([^>]*?)\swidth="([^"]+)"\s+height="[^"]+"',
                  r'<svg\1 style="max-width:\2;width:100%;height:auto"', svg, count=1)  # fmt: skip
