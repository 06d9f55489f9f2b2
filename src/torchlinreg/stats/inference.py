"""Statistical inference for least-squares fits, from the exact solver's state.

Everything follows from R (the state), the coefficients θ and, for robust covariances,
one more pass over the data. Conventions are statsmodels' (and R's ``summary.lm``):

* nobs is the number of rows; df_resid = n − rank; df_model = rank − (1 if intercept);
* σ² = Σ w e² / df_resid; cov = σ² (AᵀWA)⁻¹ (A = [1, X]);
* R² is centred with an intercept, uncentred without one; adjusted R² =
  1 − (n − k_const)/df_resid · (1 − R²);
* F = (ESS/df_model) / (RSS/df_resid); with a robust covariance, the Wald F of all
  slopes being zero;
* log-likelihood of the Gaussian model, −n/2·(log 2π + log(RSS/n) + 1) + ½ Σ log w;
  AIC = −2ℓ + 2(df_model + k_const), BIC = −2ℓ + log(n)(df_model + k_const);
* nonrobust inference uses Student t with df_resid; robust covariances (HC0–HC3,
  cluster) use the normal distribution for p-values and intervals, and the F test with
  df_resid denominator degrees of freedom (cluster: number of groups − 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..data.chunks import Chunk
from ..errors import InputError
from ..solvers.solve import column_scale
from ..solvers.state import LeastSquaresState

COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster")
_MEAT_ROWS = 1 << 16


def check_cov_type(cov_type: str) -> None:
    if cov_type not in COV_TYPES:
        raise InputError(f"unknown cov_type {cov_type!r}; choose one of {', '.join(COV_TYPES)}")


def check_level(level: float) -> None:
    if not isinstance(level, (int, float)) or not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1 (e.g. 0.95), got {level!r}")


def unshifted_design_r(state: LeastSquaresState) -> torch.Tensor:
    """R of √w·[1, X] (unshifted, the data's own coordinates)."""
    p = state.n_params
    return state.unshifted_R()[:p, :p]


def bread(state: LeastSquaresState) -> torch.Tensor:
    """(AᵀWA)⁻¹ = R⁻¹R⁻ᵀ, through exactly scaled columns: D (R D)⁻¹ (R D)⁻ᵀ D."""
    R = unshifted_design_r(state)
    D = column_scale(R)
    eye = torch.eye(R.shape[0], dtype=R.dtype, device=R.device)
    inv = torch.linalg.solve_triangular(R * D, eye, upper=True)
    scaled = D.unsqueeze(1) * inv
    return scaled @ scaled.T


@dataclass
class Meat:
    """The middle of a sandwich covariance, per target (k, p', p'), from a data pass.

    It is kept in the orthonormal coordinates z = (R D)⁻ᵀ D a (rows of A R⁻¹, i.e. of
    Q): forming Aᵀ diag(c) A directly would square the design's condition number."""

    matrices: torch.Tensor
    n_groups: int | None = None
    rss: torch.Tensor | None = None  # Σ w e² per target seen in the pass (a consistency check)
    full_leverage: bool = False  # some row has leverage 1 (HC2/HC3 undefined)


def robust_meat(
    items: Iterable[tuple[Chunk, Any]],
    state: LeastSquaresState,
    theta: torch.Tensor,
    cov_type: str,
) -> Meat:
    """One pass over the data for HC0–HC3 or cluster meats.

    With Ã = √w·[1, X], ẽ = √w·(y − Aθ) and zᵢ the rows of Ã R⁻¹: HC0/HC1 use
    Σ ẽᵢ² zᵢzᵢᵀ; HC2 divides ẽᵢ² by (1 − hᵢ), HC3 by (1 − hᵢ)², hᵢ = ‖zᵢ‖²; cluster
    uses Σ_g s_g s_gᵀ with s_g = Σ_{i∈g} zᵢẽᵢ. ``items`` are (chunk, group labels) pairs,
    the labels ``None`` unless ``cov_type`` is ``"cluster"``. The covariance is then
    R⁻¹ (meat) R⁻ᵀ.
    """
    p, k = state.n_params, state.n_targets
    device = state.device
    # z = ã R⁻¹ by one multiply with R⁻¹ (from scaled columns): no copy of [1, X], and
    # a matrix product runs much faster than a triangular solve with many right sides.
    inv = _r_inverse(state)
    c0 = int(state.fit_intercept)
    theta = theta.to(device=device, dtype=torch.float64)
    meat = torch.zeros(k, p, p, dtype=torch.float64, device=device)
    label_ids: dict[Any, int] = {}
    scores = torch.zeros(0, k, p, dtype=torch.float64, device=device)
    rss = torch.zeros(k, dtype=torch.float64, device=device)
    full_leverage = False
    for chunk, groups in items:
        labels_all = None
        if cov_type == "cluster":
            labels_all = np.asarray(groups)
            if len(labels_all) != chunk.X.shape[0]:
                raise InputError(
                    f"groups has {len(labels_all)} labels for a chunk of {chunk.X.shape[0]} "
                    "rows; give one group label per row"
                )
        # Row blocks keep the temporaries (a copy of the block and its z rows) small.
        for start in range(0, chunk.X.shape[0], _MEAT_ROWS):
            sl = slice(start, start + _MEAT_ROWS)
            X = chunk.X[sl].to(device=device, dtype=torch.float64)
            Y = chunk.Y[sl].to(device=device, dtype=torch.float64)
            E = Y - X @ theta[c0:]
            Z = X @ inv[c0:]
            if c0:
                E -= theta[0]
                Z += inv[0]
            if chunk.sample_weight is not None:
                sw = chunk.sample_weight[sl].to(device=device, dtype=torch.float64).sqrt()
                Z *= sw.unsqueeze(1)
                E *= sw.unsqueeze(1)
            c = E**2
            rss += c.sum(0)
            if labels_all is not None:
                labels = labels_all[sl]
                if labels.dtype.kind == "f" and np.isnan(labels).any():
                    raise InputError(
                        "groups holds missing labels (NaN); fill them in or drop those rows"
                    )
                if labels.dtype == object and any(v is None for v in labels.tolist()):
                    raise InputError(
                        "groups holds missing labels (None); fill them in or drop those rows"
                    )
                if labels.dtype == object:  # mixed Python objects: map row by row
                    ids = np.fromiter(
                        (label_ids.setdefault(v, len(label_ids)) for v in labels.tolist()),
                        dtype=np.int64,
                        count=len(labels),
                    )
                else:  # map each distinct label once, then every row by the inverse index
                    uniq, inverse = np.unique(labels, return_inverse=True)
                    mapped = np.array(
                        [label_ids.setdefault(u, len(label_ids)) for u in uniq.tolist()],
                        dtype=np.int64,
                    )
                    ids = mapped[inverse.reshape(-1)]
                if len(label_ids) > scores.shape[0]:
                    extra = len(label_ids) - scores.shape[0]
                    grow = torch.zeros(extra, k, p, dtype=torch.float64, device=device)
                    scores = torch.cat([scores, grow])
                index = torch.as_tensor(ids, device=device)
                scores.index_add_(0, index, E.unsqueeze(2) * Z.unsqueeze(1))
                continue
            if cov_type in ("HC2", "HC3"):
                h = torch.einsum("ij,ij->i", Z, Z).unsqueeze(1)  # leverage: ‖zᵢ‖²
                if bool((h > 1 - 1e-8).any()):
                    full_leverage = True
                    h = h.clamp(max=0.0)  # the result is discarded; avoid 0/0 meanwhile
                c = c / (1 - h) if cov_type == "HC2" else c / (1 - h) ** 2
            for j in range(k):
                meat[j] += Z.T @ (Z * c[:, j : j + 1])
    if cov_type == "cluster":
        for j in range(k):
            meat[j] = scores[:, j].T @ scores[:, j]
        return Meat(meat, scores.shape[0], rss)
    return Meat(meat, rss=rss, full_leverage=full_leverage)


def _r_inverse(state: LeastSquaresState) -> torch.Tensor:
    """R⁻¹ of the unshifted design, as D (RD)⁻¹ through exactly scaled columns."""
    R = unshifted_design_r(state)
    D = column_scale(R)
    eye = torch.eye(R.shape[0], dtype=R.dtype, device=R.device)
    return D.unsqueeze(1) * torch.linalg.solve_triangular(R * D, eye, upper=True)


def sandwich(state: LeastSquaresState, meat_z: torch.Tensor) -> torch.Tensor:
    """R⁻¹ M R⁻ᵀ for a meat M in the z coordinates of :class:`Meat`."""
    inv = _r_inverse(state)
    return inv @ meat_z.to(inv) @ inv.T


def robust_wald(
    state: LeastSquaresState, meat_z: torch.Tensor, slopes: torch.Tensor, skip: int
) -> float | None:
    """βᵀ V⁻¹ β / q for V = S M Sᵀ (S the slope rows of R⁻¹), without forming V: with
    M = L Lᵀ and (S L)ᵀ = Q T, it is ‖T⁻ᵀ β‖² / q. Forming V and solving would lose the
    digits a nearly collinear design leaves in it."""
    inv = _r_inverse(state)
    try:
        vals, vecs = torch.linalg.eigh(meat_z.to(inv))
    except RuntimeError:  # not finite: nothing to test
        return None
    L = vecs * vals.clamp(min=0).sqrt()
    T = torch.linalg.qr((inv[skip:] @ L).T).R
    d = torch.diagonal(T).abs()
    if float(d.min()) <= 1e-10 * float(d.max()):
        return None  # singular robust covariance (e.g. fewer clusters than slopes)
    z = torch.linalg.solve_triangular(T.T, slopes.to(inv).unsqueeze(1), upper=False)
    return float((z**2).sum()) / len(slopes)


@dataclass
class Coefficient:
    name: str
    estimate: float
    std_error: float | None
    t: float | None
    p_value: float | None
    ci_lower: float | None
    ci_upper: float | None


@dataclass
class Summary:
    """Inference for one target. ``to_dict`` is the documented JSON contract."""

    target: str
    n: int
    df_model: float
    df_resid: float | None
    sigma: float | None
    r_squared: float | None
    adj_r_squared: float | None
    f_statistic: float | None
    f_p_value: float | None
    log_likelihood: float | None
    aic: float | None
    bic: float | None
    condition_number: float
    cov_type: str
    level: float
    coefficients: list[Coefficient]
    cov: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    method: str = "OLS"
    f_df_denominator: float | None = None  # df_resid, or groups − 1 for cluster

    def to_dict(self) -> dict[str, Any]:
        keys = (
            "n", "df_model", "df_resid", "sigma", "r_squared", "adj_r_squared",
            "f_statistic", "f_p_value", "log_likelihood", "aic", "bic",
            "condition_number", "cov_type", "level", "f_df_denominator",
        )  # fmt: skip
        out: dict[str, Any] = {"target": self.target, "method": self.method}
        out.update({k: _plain(getattr(self, k)) for k in keys})
        out["coefficients"] = [
            {k: _plain(v) for k, v in c.__dict__.items()} for c in self.coefficients
        ]
        out["cov"] = None if self.cov is None else np.asarray(self.cov).tolist()
        out["notes"] = list(self.notes)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Summary:
        """Rebuild from :meth:`to_dict` (e.g. from a model file's metadata)."""
        fields: dict[str, Any] = {k: d.get(k) for k in (
            "n", "df_model", "df_resid", "sigma", "r_squared", "adj_r_squared",
            "f_statistic", "f_p_value", "log_likelihood", "aic", "bic",
            "condition_number", "cov_type", "level", "f_df_denominator",
        )}  # fmt: skip
        coefficients = [Coefficient(**c) for c in d["coefficients"]]
        cov = None if d.get("cov") is None else np.asarray(d["cov"], dtype=float)
        return cls(
            target=d.get("target", "y"), coefficients=coefficients, notes=list(d.get("notes", [])),
            method=d.get("method", "OLS"), cov=cov, **fields,
        )  # fmt: skip

    def to_frame(self) -> Any:
        """The coefficient table as a pandas DataFrame indexed by name."""
        import pandas as pd

        rows = [c.__dict__ for c in self.coefficients]
        return pd.DataFrame(rows).set_index("name")

    def __str__(self) -> str:
        from .report import format_summary

        return format_summary(self)


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return None if math.isnan(v) else v
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


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
) -> list[Summary]:
    """Inference for every target from the state, θ (p', k; intercept first) and, for
    robust covariances, the meat of a second pass."""
    from scipy import special

    check_level(level)
    check_cov_type(cov_type)
    theta = theta.to(device=state.device, dtype=torch.float64)
    n = state.n_samples
    k_const = int(state.fit_intercept)
    names = (["intercept"] if state.fit_intercept else []) + list(feature_names)
    rss = state.rss_of(theta).cpu()
    c = k_const
    tss = ((state.R_target[c:] ** 2).sum(0) + (state.R_residual**2).sum(0)).cpu()
    # Statsmodels' condition number: κ₂ of the weighted design as given (unscaled).
    s = torch.linalg.svdvals(unshifted_design_r(state)).cpu()
    kappa = float(s[0] / s[-1]) if float(s[-1]) > 0 else math.inf
    df_model = float(rank - k_const)
    df_resid = float(n - rank)
    notes: list[str] = []
    if ridge:
        notes.append(
            "ridge: standard errors, t, p-values, intervals, F, log-likelihood, AIC and BIC "
            "are not reported; the penalty biases the estimates, so the least-squares "
            "sampling theory does not hold"
        )
    if condition_number is not None and condition_number > 1e8:
        notes.append(
            f"the design is badly conditioned (condition number {condition_number:.2g} after "
            "scaling columns): estimates are sensitive to tiny changes in the data"
        )
    if rank < state.n_params:
        notes.append(
            "X is rank deficient (aliased: " + ", ".join(aliased) + "); coefficient "
            "standard errors are not identified and are not reported"
        )
    if df_resid <= 0:
        notes.append(
            f"no residual degrees of freedom (n = {n} rows for {rank} parameters): sigma, "
            "standard errors, tests, intervals and adjusted R² need n > parameters"
        )
    inference_ok = not ridge and rank == state.n_params and df_resid > 0
    if meat is not None and meat.rss is not None:
        expected = state.rss_of(theta).cpu()
        seen = meat.rss.cpu()
        if not bool(
            torch.allclose(seen, expected, rtol=1e-6, atol=1e-12 * float(expected.abs().max() + 1))
        ):
            raise InputError(
                "the data passed for the robust covariance are not the data the model was "
                "fitted on (residual sums of squares differ); pass the same X, y and "
                "sample_weight"
            )
    if meat is not None and meat.full_leverage:
        notes.append(
            f"{cov_type} is undefined: some row has leverage 1 (a parameter determined by "
            "one row alone); use HC0/HC1"
        )
        inference_ok = False
    df_inf = df_resid
    if cov_type == "cluster" and meat is not None and meat.n_groups is not None:
        if meat.n_groups < 2:
            raise InputError(
                f"cluster-robust covariance needs at least 2 groups; got {meat.n_groups}"
            )
        df_inf = float(meat.n_groups - 1)
        notes.append(
            f"cluster-robust covariance over {meat.n_groups} groups: the F test uses "
            f"{meat.n_groups - 1} denominator degrees of freedom (groups − 1)"
        )
    B = bread(state).cpu() if inference_ok else None
    use_t = cov_type == "nonrobust"
    alpha = 1 - level
    q = (
        float(special.stdtrit(df_inf, 1 - alpha / 2))
        if use_t and df_inf > 0
        else float(special.ndtri(1 - alpha / 2))
    )
    out = []
    for j, target in enumerate(target_names):
        est = theta[:, j].cpu().numpy()
        r2 = 1 - float(rss[j]) / float(tss[j]) if float(tss[j]) > 0 else None
        adj = 1 - (n - k_const) / df_resid * (1 - r2) if r2 is not None and df_resid > 0 else None
        sigma = math.sqrt(float(rss[j]) / (n - rank)) if n - rank > 0 and not ridge else None
        cov = None
        se: list[float | None] = [None] * len(names)
        tvals: list[float | None] = [None] * len(names)
        pvals: list[float | None] = [None] * len(names)
        lo: list[float | None] = [None] * len(names)
        hi: list[float | None] = [None] * len(names)
        f_stat = f_p = None
        if inference_ok and B is not None and sigma is not None:
            if cov_type == "nonrobust":
                cov_t = sigma**2 * B
            else:
                if meat is None:
                    raise InputError(f"cov_type={cov_type!r} needs a pass over the data")
                cov_t = sandwich(state, meat.matrices[j]).cpu()
                if cov_type == "HC1":
                    cov_t = cov_t * (n / (n - rank))
                elif cov_type == "cluster":
                    G = meat.n_groups or 1
                    cov_t = cov_t * (G / (G - 1) * (n - 1) / (n - rank)) if G > 1 else cov_t
            cov = cov_t.numpy()
            std = np.sqrt(np.diag(cov))
            se = [float(v) for v in std]
            with np.errstate(divide="ignore", invalid="ignore"):  # an exact fit: t = ±inf
                t_arr = est / std
            tvals = [float(v) for v in t_arr]
            if use_t:
                pvals = [float(2 * special.stdtr(df_inf, -abs(v))) for v in t_arr]
            else:
                pvals = [float(2 * special.ndtr(-abs(v))) for v in t_arr]
            lo = [float(e - q * sd) for e, sd in zip(est, std, strict=True)]
            hi = [float(e + q * sd) for e, sd in zip(est, std, strict=True)]
            exact_fit = float(rss[j]) <= 1e-24 * float(tss[j]) or float(tss[j]) == 0
            if cov_type == "nonrobust":
                if df_model > 0 and not exact_fit:
                    ess = float(tss[j]) - float(rss[j])
                    f_stat = ess / df_model / (float(rss[j]) / df_resid)
            elif df_model > 0 and df_inf >= df_model and not exact_fit:
                assert meat is not None
                factor = float(cov_t[0, 0] / sandwich(state, meat.matrices[j]).cpu()[0, 0])
                f_stat = robust_wald(state, meat.matrices[j] * factor, theta[k_const:, j], k_const)
                if f_stat is None:
                    note = (
                        "the robust covariance of the slopes is singular (e.g. fewer "
                        "clusters than slopes): no F test"
                    )
                    if note not in notes:
                        notes.append(note)
            if f_stat is not None:
                f_p = float(special.fdtrc(df_model, df_inf, f_stat))
        if float(rss[j]) <= 1e-24 * float(tss[j]) or float(tss[j]) == 0:
            note = (
                "the fit is exact or the target constant (zero residuals or variation): "
                "F, log-likelihood, AIC and BIC are undefined"
            )
            if note not in notes:
                notes.append(note)
        llf = None
        if float(rss[j]) > 1e-24 * float(tss[j]) and float(rss[j]) > 0:
            llf = -n / 2 * (math.log(2 * math.pi) + math.log(float(rss[j]) / n) + 1)
            llf += 0.5 * state.log_weight_sum
            if math.isinf(llf):
                llf = None
                notes_j = "log-likelihood, AIC and BIC are undefined with zero weights"
                if notes_j not in notes:
                    notes.append(notes_j)
        if ridge:
            llf = None  # a penalised fit has no plain Gaussian likelihood to compare
        n_par = df_model + k_const
        aic = -2 * llf + 2 * n_par if llf is not None else None
        bic = -2 * llf + math.log(n) * n_par if llf is not None else None
        coefficients = [
            Coefficient(name, float(e), se[i], tvals[i], pvals[i], lo[i], hi[i])
            for i, (name, e) in enumerate(zip(names, est, strict=True))
        ]
        out.append(
            Summary(
                target=str(target),
                n=n,
                df_model=df_model,
                df_resid=df_resid if df_resid > 0 else None,
                sigma=sigma,
                r_squared=r2,
                adj_r_squared=adj,
                f_statistic=f_stat,
                f_p_value=f_p,
                log_likelihood=llf,
                aic=aic,
                bic=bic,
                condition_number=kappa,
                cov_type=cov_type,
                level=level,
                coefficients=coefficients,
                cov=cov,
                notes=list(notes),
                method="Ridge" if ridge else ("WLS" if state.weighted else "OLS"),
                f_df_denominator=df_inf if f_stat is not None else None,
            )
        )
    return out
