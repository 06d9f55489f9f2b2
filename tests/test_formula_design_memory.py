"""A Design writes every entry of the array it builds into: the array comes
uninitialized (formula/design.py, ``fresh_array``: memory from torch's allocator, not
zeroed), so a column left unwritten would hold whatever the memory held; and its row
blocks, written by several threads on a large table, are each written whole.

The check poisons that memory: with every fresh array filled with NaN first, the
columns must still be formulaic's, bit for bit (the oracle of
tests/test_formula_design.py), on every formula a Design builds, dummies and their
reference levels, products, contrasts and several targets included; once as a small
table is built (one thread, blocks of 4,096 rows) and once as a large one is (blocks
shared among threads), with blocks of 64 rows so that the 1,200 rows make 19 of them,
the last one short.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("formulaic")

import torch  # noqa: E402

from torchlinreg.formula import design  # noqa: E402
from torchlinreg.formula.spec import FormulaSpec  # noqa: E402
from torchlinreg.stats import block_threads  # noqa: E402

from .test_formula_design import FAST, formulaic_columns, row, table  # noqa: E402


@pytest.fixture
def poisoned(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """Every fresh design array starts as NaN; the arrays handed out, listed."""
    handed: list[np.ndarray] = []
    fresh = design.fresh_array

    def nan_filled(n: int, p: int) -> np.ndarray:
        out = fresh(n, p)
        out.fill(np.nan)
        handed.append(out)
        return out

    monkeypatch.setattr(design, "fresh_array", nan_filled)
    return handed


@pytest.fixture(params=["one thread", "threads"])
def threads(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The build as of a small table, or as of a large one; the thread counts used."""
    used: list[int] = []
    if request.param == "threads":
        monkeypatch.setattr(design, "THREAD_CELLS", 0)
        monkeypatch.setattr(design, "BLOCK_ROWS", 64)
    share = block_threads.share_blocks

    def counted(blocks, states, step):  # type: ignore[no-untyped-def]
        used.append(len(states))
        share(blocks, states, step)

    monkeypatch.setattr(block_threads, "share_blocks", counted)
    return used


@pytest.mark.parametrize("formula", FAST)
def test_every_entry_is_written(
    formula: str, poisoned: list[np.ndarray], threads: list[int]
) -> None:
    df = table()
    spec = FormulaSpec.learn(formula, df)
    for side in ("rhs", "lhs"):
        expected = formulaic_columns(formula, df, side)[1]
        np.testing.assert_array_equal(spec.matrix(df, side, where=row), expected)
    assert spec._designs["rhs"] is not None and poisoned  # the Design built them
    several = design.THREAD_CELLS == 0 and block_threads.thread_count(torch.device("cpu"), 2) > 1
    assert threads and all(t > 1 if several else t == 1 for t in threads)


def test_a_fresh_array_is_a_writable_c_ordered_float64_array() -> None:
    X = design.fresh_array(1000, 7)
    assert X.shape == (1000, 7) and X.dtype == np.float64
    assert X.flags.c_contiguous and X.flags.writeable
    X[:] = 1.5  # its own memory, not shared with another array
    assert design.fresh_array(3, 2).shape == (3, 2) and float(X.sum()) == 1.5 * 7000
