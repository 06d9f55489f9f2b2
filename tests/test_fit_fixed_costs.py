"""The shortcuts that keep a small fit's fixed costs down decide exactly as before.

A grid search repeats the parameter checks, ``clone`` and the solve's column scaling at
every fit (docs/benchmarks.md, Small fits); each is answered on a fast path (one number
for ``alpha``, the constructor's names read once, the column scale kept on the state).
Each test holds a fast path to the general one it replaces.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchlinreg import LinearRegression, Ridge
from torchlinreg.errors import InputError
from torchlinreg.solvers.solve import design_conditioning, scaled_condition, solve_ols
from torchlinreg.solvers.state import LeastSquaresState


def _data(n: int = 60, p: int = 3, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.standard_normal((n, p)) * [1.0, 1e3, 1e-3][:p]
    y = X @ rng.standard_normal((p, k)) + rng.standard_normal((n, k))
    return X, y[:, 0] if k == 1 else y


@pytest.mark.parametrize("alpha", [2.0, 2, np.float64(2.0), np.int64(2), np.float32(2.0)])
def test_one_number_is_the_same_ridge_as_a_one_element_list(alpha: object) -> None:
    X, y = _data(k=2)
    fast = Ridge(alpha=alpha).fit(X, y)  # type: ignore[arg-type]
    general = Ridge(alpha=[float(alpha)] * 2).fit(X, y)  # type: ignore[arg-type]
    np.testing.assert_array_equal(fast.coef_, general.coef_)
    np.testing.assert_array_equal(fast.intercept_, general.intercept_)


@pytest.mark.parametrize(
    ("alpha", "message"),
    [
        (-1.0, "alpha must be finite and >= 0"),
        (np.float64(-0.5), "alpha must be finite and >= 0"),
        (float("nan"), "alpha must be finite and >= 0"),
        (float("inf"), "alpha must be finite and >= 0"),
        ([1.0, -1.0], "alpha must be finite and >= 0"),
        (True, "alpha must be a number or one per target"),
        (np.bool_(True), "alpha must be a number or one per target"),
        ("1", "alpha must be a number or one per target"),
    ],
)
def test_bad_alpha_is_refused_with_the_same_message(alpha: object, message: str) -> None:
    X, y = _data(k=2)
    with pytest.raises(InputError, match=message):
        Ridge(alpha=alpha).fit(X, y)  # type: ignore[arg-type]


@pytest.mark.parametrize(("alpha", "penalised"), [(0, False), (0.0, False), (1e-300, True),
                                                  ([0.0, 0.0], False), ([0.0, 1.0], True)])  # fmt: skip
def test_penalised_is_any_nonzero_alpha(alpha: object, penalised: bool) -> None:
    assert Ridge(alpha=alpha)._penalised() is penalised  # type: ignore[arg-type]


def test_parameter_names_are_each_class_own_and_a_fresh_list() -> None:
    class Wider(Ridge):
        def __init__(self, alpha: float = 1.0, *, extra: int = 0) -> None:
            super().__init__(alpha)
            self.extra = extra

    assert Ridge._param_names() == ["alpha", "fit_intercept", "solver", "refine", "device"]
    assert Wider._param_names() == ["alpha", "extra"]
    assert LinearRegression._param_names()[0] == "fit_intercept"
    names = Ridge._param_names()
    names.append("changed")  # a caller's list: the cached names stay as they were
    assert "changed" not in Ridge._param_names()
    assert Wider(extra=3).get_params() == {"alpha": 1.0, "extra": 3}


def _state(X: np.ndarray, y: np.ndarray) -> LeastSquaresState:
    state = LeastSquaresState(X.shape[1], 1)
    state.update(X, y)
    return state


def test_the_scale_kept_on_the_state_is_that_of_its_current_R() -> None:
    X, y = _data()
    state = _state(X, y)
    RA = state.R_design.clone()
    # A bracket made before more rows come in, read after: that of the R it was made of.
    before = design_conditioning(state)
    state.update(X[:20] * 1e4, y[:20])
    assert before.value == scaled_condition(RA)
    # A solve after them: the scale of the new R, not the one kept for the old.
    solution = solve_ols(state)
    assert solution.conditioning.value == scaled_condition(state.R_design)
    assert solution.conditioning.value != before.value
    fresh = solve_ols(state.copy())  # a copy keeps no derived numbers
    torch.testing.assert_close(solution.coef, fresh.coef, rtol=0, atol=0)
    torch.testing.assert_close(solution.intercept, fresh.intercept, rtol=0, atol=0)
