"""Fuzzing the command line: bad input never gets an internal error.

Each case writes data (CSV, Parquet, .npy) and model files, well-formed or mutated and
crafted (tests/fuzz.py), runs ``torchlinreg.cli.main([...])`` in-process on fit,
predict, evaluate or summary with random options, and checks the contract:

- the exit code is 0 or 2 (never 1, "internal error");
- on 2, stderr is exactly one line (usage errors too), without "internal error" or
  "Traceback";
- a text report on stdout (not JSON, not predict's CSV) holds no raw control or format
  character: names from the data are shown escaped;
- no temporary file (``.tmp-*``) is left beside an output;
- an output file that existed is untouched when the exit code is 2;
- a case ends within its time limit (a blow-up is refused up front, not run).

CI runs a bounded, seeded set (``CASES`` below: 300 cases, ~10 s on 2 cores). On demand:

    TORCHLINREG_FUZZ_CASES=5000 pytest -q tests/test_fuzz.py       # minutes
    TORCHLINREG_FUZZ_SEED=7 ...                                     # other cases
    TORCHLINREG_FUZZ_CASE=123 pytest -q tests/test_fuzz.py          # rerun one case

A failure names its case number and command line; rerunning that case alone leaves its
files under pytest's tmp_path (``case123/``) to look at.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from torchlinreg.cli import main

from .fuzz import (
    NAMES,
    base_columns,
    chance,
    column_names,
    craft_model,
    crafted_columns,
    pick,
    write_csv,
    write_npy,
    write_parquet,
)

CASES = int(os.environ.get("TORCHLINREG_FUZZ_CASES", "300"))
SEED = int(os.environ.get("TORCHLINREG_FUZZ_SEED", "20261130"))
ONLY = os.environ.get("TORCHLINREG_FUZZ_CASE")
SECONDS_PER_CASE = 30
SENTINEL = b"previous output\n"
RAW = ("Cc", "Cf", "Zl", "Zp")  # what a terminal would obey or hide

# Models fitted once on the well-formed data, for predict/evaluate/summary to use.
MODELS = {
    "plain": ["--features", "x1,x2"],
    "one_hot": ["--features", "x1,x2,g", "--one-hot", "g"],
    "one_hot_no_intercept": ["--features", "x1,g", "--one-hot", "g", "--no-intercept"],
    "two_targets": ["--target", "y,x2", "--features", "x1"],
    "gd": ["--features", "x1,x2", "--method", "gd", "--epochs", "20", "--lr", "0.05"],
    "ridge_summary": ["--features", "x1,x2", "--ridge", "1", "--summary"],
    "robust": ["--features", "x1,g", "--one-hot", "g", "--weights", "w", "--cov-type", "HC1"],
    "missing_drop": ["--features", "x1,x2", "--missing", "drop"],
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("models")
    cols = base_columns(np.random.default_rng(0), 200)
    data = directory / "base.csv"
    lines = [",".join(cols)] + [",".join(str(v[i]) for v in cols.values()) for i in range(200)]
    data.write_text("\n".join(lines) + "\n")
    out = {}
    for name, options in MODELS.items():
        path = directory / f"{name}.safetensors"
        target = [] if "--target" in options else ["--target", "y"]
        argv = ["fit", str(data), *target, *options, "-o", str(path), "--quiet"]
        code, _, err = run_main(argv)
        assert code == 0, (name, err)
        out[name] = path
    return out


class CaseTimeout(BaseException):
    """Raised in the case's thread when it runs past its time limit (not an Exception,
    so that the command's own error handling does not swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def expire(*_: object) -> None:
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_main(argv: list[str], stdin: bytes | None = None) -> tuple[int, str, str]:
    """``main(argv)`` with the standard streams captured (stdout with a byte buffer, as
    predict writes CSV there)."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="")
    err = io.StringIO()
    saved = sys.stdout, sys.stderr, sys.stdin
    sys.stdout, sys.stderr = out, err
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    try:
        code = main(argv)
    finally:
        sys.stdout, sys.stderr, sys.stdin = saved
    out.flush()
    return code, out.buffer.getvalue().decode("utf-8", "replace"), err.getvalue()


@dataclass
class Case:
    argv: list[str]
    outputs: list[Path]
    stdin: bytes | None = None


def make_case(rng: np.random.Generator, directory: Path, models: dict[str, Path]) -> Case:
    command = pick(rng, ["fit", "fit", "fit", "fit", "predict", "predict", "predict",
                         "evaluate", "evaluate", "summary"])  # fmt: skip
    if command == "summary":
        return Case(["summary", str(_model(rng, directory, models)), *_json(rng)], [])
    data, names, stdin, delimiter = _data(rng, directory)
    if command == "fit":
        case = _fit_case(rng, directory, data, names, stdin)
        case.argv += _delimiter(rng, delimiter)
        return case
    model = str(_model(rng, directory, models))
    argv = [command, model, data, "--quiet", *_json(rng), *_delimiter(rng, delimiter)]
    outputs = []
    if command == "predict":
        if chance(rng, 0.3):
            argv += ["--keep", pick(rng, ["id", "g", "id,x1", "nope", "predicted_y", "", "id,id"])]
        argv += ["--missing", pick(rng, ["error", "drop", "exclude"])]
        if chance(rng, 0.5):
            out = directory / f"pred{pick(rng, ['.csv', '.tsv', '.parquet', '.txt'])}"
            outputs.append(out)
            argv += ["-o", str(out)]
    else:
        argv += ["--missing", pick(rng, ["error", "drop"])]
    return Case(argv, outputs, stdin)


def _delimiter(rng: np.random.Generator, used: str | None) -> list[str]:
    """Mostly the file's own delimiter when it is not the default; now and then an odd
    one (non-ASCII, NUL, two characters)."""
    if chance(rng, 0.05):
        return ["--delimiter", pick(rng, [";", "\t", "|", "é", "\x00", "ab", '"', "\n"])]
    if used is not None and used != "," and chance(rng, 0.85):
        return ["--delimiter", used]
    return []


def _json(rng: np.random.Generator) -> list[str]:
    return ["--json"] if chance(rng, 0.3) else []


def _model(rng: np.random.Generator, directory: Path, models: dict[str, Path]) -> Path:
    good = models[pick(rng, sorted(models))]
    return craft_model(rng, good, directory) if chance(rng, 0.4) else good


def _data(
    rng: np.random.Generator, directory: Path
) -> tuple[str, list[str], bytes | None, str | None]:
    """The DATA argument, its column names, standard input's bytes, its delimiter."""
    kind = pick(rng, ["csv", "csv", "csv", "parquet", "parquet", "npy", "stdin"])
    if kind == "npy":
        path = write_npy(rng, directory)
        return str(path), ["0", "1", "2"], None, None
    cols = crafted_columns(rng) if chance(rng, 0.7) else base_columns(rng, 30)
    if kind == "parquet":
        return str(write_parquet(rng, cols, directory)), column_names(cols), None, None
    path, delimiter = write_csv(rng, cols, directory)
    if kind == "stdin" and path.suffix == ".csv":
        return "-", column_names(cols), path.read_bytes(), delimiter
    return str(path), column_names(cols), None, delimiter


