"""Exact column scaling by powers of two: no rounding, so a scaled problem keeps its
solution bits, and magnitudes from 1e-300 to 1e300 behave alike."""

from __future__ import annotations

import torch


def power_of_two_scale(size: torch.Tensor) -> torch.Tensor:
    """d_j = 2^(−e_j) with size_j = m·2^e_j, m ∈ [0.5, 1): an exact scaling (no
    rounding) that brings each finite size > 0 into [0.5, 1). Zero sizes get 1 (frexp
    gives 0 the exponent 0)."""
    _, exponent = torch.frexp(size)
    return torch.ldexp(torch.ones_like(size), -exponent)


def column_norms(M: torch.Tensor) -> torch.Tensor:
    """2-norm of each column, without overflow or underflow: columns are first brought
    to max |entry| ∈ [0.5, 1) by an exact power of two."""
    pre = power_of_two_scale(M.abs().amax(dim=0))
    return torch.linalg.vector_norm(M * pre, dim=0) / pre


def column_scale(M: torch.Tensor) -> torch.Tensor:
    """Power-of-two scale of each column's 2-norm. The norms of R's columns are those of
    the data's columns, so the scaling (and the condition number) is the same whether
    computed from the data or from the state."""
    return power_of_two_scale(column_norms(M))
