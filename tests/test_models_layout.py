"""The estimators' house: import paths, warnings that point at the user's call, one θ
layout, and typing helpers that cost nothing at run time."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import torchlinreg
from torchlinreg import (
    AccuracyWarning,
    IllConditionedWarning,
    LinearRegression,
    RankDeficientWarning,
    Ridge,
)

SRC = Path(torchlinreg.__file__).parent


def test_public_import_paths_name_the_same_classes() -> None:
    from torchlinreg.models import linear, ridge

    assert linear.LinearRegression is LinearRegression
    assert linear.Ridge is ridge.Ridge is Ridge
    for name in torchlinreg.__all__:  # every export resolves (they load lazily)
        assert getattr(torchlinreg, name) is not None
    assert torchlinreg.Summary.__name__ == "Summary"
    assert torchlinreg.Prediction.__name__ == "Prediction"
    summary = LinearRegression().fit(np.c_[np.arange(5.0)], [0.0, 1.1, 1.9, 3.2, 4.0]).summary()
    assert isinstance(summary, torchlinreg.Summary)


def test_typing_extensions_is_imported_for_type_checking_only() -> None:
    """``Self`` comes from typing_extensions on Python 3.10; the package must not need
    it at run time (it is no dependency)."""
    found = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = {
            id(node)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
            for node in ast.walk(block)
        }
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module] if isinstance(node, ast.ImportFrom) else []
                names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if "typing_extensions" in names:
                    found.append((path.name, id(node) in guarded))
    assert found, "the probe must see the guarded imports"
    assert all(guarded for _, guarded in found), found


def _polynomial(n: int, degree: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(0, 1, n)
    X = np.column_stack([x**k for k in range(1, degree + 1)])
    return X, X.sum(axis=1) + np.sin(40 * x)


def _caught(call) -> list[warnings.WarningMessage]:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if w.category.__module__ == "torchlinreg.errors"]


@pytest.mark.parametrize(
    "how",
    ["fit", "partial_fit", "fit_chunks"],
)
def test_rank_warnings_point_at_the_users_call(how: str) -> None:
    X = np.random.default_rng(0).normal(size=(20, 2))
    X = np.c_[X, X[:, 0] + X[:, 1]]
    y = X @ [1.0, 2.0, 3.0]
    model = LinearRegression()
    calls = {
        "fit": lambda: model.fit(X, y),
        "partial_fit": lambda: model.partial_fit(X, y),
        "fit_chunks": lambda: model.fit_chunks([(X[:10], y[:10]), (X[10:], y[10:])]),
    }
    caught = _caught(calls[how])
    assert [w.category for w in caught] == [RankDeficientWarning]
    assert caught[0].filename == __file__
    assert "linearly dependent: x0, x1, x2" in str(caught[0].message)
    assert model.aliased_ == ["x0", "x1", "x2"]


def test_accuracy_and_conditioning_warnings_point_at_the_users_call() -> None:
    X, y = _polynomial(30, 7)  # κ ≈ 1e7 after scaling, residuals large: digits at risk
    caught = _caught(lambda: LinearRegression(refine=False).fit_chunks([(X, y)]))
    assert [w.category for w in caught] == [AccuracyWarning]
    assert caught[0].filename == __file__
    X, y = _polynomial(60, 12)  # κ ≈ 3e8
    caught = _caught(lambda: LinearRegression().fit(X, y))
    assert IllConditionedWarning in [w.category for w in caught]
    assert {w.filename for w in caught} == {__file__}


def test_a_penalised_fit_is_not_diagnosed_as_least_squares() -> None:
    X, y = _polynomial(60, 12)
    X = np.c_[X, X[:, 0]]
    assert _caught(lambda: Ridge(alpha=1e-3).fit(X, y)) == []
    assert _caught(lambda: Ridge(alpha=1e-3).fit_chunks([(X, y)])) == []
    # alpha=0 is least squares, and warned about as such.
    caught = _caught(lambda: Ridge(alpha=0.0).fit(X, y))
    assert [w.category for w in caught] == [RankDeficientWarning]
    assert "linearly dependent: x0, x12" in str(caught[0].message)


def test_split_theta_keeps_leading_dimensions() -> None:
    """A stack of θ (epochs of a gradient fit) splits as each θ does."""
    from torchlinreg.solvers.theta import split_theta, stack_theta
    from torchlinreg.training.loop import sklearn_layout

    stack = torch.arange(2 * 4 * 3, dtype=torch.float64).reshape(2, 4, 3)
    coef, b = split_theta(stack, True)
    assert b is not None
    for i in range(2):
        torch.testing.assert_close(stack_theta(coef[i], b[i]), stack[i], rtol=0, atol=0)
    coef_sk, b_sk = sklearn_layout(stack[..., :1], True, target_1d=True)
    assert coef_sk.shape == (2, 3) and b_sk is not None and b_sk.shape == (2,)
    torch.testing.assert_close(b_sk, stack[:, 0, 0], rtol=0, atol=0)
    torch.testing.assert_close(coef_sk, stack[:, 1:, 0], rtol=0, atol=0)


@pytest.mark.parametrize("interval", [None, "confidence"])
def test_feature_name_warnings_point_at_the_users_call(interval: str | None) -> None:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(20, 2)), columns=["a", "b"])
    model = LinearRegression().fit(frame, frame["a"] - frame["b"] + rng.normal(size=20))
    with pytest.warns(UserWarning, match="does not have valid feature names") as caught:
        model.predict(frame.to_numpy(), interval=interval)
    assert [w.filename for w in caught] == [__file__]
