"""Hard corners of the exact solver, each against an independent oracle: scale
extremes, constant and duplicated columns of very different sizes, large offsets,
zero-weight chunks, unusual array layouts, and malformed saved states."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from torchlinreg import (
    AccuracyWarning,
    InputError,
    LeastSquaresState,
    LinearRegression,
    RankDeficientWarning,
    Ridge,
)

from .conftest import lstsq_fit


def quiet(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.mark.parametrize("shape", [(3, 1), (50000, 2)])
def test_only_constant_features_give_zero_slopes(rng, shape) -> None:
    X = np.full(shape, 1 / 3 if shape[0] == 3 else 7.0)
    y = rng.normal(size=shape[0])
    with pytest.warns(RankDeficientWarning, match="constant"):
        model = LinearRegression().fit(X, y)
    # scikit-learn's answer: no slope, the mean as intercept.
    np.testing.assert_array_equal(model.coef_, np.zeros(shape[1]))
    assert model.intercept_ == pytest.approx(y.mean(), rel=1e-12)


def test_minimum_norm_is_in_the_data_units_whatever_the_column_scales(rng) -> None:
    a, b = rng.normal(size=30), rng.normal(size=30)
    y = 2 * a + 3 * b
    X = np.c_[1e8 * a, 1e8 * a, 1e-8 * b]
    with pytest.warns(RankDeficientWarning, match="dependent: x0, x1"):
        model = LinearRegression(fit_intercept=False).fit(X, y)
    # The exact minimum-norm solution: the duplicated pair shares 2e-8 equally.
    np.testing.assert_allclose(model.coef_, [1e-8, 1e-8, 3e8], rtol=1e-9)


@pytest.mark.parametrize(
    ("x_scale", "y_scale"),
    # Powers of two (≈ 1e-169, 1e200, 1e300, 1e-200): scaling by them is exact, so the
    # answers must scale exactly and the column-scaled condition number not change.
    [([2.0**-560, 1.0], 1.0), ([2.0**665, 1.0], 1.0), ([1.0, 1.0], 2.0**996),
     ([2.0**-664, 2.0**-664], 2.0**-664)],
)  # fmt: skip
def test_extreme_magnitudes_scale_exactly(rng, x_scale, y_scale) -> None:
    X = rng.normal(size=(100, 2))
    y = X @ [2.0, 3.0] + 0.5 + 0.01 * rng.normal(size=100)
    base = LinearRegression().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no false conditioning or rank warnings
        model = LinearRegression().fit(X * x_scale, y * y_scale)
    np.testing.assert_allclose(model.coef_, base.coef_ / np.array(x_scale) * y_scale, rtol=1e-12)
    assert model.intercept_ == pytest.approx(base.intercept_ * y_scale, rel=1e-12)
    assert model.condition_number_ == pytest.approx(base.condition_number_, rel=1e-9)


def test_tiny_magnitudes_on_the_normal_equations_path(rng) -> None:
    X = rng.normal(size=(40000, 3))
    y = X @ [1.0, -2.0, 0.5] + rng.normal(size=40000)
    base = LinearRegression().fit(X, y)
    tiny = LinearRegression().fit(X * 1e-160, y * 1e-160)
    np.testing.assert_allclose(tiny.coef_, base.coef_, rtol=1e-11)


def centred_oracle(X, y, w=None, alpha=0.0):  # type: ignore[no-untyped-def]
    """scikit-learn's way: centre (exactly representable here), then solve."""
    from sklearn.linear_model import LinearRegression as SkLR
    from sklearn.linear_model import Ridge as SkRidge

    est = SkRidge(alpha=alpha, solver="svd") if alpha else SkLR()
    return est.fit(X, y, sample_weight=w)


