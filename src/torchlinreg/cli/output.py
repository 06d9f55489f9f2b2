"""What the commands print: JSON without NaN, the coefficient table, and the one writer
of lines on stderr (errors, warnings, notes; one JSON object each with ``--json``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import unicodedata
from typing import Any


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
    width = max(len(r) for r in rows)
    lines = []
    if len(targets) > 1:
        lines.append("  " + " " * width + "".join(f"  {t:>14}" for t in targets))
    for r in rows:
        lines.append(f"  {r:<{width}}" + "".join(f"  {coefficients[t][r]:>14.6g}" for t in targets))
    return lines


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
    stderr_line(f"torchlinreg {args.command}", wants_json(args), "note", message, None)


def warning(args: argparse.Namespace, message: str) -> None:
    stderr_line(f"torchlinreg {args.command}", wants_json(args), "warning", message, None)
