"""``LeastSquaresState``: everything exact least squares needs, in O(p²) numbers.

The state is the R factor of the weighted, augmented design √w ⊙ [1, X − x₀, Y − y₀]
(see :mod:`.qr`), plus counts. From it follow the coefficients (OLS, ridge, no
intercept, several targets), the residual sums of squares, the cost of any
coefficients, and the condition of the problem. Folding chunks in (``update``),
combining partial states (``merge``) and saving/restoring (:mod:`.state_io`) are exact
operations on R; order changes only rounding.

Why the shift (x₀, y₀), taken from the first chunk's means when there is an intercept:
Householder QR is accurate relative to each column's *uncentred* norm, so a column such
as y = 10⁸ + signal would lose 8 digits of its signal. Subtracting a shift near the
mean first is exact for values near it, and any shift gives the same slopes; the
intercept is shifted back at the end.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..data.arrays import check_finite
from ..data.chunks import Chunk, validate_chunk
from ..errors import InputError
from .qr import fill_augmented, qr_r
from .theta import split_theta, stack_theta

# Rows folded per Householder QR, for a block of about 3 MiB: 4096 rows at 100 columns
# (bench/exact.py: faster than 8192 or 16384 there, ~10 MiB of temporaries), more for
# narrow problems (22 columns: 16384 rows, ~25% faster per row than 4096). Smaller
# chunks are buffered up to this size, so tiny chunks do not cost a QR each.
BLOCK_BYTES = 3 << 20
BLOCK_ROWS = 4096  # the minimum, and the rows used to pick the shift


OVERFLOW = (
    "the sums of squares overflow float64 (values near 1e300 or beyond); "
    "rescale the data, e.g. divide the large columns by a power of 10"
)


def block_rows(m: int) -> int:
    return max(BLOCK_ROWS, min(1 << 16, BLOCK_BYTES // (8 * m)))


def check_count(name: str, value: Any, low: int) -> int:
    """``value`` as an int >= ``low``, or an InputError naming ``name``."""
    # Bounded so that every count converts to float64 and to a torch index.
    number = value if isinstance(value, numbers.Integral) and not isinstance(value, bool) else None
    if number is None or not low <= int(number) < 2**63:
        raise InputError(f"{name} must be an integer >= {low} (and < 2^63), got {value!r}")
    return int(number)


@dataclass(frozen=True)
class RowCounts:
    """What a state knows of its rows besides R. ``n_samples`` counts every row seen;
    ``n_observations`` the rows of positive weight, the observations of the statistical
    model (a zero-weight row contributes nothing, as in R's ``lm``); ``log_weight_sum``
    is Σ log w over them (the Gaussian log-likelihood of a weighted fit needs it)."""

    n_samples: int = 0
    n_observations: int = 0
    weight_sum: float = 0.0
    log_weight_sum: float = 0.0
    weighted: bool = False

    @classmethod
    def of(cls, chunk: Chunk) -> RowCounts:
        n, w = chunk.X.shape[0], chunk.sample_weight
        if w is None:
            return cls(n, n, float(n))
        positive = w[w > 0]
        return cls(n, int(positive.numel()), float(w.sum()), float(torch.log(positive).sum()), True)

    def __add__(self, other: RowCounts) -> RowCounts:
        return RowCounts(
            self.n_samples + other.n_samples,
            self.n_observations + other.n_observations,
            self.weight_sum + other.weight_sum,
            self.log_weight_sum + other.log_weight_sum,
            self.weighted or other.weighted,
        )


class LeastSquaresState:
    """Mergeable state of a (weighted) linear least-squares problem.

    Parameters
    ----------
    n_features, n_targets : int
        Shape of the problem; fixed at construction.
    fit_intercept : bool
        Whether a column of ones (the intercept) is part of the design.
    device : torch.device, optional
        Where R lives; chunks on another device are moved here.

    Attributes (read-only: the state changes only by folding rows in or merging)
    ----------
    R : Tensor (m, m), float64
        Upper-triangular R factor of √w ⊙ [1, X − x₀, Y − y₀] over every row seen
        (m = n_features + n_targets + fit_intercept).
    shift_x, shift_y : Tensor
        x₀ (n_features,) and y₀ (n_targets,); zero without an intercept.
    counts : RowCounts
        ``n_samples`` (rows seen, zero-weight rows included), ``n_observations`` (rows
        with a positive weight), ``weight_sum`` (Σ w), ``log_weight_sum``, ``weighted``;
        each also an attribute of the state.
    """

    def __init__(
        self,
        n_features: int,
        n_targets: int = 1,
        *,
        fit_intercept: bool = True,
        device: torch.device | str | None = None,
    ) -> None:
        self.n_features = check_count("n_features", n_features, 1)
        self.n_targets = check_count("n_targets", n_targets, 1)
        if not isinstance(fit_intercept, bool):
            raise InputError(f"fit_intercept must be True or False, got {fit_intercept!r}")
        self.fit_intercept = fit_intercept
        m = self.n_features + self.n_targets + int(fit_intercept)
        self._R = torch.zeros(m, m, dtype=torch.float64, device=device)
        self._shift_x = torch.zeros(self.n_features, dtype=torch.float64, device=device)
        self._shift_y = torch.zeros(self.n_targets, dtype=torch.float64, device=device)
        self._counts = RowCounts()
        # Rows waiting to be folded: [R; pending rows] is QR-factored when full.
        self._buffer: torch.Tensor | None = None
        self._pending = 0
        # Derived numbers of R (its conditioning), each with the R it was computed from.
        self._memo: dict[str, tuple[torch.Tensor, Any]] = {}

    @classmethod
    def from_parts(
        cls,
        R: torch.Tensor,
        shift_x: torch.Tensor,
        shift_y: torch.Tensor,
        counts: RowCounts,
        *,
        fit_intercept: bool,
    ) -> LeastSquaresState:
        """The state whose rows have the (upper-triangular, float64) R factor ``R`` of
        √w ⊙ [1, X − shift_x, Y − shift_y] and the given counts. The tensors are taken
        as they are (not copied); shapes, dtypes and devices are checked."""
        # Built on the meta device (nothing allocated), then given the parts.
        state = cls(shift_x.numel(), shift_y.numel(), fit_intercept=fit_intercept, device="meta")
        m = state._R.shape[0]
        parts = {"R": (R, (m, m)), "shift_x": (shift_x, (state.n_features,)),
                 "shift_y": (shift_y, (state.n_targets,))}  # fmt: skip
        for name, (t, shape) in parts.items():
            if tuple(t.shape) != shape or t.dtype != torch.float64 or t.device != R.device:
                raise InputError(
                    f"{name} must be float64 of shape {shape} on {R.device}; got "
                    f"{t.dtype} of shape {tuple(t.shape)} on {t.device}"
                )
        state._R, state._shift_x, state._shift_y = R, shift_x, shift_y
        state._counts = counts
        return state

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()``, cached under ``key`` until R changes (rows folded or merged in)."""
        R = self.R
        entry = self._memo.get(key)
        if entry is None or entry[0] is not R:
            entry = (R, compute())
            self._memo[key] = entry
        return entry[1]

    def share_design_memo(self, other: LeastSquaresState) -> None:
        """Take ``other``'s cached numbers of the design block: for a state whose R
        differs from ``other``'s only in the residual block (the Gram path's)."""
        self._memo = {key: (self.R, value) for key, (_, value) in other._memo.items()}

    @property
    def n_params(self) -> int:
        """Coefficients per target, the intercept included."""
        return self.n_features + int(self.fit_intercept)

    @property
    def device(self) -> torch.device:
        return self._R.device

    @property
    def R(self) -> torch.Tensor:
        """The R factor of every row folded in so far."""
        self._flush()
        return self._R

    @property
    def shift_x(self) -> torch.Tensor:
        return self._shift_x

    @property
    def shift_y(self) -> torch.Tensor:
        return self._shift_y

    @property
    def counts(self) -> RowCounts:
        return self._counts

    @property
    def n_samples(self) -> int:
        return self._counts.n_samples

    @property
    def n_observations(self) -> int:
        return self._counts.n_observations

    @property
    def weight_sum(self) -> float:
        return self._counts.weight_sum

    @property
    def log_weight_sum(self) -> float:
        return self._counts.log_weight_sum

    @property
    def weighted(self) -> bool:
        """Whether any chunk came with sample weights."""
        return self._counts.weighted

    def _flush(self) -> None:
        if self._pending:
            m = self._R.shape[0]
            assert self._buffer is not None
            stacked = self._buffer[: m + self._pending]
            stacked[:m] = self._R
            self._R = qr_r(stacked)
            self._pending = 0
            if not bool(torch.isfinite(self._R).all()):
                raise InputError(OVERFLOW)

    def update(self, X: Any, y: Any, sample_weight: Any = None) -> LeastSquaresState:
        """Fold rows in; returns ``self``. Validates the chunk (NaN/inf named by row)."""
        chunk = validate_chunk(
            X, y, sample_weight, device=self.device, row_offset=self.n_samples, whole=False
        )
        return self.update_chunk(chunk)

    def _set_shift(self, chunk: Chunk) -> None:
        # Any shift gives the same slopes; one near the data's mean keeps the shifted
        # columns small. The first block's means are near enough and cost no extra pass.
        if not self.fit_intercept or chunk.X.shape[0] == 0:
            return
        X = chunk.X[:BLOCK_ROWS].to(device=self.device, dtype=torch.float64)
        Y = chunk.Y[:BLOCK_ROWS].to(device=self.device, dtype=torch.float64)
        self._shift_x = X.mean(0)
        self._shift_y = Y.mean(0)

    def update_chunk(self, chunk: Chunk) -> LeastSquaresState:
        """Fold an already validated chunk in, buffering rows into blocks."""
        X, Y, w = chunk.X, chunk.Y, chunk.sample_weight
        if X.shape[1] != self.n_features or Y.shape[1] != self.n_targets:
            raise InputError(
                f"chunk has {X.shape[1]} features and {Y.shape[1]} targets, but this state "
                f"was started with {self.n_features} and {self.n_targets}"
            )
        if self.n_samples == 0:
            self._set_shift(chunk)
        m = self._R.shape[0]
        capacity = block_rows(m)
        if self._buffer is None:
            self._buffer = torch.empty(m + capacity, m, dtype=torch.float64, device=self.device)
        sqrt_w = None if w is None else w.sqrt()
        start = 0
        while start < X.shape[0]:
            take = min(capacity - self._pending, X.shape[0] - start)
            rows = slice(start, start + take)
            Xb = X[rows].to(self.device)
            if not chunk.finite:
                check_finite(Xb, "X", self.n_samples + start)
            lo = m + self._pending
            fill_augmented(
                self._buffer[lo : lo + take],
                Xb,
                Y[rows].to(self.device),
                None if sqrt_w is None else sqrt_w[rows].to(self.device),
                self.fit_intercept,
                self.shift_x,
                self.shift_y,
            )
            self._pending += take
            start += take
            if self._pending == capacity:
                self._flush()
        self._counts += RowCounts.of(chunk)
        return self

    def _check_compatible(self, other: Any) -> None:
        if not isinstance(other, LeastSquaresState):
            raise InputError(
                f"can only merge another LeastSquaresState, not {type(other).__name__}"
            )
        mine = (self.n_features, self.n_targets, self.fit_intercept)
        theirs = (other.n_features, other.n_targets, other.fit_intercept)
        if mine != theirs:
            raise InputError(
                f"cannot merge states of different problems: (features, targets, intercept) "
                f"{mine} vs {theirs}"
            )

    def _R_with_shift(
        self, shift_x: torch.Tensor | None, shift_y: torch.Tensor | None
    ) -> torch.Tensor:
        """R of the same rows shifted by (shift_x, shift_y) instead (None: no shift): a
        column operation, since [1, X − a, Y − b] = [1, X − x₀, Y − y₀] + 1·[0, x₀ − a,
        y₀ − b]."""
        R = self.R.clone()
        if self.fit_intercept:
            if shift_x is None or shift_y is None:
                delta = torch.cat([self.shift_x, self.shift_y]).to(R)
            else:
                delta = torch.cat([self.shift_x - shift_x, self.shift_y - shift_y]).to(R)
            R[:, 1:] += R[:, :1] * delta.unsqueeze(0)
        return R

    def unshifted_R(self) -> torch.Tensor:
        """R factor of the rows as given, √w ⊙ [1, X, Y] (no shift): a copy."""
        return self._R_with_shift(None, None)

    def merge(self, other: LeastSquaresState) -> LeastSquaresState:
        """Combine with another state of the same problem (rows of both); returns ``self``."""
        self._check_compatible(other)
        if self.n_samples == 0:
            self._shift_x = other.shift_x.to(self.device).clone()
            self._shift_y = other.shift_y.to(self.device).clone()
        theirs = other._R_with_shift(self.shift_x.to(other.device), self.shift_y.to(other.device))
        self._R = qr_r(torch.cat([self.R, theirs.to(self.device)]))
        self._counts += other.counts
        if not bool(torch.isfinite(self._R).all()):
            raise InputError(OVERFLOW)
        return self

    def copy(self) -> LeastSquaresState:
        return LeastSquaresState.from_parts(
            self.R.clone(),
            self.shift_x.clone(),
            self.shift_y.clone(),
            self.counts,
            fit_intercept=self.fit_intercept,
        )

    # The blocks of R: design part (p' × p'), design-target coupling (p' × k) and the
    # residual part (k × k, whose column norms² are the residual sums of squares).
    @property
    def R_design(self) -> torch.Tensor:
        return self.R[: self.n_params, : self.n_params]

    @property
    def R_target(self) -> torch.Tensor:
        return self.R[: self.n_params, self.n_params :]

    @property
    def R_residual(self) -> torch.Tensor:
        return self.R[self.n_params :, self.n_params :]

    def to_shifted(self, theta: torch.Tensor) -> torch.Tensor:
        """θ = [b; β] of the original data → the same model for the shifted data:
        b_s = b − y₀ + x₀ᵀβ (slopes unchanged)."""
        coef, b = split_theta(theta.to(self._R), self.fit_intercept)
        if b is None:
            return coef
        return stack_theta(coef, b - self.shift_y + self.shift_x @ coef)

    def from_shifted(self, theta_s: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_shifted`: b = b_s + y₀ − x₀ᵀβ."""
        coef, b_s = split_theta(theta_s, self.fit_intercept)
        if b_s is None:
            return coef
        return stack_theta(coef, b_s + self.shift_y - self.shift_x @ coef)

    def rss_of(self, theta: torch.Tensor) -> torch.Tensor:
        """Σ w (y − Aθ)² per target for parameters θ (p', k), intercept first, from R
        alone: ‖√w(Y − Aθ)‖² = ‖R_design θ − R_target‖² + ‖R_residual‖² (Q is orthogonal)."""
        theta = theta.to(self._R)
        if theta.shape != (self.n_params, self.n_targets):
            raise InputError(
                f"parameters of shape {tuple(theta.shape)} given; this problem has "
                f"({self.n_params}, {self.n_targets}) (intercept first, one column per target)"
            )
        fit = self.R_design @ self.to_shifted(theta) - self.R_target
        return (fit**2).sum(0) + (self.R_residual**2).sum(0)

    def state_dict(self) -> dict[str, Any]:
        """Tensors (on the CPU) and metadata, for saving; see :mod:`.state_io`."""
        from .state_io import state_dict

        return state_dict(self)

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> LeastSquaresState:
        """Rebuild a state, checking every field (the data may come from a file)."""
        from .state_io import from_state_dict

        return from_state_dict(d)

    def save(self, path: str) -> None:
        """Write the state to a ``.safetensors`` file (atomically)."""
        from .state_io import save_state

        save_state(self, path)

    @classmethod
    def load(cls, path: str) -> LeastSquaresState:
        """Read a state written by :meth:`save`; never executes code from the file."""
        from .state_io import load_state

        return load_state(path)
