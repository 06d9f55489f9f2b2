"""Statistical inference for least-squares fits, from the exact solver's state.

Everything follows from R (the state), the coefficients θ and, for robust covariances,
one more pass over the data (:mod:`.covariance`). Conventions are R's ``summary.lm``
and statsmodels':

* n is the number of observations: rows of positive weight (a zero-weight row is not an
  observation, as in R's ``lm``); df_resid = n − rank; df_model = rank − (1 if intercept);
* nonrobust inference uses Student t with df_resid; robust covariances (HC0–HC3,
  cluster) use the normal distribution for p-values and intervals, and the F test with
  df_resid denominator degrees of freedom (cluster: number of groups − 1).

Each statistic is one small function below, its formula in a comment.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..solvers.state import LeastSquaresState
from .cov_types import COV_TYPES, check_cov_type  # noqa: F401 - imported from here too
from .covariance import bread, check_same_data, robust_wald, sandwich, unshifted_design_r
from .meat import Meat, robust_meat
from .rounding import exact_fit_gamma
from .scaling import scale_weights
from .summary import Coefficient, Summary


def check_level(level: float) -> None:
    if not isinstance(level, (int, float)) or not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1 (e.g. 0.95), got {level!r}")


# --- One statistic, one function --------------------------------------------------


def r_squared(rss: float, tss: float) -> float | None:
    # R² = 1 − RSS/TSS; TSS centred with an intercept, uncentred without (R, NIST).
    return 1 - rss / tss if tss > 0 else None


def adj_r_squared(r2: float | None, n: int, k_const: int, df_resid: float) -> float | None:
    # R̄² = 1 − (n − k_const)/df_resid · (1 − R²)
    return 1 - (n - k_const) / df_resid * (1 - r2) if r2 is not None and df_resid > 0 else None


def residual_sd(rss: float, df_resid: float) -> float:
    # σ = √(Σ w e² / df_resid)
    return math.sqrt(rss / df_resid)


def f_statistic(rss: float, tss: float, df_model: float, df_resid: float) -> float:
    # F = (ESS/df_model) / (RSS/df_resid), ESS = TSS − RSS
    return (tss - rss) / df_model / (rss / df_resid)


def log_likelihood(rss: float, n: int, log_weight_sum: float) -> float:
    # ℓ = −n/2·(log 2π + log(RSS/n) + 1) + ½ Σ log w   (Gaussian, weights w)
    return -n / 2 * (math.log(2 * math.pi) + math.log(rss / n) + 1) + 0.5 * log_weight_sum


def aic(llf: float, k: float) -> float:
    # AIC = −2ℓ + 2k, k = df_model + k_const
    return -2 * llf + 2 * k


def bic(llf: float, n: int, k: float) -> float:
    # BIC = −2ℓ + log(n)·k
    return -2 * llf + math.log(n) * k


def aicc(llf: float, n: int, k: float) -> float | None:
    # AICc = AIC + 2k(k + 1)/(n − k − 1)   (undefined for n ≤ k + 1)
    return aic(llf, k) + 2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else None


def hqic(llf: float, n: int, k: float) -> float | None:
    # HQIC = −2ℓ + 2k·log(log n)   (Hannan–Quinn; needs n > e)
    return -2 * llf + 2 * k * math.log(math.log(n)) if n > math.e else None


def robust_scale(cov_type: str, n: int, rank: int, n_groups: int | None) -> float:
    # HC1: n/(n − k); cluster (CRV1): G/(G − 1)·(n − 1)/(n − k); HC0, HC2, HC3: 1
    if cov_type == "HC1":
        return n / (n - rank)
    if cov_type == "cluster" and n_groups is not None and n_groups > 1:
        return n_groups / (n_groups - 1) * (n - 1) / (n - rank)
    return 1.0


def critical_value(level: float, df: float | None) -> float:
    # t_df(1 − α/2) for Student t (df given), z(1 − α/2) for the normal
    from scipy import special

    upper = 1 - (1 - level) / 2
    return float(special.stdtrit(df, upper) if df is not None else special.ndtri(upper))


def two_sided_p(t: float, df: float | None) -> float:
    # p = 2·P(T_df > |t|) for Student t (df given), 2·Φ(−|t|) for the normal
    from scipy import special

    return float(2 * (special.stdtr(df, -abs(t)) if df is not None else special.ndtr(-abs(t))))


def f_p_value(f: float, df_num: float, df_den: float) -> float:
    # p = P(F_{df_num, df_den} > f)
    from scipy import special

    return float(special.fdtrc(df_num, df_den, f))


# --- Putting them together ----------------------------------------------------------


@dataclass(frozen=True)
class _Fit:
    """What every target's summary shares."""

    state: LeastSquaresState
    n: int
    rank: int
    k_const: int
    df_model: float
    df_resid: float
    names: list[str]
    cov_type: str
    level: float
    meat: Meat | None
    ridge: bool
    inference_ok: bool  # standard errors and tests exist
    df_test: float  # denominator degrees of freedom of t and F (cluster: groups − 1)
    notes: tuple[str, ...]  # notes that hold for every target
    kappa: float
    log_weight_sum: float  # Σ log w of the (scaled) weights the statistics use
    weight_exponent: int = 0  # weights scaled by 4⁻ᵉ (:mod:`.scaling`): σ is 2ᵉ·σ_scaled
    # Student t (and F) for coefficients: None → nonrobust only (statsmodels' default)
    use_t: bool | None = None
    small_sample: bool | None = None  # the robust small-sample factor; None: the type's default
    k_absorbed: int = 0  # parameters of absorbed fixed effects (:mod:`.absorbed`)


