"""``torchlinreg report MODEL DATA -o report.html``: a fitted model's HTML report."""

from __future__ import annotations

import argparse

from .output import dumps


def run_report(args: argparse.Namespace) -> None:
    from ..report.files import report_file

    inputs = report_file(
        args.model,
        args.data,
        args.output,
        delimiter=args.delimiter,
        training_curve=args.training_curve,
        level=args.level,
        top_k=args.top,
        sample_size=args.sample_size,
        seed=args.seed,
        quiet=args.quiet,
    )
    sections = ["fitted", "summary", "diagnostics", "influence"]
    sections += ["training"] if inputs.curve is not None or inputs.curve_note else []
    if args.json:
        print(dumps({"output": args.output, "sections": sections}))
    else:
        print(f"wrote {args.output}: {', '.join(sections)}")
