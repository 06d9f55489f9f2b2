"""Comparison of nested least-squares models: the F test (analysis of variance) and the
likelihood-ratio test, as statsmodels' ``anova_lm`` (several models, type I) and
``compare_f_test`` / ``compare_lr_test`` (two).

Models are ordered from the smallest (most residual degrees of freedom) to the largest;
each must be nested in the next (its coefficient names among the next one's) and fitted
to the same observations and target (equal n and total sum of squares). With
RSSᵢ and dfᵢ the residual sum of squares and degrees of freedom of model i, and the
largest model's σ² = RSS/df as the scale,

    Fᵢ = ((RSSᵢ₋₁ − RSSᵢ)/(dfᵢ₋₁ − dfᵢ)) / σ²,      LRᵢ = 2(ℓᵢ − ℓᵢ₋₁) ~ χ²(dfᵢ₋₁ − dfᵢ).

For two models F is statsmodels' ``compare_f_test``. The tests assume the classical
(nonrobust) model; under heteroskedasticity test restrictions with a robust covariance
instead (:mod:`.wald`, ``model.f_test(columns=...)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .summary import Summary


@dataclass
class Comparison:
    """One row per model (smallest first): the table of ``anova_lm`` and the
    likelihood-ratio test against the previous model (None on the first row)."""

    names: list[str]
    n: int
    df_resid: list[float]
    ssr: list[float]
    df_diff: list[float | None]
    ss_diff: list[float | None]
    f: list[float | None]
    f_p_value: list[float | None]
    lr: list[float | None]
    lr_p_value: list[float | None]

    def to_dict(self) -> dict[str, Any]:
        rows = [
            {key: getattr(self, key)[i] for key in _COLUMNS} | {"model": self.names[i]}
            for i in range(len(self.names))
        ]
        return {"n": self.n, "models": rows}

    def to_frame(self) -> Any:
        import pandas as pd

        data = {key: getattr(self, key) for key in _COLUMNS}
        return pd.DataFrame(data, index=pd.Index(self.names, name="model"))

    def __str__(self) -> str:
        header = ("model", "df_resid", "ssr", "df_diff", "ss_diff", "F", "Pr(>F)", "LR",
                  "Pr(>Chi2)")  # fmt: skip
        rows = [header] + [
            (self.names[i], *(_cell(getattr(self, key)[i]) for key in _COLUMNS))
            for i in range(len(self.names))
        ]
        widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
        lines = [f"Comparison of nested models (n = {self.n:,}; F uses the largest's σ²)"]
        for r in rows:
            cells = zip(r, widths, strict=True)
            lines.append(
                "  ".join(v.rjust(w) if c else v.ljust(w) for c, (v, w) in enumerate(cells))
            )
        return "\n".join(lines)


_COLUMNS = ("df_resid", "ssr", "df_diff", "ss_diff", "f", "f_p_value", "lr", "lr_p_value")


def _cell(v: float | None) -> str:
    return "" if v is None else format(v, ".6g")


def compare(*models: Any, names: list[str] | None = None, target: int = 0) -> Comparison:
    """Compare nested fitted models (``LinearRegression`` or their
    :class:`~.summary.Summary`), in any order: they are sorted from the smallest. For
    models of several targets, ``target`` picks one (its index)."""
    if len(models) < 2:
        raise InputError("compare needs at least two fitted models")
    if names is not None and len(names) != len(models):
        raise InputError(f"names has {len(names)} entries for {len(models)} models")
    labels = names or [f"model {i + 1}" for i in range(len(models))]
    summaries = [_summary(m, target, label) for m, label in zip(models, labels, strict=True)]
    order = sorted(range(len(models)), key=lambda i: -_df(summaries[i], labels[i]))
    summaries = [summaries[i] for i in order]
    labels = [labels[i] for i in order]
    _check_nested(summaries, labels)
    return _table(summaries, labels)


def _summary(model: Any, target: int, label: str) -> Summary:
    if isinstance(model, Summary):
        return model
    if not hasattr(model, "summary"):
        raise InputError(f"{label} is not a fitted model with a summary (got {type(model)})")
    out = model.summary(cov_type="nonrobust")
    if isinstance(out, list):
        if not 0 <= target < len(out):
            raise InputError(f"target={target} is not one of {label}'s {len(out)} targets")
        out = out[target]
    return out  # type: ignore[no-any-return]


def _df(s: Summary, label: str) -> float:
    if s.df_resid is None or s.sigma is None or s.log_likelihood is None:
        raise InputError(
            f"{label} has no residual variance (see its notes: ridge, an exact fit or no "
            "residual degrees of freedom), so it cannot be compared"
        )
    return s.df_resid


def _ssr(s: Summary) -> float:
    assert s.sigma is not None and s.df_resid is not None
    return s.sigma**2 * s.df_resid


def _check_nested(summaries: list[Summary], labels: list[str]) -> None:
    first = summaries[0]
    for s, label in zip(summaries, labels, strict=True):
        if s.n != first.n or s.target != first.target:
            raise InputError(
                f"{labels[0]} and {label} were not fitted to the same observations and target "
                f"(n = {first.n} and {s.n}; targets {first.target!r} and {s.target!r})"
            )
    tss = [_tss(s) for s in summaries]
    known = [t for t in tss if t is not None]
    if known and max(known) - min(known) > 1e-8 * max(known):
        raise InputError(
            "the models were not fitted to the same target values (their total sums of "
            "squares differ); compare models of the same data"
        )
    for small, big, a, b in zip(summaries, summaries[1:], labels, labels[1:], strict=False):
        if small.df_resid == big.df_resid:
            raise InputError(f"{a} and {b} have as many parameters: neither is nested in the other")
        extra = {c.name for c in small.coefficients} - {c.name for c in big.coefficients}
        if extra:
            raise InputError(
                f"{a} is not nested in {b}: {b} lacks its coefficient(s) "
                + ", ".join(sorted(extra))
            )


def _tss(s: Summary) -> float | None:
    if s.r_squared is None or s.r_squared >= 1:
        return None
    return _ssr(s) / (1 - s.r_squared)


def _table(summaries: list[Summary], labels: list[str]) -> Comparison:
    from scipy import special

    ssr = [_ssr(s) for s in summaries]
    df = [float(s.df_resid or 0) for s in summaries]
    scale = ssr[-1] / df[-1]
    out = Comparison(labels, summaries[0].n, df, ssr, [None], [None], [None], [None], [None],
                     [None])  # fmt: skip
    for i in range(1, len(summaries)):
        dd, ds = df[i - 1] - df[i], ssr[i - 1] - ssr[i]
        f = ds / dd / scale
        lr = 2 * (
            float(summaries[i].log_likelihood or 0) - float(summaries[i - 1].log_likelihood or 0)
        )
        out.df_diff.append(dd)
        out.ss_diff.append(ds)
        out.f.append(f)
        out.f_p_value.append(float(special.fdtrc(dd, df[-1], f)) if math.isfinite(f) else None)
        out.lr.append(lr)
        out.lr_p_value.append(float(special.chdtrc(dd, lr)))
    return out
