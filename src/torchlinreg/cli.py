"""The ``torchlinreg`` command: parse, call the library, print, map errors to exit codes.

Only the standard library is imported at module level: ``--help`` must not pay for
torch. Exit codes: 0 ok, 2 bad input or usage, 130 interrupted, 1 internal error.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import sys
import unicodedata
import warnings
from collections.abc import Sequence
from typing import Any

from ._cli_parser import UsageError, build_parser

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def _json_safe(obj: Any) -> Any:
    """NaN and infinities are not JSON: they become null."""
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _dumps(obj: Any, indent: int | None = 2) -> str:
    return json.dumps(_json_safe(obj), indent=indent, allow_nan=False, default=str)


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(lr=args.lr, epochs=args.epochs, optimizer=args.optimizer, log_every=args.log_every)
    return EXIT_OK


def _fit_options(args: argparse.Namespace) -> Any:
    """The fit's options, checked together (each option alone was checked by argparse)."""
    from .errors import InputError
    from .jobs import FitOptions

    gd: dict[str, Any] = {}
    if args.method == "gd":
        if args.ridge is not None:
            raise InputError("--ridge works with the exact method; drop --method gd")
        if args.summary or args.cov_type != "nonrobust" or args.cluster:
            raise InputError("--summary needs the exact method; drop --method gd")
        gd = {
            "optimizer": args.optimizer,
            "lr": args.lr,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "log_every": args.log_every,
            "log_to": sys.stderr,  # stdout carries the result (and may be JSON)
            "device": args.device,
            "dtype": args.dtype,
            "random_state": args.seed,
        }
    if args.cov_type == "cluster" and not args.cluster:
        raise InputError("--cov-type cluster needs --cluster COL, the column of group labels")
    if args.cluster and args.cov_type not in ("nonrobust", "cluster"):
        raise InputError("--cluster goes with --cov-type cluster (or on its own)")
    cov_type = "cluster" if args.cluster else args.cov_type
    if cov_type != "nonrobust" and args.data == "-":
        raise InputError(
            f"--cov-type {cov_type} reads the data twice; standard input cannot be: "
            "write the data to a file first"
        )
    return FitOptions(
        targets=args.target,
        features=args.features,
        exclude=args.exclude,
        weights=args.weights,
        one_hot=args.one_hot,
        missing=args.missing,
        delimiter=args.delimiter,
        method=args.method,
        ridge=args.ridge,
        fit_intercept=not args.no_intercept,
        gd=gd,
        summary=args.summary or cov_type != "nonrobust" or args.level != 0.95,
        cov_type=cov_type,
        cluster=args.cluster,
        level=args.level,
    )


def _run_fit(args: argparse.Namespace) -> int:
    from ._files import check_output_path
    from .jobs import fit_file
    from .persistence import save_model

    if args.output is not None:
        check_output_path(args.output, inputs=(args.data,))
    result = fit_file(args.data, _fit_options(args), quiet=args.quiet)
    report = _fit_report(args, result)
    text = _dumps(report) if args.json else _fit_text(args, result, report)
    # The model is written last: a fit that cannot be reported leaves no file behind.
    if args.output is not None:
        save_model(args.output, result.estimator, design=result.design, info=result.info)
    print(text)
    if args.json:
        return EXIT_OK
    if result.skipped_text:
        cols = ", ".join(result.skipped_text)
        _note(args, f"text column(s) not used: {cols} (encode with --one-hot)")
    if args.output:
        print(f"model saved to {args.output}")
    return EXIT_OK


def _fit_report(args: argparse.Namespace, result: Any) -> dict[str, Any]:
    report = {
        "method": result.info["method"],
        "targets": result.design.targets,
        "features": result.design.feature_names,
        "n": result.info["n"],
        "dropped": result.dropped,
        "coefficients": _coefficients(result.estimator, result.design),
        "r2": result.stats["r2"],
        "rmse": result.stats["rmse"],
        "seconds": result.seconds,
        "ignored_text_columns": result.skipped_text,
        "output": args.output,
    }
    if "summary" in result.info:
        report["summary"] = result.info["summary"]
    return report


