"""The text form of a :class:`~torchlinreg.stats.summary.Summary`, in the spirit of
R's ``summary.lm`` and statsmodels' tables."""

from __future__ import annotations

from typing import Any


def _num(v: Any, fmt: str = ".6g") -> str:
    return "n/a" if v is None else format(v, fmt)


def _p(v: Any) -> str:
    if v is None:
        return "n/a"
    return "<1e-16" if v < 1e-16 else format(v, ".3g")


def format_summary(s: Any) -> str:
    pct = f"{s.level * 100:g}%"
    lines = [
        f"{s.method} regression of {s.target}   (n = {s.n:,}, covariance: {s.cov_type})",
        "",
    ]
    # z for the normal: robust types unless use_t (older summaries have no use_t)
    robust = s.cov_type != "nonrobust" if s.use_t is None else not s.use_t
    header = ("", "estimate", "std. error", "z" if robust else "t",
              "P>|z|" if robust else "P>|t|", f"{pct} lower", f"{pct} upper")  # fmt: skip
    rows = [
        (c.name, _num(c.estimate), _num(c.std_error), _num(c.t, ".4g"), _p(c.p_value),
         _num(c.ci_lower), _num(c.ci_upper))
        for c in s.coefficients
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        lines.append(
            "  ".join(r[i].rjust(widths[i]) if i else r[i].ljust(widths[i]) for i in range(len(r)))
        )
    lines += [
        "",
        f"Residual standard error: {_num(s.sigma)} on {_num(s.df_resid, 'g')} degrees of freedom",
        f"R²: {_num(s.r_squared)}   adjusted R²: {_num(s.adj_r_squared)}"
        + (f"   within R²: {_num(s.r_squared_within)}" if s.r_squared_within is not None else ""),
        _f_line(s),
        f"Log-likelihood: {_num(s.log_likelihood)}   AIC: {_num(s.aic)}   BIC: {_num(s.bic)}"
        f"   AICc: {_num(s.aicc)}   HQIC: {_num(s.hqic)}",
        f"Condition number (design as given, unscaled): {_num(s.condition_number, '.3g')}",
    ]
    lines += [f"Note: {note}" for note in s.notes]
    return "\n".join(lines)


def _f_line(s: Any) -> str:
    # The degrees of freedom printed are the ones the test used; no test, no DF.
    if s.f_statistic is None:
        return "F-statistic: n/a"
    return (
        f"F-statistic: {_num(s.f_statistic)} on {_num(s.df_model, 'g')} and "
        f"{_num(s.f_df_denominator, 'g')} DF, p-value: {_p(s.f_p_value)}"
    )
