"""Several fitted models side by side, like R fixest's ``etable``: one column per
model, each coefficient's estimate with stars over its standard error (or t) in
parentheses, then the number of observations, R², adjusted R² and the covariance type.

Stars follow fixest's default: ``***`` p < 0.001, ``**`` p < 0.01, ``*`` p < 0.05,
``.`` p < 0.1. A coefficient a model does not have is left blank.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .summary import Coefficient, Summary

STARS = ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."))
_STATS = ("n", "r_squared", "adj_r_squared", "cov_type")
_STAT_LABELS = {"n": "Observations", "r_squared": "R²", "adj_r_squared": "Adj. R²",
                "cov_type": "Covariance"}  # fmt: skip


@dataclass
class ETable:
    """The models' summaries in columns; ``stat`` is what the parentheses hold
    (``"se"`` or ``"t"``), ``digits`` the significant digits shown."""

    summaries: list[Summary]
    names: list[str]
    stat: str = "se"
    digits: int = 4

    @property
    def coefficient_names(self) -> list[str]:
        """Every coefficient of any model, in the order first seen."""
        seen: dict[str, None] = {}
        for s in self.summaries:
            for c in s.coefficients:
                seen.setdefault(c.name, None)
        return list(seen)

    def to_frame(self) -> Any:
        """The table as a pandas DataFrame of text cells: for each coefficient a row of
        estimates (with stars) and a row of standard errors (or t) in parentheses, then
        the fit statistics."""
        import pandas as pd

        rows, index = [], []
        for name in self.coefficient_names:
            cells = [_coefficient(s, name) for s in self.summaries]
            rows.append([self._estimate(c) for c in cells])
            rows.append([self._paren(c) for c in cells])
            index += [name, ""]
        for key in _STATS:
            rows.append([self._stat(s, key) for s in self.summaries])
            index.append(_STAT_LABELS[key])
        return pd.DataFrame(rows, index=index, columns=self.names)

    def to_dict(self) -> dict[str, Any]:
        """Numbers, per model: its coefficients (estimate, std_error, t, p_value) and
        fit statistics (JSON-ready: absent values are null)."""
        from .summary import _plain

        models = []
        for name, s in zip(self.names, self.summaries, strict=True):
            coefs = {
                c.name: {
                    k: _plain(getattr(c, k)) for k in ("estimate", "std_error", "t", "p_value")
                }
                for c in s.coefficients
            }
            models.append({"name": name, "target": s.target, "coefficients": coefs}
                          | {k: _plain(getattr(s, k)) for k in _STATS})  # fmt: skip
        return {"stat": self.stat, "models": models}

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        frame = self.to_frame()
        header = ["", *self.names]
        body = [[str(i), *map(str, row)] for i, row in zip(frame.index, frame.values, strict=True)]
        widths = [max(len(r[c]) for r in [header, *body]) for c in range(len(header))]

        def line(r: list[str]) -> str:
            return "  ".join(v.ljust(w) if c == 0 else v.rjust(w)
                             for c, (v, w) in enumerate(zip(r, widths, strict=True)))  # fmt: skip

        rule = "-" * len(line(header))
        n_coef = 2 * len(self.coefficient_names)
        out = [line(header), rule, *map(line, body[:n_coef]), rule, *map(line, body[n_coef:])]
        what = "standard errors" if self.stat == "se" else "t statistics"
        out += [rule, f"({what} in parentheses; *** p<0.001, ** p<0.01, * p<0.05, . p<0.1)"]
        return "\n".join(out)

    def _estimate(self, c: Coefficient | None) -> str:
        if c is None:
            return ""
        return f"{c.estimate:.{self.digits}g}{stars(c.p_value)}"

    def _paren(self, c: Coefficient | None) -> str:
        if c is None:
            return ""
        v = c.std_error if self.stat == "se" else c.t
        return "(n/a)" if v is None else f"({v:.{self.digits}g})"

    def _stat(self, s: Summary, key: str) -> str:
        v = getattr(s, key)
        if v is None:
            return ""
        return v if isinstance(v, str) else f"{v:,}" if key == "n" else f"{v:.{self.digits}g}"


def stars(p: float | None) -> str:
    if p is None:
        return ""
    return next((mark for cut, mark in STARS if p < cut), "")


def _coefficient(s: Summary, name: str) -> Coefficient | None:
    return next((c for c in s.coefficients if c.name == name), None)


def etable(
    models: Sequence[Any],
    *,
    names: Sequence[str] | None = None,
    stat: str = "se",
    digits: int = 4,
    target: int = 0,
) -> ETable:
    """A side-by-side table of fitted models (``LinearRegression``, or their
    summaries for another covariance: ``etable([m1.summary(cov_type="HC1", ...), m2])``).
    ``names`` head the columns (default ``(1)``, ``(2)``, …); ``stat`` is ``"se"`` or
    ``"t"``; ``target`` picks the target of models of several."""
    if isinstance(models, (Summary, str)) or not isinstance(models, Sequence) or not models:
        raise InputError("etable takes a list of fitted models (or their summaries)")
    if stat not in ("se", "t"):
        raise InputError(f"stat must be 'se' or 't', got {stat!r}")
    if not isinstance(digits, int) or not 1 <= digits <= 17:
        raise InputError(f"digits must be a whole number from 1 to 17, got {digits!r}")
    labels = list(names) if names is not None else [f"({i + 1})" for i in range(len(models))]
    if len(labels) != len(models):
        raise InputError(f"names has {len(labels)} entries for {len(models)} models")
    summaries = [_summary(m, target, label) for m, label in zip(models, labels, strict=True)]
    return ETable(summaries, labels, stat, digits)


def _summary(model: Any, target: int, label: str) -> Summary:
    if isinstance(model, Summary):
        return model
    if not hasattr(model, "summary"):
        raise InputError(f"{label} is not a fitted model with a summary (got {type(model)})")
    out = model.summary()
    if isinstance(out, list):
        if not 0 <= target < len(out):
            raise InputError(f"target={target} is not one of {label}'s {len(out)} targets")
        out = out[target]
    return out  # type: ignore[no-any-return]
