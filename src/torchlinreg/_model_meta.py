"""What a model file may hold: every metadata field's type and range, and its agreement
with the tensors, checked before anything is built from it.

A file is untrusted input: its checksum only detects accidents, since anyone who edits
a file can recompute it. So each field is checked against what :func:`save_model
<torchlinreg.persistence.save_model>` writes, and the fields that repeat one another
(feature names, shapes, target count, the state's own record) must agree. Numbers that
a fit can legitimately make infinite (a condition number, t of an exact fit) may be;
every other number must be finite. The parameters are checked against the estimators'
allowed values (:mod:`._model_params`), the saved R factor against the counts, the rank
and the coefficients it determines (:mod:`._state_checks`). Only numpy is needed
(``summary`` stays light).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from ._json_checks import (
    boolean,
    integer,
    invalid,
    json_object,
    key,
    optional_real,
    real,
    show,
    string,
    strings,
)
from ._model_params import ESTIMATORS, check_params
from ._state_checks import check_state_numbers
from .data.design import MISSING, Design
from .errors import InputError

_TOP = ("estimator", "params", "target_1d", "n_features", "feature_names", "design",
        "state", "fitted", "info")  # fmt: skip
_TOP_OPTIONAL = ("torchlinreg_version", "created")


def _check_design(d: Any, features: list[str] | None, n_features: int, k: int) -> Design:
    json_object(d, "design", ("targets", "inputs"), ("one_hot", "weights", "missing",
            "drop_reference"), strict=False)  # fmt: skip
    targets = strings(d["targets"], "design.targets", unique=True)
    inputs = strings(d["inputs"], "design.inputs", unique=True)
    one_hot = json_object(d.get("one_hot", {}), "design.one_hot", (), tuple(inputs))
    for col, cats in one_hot.items():
        strings(cats, f"design.one_hot.{key(col)}", unique=True)
    if d.get("weights") is not None:
        string(d["weights"], "design.weights")
    if d.get("missing", "error") not in MISSING:
        raise invalid("design.missing", d.get("missing"), " or ".join(map(repr, MISSING)))
    boolean(d.get("drop_reference", True), "design.drop_reference")
    design = Design.from_dict(d)
    if len(design.feature_names) != n_features:
        raise InputError(
            f"the column design makes {len(design.feature_names)} features for "
            f"{n_features} coefficients"
        )
    if features is not None and features != design.feature_names:
        raise InputError("the column design and the feature names disagree")
    if targets and len(targets) != k:
        raise InputError(f"the column design names {len(targets)} target(s) for {k}")
    return design


def _check_state(meta: Any, arrays: dict[str, np.ndarray], p: int, k: int,
                 fit_intercept: bool) -> dict[str, Any]:  # fmt: skip
    """The state's record agrees with the coefficients, and its tensors with the record;
    returns the record (its counts)."""
    json_object(meta, "state", ("n_features", "n_targets", "fit_intercept", "n_samples",
            "weight_sum"), ("n_observations", "log_weight_sum", "weighted"))  # fmt: skip
    if integer(meta["n_features"], "state.n_features", 1) != p:
        raise InputError(f"the saved state has {meta['n_features']} features for {p}")
    if integer(meta["n_targets"], "state.n_targets", 1) != k:
        raise InputError(f"the saved state has {meta['n_targets']} targets for {k}")
    if boolean(meta["fit_intercept"], "state.fit_intercept") != fit_intercept:
        raise InputError("the saved state and the parameters disagree on the intercept")
    n = integer(meta["n_samples"], "state.n_samples", 1)
    # A fit needs a row of positive weight (files before zero weights were told apart
    # count every row as an observation).
    n_obs = integer(meta.get("n_observations", n), "state.n_observations", 1, n)
    weight_sum = real(meta["weight_sum"], "state.weight_sum", low=sys.float_info.min)
    log_w = meta.get("log_weight_sum", 0.0)
    real(log_w, "state.log_weight_sum", high=sys.float_info.max, infinite=True)  # −∞: zero weights
    # Files written before weights were recorded say nothing of them.
    unweighted = "weighted" in meta and not boolean(meta["weighted"], "state.weighted")
    if unweighted and (n_obs, weight_sum) != (n, float(n)):
        raise InputError(
            f"the saved state without weights has {n} rows but {n_obs} observations "
            f"and a weight sum of {weight_sum!r}"
        )
    m = p + k + int(fit_intercept)
    for name, shape in (("R", (m, m)), ("shift_x", (p,)), ("shift_y", (k,))):
        got = arrays[f"state.{name}"].shape
        if got != shape:
            raise InputError(f"the saved state has {name} of shape {got}, expected {shape}")
    if np.any(np.tril(arrays["state.R"], -1) != 0):
        raise InputError("the saved state has an R that is not upper triangular")
    if not fit_intercept and (arrays["state.shift_x"].any() or arrays["state.shift_y"].any()):
        raise InputError("the saved state of a model without an intercept has a nonzero shift")
    return meta


def _check_fitted(fitted: Any, n_params: int, k: int, estimator: str = "") -> None:
    own = tuple(OWN_FITTED.get(estimator, {}))
    json_object(fitted, "fitted", (), ("rank_", "condition_number_", "aliased_", "refined_",
            "solver_used_", "n_samples_seen_", "target_names_", *own))  # fmt: skip
    checks: dict[str, Any] = {
        "rank_": lambda v, w: integer(v, w, 0, n_params),
        "condition_number_": lambda v, w: optional_real(v, w, low=1, infinite=True),
        "aliased_": strings,
        "refined_": boolean,
        "solver_used_": lambda v, w: None if v is None else string(v, w),
        "n_samples_seen_": integer,
        "target_names_": lambda v, w: None if v is None else strings(v, w, length=k),
    }
    for name, value in fitted.items():
        if name in checks:
            checks[name](value, f"fitted.{name}")
        else:
            OWN_FITTED[estimator][name](value, f"fitted.{name}", k)


def _per_target(check: Any) -> Any:
    """One value for a model of one target (as the estimator keeps it), or a list of
    one per target."""

    def checked(value: Any, where: str, k: int) -> None:
        if isinstance(value, list):
            if len(value) != k:
                raise invalid(where, value, f"a list of {k} values, one per target")
            for j, v in enumerate(value):
                check(v, f"{where}[{j}]")
        else:
            check(value, where)

    return checked


# The fitted attributes only some estimators have: the lasso's and elastic net's solver
# passes and duality gap (tiny negative gaps are rounding), Huber's iterations, scale
# and outliers (one target).
_SOLVER_PASSES = _per_target(lambda v, w: integer(v, w))
_ENET_FITTED = {"n_iter_": _SOLVER_PASSES, "dual_gap_": _per_target(real)}
OWN_FITTED: dict[str, dict[str, Any]] = {
    "Lasso": _ENET_FITTED,
    "ElasticNet": _ENET_FITTED,
    "HuberRegressor": {
        "n_iter_": lambda v, w, k: integer(v, w),
        "scale_": lambda v, w, k: real(v, w, low=sys.float_info.min),
        "n_outliers_": lambda v, w, k: integer(v, w),
    },
}


def _check_fit(fit: Any, k: int) -> None:
    json_object(fit, "info.fit", (), ("n", "rss", "mse", "rmse", "r2"), strict=False)
    if "n" in fit:
        integer(fit["n"], "info.fit.n")
    for name in ("rss", "mse", "rmse", "r2"):
        if name not in fit:
            continue
        values = fit[name]
        if not isinstance(values, list) or len(values) != k:
            raise invalid(f"info.fit.{name}", values, f"a list of {k} number(s)")
        for j, v in enumerate(values):
            where = f"info.fit.{name}[{j}]"
            if name == "r2":  # NaN or null: R² is undefined for a constant target
                optional_real(v, where, high=1, nan=True)
            else:
                real(v, where, low=0)


_SUMMARY_NUMBERS: dict[str, dict[str, Any]] = {
    "df_resid": {"low": 0},
    "sigma": {"low": 0},
    "r_squared": {"high": 1},
    "adj_r_squared": {},
    "f_statistic": {"low": 0},
    "f_p_value": {"low": 0, "high": 1},
    "log_likelihood": {},
    "aic": {},
    "bic": {},
    "condition_number": {"low": 1, "infinite": True},
    "f_df_denominator": {"low": 0},
    "aicc": {},
    "hqic": {},
    "df_inference": {"low": 0},
}
_COEFFICIENT_NUMBERS: dict[str, dict[str, Any]] = {
    "std_error": {"low": 0},
    "t": {"infinite": True},  # an exact fit: t = ±∞
    "p_value": {"low": 0, "high": 1},
    "ci_lower": {},
    "ci_upper": {},
}


def _check_summary(s: Any, where: str, names: list[str] | None, n_params: int) -> None:
    """One target's inference, as ``Summary.to_dict`` writes it; the optional fields
    that older files lack are filled in (with None, "OLS", no notes)."""
    required = ("target", "n", "df_model", "condition_number", "cov_type", "level",
                "coefficients")  # fmt: skip
    known = (*_SUMMARY_NUMBERS, "method", "cov", "notes")
    json_object(s, where, required, known, strict=False)
    string(s["target"], f"{where}.target")
    string(s.get("method", "OLS"), f"{where}.method")
    integer(s["n"], f"{where}.n")
    real(s["df_model"], f"{where}.df_model", low=0)
    for name, limits in _SUMMARY_NUMBERS.items():
        optional_real(s.get(name), f"{where}.{name}", **limits)
    string(s["cov_type"], f"{where}.cov_type")
    real(s["level"], f"{where}.level", low=sys.float_info.epsilon, high=1 - sys.float_info.epsilon)
    strings(s.get("notes", []), f"{where}.notes")
    rows = s["coefficients"]
    if not isinstance(rows, list) or len(rows) != n_params:
        raise invalid(f"{where}.coefficients", rows, f"a list of {n_params} coefficients")
    for i, c in enumerate(rows):
        at = f"{where}.coefficients[{i}]"
        json_object(c, at, ("name", "estimate", *_COEFFICIENT_NUMBERS))
        string(c["name"], f"{at}.name")
        real(c["estimate"], f"{at}.estimate")
        for name, limits in _COEFFICIENT_NUMBERS.items():
            optional_real(c[name], f"{at}.{name}", **limits)
    if names is not None and [c["name"] for c in rows] != names:
        raise InputError(f"the model metadata is invalid: {where} names other coefficients")
    for name in (*_SUMMARY_NUMBERS, "cov"):
        s.setdefault(name, None)
    s.setdefault("method", "OLS")
    s.setdefault("notes", [])
    cov = s["cov"]
    if cov is not None:
        if not isinstance(cov, list) or len(cov) != n_params:
            raise invalid(f"{where}.cov", cov, f"a {n_params}x{n_params} matrix")
        for i, row in enumerate(cov):
            if not isinstance(row, list) or len(row) != n_params:
                raise invalid(f"{where}.cov[{i}]", row, f"a row of {n_params} numbers")
            for j, v in enumerate(row):
                real(v, f"{where}.cov[{i}][{j}]")


def _check_penalized_info(info: dict[str, Any], k: int) -> None:
    """What ``fit --lasso``/``--elasticnet`` (``penalty``) and ``--huber`` (``huber``)
    record of the solver's outcome, as jobs/penalized.py writes it."""
    if "penalty" in info:
        p = json_object(info["penalty"], "info.penalty", ("alpha", "l1_ratio", "n_iter",
                        "dual_gap", "nonzero"))  # fmt: skip
        real(p["alpha"], "info.penalty.alpha", low=0)
        real(p["l1_ratio"], "info.penalty.l1_ratio", low=0, high=1)
        for name, check in (("n_iter", integer), ("dual_gap", real), ("nonzero", integer)):
            values = p[name]
            if not isinstance(values, list) or len(values) != k:
                raise invalid(f"info.penalty.{name}", values, f"a list of {k} number(s)")
            for j, v in enumerate(values):
                check(v, f"info.penalty.{name}[{j}]")
    if "huber" in info:
        h = json_object(info["huber"], "info.huber", ("epsilon", "alpha", "scale",
                        "n_outliers", "n_iter"))  # fmt: skip
        real(h["epsilon"], "info.huber.epsilon", low=1)
        real(h["alpha"], "info.huber.alpha", low=0)
        real(h["scale"], "info.huber.scale", low=sys.float_info.min)
        integer(h["n_outliers"], "info.huber.n_outliers")
        integer(h["n_iter"], "info.huber.n_iter")