def _fit_text(args: argparse.Namespace, result: Any, report: dict[str, Any]) -> str:
    """The fit as text: the model, rows and time, the coefficients, R² and RMSE, and
    the statistical summary when asked for. The time is reading and fitting, not the
    program's start-up."""
    targets = result.design.targets
    features = result.design.feature_names
    what = "exact least squares" if report["method"] == "exact" else "gradient descent"
    if args.ridge is not None and report["method"] == "exact":
        what = f"ridge (alpha={args.ridge:g})"
    rhs = " + ".join(features) if len(features) <= 8 else f"{len(features)} features"
    dropped = f" ({result.dropped:,} dropped for missing values)" if result.dropped else ""
    lines = [
        f"{', '.join(targets)} ~ {rhs}: {what} on {report['n']:,} rows{dropped} "
        f"in {result.seconds:.2f} s",
        *_table_lines(report["coefficients"], targets),
    ]
    for j, t in enumerate(targets):
        label = f" ({t})" if len(targets) > 1 else ""
        lines.append(f"R² {report['r2'][j]:.6g}   RMSE {report['rmse'][j]:.6g}{label}")
    for d in result.info.get("summary", []):
        lines += ["", _summary_text(d)]
    return "\n".join(lines)


def _summary_text(d: dict[str, Any]) -> str:
    from .stats.inference import Summary

    return str(Summary.from_dict(d))


def _coefficients(estimator: Any, design: Any) -> dict[str, dict[str, float]]:
    import numpy as np

    coef = np.atleast_2d(estimator.coef_)
    intercept = np.atleast_1d(estimator.intercept_)
    return {
        t: {
            "intercept": float(intercept[j]),
            **{f: float(coef[j, i]) for i, f in enumerate(design.feature_names)},
        }
        for j, t in enumerate(design.targets)
    }


def _table_lines(coefficients: dict[str, dict[str, float]], targets: list[str]) -> list[str]:
    rows = list(next(iter(coefficients.values())))
    width = max(len(r) for r in rows)
    lines = []
    if len(targets) > 1:
        lines.append("  " + " " * width + "".join(f"  {t:>14}" for t in targets))
    for r in rows:
        lines.append(f"  {r:<{width}}" + "".join(f"  {coefficients[t][r]:>14.6g}" for t in targets))
    return lines


def _print_table(coefficients: dict[str, dict[str, float]], targets: list[str]) -> None:
    print("\n".join(_table_lines(coefficients, targets)))


def _run_predict(args: argparse.Namespace) -> int:
    from .jobs import predict_file

    if args.json and args.output is None:
        result = _predict_json_lines(args)
    else:
        result = predict_file(
            args.model,
            args.data,
            args.output,
            keep=args.keep,
            delimiter=args.delimiter,
            missing=args.missing,
            quiet=args.quiet,
        )
    left = ""
    if result.dropped:
        left = f" ({result.dropped:,} rows dropped for missing values)"
    if result.excluded:
        left = f" ({result.excluded:,} rows with missing values have an empty prediction)"
    if args.output is None:
        if left:
            _note(args, left.strip(" ()"))
    elif args.json:
        summary = {
            "rows": result.rows,
            "dropped": result.dropped,
            "excluded": result.excluded,
            "output": args.output,
            "columns": result.columns,
        }
        print(_dumps(summary))
    else:
        print(f"{result.rows:,} predictions written to {args.output}{left}")
    return EXIT_OK


