"""The command run: parse, run the command, map errors to exit codes.

One module per command (:mod:`.fit`; :mod:`.predict` for predict and evaluate;
:mod:`.summary`), the grammar in :mod:`.parser` and what they print in :mod:`.output`.
Only the standard library is imported at module level: ``--help`` must not pay for
torch. Exit codes: 0 ok, 2 bad input or usage, 3 a rank lost contact with the others
(under torchrun), 130 interrupted (Ctrl-C), 143 gradient training stopped by SIGTERM
(130 by Ctrl-C) after writing a checkpoint, 1 internal error.

Under ``torchrun`` fit, predict and evaluate run on every rank in one process group
(:mod:`torchlinreg.distributed.launch`, given to the command as ``args.group``); rank
0 alone prints results, notes and warnings. demo and summary run on rank 0 alone.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import shlex
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..training.interrupt import InterruptedTraining
from . import EXIT_INTERRUPTED
from .compare import run_compare
from .export import run_export
from .fit import run_fit
from .output import STDOUT_CLOSED, stderr_line, wants_json, warning
from .parser import UsageError, build_parser
from .predict import run_evaluate, run_predict
from .report import run_report
from .summary import run_summary

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_LOST_RANK = 0, 1, 2, 3
# Commands that share their work between the ranks of torchrun; the others run on rank 0.
_SHARED = ("fit", "predict", "evaluate")


def _run_demo(args: argparse.Namespace) -> None:
    from ..demo import run_demo

    if args.plot is not None:  # checked before the replay: nothing is trained in vain
        from ..demo import check_plot

        check_plot(args.plot)
    result = run_demo(
        lr=args.lr, epochs=args.epochs, optimizer=args.optimizer, log_every=args.log_every
    )
    if args.plot is not None:
        from ..demo import save_plot

        save_plot(args.plot, result)


_COMMANDS: dict[str, Callable[[argparse.Namespace], None]] = {
    "demo": _run_demo,
    "fit": run_fit,
    "predict": run_predict,
    "evaluate": run_evaluate,
    "summary": run_summary,
    "compare": run_compare,
    "export": run_export,
    "report": run_report,
}


_INTERNAL = "internal error"


def _closed_stdio(args: argparse.Namespace) -> str | None:
    """Python sets sys.stdout/sys.stdin to None when the program starts with them closed."""
    if sys.stdout is None:
        return STDOUT_CLOSED
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


@contextlib.contextmanager
def _stdout_checked() -> Iterator[None]:
    """Standard output flushed at the end (a full disk shows here, not at the
    interpreter's exit), and a failure to write it made a one-line InputError. Files
    are opened by name (their errors carry it) and written through _files, which
    reports its own: an OS error without a file name is standard output failing. A
    closed pipe is left to :func:`run`, which ends quietly."""
    from ..errors import InputError

    try:
        yield
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError as exc:
        if exc.filename is not None or exc.errno in (None, errno.EPIPE):
            raise
        _detach_stdout()
        raise InputError(f"standard output could not be written: {exc.strerror}") from None


class _CtrlC:
    """Whether Ctrl-C was pressed during the command: a library that turns the
    KeyboardInterrupt into an error of its own (numpy's import, interrupted, raises
    ImportError) is then reported as interrupted, not as an internal error. Python's
    own handler is wrapped for the command's duration, in the main thread only."""

    def __init__(self) -> None:
        self.pressed = False

    def _handler(self, signum: int, frame: Any) -> None:
        self.pressed = True
        signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt

    @contextlib.contextmanager
    def watched(self) -> Iterator[None]:
        main = threading.current_thread() is threading.main_thread()
        if not main or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            yield  # an embedding program's own handler stays
            return
        signal.signal(signal.SIGINT, self._handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _resume_line(stop: InterruptedTraining, argv: Sequence[str]) -> str:
    """What to say when training stopped at a signal: where, and the command that
    resumes it (this one, with ``--resume`` naming the checkpoint written)."""
    if stop.checkpoint is None:
        return f"interrupted at epoch {stop.epoch}; no checkpoint was written (θ not finite)"
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--resume":
            skip = True
        elif not arg.startswith("--resume="):
            kept.append(arg)
    command = shlex.join(["torchlinreg", *kept, "--resume", stop.checkpoint])
    return f"interrupted at epoch {stop.epoch}; resume with: {command}"


def _parse(argv: Sequence[str]) -> argparse.Namespace | None:
    """The arguments, or None once ``--help`` or ``--version`` is printed."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit:  # argparse's exit after help or the version; errors raise UsageError
        return None


def _command(args: argparse.Namespace) -> int:
    """The command, with the library's warnings shown after it (one line each)."""
    from ..distributed.launch import launch_rank, process_group
    from ..errors import InputError

    closed = _closed_stdio(args)
    if closed is not None:
        raise InputError(closed)
    args.group = None
    shared = args.command in _SHARED
    if not shared and launch_rank() != 0:
        return EXIT_OK  # one copy of demo or summary is enough: rank 0's
    device = getattr(args, "device", "cpu") if args.command == "fit" else "cpu"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _stdout_checked():
            if shared:
                with process_group(device, args.timeout) as args.group:
                    _COMMANDS[args.command](args)
            else:
                _COMMANDS[args.command](args)
    for w in caught:
        if issubclass(w.category, UserWarning):
            warning(args, str(w.message))
    return EXIT_OK


def run(argv: Sequence[str]) -> int:
    """``torchlinreg ARGV``; returns the exit code (see :func:`torchlinreg.cli.main`)."""
    from ..distributed.launch import LostRankError
    from ..errors import InputError

    prefix, as_json = "torchlinreg", "--json" in argv
    ctrl_c = _CtrlC()

    def fail(message: str, code: int, kind: str = "error") -> int:
        if ctrl_c.pressed:  # whatever error followed Ctrl-C is its doing
            message, code, kind = "interrupted", EXIT_INTERRUPTED, "error"
        stderr_line(prefix, as_json, kind, message, code)
        return code

    try:
        with ctrl_c.watched():
            with _stdout_checked():
                args = _parse(argv)
            if args is None:
                return EXIT_OK
            prefix, as_json = f"torchlinreg {args.command}", wants_json(args)
            return _command(args)
    except UsageError as exc:
        prefix = exc.parser.prog
        return fail(f"{exc}; see '{exc.parser.prog} --help'", EXIT_INPUT)
    except InputError as exc:
        return fail(str(exc), EXIT_INPUT)
    except LostRankError as exc:
        return fail(str(exc), EXIT_LOST_RANK)
    except InterruptedTraining as exc:  # before KeyboardInterrupt, which it is
        return fail(_resume_line(exc, argv), exc.exit_code)
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