def test_a_large_mean_of_y_costs_no_digits_on_any_path(rng) -> None:
    n = 40000
    X = rng.normal(size=(n, 5)) + 3
    y = 1e8 + X @ np.full(5, 1e-3) + rng.normal(size=n)
    ref = centred_oracle(X, y)
    fits = {
        "auto": LinearRegression().fit(X, y),
        "qr": LinearRegression(solver="qr").fit(X, y),
        "chunks": LinearRegression().fit_chunks([(X[i : i + 7000], y[i : i + 7000]) for i in range(0, n, 7000)]),
        "partial": LinearRegression().partial_fit(X[:20000], y[:20000]).partial_fit(X[20000:], y[20000:]),
    }  # fmt: skip
    for name, model in fits.items():
        np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-9, err_msg=name)
        assert model.intercept_ == pytest.approx(ref.intercept_, rel=1e-14), name
    ridge = Ridge(alpha=1.0).fit(X, y)
    np.testing.assert_allclose(ridge.coef_, centred_oracle(X, y, alpha=1.0).coef_, rtol=1e-9)


def test_ridge_with_alpha_zero_is_least_squares_including_rank_loss(rng) -> None:
    X = rng.normal(size=(40, 3))
    Xd = np.c_[X, X[:, 0]]
    y = rng.normal(size=(40, 2))
    with pytest.warns(RankDeficientWarning, match="dependent"):
        ridge = Ridge(alpha=0.0).fit(Xd, y)
    ols = quiet(LinearRegression().fit, Xd, y)
    np.testing.assert_allclose(ridge.coef_, ols.coef_, rtol=1e-12)
    mixed = quiet(Ridge(alpha=[0.0, 2.0]).fit, Xd, y)
    np.testing.assert_allclose(mixed.coef_[0], ols.coef_[0], rtol=1e-12)
    from sklearn.linear_model import Ridge as SkRidge

    np.testing.assert_allclose(
        mixed.coef_[1], SkRidge(alpha=2.0).fit(Xd, y[:, 1]).coef_, rtol=1e-10
    )


def test_zero_weight_chunks_are_fine_in_a_stream(rng) -> None:
    X = rng.normal(size=(120, 3))
    y = X @ [1.0, 2.0, 3.0] + rng.normal(size=120)
    w = rng.uniform(0.5, 2, size=120)
    w[100:110] = 0.0
    chunks = [(X[a:b], y[a:b], w[a:b]) for a, b in ((0, 100), (100, 110), (110, 120))]
    whole = LinearRegression().fit(X, y, sample_weight=w)
    streamed = LinearRegression().fit_chunks(chunks)
    partial = LinearRegression()
    for c in chunks:
        quiet(partial.partial_fit, *c)
    for model in (streamed, partial):
        np.testing.assert_allclose(model.coef_, whole.coef_, rtol=1e-11)
    with pytest.raises(InputError, match="zero for every row seen"):
        LinearRegression().fit_chunks([chunks[1]])


def test_reversed_views_and_foreign_byte_order(rng) -> None:
    X = rng.normal(size=(50, 3))
    y = X @ [1.0, 2.0, 3.0] + rng.normal(size=50)
    ref = LinearRegression().fit(X[::-1].copy(), y[::-1].copy())
    model = LinearRegression().fit(X[::-1], y[::-1])
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-13)
    big_endian = LinearRegression().fit(X.astype(">f8"), y.astype(">f8"))
    np.testing.assert_allclose(big_endian.coef_, LinearRegression().fit(X, y).coef_, rtol=1e-13)
    np.testing.assert_allclose(model.predict(X[::-1]), X[::-1] @ model.coef_ + model.intercept_)