def _check_info(info: Any, names: list[str] | None, n_params: int, k: int) -> None:
    known = ("method", "source", "n", "dropped", "fit", "condition_number", "rank",
             "refined", "summary")  # fmt: skip
    json_object(info, "info", (), known, strict=False)
    for name in ("method", "source"):
        if name in info:
            string(info[name], f"info.{name}")
    for name in ("n", "dropped", "rank"):
        if name in info:
            integer(info[name], f"info.{name}")
    if "refined" in info:
        boolean(info["refined"], "info.refined")
    optional_real(info.get("condition_number"), "info.condition_number", low=1, infinite=True)
    if "fit" in info:
        _check_fit(info["fit"], k)
    _check_penalized_info(info, k)
    summaries = info.get("summary")
    if summaries is not None:
        if not isinstance(summaries, list) or len(summaries) != k:
            raise invalid("info.summary", summaries, f"a list of {k} target summaries")
        for j, s in enumerate(summaries):
            _check_summary(s, f"info.summary[{j}]", names, n_params)


def check_model(meta: Any, arrays: dict[str, np.ndarray]) -> None:
    """Check a model file's metadata (parsed JSON) against its float64 tensors (whose
    names and dimensions the reader has checked); raises :class:`InputError`."""
    json_object(meta, "the metadata", _TOP, (*_TOP_OPTIONAL, "formula", "covariance", "absorbed"))
    for name in _TOP_OPTIONAL:
        if name in meta:
            string(meta[name], name)
    if meta["estimator"] not in ESTIMATORS:
        raise InputError(f"unknown estimator {show(meta['estimator'])} in the model file")
    coef, intercept = arrays["coef"], arrays["intercept"]
    k = coef.shape[0]
    p = integer(meta["n_features"], "n_features", 1)
    if k < 1 or coef.shape[1] != p or intercept.shape != (k,):
        raise InputError(
            f"coefficients of shape {coef.shape} and intercept {intercept.shape} "
            f"do not fit {p} features"
        )
    for name, a in arrays.items():
        if not np.isfinite(a).all():
            raise InputError(f"the tensor {name!r} holds numbers that are not finite")
    if boolean(meta["target_1d"], "target_1d") and k != 1:
        raise InputError(f"a model of one target has {k} rows of coefficients")
    params = check_params(meta["estimator"], meta["params"], k)
    fit_intercept = params.get("fit_intercept", True)
    if meta.get("absorbed") is not None:
        _check_absorbed(meta["absorbed"], meta, arrays, k)
        fit_intercept = False  # the fixed effects absorb it: the state has none
    if not fit_intercept and np.any(intercept != 0):
        raise InputError("a model fitted without an intercept has a nonzero intercept")
    names = meta["feature_names"]
    if names is not None:
        strings(names, "feature_names", length=p, unique=True)
    if meta["design"] is not None:
        names = _check_design(meta["design"], names, p, k).feature_names
    if meta.get("formula") is not None:
        from .formula.record import check_formula

        check_formula(meta["formula"], names, k, fit_intercept)
        _check_formula_absorbs(meta["formula"], meta.get("absorbed"))
    has_state = "state.R" in arrays
    if has_state and meta["estimator"] == "HuberRegressor":
        raise InputError("a HuberRegressor has no least-squares state, but one is saved")
    _check_covariance(meta.get("covariance"), arrays, p + int(fit_intercept), k, has_state)
    if (meta["state"] is not None) != has_state:
        raise InputError("the saved state's record and its tensors do not come together")
    n_params = p + int(fit_intercept)
    _check_fitted(meta["fitted"], n_params, k, meta["estimator"])
    coefficient_names = None if names is None else ["intercept"] * fit_intercept + names
    _check_info(meta["info"], coefficient_names, n_params, k)
    if has_state:
        counts = _check_state(meta["state"], arrays, p, k, fit_intercept)
        _check_fit_against_state(meta, counts, n_params)
        _check_absorbed_levels(meta.get("absorbed"), counts)
        full_rank = _rank_diagnosed(meta["estimator"], params) and _rank(meta) == n_params
        check_state_numbers(arrays["state.R"], counts, coef, fit_intercept=fit_intercept,
                            full_rank=full_rank)  # fmt: skip


