"""The CUDA paths against the CPU ones (marked ``cuda``; skipped without a device).

Oracle: the same fit on the CPU, and the NIST certified values. The exact solver runs in
float64 on either device and takes the same decisions (shift, refinement, covariance
pass), so CPU and CUDA differ only by the order of additions inside the kernels: 1e-10
relative leaves a margin of ~10⁴ over ε·κ for the well-conditioned designs here.
"""

from __future__ import annotations

import datetime
import warnings

import numpy as np
import pytest
import torch

from torchlinreg import GDRegressor, LinearRegression

from .ranks import free_port
from .test_distributed import assert_statistics_equal, design
from .test_nist import NAMES, REQUIRED, load, lre

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def on_cuda(*arrays):  # type: ignore[no-untyped-def]
    return [None if a is None else torch.tensor(a, device="cuda") for a in arrays]


@pytest.mark.parametrize("name", NAMES)
def test_refinement_on_cuda_reaches_the_certified_digits(name) -> None:
    X, y, intercept, certified = load(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Filip is rightly flagged as ill-conditioned
        model = LinearRegression(fit_intercept=intercept, device="cuda").fit(X, y)
    assert model.state_.R.device.type == "cuda"
    params = np.r_[model.intercept_, model.coef_] if intercept else model.coef_
    assert lre(params, np.asarray(certified["coef"])) >= REQUIRED.get(name, 10.0)


@pytest.mark.parametrize("case", ["plain", "weights", "multi weights"])
def test_summary_on_cuda_equals_the_cpu_summary(case) -> None:
    X, y, w, groups, intercept = design(case)
    cpu = LinearRegression(fit_intercept=intercept).fit(X, y, w)
    gpu = LinearRegression(fit_intercept=intercept, device="cuda").fit(X, y, w)
    for cov_type in ("nonrobust", "HC0", "HC3", "cluster"):
        kwargs = {} if cov_type == "nonrobust" else {"X": X, "y": y, "sample_weight": w}
        if cov_type == "cluster":
            kwargs["groups"] = groups
        ours, theirs = (m.summary(cov_type=cov_type, **kwargs) for m in (gpu, cpu))
        ours, theirs = (s if isinstance(s, list) else [s] for s in (ours, theirs))
        assert_statistics_equal(
            [s.to_dict() for s in ours], [s.to_dict() for s in theirs], 1e-10, cov_type
        )


def test_streamed_refined_fit_on_cuda_equals_the_cpu_fit() -> None:
    X, y, w, _, intercept = design("weights")
    chunks = [(X[i : i + 50], y[i : i + 50], w[i : i + 50]) for i in range(0, len(X), 50)]
    cpu = LinearRegression(refine=True).fit_chunks(chunks)
    gpu = LinearRegression(refine=True, device="cuda").fit_chunks(chunks)
    assert gpu.refined_ and cpu.refined_
    np.testing.assert_allclose(gpu.coef_, cpu.coef_, rtol=1e-12)
    np.testing.assert_allclose(gpu.intercept_, cpu.intercept_, rtol=1e-12)


def test_gradient_training_on_cuda_follows_the_cpu_training() -> None:
    """float64 full-batch gradient descent: both devices take the same steps up to the
    rounding of each gradient (≈1e-16 relative), which 300 contracting steps do not
    amplify beyond 1e-9."""
    X, y, *_ = design("plain")
    X = (X - X.mean(0)) / X.std(0)
    kwargs = {"optimizer": "sgd", "lr": 0.1, "epochs": 300, "dtype": "float64"}
    cpu = GDRegressor(**kwargs).fit(X, y)
    gpu = GDRegressor(device="cuda", **kwargs).fit(*on_cuda(X, y))
    np.testing.assert_allclose(torch.as_tensor(gpu.coef_).cpu().numpy(), cpu.coef_, rtol=1e-9)


def test_distributed_fit_with_nccl_on_one_gpu() -> None:
    """The nccl backend with one rank: the collectives (gather, broadcast, object
    gathering) on CUDA tensors, against the one-process fit."""
    import torch.distributed as dist

    X, y, w, groups, _ = design("weights")
    torch.cuda.set_device(0)
    dist.init_process_group(
        "nccl",
        init_method=f"tcp://127.0.0.1:{free_port()}",
        rank=0,
        world_size=1,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        model = LinearRegression(device="cuda").fit(X, y, w, distributed=True)
        summary = model.summary(cov_type="cluster", X=X, y=y, sample_weight=w, groups=groups)
    finally:
        dist.destroy_process_group()
    cpu = LinearRegression().fit(X, y, w)
    np.testing.assert_allclose(model.coef_, cpu.coef_, rtol=1e-10)
    expected = cpu.summary(cov_type="cluster", X=X, y=y, sample_weight=w, groups=groups)
    assert_statistics_equal(summary.to_dict(), expected.to_dict(), 1e-10, "cluster")
