"""Fitting from a formula in memory, and a formula model's predictions and robust
summaries from a table.

``torchlinreg.ols("y ~ x1 + C(g)", df)`` is statsmodels' ``smf.ols(...).fit()`` and
pyfixest's ``feols`` in one call: formulaic builds the columns, the exact solver fits
them, and the model keeps the formula (``formula_``) to build the same columns from
new tables in ``predict``, ``score`` and ``summary``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.options import keywords
from ..errors import InputError
from .absorbed import factor_labels, split_absorbed
from .frames import as_frame, require_variables, table_columns
from .spec import FormulaSpec, candidate_columns, parse, side_variables

if TYPE_CHECKING:
    from ..models.linear import LinearRegression

MISSING = ("error", "drop")


def _row(i: int) -> str:
    return f"the data, row {i + 1}"


def ols(
    formula: str,
    data: Any,
    *,
    weights: str | Sequence[float] | np.ndarray | None = None,
    groups: str | Sequence[Any] | np.ndarray | None = None,
    missing: str = "error",
    **options: Any,
) -> LinearRegression:
    """Ordinary (or weighted) least squares from an R-style formula, fitted.

    ``formula``: ``"y ~ x1 + x2"``, with formulaic's terms: ``C(g)`` (categories; a
    reference level with ``C(g, Treatment('b'))``), ``a:b`` and ``a*b`` (interactions),
    ``I(x**2)``, ``np.log(x)``, ``poly(x, 2)``, ``- 1`` or ``+ 0`` (no intercept),
    ``y1 + y2 ~ x`` (several targets), ``Q("my col")`` for a column whose name is not
    a Python name; ``y ~ x1 + x2 | firm + year`` absorbs the fixed effects of the
    columns after ``|`` (pyfixest's syntax; no intercept, ``absorbed_`` describes them:
    docs/econometrics.md, Fixed effects). ``data``: a pandas or polars DataFrame, a
    pyarrow Table or a file path. ``weights``: a column name or one weight per row.
    ``cov_type`` (one of ``options``): the covariance ``summary()`` reports, computed during the fit
    (``"HC1"``, ``"cluster"`` with ``groups``: a column name or one label per row).
    ``missing``: rows missing
    a value the formula reads stop with an error (``"error"``) or are left out
    (``"drop"``, as statsmodels does). ``options`` go to
    :class:`~torchlinreg.LinearRegression` (``solver``, ``refine``, ``device``; the
    intercept comes from the formula).

    Returns the fitted model: ``coef_`` in the order of ``feature_names_in_``
    (formulaic's column names), ``summary()`` as R's ``summary.lm``,
    ``summary(cov_type="HC1", X=data)`` robust, ``summary(cov_type="cluster",
    X=data, groups="firm")`` clustered by a column, ``predict(new_data)``.
    """
    from ..models.linear import LinearRegression

    return fit_formula(LinearRegression, formula, data, weights=weights, groups=groups,
                       missing=missing, params=options)  # fmt: skip


def fit_formula(
    cls: Any,
    formula: str,
    data: Any,
    *,
    weights: Any = None,
    groups: Any = None,
    missing: str = "error",
    params: dict[str, Any],
) -> Any:
    """An estimator of class ``cls`` (with ``params``) fitted to ``formula`` on
    ``data``; see :func:`ols`."""
    with keywords():
        if missing not in MISSING:
            raise InputError(f"missing must be 'error' or 'drop'; got {missing!r}")
        if "fit_intercept" in params:
            raise InputError(
                "the intercept is part of the formula: it has one unless it says '- 1' "
                "or '+ 0'; do not pass fit_intercept"
            )
        columns = table_columns(data) if not _is_path(data) else _file_columns(data)
        parsed = parse(formula, columns)
        seen = side_variables(parsed.lhs) + side_variables(parsed.rhs)
        by_name = [c for c in (weights, groups) if isinstance(c, str)]
        weight_column = weights if isinstance(weights, str) else None
        absorb = split_absorbed(formula)[1]
        require_variables(formula, [*seen, *by_name, *absorb], columns)
        frame = as_frame(data, candidate_columns(formula, parsed, columns))
        spec = FormulaSpec.learn(formula, frame, columns=columns)
        spec.record["missing"] = missing
        spec.record["weights"] = weight_column
        w = _weights(data, weights, len(frame))
        fixed = factor_labels(data, absorb, missing, _row) if absorb else None
        X, Y, w, labels, fixed = _rows(spec, frame, w, _labels(data, groups), fixed)
    est = cls(fit_intercept=spec.fit_intercept, **params)
    if fixed is not None:  # fixed effects absorbed (the cluster covariance too)
        est.fit(*named(spec, X, Y), w, groups=labels, absorb=fixed)
    elif labels is None:
        est.fit(*named(spec, X, Y), w)
    else:  # the cluster covariance, computed during the fit
        est.fit(*named(spec, X, Y), w, groups=labels)
    est.formula_ = spec
    if fixed is not None:
        spec.drop_absorbed(est.absorbed_.dropped)
    return est


def named(spec: FormulaSpec, X: np.ndarray, Y: np.ndarray) -> tuple[Any, Any]:
    """X and y as named arrays: ``feature_names_in_`` and ``target_names_`` follow (X
    without the features a fit with fixed effects dropped)."""
    from ..data.named import NamedArray

    targets = spec.target_names
    y = NamedArray(Y[:, 0], targets) if len(targets) == 1 else NamedArray(Y, targets)
    return NamedArray(*_kept(spec, X)), y


def _rows(
    spec: FormulaSpec,
    frame: Any,
    w: np.ndarray | None,
    groups: np.ndarray | None,
    fixed: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, Any]:
    """X, Y, weights, groups and fixed effects' labels (a DataFrame or None) of the
    rows kept: every row, or with the fit's ``missing="drop"`` those with every value
    the formula reads."""
    missing = spec.record.get("missing", "error")
    X = spec.matrix(frame, "rhs", where=_row, missing=missing)
    Y = spec.matrix(frame, "lhs", where=_row, missing=missing)
    if missing != "drop":  # a missing value was refused; the fit refuses inf
        return X, Y, w, groups, fixed
    bad = ~(np.isfinite(X).all(axis=1) & np.isfinite(Y).all(axis=1))
    if fixed is not None:
        bad |= fixed.isna().to_numpy().any(axis=1)
    if bad.any():
        keep = ~bad
        X, Y = X[keep], Y[keep]
        w = None if w is None else w[keep]
        groups = None if groups is None else groups[keep]
        fixed = None if fixed is None else fixed[keep].reset_index(drop=True)
    return X, Y, w, groups, fixed


def _weights(data: Any, weights: Any, n: int) -> np.ndarray | None:
    if weights is None:
        return None
    if isinstance(weights, str):
        return np.asarray(as_frame(data, [weights])[weights], dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise InputError(f"weights must be a column name or one number per row ({n}); "
                         f"got shape {w.shape}")  # fmt: skip
    return w


def predictors(spec: FormulaSpec, data: Any) -> Any:
    """The features of a table as the formula built them when fitting (a named
    array); every row must have every value (a prediction per row)."""
    from ..data.named import NamedArray

    with keywords():
        columns = _file_columns(data) if _is_path(data) else table_columns(data)
        require_variables(spec.formula, spec.variables, columns)
        frame = as_frame(data, spec.variables)
        X = spec.matrix(frame, "rhs", where=_row, missing="error")
    return NamedArray(*_kept(spec, X))


def _kept(spec: FormulaSpec, X: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The formula's columns less those the fixed effects absorbed entirely (which
    the fit dropped), and their names."""
    names = spec.feature_names
    if not spec.dropped:
        return X, names
    keep = [j for j, name in enumerate(names) if name not in spec.dropped]
    return X[:, keep], [names[j] for j in keep]


def training_data(
    spec: FormulaSpec, data: Any, sample_weight: Any, groups: Any
) -> tuple[Any, Any, Any, Any]:
    """``(X, y, sample_weight, groups)`` of a table for a robust summary: the rows the
    fit kept, the fit's weights column, and ``groups`` as a column name or labels."""
    with keywords():
        columns = _file_columns(data) if _is_path(data) else table_columns(data)
        extra = [c for c in (spec.record.get("weights"), groups) if isinstance(c, str)]
        require_variables(spec.formula, [*spec.target_variables, *spec.variables, *extra],
                          columns)  # fmt: skip
        frame = as_frame(data, list(dict.fromkeys(spec.target_variables + spec.variables)))
        if sample_weight is None and spec.record.get("weights"):
            sample_weight = _weights(data, spec.record["weights"], len(frame))
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        labels = _labels(data, groups)
        X, Y, w, labels, _ = _rows(spec, frame, w, labels)
    return (*named(spec, X, Y), w, labels)


def _labels(data: Any, groups: Any) -> np.ndarray | None:
    """Cluster labels: a column of the table (none may be missing) or given ones."""
    if not isinstance(groups, str):
        return None if groups is None else np.asarray(groups)
    column = as_frame(data, [groups])[groups]
    missing = column.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise InputError(
            f"{_row(row)}, column {groups!r}: the cluster label is missing; fill it in or "
            "remove the row"
        )
    return column.to_numpy()


def _is_path(data: Any) -> bool:
    import os

    return isinstance(data, (str, os.PathLike))


def _file_columns(path: Any) -> list[str]:
    from .frames import file_columns

    return file_columns(path)
