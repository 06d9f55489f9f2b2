"""The progress line: only on a terminal, only after a second, cleared at the end."""

from __future__ import annotations

import io

import torchlinreg.progress as progress_module
from torchlinreg.progress import Progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_rows_and_rate_on_a_terminal_after_a_second(monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: now[0])
    term = FakeTerminal()
    p = Progress("reading", stream=term)
    p.update(1000)
    assert term.getvalue() == ""  # under a second: nothing
    now[0] += 2.0
    p.update(1000)
    assert "\rreading: 2,000 rows (1,000 rows/s)" in term.getvalue()
    p.close()
    assert term.getvalue().endswith("\r\x1b[K")


def test_progress_is_silent_off_a_terminal_or_when_disabled(monkeypatch) -> None:
    now = [0.0]
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: now[0])
    for stream, enabled in ((io.StringIO(), True), (FakeTerminal(), False)):
        p = Progress("reading", stream=stream, enabled=enabled)
        now[0] += 5
        p.update(10)
        p.close()
        assert stream.getvalue() == ""
