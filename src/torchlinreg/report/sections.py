"""The report's sections, each from plain inputs: what was fitted, the summary table,
the diagnostic panels, the most influential rows, the training curve."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .html import Section, definitions, figure, number, paragraph, table


def fitted_section(pairs: Sequence[tuple[str, Any]]) -> Section:
    """What was fitted: the data, the columns or formula, the method and options."""
    return Section("fitted", "What was fitted", definitions(pairs))


def _coefficient_rows(s: Any) -> list[list[Any]]:
    return [
        [c.name, c.estimate, c.std_error, c.t, c.p_value, c.ci_lower, c.ci_upper]
        for c in s.coefficients
    ]


def _fit_rows(s: Any) -> list[tuple[str, str]]:
    shown = [
        ("observations", number(s.n)),
        ("residual degrees of freedom", number(s.df_resid)),
        ("residual standard error", number(s.sigma)),
        ("R²", number(s.r_squared)),
        ("adjusted R²", number(s.adj_r_squared)),
        ("F statistic", number(s.f_statistic)),
        ("p-value of F", number(s.f_p_value, 4)),
        ("AIC", number(s.aic)),
        ("BIC", number(s.bic)),
        ("covariance", s.cov_type),
    ]
    return [(k, v) for k, v in shown if v != ""]


def summary_block(s: Any, coefficient_svg: str | None) -> str:
    """One target's coefficient table, fit statistics and coefficient plot."""
    pct = f"{s.level:.0%}"
    robust = s.cov_type != "nonrobust"
    header = ["", "estimate", "std. error", "z" if robust else "t",
              "P>|z|" if robust else "P>|t|", f"{pct} lower", f"{pct} upper"]  # fmt: skip
    parts = [
        f"<h3>{s.method} regression of {_text(s.target)}</h3>",
        table(header, _coefficient_rows(s)),
        definitions(_fit_rows(s)),
    ]
    parts += [paragraph(note) for note in s.notes]
    if coefficient_svg is not None:
        parts.append(figure(coefficient_svg, f"Estimates with {pct} confidence intervals."))
    return "".join(parts)


def _text(value: Any) -> str:
    from .html import escape

    return escape(value)


def coefficients_block(coefficients: dict[str, dict[str, float]], note: str) -> str:
    """The coefficients alone, for a model without a statistical summary."""
    parts = []
    for target, values in coefficients.items():
        parts.append(f"<h3>{_text(target)}</h3>")
        parts.append(table(["", "coefficient"], [[k, v] for k, v in values.items()]))
    return "".join(parts) + paragraph(note)


def summary_section(body: str) -> Section:
    return Section("summary", "Summary", body)


def diagnostics_section(svg: str | None, note: str) -> Section:
    """The four panels, or why there are none."""
    caption = (
        "Residuals against fitted values, normal Q-Q, scale-location and residuals against "
        "leverage with Cook's distance 0.5 and 1, as R's plot(lm). Red: the LOWESS smoother; "
        "labels: row numbers (0-based) of the most extreme points."
    )
    body = (figure(svg, caption) if svg is not None else "") + (paragraph(note) if note else "")
    return Section("diagnostics", "Diagnostic plots", body)


_INFLUENCE_HEADER = ["row", "fitted", "residual", "leverage", "studentized (internal)",
                     "studentized (external)", "Cook's distance", "DFFITS"]  # fmt: skip


def influence_section(summary: Any | None, note: str) -> Section:
    """The most influential rows (by Cook's distance) and the counts above the usual
    thresholds, or why there are none."""
    if summary is None:
        return Section("influence", "Most influential rows", paragraph(note))
    top = summary.top
    rows = [
        [
            str(int(top.row[i])),
            top.fitted[i],
            top.resid[i],
            top.leverage[i],
            top.student_resid_internal[i],
            top.student_resid_external[i],
            top.cooks_distance[i],
            top.dffits[i],
        ]  # fmt: skip
        for i in range(top.row.shape[0])
    ]
    counts = [
        (f"{name.replace('_', ' ')} above {number(summary.thresholds[name], 4)}", f"{count:,}")
        for name, count in summary.counts.items()
    ]
    intro = paragraph(
        f"The {len(rows)} rows of largest Cook's distance of {summary.n:,} observations "
        "(rows numbered from 0 in the data file, as read)."
    )
    return Section(
        "influence",
        "Most influential rows",
        intro + table(_INFLUENCE_HEADER, rows) + "<h3>Observations beyond the usual thresholds"
        "</h3>" + definitions(counts) + (paragraph(note) if note else ""),
    )


def training_section(svg: str | None, curve: Any | None, note: str) -> Section:
    """The training curve of a gradient fit, or why there is none."""
    body = ""
    if svg is not None and curve is not None:
        last = float(np.asarray(curve.cost)[-1])
        exact = "" if curve.exact_cost is None else f"; the exact optimum's {curve.exact_cost:.6g}"
        body = figure(svg, f"Cost per epoch ({len(curve.epoch):,} epochs), last {last:.6g}{exact}.")
    return Section("training", "Training curve", body + (paragraph(note) if note else ""))