def _predict_json_lines(args: argparse.Namespace) -> Any:
    import tempfile

    import pyarrow as pa
    import pyarrow.csv as pacsv

    from .jobs import predict_file

    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/predictions.csv"
        result = predict_file(
            args.model,
            args.data,
            path,
            keep=args.keep,
            delimiter=args.delimiter,
            missing=args.missing,
            quiet=args.quiet,
        )
        # Read back as text: kept columns stay exactly as they were written.
        reader = pacsv.open_csv(
            path,
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in args.keep}),
        )
        for batch in reader:
            for record in batch.to_pylist():
                print(_dumps(record, indent=None))
    return result


def _run_evaluate(args: argparse.Namespace) -> int:
    from .jobs import evaluate_file

    result = evaluate_file(
        args.model, args.data, delimiter=args.delimiter, missing=args.missing, quiet=args.quiet
    )
    if args.json:
        print(_dumps(result))
        return EXIT_OK
    dropped = f" ({result['dropped']:,} dropped)" if result["dropped"] else ""
    print(f"n = {result['n']:,}{dropped}")
    for t, m in result["targets"].items():
        r2 = "n/a (constant target)" if m["r2"] is None else f"{m['r2']:.6g}"
        print(f"{t}: MSE {m['mse']:.6g}   RMSE {m['rmse']:.6g}   MAE {m['mae']:.6g}   R² {r2}")
    return EXIT_OK


def _run_summary(args: argparse.Namespace) -> int:
    from types import SimpleNamespace

    from .jobs import describe_model
    from .stats.report import format_summary

    d = describe_model(args.model)
    if args.json:
        print(_dumps(d))
        return EXIT_OK
    print(f"{d['model']} predicting {', '.join(d['targets'])} from {len(d['features'])} feature(s)")
    if d.get("method"):
        dropped = f", {d['dropped']:,} dropped" if d.get("dropped") else ""
        print(
            f"fitted by {d['method']} on {d.get('n', 0):,} rows of {d.get('source', '?')}{dropped}"
        )
    fit = d.get("fit") or {}
    r2, rmse = fit.get("r2") or [], fit.get("rmse") or []
    for j, t in enumerate(d["targets"] if r2 and rmse else []):
        shown = "n/a (constant target)" if r2[j] is None or r2[j] != r2[j] else f"{r2[j]:.6g}"
        print(f"  {t}: R² {shown}   RMSE {rmse[j]:.6g}")
    if d.get("condition_number") is not None:
        # Not the inference table's (statsmodels', of the design as given): this one is
        # κ₂ of the design the solver factors, which bounds the fit's accuracy.
        refined = ", refined" if d.get("refined") else ""
        print(
            f"  rank {d.get('rank')}{refined}; condition number (columns scaled, centred with "
            f"an intercept; bounds the fit's accuracy): {d['condition_number']:.3g}"
        )
    for c, cats in d["one_hot"].items():
        print(
            f"  one-hot {c}: levels {', '.join(cats)} (the first is the reference when "
            "there is an intercept)"
        )
    if d.get("summary"):
        for s in d["summary"]:
            # The stored (validated) table, shown without the torch-backed Summary class.
            rows = [SimpleNamespace(**c) for c in s["coefficients"]]
            print()
            print(format_summary(SimpleNamespace(**{**s, "coefficients": rows})))
    else:
        _print_table(d["coefficients"], d["targets"])
    return EXIT_OK


_COMMANDS = {
    "demo": _run_demo,
    "fit": _run_fit,
    "predict": _run_predict,
    "evaluate": _run_evaluate,
    "summary": _run_summary,
}


_INTERNAL = "internal error"


def _printable(text: str) -> str:
    """One terminal-safe line: control characters, line breaks and invisible format
    characters (from column names, values, paths) are shown escaped, not obeyed."""
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")
        else ch
        for ch in str(text)
    )


