"""The in-memory meat (stats/meat_memory.py) against the general pass of stats/meat.py.

Both sum the same per-row terms over the same rows; they differ in the order of the
sums (blocks, threads), in z rows by a triangular solve against a product with R⁻¹ (ε·κ
apart, κ ≈ 3 here) and, over the design rows, in a p'³ change of coordinates. On a few
thousand rows these orders leave ~1e-15 relative; 1e-12 is the issue's bound for the
fit-time covariance and far above that. The general pass is reached by making
``memory_meat`` decline (it returns None where it does not apply)."""

from __future__ import annotations

import numpy as np
import pytest

from torchlinreg import LinearRegression
from torchlinreg.stats import block_threads
from torchlinreg.stats import meat_memory as fast

ROBUST = ["HC0", "HC1", "HC2", "HC3", "cluster"]


def panel(n: int = 3000, p: int = 6, seed: int = 3):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 4, p) + rng.uniform(-3, 3, p)
    firm, year = rng.integers(0, 150, n), rng.integers(0, 12, n)
    noise = rng.normal(size=(n, 2)) * (1 + np.abs(X[:, :1]))
    Y = X @ rng.normal(size=(p, 2)) + rng.normal(size=150)[firm][:, None] + noise
    w = rng.uniform(0.3, 3, n)
    return X, Y, w, firm, year


@pytest.fixture
def small_blocks(monkeypatch):  # type: ignore[no-untyped-def]
    """Blocks of 256 rows, so that a few thousand rows make many blocks, shared by two
    threads (whatever torch's thread count here)."""
    monkeypatch.setattr(fast, "_BLOCK_VALUES", 1)
    monkeypatch.setattr(fast, "thread_count", lambda device, blocks: min(2, blocks))


def general_only(monkeypatch) -> list[bool]:  # type: ignore[no-untyped-def]
    """Make the in-memory path decline; the returned list records that it was asked."""
    asked: list[bool] = []

    def decline(*args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(True)

    monkeypatch.setattr(fast, "memory_meat", decline)
    return asked


def covariances(model, cov_type, X, y, w, g) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    groups = g if cov_type == "cluster" else None
    s = model.summary(cov_type=cov_type, X=X, y=y, sample_weight=w, groups=groups)
    return [np.asarray(one.cov) for one in (s if isinstance(s, list) else [s])]


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def took_fast_path(monkeypatch) -> list[bool]:  # type: ignore[no-untyped-def]
    """Record whether each call of memory_meat gave a meat (not None)."""
    taken: list[bool] = []
    real = fast.memory_meat

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        meat = real(*args, **kwargs)
        taken.append(meat is not None)
        return meat

    monkeypatch.setattr(fast, "memory_meat", spy)
    return taken


@pytest.mark.parametrize("cov_type", ROBUST)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("intercept", [True, False])
def test_fast_path_equals_the_general_pass(
    cov_type, weighted, intercept, small_blocks, monkeypatch
) -> None:
    X, Y, w, firm, _ = panel()
    sw = w if weighted else None
    model = LinearRegression(fit_intercept=intercept).fit(X, Y, sample_weight=sw)
    taken = took_fast_path(monkeypatch)
    mine = covariances(model, cov_type, X, Y, sw, firm)
    assert taken == [True]
    general_only(monkeypatch)
    theirs = covariances(model, cov_type, X, Y, sw, firm)
    for a, b in zip(mine, theirs, strict=True):
        assert rel(a, b) <= 1e-12


@pytest.mark.parametrize("cov_type", ["HC1", "HC3", "cluster"])
def test_threads_and_blocks_do_not_change_the_meat(cov_type, monkeypatch) -> None:
    """One thread over whole-data blocks and two threads over 256-row blocks: the same
    sums in other orders."""
    X, Y, w, firm, _ = panel()
    model = LinearRegression().fit(X, Y)
    monkeypatch.setattr(fast, "thread_count", lambda device, blocks: 1)
    one = covariances(model, cov_type, X, Y, None, firm)
    monkeypatch.setattr(fast, "_BLOCK_VALUES", 1)
    monkeypatch.setattr(fast, "thread_count", lambda device, blocks: min(2, blocks))
    two = covariances(model, cov_type, X, Y, None, firm)
    for a, b in zip(one, two, strict=True):
        assert rel(a, b) <= 1e-13


def test_cluster_labels_of_any_kind_give_the_same_meat(small_blocks) -> None:
    """Integer labels in a short range (ids by a lookup table), integers spread far
    apart and negative (sorted and mapped), strings: the same partition, the same
    covariance (the groups' order does not enter Σ s_g s_gᵀ)."""
    X, Y, w, firm, _ = panel()
    model = LinearRegression().fit(X, Y[:, 0])
    kinds = [firm, firm * 10**12 - 5 * 10**13, firm.astype(np.uint16), firm.astype(str)]
    covs = [covariances(model, "cluster", X, Y[:, 0], None, g)[0] for g in kinds]
    for c in covs[1:]:
        assert rel(c, covs[0]) <= 1e-14


def test_zero_weight_rows_name_no_cluster(small_blocks, monkeypatch) -> None:
    """A cluster whose rows all weigh 0 is not counted (its rows are no observations):
    the fast path's meat has one group fewer, and its covariance equals the general
    pass's."""
    from torchlinreg.models._summary import robust_data
    from torchlinreg.stats.meat import robust_meat

    X, Y, w, firm, _ = panel()
    w = w.copy()
    w[firm == 7] = 0.0
    model = LinearRegression().fit(X, Y[:, 0], sample_weight=w)
    items = list(robust_data(model.state_, "cluster", X, Y[:, 0], w, firm))
    meat = robust_meat(items, model.state_, model._theta(), "cluster")
    assert meat.n_groups == len(np.unique(firm)) - 1
    with_zeros = covariances(model, "cluster", X, Y[:, 0], w, firm)[0]
    general_only(monkeypatch)
    assert rel(with_zeros, covariances(model, "cluster", X, Y[:, 0], w, firm)[0]) <= 1e-12


@pytest.mark.parametrize("cov_type", ["HC1", "HC3", "cluster"])
def test_absorbed_fit_time_covariance_takes_the_fast_path(cov_type, monkeypatch) -> None:
    """The fixed-effects fit's covariance over the demeaned rows (no intercept) is made
    by the in-memory path, and equals the general pass's."""
    X, Y, w, firm, year = panel()
    groups = firm if cov_type == "cluster" else None
    absorb = {"firm": firm, "year": year}
    taken = took_fast_path(monkeypatch)
    mine = LinearRegression(cov_type=cov_type).fit(X, Y[:, 0], groups=groups, absorb=absorb)
    assert taken == [True]
    asked = general_only(monkeypatch)
    theirs = LinearRegression(cov_type=cov_type).fit(X, Y[:, 0], groups=groups, absorb=absorb)
    assert asked == [True]
    assert rel(np.asarray(mine.summary().cov), np.asarray(theirs.summary().cov)) <= 1e-12


def test_share_blocks_runs_every_block_once_on_its_states() -> None:
    seen: list[tuple[int, int]] = []
    states = [0, 1]
    block_threads.share_blocks(list(range(50)), states, lambda s, b: seen.append((s, b)))
    assert sorted(b for _, b in seen) == list(range(50))
    assert {s for s, _ in seen} <= set(states)