def _check_absorbed(record: Any, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                    k: int) -> None:  # fmt: skip
    """Fixed effects absorbed (``AbsorbedEffects.to_dict``): their names, level counts
    and nesting, the regressors they absorbed, how the demeaning ran and each target's
    total sum of squares. The summary's degrees of freedom come from the level counts."""
    if meta["estimator"] not in ("LinearRegression", "Ridge") or "state.R" not in arrays:
        raise InputError("absorbed fixed effects are saved without the exact state they belong to")
    json_object(record, "absorbed", ("factors", "n_levels", "nested", "dropped", "method",
            "iterations", "redundant_levels", "tss"))  # fmt: skip
    factors = strings(record["factors"], "absorbed.factors", unique=True)
    if not factors:
        raise invalid("absorbed.factors", factors, "at least one factor name")
    m = len(factors)
    for name in ("n_levels", "nested"):
        if not isinstance(record[name], list) or len(record[name]) != m:
            raise invalid(f"absorbed.{name}", record[name], f"a list of {m}, one per factor")
    for i, (levels, nested) in enumerate(zip(record["n_levels"], record["nested"], strict=True)):
        integer(levels, f"absorbed.n_levels[{i}]", 1)
        boolean(nested, f"absorbed.nested[{i}]")
    dropped = strings(record["dropped"], "absorbed.dropped", unique=True)
    if set(dropped) & set(meta["feature_names"] or ()):
        raise InputError("the model metadata is invalid: absorbed.dropped names a kept feature")
    if record["method"] not in ("direct", "alternating", "cg"):
        raise invalid("absorbed.method", record["method"], "'direct', 'alternating' or 'cg'")
    integer(record["iterations"], "absorbed.iterations")
    if record["redundant_levels"] is not None:
        integer(record["redundant_levels"], "absorbed.redundant_levels")
    tss = record["tss"]
    if not isinstance(tss, list) or len(tss) != k:
        raise invalid("absorbed.tss", tss, f"a list of {k} number(s), one per target")
    for j, t in enumerate(tss):
        real(t, f"absorbed.tss[{j}]", low=0)


