"""``torchlinreg summary MODEL``: what a model file holds, printed without loading
torch (the stored summary tables are shown as they were validated on reading)."""

from __future__ import annotations

import argparse
from typing import Any

from .output import dumps, name_list, printable, r2_text, summary_text, table_lines


def run_summary(args: argparse.Namespace) -> None:
    from ..jobs import describe_model

    d = describe_model(args.model)
    if args.json:
        print(dumps(d))
        return
    print(
        f"{printable(d['model'])} predicting {name_list(d['targets'])} from "
        f"{len(d['features'])} feature(s)"
    )
    for line in _fit_lines(d):
        print(line)
    for c, cats in d["one_hot"].items():
        print(
            f"  one-hot {printable(c)}: levels {name_list(cats)} (the first is the reference when "
            "there is an intercept)"
        )
    if d.get("summary"):
        print("\n".join(f"\n{summary_text(s)}" for s in d["summary"]))
    else:
        print("\n".join(table_lines(d["coefficients"], d["targets"])))


def _fit_lines(d: dict[str, Any]) -> list[str]:
    """How the model was fitted: on what, R² and RMSE per target, rank and condition."""
    lines = []
    if d.get("method"):
        dropped = f", {d['dropped']:,} dropped" if d.get("dropped") else ""
        lines.append(
            f"fitted by {d['method']} on {d.get('n', 0):,} rows of "
            f"{printable(d.get('source', '?'))}{dropped}"
        )
    fit = d.get("fit") or {}
    r2, rmse = fit.get("r2") or [], fit.get("rmse") or []
    for j, t in enumerate(d["targets"] if r2 and rmse else []):
        lines.append(f"  {printable(t)}: R² {r2_text(r2[j])}   RMSE {rmse[j]:.6g}")
    absorbed = d.get("absorbed")
    if absorbed:
        lines.append("  " + _absorbed_line(absorbed))
    if d.get("condition_number") is not None:
        # Not the inference table's (statsmodels', of the design as given): this one is
        # κ₂ of the design the solver factors, which bounds the fit's accuracy.
        refined = ", refined" if d.get("refined") else ""
        design = "demeaned by the fixed effects" if absorbed else "centred with an intercept"
        lines.append(
            f"  rank {d.get('rank')}{refined}; condition number (columns scaled, {design}; "
            f"bounds the fit's accuracy): {d['condition_number']:.3g}"
        )
    return lines


def _absorbed_line(absorbed: dict[str, Any]) -> str:
    """The fixed effects a model absorbed (its file's ``absorbed`` record), one line."""
    factors = ", ".join(
        f"{printable(f)} ({L:,} levels)"
        for f, L in zip(absorbed["factors"], absorbed["n_levels"], strict=True)
    )
    dropped = absorbed.get("dropped") or []
    gone = f"; dropped, absorbed entirely: {name_list(dropped)}" if dropped else ""
    return f"fixed effects absorbed (no intercept row): {factors}{gone}"
