"""Newey–West (HAC) meat: heteroskedasticity and autocorrelation consistent.

With scores uₜ = zₜẽₜ (z rows and least-squares residuals of :mod:`.scores`) taken in
the order the rows come, which is the time order of one series,

    Ω = Γ₀ + Σ_{l=1}^{L} w_l (Γ_l + Γ_lᵀ),   Γ_l = Σ_{t>l} uₜ uₜ₋ₗᵀ,   w_l = 1 − l/(L + 1)

(the Bartlett kernel), as statsmodels' ``cov_type="HAC"`` and Stata's ``newey``. The
pass keeps the last L rows' scores from block to block (and chunk to chunk, so a stream
gives the in-memory answer). The automatic lag is statsmodels' (Newey and West 1994's
rule of thumb): L = ⌊4·(n/100)^(2/9)⌋ with n the rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from ..errors import InputError
from .scores import Block


def automatic_lags(n_rows: int) -> int:
    """⌊4·(n/100)^(2/9)⌋, statsmodels' default lag for n rows."""
    return int(math.floor(4 * (n_rows / 100.0) ** (2.0 / 9.0)))


def check_lags(lags: Any, n_rows: int) -> int:
    """``lags`` (None: :func:`automatic_lags`) if it is an integer from 0 to n − 1."""
    if lags is None:
        return min(automatic_lags(n_rows), max(n_rows - 1, 0))
    if isinstance(lags, bool) or not isinstance(lags, int) and not hasattr(lags, "__index__"):
        raise InputError(f"lags must be a whole number of rows (e.g. lags=4), got {lags!r}")
    lags = int(lags)
    if lags < 0 or lags >= max(n_rows, 1):
        raise InputError(
            f"lags must be between 0 and n − 1 = {n_rows - 1} (the rows fitted), got {lags}; "
            f"omit it for the automatic lag ({automatic_lags(n_rows)} here)"
        )
    return lags


def bartlett(lags: int) -> list[float]:
    """w_l = 1 − l/(L + 1), l = 0..L."""
    return [1 - lag / (lags + 1) for lag in range(lags + 1)]


def hac_meat(blocks: Iterable[Block], k: int, p: int, lags: int, **zeros: Any) -> torch.Tensor:
    """Ω (k, p', p') over ``blocks`` in row order; rows of zero weight keep their place
    in time (their score is zero). Scores are kept one coordinate a row, (k, p', rows),
    so that each Γ_l is one batched product over contiguous rows."""
    gammas = torch.zeros(lags + 1, k, p, p, **zeros)
    buffer = torch.empty(0, **zeros)  # reused block after block
    carry = torch.zeros(k, p, 0, **zeros)  # the last ≤ L rows' scores
    for block in blocks:
        c = carry.shape[2]
        m = c + block.Z.shape[0]
        if buffer.numel() < k * p * m:
            buffer = buffer.new_empty(k * p * m)
        scores = buffer[: k * p * m].view(k, p, m)  # [carry | this block's]
        scores[:, :, :c] = carry
        torch.mul(block.E.T.unsqueeze(1), block.Z.T.unsqueeze(0), out=scores[:, :, c:])
        U = scores[:, :, c:]
        gammas[0].baddbmm_(U, U.transpose(1, 2))
        for lag in range(1, lags + 1):
            start = max(c, lag)  # rows t of this block that have a row t − lag
            if start >= m:
                break
            lagged = scores[:, :, start - lag : m - lag].transpose(1, 2)
            gammas[lag].baddbmm_(scores[:, :, start:], lagged)
        carry = scores[:, :, m - min(lags, m) :].clone()
    w = bartlett(lags)
    meat = gammas[0].clone()
    for lag in range(1, lags + 1):
        meat += w[lag] * (gammas[lag] + gammas[lag].transpose(1, 2))
    return meat
