"""The ``torchlinreg`` command: parse, run the command, map errors to exit codes.

One module per command (:mod:`.fit`; :mod:`.predict` for predict and evaluate;
:mod:`.summary`), the grammar in :mod:`.parser` and what they print in :mod:`.output`.
Only the standard library is imported at module level: ``--help`` must not pay for
torch. Exit codes: 0 ok, 2 bad input or usage, 130 interrupted, 1 internal error.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
import warnings
from collections.abc import Callable, Sequence

from .fit import run_fit
from .output import stderr_line, wants_json, warning
from .parser import UsageError, build_parser
from .predict import run_evaluate, run_predict
from .summary import run_summary

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def _run_demo(args: argparse.Namespace) -> None:
    from ..demo import run_demo

    run_demo(lr=args.lr, epochs=args.epochs, optimizer=args.optimizer, log_every=args.log_every)


_COMMANDS: dict[str, Callable[[argparse.Namespace], None]] = {
    "demo": _run_demo,
    "fit": run_fit,
    "predict": run_predict,
    "evaluate": run_evaluate,
    "summary": run_summary,
}


_INTERNAL = "internal error"


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
    from ..errors import InputError

    closed = _closed_stdio(args)
    if closed is not None:
        raise InputError(closed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _COMMANDS[args.command](args)
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
            warning(args, str(w.message))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``torchlinreg`` console script; returns the exit code.

    Exit codes: 0 ok, 2 bad input or usage (one line on stderr; a JSON object with
    ``--json``), 130 interrupted, 1 internal error (one line; a bug to report).
    """
    from ..errors import InputError

    argv = list(sys.argv[1:] if argv is None else argv)
    prefix, as_json = "torchlinreg", "--json" in argv

    def fail(message: str, code: int, kind: str = "error") -> int:
        stderr_line(prefix, as_json, kind, message, code)
        return code

    try:
        args = build_parser().parse_args(argv)
        prefix, as_json = f"torchlinreg {args.command}", wants_json(args)
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
            return fail(
                f"{type(exc).__name__}: {exc} (please report this)", EXIT_INTERNAL, _INTERNAL
            )
        where = f"{exc.filename}: " if exc.filename else ""
        return fail(f"{where}{exc.strerror or exc}", EXIT_INPUT)
    except Exception as exc:  # the last line of defence: one line, never a traceback
        return fail(f"{type(exc).__name__}: {exc} (please report this)", EXIT_INTERNAL, _INTERNAL)
