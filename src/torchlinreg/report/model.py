"""The report's inputs gathered from a fitted model (and the rows it was fitted on):
its summary, its influence pass, its training curve, each or the reason it is absent."""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .build import ReportInputs


def fitted_pairs(model: Any, extra: list[tuple[str, Any]] | None = None) -> list[tuple[str, Any]]:
    """What was fitted, from the model itself: its class, target(s), features or
    formula, and the parameters set to other than their defaults."""
    pairs: list[tuple[str, Any]] = [("model", type(model).__name__)]
    pairs += list(extra or [])
    spec = getattr(model, "formula_", None)
    if spec is not None:
        pairs.append(("formula", getattr(spec, "formula", spec)))
    names = getattr(model, "feature_names_in_", None)
    features = [str(n) for n in names] if names is not None else None
    n_features = getattr(model, "n_features_in_", None)
    if features is not None:
        pairs.append(("features", ", ".join(features)))
    elif n_features is not None:
        pairs.append(("features", f"{n_features} unnamed column(s)"))
    pairs.append(("options", _options(model)))
    return pairs


def _options(model: Any) -> str:
    """The parameters that differ from the class's defaults (all are shown as set)."""
    defaults = type(model)().get_params()
    changed = {k: v for k, v in model.get_params().items() if defaults.get(k, v) != v}
    return ", ".join(f"{k}={v!r}" for k, v in sorted(changed.items())) or "the defaults"


def summaries_of(model: Any, level: float = 0.95) -> tuple[list[Any], str]:
    """The model's statistical summaries, or none and why (gradient fits have none)."""
    if not hasattr(model, "summary"):
        return [], (
            "Gradient-trained models carry no statistical summary: the table gives the "
            "coefficients; fit a LinearRegression for standard errors and tests."
        )
    if _penalised_or_robust(model):
        return [], (
            f"A {type(model).__name__} fit has no classical standard errors (its penalty or "
            "robust loss changes the estimator's distribution): the table gives the "
            "coefficients; fit a LinearRegression for standard errors and tests."
        )
    out = model.summary(level)
    return (out if isinstance(out, list) else [out]), ""


def coefficient_table(model: Any) -> dict[str, dict[str, float]]:
    """``{target: {"intercept": b, feature: w}}`` of any fitted linear model."""
    import numpy as np

    from ..jobs.common import coefficients

    coef = np.atleast_2d(model.coef_)
    names = getattr(model, "feature_names_in_", None)
    features = (
        [str(n) for n in names] if names is not None else [f"x{j}" for j in range(coef.shape[1])]
    )
    targets = list(getattr(model, "target_names_", None) or [])
    if len(targets) != coef.shape[0]:
        targets = ["y"] if coef.shape[0] == 1 else [f"y{j}" for j in range(coef.shape[0])]
    absorbed = getattr(model, "absorbed_", None) is not None
    return coefficients(coef, model.intercept_, features, targets, absorbed=absorbed)


def influence_refusal(model: Any) -> str:
    """Why the model has no influence statistics ('' when it has them)."""
    if _penalised_or_robust(model):
        return (
            "Influence statistics and diagnostic plots are computed from an ordinary "
            f"least-squares fit; a {type(model).__name__} fit is penalised or robust."
        )
    if not hasattr(model, "state_"):
        return (
            "Influence statistics and diagnostic plots are computed from an exact "
            "least-squares fit; this model was trained by gradient descent."
        )
    if getattr(model, "absorbed_", None) is not None:
        # The fit is of the demeaned rows: a row's leverage includes its levels' share
        # (1/n of its firm, ...), which the model does not keep.
        return (
            "Influence statistics and diagnostic plots are not computed for a fit with "
            "fixed effects absorbed (a row's leverage includes its levels' share)."
        )
    from ..stats.influence_rows import check_model

    try:
        check_model(model)
    except InputError as exc:
        return f"No influence statistics: {exc}."
    return ""


def training_curve_of(model: Any, history: dict[str, Any] | None, require: bool) -> tuple[Any, str]:
    """The training curve of a gradient fit (from ``history_``, else from a model
    file's recorded ``history``), or None and why; ``require``: refuse instead."""
    from ..plots.training import curve_from, training_curve

    if not hasattr(model, "history_") and not _is_gd(model):
        if require:
            raise InputError("a training curve is drawn for gradient-trained models only")
        return None, ""
    if getattr(model, "history_", None) is not None:
        return training_curve(model), ""
    if history and isinstance(history.get("cost"), list) and history["cost"]:
        cost = history["cost"]
        epoch = history.get("epoch") or list(range(len(cost)))
        try:
            return curve_from(epoch, cost, history.get("exact_cost")), ""
        except (TypeError, ValueError):  # the file's record is not numbers
            raise InputError(
                "the model file's training history is not a list of numbers per epoch"
            ) from None
    why = (
        "this gradient-trained model keeps no per-epoch costs (a model file records "
        "them only when written by a torchlinreg that saves the history)"
    )
    if require:
        raise InputError(f"{why}; refit it, or leave out --training-curve")
    return None, f"No training curve: {why}."


def _is_gd(model: Any) -> bool:
    return type(model).__name__ == "GDRegressor"


def gather(
    model: Any,
    data: Any,
    *,
    title: str,
    fitted: list[tuple[str, Any]],
    history: dict[str, Any] | None = None,
    require_curve: bool = False,
    level: float = 0.95,
    top_k: int = 10,
    sample_size: int = 2000,
    random_state: Any = 0,
) -> ReportInputs:
    """The report's inputs; ``data`` is the fitted rows as
    :func:`~torchlinreg.stats.influence.influence_summary` takes them (read once, only
    when the model has influence statistics)."""
    curve, curve_note = training_curve_of(model, history, require_curve)
    summaries, summary_note = summaries_of(model, level)
    refusal = influence_refusal(model)
    influence = None
    if not refusal:
        from ..stats.influence import influence_summary

        influence = influence_summary(
            model, data, top_k=top_k, sample_size=sample_size, random_state=random_state
        )
    return ReportInputs(
        title=title,
        fitted=fitted,
        summaries=summaries,
        coefficients={} if summaries else coefficient_table(model),
        summary_note=summary_note,
        influence=influence,
        influence_note=refusal,
        curve=curve,
        curve_note=curve_note,
    )


def _penalised_or_robust(model: Any) -> bool:
    """Lasso, ElasticNet and HuberRegressor: no classical standard errors or influence."""
    return type(model).__name__ in ("Lasso", "ElasticNet", "HuberRegressor")
