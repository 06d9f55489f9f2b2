"""The exact fits on Dask collections: ``fit(X, y)`` with ``X`` a Dask DataFrame or a
Dask array, its rows in partitions that may live on other machines.

One task per partition validates the partition's rows and folds them into a
:class:`~torchlinreg.solvers.state.LeastSquaresState`, and returns the state's
``state_dict`` (O(p²) numbers, whatever the rows). The states are merged up a fixed
binary tree of tasks in partition order (the order of
:func:`~torchlinreg.distributed.states.merge_tree`), so the answer does not depend on
timing, and the client receives the merged state alone; it solves it as a fit in memory
does. Where refinement is due, each step's gradient is computed per partition in
double-double and the (hi, lo) pairs are summed up the same tree; narrow designs beyond
the semi-normal limit are solved from the partitions' double-double cross products,
summed likewise. Those passes compute the partitions again (re-read their files, rerun
their functions): each partition's rows must match the fingerprint its fold task took
(:mod:`~torchlinreg.solvers.fingerprint`), else the fit stops. A robust ``summary()``
passes over the partitions as well: each task returns its sums, which are combined up
the tree (cluster scores by label), and the cluster meat is formed where the last merge
runs. No rows come to the client.

Dask is imported only here, and this module only when a Dask collection is given.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import InputError
from ..models._base import is_dask
from ..models._diagnostics import CHEAP_CELLS, wants_refinement
from ..solvers import dd
from ..solvers.state import LeastSquaresState
from ..stats.meat import Parts, _Sums, collapse, combine, on_device

if TYPE_CHECKING:
    from ..data.chunks import Chunk
    from ..models._exact import ExactRegressor
    from ..solvers.dd_gram import DDGram
    from ..solvers.fingerprint import Fingerprint
    from ..solvers.solve import Solution
    from ..stats.summary import Summary

_SPREAD = "the rows are spread over Dask partitions"
# Rows of a partition per block of a refinement step: bounds the copy [1, X] that each
# block's gradient makes (the gradient itself works in smaller blocks).
_GRADIENT_ROWS = 1 << 16


# -- the collections, partition by partition -------------------------------------------


@dataclass(frozen=True)
class _Problem:
    """What every partition's task needs besides its rows."""

    n_features: int
    n_targets: int
    fit_intercept: bool
    device: Any  # the estimator's ``device``, resolved where the task runs

    def resolve(self) -> torch.device | None:
        if self.device is None:
            return None
        from ..devices import resolve_device

        return resolve_device(self.device)


@dataclass(frozen=True)
class _Partitions:
    """X, y, sample_weight and groups, one Dask ``Delayed`` per partition each (``None``
    where not given), checked to line up."""

    X: list[Any]
    y: list[Any]
    sample_weight: list[Any] | None
    groups: list[Any] | None
    target_1d: bool
    n_targets: int

    def __len__(self) -> int:
        return len(self.X)

    def rows(self, i: int) -> tuple[str, Any, Any, Any, Any]:
        """Partition ``i``: (its name in messages, X, y, sample_weight, groups)."""
        w = None if self.sample_weight is None else self.sample_weight[i]
        g = None if self.groups is None else self.groups[i]
        return f"partition {i} of {len(self)}", self.X[i], self.y[i], w, g


def _blocks(value: Any, name: str, ndims: tuple[int, ...]) -> list[Any]:
    """The partitions of a Dask DataFrame, Series or array as ``Delayed`` objects;
    arrays must be chunked along rows only."""
    if not is_dask(value) or not hasattr(value, "to_delayed"):
        raise InputError(
            f"{name} is a {type(value).__name__}, but X is a Dask collection: give {name} as "
            "a Dask Series, DataFrame or array with the partitions of X (e.g. a column of "
            "the same Dask DataFrame)"
        )
    if value.ndim not in ndims:
        dims = " or ".join(f"{d}-D" for d in ndims)
        raise InputError(f"{name} must be {dims}; got a {value.ndim}-D Dask collection")
    if hasattr(value, "divisions"):  # DataFrame, Series (arrays have no divisions)
        return list(value.to_delayed())
    if value.ndim == 2 and value.numblocks[1] != 1:
        raise InputError(
            f"{name} is chunked along its columns ({value.numblocks[1]} blocks); chunk it "
            f"along rows only: {name}.rechunk({{1: -1}})"
        )
    return list(value.to_delayed().reshape(-1))


