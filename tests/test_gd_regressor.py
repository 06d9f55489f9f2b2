"""GDRegressor converges to the least-squares answer (numpy lstsq is the oracle)."""

from __future__ import annotations

import functools
import io

import numpy as np
import pytest
import torch

from torchlinreg import GDRegressor, InputError, TrainingDivergedError

from .conftest import lstsq_fit


def make_data(rng, n=200, p=4, k=None, noise=0.1):
    X = rng.normal(size=(n, p)) + rng.normal(size=p)
    shape = (p,) if k is None else (p, k)
    w = rng.normal(size=shape)
    b = rng.normal(size=() if k is None else (k,))
    y = X @ w + b + noise * rng.normal(size=(n,) if k is None else (n, k))
    return X, y


@pytest.mark.parametrize(
    ("optimizer", "lr", "options", "epochs", "atol"),
    [
        ("sgd", 0.05, None, 3000, 1e-5),
        ("sgd", 0.02, {"momentum": 0.9}, 1500, 1e-5),
        ("adam", 0.05, None, 3000, 1e-5),
        ("adamw", 0.05, {"weight_decay": 0.0}, 3000, 1e-5),
        # RMSprop's normalised step settles into a cycle of amplitude ~lr/2 around the
        # optimum, so its tolerance scales with lr.
        ("rmsprop", 0.001, None, 3000, 6e-4),
        # L-BFGS stops once the cost changes by less than tolerance_change (1e-9): a
        # cost change of δ leaves coefficients ~√δ off, more than 1e-5; so both its
        # tolerances are tightened.
        (
            "lbfgs",
            1.0,
            {"line_search_fn": "strong_wolfe", "tolerance_grad": 1e-12, "tolerance_change": 1e-14},
            30,
            1e-5,
        ),
    ],
)
def test_full_batch_converges_to_lstsq(rng, optimizer, lr, options, epochs, atol) -> None:
    X, y = make_data(rng)
    model = GDRegressor(
        optimizer=optimizer, lr=lr, optimizer_options=options, epochs=epochs, dtype="float64"
    ).fit(X, y)
    coef, intercept = lstsq_fit(X, y)
    np.testing.assert_allclose(model.coef_, coef, rtol=0, atol=atol)
    assert model.intercept_ == pytest.approx(intercept, abs=atol)
    assert model.coef_.shape == (4,) and isinstance(model.intercept_, float)


@pytest.mark.parametrize(("optimizer", "lr"), [("sgd", 0.01), ("adam", 0.01)])
def test_mini_batches_converge_to_lstsq(rng, optimizer, lr) -> None:
    X, y = make_data(rng, n=256, noise=0.05)
    model = GDRegressor(
        optimizer=optimizer, lr=lr, epochs=300, batch_size=32, random_state=0, dtype="float64"
    ).fit(X, y)
    coef, intercept = lstsq_fit(X, y)
    # Noisy gradients keep mini-batch SGD within a small neighbourhood of the optimum.
    np.testing.assert_allclose(model.coef_, coef, atol=5e-3)
    assert model.intercept_ == pytest.approx(intercept, abs=5e-3)


def test_float32_default_converges_and_keeps_float32(rng) -> None:
    X, y = make_data(rng)
    model = GDRegressor(lr=0.05).fit(X, y)
    coef, intercept = lstsq_fit(X, y)
    np.testing.assert_allclose(model.coef_, coef, atol=1e-4)
    assert model.coef_.dtype == np.float32
    # Predictions follow the input's precision.
    assert model.predict(X.astype(np.float32)).dtype == np.float32
    assert model.predict(X).dtype == np.float64


def test_multi_output_and_sample_weight_match_weighted_lstsq(rng) -> None:
    X, y = make_data(rng, k=3)
    w = rng.uniform(0.1, 3.0, size=len(X))
    model = GDRegressor(lr=0.05, epochs=4000, dtype="float64").fit(X, y, sample_weight=w)
    coef, intercept = lstsq_fit(X, y, sample_weight=w)
    assert model.coef_.shape == (3, 4) and model.intercept_.shape == (3,)
    np.testing.assert_allclose(model.coef_, coef, atol=1e-6)
    np.testing.assert_allclose(model.intercept_, intercept, atol=1e-6)
    np.testing.assert_allclose(model.predict(X), X @ coef.T + intercept, atol=1e-5)


def test_no_intercept_matches_lstsq_through_origin(rng) -> None:
    X, y = make_data(rng)
    model = GDRegressor(lr=0.05, fit_intercept=False, dtype="float64").fit(X, y)
    coef, _ = lstsq_fit(X, y, fit_intercept=False)
    np.testing.assert_allclose(model.coef_, coef, atol=1e-6)
    assert model.intercept_ == 0.0


