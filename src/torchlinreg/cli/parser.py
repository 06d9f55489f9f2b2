"""The command line's grammar: the commands, their options and how each option is
read and checked on its own (ranges, choices). Checks across options, and everything
about the data, come later (``jobs.FitOptions``, the library).

Standard library only: ``torchlinreg --help`` must not pay for torch.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from .._version import __version__
from ..errors import InputError
from .output import STDOUT_CLOSED

# torch.Generator.manual_seed takes any 64-bit pattern; numpy takes no negative seed.
SEED_MAX = 2**64 - 1
# Each epoch is a pass over every row: a billion passes over even three rows take hours,
# more is a typo that would train for ever.
EPOCHS_MAX = 10**9
# --timeout's default: torch's own for gloo. A rank waits for the others while they read
# a larger share (a CSV file is read by rank 0 alone), so it must exceed that; a rank
# that dies is noticed at once whatever the timeout. (distributed.launch has it too:
# this module imports no more than the standard library.)
TIMEOUT_S = 1800.0


class UsageError(Exception):
    """argparse's complaint about the command line, reported by ``torchlinreg.cli.main``."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)

    def _print_message(self, message: str, file: Any = None) -> None:
        # argparse writes --help and --version here and ignores a failure; written and
        # flushed now, a full standard output is an error like any other (exit 2).
        # Errors are not printed by argparse (error() above), so ``file`` is standard
        # output, None when the program was started with it closed.
        if not message:
            return
        if file is None:
            raise InputError(STDOUT_CLOSED)
        file.write(message)
        file.flush()


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _positive_float(text: str) -> float:
    value = _number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _penalty(text: str) -> float:
    value = _number(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _level(text: str) -> float:
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (0.95, say), got {text}")
    return value


def _int_in(low: int, high: int | None = None, why: str = ""):  # type: ignore[no-untyped-def]
    """A whole number in [low, high]; ``why`` gives the reason for ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high}{why}, got {value}")
        return value

    return parse


def _rate(text: str) -> float | str:
    """A learning rate: a finite number > 0, or ``auto``."""
    if text == "auto":
        return text
    try:
        return _positive_float(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (or auto)") from None


def _fraction(text: str) -> float:
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (0.1, say), got {text}")
    return value


def _non_negative(text: str) -> float:
    value = _number(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE``; the value read as a Python literal (a number, True, None, a list
    such as [100,200]) or else kept as text."""
    import ast

    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (step_size=100, say), got {text!r}")
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        parsed = value.strip()
    return key.strip(), parsed


def _add_training_options(
    p: argparse.ArgumentParser, *, log_every: int | None, auto_lr: bool = False
) -> None:
    g = p.add_argument_group("gradient training")
    g.add_argument("--optimizer", default="sgd", help="torch.optim name (default: sgd)")
    if auto_lr:
        g.add_argument(
            "--lr",
            type=_rate,
            default=0.01,
            help="learning rate, or auto: chosen from the data's curvature (0.01)",
        )
    else:
        g.add_argument("--lr", type=_positive_float, default=0.01, help="learning rate (0.01)")
    g.add_argument(
        "--epochs",
        type=_int_in(1, EPOCHS_MAX, " (each epoch reads every row)"),
        default=3000,
        help=f"last epoch index, at most {EPOCHS_MAX:,} (3000)",
    )
    g.add_argument(
        "--log-every",
        type=_int_in(1),
        default=log_every,
        metavar="N",
        help=f"log line every N epochs ({log_every or 'off'})",
    )


def _columns(text: str) -> list[str]:
    """Comma-separated column names; an empty argument ('') names the column whose
    name is empty (a header with a trailing delimiter has one)."""
    if text == "":
        return [""]
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give one or more comma-separated column names")
    return names


def _missing_option(p: Any, choices: tuple[str, ...], help: str) -> None:
    """``--missing``: what becomes of a row missing a value; stopping is the default."""
    p.add_argument("--missing", choices=choices, default="error", help=help)


def _model_and_data(p: argparse.ArgumentParser, missing: tuple[str, ...], help: str) -> None:
    """A saved model applied to data: the two files, DATA's delimiter, ``--missing``."""
    p.add_argument("model", metavar="MODEL", help="a model file written by fit -o")
    p.add_argument("data", metavar="DATA", help="CSV/TSV, Parquet, .npy, or - for stdin")
    p.add_argument("--delimiter", help="CSV field separator of DATA")
    _missing_option(p, missing, help)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--quiet", action="store_true", help="no progress report on stderr")


def _torchrun(p: argparse.ArgumentParser) -> None:
    """``--timeout``: how long a rank launched by torchrun waits for the others."""
    p.add_argument(
        "--timeout",
        type=_positive_float,
        default=TIMEOUT_S,
        metavar="SECONDS",
        help=f"under torchrun: give up (exit 3) when another rank has not answered "
        f"within SECONDS ({TIMEOUT_S:g})",
    )


def _sub(sub: Any, name: str, help: str, description: str, example: str) -> Any:
    import textwrap

    return sub.add_parser(
        name,
        help=help,
        description=textwrap.fill(description, width=79),
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="torchlinreg",
        description="PyTorch-native linear regression.",
        epilog="Run 'torchlinreg COMMAND --help' for a command's options and an example. "
        "fit, predict and evaluate also run under torchrun, each rank reading its share. "
        "Exit codes: 0 ok, 2 bad input or usage, 3 a rank lost contact with the others "
        "(torchrun), 130 interrupted, 1 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"torchlinreg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for command in (
        _demo_command,
        _fit_command,
        _predict_command,
        _evaluate_command,
        _summary_command,
        _compare_command,
        _export_command,
        _report_command,
    ):
        command(sub)
    return parser


def _demo_command(sub: Any) -> None:
    """``demo``: the tutorial replayed, with its training options."""
    demo = _sub(
        sub,
        "demo",
        "replay the tutorial: y = W*x + b on three points with SGD",
        "Replay the tutorial: fit y = W*x + b to (1,2), (2,4), (3,6) with "
        "torch.optim.SGD on the mean squared error, printing its log line, then compare "
        "with the exact least-squares answer.",
        "torchlinreg demo --lr 0.05 --epochs 1000 --log-every 100",
    )
    _add_training_options(demo, log_every=200)
    demo.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also save the gradient path over the cost's contours and the training curve "
        "(.png, .svg or .pdf; needs matplotlib: pip install 'torchlinreg[plot]')",
    )


def _fit_command(sub: Any) -> None:
    """``fit DATA --target COL``: columns, model, gradient training, inference."""
    fit = _sub(
        sub,
        "fit",
        "fit a linear model to a CSV/Parquet/.npy file",
        "Fit TARGET ~ FEATURES from a file, streamed in bounded memory: exact least "
        "squares by default (ridge with --ridge), or gradient descent with --method gd. "
        "Prints n, the coefficients, R² and RMSE; -o saves the model.",
        "torchlinreg fit examples/houses.csv --target price -o houses.safetensors",
    )
    fit.add_argument(
        "data",
        metavar="DATA",
        help="CSV/TSV (.gz ok), Parquet file, directory or glob, .npy, or - for stdin",
    )
    _fit_columns(fit)
    _fit_formula(fit)
    _fit_model(fit)
    _fit_cv(fit)
    _fit_inference(fit)
    fit.add_argument("-o", "--output", metavar="MODEL.safetensors", help="save the model here")
    _common(fit)
    _torchrun(fit)


def _fit_columns(fit: argparse.ArgumentParser) -> None:
    cols = fit.add_argument_group("columns")
    cols.add_argument(
        "--target",
        type=_columns,
        metavar="COL[,COL...]",
        help="column(s) to predict (required unless --formula)",
    )
    cols.add_argument(
        "--features",
        type=_columns,
        metavar="A,B,...",
        help="feature columns (default: every other numeric column)",
    )
    cols.add_argument(
        "--exclude",
        type=_columns,
        default=[],
        metavar="A,B,...",
        help="columns to leave out of the default features",
    )
    cols.add_argument("--weights", metavar="COL", help="column of sample weights (>= 0)")
    cols.add_argument(
        "--one-hot",
        type=_columns,
        default=[],
        metavar="A,B,...",
        help="text columns to one-hot encode (first category is the reference)",
    )
    _missing_option(
        cols,
        ("error", "drop"),
        "rows with missing values: stop with an error (default) or drop them",
    )
    cols.add_argument("--delimiter", help="CSV field separator (default: ',' or tab for .tsv)")
    cols.add_argument(
        "--absorb",
        type=_columns,
        default=[],
        metavar="A,B,...",
        help="fixed effects to absorb (columns of labels, e.g. firm,year), in place of the "
        "intercept; streamed, one process; with --formula write them after '|' instead",
    )


def _fit_formula(fit: argparse.ArgumentParser) -> None:
    """``--formula "y ~ x1 + C(g)"``: the columns by an R-style formula (formulaic)."""
    g = fit.add_argument_group("formula (instead of --target/--features/--one-hot)")
    g.add_argument(
        "--formula",
        metavar='"Y ~ TERMS"',
        help="R-style formula, e.g. \"y ~ x1 + np.log(x2) + C(g)\"; '- 1' drops the "
        "intercept; '| firm + year' absorbs fixed effects; "
        'Q("my col") quotes a column name with spaces (needs formulaic: '
        "pip install 'torchlinreg[formula]')",
    )


def _fit_model(fit: argparse.ArgumentParser) -> None:
    model = fit.add_argument_group("model")
    model.add_argument(
        "--method",
        choices=("exact", "gd"),
        default="exact",
        help="exact least squares (default) or gradient descent",
    )
    model.add_argument(
        "--ridge", type=_penalty, metavar="ALPHA", help="ridge penalty >= 0 (exact method)"
    )
    _penalized_options(model)
    model.add_argument("--no-intercept", action="store_true", help="fit y = X W (no b)")
    model.add_argument("--device", default="cpu", help="where to fit: cpu, cuda[:N] or auto (cpu)")
    _add_training_options(fit, log_every=None, auto_lr=True)
    g = fit.add_argument_group("gradient training (--method gd)")
    g.add_argument(
        "--optimizer-option",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the optimizer, e.g. momentum=0.9 (repeatable)",
    )
    g.add_argument(
        "--scheduler",
        metavar="NAME",
        help="learning-rate schedule: step, multistep, exponential, cosine, onecycle, "
        "cyclic, plateau, ... (a torch.optim.lr_scheduler)",
    )
    g.add_argument(
        "--scheduler-option",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the schedule, e.g. step_size=100 (repeatable)",
    )
    g.add_argument(
        "--tol",
        type=_non_negative,
        metavar="X",
        help="stop when the cost has not improved by X for --n-iter-no-change epochs (off)",
    )
    g.add_argument("--n-iter-no-change", type=_int_in(1), default=5, metavar="N", help="epochs (5)")
    g.add_argument(
        "--early-stopping",
        action="store_true",
        help="judge improvement on held-out rows (--validation-fraction) instead; needs --tol",
    )
    g.add_argument(
        "--validation-fraction",
        type=_fraction,
        default=0.1,
        metavar="X",
        help="share of rows held out with --early-stopping (0.1)",
    )
    g.add_argument(
        "--average",
        nargs="?",
        const=1,
        type=_int_in(1),
        metavar="N",
        help="the model is the mean of the parameters after every step (from N rows seen)",
    )
    g.add_argument(
        "--no-standardize",
        action="store_true",
        help="train on the columns as given (default: centred and scaled inside training)",
    )
    g.add_argument(
        "--batch-size", type=_int_in(1), metavar="N", help="mini-batch size (full batch)"
    )
    g.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    g.add_argument(
        "--seed",
        type=_int_in(0, SEED_MAX),
        metavar="N",
        help=f"seed for mini-batch shuffling, or of the hashed --cv folds (0 to {SEED_MAX})",
    )
    g.add_argument(
        "--checkpoint",
        metavar="CKPT",
        help="where checkpoints go (default: the -o model's path + .ckpt); one is written "
        "when Ctrl-C or SIGTERM stops training",
    )
    g.add_argument(
        "--checkpoint-every",
        type=_int_in(1),
        metavar="N",
        help="also write a checkpoint every N epochs (off)",
    )
    g.add_argument(
        "--resume",
        metavar="CKPT",
        help="continue the run that wrote this checkpoint (same data and options)",
    )


def _unit(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {text}")
    return value


def _epsilon(text: str) -> float:
    value = _number(text)
    if not value >= 1 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 1 (1.35, say), got {text}")
    return value


def _penalized_options(model: Any) -> None:
    """--lasso, --elasticnet (--l1-ratio), --huber (--alpha); see docs/penalized.md.
    One model at a time: jobs/penalized.py checks them with the others."""
    model.add_argument("--lasso", type=_penalty, metavar="ALPHA", help="lasso (l1) penalty >= 0")
    model.add_argument(
        "--elasticnet", type=_penalty, metavar="ALPHA", help="elastic-net penalty >= 0"
    )
    model.add_argument(
        "--l1-ratio", type=_unit, metavar="R", help="--elasticnet's l1 share in [0, 1] (0.5)"
    )
    model.add_argument(
        "--huber",
        type=_epsilon,
        metavar="EPSILON",
        help="Huber regression, robust to outliers: residuals beyond EPSILON x scale count "
        "linearly (>= 1; 1.35 is usual)",
    )
    model.add_argument(
        "--alpha", type=_penalty, metavar="A", help="--huber's l2 penalty >= 0 (0.0001)"
    )


def _alphas(text: str) -> int | list[float]:
    """``--alphas``: a number of alphas (an integer) or penalties separated by commas."""
    if text.strip().isdigit() and "," not in text:
        return _int_in(1)(text)  # type: ignore[no-any-return]
    return [_penalty(part) for part in text.split(",")]


def _fit_cv(fit: argparse.ArgumentParser) -> None:
    """Cross-validation options (see docs/cv.md); checked together in jobs/cv.py."""
    g = fit.add_argument_group("cross-validation (one read of the file; docs/cv.md)")
    g.add_argument(
        "--cv",
        type=_int_in(2),
        metavar="K",
        help="K-fold cross-validation: prints the CV curve and fits the chosen model "
        "(alone: least squares' CV error, to compare feature sets)",
    )
    path = g.add_mutually_exclusive_group()
    for flag, what in (("ridge", "ridge penalty (default alphas 1e-3 ... 1e3)"),
                       ("lasso", "lasso penalty (scikit-learn's grid of 100 alphas)")):  # fmt: skip
        path.add_argument(f"--{flag}-path", dest="cv_path", action="store_const", const=flag,
                          help=f"choose the {what}")  # fmt: skip
    g.add_argument(
        "--alphas",
        type=_alphas,
        metavar="A,B,...|N",
        help="the penalties to try, or (--lasso-path) how many on the automatic grid",
    )
    g.add_argument(
        "--fold-column",
        metavar="COL",
        help="each row's fold is its value in COL (default: a hash of the row number, "
        "seeded by --seed)",
    )


def _cov_type(text: str) -> str:
    """A covariance type in any letter case (``hac`` is ``HAC``)."""
    names = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster", "HAC", "CRV3")
    found = {n.lower(): n for n in names}.get(text.lower())
    if found is None:
        raise argparse.ArgumentTypeError(
            f"unknown covariance {text!r}; choose from {', '.join(names)}"
        )
    return found


def _fit_inference(fit: argparse.ArgumentParser) -> None:
    stats = fit.add_argument_group("inference (exact method)")
    stats.add_argument(
        "--summary",
        action="store_true",
        help="print the coefficient table and fit statistics (kept in the model)",
    )
    stats.add_argument(
        "--cov-type",
        default="nonrobust",
        type=_cov_type,
        metavar="{nonrobust,HC0,HC1,HC2,HC3,cluster,HAC,CRV3}",
        help="covariance of the estimates (robust ones read the data twice; HAC takes the "
        "rows in file order as time order; any letter case)",
    )
    stats.add_argument(
        "--cluster",
        metavar="COL[,COL]",
        help="group labels for --cov-type cluster (two columns: two-way) or CRV3",
    )
    stats.add_argument(
        "--lags", type=int, metavar="L", help="HAC lag (default: floor(4(n/100)^(2/9)))"
    )
    stats.add_argument(
        "--test",
        action="append",
        default=[],
        metavar="RESTRICTIONS",
        help='F test of linear restrictions, e.g. "x1 = x2" or "x1 = 0, x2 = 0" '
        "(repeatable; with the chosen covariance)",
    )
    stats.add_argument("--level", type=_level, default=0.95, help="confidence level (0.95)")


def _predict_command(sub: Any) -> None:
    """``predict MODEL DATA``: where the predictions go, kept columns, missing values."""
    predict = _sub(
        sub,
        "predict",
        "predict with a saved model",
        "Predict for every row of DATA; feature columns are matched by name. Writes CSV "
        "to stdout, or CSV/TSV/Parquet to -o (written atomically).",
        "torchlinreg predict houses.safetensors examples/houses.csv --keep area -o pred.csv",
    )
    _model_and_data(
        predict,
        ("error", "drop", "exclude"),
        "rows missing a feature: stop with an error (default), leave them out (drop), "
        "or write an empty prediction in their place (exclude: rows stay in line)",
    )
    predict.add_argument("-o", "--output", metavar="OUT", help="output file (.csv, .tsv, .parquet)")
    predict.add_argument(
        "--keep",
        type=_columns,
        default=[],
        metavar="A,B,...",
        help="input columns to copy beside the predictions (an id, say)",
    )
    _common(predict)
    _torchrun(predict)


def _evaluate_command(sub: Any) -> None:
    """``evaluate MODEL DATA``: the metrics of a model on data."""
    evaluate = _sub(
        sub,
        "evaluate",
        "score a saved model on data",
        "MSE, RMSE, MAE, R² and n of MODEL on DATA (which must hold the target column).",
        "torchlinreg evaluate houses.safetensors examples/houses.csv --json",
    )
    _model_and_data(
        evaluate,
        ("error", "drop"),
        "rows with missing values: stop with an error (default) or leave them out",
    )
    _common(evaluate)
    _torchrun(evaluate)


def _summary_command(sub: Any) -> None:
    """``summary MODEL``: what a model file holds."""
    summary = _sub(
        sub,
        "summary",
        "describe a saved model",
        "What the model is, its coefficients, and how it was fitted.",
        "torchlinreg summary houses.safetensors",
    )
    summary.add_argument("model", metavar="MODEL")
    _common(summary)


def _compare_command(sub: Any) -> None:
    """``compare MODEL1 MODEL2 ...``: nested saved models, F and likelihood-ratio tests."""
    compare = _sub(
        sub,
        "compare",
        "compare nested saved models (F and likelihood-ratio tests, side-by-side table)",
        "Compare nested models fitted to the same rows and target: the analysis-of-variance "
        "F test and the likelihood-ratio test of each model against the next smaller one "
        "(models sorted from the smallest), then their coefficients side by side.",
        "torchlinreg compare small.safetensors big.safetensors",
    )
    compare.add_argument("models", metavar="MODEL", nargs="+")
    _common(compare)


def _export_command(sub: Any) -> None:
    """``export MODEL -o OUT``: a saved model as ONNX or a torch.export program."""
    export = _sub(
        sub,
        "export",
        "export a saved model as ONNX (.onnx) or a torch.export program (.pt2)",
        "Write a saved model as a program that computes its predictions: an ONNX model "
        "(needs the 'onnx' extra: pip install 'torchlinreg[onnx]') or a torch.export "
        "program (torch.export.load). Its input X holds the model's feature columns in "
        "order (one-hot columns for categories); its output is the predictions.",
        "torchlinreg export houses.safetensors -o houses.onnx",
    )
    export.add_argument("model", metavar="MODEL")
    export.add_argument("-o", "--output", required=True, metavar="OUT", help="file to write")
    export.add_argument(
        "--format",
        choices=("onnx", "pt2"),
        help="onnx or pt2 (default: from OUT's suffix, .onnx or .pt2)",
    )
    export.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float32",
        help="the program's precision (float32)",
    )
    _common(export)


def _report_command(sub: Any) -> None:
    """``report MODEL DATA -o report.html``: one self-contained HTML report."""
    report = _sub(
        sub,
        "report",
        "write an HTML report of a saved model on its data (plots, influence)",
        "Write one self-contained HTML file (inline SVG, no script, nothing from the "
        "network): what was fitted, the summary table, R's diagnostic plots, the most "
        "influential rows and, for --method gd, the training curve. DATA is the file the "
        "model was fitted on, read once in bounded memory. Needs matplotlib: pip install "
        "'torchlinreg[plot]'.",
        "torchlinreg report houses.safetensors examples/houses.csv -o houses.html",
    )
    report.add_argument("model", metavar="MODEL", help="a model file written by fit -o")
    report.add_argument("data", metavar="DATA", help="the data it was fitted on")
    report.add_argument("-o", "--output", required=True, metavar="REPORT.html")
    report.add_argument("--delimiter", help="CSV field separator of DATA")
    report.add_argument("--level", type=_level, default=0.95, help="confidence level (0.95)")
    report.add_argument(
        "--top", type=_int_in(1, 10_000), default=10, metavar="K",
        help="most influential rows listed (10)",
    )  # fmt: skip
    report.add_argument(
        "--sample-size", type=_int_in(10, 100_000), default=2000, metavar="N",
        help="points drawn at most; beyond, a seeded sample with exact bands (2000)",
    )  # fmt: skip
    report.add_argument(
        "--seed", type=_int_in(0, 2**32 - 1), default=0, metavar="N",
        help="seed of the sample of points (0)",
    )  # fmt: skip
    report.add_argument(
        "--training-curve",
        action="store_true",
        help="require the training curve (a gradient-trained model without history: exit 2)",
    )
    _common(report)
