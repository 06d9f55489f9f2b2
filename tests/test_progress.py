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


def test_progress_with_a_total_shows_share_and_time_left(monkeypatch) -> None:
    now = [0.0]
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: now[0])
    term = FakeTerminal()
    p = Progress("reading", total=10_000, stream=term)
    now[0] = 2.0
    p.update(2_500)  # 1,250 rows/s: 7,500 rows left take 6 s
    assert term.getvalue().endswith(
        "\rreading: 2,500 of 10,000 rows (25%, 1,250 rows/s, 6 s left)\x1b[K"
    )
    now[0] = 10.0
    p.update(7_500)
    assert term.getvalue().endswith("\rreading: 10,000 of 10,000 rows (100%, 1,000 rows/s)\x1b[K")


def test_a_new_phase_counts_from_zero_under_its_label(monkeypatch) -> None:
    now = [0.0]
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: now[0])
    term = FakeTerminal()
    p = Progress("reading", stream=term)
    now[0] = 2.0
    p.update(100)
    p.phase("reading again (pass 2 of 2: HC3 covariance)", total=400)
    now[0] = 4.0
    p.update(100)
    assert term.getvalue().endswith(
        "\rreading again (pass 2 of 2: HC3 covariance): 100 of 400 rows (25%, 50 rows/s, 6 s left)"
        "\x1b[K"
    )


def test_fit_names_each_pass_over_the_data(tmp_path, monkeypatch) -> None:
    """One-hot categories, the fit, the robust covariance: each pass is announced with
    the row count the Parquet metadata gives, and every row of it is counted."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    import torchlinreg.jobs.fit as jobs

    seen: list[tuple[str, int | None, int]] = []

    class Recorder(Progress):
        def phase(self, label: str, total: int | None = None) -> None:
            if hasattr(self, "rows"):
                seen.append((self.label, self.total, self.rows))
            super().phase(label, total)

        def close(self) -> None:
            seen.append((self.label, self.total, self.rows))

    monkeypatch.setattr(jobs, "Progress", Recorder)
    rng = np.random.default_rng(0)
    n = 50
    table = pa.table(
        {"x": rng.normal(size=n), "g": rng.choice(["a", "b"], size=n), "y": rng.normal(size=n)}
    )
    path = tmp_path / "d.parquet"
    pq.write_table(table, path)
    options = jobs.FitOptions(targets=["y"], one_hot=["g"], summary=True, cov_type="HC3")
    jobs.fit_file(str(path), options, quiet=True)
    assert seen == [
        ("reading", n, 0),
        ("reading (pass 1 of 3: categories of --one-hot columns)", n, n),
        ("reading again (pass 2 of 3: fitting)", n, n),
        ("reading again (pass 3 of 3: HC3 covariance)", n, n),
    ]
