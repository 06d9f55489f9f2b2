"""Exact least squares against numpy/scipy/scikit-learn as oracles."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torchlinreg import (
    InputError,
    LeastSquaresState,
    LinearRegression,
    RankDeficientWarning,
    Ridge,
)

from .conftest import lstsq_fit


def make(rng, n=300, p=5, k=None, offset=3.0):
    X = rng.normal(size=(n, p)) * rng.uniform(0.1, 10, size=p) + offset
    w = rng.normal(size=(p,) if k is None else (p, k))
    y = X @ w + rng.normal(size=(n,) if k is None else (n, k))
    return X, y


def centred_lstsq(X, y, w=None):
    """Oracle for the minimum-norm solution with an unpenalised intercept: lstsq on the
    (weighted-)centred data, intercept from the means (scikit-learn's definition)."""
    w = np.ones(len(X)) if w is None else np.asarray(w, float)
    xm = (w[:, None] * X).sum(0) / w.sum()
    ym = (w.reshape(-1, *[1] * (y.ndim - 1)) * y).sum(0) / w.sum()
    s = np.sqrt(w)
    coef = np.linalg.lstsq((X - xm) * s[:, None], ((y - ym).T * s).T, rcond=None)[0]
    return coef.T, ym - xm @ coef


@pytest.mark.parametrize("n,p", [(1, 1), (2, 1), (10, 3), (300, 5), (50, 40), (2000, 1)])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_matches_lstsq_over_shapes(rng, n, p, fit_intercept) -> None:
    if fit_intercept and n <= p:
        pytest.skip("needs more rows than parameters for a unique answer")
    X, y = make(rng, n, p)
    model = LinearRegression(fit_intercept=fit_intercept).fit(X, y)
    coef, intercept = lstsq_fit(X, y, fit_intercept=fit_intercept)
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-10, atol=1e-12)
    assert model.intercept_ == pytest.approx(intercept, rel=1e-10, abs=1e-12)


def test_weights_and_multi_output_match_weighted_lstsq(rng) -> None:
    X, y = make(rng, k=3)
    w = rng.uniform(0, 4, size=len(X))
    w[:10] = 0.0
    model = LinearRegression().fit(X, y, sample_weight=w)
    coef, intercept = lstsq_fit(X, y, sample_weight=w)
    assert model.coef_.shape == (3, 5) and model.intercept_.shape == (3,)
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-10)
    np.testing.assert_allclose(model.intercept_, intercept, rtol=1e-10)


def test_integer_weights_equal_repeated_rows(rng) -> None:
    X, y = make(rng, n=40)
    w = rng.integers(0, 4, size=40)
    weighted = LinearRegression().fit(X, y, sample_weight=w)
    repeated = LinearRegression().fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-11)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_dtypes_are_accumulated_in_float64(rng, dtype) -> None:
    X, y = make(rng)
    X = (X * 10).astype(dtype)
    model = LinearRegression().fit(X, y)
    coef, _ = lstsq_fit(X.astype(np.float64), y)
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-10)
    assert model.coef_.dtype == np.float64


def test_float32_tensor_input_gives_float64_coefficients(rng) -> None:
    X, y = make(rng)
    X32 = torch.tensor(X, dtype=torch.float32)
    model = LinearRegression().fit(X32, torch.tensor(y, dtype=torch.float32))
    coef, _ = lstsq_fit(X32.double().numpy(), np.float32(y).astype(np.float64))
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-9)
    assert isinstance(model.predict(X32), torch.Tensor)


def test_exactly_collinear_columns_give_min_norm_and_name_them(rng) -> None:
    import pandas as pd

    X, y = make(rng, p=4)
    X = np.column_stack([X, X[:, 0] + 2 * X[:, 1]])  # x4 = x0 + 2·x1
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d", "e"])
    with pytest.warns(RankDeficientWarning, match=r"rank 5 of 6 .*dependent: a, b, e") as rec:
        model = LinearRegression().fit(frame, y)
    named = str(rec[0].message).split("dependent: ")[1].split(".")[0]
    assert named == "a, b, e"  # c and d are not involved
    coef, intercept = centred_lstsq(X, y)
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-8, atol=1e-10)
    assert model.intercept_ == pytest.approx(intercept, rel=1e-9)
    assert model.rank_ == 5


