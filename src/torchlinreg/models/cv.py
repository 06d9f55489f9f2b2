"""``RidgeCV``, ``LassoCV``, ``ElasticNetCV``: penalties chosen by K-fold cross-validation
from per-fold least-squares states, one pass over the data.

Every row is folded into the state of its fold; the training state of fold k is the
merge of the others, and the error on fold k of any coefficients is a quadratic form in
fold k's R factor (:mod:`._fold_states`). After the pass each (fold, alpha) costs O(p²)
to O(p³), never O(n). The chosen model is refitted at the best penalty from the state
of every row (no further pass). See docs/cv.md.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ._base import RegressorBase
from ._folds import check_n_folds, check_seed, resolve_folds
from ._types import ArrayLike

if TYPE_CHECKING:
    import torch
    from typing_extensions import Self

    from ..distributed.group import DistributedLike, Group
    from ..solvers.state import LeastSquaresState
    from ._fold_states import FoldStates
    from ._stream import ChunkSource


class _CrossValidated(RegressorBase):
    """Fold handling, ``fit``/``fit_chunks`` and the choice of the penalty; subclasses
    give the grid, the curve of one grid row and the refit."""

    cv: Any
    random_state: Any
    fit_intercept: bool
    mse_path_: np.ndarray
    state_: LeastSquaresState

    def _check_params(self) -> None:
        if not isinstance(self.fit_intercept, (bool, np.bool_)):
            raise InputError(f"fit_intercept must be True or False, got {self.fit_intercept!r}")
        check_seed(self.random_state)

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        *,
        folds: ArrayLike | None = None,
        groups: ArrayLike | None = None,
        distributed: DistributedLike = False,
    ) -> Self:
        """Choose the penalty by cross-validation on in-memory data and refit on all of
        it; returns ``self``.

        The folds are ``folds`` (one label per row, any values; folds in their sorted
        order) if given, else ``cv``: a number of folds (scikit-learn's ``KFold``:
        consecutive blocks, or shuffled by ``random_state`` as ``KFold(shuffle=True,
        random_state=...)``), a splitter (called as ``cv.split(X, y, groups)``:
        ``groups`` for ``GroupKFold`` and the like), or an iterable of ``(train,
        test)`` index arrays. ``sample_weight`` weights both the training
        fits and each fold's mean squared error (as scikit-learn's ``LassoCV``).

        ``distributed=True`` (the default ``torch.distributed`` process group) or a
        process group: collective, every rank passes its own rows (a rank may have
        none) and ends with the identical model, that of the one-process fit of the
        ranks' rows concatenated in rank order. The folds are ``folds`` (labels, per
        row) or ``KFold``'s blocks of that global row order (shuffled as one process
        would with ``random_state``); splitters and index arrays are refused. See
        docs/cv.md.
        """
        from ..data.chunks import validate_chunk
        from ._fold_states import in_memory

        group = _group(distributed)
        if group is not None:
            from . import _cv_distributed

            return _cv_distributed.fit(self, group, X, y, sample_weight, folds, groups)
        self._check_params()
        self._check_grid()
        chunk = validate_chunk(X, y, sample_weight)
        _one_target(chunk.Y.shape[1])
        if not chunk.target_1d:
            _warn_column_y()
        n = chunk.X.shape[0]
        spec = resolve_folds(self.cv, X, y, n, folds=folds, random_state=self.random_state,
                             groups=groups)  # fmt: skip
        states = in_memory(chunk, spec, bool(self.fit_intercept))
        self._set_feature_names(X, y)
        return self._select(states)

    def fit_chunks(
        self,
        chunks: ChunkSource,
        *,
        folds: str | None = None,
        feature_names: Sequence[str] | None = None,
        distributed: DistributedLike = False,
    ) -> Self:
        """Cross-validate on a stream of chunks, read once; returns ``self``.

        ``folds=None``: ``(X, y)`` or ``(X, y, sample_weight)`` chunks, each row's fold
        a seeded hash of its position in the stream (``cv`` folds, seed
        ``random_state`` or 0; the same for any chunking, see
        :func:`~torchlinreg.models._folds.hash_folds`). ``folds="chunks"``: each chunk
        is ``(X, y, sample_weight, fold_labels)`` (``sample_weight`` may be None), the
        folds being the labels' levels in sorted order.

        ``distributed``: as for :meth:`fit`, each rank streams its own rows; hashed
        folds hash the rows' positions in the ranks' streams concatenated in rank
        order, which takes a first pass counting each rank's rows (the streams must be
        re-iterable: lists, or functions returning a fresh iterator).
        """
        from ._fold_states import _stream_items, streamed

        group = _group(distributed)
        if group is not None:
            from . import _cv_distributed

            return _cv_distributed.fit_chunks(self, group, chunks, folds, feature_names)
        n_folds = self._stream_folds(folds)
        seed = check_seed(self.random_state) or 0
        states = streamed(_stream_items(chunks, folds == "chunks"), n_folds, seed,
                          bool(self.fit_intercept))  # fmt: skip
        return self.fit_fold_states(states, feature_names=feature_names)

    def _stream_folds(self, folds: str | None) -> int:
        """The parameters checked for a stream; the number of hashed folds (2 when the
        folds come with the chunks: a placeholder, the labels decide)."""
        self._check_params()
        self._check_grid()
        if folds not in (None, "chunks"):
            raise InputError(
                f"folds must be None (hashed row positions) or 'chunks' (labels as each "
                f"chunk's 4th item); got {folds!r}"
            )
        if folds is not None:
            return 2
        if not isinstance(self.cv, numbers.Integral) or isinstance(self.cv, bool):
            raise InputError(
                "a stream takes cv as a number of folds, or fold labels with each "
                "chunk (folds='chunks'); splitters and index arrays need data in memory"
            )
        return check_n_folds(self.cv)

    def fit_fold_states(
        self, states: FoldStates, *, feature_names: Sequence[str] | None = None
    ) -> Self:
        """Choose and refit from fold states already built (the file commands build
        them as they stream); ``feature_names`` name the columns."""
        self._check_params()
        self._check_grid()
        _one_target(states.full.n_targets)
        self._set_feature_names(None, None)
        if feature_names is not None:
            names = [str(c) for c in feature_names]
            if len(names) != states.full.n_features:
                raise InputError(
                    f"{len(names)} feature_names for {states.full.n_features} features"
                )
            self.feature_names_in_ = np.asarray(names, dtype=object)
        return self._select(states)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = False  # one target (fit one model per target)
        tags.target_tags.single_output = True
        return tags

    # -- what subclasses provide -------------------------------------------------------

    def _check_grid(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _grid(self, states: FoldStates) -> tuple[list[float], np.ndarray]:  # pragma: no cover
        """(the l1 ratios, the alphas of each: (n_l1_ratios, n_alphas))."""
        raise NotImplementedError

    def _curve(
        self, states: FoldStates, alphas: np.ndarray, l1_ratio: float
    ) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _refit(
        self, full: LeastSquaresState, alphas: np.ndarray, best: int, l1_ratio: float
    ) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- the choice --------------------------------------------------------------------

    def _select(self, states: FoldStates) -> Self:
        """The curves, the penalty of least mean MSE over the folds (the first, i.e.
        the largest alpha, at a tie, as scikit-learn), and the refit at it."""
        import torch

        from ._cv_curves import intercepts

        l1_ratios, grid = self._grid(states)
        paths = np.stack([self._curve(states, grid[i], r) for i, r in enumerate(l1_ratios)])
        mean = paths.mean(axis=2)
        best_mse, best_row, best_i = np.inf, 0, 0
        for row, curve in enumerate(mean):
            i = int(np.argmin(curve))
            if curve[i] < best_mse:
                best_mse, best_row, best_i = float(curve[i]), row, i
        full = states.full
        coef = self._refit(full, grid[best_row], best_i, l1_ratios[best_row])
        self.alpha_ = float(grid[best_row][best_i])
        self._set_path(l1_ratios, grid, paths, l1_ratios[best_row])
        self.coef_ = coef.cpu().numpy().reshape(-1)
        self.intercept_ = float(intercepts(full, coef.reshape(-1, 1).to(torch.float64))[0])
        self.best_score_ = -best_mse
        self.n_features_in_ = full.n_features
        self.n_samples_seen_ = full.n_samples
        self.n_folds_ = states.n_folds
        self.state_ = full
        return self

    def _set_path(
        self, l1_ratios: list[float], grid: np.ndarray, paths: np.ndarray, best_l1: float
    ) -> None:
        self.alphas_ = grid[0]
        self.mse_path_ = paths[0]


def _group(distributed: DistributedLike) -> Group | None:
    if distributed is False:
        return None
    from ..distributed.group import resolve_group

    return resolve_group(distributed)


def _one_target(k: int) -> None:
    if k != 1:
        raise InputError(
            f"cross-validation here takes one target; y has {k} columns: fit one model per target"
        )


def _warn_column_y() -> None:
    """y of shape (n, 1) is taken as (n,), with scikit-learn's warning (its class when
    scikit-learn is in use, which is where code checks for it)."""
    import sys
    import warnings

    from ._diagnostics import user_stacklevel

    category: type[Warning] = UserWarning
    if "sklearn" in sys.modules:
        from sklearn.exceptions import DataConversionWarning

        category = DataConversionWarning
    warnings.warn(
        "A column-vector y was passed when a 1d array was expected; it is used as y.ravel()",
        category,
        stacklevel=user_stacklevel(),
    )


def _check_alphas(alphas: Any, what: str = "alphas") -> np.ndarray:
    """Penalties as a non-empty 1-D float array of finite values >= 0."""
    try:
        values = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    except (TypeError, ValueError):
        raise InputError(f"{what} must be numbers; got {alphas!r}") from None
    if values.ndim != 1 or values.size == 0:
        raise InputError(f"{what} must be a non-empty 1-D sequence of penalties")
    if not np.isfinite(values).all() or (values < 0).any():
        bad = values[~(np.isfinite(values) & (values >= 0))][0]
        raise InputError(f"{what} must be finite and >= 0; got {bad!r}")
    return values


class RidgeCV(_CrossValidated):
    """Ridge regression with alpha chosen by K-fold cross-validation.

    As scikit-learn's ``RidgeCV(alphas, cv=K)`` (its grid search over ``Ridge``, not
    its default leave-one-out shortcut, ``cv=None``), with the folds' mean squared
    error as the score (scikit-learn's ``scoring='neg_mean_squared_error'``; its
    default score with ``cv=K`` is R²). The objective is ``Ridge``'s:
    ‖√w(y − Xβ − b)‖² + α‖β‖², the intercept not penalised.

    Parameters
    ----------
    alphas : sequence of float >= 0
        The penalties tried, in this order (ties go to the first).
    cv : int, splitter or iterable of (train, test), default 5
        The folds (see :meth:`fit`); a stream takes an int.
    fit_intercept : bool
    random_state : int or None
        With an int ``cv``, shuffle the rows as ``KFold(shuffle=True,
        random_state=...)`` does; for streams, the seed of the hashed folds.

    Attributes
    ----------
    alpha_ : float
        The chosen penalty.
    alphas_ : ndarray (n_alphas,)
    mse_path_ : ndarray (n_alphas, n_folds)
        Weighted mean squared error of each alpha on each test fold.
    best_score_ : float
        Minus the mean over the folds of the chosen alpha's MSE.
    coef_, intercept_ :
        The ridge fit at ``alpha_`` on every row.
    n_folds_, n_features_in_, n_samples_seen_, state_ :
        Folds used; features; rows; the least-squares state of every row.
    """

    def __init__(
        self,
        alphas: Sequence[float] | np.ndarray = (0.1, 1.0, 10.0),
        *,
        cv: Any = 5,
        fit_intercept: bool = True,
        random_state: int | None = None,
    ) -> None:
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.random_state = random_state

    def _check_grid(self) -> None:
        _check_alphas(self.alphas)

    def _grid(self, states: FoldStates) -> tuple[list[float], np.ndarray]:
        return [0.0], _check_alphas(self.alphas).reshape(1, -1)

    def _curve(self, states: FoldStates, alphas: np.ndarray, l1_ratio: float) -> np.ndarray:
        from ._cv_curves import ridge_curve

        return ridge_curve(states, alphas)

    def _refit(
        self, full: LeastSquaresState, alphas: np.ndarray, best: int, l1_ratio: float
    ) -> torch.Tensor:
        import torch

        from ..solvers.solve import solve_ridge

        alpha = torch.tensor([float(alphas[best])], dtype=torch.float64)
        return solve_ridge(full, alpha.to(full.device)).coef[:, 0]


class ElasticNetCV(_CrossValidated):
    """Elastic net with alpha (and ``l1_ratio``) chosen by K-fold cross-validation, as
    scikit-learn's ``ElasticNetCV``: the objective
    Σw(y − Xβ − b)²/(2Σw) + α·ρ‖β‖₁ + α(1 − ρ)‖β‖²/2, the grid
    alpha_max = max|Xcᵀ W yc| / (Σw·ρ) down to ``eps``·alpha_max in ``alphas``
    log-spaced steps, each fold's path warm-started, the penalty of least mean MSE.

    Parameters
    ----------
    l1_ratio : float or sequence of float in [0, 1]
        ρ; with several, each has its own grid and the best pair is chosen.
    eps : float > 0
    alphas : int or sequence of float >= 0
        An int: that many alphas on the automatic grid (scikit-learn ≥ 1.7's
        ``alphas=100``; ``None`` means 100). A sequence: those penalties, tried in
        decreasing order.
    cv, fit_intercept, random_state : as :class:`RidgeCV`.
    tol, max_iter : the coordinate-descent solver's, as scikit-learn's (the duality
        gap at most ``tol`` times yᵀWy / Σw).

    Attributes
    ----------
    alpha_, l1_ratio_ : the chosen penalty.
    alphas_ : ndarray (n_alphas,) or (n_l1_ratios, n_alphas)
    mse_path_ : ndarray (n_alphas, n_folds) or (n_l1_ratios, n_alphas, n_folds)
    coef_, intercept_, dual_gap_, n_iter_ : the refit on every row at the choice.
    """

    def __init__(
        self,
        *,
        l1_ratio: float | Sequence[float] = 0.5,
        eps: float = 1e-3,
        alphas: int | Sequence[float] | np.ndarray | None = 100,
        cv: Any = 5,
        fit_intercept: bool = True,
        tol: float = 1e-4,
        max_iter: int = 1000,
        random_state: int | None = None,
    ) -> None:
        self.l1_ratio = l1_ratio
        self.eps = eps
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    def _l1_ratios(self) -> list[float]:
        ratios = _check_alphas(self.l1_ratio, "l1_ratio")
        if (ratios > 1).any():
            raise InputError(f"l1_ratio must lie in [0, 1]; got {self.l1_ratio!r}")
        return [float(r) for r in ratios]

    def _check_grid(self) -> None:
        self._l1_ratios()
        if self.alphas is None or isinstance(self.alphas, numbers.Integral):
            if isinstance(self.alphas, bool) or (self.alphas is not None and self.alphas < 1):
                raise InputError(f"alphas must be a number of alphas >= 1 or a list; got "
                                 f"{self.alphas!r}")  # fmt: skip
            eps = self.eps
            if not isinstance(eps, numbers.Real) or not 0 < float(eps) < np.inf:
                raise InputError(f"eps must be a number > 0; got {eps!r}")
        else:
            _check_alphas(self.alphas)

    def _grid(self, states: FoldStates) -> tuple[list[float], np.ndarray]:
        from ._cv_curves import alpha_grid, centred

        ratios = self._l1_ratios()
        if self.alphas is None or isinstance(self.alphas, numbers.Integral):
            full = centred(states.full)
            n = 100 if self.alphas is None else int(self.alphas)
            grid = [alpha_grid(full, r, float(self.eps), n) for r in ratios]
            return ratios, np.stack(grid)
        given = np.sort(_check_alphas(self.alphas))[::-1]
        return ratios, np.tile(given, (len(ratios), 1))

    def _curve(self, states: FoldStates, alphas: np.ndarray, l1_ratio: float) -> np.ndarray:
        from ._cv_curves import enet_curve

        return enet_curve(states, alphas, l1_ratio, self.tol, self.max_iter)

    def _refit(
        self, full: LeastSquaresState, alphas: np.ndarray, best: int, l1_ratio: float
    ) -> torch.Tensor:
        """The path on every row down to the chosen alpha (warm starts)."""
        import torch

        from ..solvers.enet import enet_path
        from ._cv_curves import centred

        cc = centred(full)
        path = enet_path(cc.gram, cc.xty, cc.yty, cc.n, alphas[: best + 1], l1_ratio,
                         tol=self.tol, max_iter=self.max_iter)  # fmt: skip
        self.dual_gap_ = float(path.dual_gaps[-1])
        self.n_iter_ = int(path.n_iters[-1])
        return torch.as_tensor(path.coefs[-1], dtype=torch.float64)

    def _set_path(
        self, l1_ratios: list[float], grid: np.ndarray, paths: np.ndarray, best_l1: float
    ) -> None:
        automatic = self.alphas is None or isinstance(self.alphas, numbers.Integral)
        self.alphas_ = grid if automatic and len(l1_ratios) > 1 else grid[0]
        self.mse_path_ = paths if len(l1_ratios) > 1 else paths[0]
        self.l1_ratio_ = best_l1


class LassoCV(ElasticNetCV):
    """Lasso with alpha chosen by K-fold cross-validation, as scikit-learn's
    ``LassoCV``: :class:`ElasticNetCV` with ``l1_ratio=1``. The objective is
    Σw(y − Xβ − b)²/(2Σw) + α‖β‖₁; the grid starts at alpha_max = max|Xcᵀ W yc| / Σw.
    Attributes as :class:`ElasticNetCV`, without ``l1_ratio_``."""

    def __init__(
        self,
        *,
        eps: float = 1e-3,
        alphas: int | Sequence[float] | np.ndarray | None = 100,
        cv: Any = 5,
        fit_intercept: bool = True,
        tol: float = 1e-4,
        max_iter: int = 1000,
        random_state: int | None = None,
    ) -> None:
        # l1_ratio is set (to 1) but is no parameter of LassoCV, as in scikit-learn's.
        super().__init__(l1_ratio=1.0, eps=eps, alphas=alphas, cv=cv, fit_intercept=fit_intercept,
                         tol=tol, max_iter=max_iter, random_state=random_state)  # fmt: skip

    def _l1_ratios(self) -> list[float]:
        return [1.0]

    def _set_path(
        self, l1_ratios: list[float], grid: np.ndarray, paths: np.ndarray, best_l1: float
    ) -> None:
        self.alphas_ = grid[0]
        self.mse_path_ = paths[0]
