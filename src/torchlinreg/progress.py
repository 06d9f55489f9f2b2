"""A one-line progress report on stderr: rows read and rows per second.

Shown only on a terminal, only after the work has run for a second, and never with
``--quiet``; it rewrites one line and clears it at the end.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, label: str, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.label = label
        self.rows = 0
        self.start = time.perf_counter()
        self._last = 0.0
        self._shown = False

    def update(self, rows: int) -> None:
        self.rows += rows
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.start < 1.0 or now - self._last < 0.2:
            return
        self._last = now
        rate = self.rows / (now - self.start)
        self.stream.write(f"\r{self.label}: {self.rows:,} rows ({rate:,.0f} rows/s)\x1b[K")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
