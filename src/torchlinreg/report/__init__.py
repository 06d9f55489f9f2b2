"""One self-contained HTML report of a fitted model: what was fitted, the summary
table, R's diagnostic panels, the most influential rows and, for a gradient fit, the
training curve. Figures are inline SVG; there is no script, and nothing is fetched
from the network, so the file reads the same offline with JavaScript off. Needs the
``plot`` extra (matplotlib).

``torchlinreg report MODEL DATA -o report.html`` writes one from files
(:mod:`.files`); :func:`write_report` from a model in memory.
"""

from __future__ import annotations

from typing import Any

__all__ = ["report_html", "write_report"]


def report_html(
    model: Any,
    data: Any = None,
    *,
    title: str | None = None,
    level: float = 0.95,
    top_k: int = 10,
    sample_size: int = 2000,
    random_state: Any = 0,
) -> str:
    """The report of ``model`` as an HTML document. ``data``: the rows it was fitted on,
    as :func:`~torchlinreg.stats.influence.influence_summary` takes them (``(X, y)``
    arrays or a stream of chunks), read once for the diagnostics of an exact fit;
    a gradient fit needs none."""
    from ..plots._mpl import require_matplotlib
    from .build import render
    from .model import fitted_pairs, gather

    require_matplotlib()
    inputs = gather(
        model,
        data,
        title=title or f"{type(model).__name__} report",
        fitted=fitted_pairs(model),
        level=level,
        top_k=top_k,
        sample_size=sample_size,
        random_state=random_state,
    )
    return render(inputs)


def write_report(path: str, model: Any, data: Any = None, **options: Any) -> None:
    """Write :func:`report_html` (``options`` are its keywords) to ``path``,
    atomically: a failure leaves no file."""
    from .._files import check_output_path
    from .build import write_html

    check_output_path(path)
    write_html(path, report_html(model, data, **options))