def _boundaries(value: Any) -> tuple[str, tuple[Any, ...]] | None:
    """Where a collection's partitions start, where Dask knows it: a DataFrame's
    divisions (index values) or an array's row chunks."""
    if hasattr(value, "divisions"):
        return ("divisions", tuple(value.divisions)) if value.known_divisions else None
    rows = tuple(value.chunks[0])
    return None if any(math.isnan(r) for r in rows) else ("row chunks", rows)


def _partitions(X: Any, y: Any, sample_weight: Any, groups: Any = None) -> _Partitions:
    """The collections split into partitions, which must line up with X's: as many,
    and the same boundaries where Dask knows them (rows are counted again in each task)."""
    named = {"X": (X, (2,)), "y": (y, (1, 2))}
    if sample_weight is not None:
        named["sample_weight"] = (sample_weight, (1,))
    if groups is not None:
        named["groups"] = (groups, (1,))
    blocks = {name: _blocks(value, name, ndims) for name, (value, ndims) in named.items()}
    for name, parts in blocks.items():
        if len(parts) != len(blocks["X"]):
            raise InputError(
                f"X has {len(blocks['X'])} partitions but {name} has {len(parts)}; give "
                f"{name} the partitions of X (a column of the same Dask DataFrame, or a "
                "Dask array with the same chunks along rows)"
            )
        ours, theirs = _boundaries(X), _boundaries(named[name][0])
        if ours is not None and theirs is not None and ours[0] == theirs[0] and ours != theirs:
            raise InputError(
                f"the partitions of {name} do not line up with those of X ({ours[0]} "
                f"{theirs[1]} vs {ours[1]}); give {name} the partitions of X"
            )
    n_targets = 1 if y.ndim == 1 else int(y.shape[1])
    return _Partitions(
        blocks["X"],
        blocks["y"],
        blocks.get("sample_weight"),
        blocks.get("groups"),
        y.ndim == 1,
        n_targets,
    )


def _n_features(X: Any) -> int:
    return len(X.columns) if hasattr(X, "columns") else int(X.shape[1])


@dataclass(frozen=True)
class _Failed:
    """A partition's InputError, carried up the tree as a value: the client raises the
    lowest-numbered partition's, as a one-process fit raises the first bad row's,
    whatever the order the tasks ran in."""

    message: str


def _guarded(where: str, task: Callable[..., Any], *args: Any) -> Any:
    """``task(*args)`` for the partition ``where``; its InputError as a :class:`_Failed`
    naming the partition."""
    try:
        return task(*args)
    except InputError as e:
        return _Failed(f"{where}: {e}")