def test_no_false_accuracy_warnings(rng) -> None:
    X = rng.normal(size=(200, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccuracyWarning)
        LinearRegression().partial_fit(X, np.zeros(200))
        Y = np.c_[X @ [1.0, 2.0, 3.0] + 1e-3 * rng.normal(size=200), 1e6 * rng.normal(size=200)]
        LinearRegression().partial_fit(X, Y)


def test_tiny_chunks_are_buffered_into_blocks(rng) -> None:
    X = rng.normal(size=(3000, 30))
    y = X @ rng.normal(size=30) + rng.normal(size=3000)
    state = LeastSquaresState(30)
    for i in range(3000):
        state.update(X[i : i + 1], y[i : i + 1])
    from torchlinreg.solvers.solve import solve_ols

    coef, _ = lstsq_fit(X, y)
    np.testing.assert_allclose(solve_ols(state).coef[:, 0].numpy(), coef, rtol=1e-10)


def test_torch_data_loader_batches_are_chunks(rng) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    X = torch.tensor(rng.normal(size=(256, 4)))
    y = X @ torch.tensor([1.0, -1.0, 2.0, 0.5], dtype=torch.float64) + 3
    model = LinearRegression().fit_chunks(DataLoader(TensorDataset(X, y), batch_size=50))
    np.testing.assert_allclose(model.coef_, [1.0, -1.0, 2.0, 0.5], rtol=1e-12)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: LinearRegression().fit_chunks(5), "fit_chunks takes an iterable"),
        (lambda: LinearRegression().fit_chunks(lambda: 5), "returned int"),
        (lambda: LinearRegression(fit_intercept=None).fit([[1.0], [2.0]], [1.0, 2.0]), "fit_intercept"),
        (lambda: LeastSquaresState(2.5), "n_features must be an integer"),
        (lambda: LeastSquaresState(2).merge(5), "can only merge another LeastSquaresState"),
        (lambda: LinearRegression().fit(torch.eye(3).to_sparse(), [1.0, 2.0, 3.0]), "sparse"),
        (lambda: LeastSquaresState(2).update(np.ones((3, 2)), np.ones(3)).rss_of(torch.ones(2, 1)), "shape"),
    ],
)  # fmt: skip
def test_misuse_raises_input_errors(call, match) -> None:
    with pytest.raises(InputError, match=match):
        call()


def test_changing_fit_intercept_between_partial_fits_is_refused(rng) -> None:
    X, y = rng.normal(size=(20, 2)), rng.normal(size=20)
    model = LinearRegression().partial_fit(X, y)
    model.set_params(fit_intercept=False)
    with pytest.raises(InputError, match="fit_intercept changed"):
        model.partial_fit(X, y)


def _state(rng):  # type: ignore[no-untyped-def]
    return LeastSquaresState(2).update(rng.normal(size=(10, 2)), rng.normal(size=10))


def _saved(tmp_path, rng):  # type: ignore[no-untyped-def]
    state = _state(rng)
    path = tmp_path / "s.safetensors"
    state.save(str(path))
    return path, state


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda meta, t: meta.pop("n_features"), "incomplete or malformed"),
        (lambda meta, t: meta.update(n_features="abc"), "n_features must be an integer"),
        (lambda meta, t: meta.update(n_features=10**12), "shape"),
        (lambda meta, t: meta.update(fit_intercept="false"), "fit_intercept"),
        (lambda meta, t: meta.update(n_samples=-5), "n_samples"),
        (lambda meta, t: meta.update(weight_sum=float("nan")), "weight_sum"),
        (lambda meta, t: meta.update(weight_sum="10"), "weight_sum"),
        (lambda meta, t: meta.update(weight_sum=10**400), "weight_sum"),
        (lambda meta, t: meta.update(weight_sum=True), "weight_sum"),
        (lambda meta, t: meta.update(n_samples=True), "n_samples must be an integer"),
        (lambda meta, t: meta.update(n_samples=10.0), "n_samples must be an integer"),
        (lambda meta, t: meta.update(n_samples=10**400), "n_samples must be an integer"),
        (lambda meta, t: meta.update(n_observations="10"), "n_observations must be an integer"),
        (lambda meta, t: meta.update(n_observations=11), "11 observations but 10 rows"),
        (lambda meta, t: meta.update(log_weight_sum=[1]), "log_weight_sum"),
        (lambda meta, t: meta.update(log_weight_sum=float("-inf")), "log_weight_sum"),
        (lambda meta, t: meta.update(weighted="yes"), "weighted='yes'"),
        (lambda meta, t: meta.update(weight_sum=9.0), "without weights has 10 rows"),
        (lambda meta, t: meta.update(n_targets=None), "n_targets must be an integer"),
        (lambda meta, t: t.update(R=t["R"].T.contiguous()), "upper triangular"),
        (lambda meta, t: t["R"].__setitem__((0, 0), float("nan")), "not finite"),
    ],
)
def test_malformed_saved_states_are_refused(tmp_path, rng, edit, match) -> None:
    from safetensors.torch import save_file

    path, state = _saved(tmp_path, rng)
    d = state.state_dict()
    meta = dict(d["meta"])
    tensors = {k: d[k].clone() for k in ("R", "shift_x", "shift_y")}
    edit(meta, tensors)
    save_file(
        tensors,
        str(path),
        metadata={
            "format": "torchlinreg.LeastSquaresState",
            "version": "1",
            "meta": json.dumps(meta),
        },
    )
    with pytest.raises(InputError, match=match):
        LeastSquaresState.load(str(path))


