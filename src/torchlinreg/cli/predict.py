"""``torchlinreg predict`` and ``torchlinreg evaluate``: a saved model on new data,
reported as text, JSON, or JSON lines (one prediction per line)."""

from __future__ import annotations

import argparse
from typing import Any

from .output import dumps, note, on_rank_0, printable, r2_text, speaks


def _predict(args: argparse.Namespace, output: str | None) -> Any:
    from ..jobs import predict_file

    return predict_file(
        args.model,
        args.data,
        output,
        keep=args.keep,
        delimiter=args.delimiter,
        missing=args.missing,
        quiet=args.quiet or not speaks(args),
        group=args.group,
    )


def run_predict(args: argparse.Namespace) -> None:
    """Predict, then say where the predictions went (under torchrun: rank 0 writes
    every rank's rows, in the input's order, and says it)."""
    if args.json and args.output is None:
        result = _predict_json_lines(args)
    else:
        result = _predict(args, args.output)
    on_rank_0(args, lambda: _predicted(args, result))


def _predicted(args: argparse.Namespace, result: Any) -> None:
    left = ""
    if result.dropped:
        left = f"{result.dropped:,} rows dropped for missing values"
    if result.excluded:
        left = f"{result.excluded:,} rows with missing values have an empty prediction"
    if args.output is None:
        if left:
            note(args, left)
    elif args.json:
        summary = {
            "rows": result.rows,
            "dropped": result.dropped,
            "excluded": result.excluded,
            "output": args.output,
            "columns": result.columns,
        }
        print(dumps(summary))
    else:
        print(
            f"{result.rows:,} predictions written to {printable(args.output)}"
            + (f" ({left})" if left else "")
        )


def _predict_json_lines(args: argparse.Namespace) -> Any:
    """The predictions as one JSON object per row: kept numbers as numbers (integers
    exact), booleans as booleans, missing values as null."""
    from ..jobs.predict import predict_with

    def write(batches: Any) -> None:
        for batch in batches:
            for record in batch.to_pylist():
                print(dumps(record, indent=None))

    return predict_with(
        write,
        args.model,
        args.data,
        keep=args.keep,
        delimiter=args.delimiter,
        missing=args.missing,
        quiet=args.quiet or not speaks(args),
        typed=True,
        group=args.group,
    )


def run_evaluate(args: argparse.Namespace) -> None:
    from ..jobs import evaluate_file

    result = evaluate_file(
        args.model,
        args.data,
        delimiter=args.delimiter,
        missing=args.missing,
        quiet=args.quiet or not speaks(args),
        group=args.group,
    )
    on_rank_0(args, lambda: _evaluated(args, result))


def _evaluated(args: argparse.Namespace, result: dict[str, Any]) -> None:
    if args.json:
        print(dumps(result))
        return
    dropped = f" ({result['dropped']:,} dropped)" if result["dropped"] else ""
    print(f"n = {result['n']:,}{dropped}")
    for t, m in result["targets"].items():
        print(
            f"{printable(t)}: MSE {m['mse']:.6g}   RMSE {m['rmse']:.6g}   MAE {m['mae']:.6g}   "
            f"R² {r2_text(m['r2'])}"
        )
