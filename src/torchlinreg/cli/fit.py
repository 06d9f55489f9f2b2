"""``torchlinreg fit``: the arguments mapped to the fit's options, the fit reported
(text or JSON), the model saved once the report is out."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from .output import (
    dumps,
    name_list,
    note,
    on_rank_0,
    printable,
    r2_text,
    speaks,
    summary_text,
    table_lines,
)


def fit_options(args: argparse.Namespace) -> Any:
    """The fit's options from the arguments; :class:`~torchlinreg.jobs.FitOptions`
    checks them together (each alone was checked by the parser). A confidence level
    other than the default asks for the summary, as ``--cov-type`` and ``--cluster`` do."""
    from ..jobs import FitOptions

    gd: dict[str, Any] = {}
    if args.method != "gd":
        _refuse_gd_options(args)
    if args.method == "gd":
        gd = {
            "optimizer": args.optimizer,
            "lr": args.lr,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "log_every": args.log_every,
            "log_to": sys.stderr,  # stdout carries the result (and may be JSON)
            "dtype": args.dtype,
            "random_state": args.seed,
            "optimizer_options": _options(args.optimizer_option, "--optimizer-option"),
            "scheduler": args.scheduler,
            "scheduler_options": _options(args.scheduler_option, "--scheduler-option"),
            "tol": args.tol,
            "n_iter_no_change": args.n_iter_no_change,
            "early_stopping": args.early_stopping,
            "validation_fraction": args.validation_fraction,
            "standardize": not args.no_standardize,
            # --average alone is 1 row seen: every step, scikit-learn's average=True.
            "average": args.average is not None and (args.average == 1 or args.average),
            "checkpoint_every": args.checkpoint_every,
        }
    return FitOptions(
        targets=args.target or [],
        features=args.features,
        exclude=args.exclude,
        weights=args.weights,
        one_hot=args.one_hot,
        missing=args.missing,
        delimiter=args.delimiter,
        method=args.method,
        ridge=args.ridge,
        fit_intercept=not args.no_intercept,
        device=args.device,
        gd=gd,
        summary=args.summary or args.level != 0.95,
        cov_type=args.cov_type,
        cluster=args.cluster,
        lags=args.lags,
        tests=args.test,
        level=args.level,
        checkpoint=checkpoint_path(args) if args.method == "gd" else None,
        resume=args.resume,
        formula=args.formula,
        absorb=args.absorb,
        **_cv_options(args),
        **_penalized_options(args),
    )


def _penalized_options(args: argparse.Namespace) -> dict[str, Any]:
    """--lasso, --elasticnet, --l1-ratio, --huber and --alpha (jobs/penalized.py)."""
    return {
        "lasso": args.lasso,
        "elasticnet": args.elasticnet,
        "l1_ratio": args.l1_ratio,
        "huber": args.huber,
        "huber_alpha": args.alpha,
    }


def _cv_options(args: argparse.Namespace) -> dict[str, Any]:
    """The cross-validation options (jobs/cv.py checks them with the others)."""
    return {
        "cv": args.cv,
        "cv_path": args.cv_path,
        "cv_alphas": args.alphas,
        "fold_column": args.fold_column,
        "cv_seed": 0 if args.seed is None else args.seed,
    }


def checkpoint_path(args: argparse.Namespace) -> str | None:
    """Where gradient training writes checkpoints: ``--checkpoint``, else the model's
    path with ``.ckpt`` added (``-o model.safetensors``: ``model.safetensors.ckpt``),
    else nowhere (``--checkpoint-every`` then needs one of them)."""
    from ..errors import InputError

    if args.checkpoint is not None:
        return str(args.checkpoint)
    if args.output is not None:
        return f"{args.output}.ckpt"
    if args.checkpoint_every is not None:
        raise InputError(
            "--checkpoint-every needs a place to write: give --checkpoint CKPT or -o MODEL"
        )
    return None


def _refuse_gd_options(args: argparse.Namespace) -> None:
    """Options that only gradient training reads, given without it."""
    from ..errors import InputError

    given = [
        flag
        for flag, value in (
            ("--scheduler", args.scheduler),
            ("--scheduler-option", args.scheduler_option),
            ("--optimizer-option", args.optimizer_option),
            ("--tol", args.tol is not None),
            ("--early-stopping", args.early_stopping),
            ("--no-standardize", args.no_standardize),
            ("--average", args.average is not None),
            ("--checkpoint", args.checkpoint is not None),
            ("--checkpoint-every", args.checkpoint_every is not None),
            ("--resume", args.resume is not None),
        )
        if value
    ]
    if given:
        raise InputError(f"{', '.join(given)}: for gradient training only; add --method gd")


def _options(pairs: list[tuple[str, Any]], flag: str) -> dict[str, Any] | None:
    """``KEY=VALUE`` pairs as a dict (None without any); a key given twice is refused."""
    from ..errors import InputError

    options: dict[str, Any] = {}
    for key, value in pairs:
        if key in options:
            raise InputError(f"{flag} {key}= is given twice; give each option once")
        options[key] = value
    return options or None


def run_fit(args: argparse.Namespace) -> None:
    """Fit, print the report, then save the model: a report that cannot be written (a
    full disk) fails before the model is, so a failed ``fit -o`` leaves no model. A
    reader that stops reading (``| head``) is not a failure: the model is saved. Under
    torchrun every rank fits; rank 0 alone reports and saves, once every rank succeeded."""
    from .._files import check_output_path, check_regular_file
    from ..errors import InputError
    from ..jobs import fit_file

    if args.output is not None:
        on_rank_0(args, lambda: check_output_path(args.output, inputs=(args.data,)))
    if args.method == "gd":
        # Refused before the data are read: a missing checkpoint, a place that cannot be
        # written, a checkpoint path that is the data or the model.
        if args.resume is not None:
            check_regular_file(args.resume, "checkpoint")
        checkpoint = checkpoint_path(args)
        if checkpoint is not None:
            check_output_path(checkpoint, inputs=(args.data,))
            if args.output is not None and _same_path(checkpoint, args.output):
                raise InputError(
                    f"{checkpoint} is also the model's path (-o); give --checkpoint another file"
                )
    quiet = args.quiet or not speaks(args)
    result = fit_file(args.data, fit_options(args), quiet=quiet, group=args.group)
    on_rank_0(args, lambda: _publish(args, result))


def _same_path(a: str, b: str) -> bool:
    import os

    return os.path.realpath(a) == os.path.realpath(b)


def _publish(args: argparse.Namespace, result: Any) -> None:
    """The report printed, the model saved, the notes given."""
    from ..persistence import save_model

    report = _fit_report(args, result)
    text = dumps(report) if args.json else _fit_text(args, result, report)
    with contextlib.suppress(BrokenPipeError):
        print(text, flush=True)
    if args.output is not None:
        save_model(args.output, result.estimator, design=result.design, info=result.info)
    if args.json:
        return
    if result.skipped_text:
        note(
            args,
            f"text column(s) not used: {name_list(result.skipped_text)} (encode with --one-hot)",
        )
    if args.output:
        print(f"model saved to {printable(args.output)}")


def _fit_report(args: argparse.Namespace, result: Any) -> dict[str, Any]:
    from ..jobs.common import coefficients

    design, estimator = result.design, result.estimator
    report = {
        "method": result.info["method"],
        "targets": design.targets,
        "features": design.feature_names,
        "n": result.info["n"],
        "rows": result.rows,
        "dropped": result.dropped,
        "coefficients": coefficients(
            estimator.coef_,
            estimator.intercept_,
            design.feature_names,
            design.targets,
            absorbed=getattr(estimator, "absorbed_", None) is not None,
        ),
        "r2": result.stats["r2"],
        "rmse": result.stats["rmse"],
        "seconds": result.seconds,
        "ignored_text_columns": result.skipped_text,
        "output": args.output,
    }
    if "summary" in result.info:
        report["summary"] = result.info["summary"]
    if "tests" in result.info:
        report["tests"] = result.info["tests"]
    if "training" in result.info:
        report["training"] = result.info["training"]
    for record in ("penalty", "huber"):  # --lasso/--elasticnet, --huber
        if record in result.info:
            report[record] = result.info[record]
    if "cv" in result.info:
        report["cv"] = result.info["cv"]
    return report


def _fit_text(args: argparse.Namespace, result: Any, report: dict[str, Any]) -> str:
    """The fit as text: the model, observations and time, the coefficients, R² and
    RMSE, and the statistical summary when asked for. The time is reading and fitting,
    not the program's start-up."""
    targets, features = report["targets"], report["features"]
    what = "exact least squares" if report["method"] == "exact" else "gradient descent"
    if args.ridge is not None and report["method"] == "exact":
        what = f"ridge (alpha={args.ridge:g})"
    if "cv" in report:
        from .cv import cv_what

        what = cv_what(report["cv"])
    if "penalty" in report or "huber" in report:
        from .penalized import penalized_what

        what = penalized_what(result.info)
    rhs = (
        " + ".join(map(printable, features)) if len(features) <= 8 else f"{len(features)} features"
    )
    besides = []
    if report["rows"] > report["n"]:
        besides.append(f"{report['rows'] - report['n']:,} of zero weight not counted")
    if report["dropped"]:
        besides.append(f"{report['dropped']:,} dropped for missing values")
    more = f" ({'; '.join(besides)})" if besides else ""
    lines = [
        f"{name_list(targets)} ~ {rhs}: {what} on {report['n']:,} rows{more} "
        f"in {result.seconds:.2f} s",
        *table_lines(report["coefficients"], targets),
    ]
    for j, t in enumerate(targets):
        label = f" ({printable(t)})" if len(targets) > 1 else ""
        lines.append(f"R² {r2_text(report['r2'][j])}   RMSE {report['rmse'][j]:.6g}{label}")
    if "training" in report:
        lines.append(_training_text(report["training"]))
    if "penalty" in report or "huber" in report:
        from .penalized import penalized_lines

        lines += penalized_lines(result.info, targets, len(features))
    if "cv" in report:
        from .cv import cv_lines

        lines += cv_lines(report["cv"])
    for d in report.get("summary", []):
        lines += ["", summary_text(d)]
    if report.get("tests"):
        from ..jobs.econometrics import test_lines

        lines += ["", *test_lines(report["tests"])]
    return "\n".join(lines)


def _training_text(training: dict[str, Any]) -> str:
    """How gradient training ended, and its gap to the exact least-squares fit."""
    status, epochs, lr = training["status"], training["epochs"], training["lr"]
    line = f"training: {status} after {epochs:,} epochs at lr {lr:g}"
    gap = training["relative_cost_gap"]
    if gap is None:
        return line
    line += (
        f"; cost {training['cost']:.6g} against the exact fit's {training['exact_cost']:.6g} "
        f"({gap:.2%} of the variance of y"
    )
    if training["exact_r2"] is not None:
        line += f"; the exact fit's R² is {training['exact_r2']:.6g}"
    return line + ")"
