"""The result of inference for one target: :class:`Summary`, and its dict contract."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The scalar fields of the dict contract (docs/inference.md), in order.
_SCALARS = (
    "n", "df_model", "df_resid", "sigma", "r_squared", "adj_r_squared",
    "f_statistic", "f_p_value", "log_likelihood", "aic", "bic",
    "condition_number", "cov_type", "level", "f_df_denominator",
    "aicc", "hqic", "df_inference", "use_t",
    "r_squared_within",
)  # fmt: skip


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
    """Inference for one target. ``to_dict`` is the documented JSON contract; a
    statistic that does not exist is ``None`` and a note says why."""

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
    condition_number: float  # κ₂ of the weighted design as given (unscaled)
    cov_type: str
    level: float
    coefficients: list[Coefficient]
    cov: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    method: str = "OLS"
    f_df_denominator: float | None = None  # the F test's: df_resid, or groups − 1
    aicc: float | None = None  # AIC + 2k(k + 1)/(n − k − 1)
    hqic: float | None = None  # −2ℓ + 2k·log(log n)
    # degrees of freedom of t and F tests of the coefficients (n − k; cluster: G − 1),
    # and whether the coefficients' p-values and intervals use t (else the normal)
    df_inference: float | None = None
    use_t: bool | None = None
    # fixed effects absorbed: R² of the demeaned regression (r_squared is about the mean)
    r_squared_within: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target, "method": self.method}
        out.update({k: _plain(getattr(self, k)) for k in _SCALARS})
        out["coefficients"] = [
            {k: _plain(v) for k, v in c.__dict__.items()} for c in self.coefficients
        ]
        out["cov"] = None if self.cov is None else np.asarray(self.cov).tolist()
        out["notes"] = list(self.notes)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Summary:
        """Rebuild from :meth:`to_dict` (e.g. from a model file's metadata)."""
        scalars: dict[str, Any] = {k: d.get(k) for k in _SCALARS}
        coefficients = [Coefficient(**c) for c in d["coefficients"]]
        cov = None if d.get("cov") is None else np.asarray(d["cov"], dtype=float)
        return cls(
            target=d.get("target", "y"), coefficients=coefficients, notes=list(d.get("notes", [])),
            method=d.get("method", "OLS"), cov=cov, **scalars,
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
