"""The narrow designs' ways of the in-memory meat (stats/meat_memory.py) against the
other ways of the same sums.

z = a·R_s⁻¹ is a product beside the thin product up to ``_PRODUCT_MAX_COLUMNS`` columns
and a triangular solve beyond. Forcing the solve on a small design must give the same
covariance: the sums are the same, and z by a product with R_s⁻¹ and by a solve differ
by ε·κ (κ ≈ 3 here), a few 1e-16 after the sums, so 1e-13 leaves two orders of margin;
each stays within the issue's 1e-12 of the general pass (stats/meat.py). The rows are
scaled in place where they are the pass's own buffer, never the caller's X."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchlinreg import LinearRegression
from torchlinreg.stats import block_threads
from torchlinreg.stats import meat_memory as fast

from .test_meat_memory import covariances, general_only, panel, rel, took_fast_path


@pytest.fixture
def blocks_on_two_threads(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(fast, "_BLOCK_VALUES", 1)
    monkeypatch.setattr(fast, "thread_count", lambda device, blocks: min(2, blocks))


def both_ways(monkeypatch, name, value, cov_type, weighted):  # type: ignore[no-untyped-def]
    """The covariances (two targets) with the module's constant ``name`` as it is and
    at ``value`` (the other way), each through the fast path, and the general pass's."""
    X, Y, w, firm, _ = panel()
    sw = w if weighted else None
    model = LinearRegression().fit(X, Y, sample_weight=sw)
    taken = took_fast_path(monkeypatch)
    default = covariances(model, cov_type, X, Y, sw, firm)
    monkeypatch.setattr(fast, name, value)
    other = covariances(model, cov_type, X, Y, sw, firm)
    assert taken == [True, True]
    general_only(monkeypatch)
    return default, other, covariances(model, cov_type, X, Y, sw, firm)


@pytest.mark.parametrize(
    ("cov_type", "weighted"),
    [("HC2", False), ("HC3", False), ("HC3", True), ("HC1", True), ("cluster", True)],
)
def test_z_by_product_equals_z_by_solve(
    cov_type, weighted, blocks_on_two_threads, monkeypatch
) -> None:
    """z rows (leverages, or weights) as a product with R_s⁻¹ and as a solve with R_s."""
    default, solved, general = both_ways(monkeypatch, "_PRODUCT_MAX_COLUMNS", 0, cov_type, weighted)
    for a, b, c in zip(default, solved, general, strict=True):
        assert rel(a, b) <= 1e-13
        assert rel(a, c) <= 1e-12
        assert rel(b, c) <= 1e-12


@pytest.mark.parametrize("panels", [2, 7])
@pytest.mark.parametrize(("cov_type", "weighted"), [("HC1", False), ("HC3", True)])
def test_meat_by_panels_equals_the_whole_product(
    cov_type, weighted, panels, blocks_on_two_threads, monkeypatch
) -> None:
    """The meat's upper block triangle by column panels (wide designs), copied down at
    the end, against one product of all the columns (p' = 7 here: one panel by
    default), for both targets."""
    monkeypatch.setattr(fast, "_PANEL", 1)
    monkeypatch.setattr(fast, "_PANELS", panels)
    assert len(fast._panels(7)) == panels
    by_panels, whole, general = both_ways(monkeypatch, "_PANELS", 1, cov_type, weighted)
    for a, b, c in zip(by_panels, whole, general, strict=True):
        assert rel(a, b) <= 1e-13
        assert rel(a, c) <= 1e-12


