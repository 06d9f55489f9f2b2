"""Condition brackets (solvers/conditioning.py) make the decisions the exact SVD makes.

Oracle: numpy's singular values of the same column-scaled factor, and the rules as
they were stated on κ₂ itself: the normal equations accepted when ε·κ² ≤ 1e-11, the
ill-conditioning warning above κ = 1e8, refinement when ε·(κ + κ²·tan θ) > 1e-13, the
rank from σ > 1000·p·ε·max(σ₁, 1). The brackets are forced on (no exact shortcut for
small factors) so that the NIST designs exercise them too; the hard cases are NIST
Longley, Filip, Wampler1–5, random designs with κ from 1e2 to 1e14 and rank-deficient
ones.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from torchlinreg import IllConditionedWarning, LinearRegression, RankDeficientWarning
from torchlinreg.models._diagnostics import ILL_CONDITIONED, RISK, error_bound, wants_refinement
from torchlinreg.solvers import conditioning
from torchlinreg.solvers.conditioning import Conditioning
from torchlinreg.solvers.gram import GRAM_ACCURACY
from torchlinreg.solvers.refine import SEMINORMAL_LIMIT, seminormal_obstacle
from torchlinreg.solvers.solve import EPS, design_conditioning, solve_ols
from torchlinreg.solvers.state import LeastSquaresState
from torchlinreg.solvers.tolerance import rank_tolerance

NIST = Path(__file__).resolve().parent / "data" / "nist"


def nist(name: str) -> tuple[np.ndarray, np.ndarray]:
    d = json.loads((NIST / f"{name}.json").read_text())
    x = np.asarray(d["x"], dtype=np.float64)
    X = (
        np.column_stack([x**k for k in range(1, d["model"]["degree"] + 1)])
        if d["model"]["kind"] == "polynomial"
        else x
    )
    return X, np.asarray(d["y"], dtype=np.float64)


def graded(kappa: float, n: int = 300, p: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X = U·diag(s)·Vᵀ + offsets, singular values spread geometrically over ``kappa``."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.normal(size=(n, p)))
    V, _ = np.linalg.qr(rng.normal(size=(p, p)))
    X = (U * np.geomspace(1.0, 1.0 / kappa, p)) @ V.T + rng.normal(size=p)
    return X, X @ rng.normal(size=p) + 0.1 * rng.normal(size=n)


def deficient(kind: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 80))
    if kind == "duplicate":
        X[:, 7] = X[:, 3]
    elif kind == "combination":
        X[:, 50] = 2 * X[:, 1] - X[:, 2]
    else:
        X[:, 11] = 4.0
    return X, X @ rng.normal(size=80) + rng.normal(size=200)


DESIGNS = {
    **{name: (lambda name=name: nist(name)) for name in
       ["Longley", "Filip", "Wampler1", "Wampler2", "Wampler3", "Wampler4", "Wampler5"]},
    **{f"kappa 1e{e}": (lambda e=e: graded(10.0**e)) for e in (2, 4, 6, 8, 10, 12, 14)},
    **{f"rank {kind}": (lambda kind=kind: deficient(kind)) for kind in
       ("duplicate", "combination", "constant")},
}  # fmt: skip


@pytest.fixture
def brackets(monkeypatch: pytest.MonkeyPatch) -> None:
    """No exact shortcut for small factors: every decision goes through a bracket."""
    monkeypatch.setattr(conditioning, "EXACT_ORDER", 0)


def state_of(X: np.ndarray, y: np.ndarray) -> LeastSquaresState:
    state = LeastSquaresState(X.shape[1])
    return state.update(torch.as_tensor(X), torch.as_tensor(y))


def scaled_singular_values(R: torch.Tensor) -> np.ndarray:
    """numpy's singular values of R with columns scaled to 2-norms in [0.5, 1)."""
    A = R.numpy()
    norms = np.linalg.norm(A, axis=0)
    _, e = np.frexp(np.where(norms > 0, norms, 1.0))
    return np.linalg.svd(A * np.ldexp(1.0, -e), compute_uv=False)


@pytest.mark.parametrize("name", list(DESIGNS))
def test_bracket_holds_the_exact_condition_number(name: str, brackets: None) -> None:
    state = state_of(*DESIGNS[name]())
    s = scaled_singular_values(state.R_design)
    bracket = design_conditioning(state)
    low, high = bracket.kappa
    kappa = s[0] / s[-1]
    if kappa * EPS > 0.1:
        # Numerically singular: the smallest singular value is rounding, in the SVD as
        # in the triangular solves; both ends lie beyond every threshold the fit tests.
        assert low > 1e12
        return
    assert low <= kappa * (1 + 1e-6) and kappa <= high * (1 + 1e-6), (low, kappa, high)
    assert high <= conditioning.SPREAD * low * 1.01  # the bracket's width as documented


