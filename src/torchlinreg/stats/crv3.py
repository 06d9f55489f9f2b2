"""CRV3: the cluster jackknife covariance (MacKinnon, Nielsen and Webb 2023).

With β₍g₎ the fit that leaves cluster g out,

    V = (G − 1)/G · Σ_g (β₍g₎ − β̂)(β₍g₎ − β̂)ᵀ

centred on the full-sample estimate, as statsmodels' ``cov_type="cluster-crv3"``
(``use_correction=False`` drops the factor (G − 1)/G). pyfixest's ``vcov={"CRV3": g}``
multiplies the same sum by G/(G − 1)·(n − 1)/(n − k) instead (its ``ssc``); with
``ssc(k_adj=False, G_adj=False)`` it is the bare sum.

Each β₍g₎ comes from the pass's sums without refitting: in the z coordinates of
:mod:`.scores` (A = Z R_s), β₍g₎ − β̂ = R_s⁻¹ (S − Z_gᵀZ_g)⁻¹ (Zᵀẽ − Z_gᵀẽ_g), so the
pass keeps per cluster its p′×p′ Gram block and its score, and V = K M Kᵀ with
M = Σ_g δ_g δ_gᵀ, δ_g = (S − Z_gᵀZ_g)⁻¹ (Zᵀẽ − Z_gᵀẽ_g).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ..errors import InputError
from .scores import Block, LabelIds, observed

# A leave-one-cluster-out design whose Gram block has an eigenvalue below this (relative
# to the largest; S ≈ I) does not identify the coefficients.
_SINGULAR = 1e-10


def cluster_sums(
    blocks: Iterable[Block], k: int, p: int, **zeros: Any
) -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
    """Per cluster: Z_gᵀZ_g (G, p', p'), Z_gᵀẽ_g (G, k, p') and the labels in id order.
    Each row's [zᵢzᵢᵀ ; ẽᵢzᵢᵀ], one entry a row of a (p′ + k)·p′ × b product, is added
    to its cluster's in one scatter along contiguous rows."""
    ids = LabelIds()
    sums = torch.zeros((p + k) * p, 0, **zeros)  # [Z_gᵀZ_g ; ẽ_gᵀZ_g] per cluster
    rows = torch.empty(0, **zeros)
    for block in blocks:
        block = observed(block)
        index = ids.map(block.labels)
        if len(ids) > sums.shape[1]:
            sums = torch.cat([sums, sums.new_zeros(sums.shape[0], len(ids) - sums.shape[1])], 1)
        ZT, b = block.Z.T, block.Z.shape[0]
        if rows.numel() < (p + k) * p * b:
            rows = rows.new_empty((p + k) * p * b)
        products = rows[: (p + k) * p * b].view(p + k, p, b)
        torch.mul(ZT.unsqueeze(1), ZT.unsqueeze(0), out=products[:p])
        torch.mul(block.E.T.unsqueeze(1), ZT.unsqueeze(0), out=products[p:])
        sums.index_add_(1, torch.as_tensor(index, device=sums.device), products.view(-1, b))
    per_cluster = sums.view(p + k, p, -1).permute(2, 0, 1)  # (G, p' + k, p')
    return per_cluster[:, :p], per_cluster[:, p:], list(ids.ids)


def jackknife_meat(
    grams: torch.Tensor, scores: torch.Tensor, S: torch.Tensor, labels: list[Any]
) -> torch.Tensor:
    """M = Σ_g δ_g δ_gᵀ (k, p', p'); refused where leaving a cluster out leaves the
    coefficients unidentified (naming the first such cluster)."""
    D = S.unsqueeze(0) - grams  # (G, p', p')
    vals = torch.linalg.eigvalsh(D)
    singular = vals[:, 0] <= _SINGULAR * vals[:, -1].clamp(min=0)
    if bool(singular.any()):
        g = int(torch.nonzero(singular)[0])
        raise InputError(
            f"CRV3 leaves each cluster out in turn, and without cluster {labels[g]!r} the "
            "coefficients are not identified (a regressor varies only within it); use "
            "cov_type='cluster' (CRV1)"
        )
    rhs = scores.sum(0, keepdim=True) - scores  # (G, k, p')
    delta = torch.linalg.solve(D, rhs.transpose(1, 2))  # (G, p', k)
    d = delta.permute(2, 0, 1)  # (k, G, p')
    return d.transpose(1, 2) @ d
