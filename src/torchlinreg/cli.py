"""The ``torchlinreg`` command: parse, call the library, print, map errors to exit codes.

Only the standard library is imported at module level: ``--help`` must not pay for
torch. Exit codes: 0 ok, 2 bad input or usage, 1 internal error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ._version import __version__

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _int_at_least(low: int):  # type: ignore[no-untyped-def]
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


def _add_training_options(p: argparse.ArgumentParser, *, log_every: int | None) -> None:
    g = p.add_argument_group("gradient training")
    g.add_argument("--optimizer", default="sgd", help="torch.optim name (default: sgd)")
    g.add_argument("--lr", type=_positive_float, default=0.01, help="learning rate (0.01)")
    g.add_argument("--epochs", type=_int_at_least(0), default=3000, help="last epoch index (3000)")
    g.add_argument(
        "--log-every",
        type=_int_at_least(1),
        default=log_every,
        metavar="N",
        help=f"log line every N epochs ({log_every or 'off'})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torchlinreg",
        description="PyTorch-native linear regression.",
        epilog="Run 'torchlinreg COMMAND --help' for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"torchlinreg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        help="replay the tutorial: y = W*x + b on three points with SGD",
        description="Replay the tutorial: fit y = W*x + b to (1,2), (2,4), (3,6) with "
        "torch.optim.SGD on the mean squared error, printing its log line, then compare "
        "with the exact least-squares answer.",
        epilog="example: torchlinreg demo --lr 0.05 --epochs 1000 --log-every 100",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_training_options(demo, log_every=200)

    fit = sub.add_parser(
        "fit",
        help="fit a linear model to a CSV file by gradient descent",
        description="Fit TARGET ~ FEATURES from a CSV file (header row required) with the "
        "gradient trainer and print the coefficients.",
        epilog="example: torchlinreg fit examples/houses.csv --target price "
        "--features area,rooms,age --optimizer lbfgs --lr 1 --epochs 50 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument("data", metavar="DATA.csv", help="CSV file with a header row")
    fit.add_argument("--target", required=True, metavar="COL", help="column to predict")
    fit.add_argument(
        "--features",
        metavar="A,B,...",
        help="comma-separated feature columns (default: every other column)",
    )
    fit.add_argument("--delimiter", default=",", help="field separator (default: ',')")
    _add_training_options(fit, log_every=None)
    fit.add_argument(
        "--batch-size", type=_int_at_least(1), metavar="N", help="mini-batch size (full batch)"
    )
    fit.add_argument("--device", default="cpu", help="cpu, cuda or auto (cpu)")
    fit.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    fit.add_argument("--seed", type=int, help="seed for mini-batch shuffling")
    fit.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(lr=args.lr, epochs=args.epochs, optimizer=args.optimizer, log_every=args.log_every)
    return EXIT_OK


def _run_fit(args: argparse.Namespace) -> int:
    from .data.csv import read_csv_columns
    from .models.gd import GDRegressor

    features = None
    if args.features is not None:
        features = [f.strip() for f in args.features.split(",") if f.strip()]
    cols = read_csv_columns(args.data, args.target, features, delimiter=args.delimiter)
    model = GDRegressor(
        optimizer=args.optimizer,
        lr=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        log_every=args.log_every,
        log_to=sys.stderr,  # stdout carries the result (and may be JSON)
        device=args.device,
        dtype=args.dtype,
        random_state=args.seed,
    ).fit(cols.X, cols.y)
    coef = {name: float(c) for name, c in zip(cols.feature_names, model.coef_, strict=True)}
    result = {
        "method": "gd",
        "target": cols.target_name,
        "n": len(cols.y),
        "intercept": float(model.intercept_),
        "coef": coef,
        "cost": model.history_.cost[-1],
        "optimizer": args.optimizer,
        "lr": args.lr,
        "epochs": args.epochs,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return EXIT_OK
    width = max(len("intercept"), *(len(n) for n in coef))
    print(
        f"{cols.target_name} ~ {' + '.join(cols.feature_names)}: gradient descent "
        f"({args.optimizer}, lr={args.lr:g}, epochs 0..{args.epochs}) on {result['n']} rows"
    )
    print(f"  {'intercept':<{width}}  {result['intercept']: .6g}")
    for name, value in coef.items():
        print(f"  {name:<{width}}  {value: .6g}")
    print(f"final cost (MSE): {result['cost']:.6g}")
    return EXIT_OK


_COMMANDS = {"demo": _run_demo, "fit": _run_fit}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``torchlinreg`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        from .errors import InputError

        try:
            return _COMMANDS[args.command](args)
        except InputError as exc:
            print(f"torchlinreg {args.command}: error: {exc}", file=sys.stderr)
            return EXIT_INPUT
    except KeyboardInterrupt:
        print("torchlinreg: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK  # e.g. piped into `head`
    except Exception as exc:  # the last line of defence: one line, never a traceback
        print(
            f"torchlinreg {args.command}: internal error: {type(exc).__name__}: {exc} "
            "(please report this)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
