"""What the commands print: JSON without NaN, the coefficient and summary tables, and
the one writer of lines on stderr (errors, warnings, notes; one JSON object each with
``--json``). Names from the data (columns, categories, paths) are shown through
:func:`printable` in every text, stdout's and stderr's alike; JSON escapes by itself."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import sys
import unicodedata
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

STDOUT_CLOSED = "standard output is closed; redirect it instead (> /dev/null, say)"


def _json_safe(obj: Any) -> Any:
    """NaN and infinities are not JSON: they become null."""
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def dumps(obj: Any, indent: int | None = 2) -> str:
    return json.dumps(_json_safe(obj), indent=indent, allow_nan=False, default=str)


def table_lines(coefficients: dict[str, dict[str, float]], targets: list[str]) -> list[str]:
    """The coefficients, a row per term and a column per target (headed when several)."""
    rows = list(next(iter(coefficients.values())))
    shown = {r: printable(r) for r in rows}
    width = max(len(r) for r in shown.values())
    lines = []
    if len(targets) > 1:
        lines.append("  " + " " * width + "".join(f"  {printable(t):>14}" for t in targets))
    for r in rows:
        values = "".join(f"  {coefficients[t][r]:>14.6g}" for t in targets)
        lines.append(f"  {shown[r]:<{width}}{values}")
    return lines


def summary_text(stored: dict[str, Any]) -> str:
    """A target's statistical summary as stored (``Summary.to_dict``'s form) as the
    table :func:`torchlinreg.stats.report.format_summary` prints, its names (target,
    terms, the notes that name them) shown printable; torch is not needed."""
    from ..stats.report import format_summary

    rows = [SimpleNamespace(**{**c, "name": printable(c["name"])}) for c in stored["coefficients"]]
    shown = {
        **stored,
        "target": printable(stored["target"]),
        "coefficients": rows,
        "notes": [printable(n) for n in stored.get("notes", [])],
    }
    return format_summary(SimpleNamespace(**shown))


def name_list(items: Any) -> str:
    """Names from the data as a printable, comma-separated list."""
    return ", ".join(printable(i) for i in items)


def r2_text(r2: float | None) -> str:
    """R² as shown: undefined (None or NaN) for a constant target."""
    return "n/a (constant target)" if r2 is None or r2 != r2 else f"{r2:.6g}"


def printable(text: str) -> str:
    """One terminal-safe line: control characters, line breaks and invisible format
    characters (from column names, values, paths) are shown escaped, not obeyed."""
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")
        else ch
        for ch in str(text)
    )


def stderr_line(prefix: str, as_json: bool, kind: str, message: str, code: int | None) -> None:
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
        line = f"{prefix}: {kind}: {printable(message)}"
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))  # demo has no --json


def note(args: argparse.Namespace, message: str) -> None:
    """A remark after the result (rows left out, columns not used): a line on stderr."""
    if speaks(args):
        stderr_line(f"torchlinreg {args.command}", wants_json(args), "note", message, None)


def warning(args: argparse.Namespace, message: str) -> None:
    if speaks(args):
        stderr_line(f"torchlinreg {args.command}", wants_json(args), "warning", message, None)


def speaks(args: argparse.Namespace) -> bool:
    """Whether this process prints results, notes and warnings: under torchrun, rank 0
    alone (every rank prints its own error)."""
    group = getattr(args, "group", None)
    return group is None or group.rank == 0


def on_rank_0(args: argparse.Namespace, step: Callable[[], None]) -> None:
    """``step`` (an output written, a check of it) at once in one process; under
    torchrun on rank 0 alone, and its failure every rank's (exit 2 everywhere). A reader
    that stops reading (``| head``) ends rank 0 quietly and is no failure."""
    from ..errors import InputError

    group = getattr(args, "group", None)
    if group is None:
        step()
        return
    stopped = False

    def on_rank_0() -> None:
        nonlocal stopped
        if group.rank != 0:
            return
        try:
            step()
        except BrokenPipeError:
            stopped = True
        except OSError as exc:
            if exc.errno is None:
                raise
            where = (
                f"{exc.filename}: " if exc.filename else "standard output could not be written: "
            )
            raise InputError(f"{where}{exc.strerror or exc}") from None

    group.agree(on_rank_0)
    if stopped:
        raise BrokenPipeError(errno.EPIPE, "the reader stopped reading")