@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("cov_type", ["HC0", "HC3", "cluster"])
def test_the_callers_rows_are_never_scaled(cov_type, intercept, blocks_on_two_threads) -> None:
    """The meat scales its rows in place where they are its own buffer; without an
    intercept the design rows are the caller's X itself, which must come back as it
    went in (fit-time and two-pass, one target and two)."""
    X, Y, _, firm, _ = panel()
    X_before, Y_before = X.copy(), Y.copy()
    kwargs = {"groups": firm} if cov_type == "cluster" else {}
    for y in (Y[:, 0], Y):
        model = LinearRegression(fit_intercept=intercept, cov_type=cov_type).fit(X, y, **kwargs)
        model.summary()
        LinearRegression(fit_intercept=intercept).fit(X, y).summary(
            cov_type=cov_type, X=X, y=y, **kwargs
        )
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(Y, Y_before)


def test_probe_apart_still_finds_other_data(monkeypatch) -> None:
    """The probe formed by its own product still sees rows that are not the fitted
    ones: passed as if they were (no fingerprint), the fast path declines them (its
    probe finds S far from I) and the general pass takes over."""
    from torchlinreg.models._summary import robust_data
    from torchlinreg.stats.meat import robust_meat

    X, Y, _, _, _ = panel()
    model = LinearRegression().fit(X, Y[:, 0])
    other = X.copy()
    other[::7] *= 1.5
    taken = took_fast_path(monkeypatch)
    for rows, expected in ((X, True), (other, False)):
        items = list(robust_data(model.state_, "HC1", rows, Y[:, 0], None, None))
        robust_meat(items, model.state_, model._theta(), "HC1", fitted_rows=True)
        assert taken[-1] is expected


def test_leverages_of_one_flag_the_meat_and_count_nothing() -> None:
    """A block with a row of leverage 1 marks the meat and adds 0 to the largest
    leverage (its h are clamped to 0); a block without adds its largest h."""
    sums = fast._Pass(torch.zeros(1, 2, 10), torch.zeros(0, 1, 2), None, None, None)  # type: ignore[arg-type]
    Z = torch.tensor([[0.6, 0.0], [0.0, 0.5]], dtype=torch.float64)
    factor = fast._leverage_factor(sums, Z, "HC3")
    assert sums.h_max == pytest.approx(0.36, rel=1e-15) and not sums.full_leverage
    assert torch.allclose(factor[:, 0], 1 / (1 - torch.tensor([0.36, 0.25], dtype=torch.float64)))
    fast._leverage_factor(sums, torch.tensor([[1.0, 0.0], [0.1, 0.0]], dtype=torch.float64), "HC2")
    assert sums.full_leverage and sums.h_max == pytest.approx(0.36, rel=1e-15)
    empty = fast._leverage_factor(sums, torch.zeros(0, 2, dtype=torch.float64), "HC3")
    assert empty.shape == (0, 1)


def test_pool_threads_run_torch_on_one_thread() -> None:
    """Each pool thread runs its blocks on one torch thread (MKL's count is kept per
    thread, see block_threads), and the caller's count is back afterwards."""
    before = torch.get_num_threads()
    seen: list[int] = []
    block_threads.share_blocks(
        list(range(8)), [0, 1], lambda state, block: seen.append(torch.get_num_threads())
    )
    assert seen == [1] * 8
    assert torch.get_num_threads() == before


def test_narrow_fit_time_covariances_equal_two_pass() -> None:
    """1e4 × 20 with an intercept (the narrow Gram fit, no shift): every fit-time
    covariance equals the two-pass summary's, one way through the same pass."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(10_000, 20)) + rng.uniform(-2, 2, 20)
    y = X @ rng.normal(size=20) + rng.normal(size=10_000) * (1 + np.abs(X[:, 0]))
    groups = np.arange(10_000) % 37
    for cov_type in ("HC0", "HC1", "HC2", "HC3", "cluster"):
        kwargs = {"groups": groups} if cov_type == "cluster" else {}
        fitted = LinearRegression(cov_type=cov_type).fit(X, y, **kwargs)
        two_pass = LinearRegression().fit(X, y).summary(cov_type=cov_type, X=X, y=y, **kwargs)
        assert rel(np.asarray(fitted.summary().cov), np.asarray(two_pass.cov)) <= 1e-12