def test_weighted_mini_batches_with_zero_weight_rows(rng) -> None:
    X, y = make_data(rng, n=64)
    w = np.ones(64)
    w[:48] = 0.0  # three whole batches of zero weight: skipped, not divided by zero
    model = GDRegressor(lr=0.05, epochs=3000, batch_size=16, shuffle=False, dtype="float64").fit(
        X, y, sample_weight=w
    )
    coef, _ = lstsq_fit(X[48:], y[48:])
    np.testing.assert_allclose(model.coef_, coef, atol=1e-6)
    assert np.isfinite(model.history_.cost).all()


def test_history_records_the_cost_before_each_step_and_params_after(rng) -> None:
    X, y = make_data(rng, n=50, p=2)
    model = GDRegressor(lr=0.05, epochs=10, dtype="float64").fit(X, y)
    h = model.history_
    assert h.epoch == list(range(11)) and len(h) == 11
    # W = b = 0 at the start, so the first cost is the mean of y².
    assert h.cost[0] == pytest.approx(np.mean(y**2), rel=1e-12)
    assert np.all(np.diff(h.cost) < 0)
    np.testing.assert_allclose(h.coef[-1], model.coef_)
    assert h.intercept[-1] == pytest.approx(model.intercept_)
    # Cost of epoch e is measured with the parameters left by epoch e - 1.
    coef, b = np.asarray(h.coef[4]), h.intercept[4]
    assert h.cost[5] == pytest.approx(np.mean((X @ coef + b - y) ** 2), rel=1e-10)


def test_history_drops_params_for_large_models(rng) -> None:
    X, y = make_data(rng, n=100, p=80)
    model = GDRegressor(lr=0.01, epochs=5).fit(X, y)
    assert model.history_.coef is None and len(model.history_.cost) == 6


def test_huber_resists_outliers_that_pull_squared_error(rng) -> None:
    X = rng.normal(size=(300, 2))
    y = X @ np.array([1.5, -2.0]) + 0.5 + 0.05 * rng.normal(size=300)
    y[:15] += 50.0  # gross outliers
    kwargs = dict(optimizer="adam", lr=0.05, epochs=2000, dtype="float64")
    huber = GDRegressor(loss="huber", epsilon=1.0, **kwargs).fit(X, y)
    mse = GDRegressor(**kwargs).fit(X, y)
    truth = np.array([1.5, -2.0])
    assert np.abs(huber.coef_ - truth).max() < 0.05
    assert abs(huber.intercept_ - 0.5) < 0.1
    assert abs(mse.intercept_ - 0.5) > 2.0  # squared error is dragged by ~15·50/300


def test_huber_with_large_epsilon_is_least_squares(rng) -> None:
    X, y = make_data(rng)
    model = GDRegressor(loss="huber", epsilon=1e6, lr=0.1, epochs=3000, dtype="float64")
    model.fit(X, y)
    coef, _ = lstsq_fit(X, y)
    np.testing.assert_allclose(model.coef_, coef, atol=1e-5)


def test_seeded_shuffling_and_init_are_reproducible(rng) -> None:
    X, y = make_data(rng, n=100)
    kw = dict(lr=0.01, epochs=5, batch_size=10, init="random")
    a = GDRegressor(random_state=3, **kw).fit(X, y)
    b = GDRegressor(random_state=3, **kw).fit(X, y)
    c = GDRegressor(random_state=4, **kw).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.history_.cost == b.history_.cost
    assert not np.array_equal(a.coef_, c.coef_)
    # Random init draws from ±1/√p: the first recorded cost differs from zero init's.
    zero = GDRegressor(lr=0.01, epochs=1).fit(X, y)
    assert a.history_.cost[0] != zero.history_.cost[0]


def test_optimizer_as_class_or_factory(rng) -> None:
    X, y = make_data(rng)
    by_name = GDRegressor(optimizer="sgd", lr=0.02, optimizer_options={"momentum": 0.5})
    by_class = GDRegressor(optimizer=torch.optim.SGD, lr=0.02, optimizer_options={"momentum": 0.5})
    by_factory = GDRegressor(optimizer=functools.partial(torch.optim.SGD, momentum=0.5), lr=0.02)
    template = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=9.0, momentum=0.5)
    by_instance = GDRegressor(optimizer=template, lr=0.02)
    models = (by_name, by_class, by_factory, by_instance)
    fits = [m.set_params(epochs=50).fit(X, y).coef_ for m in models]
    for other in fits[1:]:
        np.testing.assert_array_equal(fits[0], other)


