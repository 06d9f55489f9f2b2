"""The scikit-learn estimator contract, without importing scikit-learn.

Parameters are the keyword arguments of ``__init__``, stored unchanged; ``fit`` sets
attributes ending in ``_``. scikit-learn itself is only imported when scikit-learn asks
for the estimator's tags, so ``clone``, pipelines, grid search and ``check_estimator``
all work while the library does not depend on it.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections import Counter
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..data.named import column_names, target_name
from ..devices import DeviceLike
from ..errors import InputError, not_fitted
from ._types import ArrayLike

if TYPE_CHECKING:
    import torch
    from typing_extensions import Self


class RegressorBase:
    """Parameter handling, ``repr``, ``score`` (R²) and the fitted check."""

    _estimator_type = "regressor"
    n_features_in_: int  # set by fit
    coef_: Any
    intercept_: Any
    formula_: Any  # a FormulaSpec, set by a fit from a formula (torchlinreg.formula)

    @classmethod
    def _param_names(cls) -> list[str]:
        return list(_init_param_names(cls.__init__))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters, as stored."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters by name; returns ``self``."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"invalid parameter {name!r} for {type(self).__name__}; "
                    f"valid parameters are: {', '.join(valid)}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {
            p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()
        }
        changed = [
            f"{k}={v!r}"
            for k, v in self.get_params().items()
            if not (v is defaults.get(k) or _equal(v, defaults.get(k)))
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "n_features_in_")

    def _check_is_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise not_fitted(
                f"this {type(self).__name__} instance is not fitted yet; "
                "call fit(X, y) before using it"
            )

    def _set_feature_names(self, X: Any, y: Any = None) -> None:
        """Remember the names of X's columns (``feature_names_in_``) and of y
        (``target_names_``: a Series' name, a DataFrame's columns), or forget those of
        an earlier fit when there are none."""
        self.__dict__.pop("formula_", None)  # a fit on arrays forgets an earlier formula
        columns = _column_names(y)
        target = [str(c) for c in columns] if columns is not None else _series_name(y)
        for attr, names in (("feature_names_in_", _column_names(X)), ("target_names_", target)):
            if names is None:
                self.__dict__.pop(attr, None)
            else:
                setattr(self, attr, names)

    def _check_feature_names(self, X: Any, *, by_name: bool = False) -> Any:
        """Warn when X's names and the fit's disagree on having names (scikit-learn's
        warnings); raise when both have names that differ. Returns X, with its columns
        put in the fitted order when ``by_name`` and X names exactly the fitted
        columns in another order (prediction matches columns by name; ``partial_fit``
        keeps scikit-learn's rule that the order is part of the data). A model fitted
        from a formula (``formula_``) builds its columns from a table by the formula."""
        if by_name and getattr(self, "formula_", None) is not None and _is_table(X):
            from ..formula.api import predictors

            X = predictors(self.formula_, X)
        fitted, given = getattr(self, "feature_names_in_", None), _column_names(X)
        name = type(self).__name__
        if fitted is None and given is not None:
            warnings.warn(
                f"X has feature names, but {name} was fitted without feature names",
                UserWarning,
                stacklevel=3,
            )
        elif fitted is not None and given is None:
            warnings.warn(
                f"X does not have valid feature names, but {name} was fitted with feature names",
                UserWarning,
                stacklevel=3,
            )
        elif fitted is not None and given is not None and list(fitted) != list(given):
            detail = _names_mismatch(list(fitted), list(given))
            if detail is None and by_name:
                return select_columns(X, [str(c) for c in fitted])
            raise InputError(
                "The feature names should match those that were passed during fit "
                f"({detail or 'same names in another order'}); "
                + (
                    "give X exactly the columns the model was fitted with"
                    if by_name or detail
                    else "select the columns in the order used for fitting"
                )
            )
        return X

    def _check_n_features(self, n_features: int) -> None:
        if n_features != self.n_features_in_:
            raise InputError(
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import InputTags, RegressorTags, Tags, TargetTags

        return Tags(
            estimator_type="regressor",
            target_tags=TargetTags(required=True, single_output=True, multi_output=True),
            transformer_tags=None,
            classifier_tags=None,
            regressor_tags=RegressorTags(),
            input_tags=InputTags(),
        )

    def predict(self, X: ArrayLike) -> np.ndarray | torch.Tensor:
        """``X W + b``. A torch tensor in gives a tensor out (same device); anything
        else gives a numpy array. Computed in X's precision when X is float32 or
        float64, else in float64."""
        self._check_is_fitted()
        X = self._check_feature_names(X, by_name=True)
        return self._predict_checked(X)

    def _predict_checked(self, X: ArrayLike) -> Any:
        """:meth:`predict` once the model and X's names are checked: a Dask collection
        lazily, partition by partition where its rows are."""
        if is_dask(X):
            from ..distributed.dask_predict import predict

            return predict(self, X)
        return self._predict(X)

    def _predict(self, X: ArrayLike) -> np.ndarray | torch.Tensor:
        """:meth:`predict` once the model and X's names are checked. A tensor that
        requires grad gives a prediction in its graph: gradients flow back to X."""
        import torch

        from ..data.arrays import as_tensor

        dtype = torch.float32 if getattr(X, "dtype", None) in (np.float32, torch.float32) else None
        dtype = dtype or torch.float64
        device = X.device if isinstance(X, torch.Tensor) else torch.device("cpu")
        graph = isinstance(X, torch.Tensor) and X.requires_grad and torch.is_grad_enabled()
        # Checked (shape, finite values) on a detached view, which shares X's memory.
        Xt = as_tensor(
            X.detach() if isinstance(X, torch.Tensor) else X,
            "X",
            ndim=(2,),
            dtype=dtype,
            device=device,
        )
        self._check_n_features(Xt.shape[1])
        if graph:
            Xt = cast("torch.Tensor", X).to(dtype)  # in the graph (no copy in its dtype)
        coef = torch.as_tensor(np.asarray(self.coef_), dtype=dtype, device=device)
        intercept = torch.as_tensor(self.intercept_, dtype=dtype, device=device)
        # coef_ is (n_features,) for a 1-D target, (n_targets, n_features) otherwise.
        pred = Xt @ (coef if coef.ndim == 1 else coef.T)
        if graph:
            pred = pred + intercept  # out of place: no in-place change to a graph tensor
        else:
            pred += intercept
        return pred if isinstance(X, torch.Tensor) else pred.cpu().numpy()

    def to_torch(
        self, dtype: torch.dtype | str | None = None, device: DeviceLike | None = None
    ) -> torch.nn.Linear:
        """The fitted model as a ``torch.nn.Linear`` (a copy of ``coef_`` and
        ``intercept_``; no bias when ``fit_intercept=False``), ready to be part of a
        network. ``dtype``: torch's default (float32) unless given; ``device``: the CPU
        unless given. It always has ``out_features = n_targets`` columns out, so a model
        of a 1-D target gives ``(n, 1)``: ``to_torch()(X).squeeze(-1)`` is ``predict(X)``.
        See ``docs/torch.md``."""
        from ..torch_io import to_linear

        self._check_is_fitted()
        return to_linear(self, dtype=dtype, device=device)

    def predict_array(self, X: np.ndarray) -> np.ndarray:
        """``X W + b`` for a float64 numpy array whose columns the caller has already
        matched to ``feature_names_in_`` (no name checks; used by file streaming)."""
        self._check_is_fitted()
        coef = np.asarray(self.coef_, dtype=np.float64)
        return X @ (coef if coef.ndim == 1 else coef.T) + np.asarray(self.intercept_, np.float64)

    def score(
        self, X: ArrayLike, y: ArrayLike | None = None, sample_weight: ArrayLike | None = None
    ) -> float:
        """R² of ``predict(X)`` against ``y`` (uniform average over targets), as
        scikit-learn's ``r2_score``: NaN for fewer than two rows, 1.0 or 0.0 for a
        target constant over the rows of positive weight (predicted exactly or not).
        A model fitted from a formula takes ``y`` from the table ``X`` when not given."""
        from ..stats.metrics import r2_score

        if y is None and getattr(self, "formula_", None) is not None:
            from ..formula.api import training_data

            X, y, w, _ = training_data(self.formula_, X, sample_weight, None)
            sample_weight = None if sample_weight is None else w
        if y is None:
            raise InputError("score needs y, the true values for the rows of X")

        return r2_score(_host(y), _host(self.predict(X)), _host(sample_weight))


@functools.cache
def _init_param_names(init: Any) -> tuple[str, ...]:
    """The parameter names of a constructor, read once: ``clone`` and ``set_params``
    ask for them at every fit of a grid search, and ``inspect.signature`` costs tens of
    microseconds a call."""
    return tuple(p.name for p in inspect.signature(init).parameters.values() if p.name != "self")


def _is_table(X: Any) -> bool:
    """A DataFrame (pandas, polars), a pyarrow Table or a file path: what a formula
    model builds its columns from."""
    import os

    if isinstance(X, (str, os.PathLike)):
        return True
    if type(X).__module__.split(".")[0] not in ("pandas", "polars", "pyarrow"):
        return False
    return hasattr(X, "column_names") or (hasattr(X, "columns") and X.ndim == 2)


def is_dask(X: Any) -> bool:
    """A Dask collection, told without importing Dask."""
    return type(X).__module__.split(".")[0] == "dask"


def _host(a: Any) -> Any:
    """A torch tensor as a numpy array in host memory; anything else as it is."""
    return a.detach().cpu().numpy() if hasattr(a, "detach") else a


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # arrays and other objects without a plain truth value
        return False


def _series_name(y: Any) -> list[str] | None:
    # pandas and polars Series carry a name (polars' default is ""), as does load_data's
    # y; other arrays do not.
    name = target_name(y) or getattr(y, "name", None)
    if not isinstance(name, str) or not name or getattr(y, "ndim", 1) != 1:
        return None
    return [name]


def _column_names(X: Any) -> np.ndarray | None:
    # DataFrames (pandas, polars), pyarrow tables and load_data's X name their columns;
    # all must be str.
    named = column_names(X)
    if named is not None:
        return np.asarray(named, dtype=object)
    columns = getattr(X, "column_names", None)  # pyarrow
    if columns is None:
        columns = getattr(X, "columns", None)
    if columns is None or hasattr(X, "__array_interface__"):
        return None
    names = [c if isinstance(c, str) else None for c in columns]
    if not names or any(c is None for c in names):
        return None
    return np.asarray(names, dtype=object)


def _names_mismatch(fitted: list[str], given: list[str]) -> str | None:
    """What differs between the fitted names and X's (missing, unexpected, repeated
    columns), or None when X names the fitted columns, each once, in any order."""
    counts = Counter(given)
    known = set(fitted)
    missing = [c for c in fitted if c not in counts]
    unexpected = [c for c in counts if c not in known]
    repeated = [c for c, n in counts.items() if n > 1]
    parts = [
        f"{label}: {', '.join(map(str, names))}"
        for label, names in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("repeated", repeated),
        )
        if names
    ]
    return "; ".join(parts) or None


def select_columns(X: Any, names: list[str]) -> Any:
    """X's columns ``names``, in that order, of the same kind of table: a pandas, polars
    or Dask DataFrame, a pyarrow Table, or :func:`~torchlinreg.load_data`'s named X. The
    caller has checked that X has each of them once."""
    from ..data.named import NamedArray

    if isinstance(X, NamedArray):
        index = [X.names.index(c) for c in names]
        return NamedArray(np.asarray(X)[:, index], names)
    if type(X).__module__.split(".")[0] in ("pyarrow", "polars"):
        return X.select(names)
    return X[names]  # pandas and Dask DataFrames (and others indexed like them)
