"""The side-by-side table: cells are each model's own summary (estimate, standard error
or t, stars by p-value at fixest's cut-offs), coefficients aligned by name (blank where
a model lacks one), fit statistics; text, DataFrame and JSON agree."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import torchlinreg as tl
from torchlinreg.errors import InputError
from torchlinreg.stats.etable import stars


def _models():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(150, 3)), columns=["x1", "x2", "x3"])
    y = X.to_numpy() @ [1.0, 0.15, 0.0] + rng.normal(size=150)
    small = tl.LinearRegression().fit(X[["x1"]], y)
    big = tl.LinearRegression().fit(X, y)
    return small, big, big.summary(cov_type="HC1", X=X, y=y)


def test_cells_are_the_summaries():
    small, big, robust = _models()
    table = tl.etable([small, robust], names=["small", "HC1"])
    frame = table.to_frame()
    assert list(frame.columns) == ["small", "HC1"]
    assert list(frame.index[::2][:4]) == ["intercept", "x1", "x2", "x3"]
    for col, s in zip(frame.columns, [small.summary(), robust], strict=True):
        for c in s.coefficients:
            i = list(frame.index).index(c.name)
            assert frame[col].iloc[i] == f"{c.estimate:.4g}{stars(c.p_value)}"
            assert frame[col].iloc[i + 1] == f"({c.std_error:.4g})"
    i = list(frame.index).index("x2")
    assert frame["small"].iloc[i : i + 2].tolist() == ["", ""]  # x2 and its parenthesis
    assert frame.loc["Covariance"].tolist() == ["nonrobust", "HC1"]
    assert frame.loc["Observations"].tolist() == ["150", "150"]
    text = str(table)
    assert "small" in text and "(standard errors in parentheses" in text
    data = json.loads(table.to_json())
    assert data["models"][1]["coefficients"]["x1"]["std_error"] == robust.coefficients[1].std_error
    assert data["models"][0]["r_squared"] == small.summary().r_squared
    assert "x2" not in data["models"][0]["coefficients"]


def test_t_statistics_and_stars():
    small, big, _ = _models()
    t = tl.etable([small, big], stat="t", digits=3).to_frame()
    c = big.summary().coefficients[1]
    assert t["(2)"].iloc[3] == f"({c.t:.3g})"
    assert [stars(p) for p in (0.0005, 0.005, 0.03, 0.07, 0.5, None)] == [
        "***",
        "**",
        "*",
        ".",
        "",
        "",
    ]


def test_refusals():
    small, big, _ = _models()
    with pytest.raises(InputError, match="list of fitted models"):
        tl.etable(small)
    with pytest.raises(InputError, match="stat must be"):
        tl.etable([small], stat="p")
    with pytest.raises(InputError, match="names has 1 entries for 2 models"):
        tl.etable([small, big], names=["a"])
    with pytest.raises(InputError, match="not a fitted model"):
        tl.etable([small, 3])
