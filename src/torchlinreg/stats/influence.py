"""Influence and outlier statistics of a fitted least-squares model: leverage (hat
values), internally and externally studentized residuals, Cook's distance, DFFITS and
DFBETAS, as statsmodels' ``OLSInfluence`` and R's ``influence.measures`` define them.

* :func:`influence`: every statistic for every row of in-memory data (the fit's rows);
* :func:`influence_summary` (:mod:`.influence_stream`): for data too large to hold the
  n values: one pass over arrays or a stream of chunks, keeping the most influential
  rows, counts above the usual thresholds, a bounded sample and binned residuals.

Both read the data once, in row blocks, from the fitted state (the R factor) and the
coefficients: O(n·p²) work, no n×n hat matrix, no refits. The formulas are in
:mod:`.influence_rows`.

Weighted fits: the statistics are those of the whitened fit, ordinary least squares on
√w·[1, X] and √w·y, which is what a weighted fit is. They are R's (``lm.influence`` of a
weighted ``lm``) and statsmodels' GLM influence of a Gaussian GLM with ``var_weights``
(hat values, internally studentized residuals, Cook's distance); statsmodels has no WLS
influence (``OLSInfluence`` of a WLS result mixes weighted and unweighted quantities and
refits without the weights), so its leave-one-out statistics of the whitened OLS fit are
the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from .influence_rows import Fitted, Rows, SameData, block_rows, prepare, row_blocks
from .influence_stream import (
    InfluenceSample,
    InfluenceSummary,
    QQPoints,
    ResidualBins,
    TopRows,
    influence_summary,
    thresholds,
)

__all__ = [
    "Influence",
    "InfluenceSample",
    "InfluenceSummary",
    "QQPoints",
    "ResidualBins",
    "TopRows",
    "influence",
    "influence_summary",
    "thresholds",
]


@dataclass(frozen=True)
class Influence:
    """Influence statistics, one entry per row of the data (numpy float64 arrays).

    Attributes
    ----------
    fitted : (n_rows,)
        ŷ = b + Xβ, as ``predict`` gives it.
    resid : (n_rows,)
        y − ŷ (the response residual).
    weighted_resid : (n_rows,)
        √w·(y − ŷ) (R's ``weighted.residuals``; ``resid`` for an unweighted fit): the
        residual the statistics below studentize, and the one R's ``plot.lm`` draws.
    leverage : (n_rows,)
        Hat values hᵢ, the diagonal of the hat matrix of √W·[1, X]; 0 for a row of zero
        weight. They sum to ``k``.
    student_resid_internal : (n_rows,)
        √wᵢ·eᵢ / (σ·√(1 − hᵢ)) (statsmodels' ``resid_studentized_internal``, R's
        ``rstandard``).
    student_resid_external : (n_rows,)
        √wᵢ·eᵢ / (σ₍ᵢ₎·√(1 − hᵢ)), σ₍ᵢ₎ that of the fit without row i
        (``resid_studentized_external``, R's ``rstudent``).
    cooks_distance : (n_rows,)
        rᵢ²·hᵢ / (k·(1 − hᵢ)), rᵢ the internally studentized residual.
    dffits : (n_rows,)
        tᵢ·√(hᵢ/(1 − hᵢ)), tᵢ the externally studentized residual.
    dfbetas : (n_rows, k)
        (β − β₍ᵢ₎)ⱼ / (σ₍ᵢ₎·√((ÃᵀÃ)⁻¹ⱼⱼ)), the change in each coefficient (intercept
        first, as ``names``) when row i is left out, in standard errors.
    n : int
        Observations: rows of positive weight (every row for an unweighted fit).
    k : int
        Parameters, the intercept included.
    sigma : float
        Residual standard deviation σ = √(Σ w e² / (n − k)).
    names : tuple of str
        The parameters: ``"intercept"`` (where fitted), then the features.

    Rows of zero weight are not observations (as in R's ``lm``): their studentized
    residuals, Cook's distance, DFFITS and DFBETAS are NaN. So are those of a row of
    leverage 1 (to 10·ε), whose fitted value is its own y.
    """

    fitted: np.ndarray
    resid: np.ndarray
    weighted_resid: np.ndarray
    leverage: np.ndarray
    student_resid_internal: np.ndarray
    student_resid_external: np.ndarray
    cooks_distance: np.ndarray
    dffits: np.ndarray
    dfbetas: np.ndarray
    n: int
    k: int
    sigma: float
    names: tuple[str, ...]

    def to_frame(self) -> Any:
        """The statistics as a pandas DataFrame, a row per data row (``dfb_<name>``
        columns for DFBETAS, as statsmodels' ``summary_frame``)."""
        import pandas as pd

        columns = {
            name: getattr(self, name)
            for name in (
                "fitted",
                "resid",
                "weighted_resid",
                "leverage",
                "student_resid_internal",
                "student_resid_external",
                "cooks_distance",
                "dffits",
            )
        }
        columns.update({f"dfb_{name}": self.dfbetas[:, j] for j, name in enumerate(self.names)})
        return pd.DataFrame(columns)


def influence(model: Any, X: Any, y: Any, sample_weight: Any = None) -> Influence:
    """Influence statistics of every row of ``X``, ``y`` (and ``sample_weight``), the
    data ``model`` (a fitted :class:`~torchlinreg.LinearRegression` of one target) was
    fitted on; checked to be those rows (their count, sums of squares and pairing).

    One pass in row blocks: O(n·k²) work and O(n·k) memory for the result.
    """
    fit = prepare(model)
    chunk = fitted_chunk(model, X, y, sample_weight)
    blocks = [block_rows(fit, chunk, rows) for rows in row_blocks(chunk.X.shape[0])]
    same = SameData(fit)
    for block in blocks:
        same.add(len(block.fitted), block.column_sums, block.target_sums)
    same.check()
    return _stack(fit, blocks)


def fitted_chunk(model: Any, X: Any, y: Any, sample_weight: Any) -> Any:
    """``X``, ``y``, ``sample_weight`` validated against the fitted ``model``: the
    columns it was fitted with (a DataFrame's by name), one target."""
    from ..data.chunks import validate_chunk

    X = model._check_feature_names(X, by_name=True)
    chunk = validate_chunk(X, y, sample_weight)
    model._check_n_features(chunk.X.shape[1])
    check_targets(chunk.Y.shape[1])
    return chunk


def check_targets(n_targets: int) -> None:
    if n_targets != 1:
        raise InputError(f"y has {n_targets} targets; the model was fitted on one: give that y")


def _stack(fit: Fitted, blocks: list[Rows]) -> Influence:
    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(b, name) for b in blocks])

    return Influence(
        fitted=cat("fitted"),
        resid=cat("resid"),
        weighted_resid=cat("weighted_resid"),
        leverage=cat("leverage"),
        student_resid_internal=cat("student_resid_internal"),
        student_resid_external=cat("student_resid_external"),
        cooks_distance=cat("cooks_distance"),
        dffits=cat("dffits"),
        dfbetas=cat("dfbetas").reshape(-1, fit.p),
        n=fit.n,
        k=fit.p,
        sigma=fit.sigma / fit.weight_scale,
        names=fit.names,
    )
