"""``GDRegressor.fit_chunks``: gradient training on a stream read every epoch, against
the oracle of ``fit`` on the concatenated rows.

Where the two are the same computation they must agree:

- **Full batch.** The gradient of ``Σw·loss(r)/Σw`` is a sum over rows; the stream sums
  each chunk's gradient (taken with the global ``Σw``) where ``fit`` takes one matrix
  product, so each gradient differs by the rounding of a different order of additions:
  relative ~``m·u`` for sums of ``m`` = 600 terms (``u`` = 1.1e-16 in float64), ~1e-13.
  The scales of standardization come from two exact states folded differently (``fit``
  in one block, the stream chunk by chunk), equal to ~1e-15 relative. A stable descent
  is a contraction, so per-step perturbations ``δ`` stay below ``δ/(1 − ρ)``; L-BFGS's
  line search only chooses among the same numbers. Hence ``rtol=1e-9``: four orders
  above the rounding, and many orders below any real difference (a lost chunk, a wrong
  ``Σw``, a step too many are all ≥ 1e-3 here).
- **Mini-batches without shuffling**, and **with shuffling in a buffer holding every
  row** (one permutation of all of them drawn from the same generator state, as ``fit``
  draws it): the same batches with the same values run through the same kernels. On raw
  columns (``standardize=False``: no scales to round through) the coefficients must be
  equal bit for bit; standardized, to the scales' rounding (``rtol=1e-9`` as above).
- **Shuffling in a small buffer** is another order of rows: it must be reproducible from
  ``random_state``, differ for another seed, and converge to the exact least-squares
  solution as in-memory mini-batch training does (``relative_cost_gap`` under the 1e-3
  at which ``GDRegressor`` warns).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from torchlinreg import GDRegressor, InputError, TrainingDivergedError
from torchlinreg.errors import ConvergenceWarning

RNG = np.random.default_rng(3)
N = 600
X = RNG.normal(size=(N, 3)) * [1.0, 10.0, 100.0] + [0.0, 5.0, -3.0]
Y = X @ [1.0, -0.2, 0.03] + 0.5 + 0.1 * RNG.normal(size=N)
Y2 = np.stack([Y, X @ [0.5, 0.1, -0.01] - 1.0 + 0.1 * RNG.normal(size=N)], axis=1)
W = RNG.uniform(0.0, 2.0, size=N)
W[:40] = 0.0  # a run of zero weights: whole mini-batches of no weight are skipped

RTOL = 1e-9  # module docstring


def chunked(X: Any, y: Any, w: Any = None, size: int = 97) -> list[tuple[Any, ...]]:
    """The rows in uneven chunks (the last one shorter)."""
    return [
        (X[i : i + size], y[i : i + size]) + (() if w is None else (w[i : i + size],))
        for i in range(0, len(X), size)
    ]


def both(params: dict[str, Any], y: Any = Y, w: Any = None, **stream: Any) -> tuple[Any, Any]:
    memory = GDRegressor(**params).fit(X, y, w)
    streamed = GDRegressor(**params).fit_chunks(chunked(X, y, w), **stream)
    return memory, streamed


def assert_close(a: GDRegressor, b: GDRegressor, rtol: float = RTOL) -> None:
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=rtol, atol=rtol * np.abs(a.coef_).max())
    np.testing.assert_allclose(b.intercept_, a.intercept_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(b.history_.cost, a.history_.cost, rtol=rtol)
    assert b.n_iter_ == a.n_iter_ and b.history_.status == a.history_.status


FULL_BATCH = {
    "sgd": dict(optimizer="sgd", lr=0.1, epochs=100),
    "sgd-momentum-nesterov-decay": dict(
        optimizer="sgd",
        lr=0.05,
        epochs=80,
        optimizer_options={"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
    ),
    "adam-cosine": dict(optimizer="adam", lr="auto", epochs=60, scheduler="cosine"),
    "lbfgs": dict(optimizer="lbfgs", lr=1, epochs=4),
    "huber-rmsprop": dict(loss="huber", optimizer="rmsprop", lr=0.01, epochs=50),
    "auto-tol": dict(optimizer="sgd", lr="auto", epochs=500, tol=1e-10),
}


@pytest.mark.filterwarnings("ignore::torchlinreg.errors.ConvergenceWarning")
@pytest.mark.parametrize("name", FULL_BATCH)
def test_full_batch_on_a_stream_is_fit_on_all_rows(name: str) -> None:
    params = {**FULL_BATCH[name], "dtype": "float64"}
    memory, streamed = both(params)
    assert_close(memory, streamed)
    assert streamed.lr_ == pytest.approx(memory.lr_, rel=1e-12)


@pytest.mark.filterwarnings("ignore::torchlinreg.errors.ConvergenceWarning")
def test_full_batch_weighted_two_targets_no_intercept() -> None:
    params = dict(lr=0.05, epochs=60, dtype="float64", fit_intercept=False)
    assert_close(*both(params, Y2, W))
    memory, streamed = both({**params, "fit_intercept": True}, Y2, W)
    assert_close(memory, streamed)
    assert streamed.coef_.shape == (2, 3)


@pytest.mark.filterwarnings("ignore::torchlinreg.errors.ConvergenceWarning")
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_mini_batches_are_fit_s_bit_for_bit_on_raw_columns(shuffle: bool, weighted: bool) -> None:
    # With shuffling, a buffer of more rows than the data draws fit's one permutation.
    params = dict(
        lr=1e-5, epochs=5, batch_size=32, shuffle=shuffle, random_state=4,
        standardize=False, compare_exact=False, dtype="float64",
        optimizer_options={"momentum": 0.5},
    )  # fmt: skip
    w = W if weighted else None
    memory, streamed = both(params, Y, w, buffer_rows=N + 1)
    np.testing.assert_array_equal(streamed.coef_, memory.coef_)
    assert streamed.intercept_ == memory.intercept_
    np.testing.assert_allclose(streamed.history_.cost, memory.history_.cost, rtol=1e-14)


@pytest.mark.filterwarnings("ignore::torchlinreg.errors.ConvergenceWarning")
@pytest.mark.parametrize("shuffle", [False, True])
def test_standardized_mini_batches_equal_fit_to_rounding(shuffle: bool) -> None:
    params = dict(
        lr="auto", epochs=8, batch_size=50, shuffle=shuffle, random_state=0,
        scheduler="onecycle", dtype="float64",
    )  # fmt: skip
    memory, streamed = both(params, buffer_rows=N + 1)
    assert_close(memory, streamed)
    # lr="auto" on mini-batches reads the largest row's curvature from one more pass.
    assert streamed.lr_ == pytest.approx(memory.lr_, rel=1e-12)


def test_shuffling_in_a_small_buffer_is_seeded_and_converges() -> None:
    params = dict(
        lr="auto", epochs=60, batch_size=16, random_state=7, scheduler="cosine", dtype="float64"
    )
    chunks = chunked(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        first = GDRegressor(**params).fit_chunks(chunks, buffer_rows=64)
    again = GDRegressor(**params).fit_chunks(chunks, buffer_rows=64)
    np.testing.assert_array_equal(again.coef_, first.coef_)
    other = GDRegressor(**{**params, "random_state": 8}).fit_chunks(chunks, buffer_rows=64)
    assert not np.array_equal(other.coef_, first.coef_)
    exact = np.linalg.lstsq(np.c_[np.ones(N), X], Y, rcond=None)[0]
    assert first.exact_ is not None
    np.testing.assert_allclose(first.exact_.coef, exact[1:], rtol=1e-10)
    assert first.exact_.relative_cost_gap < 1e-3
    memory = GDRegressor(**params).fit(X, Y)
    assert memory.exact_ is not None and memory.exact_.relative_cost_gap < 1e-3


def test_the_default_buffer_trains_and_float32_is_the_default() -> None:
    model = GDRegressor(lr="auto", epochs=30, batch_size=32, random_state=0)
    model.fit_chunks(chunked(X, Y), feature_names=["a", "b", "c"])
    assert model.exact_ is not None and model.exact_.relative_cost_gap < 1e-2
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    assert model.coef_.dtype == np.float32


def test_exact_gap_and_convergence_warning_as_fit() -> None:
    params = dict(lr=1e-3, epochs=3, dtype="float64")
    with pytest.warns(ConvergenceWarning) as caught_memory:
        memory = GDRegressor(**params).fit(X, Y)
    with pytest.warns(ConvergenceWarning) as caught_stream:
        streamed = GDRegressor(**params).fit_chunks(chunked(X, Y))
    assert str(caught_stream[0].message) == str(caught_memory[0].message)
    assert memory.exact_ is not None and streamed.exact_ is not None
    np.testing.assert_allclose(streamed.exact_.coef, memory.exact_.coef, rtol=1e-10)
    assert streamed.exact_.cost_gap == pytest.approx(memory.exact_.cost_gap, rel=1e-9)
    assert streamed.history_.reason == memory.history_.reason


def test_divergence_names_the_same_stable_bound() -> None:
    params = dict(lr=1.5, epochs=50, dtype="float64")
    with pytest.raises(TrainingDivergedError) as in_memory:
        GDRegressor(**params).fit(X, Y)
    with pytest.raises(TrainingDivergedError) as streamed:
        GDRegressor(**params).fit_chunks(chunked(X, Y))
    assert str(streamed.value) == str(in_memory.value)


def test_a_function_returning_fresh_iterators_is_a_stream() -> None:
    parts = chunked(X, Y)
    model = GDRegressor(lr=0.1, epochs=20, dtype="float64")
    model.fit_chunks(lambda: iter(parts))
    np.testing.assert_allclose(
        model.coef_, GDRegressor(lr=0.1, epochs=20, dtype="float64").fit(X, Y).coef_, rtol=RTOL
    )


class Switching:
    """A chunk source whose passes after the ``after``-th read ``then``."""

    def __init__(self, first: list[Any], then: list[Any], after: int) -> None:
        self.first, self.then, self.after, self.calls = first, then, after, 0

    def __call__(self) -> Any:
        self.calls += 1
        return iter(self.first if self.calls <= self.after else self.then)


def test_data_changed_between_epochs_is_refused() -> None:
    parts = chunked(X, Y)
    source = Switching(parts, chunked(X, Y + 1.0), after=3)
    with pytest.raises(InputError, match="the data changed between passes"):
        GDRegressor(lr=0.1, epochs=10).fit_chunks(source)
    assert source.calls == 4  # the first pass, epochs 0 and 1, and epoch 2's refused
    # A chunk lost after the first pass, on mini-batches.
    source = Switching(parts, parts[:-1], after=1)
    with pytest.raises(InputError, match="the first pass read 600 rows"):
        GDRegressor(lr=0.1, epochs=10, batch_size=32).fit_chunks(source)
    assert source.calls == 2
    # Another width: refused at the first chunk, before any step on it.
    source = Switching(parts, [(x[:, :2], y) for x, y in parts], after=1)
    with pytest.raises(InputError, match="the data changed between passes"):
        GDRegressor(epochs=10).fit_chunks(source)


def test_refusals() -> None:
    parts = chunked(X, Y)
    with pytest.raises(InputError, match="one-shot iterator"):
        GDRegressor().fit_chunks(p for p in parts)
    with pytest.raises(InputError, match="early_stopping=True holds rows out"):
        GDRegressor(tol=1e-3, early_stopping=True).fit_chunks(parts)
    with pytest.raises(InputError, match="runs in one process"):
        GDRegressor().fit_chunks(parts, distributed=True)
    with pytest.raises(InputError, match="shuffle buffer .10 rows. must hold at least one batch"):
        GDRegressor(batch_size=32, epochs=1).fit_chunks(parts, buffer_rows=10)
    with pytest.raises(InputError, match="buffer_rows"):
        GDRegressor().fit_chunks(parts, buffer_rows=0)
    with pytest.raises(InputError, match="empty"):
        GDRegressor().fit_chunks([])
    with pytest.raises(InputError, match="chunk 1 has 2 features"):
        GDRegressor().fit_chunks([(X[:50], Y[:50]), (X[50:, :2], Y[50:])])
    with pytest.raises(InputError, match="2 feature names for 3 columns"):
        GDRegressor().fit_chunks(parts, feature_names=["a", "b"])
    with pytest.raises(InputError, match="checkpoint_every needs a path"):
        GDRegressor(checkpoint_every=2).fit_chunks(parts)


@pytest.mark.filterwarnings("ignore::torchlinreg.errors.ConvergenceWarning")
def test_resume_from_a_checkpoint_is_bit_identical(tmp_path: Path) -> None:
    params = dict(
        optimizer="sgd", optimizer_options={"momentum": 0.9}, lr=0.01, epochs=12,
        batch_size=16, scheduler="step", scheduler_options={"step_size": 3, "gamma": 0.5},
        random_state=1,
    )  # fmt: skip
    parts = chunked(X, Y)
    path = tmp_path / "run.ckpt"
    written = GDRegressor(checkpoint_every=5, **params).fit_chunks(
        parts, buffer_rows=64, checkpoint=str(path)
    )
    # The last checkpoint is epoch 9's: 3 epochs remain.
    resumed = GDRegressor(**params).fit_chunks(parts, buffer_rows=64, resume=str(path))
    np.testing.assert_array_equal(resumed.coef_, written.coef_)
    assert resumed.intercept_ == written.intercept_
    assert resumed.history_.cost == written.history_.cost
    plain = GDRegressor(**params).fit_chunks(parts, buffer_rows=64)
    np.testing.assert_array_equal(plain.coef_, written.coef_)
    with pytest.raises(InputError, match="other data"):
        GDRegressor(**params).fit_chunks(chunked(X, Y + 1), buffer_rows=64, resume=str(path))
    with pytest.raises(InputError, match="buffer_rows"):
        GDRegressor(**params).fit_chunks(parts, buffer_rows=128, resume=str(path))


def test_cli_streams_the_file_as_stdin_fits_in_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    from torchlinreg.cli import main

    path = tmp_path / "d.csv"
    pacsv.write_csv(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": Y}), path)
    args = ["--target", "y", "--method", "gd", "--lr", "auto", "--epochs", "40",
            "--batch-size", "1000", "--dtype", "float64", "--json"]  # fmt: skip
    assert main(["fit", str(path), *args]) == 0
    streamed = json.loads(capsys.readouterr().out)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    assert main(["fit", "-", *args]) == 0
    memory = json.loads(capsys.readouterr().out)
    for name in ("intercept", "a", "b", "c"):
        got, want = streamed["coefficients"]["y"][name], memory["coefficients"]["y"][name]
        assert got == pytest.approx(want, rel=RTOL, abs=RTOL)
    library = GDRegressor(lr="auto", epochs=40, dtype="float64").fit(X, Y)
    assert streamed["coefficients"]["y"]["a"] == pytest.approx(library.coef_[0], rel=1e-6)
