"""The ``torchlinreg`` command. :func:`main` is the console script's entry point.

This module imports nothing at its top: the command's own modules are imported inside
:func:`main`, so that Ctrl-C while they load (the first tens of milliseconds) ends the
program like Ctrl-C at any later moment (exit code 130, one line), not with a
traceback. The work is in :mod:`.app`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # the typing module costs 20 ms at start-up
if TYPE_CHECKING:
    from collections.abc import Sequence

EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``torchlinreg ARGV`` (``sys.argv[1:]`` when None); returns the exit code.

    Exit codes: 0 ok, 2 bad input or usage (one line on stderr; a JSON object with
    ``--json``), 130 interrupted, 1 internal error (one line; a bug to report).
    """
    import signal  # built in, loaded with the interpreter
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    # While the command's modules load, Ctrl-C is noted, not raised: a KeyboardInterrupt
    # that lands in importlib's module-lock callback (a weakref callback) can only be
    # printed by Python ("Exception ignored in … Traceback") and the press is lost. Once
    # they are loaded, a press is answered as at any later moment.
    pressed: list[int] = []
    previous = None
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        try:
            previous = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
        except ValueError:  # not the main thread: the embedding program's handling stays
            previous = None
    try:
        from .app import run
    except KeyboardInterrupt:
        return _interrupted(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if pressed:
        return _interrupted(args)
    try:
        return run(args)
    except KeyboardInterrupt:  # caught by run() once it is running; in case it was not
        return _interrupted(args)


def _interrupted(argv: Sequence[str]) -> int:
    """The line :mod:`.app` writes for Ctrl-C, written before it could be loaded."""
    import contextlib
    import sys

    if "--json" in argv:
        line = '{"error": "interrupted", "exit_code": 130}'
    else:
        line = "torchlinreg: error: interrupted"
    if sys.stderr is not None:
        with contextlib.suppress(OSError, ValueError):  # stderr full: the exit code says it
            print(line, file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED
