"""Wald and F tests of linear restrictions R β = q on a fitted model's coefficients,
with the covariance of its summary (any ``cov_type``) and its degrees of freedom.

    W = (Rβ − q)ᵀ (R V Rᵀ)⁻¹ (Rβ − q)

``wald_test`` refers W to χ²(J) (J restrictions), ``f_test`` refers F = W/J to
F(J, df) with df the summary's ``df_inference`` (n − k; G − 1 for cluster types), as
statsmodels' ``wald_test(use_f=False)`` and ``f_test``.

Restrictions are text over the coefficient names (``feature_names_in_`` and
``intercept``): ``"x1 = x2"``, ``"x1 = 0, x2 = 0"``, ``"2*x1 + x2 = 1"``, ``"x1"``
(= 0); or a matrix R (J, p') with q (J,), columns in the summary's order (intercept
first); or ``columns=[...]``: those coefficients jointly zero (e.g. the one-hot levels
of one categorical column).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from .summary import Summary

_NUMBER = re.compile(r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass
class TestResult:
    """A Wald (``kind="chi2"``) or F (``kind="F"``) test of J linear restrictions."""

    kind: str
    statistic: float
    p_value: float
    df_num: int
    df_denom: float | None
    restrictions: list[str]
    cov_type: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __str__(self) -> str:
        F = self.kind == "F"
        dist = f"F({self.df_num}, {self.df_denom:g})" if F else f"chi2({self.df_num})"
        return (
            f"{'F' if self.kind == 'F' else 'Wald'} test of " + "; ".join(self.restrictions)
            + f" ({self.cov_type} covariance): {dist} = {self.statistic:.6g}, "
            f"p-value = {self.p_value:.4g}"
        )  # fmt: skip


# --- Parsing restrictions -----------------------------------------------------------


def parse(text: str, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """R (J, p'), q (J,) and the restrictions' texts from ``text``: equations separated
    by commas (or semicolons), each ``lhs = rhs`` or an expression (= 0); terms are
    ``name``, ``number*name``, ``name*number``, ``number name`` or ``number``. Names are
    matched first, longest first, so that names holding ``=`` or spaces (one-hot
    levels ``color=red``) are read whole."""
    if not isinstance(text, str) or not text.strip():
        raise InputError('give restrictions as text, e.g. "x1 = x2" or "x1 = 0, x2 = 0"')
    tokens = _tokens(text, names)
    rows, qs, texts = [], [], []
    for part in _split(tokens, {",", ";"}):
        shown = " ".join(_show(t, names) for t in part)
        sides = _split(part, {"="})
        if len(sides) > 2:
            raise InputError(f"restriction {shown!r} has more than one '='")
        row, const = _linear(sides[0], len(names), shown)
        if len(sides) == 2:
            right, right_const = _linear(sides[1], len(names), shown)
            row, const = row - right, const - right_const
        if not row.any():
            raise InputError(f"restriction {shown!r} involves no coefficient")
        rows.append(row)
        qs.append(-const)
        texts.append(shown)
    return np.array(rows), np.array(qs), texts


Token = tuple[str, Any]  # ("name", index), ("number", value) or ("op", character)


def _tokens(text: str, names: Sequence[str]) -> list[Token]:
    by_length = sorted(range(len(names)), key=lambda j: -len(names[j]))
    out: list[Token] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        j = next((j for j in by_length if text.startswith(names[j], i)), None)
        end = i if j is None else i + len(names[j])
        # a name followed by more of a word (x1 in x12) is not that name
        if j is not None and not (end < len(text) and _word(text[end - 1]) and _word(text[end])):
            out.append(("name", j))
            i = end
            continue
        match = _NUMBER.match(text, i)
        if match is not None:
            out.append(("number", float(match.group(0))))
            i = match.end()
        elif text[i] in "+-*=,;":
            out.append(("op", text[i]))
            i += 1
        else:
            token = re.split(r"\s*[-+=*,;]", text[i:].strip())[0]
            raise InputError(
                f"unknown coefficient {token!r} in {text!r}; the coefficients are: "
                + ", ".join(names)
            )
    return out


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _split(tokens: list[Token], ops: set[str]) -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    for t in tokens:
        if t[0] == "op" and t[1] in ops:
            parts.append([])
        else:
            parts[-1].append(t)
    for part in parts:
        if not part:
            raise InputError('an empty restriction or side of one; write e.g. "x1 = x2, x3 = 0"')
    return parts


def _show(t: Token, names: Sequence[str]) -> str:
    return names[t[1]] if t[0] == "name" else f"{t[1]:g}" if t[0] == "number" else t[1]


def _linear(tokens: list[Token], p: int, shown: str) -> tuple[np.ndarray, float]:
    """The coefficients (p',) and constant of a linear expression."""
    row, const = np.zeros(p), 0.0
    i = 0
    while i < len(tokens):
        sign = 1.0
        while i < len(tokens) and tokens[i] in (("op", "+"), ("op", "-")):
            sign = -sign if tokens[i][1] == "-" else sign
            i += 1
        factor, name, i = _term(tokens, i, shown)
        if name is None:
            const += sign * factor
        else:
            row[name] += sign * factor
        if i < len(tokens) and tokens[i] not in (("op", "+"), ("op", "-")):
            raise InputError(f"in restriction {shown!r}: expected + or - between two terms")
    return row, const


def _term(tokens: list[Token], i: int, shown: str) -> tuple[float, int | None, int]:
    """(factor, coefficient index or None for a constant, next index) of one term."""
    if i >= len(tokens):
        raise InputError(f"in restriction {shown!r}: a term is missing after + or -")
    factor, name = 1.0, None
    kind, value = tokens[i]
    if kind == "number":
        factor, i = value, i + 1
        if i < len(tokens) and tokens[i] == ("op", "*"):
            i += 1
            if i >= len(tokens) or tokens[i][0] != "name":
                raise InputError(f"in restriction {shown!r}: a coefficient must follow '*'")
        if i < len(tokens) and tokens[i][0] == "name":
            name, i = tokens[i][1], i + 1
    elif kind == "name":
        name, i = value, i + 1
        if i < len(tokens) and tokens[i] == ("op", "*"):
            if i + 1 >= len(tokens) or tokens[i + 1][0] != "number":
                raise InputError(f"in restriction {shown!r}: a number must follow '*'")
            factor, i = tokens[i + 1][1], i + 2
    else:
        raise InputError(f"in restriction {shown!r}: unexpected {value!r}")
    return factor, name, i


# --- The tests ------------------------------------------------------------------------


def restriction_matrix(
    summary: Summary,
    restrictions: Any = None,
    q: Any = None,
    columns: Sequence[str] | str | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """R, q and texts from text, a matrix (with q, default 0) or ``columns``."""
    names = [c.name for c in summary.coefficients]
    if (restrictions is None) == (columns is None):
        raise InputError("give either restrictions (text or a matrix R) or columns=, not both")
    if columns is not None:
        picked = _columns(columns, names)
        R = np.zeros((len(picked), len(names)))
        R[np.arange(len(picked)), [names.index(c) for c in picked]] = 1.0
        return R, np.zeros(len(picked)), [f"{c} = 0" for c in picked]
    if isinstance(restrictions, str):
        if q is not None:
            raise InputError("q= goes with a matrix R; in text, write the constants: 'x1 = 1'")
        return parse(restrictions, names)
    R = np.atleast_2d(np.asarray(restrictions, dtype=float))
    if R.ndim != 2 or R.shape[1] != len(names):
        raise InputError(
            f"R must have one column per coefficient ({len(names)}: {', '.join(names)}); "
            f"got shape {R.shape}"
        )
    qv = np.zeros(len(R)) if q is None else np.atleast_1d(np.asarray(q, dtype=float))
    if qv.shape != (len(R),):
        raise InputError(f"q must have one value per row of R ({len(R)}); got shape {qv.shape}")
    if not (np.isfinite(R).all() and np.isfinite(qv).all()):
        raise InputError("R and q must be finite numbers")
    texts = [_row_text(r, v, names) for r, v in zip(R, qv, strict=True)]
    return R, qv, texts


def _columns(columns: Sequence[str] | str, names: list[str]) -> list[str]:
    """Coefficient names: a list of them, or a prefix naming a group (one-hot levels)."""
    if isinstance(columns, str):
        picked = [n for n in names if n == columns or n.startswith(columns)]
        if not picked:
            raise InputError(
                f"no coefficient is named {columns!r} or starts with it; the coefficients "
                f"are: {', '.join(names)}"
            )
        return picked
    picked = list(columns)
    unknown = [c for c in picked if c not in names]
    if unknown or not picked:
        raise InputError(
            f"unknown coefficient(s) {', '.join(map(repr, unknown)) or '(none given)'}; the "
            f"coefficients are: {', '.join(names)}"
        )
    return picked


def _row_text(row: np.ndarray, value: float, names: list[str]) -> str:
    terms = [f"{c:g}*{n}" for c, n in zip(row, names, strict=True) if c != 0]
    return " + ".join(terms or ["0"]) + f" = {value:g}"


def wald_statistic(summary: Summary, R: np.ndarray, q: np.ndarray) -> float:
    """W = (Rβ − q)ᵀ (R V Rᵀ)⁻¹ (Rβ − q), refusing dependent restrictions and a
    singular R V Rᵀ (e.g. fewer clusters than restrictions)."""
    if summary.cov is None:
        raise InputError(
            "this summary has no covariance (see its notes: e.g. rank deficient, ridge, "
            "an exact fit), so no test"
        )
    J = len(R)
    if np.linalg.matrix_rank(R) < J:
        raise InputError(
            "the restrictions are linearly dependent (one follows from the others); "
            "drop the redundant ones"
        )
    groups = summary.df_inference
    if summary.cov_type in ("cluster", "CRV3") and groups is not None and groups < J:
        raise InputError(
            f"a cluster-robust test of {J} restrictions needs at least {J + 1} clusters "
            f"(G − 1 ≥ J); this covariance has {groups + 1:g}: test fewer restrictions"
        )
    beta = np.array([c.estimate for c in summary.coefficients])
    V = np.asarray(summary.cov)
    middle = R @ V @ R.T
    vals, vecs = np.linalg.eigh((middle + middle.T) / 2)
    if vals[0] <= 1e-12 * max(abs(vals[-1]), np.finfo(float).tiny):
        raise InputError(
            "the covariance of the restrictions R V Rᵀ is singular (a restriction whose "
            "estimate has no variance, e.g. fewer clusters than restrictions); drop it"
        )
    r = R @ beta - q
    z = vecs.T @ r
    return float(np.sum(z**2 / vals))


def test(
    summary: Summary,
    restrictions: Any = None,
    q: Any = None,
    *,
    columns: Sequence[str] | str | None = None,
    use_f: bool = True,
) -> TestResult:
    """The F (``use_f``) or χ² Wald test of the restrictions on ``summary``."""
    from scipy import special

    R, qv, texts = restriction_matrix(summary, restrictions, q, columns)
    W = wald_statistic(summary, R, qv)
    J = len(R)
    if use_f:
        df = summary.df_inference
        assert df is not None  # set wherever the covariance is
        F = W / J
        p = float(special.fdtrc(J, df, F)) if math.isfinite(F) else 0.0
        return TestResult("F", F, p, J, df, texts, summary.cov_type)
    return TestResult("chi2", W, float(special.chdtrc(J, W)), J, None, texts, summary.cov_type)
