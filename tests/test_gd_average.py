"""``GDRegressor(average=...)``: the model is the mean of the iterates (scikit-learn's
``SGDRegressor`` meaning), against a numpy replay of the same steps.

The oracle replays plain SGD in float64 on raw columns (``standardize=False``) and
averages the iterates after every step from the first whose rows reach ``average``.
Both sides run the same steps in the same order, so they differ by rounding only:
each step's gradient is a sum of at most 60 products (relative ~60·u ≈ 1e-14 in
float64), the steps are contractions (lr well under the stable 2/λmax), and the mean
of K iterates adds K roundings of relative u each. Hence ``rtol=1e-10``, far above the
rounding and far below any real difference (averaging one step more or less, or the
last iterate instead of the mean, moves the coefficients by ≥ 1e-4 here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from torchlinreg import GDRegressor, InputError

RNG = np.random.default_rng(7)
N = 60
X = RNG.normal(size=(N, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
Y = X @ [1.0, -0.5, 2.0] + 0.5 + RNG.normal(size=N)
RAW: dict[str, Any] = dict(
    optimizer="sgd", lr=0.02, standardize=False, compare_exact=False, dtype="float64",
    shuffle=False,
)  # fmt: skip
RTOL = 1e-10  # module docstring

pytestmark = pytest.mark.filterwarnings("ignore::torchlinreg.errors.ConvergenceWarning")


def replay(epochs: int, batch: int, start_rows: int, lr: float = RAW["lr"]) -> tuple[Any, Any]:
    """(last iterate, mean of the iterates from ``start_rows`` rows seen), θ = [b, W]:
    batches of ``batch`` consecutive rows, each step ``θ −= lr·2Aᵀ(Aθ − y)/batch`` (a
    short last batch divided by the full batch's size, as the trainer weighs it)."""
    A = np.c_[np.ones(N), X]
    theta = np.zeros(A.shape[1])
    total, seen, count = np.zeros_like(theta), 0, 0
    for _ in range(epochs + 1):
        for lo in range(0, N, batch):
            a, y = A[lo : lo + batch], Y[lo : lo + batch]
            theta = theta - lr * 2 * a.T @ (a @ theta - y) / batch
            seen += len(y)
            if seen >= start_rows:
                total, count = total + theta, count + 1
    return theta, total / count


def params_of(model: GDRegressor) -> np.ndarray:
    return np.r_[model.intercept_, model.coef_]


@pytest.mark.parametrize(
    ("batch", "average", "start_rows"),
    [(N, True, 1), (16, True, 1), (16, 1, 1), (16, 100, 100), (16, 61, 61)],
)
def test_the_model_is_the_mean_of_the_iterates(batch: int, average: Any, start_rows: int) -> None:
    model = GDRegressor(epochs=4, batch_size=batch, average=average, **RAW).fit(X, Y)
    last, mean = replay(4, batch, start_rows)
    np.testing.assert_allclose(params_of(model), mean, rtol=RTOL)
    assert not np.allclose(mean, last, rtol=1e-4)  # the test can tell them apart
    # The history follows the iterates: its last parameters are the last step's.
    np.testing.assert_allclose(np.r_[model.history_.intercept[-1], model.history_.coef[-1]],
                               last, rtol=RTOL)  # fmt: skip


def test_average_false_keeps_the_last_iterate() -> None:
    model = GDRegressor(epochs=4, batch_size=16, **RAW).fit(X, Y)
    np.testing.assert_allclose(params_of(model), replay(4, 16, 1)[0], rtol=RTOL)


def test_averaging_removes_the_noise_floor_of_constant_step_sgd() -> None:
    """Mini-batch SGD at a large constant step ends in a noise cloud around the optimum;
    the mean of the iterates lies much closer (Polyak–Ruppert). Excess cost over the
    exact least-squares optimum, on 20,000 noisy rows: the averaged model's is below a
    fifth of the last iterate's (theory: the iterate's excess is ~lr·σ²·tr(H)/B·(1/2),
    the mean's ~σ²·p/n, three orders smaller here)."""
    rng = np.random.default_rng(1)
    n, p = 20_000, 10
    Xb = rng.normal(size=(n, p))
    yb = Xb @ rng.normal(size=p) + 1.0 + rng.normal(size=n)
    A = np.c_[np.ones(n), Xb]
    best = np.linalg.lstsq(A, yb, rcond=None)[0]

    def excess(m: GDRegressor) -> float:
        d = params_of(m) - best
        return float(d @ (A.T @ A / n) @ d)

    kw = dict(lr=0.2, epochs=2, batch_size=64, dtype="float64", random_state=0)
    last = GDRegressor(**kw).fit(Xb, yb)
    averaged = GDRegressor(average=True, **kw).fit(Xb, yb)
    assert excess(averaged) < 0.2 * excess(last)


def test_streamed_fit_averages_as_fit_does() -> None:
    params = dict(RAW, epochs=3, batch_size=16, average=True)
    memory = GDRegressor(**params).fit(X, Y)
    chunks = [(X[i : i + 17], Y[i : i + 17]) for i in range(0, N, 17)]
    streamed = GDRegressor(**params).fit_chunks(chunks)
    np.testing.assert_array_equal(streamed.coef_, memory.coef_)
    assert streamed.intercept_ == memory.intercept_


def test_partial_fit_averages_across_calls() -> None:
    """Each call is one pass; the mean runs on over every call's steps, as one fit of
    the same passes averages them (full batch: no shuffling to tell the two apart)."""
    model = GDRegressor(average=True, **RAW)
    for _ in range(3):
        model.partial_fit(X, Y)
    np.testing.assert_allclose(params_of(model), replay(2, N, 1)[1], rtol=RTOL)


def test_resume_averages_on_bit_for_bit(tmp_path: Path) -> None:
    """Stopped after epoch 2 and resumed: the model equals the uninterrupted run's."""
    import signal

    from torchlinreg.training.interrupt import InterruptedTraining

    params = dict(
        optimizer="sgd", optimizer_options={"momentum": 0.5}, lr=0.01, epochs=8,
        batch_size=8, average=30, scheduler="cosine", random_state=2,
    )  # fmt: skip
    straight = GDRegressor(**params).fit(X, Y)

    def stop_at_2(line: str) -> None:
        if line.startswith("Epoch    2/"):
            signal.raise_signal(signal.SIGTERM)

    path = tmp_path / "run.ckpt"
    with pytest.raises(InterruptedTraining):
        GDRegressor(log_every=1, log_to=stop_at_2, **params).fit(X, Y, checkpoint=str(path))
    resumed = GDRegressor(**params).fit(X, Y, resume=str(path))
    np.testing.assert_array_equal(resumed.coef_, straight.coef_)
    assert resumed.intercept_ == straight.intercept_
    # A checkpoint of a run without averaging is another run: refused.
    with pytest.raises(InputError, match="average"):
        GDRegressor(**{**params, "average": False}).fit(X, Y, resume=str(path))


@pytest.mark.parametrize("bad", [0, -3, 1.5, "yes", None])
def test_bad_average_is_refused(bad: Any) -> None:
    with pytest.raises(InputError, match="average"):
        GDRegressor(average=bad, epochs=1).fit(X, Y)


def test_cli_average_and_model_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    from torchlinreg import load_model
    from torchlinreg.cli import main

    data = tmp_path / "d.csv"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": Y}).to_csv(data, index=False)
    out = tmp_path / "m.safetensors"
    argv = ["fit", str(data), "--target", "y", "--method", "gd", "--lr", "0.02",
            "--epochs", "4", "--batch-size", "16", "--dtype", "float64", "--no-standardize",
            "--average", "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    model = load_model(str(out))
    assert model.estimator.get_params()["average"] is True
    assert main([*argv[:-3], "--average", "0", "-o", str(out)]) == 2
    assert "--average: must be >= 1" in capsys.readouterr().err
    assert main(["fit", str(data), "--target", "y", "--average"]) == 2
    assert "for gradient training only" in capsys.readouterr().err
