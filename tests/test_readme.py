"""The README's examples run as written, so the docs cannot rot.

Every ```python block runs on its own (a fresh namespace, an empty working directory);
every ``torchlinreg ...`` line of the ```sh blocks runs in order through the CLI's
``main`` in a directory holding a copy of ``examples/``, and each output block the README
shows (the demo's log, the fit's report) must appear in what those commands print.
"""

from __future__ import annotations

import re
import shlex
import shutil
import warnings
from pathlib import Path

import pytest

from torchlinreg.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(\w*)\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL)
PYTHON = [code for lang, code in BLOCKS if lang == "python"]
COMMANDS = [
    line.strip()
    for lang, code in BLOCKS
    if lang == "sh"
    for line in code.splitlines()
    if line.strip().startswith("torchlinreg ")
]
OUTPUTS = [code for lang, code in BLOCKS if lang == ""]


def test_the_readme_has_the_examples_this_file_runs() -> None:
    # Guards the extraction: a changed fence style must not silently run nothing.
    assert len(PYTHON) >= 3 and len(COMMANDS) >= 5 and len(OUTPUTS) >= 2


@pytest.mark.parametrize("index", range(len(PYTHON)), ids=lambda i: f"python-block-{i + 1}")
def test_python_block_runs_as_written(
    index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code = compile(PYTHON[index], f"README.md, python block {index + 1}", "exec")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(code, {"__name__": "__readme__"})
    # An example that makes the library warn is a bad example.
    assert [str(w.message) for w in caught if w.category.__module__.startswith("torchlinreg")] == []


def _as_pattern(block: str) -> str:
    """A README output block as a regex: a line ``...`` stands for any lines, and a
    printed duration (``in 0.02 s``) for any duration."""
    lines = []
    for line in block.splitlines():
        if line == "...":
            lines.append(r"(?:.*\n)*?")
        else:
            parts = re.split(r"in \d+\.\d+ s", line)
            lines.append(r"in \d+\.\d+ s".join(re.escape(p) for p in parts) + r"\n")
    return "".join(lines)


def test_command_lines_run_and_print_what_the_readme_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    printed = []
    for line in COMMANDS:
        argv = shlex.split(line, comments=True)
        status = main(argv[1:])
        out, err = capsys.readouterr()
        assert status == 0, f"{line}\n{err}"
        printed.append(out)
    everything = "".join(printed)
    for block in OUTPUTS:
        assert re.search(_as_pattern(block), everything), f"not printed:\n{block}"