def _check_formula_absorbs(formula: dict[str, Any], absorbed: Any) -> None:
    """A formula's fixed effects (``| firm + year``) are those the model absorbed."""
    factors = None if absorbed is None else absorbed["factors"]
    if formula.get("absorb") != factors and (formula.get("absorb") or factors):
        raise InputError(
            "the model metadata is invalid: the formula's fixed effects and the absorbed "
            "ones (absorbed.factors) disagree"
        )


def _check_absorbed_levels(record: Any, counts: dict[str, Any]) -> None:
    """The fixed effects' levels are levels of observations (positive weight)."""
    if record is None:
        return
    n_obs = counts.get("n_observations", counts["n_samples"])
    for i, levels in enumerate(record["n_levels"]):
        if levels > n_obs:
            raise InputError(
                f"the model metadata is invalid: absorbed.n_levels[{i}] is {levels}, "
                f"more levels than the {n_obs} observation(s) fitted"
            )


def _check_covariance(
    record: Any, arrays: dict[str, np.ndarray], n_params: int, k: int, has_state: bool
) -> None:
    """A robust covariance computed at fit time: its type, cluster count and leverage
    flag, and its meat (k, p', p'), which needs the saved state to mean anything."""
    from .stats.cov_types import ROBUST

    if (record is not None) != ("covariance.meat" in arrays):
        raise InputError("the covariance's record and its tensor do not come together")
    if record is None:
        return
    if not has_state:
        raise InputError("a robust covariance is saved without the state it belongs to")
    json_object(record, "covariance", ("cov_type", "n_groups", "full_leverage"), ("extra",))
    if record["cov_type"] not in ROBUST:
        raise invalid("covariance.cov_type", record["cov_type"], "one of " + ", ".join(ROBUST))
    _check_extra_covariance(record, arrays, (k, n_params, n_params))
    if record["cov_type"] in ("cluster", "CRV3"):
        integer(record["n_groups"], "covariance.n_groups", 2)
    elif record["n_groups"] is not None:
        raise invalid("covariance.n_groups", record["n_groups"], "null (not a cluster covariance)")
    boolean(record["full_leverage"], "covariance.full_leverage")
    shape = arrays["covariance.meat"].shape
    if shape != (k, n_params, n_params):
        raise InputError(
            f"the saved covariance's meat has shape {shape}, expected {(k, n_params, n_params)}"
        )