def _fit_case(
    rng: np.random.Generator, directory: Path, data: str, names: list[str], stdin: bytes | None
) -> Case:
    pool = names + NAMES + ["nope"]
    target = pick(rng, ["y", "y", "y", pick(rng, pool), "y,x2"])
    argv = ["fit", data, "--target", target, "--quiet", *_json(rng)]
    if chance(rng, 0.3):
        argv += ["--features", ",".join(rng.choice(pool, size=int(rng.integers(1, 4))))]
    if chance(rng, 0.1):
        argv += ["--exclude", pick(rng, ["id", "", "x2", "nope"])]
    if chance(rng, 0.15):
        argv += ["--weights", pick(rng, ["w", "x1", "g", "nope"])]
    if chance(rng, 0.3):
        argv += ["--one-hot", pick(rng, ["g", "id", "x1", "g,id", "nested"])]
    if chance(rng, 0.3):
        argv += ["--missing", "drop"]
    if chance(rng, 0.2):
        argv += ["--no-intercept"]
    if chance(rng, 0.15):
        argv += ["--method", "gd", "--epochs", pick(rng, ["0", "5", "30"])]
        argv += ["--lr", pick(rng, ["0.01", "10", "1e-12"]), "--quiet"]
        if chance(rng, 0.5):
            argv += ["--batch-size", pick(rng, ["1", "7"]), "--seed", pick(rng, ["0", "7"])]
        if chance(rng, 0.3):
            argv += ["--optimizer", pick(rng, ["adam", "lbfgs", "nope"])]
    else:
        if chance(rng, 0.1):
            argv += ["--ridge", pick(rng, ["0", "1", "1e300"])]
        if chance(rng, 0.2):
            argv += ["--summary"]
        if chance(rng, 0.15):
            argv += ["--cov-type", pick(rng, ["HC0", "HC1", "HC2", "HC3", "cluster"])]
        if chance(rng, 0.1):
            argv += ["--cluster", pick(rng, ["id", "g", "x1", "nested", "nope"])]
        if chance(rng, 0.05):
            argv += ["--level", pick(rng, ["0.5", "0.999999"])]
    outputs = []
    if chance(rng, 0.5):
        out = directory / "model.out.safetensors"
        outputs.append(out)
        argv += ["-o", str(out)]
    return Case(argv, outputs, stdin)


