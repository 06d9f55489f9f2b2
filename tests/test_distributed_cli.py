"""The command line under torchrun: two gloo ranks, each reading its share of the data.

Oracle: the same command in one process. The model files must hold the same
coefficients to 1e-12 relative and the same statistics (fit, every summary number) to
1e-10: the ranks' states merged are another order of the same Householder QR of a
well-conditioned design (κ < 10), so they differ from one fold by rounding only (the
library's tests/test_distributed.py argues the bounds). The metadata must be equal but
for ``ranks``. Predictions are each row's x·w + b from the same model file: equal to
1e-12 relative and in the input's order; evaluate's sums are taken in another order,
equal to 1e-12.

One real ``python -m torch.distributed.run -m torchlinreg`` launch covers joining and
leaving the group; one torchrun launch of a driver (which joins the group once, as a
program embedding the command line does) runs the other commands, sharing the cost of
starting processes. The faults launch the two ranks directly with torchrun's
environment, without its agent (which would stop the other rank itself): a rank stalled
on a named pipe makes the other give up after --timeout; a rank killed is noticed at once.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from torchlinreg.cli import main
from torchlinreg.persistence import read_model

from .ranks import free_port

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ROOT = Path(__file__).resolve().parents[1]
N = 800
NAN_ROW = 700  # in rank 1's share of the directory (rows 480-799)
START_S = 120  # a launch: two processes importing torch and pyarrow on a busy CI machine


def _table(rng: np.random.Generator) -> Any:
    X = rng.normal(size=(N, 3)) + [0.0, 5.0, -2.0]
    color = rng.choice(["blue", "green", "red"], N)
    g = rng.integers(0, 25, N)
    y = X @ [1.0, -2.0, 0.5] + 3.0 + (color == "red") * 0.7 + rng.normal(size=N)
    w = rng.uniform(0.5, 2.0, N)
    return pa.table({"id": np.arange(N), "x0": X[:, 0], "x1": X[:, 1], "x2": X[:, 2],
                     "color": color, "g": g, "w": w, "y": y})  # fmt: skip


def _directory(table: Any, path: Path) -> None:
    """Three files of 120, 40 and 640 rows; row groups 60, 40 and 160: the ranks get
    rows 0-479 and 480-799 (a row group goes where its middle row falls)."""
    path.mkdir()
    for i, (low, high, group) in enumerate([(0, 120, 60), (120, 160, 40), (160, 800, 160)]):
        pq.write_table(table.slice(low, high - low), path / f"part-{i}.parquet",
                       row_group_size=group)  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import pyarrow.csv as pacsv

    base = tmp_path_factory.mktemp("data")
    table = _table(np.random.default_rng(9))
    _directory(table, base / "dir")
    pq.write_table(table, base / "single.parquet", row_group_size=300)  # ranks: 300, 500
    pq.write_table(table, base / "one_group.parquet")  # rank 1 gets no rows
    pacsv.write_csv(table, base / "data.csv")
    x1 = table.column("x1").to_numpy().copy()
    x1[NAN_ROW] = np.nan
    _directory(table.set_column(2, "x1", pa.array(x1)), base / "bad")
    return base


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-port", str(free_port()), *args]  # fmt: skip
    return subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=START_S)  # fmt: skip


def _in_process(argv: list[str], out: Path, name: str) -> dict[str, Any]:
    """A command in this process (the oracle), as the driver runs it on each rank."""
    with (
        open(out / f"{name}.out", "w") as o,
        open(out / f"{name}.err", "w") as e,
        contextlib.redirect_stdout(o),
        contextlib.redirect_stderr(e),
    ):
        code = main(argv)
    return {"rc": code, "out": (out / f"{name}.out").read_text(),
            "err": (out / f"{name}.err").read_text()}  # fmt: skip


DRIVER = """
import contextlib, datetime, json, os, sys
import torch.distributed as dist
from torchlinreg.cli import main
dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
out, rank = sys.argv[2], os.environ["RANK"]
for name, argv in json.loads(open(sys.argv[1]).read()).items():
    with open(f"{out}/{name}.{rank}.out", "w") as o, open(f"{out}/{name}.{rank}.err", "w") as e:
        with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
            code = main(argv)
    with open(f"{out}/{name}.{rank}.rc", "w") as f:
        f.write(str(code))
