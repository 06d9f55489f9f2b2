"""Start-up stays light: the CLI's help and `import torchlinreg` load no heavy module."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "torch", "numpy", "pyarrow", "sklearn", "scipy", "pandas", "dask", "distributed",
    "matplotlib", "formulaic", "onnx", "onnxruntime",
)  # fmt: skip

PROBE = """
import contextlib, io, json, sys
import torchlinreg, torchlinreg.cli
for argv in {argvs!r}:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            torchlinreg.cli.main(argv)
        except SystemExit:
            pass
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r})))
"""


@pytest.mark.parametrize(
    "argvs",
    [[], [["--help"]], [["demo", "--help"]], [["fit", "--help"]], [["--version"]]],
    ids=["import", "help", "demo-help", "fit-help", "version"],
)
def test_cli_loads_nothing_heavy(argvs) -> None:
    code = PROBE.format(argvs=argvs, heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_the_probe_would_see_a_heavy_import() -> None:
    # Guards the test above: touching the public API does load torch.
    header = "import torchlinreg, torchlinreg.cli"
    code = PROBE.format(argvs=[], heavy=HEAVY).replace(header, header + "\ntorchlinreg.GDRegressor")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "torch" in json.loads(proc.stdout)