def test_more_parameters_than_rows_gives_min_norm(rng) -> None:
    X, y = make(rng, n=6, p=10)
    with pytest.warns(RankDeficientWarning, match="rank 6 of 11"):
        model = LinearRegression().fit(X, y)
    coef, intercept = centred_lstsq(X, y)
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.predict(X), y, atol=1e-8)  # interpolates


def test_constant_column_is_named(rng) -> None:
    X, y = make(rng, p=3)
    X[:, 1] = 7.0
    with pytest.warns(RankDeficientWarning, match="constant: x1"):
        LinearRegression().fit(X, y)


def test_svd_solver_equals_qr_on_full_rank(rng) -> None:
    X, y = make(rng)
    a = LinearRegression(solver="qr").fit(X, y)
    b = LinearRegression(solver="svd").fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-11)


def test_ill_conditioned_design_is_refined_and_matches_extended_precision(rng) -> None:
    # Nearly collinear columns (κ ~ 1e9) and a large residual: mpmath-free oracle via
    # numpy's longdouble normal equations would not do; compare against the exact
    # rational solution on a small problem instead.
    from fractions import Fraction

    n = 30
    t = np.linspace(0, 1, n)
    X = np.column_stack([t, t + 1e-8 * rng.normal(size=n), t**2])
    y = 1 + X @ np.array([1.0, 1.0, 1.0]) + 0.5 * rng.normal(size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LinearRegression().fit(X, y)
    A = [[Fraction(1)] + [Fraction(v) for v in row] for row in X.tolist()]
    b = [Fraction(v) for v in y.tolist()]
    m = len(A[0])
    G = [[sum(A[i][r] * A[i][c] for i in range(n)) for c in range(m)] for r in range(m)]
    h = [sum(A[i][r] * b[i] for i in range(n)) for r in range(m)]
    for c in range(m):  # exact Gaussian elimination
        for r in range(c + 1, m):
            f = G[r][c] / G[c][c]
            G[r] = [G[r][j] - f * G[c][j] for j in range(m)]
            h[r] -= f * h[c]
    exact = [Fraction(0)] * m
    for r in reversed(range(m)):
        exact[r] = (h[r] - sum(G[r][j] * exact[j] for j in range(r + 1, m))) / G[r][r]
    ours = [model.intercept_, *model.coef_]
    rel = max(abs(float((Fraction(o) - e) / e)) for o, e in zip(ours, exact, strict=True))
    assert model.refined_ and rel < 1e-12


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    cuts=st.lists(st.integers(1, 119), max_size=8),
    weighted=st.booleans(),
)
def test_streaming_equals_in_memory_for_any_chunking(seed, cuts, weighted) -> None:
    rng = np.random.default_rng(seed)
    X, y = make(rng, n=120, p=4, k=2)
    w = rng.uniform(0.5, 2, size=120) if weighted else None
    bounds = [0, *sorted(set(cuts)), 120]
    chunks = [
        (X[a:b], y[a:b]) if w is None else (X[a:b], y[a:b], w[a:b])
        for a, b in zip(bounds, bounds[1:], strict=False)
        if b > a
    ]
    whole = LinearRegression(refine=False).fit(X, y, sample_weight=w)
    streamed = LinearRegression(refine=False).fit_chunks(chunks)
    partial = LinearRegression()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in chunks:
            partial.partial_fit(*c)
    for other in (streamed, partial):
        np.testing.assert_allclose(other.coef_, whole.coef_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(other.intercept_, whole.intercept_, rtol=1e-10, atol=1e-12)


def test_merge_order_does_not_matter(rng) -> None:
    X, y = make(rng, n=400, p=6)
    parts = np.array_split(np.arange(400), 7)
    states = [LeastSquaresState(6).update(X[i], y[i]) for i in parts]
    forward = states[0].copy()
    for s in states[1:]:
        forward.merge(s)
    backward = states[-1].copy()
    for s in reversed(states[:-1]):
        backward.merge(s)
    tree = states[0].copy().merge(states[1]).merge(states[2].copy().merge(states[3]))
    tree.merge(states[4].copy().merge(states[5].copy().merge(states[6])))
    whole = LeastSquaresState(6).update(X, y)
    from torchlinreg.solvers.solve import solve_ols

    expected = solve_ols(whole).coef
    for s in (forward, backward, tree):
        assert s.n_samples == 400
        torch.testing.assert_close(solve_ols(s).coef, expected, rtol=1e-11, atol=0)
    with pytest.raises(InputError, match="cannot merge states of different problems"):
        forward.merge(LeastSquaresState(5))


def test_state_is_small_and_saves_without_pickle(rng, tmp_path) -> None:
    X, y = make(rng, n=5000, p=8)
    state = LeastSquaresState(8).update(X, y)
    assert tuple(state.R.shape) == (10, 10)  # independent of the number of rows
    path = tmp_path / "state.safetensors"
    state.save(str(path))
    back = LeastSquaresState.load(str(path))
    torch.testing.assert_close(back.R, state.R, rtol=0, atol=0)
    assert (back.n_samples, back.weight_sum) == (5000, 5000.0)
    # A restored state keeps folding: equal to the state of all the rows.
    back.update(X[:100], y[:100])
    whole = LeastSquaresState(8).update(np.r_[X, X[:100]], np.r_[y, y[:100]])
    torch.testing.assert_close(back.R.abs(), whole.R.abs(), rtol=1e-9, atol=1e-9)
    path.write_bytes(b"not a state")
    with pytest.raises(InputError, match="could not be read as a state file"):
        LeastSquaresState.load(str(path))


def test_state_cost_of_any_parameters_equals_the_data_cost(rng) -> None:
    X, y = make(rng, n=200, p=3)
    state = LeastSquaresState(3).update(X, y)
    theta = torch.tensor(rng.normal(size=(4, 1)))
    direct = ((y[:, None] - np.c_[np.ones(200), X] @ theta.numpy()) ** 2).sum()
    assert float(state.rss_of(theta)[0]) == pytest.approx(direct, rel=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.1, 10.0, [1.0, 100.0]])
