"""Mini-batches shuffled in a bounded buffer (training/shuffle_buffer.py).

Oracle: the rows themselves — each row carries its index in its first column, so a
batch says exactly which rows it holds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchlinreg import InputError
from torchlinreg.data.chunks import Chunk
from torchlinreg.training.shuffle_buffer import shuffled_batches


def stream(n: int, chunk_rows: int, weighted: bool = False) -> list[Chunk]:
    index = torch.arange(n, dtype=torch.float64)
    X = torch.stack([index, -index], dim=1)
    Y = (2 * index).reshape(n, 1)
    w = index + 1 if weighted else None
    return [
        Chunk(X[s : s + chunk_rows], Y[s : s + chunk_rows],
              None if w is None else w[s : s + chunk_rows], True)
        for s in range(0, n, chunk_rows)
    ]  # fmt: skip


def rows_of(batches: list[Chunk]) -> list[int]:
    return [int(v) for b in batches for v in b.X[:, 0]]


@pytest.mark.parametrize(("n", "chunk_rows", "batch", "buffer"), [
    (1000, 64, 32, 100), (1000, 1000, 7, 7), (999, 250, 10, 300), (5, 2, 4, 4),
])  # fmt: skip
def test_every_row_once_per_epoch_in_batches_of_the_size_asked(n, chunk_rows, batch, buffer):
    generator = torch.Generator().manual_seed(3)
    batches = list(shuffled_batches(stream(n, chunk_rows), batch, buffer, generator))
    assert sorted(rows_of(batches)) == list(range(n))
    sizes = [b.X.shape[0] for b in batches]
    assert all(s == batch for s in sizes[:-1]) and 0 < sizes[-1] <= batch
    for b in batches:  # x, y and w stay paired
        np.testing.assert_array_equal(b.Y[:, 0].numpy(), 2 * b.X[:, 0].numpy())


def test_rows_move_within_the_buffer_only_and_the_order_is_random_there() -> None:
    generator = torch.Generator().manual_seed(0)
    batches = list(shuffled_batches(stream(1000, 50, weighted=True), 25, 200, generator))
    order = rows_of(batches)
    assert order != sorted(order)
    # The first fill holds rows 0..199: the first 8 batches come from it alone.
    assert set(order[:200]) == set(range(200))
    for b in batches:
        np.testing.assert_array_equal(b.sample_weight.numpy(), b.X[:, 0].numpy() + 1)


def test_the_same_generator_state_gives_the_same_batches() -> None:
    data = stream(500, 40)
    first = rows_of(list(shuffled_batches(data, 16, 64, torch.Generator().manual_seed(9))))
    again = rows_of(list(shuffled_batches(data, 16, 64, torch.Generator().manual_seed(9))))
    other = rows_of(list(shuffled_batches(data, 16, 64, torch.Generator().manual_seed(10))))
    assert first == again and first != other
    # A generator restored mid-run continues the same sequence (resume after a checkpoint).
    generator = torch.Generator().manual_seed(9)
    list(shuffled_batches(data, 16, 64, generator))
    state = generator.get_state()
    second_epoch = rows_of(list(shuffled_batches(data, 16, 64, generator)))
    restored = torch.Generator()
    restored.set_state(state)
    assert rows_of(list(shuffled_batches(data, 16, 64, restored))) == second_epoch


def test_without_a_generator_the_stream_order_is_kept() -> None:
    assert rows_of(list(shuffled_batches(stream(100, 30), 8, 16, None))) == list(range(100))


def test_a_buffer_smaller_than_a_batch_is_refused() -> None:
    with pytest.raises(InputError, match="must hold at least one batch"):
        list(shuffled_batches(stream(10, 5), 8, 4, None))
    with pytest.raises(InputError, match="batch_size must be at least 1"):
        list(shuffled_batches(stream(10, 5), 0, 4, None))
