"""A fitted model's report: the inputs gathered (:class:`ReportInputs`), the figures
drawn as inline SVG, the page written atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .html import page
from .sections import (
    coefficients_block,
    diagnostics_section,
    fitted_section,
    influence_section,
    summary_block,
    summary_section,
    training_section,
)
from .svg import figure_svg


@dataclass
class ReportInputs:
    """Everything the page shows. ``summaries``: statistical summaries (one per
    target), or else ``coefficients`` ({target: {name: value}}) with ``summary_note``;
    ``influence``: an :class:`~torchlinreg.stats.influence.InfluenceSummary`, or None
    with ``influence_note`` saying why; ``curve``: a training curve, or None with
    ``curve_note`` (no section when both are empty)."""

    title: str
    fitted: list[tuple[str, Any]]
    summaries: list[Any] = field(default_factory=list)
    coefficients: dict[str, dict[str, float]] = field(default_factory=dict)
    summary_note: str = ""
    influence: Any = None
    influence_note: str = ""
    curve: Any = None
    curve_note: str = ""


def render(inputs: ReportInputs) -> str:
    """The report as one self-contained HTML document."""
    from ..plots.coefficients import coefficient_intervals
    from ..plots.draw import coefficient_figure, diagnostics_figure, training_curve_figure
    from ..plots.summary_panels import summary_panels

    if inputs.summaries:
        blocks = [
            summary_block(s, _svg(coefficient_figure(coefficient_intervals(s)), f"coef{j}"))
            for j, s in enumerate(inputs.summaries)
        ]
        summary = summary_section("".join(blocks))
    else:
        summary = summary_section(coefficients_block(inputs.coefficients, inputs.summary_note))
    sections = [fitted_section(inputs.fitted), summary]
    diagnostics = None
    if inputs.influence is not None:
        diagnostics = _svg(diagnostics_figure(summary_panels(inputs.influence)), "diag")
    sections.append(diagnostics_section(diagnostics, inputs.influence_note))
    sections.append(influence_section(inputs.influence, inputs.influence_note))
    if inputs.curve is not None or inputs.curve_note:
        curve_svg = (
            None if inputs.curve is None else _svg(training_curve_figure(inputs.curve), "train")
        )
        sections.append(training_section(curve_svg, inputs.curve, inputs.curve_note))
    return page(inputs.title, sections)


def _svg(fig: Any, prefix: str) -> str:
    return figure_svg(fig, prefix)


def write_html(path: str, document: str) -> None:
    """Write ``document`` to ``path`` atomically (UTF-8): a failure leaves nothing."""
    from .._files import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(document)