def test_tensor_in_tensor_out_numpy_in_numpy_out(rng) -> None:
    X, y = make_data(rng)
    model = GDRegressor(lr=0.05, epochs=200).fit(torch.tensor(X), torch.tensor(y))
    out = model.predict(torch.tensor(X, dtype=torch.float32))
    assert isinstance(out, torch.Tensor) and out.shape == (200,)
    np.testing.assert_allclose(out.numpy(), model.predict(X), atol=1e-5)
    assert isinstance(model.predict(X), np.ndarray)


def test_two_d_column_target_keeps_its_shape(rng) -> None:
    X, y = make_data(rng, k=1)
    model = GDRegressor(lr=0.05, epochs=100).fit(X, y)
    assert model.coef_.shape == (1, 4)
    assert model.predict(X).shape == (200, 1)  # never broadcast into (200, 200)


def test_log_goes_to_a_stream_or_a_callable(rng) -> None:
    X, y = make_data(rng, n=20, p=2)
    stream, seen = io.StringIO(), []
    GDRegressor(epochs=10, log_every=5, log_to=stream).fit(X, y)
    GDRegressor(epochs=10, log_every=5, log_to=seen.append).fit(X, y)
    assert stream.getvalue().splitlines() == seen
    assert [line.split("/")[0] for line in seen] == ["Epoch    0", "Epoch    5", "Epoch   10"]
    assert seen[0].startswith("Epoch    0/10 W: [") and ", b: " in seen[0]


def test_diverging_lr_stops_with_the_epoch_and_advice(rng) -> None:
    X, y = make_data(rng)
    with pytest.raises(TrainingDivergedError) as info:
        GDRegressor(lr=10.0, epochs=3000).fit(X, y)
    err = info.value
    assert isinstance(err, InputError)
    # Stopped at the first rise of the cost, long before it overflows.
    assert 0 < err.epoch < 10 and np.isfinite(err.cost) and err.cost > np.mean(y**2)
    assert f"epoch {err.epoch}" in str(err) and "lr=10" in str(err)
    assert "stable only for lr <" in str(err) and "lr='auto'" in str(err)


def test_divergence_to_nan_in_mini_batches_is_caught(rng) -> None:
    X, y = make_data(rng)
    with pytest.raises(TrainingDivergedError, match="smaller"):
        GDRegressor(lr=50.0, epochs=100, batch_size=16, random_state=0).fit(X * 1e3, y)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"lr": 0}, "lr must be a finite number > 0"),
        ({"lr": float("nan")}, "lr must be"),
        ({"epochs": 0}, r"epochs must be an integer >= 1 \(training runs epochs 0..epochs"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"log_every": 0}, "log_every"),
        ({"init": "ones"}, "init must be one of"),
        ({"loss": "l1"}, "unknown loss 'l1'"),
        ({"optimizer": "adamm"}, "unknown optimizer 'adamm'; choose one of .*adam"),
        ({"optimizer_options": {"momentun": 0.9}}, "rejected its options.*momentun"),
        ({"optimizer_options": {"momentum": -1}}, "rejected a value"),
        ({"optimizer_options": {"lr": 0.1}}, "give the learning rate as lr"),
        ({"dtype": "float16"}, "unsupported dtype"),
        ({"device": "tpu"}, "unknown device"),
    ],
)
def test_bad_parameters_are_rejected_at_fit_with_the_fix(rng, params, match) -> None:
    X, y = make_data(rng, n=10)
    with pytest.raises(InputError, match=match):
        GDRegressor(**{"epochs": 2, **params}).fit(X, y)


def test_bad_data_names_the_row_and_column(rng) -> None:
    X, y = make_data(rng, n=10)
    X[3, 1] = np.nan
    with pytest.raises(InputError, match=r"X contains NaN at X\[3, 1\]"):
        GDRegressor().fit(X, y)
    X[3, 1] = np.inf
    with pytest.raises(InputError, match=r"infinity at X\[3, 1\]"):
        GDRegressor().fit(X, y)
    X[3, 1] = 1e300
    with pytest.raises(InputError, match="overflows torch.float32; use dtype='float64'"):
        GDRegressor().fit(X, y)
    X, y = make_data(rng, n=10)
    with pytest.raises(InputError, match="X has 10 samples but y has 9"):
        GDRegressor().fit(X, y[:9])
    with pytest.raises(InputError, match=r"reshape\(-1, 1\)"):
        GDRegressor().fit(X[:, 0], y)
    with pytest.raises(InputError, match=r"0 sample\(s\)"):
        GDRegressor().fit(X[:0], y[:0])
    with pytest.raises(InputError, match=r"sample_weight\[2\] = -1.0 is negative"):
        GDRegressor().fit(X, y, sample_weight=[1, 1, -1, 1, 1, 1, 1, 1, 1, 1])
    with pytest.raises(InputError, match="zero for every row"):
        GDRegressor().fit(X, y, sample_weight=np.zeros(10))
    with pytest.raises(InputError, match="non-numeric"):
        GDRegressor().fit(np.array([["a", "b"]] * 10), y)


