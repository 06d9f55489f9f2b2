"""The exact fits with their rows spread over the ranks of a ``torch.distributed``
group: each rank folds its own rows, the states are merged in rank order
(:mod:`torchlinreg.distributed.states`), and every rank solves the identical merged
state. Refinement sums its double-double gradients over the ranks unrounded; where the
corrected semi-normal equations cannot converge, narrow designs are solved from the
double-double cross products of every rank's rows. Every step that can fail on one rank
is agreed on, so a bad row on one rank stops every rank with that rank's message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ._diagnostics import CHEAP_CELLS, RISK, wants_refinement, warn_unrefined
from ._stream import ChunkSource, ChunkStream
from ._types import ArrayLike

if TYPE_CHECKING:
    import torch

    from ..data.chunks import Chunk
    from ..distributed.group import Group
    from ..solvers.dd_gram import DDGram
    from ..solvers.solve import Solution
    from ..solvers.state import LeastSquaresState
    from ._exact import ExactRegressor

_SPREAD = "the rows are spread over ranks"


def fit(
    model: ExactRegressor,
    group: Group,
    X: ArrayLike,
    y: ArrayLike,
    sample_weight: ArrayLike | None,
) -> ExactRegressor:
    """``model.fit`` on this rank's rows (``X``, ``y``, ``sample_weight``), collectively."""
    from ..solvers.refine import refine_in_memory, seminormal_obstacle

    group.agree(model._check_params)
    chunk, local, gram_built = group.agree(
        lambda: _local_fold(model, X, y, sample_weight, fast=True)
    )
    model._set_feature_names(X, y)
    _agree_on_problem(group, model, chunk.X.shape[1], chunk.Y.shape[1], chunk.target_1d)
    state = _merged(group, local)
    by_gram = group.gather_objects(gram_built)
    solver_used = "cholesky" if all(by_gram) else "qr"
    if any(by_gram) and not group.decide(gram_accurate(state)):
        # Each rank's rows were well conditioned, all of them together are not (a sum of
        # Gram matrices is no worse conditioned than its worst term, but the column
        # scaling the rule uses differs): fold by QR, as one process would.
        _, local, _ = group.agree(lambda: _local_fold(model, X, y, sample_weight, fast=False))
        state, solver_used = _merged(group, local), "qr"
    small = state.n_samples * (state.n_params + 1) <= CHEAP_CELLS
    solution = _solve(group, model, state)
    refined = solver_used == "qr" and group.decide(
        wants_refinement(model._refinement(), state, solution, small=small)
    )
    if refined and group.decide(seminormal_obstacle(state)) is None:
        theta = refine_in_memory(
            chunk, state, solution.theta, reduce=_total(group), share=group.broadcast
        )
        solution = solution.with_theta(theta)
    elif refined:
        solution, refined = _from_cross_products(group, model, chunk, state, solution)
    _finish(group, model, state, solution, chunk.target_1d, refined, solver_used)
    model._rank_data = (chunk.X.shape[0], chunk.sample_weight is not None)
    return model


def fit_chunks(
    model: ExactRegressor,
    group: Group,
    chunks: ChunkSource,
    feature_names: Sequence[str] | None,
) -> ExactRegressor:
    """``model.fit_chunks`` on this rank's stream, collectively. A rank's stream may be
    empty; every rank's stream must be re-iterable for refinement."""
    from ..solvers.fingerprint import Fingerprint
    from ..solvers.refine import refine_from_chunks, seminormal_obstacle

    group.agree(model._check_params)
    stream = ChunkStream(chunks, model._device())
    one_shot = any(group.gather_objects(stream.one_shot))
    local, target_1d = _fold(group, model, stream, feature_names, None)
    first_rows = local.n_samples
    state = _merged(group, local)
    solution = _solve(group, model, state)
    obstacle: str | None = None
    if one_shot or model._refinement() is False:
        obstacle = (
            "the data can be read only once on some rank (a one-shot iterator, standard "
            "input); data that can be read again allow refinement by further passes"
            if one_shot
            else "refine=False was given"
        )
    elif not group.decide(wants_refinement(model._refinement(), state, solution, small=False)):
        obstacle = "refinement was not due"
    else:
        obstacle = group.decide(seminormal_obstacle(state))
    if obstacle is not None:
        if not model._penalised():
            warn_unrefined(state, solution, obstacle)
        _finish(group, model, state, solution, target_1d, False)
        model._rank_data = (local.n_samples, local.weighted)
        return model
    # As in one process: the fit is made again from the second pass, whose fingerprint
    # (per rank) every refinement pass must match.
    fingerprint = Fingerprint()
    local, target_1d = _fold(group, model, stream, feature_names, fingerprint, first_rows == 0)
    state = _merged(group, local)
    solution = _solve(group, model, state)
    theta = refine_from_chunks(
        stream, state, solution.theta, fingerprint, reduce=_total(group), share=group.broadcast
    )
    _finish(group, model, state, solution.with_theta(theta), target_1d, True)
    model._rank_data = (local.n_samples, local.weighted)
    return model


