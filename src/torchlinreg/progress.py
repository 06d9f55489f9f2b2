"""A one-line progress report on stderr: what is being read, rows so far and rows per
second; with a known total (Parquet and ``.npy`` know their row count) also the share
done and the time left.

Shown only on a terminal, only after the work has run for a second, and never with
``--quiet``; it rewrites one line and clears it at the end. A job that reads its data
more than once names each pass (``reading (pass 2 of 2: robust covariance)``).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(
        self,
        label: str,
        *,
        total: int | None = None,
        enabled: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self._shown = False
        self.phase(label, total)

    def phase(self, label: str, total: int | None = None) -> None:
        """Start counting again under a new label (the next pass over the data)."""
        self.label, self.total = label, total
        self.rows = 0
        self.start = time.perf_counter()
        self._last = 0.0

    def update(self, rows: int) -> None:
        self.rows += rows
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.start < 1.0 or now - self._last < 0.2:
            return
        self._last = now
        self.stream.write(f"\r{self.line(now - self.start)}\x1b[K")
        self.stream.flush()
        self._shown = True

    def line(self, elapsed: float) -> str:
        """The text shown after ``elapsed`` seconds of this phase."""
        rate = self.rows / elapsed
        if not self.total:
            return f"{self.label}: {self.rows:,} rows ({rate:,.0f} rows/s)"
        done = min(self.rows / self.total, 1.0)
        left = (self.total - self.rows) / rate if rate > 0 else float("inf")
        eta = f", {_duration(left)} left" if self.rows < self.total else ""
        return (
            f"{self.label}: {self.rows:,} of {self.total:,} rows "
            f"({done:.0%}, {rate:,.0f} rows/s{eta})"
        )

    def close(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