def summarize(
    state: LeastSquaresState,
    theta: torch.Tensor,
    *,
    rank: int,
    feature_names: Sequence[str],
    target_names: Sequence[str],
    level: float = 0.95,
    cov_type: str = "nonrobust",
    meat: Meat | None = None,
    condition_number: float | None = None,
    ridge: bool = False,
    aliased: Sequence[str] = (),
    use_t: bool | None = None,
    small_sample: bool | None = None,
    k_absorbed: int = 0,
) -> list[Summary]:
    """Inference for every target from the state, θ (p', k; intercept first) and, for
    robust covariances, the meat of a second pass (made with
    :func:`~.scaling.scale_weights` of the same state: weights whose sums of squares
    would overflow are scaled by a power of two, which changes no statistic)."""
    check_level(level)
    check_cov_type(cov_type)
    if cov_type != "nonrobust" and meat is None:
        raise InputError(f"cov_type={cov_type!r} needs a pass over the data")
    scaled = scale_weights(state)
    state = scaled.state
    if meat is not None:
        check_same_data(state, meat)
    fit = _fit(state, rank, feature_names, level, cov_type, meat, ridge, aliased, condition_number)
    fit = replace(fit, log_weight_sum=scaled.log_weight_sum, weight_exponent=scaled.exponent)
    fit = _with_options(fit, use_t, small_sample)
    fit = _absorbing(fit, k_absorbed)
    theta = theta.to(device=state.device, dtype=torch.float64)
    rss = state.rss_of(theta).cpu()
    c = fit.k_const
    tss = ((state.R_target[c:] ** 2).sum(0) + (state.R_residual**2).sum(0)).cpu()
    residual, rounding = (t.cpu() for t in exact_fit_test(state, theta))
    B = bread(state).cpu() if fit.inference_ok and cov_type == "nonrobust" else None
    return [
        _target_summary(
            fit,
            str(t),
            j,
            theta[:, j].cpu(),
            (float(rss[j]), float(tss[j])),
            (float(residual[j]), float(rounding[j])),
            B,
        )  # fmt: skip
        for j, t in enumerate(target_names)
    ]


