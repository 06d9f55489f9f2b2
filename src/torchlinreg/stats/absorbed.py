"""Inference with fixed effects absorbed: what the demeaned regression's statistics
need besides its state, and the degrees-of-freedom rules (pyfixest's defaults, which
are fixest's ``ssc(adj = TRUE, fixef.K = "nested", cluster.adj = TRUE)``).

With n observations, k slopes (after dropping absorbed regressors) and factors of
L_1 … L_m levels (levels with positive weight):

* the fixed effects count k_fe = Σ L_f − (m − 1) parameters (one level of each further
  factor is redundant with the first, as in a connected panel; pyfixest's rule,
  whatever the panel's actual connectivity, which ``redundant_levels`` reports);
* nonrobust: σ² = RSS / (n − k − k_fe), t with n − k − k_fe degrees of freedom;
* HC1: the HC0 sandwich × n / (n − k − k_fe) (HC0, HC2, HC3: no factor);
* cluster (CRV1): the sandwich × G/(G − 1) × (n − 1)/(n − k − k_fe'), where k_fe'
  leaves out the levels of the factors nested in the clusters (every level within one
  cluster: e.g. firm effects with errors clustered by firm) and counts one parameter
  back for each such factor (fixest's ``fixef.K = "nested"``);
* R² = 1 − RSS / TSS about the weighted mean of y; the within R² = 1 − RSS / TSS of the
  demeaned y; adjusted R² = 1 − (1 − R²)(n − 1)/(n − k − k_fe), within adjusted
  1 − (1 − R²_within)(n − k_fe)/(n − k − k_fe) (pyfixest's); AIC and BIC count the
  k_fe parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AbsorbedEffects:
    """The fixed effects a fit absorbed (a model's ``absorbed_``).

    ``factors`` their names; ``n_levels`` their levels (with positive weight);
    ``nested`` whether each is nested in the cluster labels (cluster covariances);
    ``dropped`` the regressors they absorbed entirely (removed from the fit);
    ``method`` ``"direct"``, ``"alternating"`` or ``"cg"`` (conjugate gradients on the
    sparse cross-tabulations of a stream), ``iterations`` the sweeps made (or passes
    for a stream), ``redundant_levels`` the exact number of redundant levels
    where the direct solve ran (None otherwise); ``tss`` per target the total sum of
    squares of y about its weighted mean (for the usual R²)."""

    factors: tuple[str, ...]
    n_levels: tuple[int, ...]
    nested: tuple[bool, ...]
    dropped: tuple[str, ...]
    method: str
    iterations: int
    redundant_levels: int | None
    tss: tuple[float, ...] = field(default=())

    @property
    def dof(self) -> int:
        """k_fe = Σ L_f − (m − 1)."""
        return sum(self.n_levels) - (len(self.n_levels) - 1)

    @property
    def cluster_dof(self) -> int:
        """k_fe' for cluster covariances: nested factors' levels left out, one counted
        back for each."""
        nested = [L for L, inside in zip(self.n_levels, self.nested, strict=True) if inside]
        return self.dof - sum(nested) + len(nested)

    def to_dict(self) -> dict[str, Any]:
        return {
            "factors": list(self.factors),
            "n_levels": list(self.n_levels),
            "nested": list(self.nested),
            "dropped": list(self.dropped),
            "method": self.method,
            "iterations": self.iterations,
            "redundant_levels": self.redundant_levels,
            "tss": list(self.tss),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AbsorbedEffects:
        from ..errors import InputError

        try:
            return cls(
                tuple(str(f) for f in d["factors"]),
                tuple(int(L) for L in d["n_levels"]),
                tuple(bool(b) for b in d["nested"]),
                tuple(str(x) for x in d["dropped"]),
                str(d["method"]),
                int(d["iterations"]),
                None if d["redundant_levels"] is None else int(d["redundant_levels"]),
                tuple(float(t) for t in d["tss"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"the model metadata is invalid: absorbed effects ({e})") from None


def extra_parameters(absorbed: AbsorbedEffects | None, cov_type: str) -> int:
    """The parameters the fixed effects add to the slopes in the degrees of freedom of
    ``cov_type``'s small-sample factor (module docstring)."""
    if absorbed is None:
        return 0
    return absorbed.cluster_dof if cov_type == "cluster" else absorbed.dof


def with_total_r_squared(
    summaries: Sequence[Any], absorbed: AbsorbedEffects, rss: Sequence[float]
) -> list[Any]:
    """Summaries whose R² is the usual one (about the weighted mean of y), adjusted R²
    pyfixest's, and ``r_squared_within`` the demeaned regression's (what the state
    gives); ``rss`` per target."""
    from dataclasses import replace

    out = []
    for s, tss, e in zip(summaries, absorbed.tss, rss, strict=True):
        within = s.r_squared
        if tss <= 0:
            out.append(replace(s, r_squared=None, adj_r_squared=None, r_squared_within=within))
            continue
        r2 = 1 - e / tss
        df = s.df_resid
        adj = 1 - (1 - r2) * (s.n - 1) / df if df else None
        out.append(replace(s, r_squared=r2, adj_r_squared=adj, r_squared_within=within))
    return out


def summaries_absorbed(
    model: Any,
    absorbed: AbsorbedEffects,
    cov_type: str,
    level: float,
    meat: Any,
    use_t: bool | None,
    small_sample: bool | None,
) -> list[Any]:
    """The summaries of a model fitted with fixed effects absorbed: the demeaned
    regression's state with the fixed effects' degrees of freedom, the usual and the
    within R², and a note naming the factors."""
    import numpy as np

    from .inference import summarize

    state, theta = model.state_, model._theta()
    features, targets = model._names()
    if meat is not None and cov_type == "cluster" and absorbed.cluster_dof != absorbed.dof:
        meat = _nested_clusters(meat, state.n_observations - model.rank_, absorbed)
    out = summarize(
        state, theta, rank=model.rank_, feature_names=features, target_names=targets,
        level=level, cov_type=cov_type, meat=meat, aliased=model.aliased_,
        condition_number=model.condition_number_, use_t=use_t, small_sample=small_sample,
        k_absorbed=absorbed.dof,
    )  # fmt: skip
    rss = [float(v) for v in np.atleast_1d(state.rss_of(theta.to(state.device)).cpu().numpy())]
    out = with_total_r_squared(out, absorbed, rss)
    for s in out:
        s.notes.append(_note(absorbed, cov_type))
    return out


def _nested_clusters(meat: Any, df: int, absorbed: AbsorbedEffects) -> Any:
    """The meat times (n − k − k_fe)/(n − k − k_fe'): the summary's cluster factor
    (n − 1)/(n − k − k_fe) becomes fixest's (n − 1)/(n − k − k_fe') for factors nested
    in the clusters; ``df`` is n − k."""
    from dataclasses import replace

    factor = (df - absorbed.dof) / (df - absorbed.cluster_dof)
    return replace(meat, matrices=meat.matrices * factor)


def _note(absorbed: AbsorbedEffects, cov_type: str) -> str:
    pairs = zip(absorbed.factors, absorbed.n_levels, strict=True)
    levels = ", ".join(f"{f} ({L} levels)" for f, L in pairs)
    text = (
        f"fixed effects absorbed: {levels}; {extra_parameters(absorbed, cov_type)} parameters "
        "counted in the degrees of freedom; R² within (the demeaned regression's) "
        "beside the R² about the mean"
    )
    if absorbed.dropped:
        text += "; absorbed entirely and dropped: " + ", ".join(absorbed.dropped)
    return text
