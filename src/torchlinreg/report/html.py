"""The report's HTML: one page, its style inline, no script and nothing fetched from
anywhere, so it reads the same offline, in any browser, with JavaScript off. Every
text from the model or the data is escaped here."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:70rem;padding:0 1rem;color:#1f2328;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem;
margin-top:2rem}h3{font-size:1.05rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:right}
th{background:#f6f8fa}td.text,th.text{text-align:left}
figure{margin:.8rem 0}figcaption{font-size:.85rem;color:#57606a}
p.note{font-size:.85rem;color:#57606a}nav a{margin-right:1rem}
"""


@dataclass(frozen=True)
class Section:
    """One section of the page: its anchor ``id``, heading and HTML body."""

    id: str
    title: str
    body: str


def escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


def number(value: Any, digits: int = 6) -> str:
    """A number as the tables show it: ``digits`` significant digits, blank when None
    or NaN, integers in full."""
    if value is None:
        return ""
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return f"{value:,}"
    v = float(value)
    if math.isnan(v):
        return ""
    return f"{v:.{digits}g}"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], text_columns: int = 1) -> str:
    """A table; the first ``text_columns`` columns are text (left-aligned), the rest
    numbers (already formatted as strings, or formatted by :func:`number`)."""

    def cell(tag: str, j: int, value: Any) -> str:
        kind = ' class="text"' if j < text_columns else ""
        shown = value if isinstance(value, str) else number(value)
        return f"<{tag}{kind}>{escape(shown)}</{tag}>"

    head = "".join(cell("th", j, h) for j, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", j, v) for j, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def definitions(pairs: Sequence[tuple[str, Any]]) -> str:
    """A two-column table of names and values (what was fitted)."""
    rows = "".join(
        f'<tr><th class="text">{escape(k)}</th><td class="text">{escape(v)}</td></tr>'
        for k, v in pairs
    )
    return f"<table><tbody>{rows}</tbody></table>"


def figure(svg: str, caption: str) -> str:
    """An inline SVG (already made safe by :func:`~.svg.inline_svg`) with a caption."""
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def paragraph(text: str, css: str = "note") -> str:
    return f'<p class="{css}">{escape(text)}</p>'


def page(title: str, sections: Sequence[Section]) -> str:
    """The whole document."""
    nav = "".join(f'<a href="#{escape(s.id)}">{escape(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{escape(s.id)}"><h2>{escape(s.title)}</h2>{s.body}</section>'
        for s in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1><nav>{nav}</nav>{body}</body></html>\n"
    )