def _check_extra_covariance(
    record: dict[str, Any], arrays: dict[str, np.ndarray], shape: tuple[int, ...]
) -> None:
    """HAC, CRV3 and two-way cluster records (stats/extra_meat.py): kind, lag, cluster
    counts, and the corrected meat that comes with them."""
    extra = record.get("extra")
    if (extra is not None) != ("covariance.corrected" in arrays):
        raise InputError(
            "the covariance's extra record and its corrected meat do not come together"
        )
    kinds = {"HAC": "HAC", "CRV3": "CRV3", "cluster": "cluster2"}
    if extra is None:
        if record["cov_type"] in ("HAC", "CRV3"):
            raise InputError(f"a {record['cov_type']} covariance is saved without its record")
        return
    json_object(extra, "covariance.extra", ("kind", "lags", "group_counts"))
    if extra["kind"] != kinds.get(record["cov_type"]):
        raise invalid("covariance.extra.kind", extra["kind"], "the kind of its cov_type")
    if extra["kind"] == "HAC":
        integer(extra["lags"], "covariance.extra.lags")
    elif extra["lags"] is not None:
        raise invalid("covariance.extra.lags", extra["lags"], "null (not HAC)")
    counts = extra["group_counts"]
    if not isinstance(counts, list) or len(counts) > 3:
        raise invalid("covariance.extra.group_counts", counts, "a list of cluster counts")
    for i, g in enumerate(counts):
        integer(g, f"covariance.extra.group_counts[{i}]", 1)
    if arrays["covariance.corrected"].shape != shape:
        raise InputError(
            f"the saved covariance's corrected meat has shape "
            f"{arrays['covariance.corrected'].shape}, expected {shape}"
        )