def check_case(i: int, directory: Path, models: dict[str, Path]) -> str | None:
    """Run case ``i``; None when it keeps the contract, else what went wrong."""
    rng = np.random.default_rng([SEED, i])
    case = make_case(rng, directory, models)
    for out in case.outputs:
        out.write_bytes(SENTINEL)
    try:
        with time_limit(SECONDS_PER_CASE):
            code, out, err = run_main(case.argv, case.stdin)
    except CaseTimeout:
        return f"ran past {SECONDS_PER_CASE} s"
    report = "--json" not in case.argv and (case.argv[0] != "predict" or "-o" in case.argv)
    problems = contract_problems(code, err, case.outputs, directory, out if report else "")
    if not problems:
        return None
    return f"{'; '.join(problems)}: {' '.join(map(repr, case.argv))} -> {err.strip()[:400]!r}"


def contract_problems(
    code: int, err: str, outputs: list[Path], directory: Path, report: str = ""
) -> list[str]:
    """How a finished command broke the contract (nothing when it kept it); ``report``
    is the text it printed on stdout, when that is meant for a terminal."""
    lines = err.splitlines()
    problems = []
    if code not in (0, 2):
        problems.append(f"exit code {code}")
    if "internal error" in err or "Traceback" in err:
        problems.append("internal error")
    raw = sorted({c for c in report if c != "\n" and unicodedata.category(c) in RAW})
    if raw:
        problems.append(f"raw characters on stdout: {raw}")
    if code == 2:
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr")
        changed = [out.name for out in outputs if out.read_bytes() != SENTINEL]
        if changed:
            problems.append(f"output changed: {changed}")
    leftovers = [p.name for p in directory.iterdir() if p.name.startswith(".tmp-")]
    if leftovers:
        problems.append(f"temporary files left: {leftovers}")
    return problems


def test_fuzz_the_command_line(tmp_path: Path, models: dict[str, Path]) -> None:
    cases = [int(ONLY)] if ONLY is not None else range(CASES)
    failures = []
    for i in cases:
        directory = tmp_path / f"case{i}"
        directory.mkdir()
        problem = check_case(i, directory, models)
        if problem is not None:
            failures.append(f"case {i}: {problem}")
    if failures:
        pytest.fail(
            f"{len(failures)} of {len(cases)} fuzz cases broke the contract (seed {SEED}; "
            f"rerun one with TORCHLINREG_FUZZ_CASE=N):\n" + "\n".join(failures),
            pytrace=False,
        )


def test_the_contract_checks_can_fail(tmp_path: Path, monkeypatch: Any) -> None:
    """Each broken promise is seen: an internal error, a raw escape on stdout, two
    lines, a changed output, a temporary file left behind."""
    import torchlinreg.cli.app as app

    def boom(_: object) -> int:
        raise RuntimeError("simulated")

    monkeypatch.setitem(app._COMMANDS, "summary", boom)
    code, _, err = run_main(["summary", "m.safetensors"])
    assert contract_problems(code, err, [], tmp_path) == ["exit code 1", "internal error"]
    out = tmp_path / "out.csv"
    out.write_bytes(b"changed")
    (tmp_path / ".tmp-x-out.csv").write_bytes(b"")
    problems = contract_problems(2, "error: a\nb\n", [out], tmp_path, "y ~ \x1b[2J\n")
    assert problems == [
        "raw characters on stdout: ['\\x1b']",
        "2 lines on stderr",
        "output changed: ['out.csv']",
        "temporary files left: ['.tmp-x-out.csv']",
    ]
    out.write_bytes(SENTINEL)
    (tmp_path / ".tmp-x-out.csv").unlink()
    assert contract_problems(2, "torchlinreg fit: error: one line\n", [out], tmp_path) == []