def _stderr_line(prefix: str, as_json: bool, kind: str, message: str, code: int | None) -> None:
    """The one place that writes to stderr for the user: a line per message, or with
    ``--json`` one JSON object per line ({"error": ..., "exit_code": 2})."""
    if sys.stderr is None:
        return
    if as_json:  # an error is {"error": ..., "exit_code": ...}, whatever its kind
        record: dict[str, Any] = {kind: str(message)}
        if code is not None:
            record = {"error": str(message) if kind == "error" else f"{kind}: {message}"}
            record["exit_code"] = code
        line = json.dumps(record, ensure_ascii=True)
    else:
        line = f"{prefix}: {kind}: {_printable(message)}"
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


def _wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))  # demo has no --json


def _note(args: argparse.Namespace, message: str) -> None:
    _stderr_line(f"torchlinreg {args.command}", _wants_json(args), "note", message, None)


def _closed_stdio(args: argparse.Namespace) -> str | None:
    """Python sets sys.stdout/sys.stdin to None when the program starts with them closed."""
    if sys.stdout is None:
        return "standard output is closed; redirect it instead (> /dev/null, say)"
    if getattr(args, "data", None) == "-" and sys.stdin is None:
        return "standard input is closed; give a file, or pipe the data in"
    return None


def _detach_stdout() -> None:
    """Point standard output at /dev/null so that the interpreter's last flush of what
    is left in its buffer does not fail a second time at exit."""
    stdout = sys.stdout
    if stdout is not sys.__stdout__ or stdout is None:
        return  # captured (tests, an embedding program): nothing to protect
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
        os.close(devnull)


def _run(args: argparse.Namespace) -> int:
    """The command, with the library's warnings shown after it (one line each)."""
    from .errors import InputError

    closed = _closed_stdio(args)
    if closed is not None:
        raise InputError(closed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = _COMMANDS[args.command](args)
            sys.stdout.flush()  # a full disk shows here, not at the interpreter's exit
        except OSError as exc:
            # Files are opened by name (their errors carry it) and written through
            # _files, which reports its own: an OS error without a file name is a write
            # to standard output failing (a full disk; a closed pipe is quiet, in main).
            if exc.filename is not None or exc.errno in (None, errno.EPIPE):
                raise
            _detach_stdout()
            raise InputError(f"standard output could not be written: {exc.strerror}") from None
    for w in caught:
        if issubclass(w.category, UserWarning):
            prefix = f"torchlinreg {args.command}"
            _stderr_line(prefix, _wants_json(args), "warning", str(w.message), None)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``torchlinreg`` console script; returns the exit code.

    Exit codes: 0 ok, 2 bad input or usage (one line on stderr; a JSON object with
    ``--json``), 130 interrupted, 1 internal error (one line; a bug to report).
    """
    from .errors import InputError

    argv = list(sys.argv[1:] if argv is None else argv)
    prefix, as_json = "torchlinreg", "--json" in argv

    def fail(message: str, code: int, kind: str = "error") -> int:
        _stderr_line(prefix, as_json, kind, message, code)
        return code

    try:
        args = build_parser().parse_args(argv)
        prefix, as_json = f"torchlinreg {args.command}", _wants_json(args)
        return _run(args)
    except UsageError as exc:
        if not as_json and sys.stderr is not None:
            exc.parser.print_usage(sys.stderr)
        prefix = exc.parser.prog
        return fail(str(exc), EXIT_INPUT)
    except InputError as exc:
        return fail(str(exc), EXIT_INPUT)
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_INTERRUPTED)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE:
            _detach_stdout()
            return EXIT_OK  # e.g. piped into `head`
        if exc.errno is None:  # not the system's refusal: a bug to report
            return fail(f"{type(exc).__name__}: {exc} (please report this)", 1, _INTERNAL)
        where = f"{exc.filename}: " if exc.filename else ""
        return fail(f"{where}{exc.strerror or exc}", EXIT_INPUT)
    except Exception as exc:  # the last line of defence: one line, never a traceback
        return fail(f"{type(exc).__name__}: {exc} (please report this)", EXIT_INTERNAL, _INTERNAL)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