def test_ridge_matches_scikit_learn(rng, alpha) -> None:
    from sklearn.linear_model import Ridge as SkRidge

    X, y = make(rng, k=2)
    w = rng.uniform(0.5, 2.0, size=len(X))
    ours = Ridge(alpha=alpha).fit(X, y, sample_weight=w)
    ref = SkRidge(alpha=np.asarray(alpha), solver="svd").fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-9)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-9)


def test_ridge_without_intercept_matches_closed_form(rng) -> None:
    X, y = make(rng)
    ours = Ridge(alpha=3.0, fit_intercept=False).fit(X, y)
    expected = np.linalg.solve(X.T @ X + 3.0 * np.eye(5), X.T @ y)
    np.testing.assert_allclose(ours.coef_, expected, rtol=1e-10)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda X, y: LinearRegression().fit(np.where(X > 4, np.nan, X), y),
            r"NaN at X\[\d+, \d+\]",
        ),
        (lambda X, y: LinearRegression().fit(X, np.r_[y[:-1], np.inf]), r"infinity at y\[299\]"),
        (lambda X, y: LinearRegression().fit(X, y, sample_weight=-np.ones(300)), "is negative"),
        (
            lambda X, y: LinearRegression().fit(X, y, sample_weight=np.zeros(300)),
            "zero for every row",
        ),
        (lambda X, y: LinearRegression().fit(X, y[:-1]), "X has 300 samples but y has 299"),
        (lambda X, y: LinearRegression().fit(X[:0], y[:0]), r"0 sample\(s\)"),
        (lambda X, y: Ridge(alpha=-1).fit(X, y), "alpha must be finite and >= 0"),
        (lambda X, y: Ridge(alpha=[1, 2, 3]).fit(X, y), "one per target"),
        (lambda X, y: LinearRegression(solver="lu").fit(X, y), "solver must be one of"),
        (lambda X, y: LinearRegression().fit_chunks([]), "stream was empty"),
        (lambda X, y: LinearRegression().fit_chunks([X]), "tuple"),
    ],
)
def test_bad_input_is_named_with_the_fix(rng, call, match) -> None:
    X, y = make(rng)
    with pytest.raises(InputError, match=match):
        call(X, y)


