"""S = Σ zᵀz in the robust pass (stats/meat.py): in-memory passes probe it, streamed
passes form it, and both give the covariance that S⁻¹ M S⁻¹ defines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchlinreg import InputError, LinearRegression
from torchlinreg.models._summary import robust_data
from torchlinreg.stats import meat as meat_module
from torchlinreg.stats.covariance import pairing_tolerance
from torchlinreg.stats.inference import model_summaries

COV_TYPES = ["HC0", "HC1", "HC2", "HC3", "cluster"]


def heteroskedastic(n: int = 4000, p: int = 12, weighted: bool = False):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 5, p) + rng.uniform(-3, 3, p)
    y = X @ rng.normal(size=p) + 2.0 + rng.normal(size=n) * (1 + np.abs(X[:, 0]))
    w = rng.uniform(0.5, 2, n) if weighted else None
    return X, y, w, rng.integers(0, 40, n)


def standard_errors(model, cov_type, data) -> np.ndarray:  # type: ignore[no-untyped-def]
    (s,) = model_summaries(model, cov_type=cov_type, data=data)
    return np.array([c.std_error for c in s.coefficients])


def items(model, cov_type, X, y, w, groups) -> list:  # type: ignore[no-untyped-def,type-arg]
    labels = groups if cov_type == "cluster" else None
    return list(robust_data(model.state_, cov_type, X, y, w, labels))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_probed_pass_gives_the_covariance_of_the_formed_s(cov_type, weighted) -> None:
    """A list is passed with S probed and taken as I; a one-time iterator is passed with
    S formed and corrected for. Taking S = I moves the meat by ~2‖S − I‖ ≤ 2·_GRAM_DIGITS
    relative, so standard errors agree to _GRAM_DIGITS; here ‖S − I‖ ≈ 1e-15."""
    X, y, w, groups = heteroskedastic(weighted=weighted)
    model = LinearRegression().fit(X, y, sample_weight=w)
    data = items(model, cov_type, X, y, w, groups)
    probed = standard_errors(model, cov_type, data)
    formed = standard_errors(model, cov_type, iter(data))
    np.testing.assert_allclose(probed, formed, rtol=meat_module._GRAM_DIGITS, atol=0)


def test_a_probe_above_the_bound_passes_again_and_forms_s(monkeypatch) -> None:
    """With the bound at 0 every probe is above it: the in-memory pass is made again with
    S formed, which is the streamed pass's computation, bit for bit."""
    X, y, w, groups = heteroskedastic()
    model = LinearRegression().fit(X, y)
    data = items(model, "HC3", X, y, w, groups)
    passes: list[bool] = []
    real_pass = meat_module._pass

    def counted(items, ctx, cov_type, S_inv, gram, group=None):  # type: ignore[no-untyped-def]
        passes.append(gram)
        return real_pass(items, ctx, cov_type, S_inv, gram, group)

    monkeypatch.setattr(meat_module, "_pass", counted)
    monkeypatch.setattr(meat_module, "_GRAM_DIGITS", 0.0)
    probed_then_formed = standard_errors(model, "HC3", data)
    assert passes == [False, True]
    passes.clear()
    formed = standard_errors(model, "HC3", iter(data))
    assert passes == [True]
    np.testing.assert_array_equal(probed_then_formed, formed)


def test_the_probe_measures_s_minus_i_on_other_data() -> None:
    """X with its first column reflected about its mean keeps every column's spread but
    not the cross products: S − I is O(1). The probe's estimate of ‖S − I‖_F is within a
    factor of the exact one (the one a formed S gives), far above the pairing tolerance,
    and the summary refuses the data."""
    X, y, w, groups = heteroskedastic()
    model = LinearRegression().fit(X, y)
    other = X.copy()
    other[:, 0] = 2 * other[:, 0].mean() - other[:, 0]
    data = items(model, "HC0", other, y, w, groups)
    theta = model._theta()
    probed = meat_module.robust_meat(data, model.state_, theta, "HC0")
    formed = meat_module.robust_meat(iter(data), model.state_, theta, "HC0")
    assert probed.gram is None and formed.gram is not None
    eye = torch.eye(formed.gram.shape[0], dtype=formed.gram.dtype)
    exact = float(torch.linalg.matrix_norm(formed.gram - eye))
    assert exact > 0.1
    assert exact / 10 <= probed.gram_gap <= 10 * exact
    assert probed.gram_gap > pairing_tolerance(model.state_)
    with pytest.raises(InputError, match="not the data the model was fitted on"):
        model.summary(cov_type="HC0", X=other, y=y)


def test_the_probe_bound_covers_the_spectral_norm() -> None:
    """_gram_gap from SV: the bound is ≥ ‖S − I‖₂ for S − I of rank one (the probe's
    worst case) and of full rank, at any scale."""
    p = 30
    V = meat_module._probe_vectors(p, torch.device("cpu"))
    rng = np.random.default_rng(0)
    u = torch.as_tensor(rng.normal(size=(p, 1)))
    full = torch.as_tensor(rng.normal(size=(p, p)))
    for E in (u @ u.T, full + full.T):
        for scale in (1e-14, 1e-3):
            S = torch.eye(p, dtype=torch.float64) + scale * E / torch.linalg.matrix_norm(E, 2)
            gap, bound = meat_module._gram_gap(S @ V, V)
            assert bound >= scale * (1 - 1e-6)
            assert gap <= scale * np.sqrt(p) * 3
