"""``summary MODEL``'s work: what a model file holds, read with numpy alone (describing
a model does not load torch)."""

from __future__ import annotations

import math
from typing import Any

from ..data.design import Design
from .common import coefficients


def describe_model(model_path: str) -> dict[str, Any]:
    """What the model is and how it was fitted, as a JSON-ready dict."""
    from ..persistence import read_model

    contents = read_model(model_path)
    meta = contents.meta
    coef, intercept = contents.arrays["coef"], contents.arrays["intercept"]
    k, p = coef.shape
    design = contents.design or Design(
        targets=[], inputs=meta["feature_names"] or [f"x{j}" for j in range(p)]
    )
    fitted_targets = meta["fitted"].get("target_names_")
    targets = design.targets or fitted_targets or [f"y{j}" for j in range(k)]
    features = design.feature_names
    described = {
        "model": meta["estimator"],
        "params": {name: v for name, v in meta["params"].items() if _plain(v)},
        "targets": targets,
        "features": features,
        "one_hot": design.one_hot,
        "coefficients": coefficients(
            coef, intercept, features, targets, absorbed=meta.get("absorbed") is not None
        ),
        **meta["info"],
    }
    if meta.get("absorbed") is not None:
        described["absorbed"] = meta["absorbed"]
    own = _own_fitted(meta)
    if own:
        described["fitted"] = own
    return described


def _own_fitted(meta: dict[str, Any]) -> dict[str, Any]:
    """The fitted attributes only some estimators have, as saved: the lasso's and
    elastic net's solver passes and duality gap, Huber's scale, outliers and iterations."""
    from .._model_meta import OWN_FITTED

    own = OWN_FITTED.get(meta["estimator"], {})
    return {name: v for name, v in meta["fitted"].items() if name in own}


def _plain(value: Any) -> bool:
    """A parameter shown as it is: None, text, or a number other than NaN."""
    return (
        value is None
        or isinstance(value, (str, int, float, bool))
        and not (isinstance(value, float) and math.isnan(value))
    )
