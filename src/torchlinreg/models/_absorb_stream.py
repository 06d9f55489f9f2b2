"""Fixed effects absorbed from a stream (``fit_chunks(chunks, absorb=["firm",
"year"])``, the command line's ``fit --absorb``), in memory bounded by the factors'
levels, not the rows.

* Pass 1 gathers the level weights, the level sums of [X, y], the cross-tabulations
  of the factors and each column's sum of squares (:mod:`._absorb_pass`).
* The effects are solved once from those sums: exactly, as the in-memory fit does
  (:func:`~torchlinreg.solvers.absorb.projection.solve_effects`), or, where two
  factors both have many levels, by conjugate gradients on the sparse
  cross-tabulations (:mod:`torchlinreg.solvers.absorb.sparse`); no pass either way.
* Pass 2 subtracts them chunk by chunk and folds the demeaned rows into the ordinary
  least-squares state without an intercept (the factors absorb it). A regressor the
  factors absorb entirely (its weighted norm falls below 1e-7 of the original, the
  in-memory rule) is dropped afterwards from the state itself (the R factor of the
  kept columns is that of R's kept columns), with the warning the in-memory fit gives.
* A robust covariance is one more pass (the residuals need the final coefficients);
  refinement, where accuracy is at risk, reads the demeaned stream again as
  ``fit_chunks`` does.

Chunks are ``(X, y, sample_weight, factors)``, with ``groups`` fifth for
``cov_type="cluster"``; ``factors`` the chunk's labels as ``fit(absorb=...)`` takes
them (a DataFrame or dict keyed by the factors' names, or an array with a column per
factor in the order of ``absorb``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import InputError
from ._absorb_pass import AbsorbRows, FirstPass, check_names, squares, z_of

if TYPE_CHECKING:
    from ..data.chunks import Chunk
    from ..solvers.absorb.projection import Effects
    from ..solvers.state import LeastSquaresState
    from ._exact import ExactRegressor

RowsSource = Callable[[], Iterable[AbsorbRows]]


def fit_chunks(
    model: ExactRegressor, chunks: Any, absorb: Any, feature_names: Sequence[str] | None
) -> Any:
    """:meth:`ExactRegressor.fit_chunks` with ``absorb`` (the factors' names)."""
    from . import _absorb

    names = check_names(absorb)
    model._check_params()
    cov_type = model._stream_cov_type()
    _absorb.check_cov_type(cov_type)
    source = library_rows(chunks, names, cov_type == "cluster", model._device())
    return fit_rows(model, source, names, feature_names, cov_type)


def library_rows(chunks: Any, names: list[str], clustered: bool, device: Any) -> RowsSource:
    """Each call a pass over the library's chunks, validated with their row numbers in
    the stream. Absorbing reads them at least twice: a one-shot iterator is refused
    before anything is read."""
    if not callable(chunks) and not isinstance(chunks, Iterable):
        raise InputError(
            "fit_chunks takes an iterable of (X, y, sample_weight, factors) chunks or a "
            f"function returning one; got {type(chunks).__name__}"
        )
    if not callable(chunks) and iter(chunks) is chunks:
        raise InputError(
            "absorbing fixed effects reads the chunks twice (the level sums, then the "
            "demeaned rows), and a one-shot iterator (a generator) can be read once: give "
            "a list or a function returning a fresh iterator"
        )

    def read() -> Iterator[AbsorbRows]:
        start = 0
        for item in chunks() if callable(chunks) else chunks:
            rows = _parse(item, names, clustered, device, start)
            start += rows.chunk.X.shape[0]
            yield rows

    return read


def _parse(item: Any, names: list[str], clustered: bool, device: Any, start: int) -> AbsorbRows:
    from ..data.chunks import validate_chunk
    from ..stats.cov_types import group_labels, two_columns

    want = 5 if clustered else 4
    if not isinstance(item, (tuple, list)) or len(item) != want:
        shape = "(X, y, sample_weight, factors" + (", groups)" if clustered else ")")
        raise InputError(
            f"with absorb= each chunk is a tuple {shape} (sample_weight may be None"
            + ("; groups, the cluster labels, for cov_type='cluster')" if clustered else ")")
        )
    chunk = validate_chunk(*item[:3], device=device, row_offset=start, whole=False)
    n = chunk.X.shape[0]
    labels = _labels(item[3], names, n)
    groups = None
    if clustered:
        if two_columns(item[4]) is not None:
            raise InputError("two-way clusters with absorbed fixed effects are not supported")
        groups = group_labels(item[4], n, row_offset=start)
    return AbsorbRows(chunk, labels, groups, start)


def _labels(factors: Any, names: list[str], n: int) -> list[np.ndarray]:
    """A chunk's labels, one array per factor in the order of ``names``."""
    from ..solvers.absorb.factors import factor_columns

    found, columns = factor_columns(factors, n)
    keyed = isinstance(factors, dict) or hasattr(factors, "columns")
    if keyed and sorted(found) != sorted(names):
        raise InputError(
            f"a chunk's factors are {found}, but absorb= names {names}; give the labels of "
            "those factors"
        )
    if not keyed and len(columns) != len(names):
        raise InputError(
            f"a chunk has labels of {len(columns)} factor(s), but absorb= names "
            f"{len(names)} ({', '.join(names)}); give a column of labels per factor"
        )
    if not keyed:
        return list(columns)
    by_name = dict(zip(found, columns, strict=True))
    return [by_name[name] for name in names]


def fit_rows(
    model: ExactRegressor,
    source: RowsSource,
    names: list[str],
    feature_names: Sequence[str] | None,
    cov_type: str,
) -> Any:
    """The streamed absorption (module docstring) from ``source``'s passes."""
    from ..stats.absorbed import AbsorbedEffects
    from ._absorb import tolerances

    first = _first_pass(source, names, cov_type == "cluster")
    mean = first.y_mean()
    effects, method, iterations, redundant = first.effects(tolerances(model)["max_iter"])
    demeaned = Demeaned(source, first, effects, mean)
    model._name_features(feature_names, first.n_features)
    state = _fold(demeaned(), None)
    gone = _drop_absorbed(model, first, demeaned)
    if gone:
        state = _without(state, demeaned.keep)
    _solve(model, demeaned, state, first.target_1d)
    assert demeaned.tss is not None
    model.absorbed_ = AbsorbedEffects(
        tuple(names), first.positive_levels(), first.nested(), tuple(gone), method,
        iterations, redundant, tuple(float(t) for t in demeaned.tss),
    )  # fmt: skip
    if cov_type != "nonrobust":
        from ..stats.inference import model_meat
        from ._fit_cov import _kept

        model._fit_covariance = _kept(cov_type, model_meat(model, cov_type, demeaned.pairs()))
    return model


def _first_pass(source: RowsSource, names: list[str], clustered: bool) -> FirstPass:
    """Pass 1's sums (a function of its own, so that no chunk outlives the pass)."""
    first = FirstPass(names, clustered)
    for rows in source():
        first.add(rows)
    if first.sums is None:
        raise InputError("the chunk stream was empty; it must hold at least one row")
    first.freeze()
    return first


class Demeaned:
    """Each call a pass over the source's rows with the effects subtracted: chunks of
    the kept columns (``keep``; all at first) and the demeaned targets. The first pass
    also gathers each demeaned column's weighted sum of squares (``after``) and each
    target's about its weighted mean (``tss``)."""

    def __init__(
        self, source: RowsSource, first: FirstPass, effects: Effects, mean: torch.Tensor
    ) -> None:
        self.source, self.first, self.effects, self.mean = source, first, effects, mean
        self.keep = list(range(first.n_features))
        self.after: torch.Tensor | None = None
        self.tss: torch.Tensor | None = None

    def __call__(self) -> Iterator[Chunk]:
        for chunk, _ in self.pairs():
            yield chunk

    def pairs(self) -> Iterator[tuple[Chunk, np.ndarray | None]]:
        """(demeaned chunk, its cluster labels) pairs of a pass."""
        from ..data.chunks import Chunk
        from ..solvers.absorb.projection import subtract_effects

        p, collect = self.first.n_features, self.after is None
        after = torch.zeros(p + self.first.n_targets, dtype=torch.float64)
        tss = torch.zeros(self.first.n_targets, dtype=torch.float64)
        seen = 0
        for rows in self.source():
            Z, w = z_of(rows.chunk)
            R = subtract_effects(Z, self.first.codes(rows), self.effects)
            if collect:
                after += squares(R, w)
                tss += squares(Z[:, p:] - self.mean, w)
            seen += Z.shape[0]
            device = rows.chunk.X.device
            X = R[:, :p] if len(self.keep) == p else R[:, self.keep]
            chunk = Chunk(X.to(device), R[:, p:].to(device), rows.chunk.sample_weight,
                          rows.chunk.target_1d, finite=True)  # fmt: skip
            yield chunk, rows.groups
        if seen != self.first.rows:
            raise InputError(
                f"the data changed between passes: the first read {self.first.rows} rows, a "
                f"later one {seen}; a stream read again must give the same rows"
            )
        if collect:
            self.after, self.tss = after, tss


def _fold(chunks: Iterable[Chunk], fingerprint: Any) -> LeastSquaresState:
    """The least-squares state of the demeaned rows, without an intercept."""
    from ..solvers.state import LeastSquaresState

    state = None
    for chunk in chunks:
        if state is None:
            state = LeastSquaresState(
                chunk.X.shape[1], chunk.Y.shape[1], fit_intercept=False, device=chunk.X.device
            )
        state.update_chunk(chunk)
        if fingerprint is not None:
            fingerprint.add(chunk)
    assert state is not None  # the first pass saw a chunk, the same rows come again
    return state


def _drop_absorbed(model: ExactRegressor, first: FirstPass, demeaned: Demeaned) -> list[str]:
    """Warn about and drop the regressors the factors absorb entirely (the in-memory
    rule: weighted norm after at most ``ABSORBED_RTOL`` of before); their names."""
    from ._absorb import ABSORBED_RTOL, _drop_features

    assert demeaned.after is not None
    p = first.n_features
    before, after = first.squares[:p].sqrt(), demeaned.after[:p].sqrt()
    dropped = [j for j in range(p) if before[j] > 0 and after[j] <= ABSORBED_RTOL * before[j]]
    gone = _drop_features(model, p, dropped)
    demeaned.keep = [j for j in range(p) if j not in dropped]
    return gone


def _without(state: LeastSquaresState, keep: list[int]) -> LeastSquaresState:
    """The state of the kept feature columns and the targets: X_keep = Q R[:, keep], so
    its R factor is that of R's kept columns (exact; no pass over the rows)."""
    from ..solvers.qr import qr_r
    from ..solvers.state import LeastSquaresState

    p, k = state.n_features, state.n_targets
    columns = [*keep, *range(p, p + k)]
    R = qr_r(state.R[:, columns])
    zeros = state.R.new_zeros
    return LeastSquaresState.from_parts(
        R, zeros(len(keep)), zeros(k), state.counts, fit_intercept=False
    )


def _solve(
    model: ExactRegressor, demeaned: Demeaned, state: LeastSquaresState, target_1d: bool
) -> None:
    """Solve, refined by passes over the demeaned rows where accuracy is at risk and
    allowed, as :meth:`ExactRegressor.fit_chunks` does."""
    from ..solvers.fingerprint import Fingerprint
    from ..solvers.refine import refine_from_chunks
    from ._diagnostics import warn_unrefined
    from ._exact import _nonzero_weight
    from ._stream import ChunkStream

    stream = ChunkStream(demeaned, model._device())
    may_refine = model._refinement() is not False
    solution, obstacle = model._stream_solution(stream, state, may_refine)
    if obstacle is not None:
        if not model._penalised():
            warn_unrefined(state, solution, obstacle)
        model._finish(state, solution, target_1d, False, "qr")
        return
    # As fit_chunks: the fit is made again from the pass the refinement is checked against.
    fingerprint = Fingerprint()
    state = _fold(stream(), fingerprint)
    solution = model._solve(_nonzero_weight(state))
    theta = refine_from_chunks(stream, state, solution.theta, fingerprint)
    model._finish(state, solution.with_theta(theta), target_1d, True, "qr")