def test_nan_in_a_later_chunk_names_the_row_in_the_whole_stream(rng) -> None:
    X, y = make(rng, n=100)
    X[73, 2] = np.nan
    chunks = [(X[i : i + 25], y[i : i + 25]) for i in range(0, 100, 25)]
    with pytest.raises(InputError, match=r"X\[73, 2\]"):
        LinearRegression().fit_chunks(chunks)


def test_partial_fit_checks_feature_count(rng) -> None:
    X, y = make(rng)
    model = LinearRegression().partial_fit(X, y)
    with pytest.raises(InputError, match="X has 4 features, but LinearRegression is expecting 5"):
        model.partial_fit(X[:, :4], y)


def test_generator_stream_is_read_once(rng) -> None:
    X, y = make(rng, n=100)
    reads = []

    def gen():
        for i in range(0, 100, 10):
            reads.append(i)
            yield X[i : i + 10], y[i : i + 10]

    model = LinearRegression(refine=True).fit_chunks(gen())
    assert len(reads) == 10 and not model.refined_
    reads.clear()
    model = LinearRegression(refine=True).fit_chunks(gen)  # a factory: two passes
    assert len(reads) > 10 and model.refined_


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_matches_cpu(rng) -> None:
    X, y = make(rng, n=5000, p=20, k=2)
    cpu = LinearRegression().fit(X, y)
    gpu = LinearRegression().fit(torch.tensor(X, device="cuda"), torch.tensor(y, device="cuda"))
    np.testing.assert_allclose(gpu.coef_, cpu.coef_, rtol=1e-10)
    assert gpu.state_.R.device.type == "cuda"
    Xb = X.copy()
    Xb[:, 1] = Xb[:, 0] * 2
    with pytest.warns(RankDeficientWarning):
        LinearRegression(device="cuda").fit(Xb, y)


def test_large_well_conditioned_data_take_the_normal_equations(rng) -> None:
    X, y = make(rng, n=40000, p=6, k=2)
    w = rng.uniform(0.2, 3.0, size=len(X))
    for weights in (None, w):
        fast = LinearRegression().fit(X, y, sample_weight=weights)
        qr = LinearRegression(solver="qr").fit(X, y, sample_weight=weights)
        assert fast.solver_used_ == "cholesky" and qr.solver_used_ == "qr"
        coef, intercept = lstsq_fit(X, y, sample_weight=weights)
        ours = np.c_[fast.intercept_, fast.coef_]
        ref = np.c_[intercept, coef]
        assert np.abs(ours - ref).max() <= 1e-10 * np.abs(ref).max()  # normwise
        # The residual block (the Gram's own where its cancellation is within 1e-11 of
        # SSR, else recomputed): each column within 1e-10 of its norm √SSRⱼ.
        ref_block = qr.state_.R_residual.abs()
        scale = torch.linalg.vector_norm(ref_block, dim=0)
        assert bool(((fast.state_.R_residual.abs() - ref_block).abs() <= 1e-10 * scale).all())
    fast32 = LinearRegression().fit(X.astype(np.float32), y)
    coef, _ = lstsq_fit(X.astype(np.float32).astype(np.float64), y)
    np.testing.assert_allclose(fast32.coef_[0], coef[0], rtol=1e-10)
    assert fast32.solver_used_ == "cholesky"


def test_large_ill_conditioned_data_fall_back_to_qr_and_refine(rng) -> None:
    n = 40000
    t = rng.uniform(0, 1, size=n)
    X = np.column_stack([t, t + 1e-7 * rng.normal(size=n), rng.normal(size=n)])
    y = X @ np.array([1.0, -1.0, 0.5]) + 3 + rng.normal(size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LinearRegression().fit(X, y)
    assert model.solver_used_ == "qr" and model.refined_
    coef, _ = lstsq_fit(X, y)
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-6)  # lstsq itself loses digits


def test_nan_in_large_data_is_still_named(rng) -> None:
    X, y = make(rng, n=40000, p=4)
    X[31234, 3] = np.nan
    with pytest.raises(InputError, match=r"X\[31234, 3\]"):
        LinearRegression().fit(X, y)