def _local_fold(
    model: ExactRegressor, X: Any, y: Any, sample_weight: Any, *, fast: bool
) -> tuple[Chunk, LeastSquaresState, bool]:
    """This rank's rows, validated (X's values as they are folded), their state, and
    whether it was built from the Gram matrix: with ``fast`` where one process would
    for these rows and it is accurate for them (:mod:`~torchlinreg.solvers.gram`),
    else by QR."""
    from ..solvers.gram import gram_state

    chunk = _local_chunk(X, y, sample_weight, model._device())
    n, p = chunk.X.shape
    small = n * (p + 1) <= CHEAP_CELLS
    if fast and n and (model.solver == "cholesky" or (model.solver == "auto" and not small)):
        state = gram_state(chunk, bool(model.fit_intercept))
        if state is not None:
            return chunk, state, True
    state = model._new_state(chunk).update_chunk(chunk)
    state.R  # noqa: B018 - folds the rows still buffered, where errors are agreed on
    return chunk, state, False


def gram_accurate(state: LeastSquaresState) -> bool:
    """Whether states built from Gram matrices are accurate for the merged problem: the
    rule :func:`~torchlinreg.solvers.gram.gram_state` applies to one."""
    from ..solvers.gram import GRAM_ACCURACY
    from ..solvers.solve import EPS, design_conditioning

    return design_conditioning(state).decide(lambda kappa: EPS * kappa**2 <= GRAM_ACCURACY)


def rank_share(
    group: Group, state: LeastSquaresState, X: Any, sample_weight: Any
) -> tuple[int, bool]:
    """(rows, weighted) of this rank's share for the robust pass of a model that no
    longer knows them (a pickled or loaded copy of a distributed fit): the ranks' rows
    must add up to the fit's (the pass checks they are the same rows)."""
    rows = group.gather_objects(int(np.shape(X)[0]) if X is not None else 0)
    if sum(rows) != state.n_samples:
        raise InputError(
            f"the ranks give {sum(rows)} rows in all ({', '.join(map(str, rows))} by rank) "
            f"but the model was fitted on {state.n_samples}; give each rank its training "
            "rows again"
        )
    return rows[group.rank], sample_weight is not None


def _local_chunk(X: Any, y: Any, sample_weight: Any, device: torch.device | None) -> Chunk:
    """This rank's rows, validated; a rank may hold none (shapes still count)."""
    import torch

    from ..data.chunks import Chunk, validate_chunk

    if hasattr(X, "shape") and len(X.shape) == 2 and X.shape[0] == 0:
        y_shape = tuple(getattr(y, "shape", np.shape(y)))
        if len(y_shape) not in (1, 2) or y_shape[0] != 0:
            raise InputError(f"X has 0 rows but y has shape {y_shape}; give y as many rows")
        k = 1 if len(y_shape) == 1 else y_shape[1]
        empty = torch.zeros(0, X.shape[1], dtype=torch.float64, device=device)
        weights = None if sample_weight is None else torch.zeros(0, dtype=torch.float64)
        return Chunk(empty, torch.zeros(0, k, dtype=torch.float64, device=device),
                     weights, len(y_shape) == 1)  # fmt: skip
    return validate_chunk(X, y, sample_weight, device=device, whole=False)


def _agree_on_problem(
    group: Group, model: ExactRegressor, n_features: int, n_targets: int, target_1d: bool
) -> None:
    """Every rank has the same columns (count and names), targets and estimator
    parameters (but the device), or every rank raises, naming the first rank that
    differs from rank 0: ranks that disagree would run different collectives."""
    names = getattr(model, "feature_names_in_", None)
    params = {k: repr(v) for k, v in model.get_params().items() if k != "device"}
    mine = (
        n_features,
        n_targets,
        target_1d,
        None if names is None else list(names),
        getattr(model, "target_names_", None),
        params,
    )
    seen = group.gather_objects(mine)
    what = ("features", "targets", "target shape (1-D or 2-D)", "feature names",
            "target names", "parameters")  # fmt: skip
    for rank, theirs in enumerate(seen):
        for label, a, b in zip(what, seen[0], theirs, strict=True):
            if a != b:
                fix = (
                    "create the estimator with the same parameters on every rank"
                    if label == "parameters"
                    else "every rank must give the same columns, in the same order"
                )
                raise InputError(
                    f"rank {rank} of {group.size} has other {label} than rank 0 ({b!r} vs "
                    f"{a!r}); {fix}"
                )