def test_saved_state_metadata_nested_too_deep_to_parse_is_refused(tmp_path, rng) -> None:
    from safetensors.torch import save_file

    path, state = _saved(tmp_path, rng)
    tensors = {k: v for k, v in state.state_dict().items() if k != "meta"}
    deep = "[" * 100_000 + "]" * 100_000  # beyond the JSON parser's recursion limit
    header = {"format": "torchlinreg.LeastSquaresState", "version": "1", "meta": deep}
    save_file(tensors, str(path), metadata=header)
    with pytest.raises(InputError, match="could not be read as a state file"):
        LeastSquaresState.load(str(path))


@pytest.mark.parametrize(
    "d",
    [{"meta": [1, 2]}, {"meta": "x"}, {"R": 1}],
)
def test_state_dicts_of_the_wrong_types_are_refused(rng, d) -> None:
    state = _state(rng)
    with pytest.raises(InputError, match="malformed|not a tensor"):
        LeastSquaresState.from_state_dict({**state.state_dict(), **d})


def test_state_dict_with_a_non_tensor_is_refused(rng) -> None:
    state = _state(rng)
    with pytest.raises(InputError, match="shift_y that is not a tensor"):
        LeastSquaresState.from_state_dict({**state.state_dict(), "shift_y": [0.0]})


def test_the_state_is_changed_only_by_folding_or_merging(rng) -> None:
    state = _state(rng)
    for name in ("R", "shift_x", "shift_y", "n_samples", "n_observations", "weight_sum",
                 "log_weight_sum", "weighted", "counts"):  # fmt: skip
        with pytest.raises(AttributeError):
            setattr(state, name, getattr(state, name))
    copy = state.copy()
    assert copy.counts == state.counts and copy.R is not state.R
    torch.testing.assert_close(copy.R, state.R, rtol=0, atol=0)
    back = LeastSquaresState.from_parts(
        state.R, state.shift_x, state.shift_y, state.counts, fit_intercept=True
    )
    assert (back.n_features, back.n_targets, back.n_samples) == (2, 1, 10)
    with pytest.raises(InputError, match="shift_y must be float64 of shape"):
        LeastSquaresState.from_parts(
            state.R, state.shift_x, state.shift_y.float(), state.counts, fit_intercept=True
        )
    with pytest.raises(InputError, match="R must be float64 of shape"):
        LeastSquaresState.from_parts(
            state.R, state.shift_x, state.shift_y, state.counts, fit_intercept=False
        )


def test_a_stream_that_changes_between_passes_is_refused(rng) -> None:
    X = rng.normal(size=(100, 2))
    y = X @ [1.0, 2.0] + rng.normal(size=100)
    it = iter([(X, y)])  # the factory hands out the same, soon exhausted, iterator
    with pytest.raises(InputError, match="second pass"):
        LinearRegression(refine=True).fit_chunks(lambda: it)