def test_predict_checks_fitted_and_feature_count(rng) -> None:
    from torchlinreg import NotFittedError

    X, y = make_data(rng, n=10)
    with pytest.raises(NotFittedError, match="call fit"):
        GDRegressor().predict(X)
    model = GDRegressor(epochs=3).fit(X, y)
    with pytest.raises(InputError, match="X has 3 features, but GDRegressor is expecting 4"):
        model.predict(X[:, :3])


def test_repr_and_params_follow_the_scikit_learn_contract() -> None:
    model = GDRegressor(lr=0.1, optimizer="adam")
    assert repr(model) == "GDRegressor(optimizer='adam', lr=0.1)"
    assert model.get_params()["lr"] == 0.1
    assert model.set_params(epochs=5) is model and model.epochs == 5
    with pytest.raises(ValueError, match="invalid parameter 'alpha'"):
        model.set_params(alpha=1.0)


def test_auto_device_and_unavailable_cuda(rng) -> None:
    X, y = make_data(rng, n=10)
    model = GDRegressor(device="auto", epochs=3).fit(X, y)
    assert model.coef_.shape == (4,)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available here; use the device 'cpu'"):
            GDRegressor(device="cuda").fit(X, y)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_matches_cpu(rng) -> None:
    X, y = make_data(rng, n=500, k=2)
    kw = dict(lr=0.05, epochs=500, dtype="float64", batch_size=64, random_state=1)
    cpu = GDRegressor(device="cpu", **kw).fit(X, y)
    gpu = GDRegressor(device="cuda", **kw).fit(X, y)
    np.testing.assert_allclose(gpu.coef_, cpu.coef_, rtol=1e-9, atol=1e-10)
    out = gpu.predict(torch.tensor(X, device="cuda"))
    assert out.device.type == "cuda"
    with pytest.raises(TrainingDivergedError):
        GDRegressor(device="cuda", lr=10.0).fit(X, y)


def test_exact_gap_compares_with_the_exact_solution(rng) -> None:
    X, y = make_data(rng)
    coef, intercept = lstsq_fit(X, y)
    short = GDRegressor(lr=0.05, epochs=20, dtype="float64").fit(X, y)
    long = GDRegressor(lr=0.05, epochs=3000, dtype="float64").fit(X, y)
    for model in (short, long):
        gap = model.exact_
        np.testing.assert_allclose(gap.coef, coef, rtol=1e-10)
        assert gap.intercept == pytest.approx(intercept, rel=1e-10)
        assert gap.cost == pytest.approx(np.mean((X @ coef + intercept - y) ** 2), rel=1e-10)
        own = np.mean((model.predict(X) - y) ** 2)
        assert gap.gd_cost == pytest.approx(own, rel=1e-9)
        assert gap.cost_gap >= -1e-12
        expected = max(np.abs(model.coef_ - coef).max(), abs(model.intercept_ - intercept))
        assert gap.coef_gap == pytest.approx(expected, rel=1e-6)
    assert short.exact_.coef_gap > 1e-2 > 1e-6 > long.exact_.coef_gap
    assert GDRegressor(loss="huber", epochs=2).fit(X, y).exact_ is None
    assert GDRegressor(compare_exact=False, epochs=2).fit(X, y).exact_ is None


@pytest.mark.parametrize("seed", [-1, 2**64, 10**30])
def test_seed_outside_the_generators_range_is_refused(rng, seed: int) -> None:
    X, y = make_data(rng, n=20)
    with pytest.raises(InputError, match=r"random_state must be an int from 0 to 2\*\*64 - 1"):
        GDRegressor(random_state=seed, epochs=1, batch_size=5).fit(X, y)


def test_largest_seed_is_accepted(rng) -> None:
    X, y = make_data(rng, n=20)
    GDRegressor(random_state=2**64 - 1, epochs=1, batch_size=5).fit(X, y)
