"""What the jobs share: opening a data file, the columns a saved model reads, and the
coefficient table as reports show it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.design import Design, require_columns
from ..data.sources import Source, open_source
from ..errors import InputError


def open_data(path: str, delimiter: str | None) -> Source:
    """The source at ``path``, refused when it holds no data rows."""
    source = open_source(path, delimiter=delimiter)
    if source.empty:
        raise InputError(f"{source.name} has a header but no data rows")
    return source


def model_design(model_file: Any) -> Design:
    """The design a saved model was fitted with; a model fitted on an array has none,
    and one fitted from a DataFrame has its feature names only."""
    if model_file.design is not None:
        return model_file.design
    names = getattr(model_file.estimator, "feature_names_in_", None)
    if names is None:
        raise InputError(
            "this model was fitted without feature names, so its columns cannot be found "
            "in a file; fit it from a file or from a DataFrame"
        )
    return Design(targets=[], inputs=[str(n) for n in names])


def check_inputs(source: Source, design: Design, with_targets: bool) -> None:
    """Refuse a source that lacks a column the model reads (its targets too when
    ``with_targets``), listing the columns it has."""
    require_columns(source, design.inputs, "feature")
    if with_targets:
        require_columns(source, design.targets, "target")


def coefficients(
    coef: Any, intercept: Any, features: Sequence[str], targets: Sequence[str]
) -> dict[str, dict[str, float]]:
    """``{target: {"intercept": b, feature: w, ...}}`` from coefficients shaped (p,) or
    (k, p) and intercepts shaped () or (k,)."""
    coef, intercept = np.atleast_2d(coef), np.atleast_1d(intercept)
    return {
        t: {
            "intercept": float(intercept[j]),
            **{f: float(coef[j, i]) for i, f in enumerate(features)},
        }
        for j, t in enumerate(targets)
    }