def test_a_failed_fit_leaves_the_fitted_model_unchanged(rng) -> None:
    import pandas as pd

    X = pd.DataFrame(rng.normal(size=(20, 2)), columns=["a", "b"])
    model = LinearRegression().fit(X, rng.normal(size=20))
    bad = pd.DataFrame(rng.normal(size=(20, 2)), columns=["c", "d"])
    with pytest.raises(InputError):
        model.fit(bad, np.full(20, np.nan))
    assert list(model.feature_names_in_) == ["a", "b"]


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_one_parameter_layout_intercept_first(rng, fit_intercept) -> None:
    from torchlinreg.solvers.theta import split_theta, stack_theta

    X = rng.normal(size=(50, 3))
    Y = X @ rng.normal(size=(3, 2)) + rng.normal(size=(50, 2))
    model = LinearRegression(fit_intercept=fit_intercept).fit(X, Y)
    theta = model._theta()
    coef, b = split_theta(theta, fit_intercept)
    np.testing.assert_array_equal(coef.numpy().T, model.coef_)
    np.testing.assert_array_equal(np.zeros(2) if b is None else b.numpy(), model.intercept_)
    torch.testing.assert_close(stack_theta(coef, b), theta, rtol=0, atol=0)
    # The state's cost of θ is the data's: the layout the state expects.
    A = np.c_[np.ones(50), X] if fit_intercept else X
    rss = ((Y - A @ theta.numpy()) ** 2).sum()
    assert model.cost_of(model.coef_, model.intercept_) == pytest.approx(rss / 100, rel=1e-12)


# Messages about the data or the device hold for the command line and the library alike:
# no keyword-only advice (fresh iterators, device=...) on the command line, and no flag
# in Python.
_LIBRARY_ONLY = ("fresh iterator", "pass a function", "device='", "pass the same X")


def _write_csv(path, X, y) -> None:  # type: ignore[no-untyped-def]
    header = ",".join([f"x{j}" for j in range(X.shape[1])] + ["y"])
    np.savetxt(path, np.c_[X, y], delimiter=",", header=header, comments="", fmt="%.17g")


def _cli_error(capsys, argv) -> str:  # type: ignore[no-untyped-def]
    from torchlinreg.cli import main

    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    return err


def test_data_changed_before_refinement_is_told_for_both_interfaces(
    tmp_path, monkeypatch, capsys
) -> None:
    import torchlinreg.solvers.refine as refine

    from .test_solvers_passes import wampler_like

    X, y = wampler_like()  # κ ≈ 1e6: a second pass refines
    calls = []

    def chunks():  # type: ignore[no-untyped-def]
        calls.append(1)
        yc = y + (len(calls) > 2) * np.eye(len(y))[3]  # changed on the first refinement pass
        return [(X[i : i + 5], yc[i : i + 5]) for i in range(0, len(y), 5)]

    with pytest.raises(InputError, match="changed between passes") as library:
        LinearRegression(refine=True).fit_chunks(chunks)

    path = tmp_path / "wampler.csv"
    _write_csv(path, X, y)
    original = refine.refine_from_chunks

    def rewrite_then_refine(*args, **kwargs):  # type: ignore[no-untyped-def]
        _write_csv(path, X, y + np.eye(len(y))[3])
        return original(*args, **kwargs)

    monkeypatch.setattr(refine, "refine_from_chunks", rewrite_then_refine)
    cli = _cli_error(capsys, ["fit", str(path), "--target", "y"])
    for message in (str(library.value), cli):
        assert "a file modified while it was read" in message
        assert "chunk source that returns other rows" in message
        assert not any(advice in message for advice in _LIBRARY_ONLY), message


