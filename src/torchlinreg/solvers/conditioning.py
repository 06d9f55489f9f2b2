"""Condition numbers of a triangular factor: bracketed in O(p²), exact only when needed.

The decisions of an exact fit compare κ₂ of a column-scaled R factor with a threshold
(normal equations accurate enough, ill-conditioning warning, refinement due) or its
smallest singular value with a rank tolerance. Full singular values cost O(p³) with a
large constant (seconds at p = 1,000); a comparison needs only a bracket around the
value that does not contain the threshold.

The bracket comes from Lanczos on RᵀR (largest eigenvalue σ₁²) and on (RᵀR)⁻¹ (applied
by two triangular solves; largest eigenvalue 1/σₚ²). A Ritz value never exceeds the
eigenvalue it approximates, so σ₁ ≥ σ̂₁ and σₚ ≤ σ̂ₚ: the lower end κ̂ = σ̂₁/σ̂ₚ ≤ κ₂.
From a random start, k steps underestimate the largest eigenvalue of a p × p matrix
by more than a factor 1 − ε with probability at most 1.648·√p·exp(−√ε·(2k − 1))
(Kuczyński and Woźniakowski, SIAM J. Matrix Anal. Appl. 13, 1992). With ε = ½ and
``STEPS`` = 24 that is below 10⁻¹² up to p = 10⁵, so κ₂ ≤ 2κ̂ (each eigenvalue within
a factor 2, κ₂² their product): the upper end. Where a threshold falls inside
[κ̂, 2κ̂], the singular values are computed (once, cached). Small factors are
analysed exactly at once: there the SVD costs less than the iterations.

The iterations run on one thread: each step is a few matrix-vector products and
triangular solves of O(p²) memory-bound work, which a second thread barely speeds up,
while waking and joining the thread pool around each of the ~400 small kernels costs
milliseconds on a busy machine (p = 1,000 with two threads under load: 2.2 s wall,
one thread 0.08 s; docs/benchmarks.md, Shapes). The products with R and Rᵀ read only its
upper triangle (panels of :data:`PANEL` columns: 0.019 s instead of 0.033 s per
RᵀR·v at p = 5,000), and a column scaling D is applied to the vectors, (RD)v = R(Dv),
the same numbers to the bit for powers of two, so the scaled factor is not formed
unless its singular values are asked for (R itself is copied once where it is a block
of a larger factor: see ``_base``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..training.threads import one_thread

# Lanczos steps per extreme eigenvalue (see the module docstring for the bound).
STEPS = 24
# Factor between the ends of the bracket: κ₂ ≤ SPREAD·κ̂ (ε = ½ in the bound above).
SPREAD = 2.0
# Rounding of the Ritz values (relative): the ends are widened by it.
_SLACK = 1e-6
# Up to this order the singular values are computed outright (cheaper than Lanczos).
EXACT_ORDER = 64
# Columns per panel of the triangular matrix-vector products (a panel reads the rows
# down to its diagonal block only).
PANEL = 512


def _lanczos_max(
    apply: Callable[[torch.Tensor], torch.Tensor], p: int, like: torch.Tensor
) -> float:
    """The largest Ritz value of the symmetric positive semi-definite operator ``apply``
    after min(STEPS, p) Lanczos steps (full reorthogonalisation) from a fixed random
    start: never above its largest eigenvalue; ``nan`` if the operator gives non-finite
    values (a singular factor)."""
    generator = torch.Generator(device=like.device).manual_seed(20261130)
    v = torch.randn(p, generator=generator, dtype=like.dtype, device=like.device)
    v /= torch.linalg.vector_norm(v)
    steps = min(STEPS, p)
    V = torch.empty(steps, p, dtype=like.dtype, device=like.device)
    alpha: list[float] = []
    beta: list[float] = []
    for j in range(steps):
        V[j] = v
        w = apply(v)
        a = torch.dot(w, v)
        basis = V[: j + 1]
        w = w - basis.T @ (basis @ w)
        w = w - basis.T @ (basis @ w)  # twice is enough (Kahan, Parlett)
        b = torch.linalg.vector_norm(w)
        pair = torch.stack([a, b]).tolist()
        if not all(math.isfinite(x) for x in pair):
            return math.nan
        alpha.append(pair[0])
        if pair[1] <= 1e-12 * abs(pair[0]) or j == steps - 1:
            break  # an invariant subspace: the Ritz values are eigenvalues
        beta.append(pair[1])
        v = w / b
    T = torch.diag(torch.tensor(alpha, dtype=torch.float64))
    if beta:
        off = torch.tensor(beta, dtype=torch.float64)
        T += torch.diag(off, 1) + torch.diag(off, -1)
    return float(torch.linalg.eigvalsh(T)[-1])


class Conditioning:
    """Extreme singular values of an upper-triangular ``R`` (p × p, or a function
    returning it), bracketed cheaply and computed exactly on demand.

    ``sigma_max`` and ``sigma_min`` are (low, high) brackets; ``kappa`` the bracket of
    κ₂ = σ₁/σₚ. ``exact`` is True once the singular values were computed (then each
    bracket is a point). ``kappa_exceeds(t)`` and ``rank_below(tol)`` answer from the
    bracket when it decides, else from the singular values.
    """

    def __init__(
        self,
        R: torch.Tensor | Callable[[], torch.Tensor],
        scale: torch.Tensor | Callable[[], torch.Tensor] | None = None,
    ) -> None:
        # Nothing is computed until a decision asks (R, and the column scale D of the
        # factor R·D meant, may be given as functions making them): a solve whose
        # conditioning nobody reads (a ridge fit) pays nothing.
        self._factor = R
        self._scale = scale
        self._singular: torch.Tensor | None = None
        self._brackets: tuple[tuple[float, float], tuple[float, float]] | None = None

    def _bracket(self) -> tuple[tuple[float, float], tuple[float, float]]:
        if self._brackets is not None:
            return self._brackets
        R, D = self._base, self._D
        p = R.shape[0]
        if p <= EXACT_ORDER:
            return self._compute()
        with one_thread(R.device.type == "cpu"):  # (see the module docstring)
            big = _lanczos_max(lambda v: D * _mv_t(R, _mv(R, D * v)), p, R)
            inverse = _lanczos_max(
                lambda v: _solve(R, _solve(R.T, v / D, upper=False), upper=True) / D, p, R
            )
        if not (math.isfinite(big) and math.isfinite(inverse)) or inverse <= 0 or big <= 0:
            return self._compute()  # a singular or degenerate factor: no bracket to trust
        s1, sp = math.sqrt(big), 1.0 / math.sqrt(inverse)
        root = math.sqrt(SPREAD)
        self._brackets = (
            (s1 * (1 - _SLACK), s1 * root * (1 + _SLACK)),
            (sp / root * (1 - _SLACK), sp * (1 + _SLACK)),
        )
        return self._brackets

    def __getstate__(self) -> dict[str, object]:
        # A function making R does not pickle (a fitted model carries its bracket): R does.
        return {**self.__dict__, "_factor": self._base, "_scale": self._D}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update({"_scale": None, **state})  # pickles from before the scale

    @property
    def _base(self) -> torch.Tensor:
        """R as given (before the column scale), in one contiguous block: torch's
        triangular solve copies a strided matrix (a block of a larger R) at every call,
        0.23 s each at p = 5,000, so it is copied here once."""
        if not isinstance(self._factor, torch.Tensor):
            self._factor = self._factor()
        if not (self._factor.is_contiguous() or self._factor.T.is_contiguous()):
            self._factor = self._factor.contiguous()
        return self._factor

    @property
    def _D(self) -> torch.Tensor:
        """The column scale (ones when none was given)."""
        if self._scale is None:
            self._scale = torch.ones(
                self._base.shape[1], dtype=self._base.dtype, device=self._base.device
            )
        elif not isinstance(self._scale, torch.Tensor):
            self._scale = self._scale()
        return self._scale

    def _compute(self) -> tuple[tuple[float, float], tuple[float, float]]:
        s = torch.linalg.svdvals(self._base * self._D)
        self._singular = s
        s1, sp = (float(s[0]), float(s[-1])) if s.numel() else (0.0, 0.0)
        self._brackets = ((s1, s1), (sp, sp))
        return self._brackets

    @property
    def sigma_max(self) -> tuple[float, float]:
        """(low, high) bracket of the largest singular value."""
        return self._bracket()[0]

    @property
    def sigma_min(self) -> tuple[float, float]:
        """(low, high) bracket of the smallest singular value."""
        return self._bracket()[1]

    @property
    def exact(self) -> bool:
        return self._singular is not None

    @property
    def singular_values(self) -> torch.Tensor:
        """All singular values, descending (computed on first use)."""
        if self._singular is None:
            self._compute()
        assert self._singular is not None
        return self._singular

    @property
    def kappa(self) -> tuple[float, float]:
        """(low, high) bracket of κ₂; ∞ for a zero smallest singular value."""
        return (
            _ratio(self.sigma_max[0], self.sigma_min[1]),
            _ratio(self.sigma_max[1], self.sigma_min[0]),
        )

    @property
    def value(self) -> float:
        """κ₂ itself (computes the singular values if not yet done)."""
        self.singular_values  # noqa: B018 - computed for its effect
        return self.kappa[0]

    def kappa_exceeds(self, threshold: float) -> bool:
        """Whether κ₂ > ``threshold``: the bracket decides unless it straddles it."""
        low, high = self.kappa
        if low > threshold:
            return True
        if high <= threshold:
            return False
        return self.value > threshold

    def decide(self, test: Callable[[float], bool]) -> bool:
        """``test(κ₂)`` for a ``test`` monotone in κ (a threshold on ε·κ², a tolerance
        growing with κ): from the ends of the bracket where they agree, else from κ₂
        itself. The same decision as ``test`` of the exact value, in the caller's own
        arithmetic."""
        low, high = self.kappa
        at_low = test(low)
        if at_low == test(high):
            return at_low
        return test(self.value)

    def rank_below(self, tolerance: Callable[[float], float]) -> bool:
        """Whether σₚ ≤ tolerance(σ₁): the factor counts as rank deficient."""
        if self.sigma_min[1] <= tolerance(self.sigma_max[0]):
            return True
        if self.sigma_min[0] > tolerance(self.sigma_max[1]):
            return False
        s = self.singular_values
        return float(s[-1]) <= tolerance(float(s[0]))


def _ratio(a: float, b: float) -> float:
    return math.inf if b == 0.0 else a / b


def _mv(R: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """R·v for upper-triangular R, reading each column panel down to its diagonal."""
    p = R.shape[0]
    out = torch.zeros(p, dtype=R.dtype, device=R.device)
    for start in range(0, p, PANEL):
        end = min(p, start + PANEL)
        out[:end].addmv_(R[:end, start:end], v[start:end])
    return out


def _mv_t(R: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Rᵀ·u for upper-triangular R, by the same panels."""
    p = R.shape[0]
    out = torch.empty(p, dtype=R.dtype, device=R.device)
    for start in range(0, p, PANEL):
        end = min(p, start + PANEL)
        torch.mv(R[:end, start:end].T, u[:end], out=out[start:end])
    return out


def _solve(R: torch.Tensor, v: torch.Tensor, *, upper: bool) -> torch.Tensor:
    return torch.linalg.solve_triangular(R, v.unsqueeze(1), upper=upper).squeeze(1)