def exact_fit_test(
    state: LeastSquaresState, theta: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per target, the least-squares √RSS (‖R_residual‖ of the column) and what rounding
    alone leaves there for a fit that is exact: γ·(‖ỹ‖ + Σⱼ |θⱼ|·‖ãⱼ‖) over the shifted
    columns the state factored (γ of :func:`~.rounding.exact_fit_gamma`, not growing
    with the rows within a block: the RMS residual against the per-row rounding). At or
    below it, the fit is exact to the data's precision."""
    norms = torch.linalg.vector_norm(state.R, dim=0)
    p = state.n_params
    theta_s = state.to_shifted(theta).abs()
    level = norms[p:] + (theta_s * norms[:p].unsqueeze(1)).sum(0)
    residual = torch.linalg.vector_norm(state.R_residual, dim=0)
    return residual, exact_fit_gamma(state) * level


def _fit(
    state: LeastSquaresState,
    rank: int,
    feature_names: Sequence[str],
    level: float,
    cov_type: str,
    meat: Meat | None,
    ridge: bool,
    aliased: Sequence[str],
    condition_number: float | None,
) -> _Fit:
    n = state.n_observations
    k_const = int(state.fit_intercept)
    df_model, df_resid = float(rank - k_const), float(n - rank)
    notes = []
    if ridge:
        notes.append(
            "ridge: standard errors, t, p-values, intervals, sigma, F, log-likelihood, AIC and "
            "BIC are not reported; the penalty biases the estimates, so the least-squares "
            "sampling theory does not hold"
        )
    if condition_number is not None and condition_number > 1e8:
        notes.append(
            f"the design is badly conditioned (condition number {condition_number:.2g} after "
            "scaling columns): estimates are sensitive to tiny changes in the data"
        )
    if rank < state.n_params:
        notes.append(
            "X is rank deficient (aliased: " + ", ".join(aliased) + "); standard errors, "
            "t and F tests and intervals are not identified and are not reported"
        )
    if df_resid <= 0:
        notes.append(
            f"no residual degrees of freedom (n = {n} observations for {rank} parameters): "
            "sigma, standard errors, t and F tests, intervals and adjusted R² need n > parameters"
        )
    inference_ok = not ridge and rank == state.n_params and df_resid > 0
    if meat is not None and meat.full_leverage:
        notes.append(
            f"{cov_type} is undefined: some row has leverage 1 (a parameter determined by "
            "one row alone), so no standard errors, t or F tests; use HC0/HC1"
        )
        inference_ok = False
    df_test = df_resid
    if cov_type in ("cluster", "CRV3") and meat is not None and meat.n_groups is not None:
        if meat.n_groups < 2:
            raise InputError(
                f"cluster-robust covariance needs at least 2 groups; got {meat.n_groups}"
            )
        df_test = float(meat.n_groups - 1)
    if inference_ok and df_model <= 0:
        notes.append("no slopes: there is no F test")
    elif inference_ok and cov_type != "nonrobust" and df_test < df_model:
        notes.append(
            f"the robust F test needs at least as many denominator degrees of freedom "
            f"({df_test:g}, groups − 1) as slopes ({df_model:g}): no F test"
        )
    # statsmodels' condition number: κ₂ of the weighted design as given (unscaled).
    s = torch.linalg.svdvals(unshifted_design_r(state)).cpu()
    kappa = float(s[0] / s[-1]) if float(s[-1]) > 0 else math.inf
    names = (["intercept"] if state.fit_intercept else []) + list(feature_names)
    return _Fit(
        state, n, rank, k_const, df_model, df_resid, names, cov_type, level, meat, ridge,
        inference_ok, df_test, tuple(notes), kappa, state.log_weight_sum,
    )  # fmt: skip


def _target_summary(
    fit: _Fit,
    target: str,
    j: int,
    est: torch.Tensor,
    sums: tuple[float, float],
    exact_test: tuple[float, float],
    B: torch.Tensor | None,
) -> Summary:
    """The summary of target j; its notes start from the shared ones (a fresh list).
    ``sums`` are (RSS, TSS); ``exact_test`` the least-squares √RSS and its rounding
    level (:func:`exact_fit_test`)."""
    rss, tss = sums  # of the scaled weights
    residual, rounding = exact_test
    notes = list(fit.notes)
    exact = not fit.ridge and (residual <= rounding or tss == 0)
    if tss == 0:
        notes.append("the target is constant (no variation): R² and adjusted R² are undefined")
    if exact:
        notes.append(
            f"the fit is exact: the residuals (√RSS = {unscale(residual, fit):.2g}) are "
            f"at the rounding level of y and the fitted values "
            f"({unscale(rounding, fit):.2g}), so sigma, standard "
            "errors, t, p-values, intervals, F, log-likelihood, AIC and BIC are undefined"
        )
    r2 = r_squared(rss, tss)
    has_sigma = fit.df_resid > 0 and not fit.ridge and not exact
    sigma = residual_sd(rss, fit.df_resid) if has_sigma else None
    cov = None
    if fit.inference_ok and sigma is not None:
        cov = _covariance(fit, j, sigma, B)
        if _two_way(fit):
            cov = _psd(cov, notes)
    coefficients = _coefficients(fit, est, cov)
    f = f_p = None
    # The Wald F of a robust covariance needs as many denominator degrees of freedom as
    # slopes (noted where the fit is set up); the classical F needs only df_resid ≥ 1.
    testable = fit.cov_type == "nonrobust" or fit.df_test >= fit.df_model
    if cov is not None and not exact and fit.df_model > 0 and testable:
        f = _f_test(fit, j, est, rss, tss, notes)
        f_p = None if f is None else f_p_value(f, fit.df_model, fit.df_test)
    if f is not None and fit.cov_type == "cluster" and fit.meat is not None and not _two_way(fit):
        notes.append(
            f"cluster-robust covariance over {fit.df_test + 1:g} groups: the F test uses "
            f"{fit.df_test:g} denominator degrees of freedom (groups − 1)"
        )
    llf = None if exact or fit.ridge else _log_likelihood(fit, rss, notes)
    k = fit.df_model + fit.k_const + fit.k_absorbed
    return Summary(
        target=target,
        n=fit.n,
        df_model=fit.df_model,
        df_resid=fit.df_resid if fit.df_resid > 0 else None,
        sigma=None if sigma is None else unscale(sigma, fit),
        r_squared=r2,
        adj_r_squared=adj_r_squared(r2, fit.n, fit.k_const, fit.df_resid),
        f_statistic=f,
        f_p_value=f_p,
        log_likelihood=llf,
        aic=None if llf is None else aic(llf, k),
        bic=None if llf is None else bic(llf, fit.n, k),
        aicc=None if llf is None else aicc(llf, fit.n, k),
        hqic=None if llf is None else hqic(llf, fit.n, k),
        df_inference=fit.df_test if cov is not None else None,
        use_t=None if cov is None else _t_df(fit) is not None,
        condition_number=fit.kappa,
        cov_type=fit.cov_type,
        level=fit.level,
        coefficients=coefficients,
        cov=None if cov is None else cov.numpy(),
        notes=notes,
        method="Ridge" if fit.ridge else ("WLS" if fit.state.weighted else "OLS"),
        f_df_denominator=fit.df_test if f is not None else None,
    )


def unscale(value: float, fit: _Fit) -> float:
    """A statistic of the unit of √w (σ, √RSS) for the weights as given."""
    try:
        return math.ldexp(value, fit.weight_exponent)
    except OverflowError:
        raise InputError(
            "the weighted residual standard deviation overflows float64 (weights near "
            "1e308); divide the weights by a power of ten: no other statistic changes"
        ) from None


def _covariance(fit: _Fit, j: int, sigma: float, B: torch.Tensor | None) -> torch.Tensor:
    # nonrobust: σ² (AᵀWA)⁻¹; robust: scale · R⁻¹ M R⁻ᵀ (see robust_scale)
    if fit.cov_type == "nonrobust":
        assert B is not None
        return sigma**2 * B
    assert fit.meat is not None
    return sandwich(fit.state, _scaled_meat(fit, j)).cpu()


def _scaled_meat(fit: _Fit, j: int) -> torch.Tensor:
    """Target j's meat times the small-sample factor of the covariance type (none for
    one-way clusters with ``small_sample=False``)."""
    from .extra_meat import ExtraMeat, scaled_meat

    assert fit.meat is not None
    if isinstance(fit.meat, ExtraMeat):
        return scaled_meat(fit.meat, j, fit.small_sample)
    scale = robust_scale(fit.cov_type, fit.n, fit.rank + fit.k_absorbed, fit.meat.n_groups)
    if fit.cov_type == "cluster" and fit.small_sample is False:
        scale = 1.0
    return fit.meat.matrices[j] * scale


def _with_options(fit: _Fit, use_t: bool | None, small_sample: bool | None) -> _Fit:
    """``use_t`` and ``small_sample`` checked and kept; the note that names an extra
    covariance (:mod:`.extra_meat`)."""
    from .extra_meat import ExtraMeat, describe

    for name, value in (("use_t", use_t), ("small_sample", small_sample)):
        if value is not None and not isinstance(value, bool):
            raise InputError(f"{name} must be True, False or None, got {value!r}")
    notes = fit.notes
    if isinstance(fit.meat, ExtraMeat):
        notes = (*notes, describe(fit.meat))
    return replace(fit, use_t=use_t, small_sample=small_sample, notes=notes)


def _absorbing(fit: _Fit, k_absorbed: int) -> _Fit:
    """The fit with ``k_absorbed`` fixed-effect parameters counted in the residual
    degrees of freedom (and the t/F tests that use them), :mod:`.absorbed`."""
    if not k_absorbed:
        return fit
    df_resid = fit.df_resid - k_absorbed
    df_test = df_resid if fit.df_test == fit.df_resid else fit.df_test
    ok = fit.inference_ok and df_resid > 0
    return replace(fit, df_resid=df_resid, df_test=df_test, inference_ok=ok, k_absorbed=k_absorbed)


def _t_df(fit: _Fit) -> float | None:
    """The t distribution's degrees of freedom of the coefficients (None: the normal)."""
    student = fit.cov_type == "nonrobust" if fit.use_t is None else fit.use_t
    return fit.df_test if student else None


def _two_way(fit: _Fit) -> bool:
    return getattr(fit.meat, "kind", "") == "cluster2"


def _psd(cov: torch.Tensor, notes: list[str]) -> torch.Tensor:
    """A two-way cluster covariance with negative eigenvalues set to 0 where it has any
    (:mod:`.cluster2`), noted."""
    from .cluster2 import psd

    fixed, changed = psd(cov)
    if changed:
        notes.append(
            "the two-way cluster covariance V_a + V_b − V_ab was not positive semi-definite: "
            "its negative eigenvalues were set to 0 (Cameron, Gelbach and Miller 2011)"
        )
    return fixed


def _coefficients(fit: _Fit, est: torch.Tensor, cov: torch.Tensor | None) -> list[Coefficient]:
    # t = θ/se; p two-sided; interval θ ± q·se (Student t nonrobust, normal robust)
    values = [float(v) for v in est]
    if cov is None:
        blank = (None,) * 5
        return [Coefficient(n, v, *blank) for n, v in zip(fit.names, values, strict=True)]
    df = _t_df(fit)
    q = critical_value(fit.level, df)
    out = []
    for name, v, var in zip(fit.names, values, torch.diagonal(cov).tolist(), strict=True):
        se = math.sqrt(var)
        t = v / se if se > 0 else math.copysign(math.inf, v) if v else math.nan
        out.append(Coefficient(name, v, se, t, two_sided_p(t, df), v - q * se, v + q * se))
    return out


def _f_test(
    fit: _Fit, j: int, est: torch.Tensor, rss: float, tss: float, notes: list[str]
) -> float | None:
    """F of all slopes being zero; the Wald form under a robust covariance."""
    if fit.cov_type == "nonrobust":
        return f_statistic(rss, tss, fit.df_model, fit.df_resid)
    assert fit.meat is not None
    f = robust_wald(fit.state, _scaled_meat(fit, j), est[fit.k_const :], fit.k_const)
    if f is None:
        notes.append(
            "the robust covariance of the slopes is singular (e.g. fewer clusters than "
            "slopes): no F test"
        )
    return f


def _log_likelihood(fit: _Fit, rss: float, notes: list[str]) -> float | None:
    llf = log_likelihood(rss, fit.n, fit.log_weight_sum)
    if not math.isfinite(llf):
        notes.append("log-likelihood, AIC and BIC are undefined: Σ log w is not finite")
        return None
    return llf


def model_summaries(
    model: Any,
    *,
    level: float = 0.95,
    cov_type: str = "nonrobust",
    data: Iterable[tuple[Any, Any]] | None = None,
    group: Any = None,
    meat: Meat | None = None,
    use_t: bool | None = None,
    small_sample: bool | None = None,
    lags: int | None = None,
) -> list[Summary]:
    """The summaries of a fitted exact model, one per target: the one path behind
    ``LinearRegression.summary`` and the CLI. ``data`` are the training data again as
    (chunk, group labels) pairs, for robust covariances; with ``group`` (a model fitted
    distributed) they are this rank's rows and the pass is collective. ``meat``: the
    robust covariance's meat already computed (:func:`model_meat`, at fit time), in
    place of ``data``. ``use_t``: Student t for the coefficients (t(n − k), cluster
    types t(G − 1)) or the normal; None: t for nonrobust only. ``small_sample``: the
    robust small-sample factor on or off (None: the type's default,
    :mod:`.extra_meat`); ``lags``: HAC's lag (None: automatic)."""
    check_level(level)
    check_cov_type(cov_type)
    state, theta = model.state_, model._theta()
    if cov_type != "nonrobust" and meat is None:
        if data is None:
            raise InputError(f"cov_type={cov_type!r} needs a pass over the training data")
        meat = model_meat(model, cov_type, data, group, lags=lags)
    features, targets = model._names()
    absorbed = getattr(model, "absorbed_", None)
    if absorbed is not None:
        from .absorbed import summaries_absorbed

        return summaries_absorbed(model, absorbed, cov_type, level, meat, use_t, small_sample)
    return summarize(
        state,
        theta,
        rank=model.rank_,
        feature_names=features,
        target_names=targets,
        level=level,
        cov_type=cov_type,
        meat=meat,
        ridge=bool(np.any(np.asarray(getattr(model, "alpha", 0.0)) != 0)),
        aliased=model.aliased_,
        condition_number=model.condition_number_,
        use_t=use_t,
        small_sample=small_sample,
    )


def model_meat(
    model: Any,
    cov_type: str,
    data: Iterable[tuple[Any, Any]],
    group: Any = None,
    fitted_rows: bool = False,
    lags: int | None = None,
) -> Meat:
    """The meat of the robust covariance ``cov_type`` of a fitted exact model from a pass
    over its training data (``data`` and ``group`` as for :func:`model_summaries`),
    checked to be the data the model was fitted on. It is that of the state
    :func:`summarize` uses: weights scaled by a power of two where their sums of squares
    would overflow (:func:`~.scaling.scale_weights`). ``fitted_rows``: ``data`` are
    the rows the fit itself just read (fit-time covariance), so the check holds by
    construction and its sums are not formed. HAC, CRV3 and two-way clusters (labels
    in pairs) are computed by :mod:`.extra_meat`, ``lags`` HAC's (None: automatic)."""
    from .extra_meat import compute, is_extra, refuse_group

    scaled = scale_weights(model.state_)
    extra, data = is_extra(cov_type, data)
    if extra:
        if group is not None:
            refuse_group(cov_type)
        meat: Meat = compute(
            data, scaled.state, model._theta(), cov_type, scaled.sqrt_weight_scale, lags
        )
        check_same_data(scaled.state, meat)
        return meat
    if lags is not None:
        raise InputError(f"lags= is for cov_type='HAC'; drop it for cov_type={cov_type!r}")
    meat = robust_meat(
        data,
        scaled.state,
        model._theta(),
        cov_type,
        scaled.sqrt_weight_scale,
        group=group,
        fitted_rows=fitted_rows,
    )
    check_same_data(scaled.state, meat)
    return meat