def _rank(meta: dict[str, Any]) -> int | None:
    """The rank the model records (as a fitted attribute and in the fit's information)."""
    ranks = {meta["fitted"].get("rank_"), meta["info"].get("rank")} - {None}
    if len(ranks) > 1:
        raise InputError("the model metadata is invalid: fitted.rank_ and info.rank disagree")
    return ranks.pop() if ranks else None


def _rank_diagnosed(estimator: str, params: dict[str, Any]) -> bool:
    """Whether the recorded rank is least squares' numerical rank: a ridge penalising
    every target records full rank whatever the design (its solution is unique)."""
    if estimator in ("Lasso", "ElasticNet"):
        return False  # the penalised solvers record full rank whatever the design
    if estimator != "Ridge":
        return True
    alpha = params.get("alpha", 1.0)  # Ridge's default
    return any(a == 0 for a in (alpha if isinstance(alpha, list) else [alpha]))


def _check_fit_against_state(meta: dict[str, Any], counts: dict[str, Any], n_params: int) -> None:
    """The fitted attributes that repeat the state's counts agree with them."""
    n = counts["n_samples"]
    seen = meta["fitted"].get("n_samples_seen_", n)
    if seen != n:
        raise InputError(f"the model records {seen} samples seen, but its saved state {n}")
    rank, n_obs = _rank(meta), counts.get("n_observations", n)
    # Rows of positive weight bound the design's rank (a penalised ridge records full rank).
    if rank is not None and rank > n_obs and _rank_diagnosed(meta["estimator"], meta["params"]):
        raise InputError(f"the model records rank {rank} from {n_obs} observation(s)")
