"""The report in a real browser: headless Chromium (Debian's ``chromium``) loads it
with no console error and no network request, with JavaScript off it holds every
section, and its screenshot at 1280 px wide is not blank. Skipped without
/usr/bin/chromium (``.ci/run`` installs it).

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
it reads commands on fd 3 and writes replies and events on fd 4, NUL-terminated JSON),
with the standard library alone."""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib")

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")

FLAGS = ["--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
         "--disable-extensions", "--disable-background-networking", "--disable-sync",
         "--disable-component-update", "--disable-default-apps", "--mute-audio",
         "--hide-scrollbars"]  # fmt: skip
TIMEOUT = 60.0


class DevTools:
    """A Chromium process and its DevTools pipe: commands, replies, and every event
    seen so far (``events``)."""

    def __init__(self, profile: Path) -> None:
        to_child, self._commands = os.pipe()
        self._replies, from_child = os.pipe()

        def fds() -> None:  # in the child: the pipe ends on fds 3 and 4
            # Copies first: either end may itself be fd 3 or 4.
            read_end, write_end = os.dup(to_child), os.dup(from_child)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            [
                CHROMIUM,
                *FLAGS,
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "about:blank",
            ],  # fmt: skip
            preexec_fn=fds,
            pass_fds=(3, 4),  # kept open by the child once fds() has set them
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply["result"]

    def wait_for(self, method: str) -> dict[str, Any]:
        seen = next((e for e in self.events if e.get("method") == method), None)
        while seen is None:
            message = self._read()
            seen = message if message.get("method") == method else None
        return seen

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while b"\0" not in self._buffer:
            ready, _, _ = select.select(
                [self._replies], [], [], max(0.0, deadline - time.monotonic())
            )
            if not ready:
                raise AssertionError("Chromium did not answer within a minute")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise AssertionError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(raw)
        if "method" in message:
            self.events.append(message)
        return message

    def close(self) -> None:
        with contextlib.suppress(AssertionError, OSError):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from torchlinreg import LinearRegression
    from torchlinreg.report import write_report

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = X @ [1.0, -2.0, 0.5] + 1.0 + rng.standard_t(3, size=400)
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_report(str(path), LinearRegression().fit(X, y), (X, y))
    return path


@pytest.fixture(scope="module")
def loaded(report: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The report loaded once with JavaScript off: every DevTools event, the DOM as
    rendered, and a 1280 × 2000 screenshot (also saved beside the report)."""
    import base64

    browser = DevTools(tmp_path_factory.mktemp("profile"))
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        session = attached["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setScriptExecutionDisabled", {"value": True}, session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1280, "height": 2000, "deviceScaleFactor": 1, "mobile": False},
                     session=session)  # fmt: skip
        browser.send("Page.navigate", {"url": report.as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        root = browser.send("DOM.getDocument", session=session)["root"]["nodeId"]
        dom = browser.send("DOM.getOuterHTML", {"nodeId": root}, session=session)["outerHTML"]
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session=session)
        png = base64.b64decode(shot["data"])
        report.with_suffix(".png").write_bytes(png)
        return {"events": list(browser.events), "dom": dom, "png": png}
    finally:
        browser.close()


def _non_white(png: bytes) -> tuple[tuple[int, int], float]:
    """The image's (height, width) and the share of its pixels that are not white."""
    from matplotlib.image import imread

    image = imread(io.BytesIO(png), format="png")[..., :3]
    return image.shape[:2], float(np.mean(np.any(image < 0.98, axis=-1)))


def test_report_loads_without_errors_or_requests(report: Path, loaded: dict[str, Any]) -> None:
    events = loaded["events"]
    requested = [e["params"]["request"]["url"] for e in events
                 if e["method"] == "Network.requestWillBeSent"]  # fmt: skip
    assert requested == [report.as_uri()]  # the page itself, nothing else
    errors = [
        e for e in events if e["method"] in ("Runtime.exceptionThrown", "Network.loadingFailed")
    ]
    errors += [e for e in events if e["method"] == "Runtime.consoleAPICalled"]
    errors += [e for e in events
               if e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"]  # fmt: skip
    assert errors == []


def test_screenshot_is_not_blank(loaded: dict[str, Any]) -> None:
    shape, inked = _non_white(loaded["png"])
    assert shape == (2000, 1280)
    # Text, tables and the plots' points cover some of the page; a blank (or failed)
    # render covers none, an all-dark one nearly all of it.
    assert 0.02 < inked < 0.6


def test_report_reads_without_javascript(loaded: dict[str, Any]) -> None:
    dom = loaded["dom"]
    for title in ("What was fitted", "Summary", "Diagnostic plots", "Most influential rows"):
        assert f"<h2>{title}</h2>" in dom
    assert dom.count("<svg") == 2 and "<script" not in dom