def test_rows_reordered_before_the_robust_pass_are_told_for_both_interfaces(
    tmp_path, monkeypatch, capsys
) -> None:
    from torchlinreg.jobs import passes

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = X @ [1.0, -2.0] + rng.normal(size=60)
    swapped = y[[1, 0, *range(2, 60)]]
    model = LinearRegression().fit(X, y)
    with pytest.raises(InputError, match="not paired as they were") as library:
        model.summary(cov_type="HC3", X=X, y=swapped)

    path = tmp_path / "d.csv"
    _write_csv(path, X, y)
    begin = passes.Passes.begin

    def swap_before_the_second_pass(self, what):  # type: ignore[no-untyped-def]
        if self.done >= 1:
            _write_csv(path, X, swapped)
        return begin(self, what)

    monkeypatch.setattr(passes.Passes, "begin", swap_before_the_second_pass)
    cli = _cli_error(capsys, ["fit", str(path), "--target", "y", "--cov-type", "HC3"])
    for message in (str(library.value), cli):
        assert "not paired as they were" in message
        assert "a file modified between passes" in message
        assert "in Python the same X, y and sample_weight" in message
        assert not any(advice in message for advice in _LIBRARY_ONLY), message


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_asked_for_without_cuda_is_told_for_both_interfaces(tmp_path, capsys) -> None:
    X = np.arange(10.0)[:, None]
    y = 2 * X[:, 0] + np.sin(X[:, 0])
    with pytest.raises(InputError, match="CUDA is not available") as library:
        LinearRegression(device="cuda").fit(X, y)
    path = tmp_path / "d.csv"
    _write_csv(path, X, y)
    cli = _cli_error(capsys, ["fit", str(path), "--target", "y", "--device", "cuda"])
    for message in (str(library.value), cli):
        assert "use the device 'cpu' or 'auto'" in message
        assert not any(advice in message for advice in _LIBRARY_ONLY), message


def test_the_accuracy_warning_prints_a_worst_case_bound_named_as_such() -> None:
    """Two columns collinear to 1e-9 on 50 rows, read once (no refinement): the warning
    gives ε·(κ + κ²·tan θ) ≈ 1e2–1e3, labelled a worst-case bound (it was "estimated
    relative error 7e+02"), while the solution is right to ~1e-8 against the exact
    least-squares solution in rational arithmetic. The bound must hold, and the text
    must not call it an estimate."""
    import re
    from fractions import Fraction

    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    X = np.column_stack([x, x + 1e-9 * rng.normal(size=50)])
    y = 1 + 2 * x + 0.5 * rng.normal(size=50)
    with pytest.warns(AccuracyWarning) as caught:
        model = LinearRegression().fit_chunks(iter([(X, y)]))
    (message,) = [str(w.message) for w in caught if "accuracy at risk" in str(w.message)]
    assert "estimate" not in message
    found = re.search(r"worst-case relative error bound ε·\(κ \+ κ²·tan θ\) = (\S+),", message)
    assert found and "the actual error is often far smaller" in message, message

    # Exact normal equations [1, X]ᵀ[1, X]θ = [1, X]ᵀy in fractions (the data's floats
    # are exact rationals), solved by Gaussian elimination.
    A = [[Fraction(1), Fraction(a), Fraction(b)] for a, b in X.tolist()]
    M = [[sum(r[i] * r[j] for r in A) for j in range(3)] for i in range(3)]
    v = [sum(r[i] * Fraction(t) for r, t in zip(A, y.tolist(), strict=True)) for i in range(3)]
    for k in range(3):
        for i in range(k + 1, 3):
            f = M[i][k] / M[k][k]
            M[i] = [a - f * b for a, b in zip(M[i], M[k], strict=True)]
            v[i] -= f * v[k]
    theta = [Fraction(0)] * 3
    for i in reversed(range(3)):
        theta[i] = (v[i] - sum(M[i][j] * theta[j] for j in range(i + 1, 3))) / M[i][i]
    exact = np.array([float(t) for t in theta])
    got = np.r_[model.intercept_, model.coef_]
    error = np.linalg.norm(got - exact) / np.linalg.norm(exact)
    assert error <= float(found[1])  # a bound holds ...
    assert error < 1e-3 * float(found[1])  # ... and here is far above the actual error