dist.destroy_process_group()
"""


def _commands(d: Path, out: Path) -> dict[str, list[str]]:
    model = str(out / "single.safetensors")
    return {
        "single": ["fit", f"{d}/single.parquet", "--target", "y", "--exclude", "id",
                   "--one-hot", "color", "--cov-type", "HC1", "--json", "-o", model],
        "one_group": ["fit", f"{d}/one_group.parquet", "--target", "y", "--exclude", "id,color",
                      "--json", "-o", str(out / "one_group.safetensors")],
        "csv": ["fit", f"{d}/data.csv", "--target", "y", "--one-hot", "color", "--exclude", "id",
                "--weights", "w", "--summary", "--json", "-o", str(out / "csv.safetensors")],
        "glob": ["fit", f"{d}/dir/part-*.parquet", "--target", "y", "--exclude", "id,color",
                 "--json"],
        "predict": ["predict", model, f"{d}/dir", "--keep", "id",
                    "-o", str(out / "predicted.parquet")],
        "predict_stdout": ["predict", model, f"{d}/dir", "--keep", "id"],
        "evaluate": ["evaluate", model, f"{d}/dir", "--json"],
        "bad": ["fit", f"{d}/bad", "--target", "y", "--exclude", "id,color",
                "-o", str(out / "bad.safetensors")],
        "bad_predict": ["predict", model, f"{d}/bad", "-o", str(out / "bad.csv")],
        "gd": ["fit", f"{d}/data.csv", "--target", "y", "--features", "x0", "--method", "gd",
               "--epochs", "5"],
        "summary": ["summary", model],
    }  # fmt: skip


@pytest.fixture(scope="module")
def runs(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every command of :func:`_commands` on two ranks (one torchrun launch) and in one
    process; ``runs[name]`` is ``(ranks, one)``: each rank's and the oracle's result."""
    two, one = tmp_path_factory.mktemp("two"), tmp_path_factory.mktemp("one")
    (two / "commands.json").write_text(json.dumps(_commands(data, two)))
    (two / "driver.py").write_text(DRIVER)
    proc = _torchrun(str(two / "driver.py"), str(two / "commands.json"), str(two), cwd=two)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = {}
    for name, argv in _commands(data, one).items():
        ranks = [
            {"rc": int((two / f"{name}.{r}.rc").read_text()),
             "out": (two / f"{name}.{r}.out").read_text(),
             "err": (two / f"{name}.{r}.err").read_text()}
            for r in (0, 1)
        ]  # fmt: skip
        out[name] = (ranks, _in_process(argv, one, name))
    out["dirs"] = (two, one)
    return out