@pytest.mark.parametrize("name", list(DESIGNS))
def test_decisions_equal_the_exact_svd_rule(name: str, brackets: None) -> None:
    X, y = DESIGNS[name]()
    state = state_of(X, y)
    s = scaled_singular_values(state.R_design)
    kappa = s[0] / s[-1]
    solution = solve_ols(state)
    # Rank: the old rule on the centred block's singular values.
    c = 1
    Rc = state.R_design[c:, c:].numpy()
    D = np.ldexp(1.0, -np.frexp(np.linalg.norm(state.R_design.numpy(), axis=0))[1])[c:]
    sc = np.linalg.svd(Rc * D, compute_uv=False)
    tol = rank_tolerance(state.n_params) * max(sc[0], 1.0)
    assert solution.rank == int((sc > tol).sum()) + c
    bracket = solution.conditioning
    for threshold in (ILL_CONDITIONED, (GRAM_ACCURACY / EPS) ** 0.5, 1e2, 1e6, 1e12):
        assert bracket.kappa_exceeds(threshold) == (kappa > threshold), threshold
    # Refinement and the seminormal rule, each against its formula on the exact κ.
    small_kappa = float(kappa)
    exact_refine = solution.rank == state.n_params and error_bound(state, small_kappa) > RISK
    assert wants_refinement("auto", state, solution, small=False) == exact_refine
    Ru = state.unshifted_R()[: state.n_params, : state.n_params]
    su = scaled_singular_values(Ru)
    exact_obstacle = (su[0] / su[-1]) ** 2 * EPS >= SEMINORMAL_LIMIT
    assert (seminormal_obstacle(state) is not None) == exact_obstacle


@pytest.mark.parametrize("name", list(DESIGNS))
def test_fit_warnings_and_condition_number_equal_the_exact_rule(name: str, brackets: None) -> None:
    X, y = DESIGNS[name]()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LinearRegression(solver="qr").fit(X, y)
    kinds = {type(w.message) for w in caught}
    s = scaled_singular_values(model.state_.R_design)
    kappa = s[0] / s[-1]
    if name.startswith("rank"):  # κ is rounding there: only its size is meaningful
        assert model.condition_number_ > 1e14 and kappa > 1e14
    else:
        assert model.condition_number_ == pytest.approx(kappa, rel=1e-8)
    if name.startswith("rank"):
        assert RankDeficientWarning in kinds and IllConditionedWarning not in kinds
    else:
        assert (IllConditionedWarning in kinds) == (kappa > ILL_CONDITIONED)


def test_a_well_conditioned_wide_fit_computes_no_singular_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 300)) + 5.0
    y = X @ rng.normal(size=300) + rng.normal(size=3000)

    def refused(*args: object, **kwargs: object) -> torch.Tensor:
        raise AssertionError("full singular values computed where the bracket decides")

    monkeypatch.setattr(torch.linalg, "svdvals", refused)
    monkeypatch.setattr(torch.linalg, "svd", refused)
    for solver in ("auto", "qr"):
        model = LinearRegression(solver=solver).fit(X, y)
        assert model.rank_ == 301
    monkeypatch.undo()
    # Read, condition_number_ is the exact κ₂ (computed then, once).
    s = scaled_singular_values(model.state_.R_design)
    assert model.condition_number_ == pytest.approx(s[0] / s[-1], rel=1e-10)


def test_a_threshold_inside_the_bracket_is_settled_by_the_singular_values() -> None:
    rng = np.random.default_rng(3)
    A = np.linalg.qr(rng.normal(size=(400, 100)), mode="r") * np.geomspace(1, 1e-3, 100)
    R = torch.as_tensor(np.linalg.qr(A, mode="r"))
    bracket = Conditioning(R)
    assert not bracket.exact
    low, high = bracket.kappa
    kappa = np.linalg.svd(R.numpy(), compute_uv=False)
    kappa = kappa[0] / kappa[-1]
    assert bracket.kappa_exceeds(kappa * 0.999) and not bracket.kappa_exceeds(kappa * 1.001)
    assert bracket.exact and bracket.kappa == pytest.approx((kappa, kappa), rel=1e-12)
    assert low <= kappa * (1 + 1e-6) <= high * (1 + 2e-6)