def _first_failure(pair: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    """``pair(a, b)``, or the failure of ``a`` (the lower partitions), else of ``b``."""
    for value in (a, b):
        if isinstance(value, _Failed):
            return value
    return pair(a, b)


def _chunk(X: Any, y: Any, sample_weight: Any, problem: _Problem) -> Chunk:
    """A partition's rows, validated (a partition may hold none)."""
    from ..models._distributed import _local_chunk

    chunk = _local_chunk(X, y, sample_weight, problem.resolve())
    shape = (chunk.X.shape[1], chunk.Y.shape[1])
    if shape != (problem.n_features, problem.n_targets):
        raise InputError(
            f"the partition has {shape[0]} features and {shape[1]} targets, the collection "
            f"{problem.n_features} and {problem.n_targets}"
        )
    return chunk


# -- tasks ----------------------------------------------------------------------------


def _fingerprint(chunk: Chunk) -> Fingerprint:
    from ..solvers.fingerprint import Fingerprint

    fingerprint = Fingerprint()
    fingerprint.add(chunk)
    return fingerprint


def _read_again(problem: _Problem, X: Any, y: Any, w: Any, first: Fingerprint) -> Chunk:
    """A partition's rows on a later pass (refinement), which must be the rows the fit
    was folded from: Dask computes the partition again (re-reads its files, reruns
    its functions) unless the collection is persisted."""
    chunk = _chunk(X, y, w, problem)
    now = _fingerprint(chunk)
    if now != first:
        values = " with other values" if now.rows == first.rows else ""
        raise InputError(
            f"the data changed between passes (the fit read {first.rows} rows here, a "
            f"refinement pass {now.rows}{values}); persist the collection or leave its "
            "source unchanged until the fit ends"
        )
    return chunk


@dataclass(frozen=True)
class _Folded:
    """States merged up the tree: the ``state_dict`` of the partitions' rows and, in
    partition order, each partition's fingerprint (None: no refinement can follow)."""

    state: dict[str, Any]
    fingerprints: tuple[Fingerprint | None, ...]


def _fold(problem: _Problem, fingerprinted: bool, X: Any, y: Any, w: Any) -> _Folded:
    """A partition's rows folded into a state, and their fingerprint where
    ``fingerprinted`` (refinement passes are checked against it)."""
    chunk = _chunk(X, y, w, problem)
    state = LeastSquaresState(
        problem.n_features,
        problem.n_targets,
        fit_intercept=problem.fit_intercept,
        device=chunk.X.device,
    )
    fingerprint = _fingerprint(chunk) if fingerprinted else None
    return _Folded(state.update_chunk(chunk).state_dict(), (fingerprint,))


def _merge(a: _Folded, b: _Folded) -> _Folded:
    state = LeastSquaresState.from_state_dict(a.state)
    merged = state.merge(LeastSquaresState.from_state_dict(b.state)).state_dict()
    return _Folded(merged, a.fingerprints + b.fingerprints)


def _dd_add(a: dd.DD | None, b: dd.DD | None) -> dd.DD | None:
    """Two double-double sums added (None: one of them could not be formed)."""
    return None if a is None or b is None else dd.dd_add(*a, *b)


# The rows of the partition whose task is computing a refinement gradient: the gradient
# of :func:`~torchlinreg.solvers.refine._seminormal` is a thunk computed where each part
# of the data lies (as on each rank of a torch.distributed fit), reading these rows.
_HELD: contextvars.ContextVar[Chunk] = contextvars.ContextVar("torchlinreg_dask_rows")


def _held_rows() -> Iterator[Chunk]:
    from ..data.chunks import Chunk

    chunk = _HELD.get()
    w = chunk.sample_weight
    for start in range(0, chunk.X.shape[0], _GRADIENT_ROWS):
        rows = slice(start, start + _GRADIENT_ROWS)
        yield Chunk(chunk.X[rows], chunk.Y[rows], None if w is None else w[rows], chunk.target_1d)


def _gradient(
    problem: _Problem,
    gradient: Callable[[], dd.DD],
    X: Any,
    y: Any,
    w: Any,
    first: Fingerprint,
) -> dd.DD:
    """A refinement step's double-double gradient over one partition's rows (checked
    to be those of the fit, ``first``)."""
    chunk = _read_again(problem, X, y, w, first)
    token = _HELD.set(chunk)
    try:
        return gradient()
    finally:
        _HELD.reset(token)


def _cross_products(
    problem: _Problem, state: LeastSquaresState, X: Any, y: Any, w: Any, first: Fingerprint
) -> dd.DD | None:
    """One partition's double-double cross products, with the merged state's shift
    (its rows checked to be those of the fit, ``first``)."""
    from ..solvers.dd_gram import DDGram

    chunk = _read_again(problem, X, y, w, first)
    gram = DDGram(state)
    gram.update_chunk(chunk)
    return gram.gram()


def _sums(
    problem: _Problem, accumulate: Callable[..., _Sums], X: Any, y: Any, w: Any, g: Any
) -> tuple[_Sums, int]:
    """One partition's sums of a robust covariance pass, and its rows."""
    chunk = _chunk(X, y, w, problem)
    sums = accumulate([(chunk, None if g is None else np.asarray(g))])
    return on_device(sums, torch.device("cpu")), chunk.X.shape[0]


def _combine(a: tuple[_Sums, int], b: tuple[_Sums, int]) -> tuple[_Sums, int]:
    return combine([a[0], b[0]]), a[1] + b[1]


def _collapse(total: tuple[_Sums, int] | _Failed) -> tuple[_Sums, int] | _Failed:
    return total if isinstance(total, _Failed) else (collapse(total[0]), total[1])


# -- graphs ---------------------------------------------------------------------------


def _tree(values: Sequence[Any], pair: Callable[[Any, Any], Any]) -> Any:
    """A binary tree of ``pair`` tasks over ``values`` in order, as
    :func:`~torchlinreg.distributed.states.merge_tree` merges states: level by level,
    each value with its right neighbour (a partition's failure passed up instead)."""
    import dask

    level = list(values)
    while len(level) > 1:
        level = [
            dask.delayed(_first_failure, pure=False)(pair, level[i], level[i + 1])
            if i + 1 < len(level)
            else level[i]
            for i in range(0, len(level), 2)
        ]  # fmt: skip
    return level[0]


def _over_partitions(
    parts: _Partitions,
    task: Callable[..., Any],
    shared: Any,
    problem: _Problem,
    *,
    groups: bool,
    each: Sequence[Any] | None = None,
) -> list[Any]:
    """``task(problem, shared, X, y, w[, g][, each[i]])`` per partition i (see
    :func:`_guarded`). ``shared`` (a state, a function holding one, a flag) is one key
    of the graph, sent once to each worker; ``None``: ``task(problem, X, y, w...)``. ``each``:
    a small value per partition (its fingerprint), given with its rows."""
    import dask

    one = () if shared is None else (dask.delayed(shared, pure=False, traverse=False),)
    out = []
    for i in range(len(parts)):
        where, X, y, w, g = parts.rows(i)
        args = (X, y, w, g) if groups else (X, y, w)
        own = () if each is None else (each[i],)
        out.append(dask.delayed(_guarded, pure=False)(where, task, problem, *one, *args, *own))
    return out


def _compute(graph: Any) -> Any:
    """The graph's result on the client (with the active scheduler: a
    ``distributed.Client`` where one is set up); a partition's failure raised here."""
    import dask

    result = dask.compute(graph)[0]
    if isinstance(result, _Failed):
        raise InputError(result.message)
    return result


# -- fit ------------------------------------------------------------------------------


def fit(model: ExactRegressor, X: Any, y: Any, sample_weight: Any) -> ExactRegressor:
    """``model.fit`` on a Dask DataFrame or array ``X`` with ``y`` (and
    ``sample_weight``) partitioned as ``X``; returns ``model``."""
    from ..models._exact import _nonzero_weight

    model._check_params()
    parts = _partitions(X, y, sample_weight)
    problem = _Problem(_n_features(X), parts.n_targets, bool(model.fit_intercept), model.device)
    # Refinement computes the partitions again, which may give other rows (files
    # rewritten, functions rerun): each is checked against its fingerprint from the
    # fold, taken wherever refinement may follow (it costs about a third of the fold;
    # refine=False and penalised fits skip it). Taking it on a second pass instead, as
    # a stream does, would compute every partition once more.
    fingerprinted = model._refinement() is not False
    folds = _over_partitions(parts, _fold, fingerprinted, problem, groups=False)
    folded: _Folded = _compute(_tree(folds, _merge))
    state = LeastSquaresState.from_state_dict(folded.state)
    if state.n_samples == 0:
        raise InputError("X has no rows (every partition is empty); give at least one row")
    state = _on(state, model._device())
    # A Dask array's name is its key in the graph, not a label: only frames name columns.
    model._set_feature_names(X, y if hasattr(y, "divisions") else None)
    small = state.n_samples * (state.n_params + 1) <= CHEAP_CELLS
    solution = model._solve(_nonzero_weight(state))
    refined = wants_refinement(model._refinement(), state, solution, small=small)
    if refined:
        solution, refined = _refined(parts, problem, state, solution, folded.fingerprints)
    model._finish(state, solution, parts.target_1d, refined, "qr")
    return model


def _on(state: LeastSquaresState, device: torch.device | None) -> LeastSquaresState:
    if device is None or device == state.device:
        return state
    return LeastSquaresState.from_parts(
        state.R.to(device),
        state.shift_x.to(device),
        state.shift_y.to(device),
        state.counts,
        fit_intercept=state.fit_intercept,
    )


def _refined(
    parts: _Partitions,
    problem: _Problem,
    state: LeastSquaresState,
    solution: Solution,
    fingerprints: Sequence[Fingerprint | None],
) -> tuple[Solution, bool]:
    """The solution refined with gradients summed over the partitions (corrected
    semi-normal equations), or, beyond their limit, from the partitions' cross products;
    every partition read again must match its ``fingerprints`` from the fold."""
    from ..solvers.refine import _seminormal, seminormal_obstacle

    if seminormal_obstacle(state) is not None:
        return _from_cross_products(parts, problem, state, solution, fingerprints)

    def total(gradient: Callable[[], dd.DD]) -> dd.DD:
        tasks = _over_partitions(
            parts, _gradient, gradient, problem, groups=False, each=fingerprints
        )
        graph = _tree(tasks, _dd_add)
        return _compute(graph)  # type: ignore[no-any-return]

    theta = _seminormal(_held_rows, state, solution.theta, total)
    return solution.with_theta(theta), True


def _from_cross_products(
    parts: _Partitions,
    problem: _Problem,
    state: LeastSquaresState,
    solution: Solution,
    fingerprints: Sequence[Fingerprint | None],
) -> tuple[Solution, bool]:
    """:func:`~torchlinreg.models._distributed.from_cross_products` with every
    partition's rows, each summed up the tree of tasks."""
    from ..models._distributed import from_cross_products

    def total(gram: DDGram) -> None:
        grams = _over_partitions(
            parts, _cross_products, state, problem, groups=False, each=fingerprints
        )
        summed = _compute(_tree(grams, _dd_add))
        # None: some partition's products overflow (or underflow); the sum is then not
        # exact either, and solve_from_gram says so.
        gram.combine(
            lambda hi, lo: summed if summed is not None else (hi * math.inf, lo),
            state.n_samples,
        )

    return from_cross_products(state, solution, _SPREAD, total)


# -- summary --------------------------------------------------------------------------


class _DaskParts(Parts):
    """The partitions of a robust covariance pass (see :class:`~torchlinreg.stats.meat.Parts`)."""

    def __init__(self, parts: _Partitions, problem: _Problem, n_samples: int) -> None:
        self.parts, self.problem, self.n_samples = parts, problem, n_samples

    def sums(self, accumulate: Callable[..., _Sums]) -> _Sums:
        import dask

        tasks = _over_partitions(self.parts, _sums, accumulate, self.problem, groups=True)
        total, rows = _compute(dask.delayed(_collapse)(_tree(tasks, _combine)))
        if rows != self.n_samples:
            raise InputError(
                f"X has {rows} rows but the model was fitted on {self.n_samples}; pass the "
                "training data"
            )
        return on_device(total, self.problem.resolve() or torch.device("cpu"))


def summaries(
    model: ExactRegressor,
    level: float,
    cov_type: str,
    X: Any,
    y: Any,
    sample_weight: Any,
    groups: Any,
) -> list[Summary]:
    """``model.summary`` with a robust ``cov_type`` over the training data as Dask
    collections partitioned alike: one summary per target."""
    from ..stats.inference import model_summaries

    state = model.state_
    if y is None:
        raise InputError(f"cov_type={cov_type!r} needs y= as well as X=")
    if cov_type == "cluster" and groups is None:
        raise InputError("cov_type='cluster' needs groups=, one label per row of X")
    if (sample_weight is not None) != state.weighted:
        raise InputError(
            "the model was fitted "
            + ("with" if state.weighted else "without")
            + " sample_weight; pass the same sample_weight to summary()"
        )
    parts = _partitions(X, y, sample_weight, groups if cov_type == "cluster" else None)
    problem = _Problem(
        state.n_features, state.n_targets, state.fit_intercept, getattr(model, "device", None)
    )
    rows = _DaskParts(parts, problem, state.n_samples)
    return model_summaries(model, level=level, cov_type=cov_type, data=[], group=rows)
