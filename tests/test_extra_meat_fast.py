"""The fast paths of the HAC / two-way cluster / CRV3 pass (stats/scores.py and the
modules it feeds) against their plain references:

* integer labels looked up in a table get the very ids the sorting path gives (ids fix
  the order of the sums, so equal ids mean equal numbers), across blocks, mixed with
  labels too large for the table, and two-way intersections looked up in an id-pair
  table the ids of their keys;
* the pass's residuals, formed in one product over the shifted rows, are the
  least-squares residuals to ~1e-15 of their size where x carries a large offset (the
  unshifted form y − b − xβ loses ε·|x||β| ≈ 1e-10 of them there);
* small blocks (labels first seen in many blocks, tables grown) and zero weights (rows
  dropped from the column-a-row layout) give the numbers of one block / dropped rows.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torchlinreg as tl
from torchlinreg.data.chunks import validate_chunk
from torchlinreg.stats import cluster2, crv3, scores
from torchlinreg.stats.cov_types import LabelPair


def _sorted_ids(blocks):
    """The reference: every block through the sorting path."""
    ids = scores.LabelIds()
    return [ids._by_distinct(np.asarray(b)) for b in blocks], ids.ids


def test_label_table_gives_the_sorting_paths_ids():
    rng = np.random.default_rng(0)
    big = scores._TABLE_LABELS + 5  # outside the table: sorted, then met in it again
    blocks = [
        rng.integers(0, 3000, 400),
        np.array([big, 7, big + 1, 7]),
        rng.integers(0, 6000, 400).astype(np.uint32),
        np.array([], dtype=np.int64),
        rng.integers(-3, 50, 100),  # negative labels: sorting path
        rng.integers(0, 9000, 400),
    ]
    expected, expected_map = _sorted_ids(blocks)
    ids = scores.LabelIds()
    for block, want in zip(blocks, expected, strict=True):
        np.testing.assert_array_equal(ids.map(block), want)
    assert ids.ids == expected_map


@pytest.mark.parametrize("table", [1 << 21, 40])  # the pair table, and too small for it
def test_pair_table_gives_the_ids_of_the_keys(monkeypatch, table):
    monkeypatch.setattr(cluster2, "_PAIR_TABLE", table)
    rng = np.random.default_rng(1)
    pairs, reference = cluster2._PairIds(), scores.LabelIds()
    for size, ga, gb in [(300, 5, 4), (300, 12, 9), (0, 1, 1), (500, 30, 20)]:
        a, b = rng.integers(0, ga, size), rng.integers(0, gb, size)
        want = reference._by_distinct(a * (1 << 31) + b)
        np.testing.assert_array_equal(pairs.map_pairs(a, b), want)
    assert pairs.ids == reference.ids


def test_residuals_exact_under_a_large_offset():
    """x = 10⁶ + N(0, 1): the least-squares residuals in float64 from the centred
    problem (x − mean is exact for values within a factor 2, and [1, x − mean] is
    well-conditioned) are good to ~1e-15 of |e| ~ 1, the bar for the pass."""
    rng = np.random.default_rng(2)
    n = 2000
    X = 1e6 + rng.normal(size=(n, 2))
    y = X @ [2.0, -3.0] + 5.0 + rng.normal(size=n)
    m = tl.LinearRegression().fit(X, y)
    Xc, yc = X - X.mean(0), y - y.mean()
    A = np.c_[np.ones(n), Xc]
    e_ref = yc - A @ np.linalg.lstsq(A, yc, rcond=None)[0]
    state = m.state_
    fp = scores.new_fingerprint(state)
    chunk = validate_chunk(X, y)
    blocks = scores.score_blocks([(chunk, None)], state, m._theta(), 1.0, fp, 300)
    E = np.concatenate([b.E[:, 0].numpy().copy() for b in blocks])
    assert np.abs(E - e_ref).max() < 1e-12 * np.abs(e_ref).max()


def _meats(X, y, groups, rows_per_block, w=None):
    m = tl.LinearRegression().fit(X, y, sample_weight=w)
    state, theta = m.state_, m._theta()
    chunk = validate_chunk(X, y, w)
    p = state.n_params

    def blocks():
        fp = scores.new_fingerprint(state)
        return scores.score_blocks([(chunk, groups)], state, theta, 1.0, fp, rows_per_block)

    z = {"dtype": torch.float64}
    if isinstance(groups, LabelPair):
        return cluster2.two_way_meats(blocks(), 1, p, **z)
    return crv3.cluster_sums(blocks(), 1, p, **z)


def test_small_blocks_give_the_numbers_of_one_block():
    """Blocks of 7 rows: labels first seen over many blocks, the tables and sums grown
    block after block; the sums are the same numbers added in another order (1e-13)."""
    rng = np.random.default_rng(3)
    n = 400
    X, y = rng.normal(size=(n, 3)), rng.normal(size=n)
    a, b = rng.integers(0, 40, n), rng.integers(0, 9, n) * 1000  # b: sparse labels
    (meats, counts), (meats7, counts7) = (_meats(X, y, LabelPair(a, b), rows) for rows in (n, 7))
    assert counts == counts7
    for one, many in zip(meats, meats7, strict=True):
        torch.testing.assert_close(many, one, rtol=1e-13, atol=0)
    whole, small = (_meats(X, y, a, rows) for rows in (n, 7))
    # cluster ids differ (first seen by block), so compare by label
    order = [small[2].index(label) for label in whole[2]]
    torch.testing.assert_close(small[0][order], whole[0], rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(small[1][order], whole[1], rtol=1e-13, atol=1e-15)


def test_zero_weight_rows_are_dropped_rows():
    """Rows of zero weight are no observations: two-way and CRV3 covariances equal the
    fit without them (their labels included: a cluster only they hold is not counted)."""
    rng = np.random.default_rng(4)
    n = 300
    X = rng.normal(size=(n, 2))
    a, b = rng.integers(0, 12, n), rng.integers(0, 7, n)
    y = X @ [1.0, 2.0] + rng.normal(size=12)[a] + rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, n)
    w[::5] = 0.0
    w[a == 11] = 0.0  # a cluster of zero-weight rows only
    keep = w > 0
    for cov_type, groups in [("cluster", (a, b)), ("CRV3", a)]:
        kept = (a[keep], b[keep]) if cov_type == "cluster" else a[keep]
        full = tl.LinearRegression().fit(X, y, sample_weight=w)
        s = full.summary(cov_type=cov_type, X=X, y=y, sample_weight=w, groups=groups)
        dropped = tl.LinearRegression().fit(X[keep], y[keep], sample_weight=w[keep])
        ref = dropped.summary(
            cov_type=cov_type, X=X[keep], y=y[keep], sample_weight=w[keep], groups=kept
        )
        np.testing.assert_allclose(s.cov, ref.cov, rtol=1e-10, atol=0)


@pytest.mark.parametrize("cov_type", ["HAC", "cluster", "CRV3"])
def test_no_intercept_and_two_targets(cov_type):
    """The pass's constant column c (no z part without an intercept) and its k > 1
    residual rows: without an intercept equal to statsmodels' OLS on X alone (1e-8, as
    tests/test_hac.py: well-conditioned sandwiches, both sides good to ~1e-13); each of
    two targets equal to its own single-target fit (the same sums: 1e-12)."""
    import statsmodels.api as sm

    rng = np.random.default_rng(5)
    n = 200
    a, b = rng.integers(0, 10, n), rng.integers(0, 6, n)
    X = rng.normal(size=(n, 3)) + 3.0
    Y = X @ rng.normal(size=(3, 2)) + rng.normal(size=(n, 2)) + rng.normal(size=(10, 2))[a]
    groups = (a, b) if cov_type == "cluster" else a
    kw = {"lags": 3} if cov_type == "HAC" else {"groups": groups}
    sm_kw = (
        {"maxlags": 3}
        if cov_type == "HAC"
        else {"groups": np.c_[a, b] if cov_type == "cluster" else a}
    )
    sm_type = "cluster-crv3" if cov_type == "CRV3" else cov_type
    m = tl.LinearRegression(fit_intercept=False).fit(X, Y[:, 0])
    s = m.summary(cov_type=cov_type, X=X, y=Y[:, 0], **kw)
    ref = sm.OLS(Y[:, 0], X).fit(cov_type=sm_type, cov_kwds=sm_kw)
    V = np.asarray(ref.cov_params())
    np.testing.assert_allclose(s.cov, V, rtol=0, atol=1e-8 * np.abs(V).max())
    both = tl.LinearRegression().fit(X, Y).summary(cov_type=cov_type, X=X, y=Y, **kw)
    for j in range(2):
        one = tl.LinearRegression().fit(X, Y[:, j]).summary(cov_type=cov_type, X=X, y=Y[:, j], **kw)
        np.testing.assert_allclose(both[j].cov, one.cov, rtol=1e-12, atol=0)