def _fold(
    group: Group,
    model: ExactRegressor,
    stream: ChunkStream,
    feature_names: Sequence[str] | None,
    fingerprint: Any,
    allow_empty: bool = True,
) -> tuple[LeastSquaresState, bool]:
    """This rank's stream folded (an empty state for an empty stream, where
    ``allow_empty``: a rank's second pass may be empty only if its first was), checked
    to be the problem of every other rank."""
    from ..solvers.state import LeastSquaresState

    def fold() -> tuple[LeastSquaresState | None, bool]:
        state, target_1d = model._fold(
            stream(), feature_names, fingerprint, allow_empty=allow_empty
        )
        if state is not None:
            state.R  # noqa: B018 - folds the rows still buffered, where errors are agreed on
        return state, target_1d

    local, target_1d = group.agree(fold)
    shapes = group.gather_objects(
        None if local is None else (local.n_features, local.n_targets, target_1d)
    )
    known = [s for s in shapes if s is not None]
    if not known:
        raise InputError("the chunk streams were empty on every rank; give at least one row")
    n_features, n_targets, target_1d = known[0]
    if local is None:
        model._name_features(feature_names, n_features)
        local = LeastSquaresState(
            n_features, n_targets, fit_intercept=bool(model.fit_intercept), device=model._device()
        )
    _agree_on_problem(group, model, local.n_features, local.n_targets, target_1d)
    return local, target_1d


def _merged(group: Group, local: LeastSquaresState) -> LeastSquaresState:
    from ..distributed.states import merge_across

    return merge_across(group, local)


def _solve(group: Group, model: ExactRegressor, state: LeastSquaresState) -> Solution:
    """The solution of the merged state, with rank 0's coefficients on every rank: the
    decisions taken from them (refinement) are then the same everywhere."""
    from ._exact import _nonzero_weight

    solution = model._solve(_nonzero_weight(state))
    return solution.with_theta(group.broadcast(solution.theta))


def _total(group: Group) -> Any:
    """The sum over ranks of a double-double value each rank computes, agreed on."""

    def total(local: Any) -> Any:
        return group.dd_sum(*group.agree(local))

    return total


def _from_cross_products(
    group: Group,
    model: ExactRegressor,
    chunk: Chunk,
    state: LeastSquaresState,
    solution: Solution,
) -> tuple[Solution, bool]:
    """:func:`from_cross_products` with every rank's rows."""

    def total(gram: DDGram) -> None:
        group.agree(lambda: gram.update_chunk(chunk))  # with the merged state's shift
        gram.combine(group.dd_sum, state.n_samples)

    return from_cross_products(state, solution, _SPREAD, total)


def from_cross_products(
    state: LeastSquaresState,
    solution: Solution,
    spread: str,
    total: Callable[[DDGram], None],
) -> tuple[Solution, bool]:
    """Where refinement by passes cannot converge and the rows are in parts (``spread``
    says where): for narrow designs the solution from the double-double cross products
    of every part's rows, which ``total`` puts into the :class:`DDGram` it is given (by
    :meth:`DDGram.combine`); else the solution as it is. Warns where digits stay at
    risk; returns the solution and whether it was recomputed."""
    from ..solvers.dd_gram import MAX_COLUMNS, DDGram
    from ..solvers.single_pass import solve_from_gram

    reason = f"{spread} and the design has more than {MAX_COLUMNS - state.n_targets} columns"
    if state.n_params + state.n_targets <= MAX_COLUMNS:
        gram = DDGram(state)
        total(gram)
        found = solve_from_gram(gram, state, solution.condition_number)
        reason = found.reason.replace("partial_fit's", f"{spread}: the")
        if found.theta is not None:
            solution = solution.with_theta(found.theta)
            if found.error_estimate > 10 * RISK:
                warn_unrefined(state, solution, reason)
            return solution, True
    warn_unrefined(state, solution, f"{reason}; refinement needs the rows in one process")
    return solution, False


def _finish(
    group: Group,
    model: ExactRegressor,
    state: LeastSquaresState,
    solution: Solution,
    target_1d: bool,
    refined: bool,
    solver_used: str = "qr",
) -> ExactRegressor:
    """The fitted attributes, rank 0's coefficients on every rank (bit for bit, even
    where ranks round differently)."""
    solution = solution.with_theta(group.broadcast(solution.theta))
    model._finish(state, solution, target_1d, refined, solver_used)
    model._distributed = group
    return model
