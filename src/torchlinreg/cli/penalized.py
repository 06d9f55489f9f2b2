"""The penalised and robust fits' part of ``fit``'s text report (``--lasso``,
``--elasticnet``, ``--huber``): the model's description and how the solver ended."""

from __future__ import annotations

from typing import Any

from .output import printable


def penalized_what(info: dict[str, Any]) -> str:
    """The model's description on the report's first line."""
    if info["method"] == "huber":
        h = info["huber"]
        return f"Huber (epsilon={h['epsilon']:g}, alpha={h['alpha']:g})"
    p = info["penalty"]
    if info["method"] == "lasso":
        return f"lasso (alpha={p['alpha']:g})"
    return f"elastic net (alpha={p['alpha']:g}, l1_ratio={p['l1_ratio']:g})"


def penalized_lines(info: dict[str, Any], targets: list[str], n_features: int) -> list[str]:
    """The lasso's or elastic net's nonzero coefficients and duality gap per target, or
    the Huber fit's scale, outliers and iterations."""
    if info["method"] == "huber":
        h = info["huber"]
        return [
            f"scale {h['scale']:.6g}; {h['n_outliers']:,} of {info['n']:,} rows are outliers "
            f"(|residual| > {h['epsilon']:g} x scale); {h['n_iter']} L-BFGS-B iterations"
        ]
    p = info["penalty"]
    lines = []
    for j, t in enumerate(targets):
        label = f" ({printable(t)})" if len(targets) > 1 else ""
        lines.append(
            f"{p['nonzero'][j]} of {n_features} coefficients nonzero; duality gap "
            f"{p['dual_gap'][j]:.3g} after {p['n_iter'][j]} solver passes{label}"
        )
    return lines
