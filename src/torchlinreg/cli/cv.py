"""The cross-validation part of ``fit --cv``'s text report: the curve and the choice."""

from __future__ import annotations

from typing import Any

# The text shows at most this many alphas of the curve (evenly spaced, the chosen one
# always among them); --json gives every alpha and every fold.
SHOWN = 25


def cv_what(cv: dict[str, Any]) -> str:
    """The model's description on the report's first line."""
    k = cv["n_folds"]
    if cv["path"] == "none":
        return f"exact least squares ({k}-fold CV error)"
    return f"{cv['path']} (alpha={cv['alpha']:.6g}, chosen by {k}-fold CV)"


def cv_lines(cv: dict[str, Any]) -> list[str]:
    """The folds, the CV curve (mean MSE over the folds and its spread) and the choice."""
    alphas, mean, std = cv["alphas"], cv["mse_mean"], cv["mse_std"]
    best = alphas.index(cv["alpha"])
    lines = ["", f"cross-validation: {cv['n_folds']} folds ({cv['folds']})"]
    if cv["path"] == "none":
        return [*lines, f"CV MSE {mean[0]:.6g} (sd over folds {std[0]:.3g})"]
    rows = _shown(len(alphas), best)
    more = f", {len(rows)} of {len(alphas)} shown (--json: all)" if len(rows) < len(alphas) else ""
    lines.append(f"{'alpha':>12}  {'CV MSE':>12}  {'sd':>10}{more}")
    for i in rows:
        mark = "  <- chosen" if i == best else ""
        lines.append(f"{alphas[i]:12.6g}  {mean[i]:12.6g}  {std[i]:10.3g}{mark}")
    lines.append(f"chosen alpha {cv['alpha']:.6g}: CV MSE {cv['mse']:.6g}")
    return lines


def _shown(n: int, best: int) -> list[int]:
    if n <= SHOWN:
        return list(range(n))
    step = -(-n // SHOWN)
    return sorted({*range(0, n, step), n - 1, best})