def _close(a: Any, b: Any, rel: float, where: str = "") -> None:
    """Equal structures; numbers to ``rel`` relative (of the larger magnitude)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _close(a[k], b[k], rel, f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, rel, f"{where}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool) and isinstance(b, (int, float)):
        if math.isnan(a):
            assert math.isnan(b), where
        else:
            assert abs(a - b) <= rel * max(abs(a), abs(b), 1e-300), (where, a, b)
    else:
        assert a == b, (where, a, b)


def _same_models(distributed: Path, single: Path) -> None:
    """Coefficients to 1e-12; every statistic to 1e-10; the rest of the metadata equal,
    but ``ranks`` (2 in the distributed model only)."""
    a, b = read_model(str(distributed)), read_model(str(single))
    for name in ("coef", "intercept"):
        np.testing.assert_allclose(a.arrays[name], b.arrays[name], rtol=1e-12, atol=0)
    info, other = dict(a.meta["info"]), dict(b.meta["info"])
    assert info.pop("ranks") == 2 and "ranks" not in other
    # The solver's diagnostic κ₂ of the design after power-of-two column scaling and a
    # shift the states choose from the data: another merge order may choose otherwise
    # (seen: 1.74140 vs 1.74118). It is not a statistic; its size is what it tells.
    _close(info.pop("condition_number"), other.pop("condition_number"), 1e-2)
    _close(info, other, 1e-10, "info")
    assert a.design == b.design
    assert a.meta["feature_names"] == b.meta["feature_names"]


def _report(result: dict[str, Any]) -> dict[str, Any]:
    report = json.loads(result["out"])
    report.pop("seconds")
    report.pop("output")
    return report


def _succeeded(ranks: list[dict[str, Any]]) -> None:
    """Both ranks exit 0; rank 1 prints nothing at all."""
    assert [r["rc"] for r in ranks] == [0, 0], ranks
    assert ranks[1]["out"] == "" and ranks[1]["err"] == ""


# -- the real launch ------------------------------------------------------------------


def test_torchrun_fit_of_a_directory_equals_one_process(data: Path, tmp_path: Path) -> None:
    args = ["fit", str(data / "dir"), "--target", "y", "--weights", "w", "--one-hot", "color",
            "--exclude", "id", "--cov-type", "cluster", "--cluster", "g", "--json", "--timeout",
            "60"]  # fmt: skip
    proc = _torchrun("-m", "torchlinreg", *args, "-o", str(tmp_path / "two.safetensors"),
                     cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = _in_process([*args, "-o", str(tmp_path / "one.safetensors")], tmp_path, "one")
    assert one["rc"] == 0
    # Exactly one JSON document on stdout: rank 1 printed nothing.
    _close(_report({"out": proc.stdout}), _report(one), 1e-10)
    _same_models(tmp_path / "two.safetensors", tmp_path / "one.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".safetensors") == [
        "one.safetensors", "two.safetensors"]  # fmt: skip
    assert "Traceback" not in proc.stderr.split("torch.distributed.run")[0]


# -- the other commands (one driver launch) ------------------------------------------


@pytest.mark.parametrize("name", ["single", "one_group", "csv"])
def test_fits_equal_one_process(runs: dict[str, Any], name: str) -> None:
    """A Parquet file's row groups split 300/500, one row group (rank 1 reads nothing),
    a CSV file (rank 0 reads it all); HC1 and nonrobust summaries, weights, one-hot."""
    ranks, one = runs[name]
    _succeeded(ranks)
    _close(_report(ranks[0]), _report(one), 1e-10)
    two_dir, one_dir = runs["dirs"]
    _same_models(two_dir / f"{name}.safetensors", one_dir / f"{name}.safetensors")


def test_a_glob_is_the_directory(runs: dict[str, Any]) -> None:
    ranks, one = runs["glob"]
    _succeeded(ranks)
    _close(_report(ranks[0]), _report(one), 1e-10)
    assert _report(ranks[0])["n"] == N


def test_predict_writes_every_row_in_order_once(runs: dict[str, Any]) -> None:
    two_dir, one_dir = runs["dirs"]
    for name in ("predict", "predict_stdout"):
        ranks, one = runs[name]
        _succeeded(ranks)
        assert ranks[0]["out"].startswith("id,predicted_y") or name == "predict"
    a = pq.read_table(two_dir / "predicted.parquet")
    b = pq.read_table(one_dir / "predicted.parquet")
    assert a.column("id").to_pylist() == list(range(N)) == b.column("id").to_pylist()
    np.testing.assert_allclose(a.column("predicted_y").to_numpy(),
                               b.column("predicted_y").to_numpy(), rtol=1e-12)  # fmt: skip
    ranks, one = runs["predict_stdout"]
    lines_two, lines_one = ranks[0]["out"].splitlines(), one["out"].splitlines()
    assert lines_two[0] == lines_one[0] == "id,predicted_y" and len(lines_two) == N + 1
    assert [row.split(",")[0] for row in lines_two[1:]] == [str(i) for i in range(N)]
    np.testing.assert_allclose([float(r.split(",")[1]) for r in lines_two[1:]],
                               [float(r.split(",")[1]) for r in lines_one[1:]], rtol=1e-12)  # fmt: skip
    two_dir, one_dir = runs["dirs"]
    said = runs["predict"][1]["out"].replace(str(one_dir), str(two_dir))
    assert (
        runs["predict"][0][0]["out"]
        == said
        == f"{N} predictions written to {two_dir}/predicted.parquet\n"
    )


def test_evaluate_sums_over_the_ranks(runs: dict[str, Any]) -> None:
    ranks, one = runs["evaluate"]
    _succeeded(ranks)
    _close(json.loads(ranks[0]["out"]), json.loads(one["out"]), 1e-12)


def test_bad_data_on_rank_1_stops_every_rank_with_its_message(runs: dict[str, Any]) -> None:
    two_dir, _ = runs["dirs"]
    for name, command in (("bad", "fit"), ("bad_predict", "predict")):
        ranks, one = runs[name]
        assert [r["rc"] for r in ranks] == [2, 2] and one["rc"] == 2
        assert ranks[0]["out"] == ranks[1]["out"] == ""
        # One line per rank, the same on both: rank 1's message, its row numbered in the
        # whole directory, as one process gives it.
        message = one["err"].strip().split(": error: ", 1)[1]
        assert f"row {NAN_ROW + 1}, column 'x1'" in message
        for r in ranks:
            assert r["err"].strip() == f"torchlinreg {command}: error: rank 1 of 2: {message}"
    assert not (two_dir / "bad.safetensors").exists() and not (two_dir / "bad.csv").exists()
    assert not [p for p in two_dir.iterdir() if p.name.startswith(".tmp-")]


def test_gd_is_refused_under_torchrun(runs: dict[str, Any]) -> None:
    ranks, one = runs["gd"]
    assert [r["rc"] for r in ranks] == [2, 2] and one["rc"] == 0
    assert all("--method gd does not run under torchrun" in r["err"] for r in ranks)


def test_one_process_commands_run_on_rank_0(runs: dict[str, Any]) -> None:
    ranks, one = runs["summary"]
    _succeeded(ranks)
    assert ranks[0]["out"] == one["out"].replace(str(runs["dirs"][1]), str(runs["dirs"][0]))


# -- faults: two ranks launched with torchrun's environment, no agent ---------------------


def _ranks(args: list[str], cwd: Path) -> list[subprocess.Popen[str]]:
    env = {**_env(), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port())}  # fmt: skip
    return [
        subprocess.Popen(
            [sys.executable, "-m", "torchlinreg", *args],
            cwd=cwd,
            text=True,
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for r in (0, 1)
    ]


def _blocked_on_pipe(rank_0: subprocess.Popen[str]) -> None:
    """Wait until rank 0 is blocked opening the pipe (Linux names the wait): it has then
    joined the group, and so has rank 1, which waits for rank 0 to open its share."""
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline and rank_0.poll() is None:
        for task in Path(f"/proc/{rank_0.pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                if (task / "wchan").read_text() == "wait_for_partner":
                    time.sleep(0.5)  # rank 1 reaches its wait
                    return
        time.sleep(0.05)
    raise AssertionError(f"rank 0 never opened the pipe: {rank_0.communicate()}")


@pytest.mark.skipif(not Path("/proc/self/wchan").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("fault", ["stalled", "killed"])
def test_a_lost_rank_stops_the_other_with_one_line(tmp_path: Path, fault: str) -> None:
    """Rank 0 reads a CSV file that is a named pipe nobody writes: it stalls. Stalled,
    rank 1 gives up after --timeout (3 s); killed, rank 1 sees it at once (its
    connections close), long before the timeout (60 s). Either way: exit 3, one line,
    no model and no temporary file."""
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    timeout = "3" if fault == "stalled" else "60"
    procs = _ranks(["fit", str(fifo), "--target", "y", "--timeout", timeout,
                    "-o", str(tmp_path / "m.safetensors")], tmp_path)  # fmt: skip
    try:
        _blocked_on_pipe(procs[0])
        started = time.monotonic()
        if fault == "killed":
            procs[0].send_signal(signal.SIGKILL)
        out, err = procs[1].communicate(timeout=START_S)
        waited = time.monotonic() - started
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
    assert procs[1].returncode == 3, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("torchlinreg fit: error: rank 1 of 2: "), err
    assert "lost contact with the other ranks" in lines[0]
    if fault == "stalled":
        assert "did not answer within --timeout 3 s" in lines[0]
        assert 2 <= waited < 30  # measured from a moment after rank 1 began to wait
    else:
        assert waited < 20  # not the 60 s timeout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]


# -- pieces ------------------------------------------------------------------------


def test_shares_are_contiguous_blocks_in_rank_order() -> None:
    from torchlinreg.data.shards import split

    assert split([60, 60, 40, 160, 160, 160, 160], 2) == [(0, 5), (5, 7)]
    assert split([800], 2) == [(0, 1), (1, 1)]  # one row group: rank 1 gets none
    assert split([300, 300, 200], 2) == [(0, 1), (1, 3)]
    assert split([], 3) == [(0, 0)] * 3
    for sizes in ([5, 0, 7, 1, 1, 9], [1] * 10, [0, 0]):
        blocks = split(sizes, 4)
        assert blocks[0][0] == 0 and blocks[-1][1] == len(sizes)
        assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:], strict=False))


def test_a_share_reads_its_rows_numbered_in_the_whole(data: Path) -> None:
    from torchlinreg.data.sources import open_source

    whole = open_source(str(data / "dir"))
    ids, starts = [], []
    for rank in (0, 1):
        share = whole.share(rank, 2)  # type: ignore[attr-defined]
        for batch in share.batches(["id"]):
            starts.append(batch.start)
            ids.extend(batch.table.column("id").to_pylist())
            assert batch.table.column("id")[0].as_py() == batch.start
    assert ids == list(range(N)) and 480 in starts


def test_one_process_joins_no_group(monkeypatch: pytest.MonkeyPatch) -> None:
    from torchlinreg.distributed.launch import launched, process_group

    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert not launched()
    with process_group("cpu", 1.0) as group:
        assert group is None
    monkeypatch.setenv("WORLD_SIZE", "1")  # torchrun --nproc-per-node 1
    assert not launched()