def test_an_exactly_singular_factor_is_infinitely_conditioned() -> None:
    R = torch.triu(torch.ones(80, 80, dtype=torch.float64))
    R[40, 40] = 0.0
    bracket = Conditioning(R)
    assert bracket.kappa_exceeds(1e15)
    assert bracket.rank_below(lambda s1: rank_tolerance(80) * max(s1, 1.0))


def test_wide_data_with_offsets_take_the_shifted_normal_equations() -> None:
    """Offsets make the uncentred [1, X] badly conditioned (κ ≈ 400 here, beyond the
    normal equations' κ ≤ 213) while the shifted design is not: the Gram of
    [1, X − x₀, y − y₀] is accepted, and gives the QR fold's R (same shift) and
    numpy's least-squares coefficients."""
    rng = np.random.default_rng(4)
    n, p = 4000, 300
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 2.0, p) + 3.0 * rng.normal(size=p)
    y = X @ rng.normal(size=p) + 1e3 + rng.normal(size=n)
    fast = LinearRegression().fit(X, y)
    qr = LinearRegression(solver="qr").fit(X, y)
    assert fast.solver_used_ == "cholesky" and qr.solver_used_ == "qr"
    uncentred = scaled_singular_values(fast.state_.unshifted_R()[: p + 1, : p + 1])
    assert uncentred[0] / uncentred[-1] > (GRAM_ACCURACY / EPS) ** 0.5
    torch.testing.assert_close(fast.state_.shift_x, qr.state_.shift_x, rtol=0, atol=0)
    torch.testing.assert_close(fast.state_.R.abs(), qr.state_.R.abs(), rtol=1e-10, atol=1e-9)
    A = np.column_stack([np.ones(n), X])
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    ours = np.r_[fast.intercept_, fast.coef_]
    # κ ≈ 3 for the shifted design: 11 digits at least (normwise, slopes and intercept).
    assert np.abs(ours - ref).max() <= 1e-10 * np.abs(ref).max()


def test_a_monotone_test_is_decided_as_on_the_exact_condition_number() -> None:
    rng = np.random.default_rng(4)
    A = np.linalg.qr(rng.normal(size=(400, 100)), mode="r") * np.geomspace(1, 1e-4, 100)
    R = torch.as_tensor(np.linalg.qr(A, mode="r"))
    s = np.linalg.svd(R.numpy(), compute_uv=False)
    kappa = s[0] / s[-1]
    low, high = Conditioning(R).kappa
    assert low < kappa < high
    # Critical values of κ below, inside (either side of κ) and above the bracket.
    for critical, inside in ((low / 10, False), ((low + kappa) / 2, True),
                             ((kappa + high) / 2, True), (high * 10, False)):  # fmt: skip
        bracket = Conditioning(R)
        limit = EPS * critical**2  # a threshold on ε·κ², as the normal equations' rule
        assert bracket.decide(lambda k, limit=limit: EPS * k**2 <= limit) == (kappa <= critical)
        assert bracket.exact == inside  # singular values only where the bracket straddles
        gap = 1e-16 * (1 + critical)  # a gap against a tolerance growing with κ
        assert Conditioning(R).decide(lambda k, gap=gap: gap > 1e-16 * (1 + k)) == (
            kappa < critical
        )


def test_a_robust_summary_of_a_well_conditioned_fit_computes_singular_values_only_to_print(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(5)
    n, p = 2000, 120
    X = rng.normal(size=(n, p)) + 3.0
    y = X @ rng.normal(size=p) + rng.normal(size=n)
    calls = []
    svdvals = torch.linalg.svdvals

    def counted(*args: object, **kwargs: object) -> torch.Tensor:
        calls.append(1)
        return svdvals(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch.linalg, "svdvals", counted)
    model = LinearRegression().fit(X, y)
    summary = model.summary(cov_type="HC1", X=X, y=y)
    monkeypatch.undo()
    # For the two condition numbers the summary prints (κ₂ of the column-scaled design
    # and statsmodels' of the design as given); every decision from the bracket.
    assert len(calls) == 2
    # Oracle: the HC1 sandwich in numpy; κ(A) is ~1e2 here, so 1e-9 is far above rounding.
    A = np.column_stack([np.ones(n), X])
    theta, *_ = np.linalg.lstsq(A, y, rcond=None)
    bread = np.linalg.inv(A.T @ A)
    meat = (A * ((y - A @ theta) ** 2)[:, None]).T @ A
    hc1 = n / (n - p - 1) * bread @ meat @ bread
    se = [c.std_error for c in summary.coefficients]
    np.testing.assert_allclose(se, np.sqrt(np.diag(hc1)), rtol=1e-9)
