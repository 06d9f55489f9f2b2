"""Fitted models to ``torch.nn.Linear`` and back, and ``predict`` inside autograd.

Oracles: ``predict`` itself (float64), within the rounding bound of the module's dtype;
autograd's gradient of ``sum(predict(X))`` against the coefficients (the derivative of
``x·w + b`` in x is w, exactly); and the module's own output for ``from_torch``.

Rounding bound: a module in a dtype of unit roundoff u rounds X, W and b (relative u
each), sums p products and adds the bias, so each output is within
γ_{p+3}·(|X|·|W|ᵀ + |b|) of the float64 value, γ_m = m·u/(1 − m·u) (Higham, the dot
product bound with the inputs' rounding folded in); the float64 reference's own error
is 2⁻²⁹ times smaller for float32 and is covered by doubling the bound for float64.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import torchlinreg
from torchlinreg import (
    GDRegressor,
    InputError,
    LinearRegression,
    NotFittedError,
    Ridge,
    from_torch,
    load_model,
    save_model,
)


def _data(rng, n=30, p=4, k=None):  # type: ignore[no-untyped-def]
    X = rng.normal(size=(n, p)) * np.array([1.0, 10.0, 0.1, 3.0])[:p]
    W = rng.normal(size=(p,) if k is None else (p, k))
    y = X @ W + 2.5 + 0.1 * rng.normal(size=(n,) if k is None else (n, k))
    return X, y


def _bound(X: np.ndarray, model, dtype: torch.dtype) -> np.ndarray:  # type: ignore[no-untyped-def]
    u = torch.finfo(dtype).eps / 2
    m = X.shape[1] + 3
    gamma = m * u / (1 - m * u) * (2 if dtype == torch.float64 else 1)
    W = np.abs(np.atleast_2d(model.coef_))
    scale = np.abs(X) @ W.T + np.abs(np.atleast_1d(model.intercept_))
    return gamma * (scale[:, 0] if np.ndim(model.coef_) == 1 else scale)


ESTIMATORS = [
    LinearRegression(),
    LinearRegression(fit_intercept=False),
    Ridge(alpha=2.0),
    GDRegressor(optimizer="adam", lr=0.1, epochs=50),
]
IDS = ["ols", "ols-no-intercept", "ridge", "gd"]


@pytest.mark.filterwarnings("ignore::torchlinreg.ConvergenceWarning")
@pytest.mark.parametrize("k", [None, 3], ids=["1-d", "3-targets"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_to_torch_computes_predict(rng, estimator, dtype, k) -> None:
    X, y = _data(rng, k=k)
    model = estimator.fit(X, y)
    linear = model.to_torch(dtype=dtype)
    assert isinstance(linear, torch.nn.Linear)
    assert (linear.in_features, linear.out_features) == (4, 1 if k is None else 3)
    assert (linear.bias is not None) == model.fit_intercept
    assert linear.weight.dtype == dtype and linear.weight.device.type == "cpu"
    out = linear(torch.as_tensor(X, dtype=dtype)).detach().double().numpy()
    if k is None:
        assert out.shape == (30, 1)  # one output column: squeeze(-1) gives predict's (n,)
        out = out.squeeze(-1)
    want = model.predict(X)
    assert out.shape == want.shape
    assert np.all(np.abs(out - want) <= _bound(X, model, dtype))


def test_to_torch_defaults_to_torchs_default_dtype(rng) -> None:
    model = LinearRegression().fit(*_data(rng))
    assert model.to_torch().weight.dtype == torch.get_default_dtype()
    assert model.to_torch(dtype="float64").weight.dtype == torch.float64
    assert model.to_torch(dtype=torch.bfloat16).weight.dtype == torch.bfloat16


def test_the_module_is_a_trainable_copy(rng) -> None:
    model = LinearRegression().fit(*_data(rng))
    coef = model.coef_.copy()
    linear = model.to_torch(dtype=torch.float64)
    np.testing.assert_array_equal(linear.weight.detach().numpy()[0], coef)
    assert linear.weight.requires_grad  # ready to fine-tune in a network
    with torch.no_grad():
        linear.weight.mul_(2)
    np.testing.assert_array_equal(model.coef_, coef)


def test_to_torch_refusals(rng) -> None:
    with pytest.raises(NotFittedError):
        LinearRegression().to_torch()
    model = LinearRegression().fit(*_data(rng))
    with pytest.raises(InputError, match="unsupported dtype 'int32'"):
        model.to_torch(dtype="int32")
    with pytest.raises(InputError, match="holds no data"):
        model.to_torch(device="meta")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_to_torch_on_cuda_and_predict_there(rng) -> None:
    X, y = _data(rng)
    model = LinearRegression().fit(X, y)
    linear = model.to_torch(dtype=torch.float64, device="cuda")
    assert linear.weight.device.type == "cuda"
    Xc = torch.tensor(X, device="cuda", requires_grad=True)
    pred = model.predict(Xc)
    assert pred.device.type == "cuda" and pred.requires_grad
    out = linear(Xc).squeeze(-1)
    assert torch.all((out - pred).abs().cpu() <= torch.as_tensor(_bound(X, model, torch.float64)))
    pred.sum().backward()
    np.testing.assert_allclose(Xc.grad.cpu().numpy(), np.tile(model.coef_, (30, 1)), rtol=0)


# --- predict in autograd -------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_flow_through_predict_to_the_input(rng, dtype) -> None:
    X, y = _data(rng)
    model = LinearRegression().fit(X, y)
    Xt = torch.tensor(X, dtype=dtype, requires_grad=True)
    pred = model.predict(Xt)
    assert isinstance(pred, torch.Tensor) and pred.requires_grad and pred.dtype == dtype
    assert pred.grad_fn is not None
    pred.sum().backward()
    # ∂(Σᵢ xᵢ·w + b)/∂xᵢ = w for every row, exactly: autograd multiplies w by ones.
    want = torch.as_tensor(model.coef_, dtype=dtype).expand(30, -1)
    torch.testing.assert_close(Xt.grad, want, rtol=0, atol=0)


def test_gradients_of_several_targets(rng) -> None:
    X, Y = _data(rng, k=3)
    model = LinearRegression().fit(X, Y)
    Xt = torch.tensor(X, requires_grad=True)
    pred = model.predict(Xt)
    assert pred.shape == (30, 3)
    # Weights per target: ∂(Σᵢⱼ vⱼ·predᵢⱼ)/∂xᵢ = Σⱼ vⱼ·wⱼ (a product, rounding of k terms).
    v = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    (pred @ v).sum().backward()
    want = np.tile(v.numpy() @ model.coef_, (30, 1))
    np.testing.assert_allclose(Xt.grad.numpy(), want, rtol=1e-14, atol=1e-14)


def test_predict_in_a_graph_from_an_upstream_layer(rng) -> None:
    """The input is itself computed (a non-leaf): gradients reach the layer before."""
    X, y = _data(rng)
    model = LinearRegression().fit(X, y)
    scale = torch.ones(4, dtype=torch.float64, requires_grad=True)
    model.predict(torch.as_tensor(X) * scale).sum().backward()
    # ∂/∂s_j Σᵢ (xᵢⱼ·s_j)·w_j = w_j·Σᵢ xᵢⱼ at s = 1.
    np.testing.assert_allclose(scale.grad.numpy(), model.coef_ * X.sum(0), rtol=1e-12)


def test_predict_values_are_unchanged_in_a_graph(rng) -> None:
    X, y = _data(rng)
    model = Ridge(alpha=1.0).fit(X, y)
    Xt = torch.tensor(X, requires_grad=True)
    np.testing.assert_array_equal(model.predict(Xt).detach().numpy(), model.predict(X))
    with torch.no_grad():
        assert not model.predict(Xt).requires_grad
    assert not model.predict(torch.tensor(X)).requires_grad


def test_a_graph_input_is_still_checked(rng) -> None:
    X, y = _data(rng)
    model = LinearRegression().fit(X, y)
    bad = torch.tensor(X, requires_grad=True)
    with torch.no_grad():
        bad[3, 1] = float("nan")
    with pytest.raises(InputError, match=r"NaN at X\[3, 1\]"):
        model.predict(bad)
    with pytest.raises(InputError, match="X has 3 features"):
        model.predict(torch.zeros(2, 3, requires_grad=True))


# --- from_torch ----------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("out", [1, 3])
def test_from_torch_predicts_what_the_module_computes(rng, bias, out) -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(4, out, bias=bias, dtype=torch.float64)
    model = from_torch(linear)
    assert isinstance(model, GDRegressor) and model.fit_intercept == bias
    assert model.dtype == "float64"
    X = rng.normal(size=(20, 4))
    want = linear(torch.as_tensor(X)).detach().numpy()
    got = model.predict(X)
    assert got.shape == ((20,) if out == 1 else (20, out))
    np.testing.assert_allclose(got, want.squeeze(-1) if out == 1 else want, rtol=0, atol=1e-13)
    y = want[:, 0] if out == 1 else want
    assert model.score(X, y) == pytest.approx(1.0, abs=1e-14)


def test_round_trip_keeps_the_weights_exactly(rng) -> None:
    X, Y = _data(rng, k=2)
    model = LinearRegression().fit(X, Y)
    back = from_torch(model.to_torch(dtype=torch.float64))
    np.testing.assert_array_equal(back.coef_, model.coef_)
    np.testing.assert_array_equal(back.intercept_, model.intercept_)
    one = LinearRegression().fit(X, Y[:, 0])
    back = from_torch(torch.nn.Sequential(one.to_torch(dtype="float64")))
    assert back.coef_.shape == (4,) and isinstance(back.intercept_, float)
    np.testing.assert_array_equal(back.coef_, one.coef_)
    assert back.intercept_ == one.intercept_
    two = from_torch(one.to_torch(dtype="float64"), target_1d=False)
    assert two.coef_.shape == (1, 4) and two.predict(X).shape == (30, 1)


def test_from_torch_is_saved_and_loaded(rng, tmp_path) -> None:
    linear = torch.nn.Linear(4, 1)
    model = from_torch(linear, feature_names=["a", "b", "c", "d"])
    path = str(tmp_path / "m.safetensors")
    save_model(path, model)
    loaded = load_model(path).estimator
    assert list(loaded.feature_names_in_) == ["a", "b", "c", "d"]
    X = rng.normal(size=(10, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an array where names were fitted
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_from_torch_feature_names_match_dataframes_by_name(rng) -> None:
    pd = pytest.importorskip("pandas")
    linear = torch.nn.Linear(3, 1, dtype=torch.float64)
    model = from_torch(linear, feature_names=["a", "b", "c"])
    frame = pd.DataFrame(rng.normal(size=(5, 3)), columns=["a", "b", "c"])
    np.testing.assert_allclose(
        model.predict(frame[["c", "a", "b"]]), model.predict(frame), rtol=0, atol=1e-14
    )


def test_from_torch_fine_tunes_with_warm_start(rng) -> None:
    """The weights are a starting point: warm_start continues from them."""
    X, y = _data(rng)
    exact = LinearRegression().fit(X, y)
    model = from_torch(exact.to_torch(dtype=torch.float64))
    model.set_params(warm_start=True, epochs=1, lr=1e-9, optimizer="sgd")
    model.fit(X, y)
    np.testing.assert_allclose(model.coef_, exact.coef_, rtol=1e-6)


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.ReLU()), "holds Linear, ReLU"),
        (torch.nn.Sequential(), "holds nothing"),
        (torch.nn.Conv1d(1, 1, 2), "got Conv1d"),
        ("not a module", "got str"),
        (torch.nn.LazyLinear(1), "LazyLinear whose shape is not known"),
        (torch.nn.Linear(2, 1, device="meta"), "'meta' device"),
    ],
)
def test_from_torch_refuses_anything_but_one_linear(module, message) -> None:
    with pytest.raises(InputError, match=message):
        from_torch(module)


def test_from_torch_refuses_non_finite_weights_and_bad_names() -> None:
    linear = torch.nn.Linear(2, 1)
    with torch.no_grad():
        linear.bias.fill_(float("inf"))
    with pytest.raises(InputError, match="bias holds NaN or infinite"):
        from_torch(linear)
    with pytest.raises(InputError, match="feature_names must be 2 strings"):
        from_torch(torch.nn.Linear(2, 1), feature_names=["a"])
    with pytest.raises(InputError, match="must be distinct"):
        from_torch(torch.nn.Linear(2, 1), feature_names=["a", "a"])
    with pytest.raises(InputError, match="target_1d=True needs a layer of one output"):
        from_torch(torch.nn.Linear(2, 2), target_1d=True)


def test_from_torch_is_exported_lazily() -> None:
    assert torchlinreg.from_torch is from_torch
    assert "from_torch" in torchlinreg.__all__
