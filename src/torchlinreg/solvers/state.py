"""``LeastSquaresState``: everything exact least squares needs, in O(p²) numbers.

The state is the R factor of the weighted, augmented design √w ⊙ [1, X, Y] (see
:mod:`.qr`), plus counts. From it follow the coefficients (OLS, ridge, no intercept,
several targets), the residual sums of squares, the cost of any coefficients, and the
condition of the problem. Folding chunks in (``update``), combining partial states
(``merge``) and saving/restoring are exact operations on R; order changes only rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..data.arrays import as_tensor, check_finite, check_lengths, check_sample_weight
from ..errors import InputError
from .qr import fill_augmented, fold_rows, qr_r

# Rows folded per Householder QR. Measured on 1e6 × 100 (bench/exact.py): 4096 rows
# keep [R; block] in cache and ran faster than 8192 or 16384, with ~10 MiB of
# temporaries (16384 rows: ~60 MiB, less predictable under glibc's allocator).
BLOCK_ROWS = 4096


@dataclass
class Chunk:
    """A validated chunk: X (n, p), Y (n, k) on one device, weights (n,) or None."""

    X: torch.Tensor
    Y: torch.Tensor
    sample_weight: torch.Tensor | None
    target_1d: bool


def validate_chunk(
    X: Any,
    y: Any,
    sample_weight: Any = None,
    *,
    device: torch.device | None = None,
    row_offset: int = 0,
) -> Chunk:
    """Check a chunk at the boundary: shapes, numbers, finiteness (naming the cell).

    ``X`` keeps float32/float64 (no copy of large inputs); it is checked for NaN/inf
    block by block, ``row_offset`` giving rows in the whole data set.
    """
    Xt = as_tensor(X, "X", ndim=(2,), dtype=None, device=device, finite=False)
    yt = as_tensor(y, "y", ndim=(1, 2), dtype=torch.float64, device=Xt.device, finite=False)
    check_finite(yt, "y", row_offset)
    wt = None
    if sample_weight is not None:
        wt = as_tensor(
            sample_weight,
            "sample_weight",
            ndim=(1,),
            dtype=torch.float64,
            device=Xt.device,
            finite=False,
        )
        check_finite(wt, "sample_weight", row_offset)
        check_sample_weight(wt)
    check_lengths(Xt, yt, wt)
    return Chunk(Xt, yt.reshape(len(yt), -1), wt, yt.ndim == 1)


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

    Attributes
    ----------
    R : Tensor (m, m), float64
        Upper-triangular R factor of √w ⊙ [1, X, Y] over every row seen
        (m = n_features + n_targets + fit_intercept).
    n_samples : int
        Rows seen (including zero-weight rows).
    weight_sum : float
        Σ w (equals ``n_samples`` without weights).
    """

    def __init__(
        self,
        n_features: int,
        n_targets: int = 1,
        *,
        fit_intercept: bool = True,
        device: torch.device | str | None = None,
    ) -> None:
        if n_features < 1 or n_targets < 1:
            raise InputError("a least-squares state needs at least 1 feature and 1 target")
        self.n_features = n_features
        self.n_targets = n_targets
        self.fit_intercept = fit_intercept
        m = n_features + n_targets + int(fit_intercept)
        self.R = torch.zeros(m, m, dtype=torch.float64, device=device)
        self.n_samples = 0
        self.weight_sum = 0.0

    @property
    def n_params(self) -> int:
        """Coefficients per target, the intercept included."""
        return self.n_features + int(self.fit_intercept)

    def update(self, X: Any, y: Any, sample_weight: Any = None) -> LeastSquaresState:
        """Fold rows in; returns ``self``. Validates the chunk (NaN/inf named by row)."""
        chunk = validate_chunk(X, y, sample_weight, device=self.R.device, row_offset=self.n_samples)
        return self.update_chunk(chunk)

    def update_chunk(self, chunk: Chunk) -> LeastSquaresState:
        """Fold an already validated chunk in, block by block."""
        X, Y, w = chunk.X, chunk.Y, chunk.sample_weight
        if X.shape[1] != self.n_features or Y.shape[1] != self.n_targets:
            raise InputError(
                f"chunk has {X.shape[1]} features and {Y.shape[1]} targets, but this state "
                f"was started with {self.n_features} and {self.n_targets}"
            )
        sqrt_w = None if w is None else w.sqrt()
        R = self.R
        m = R.shape[0]
        # One buffer for [R; block]: the rows are written in place, no concatenation.
        buf = torch.empty(m + min(BLOCK_ROWS, X.shape[0]), m, dtype=R.dtype, device=R.device)
        for start in range(0, X.shape[0], BLOCK_ROWS):
            rows = slice(start, start + BLOCK_ROWS)
            Xb = X[rows].to(R.device)
            check_finite(Xb, "X", self.n_samples + start)
            stacked = buf[: m + Xb.shape[0]]
            stacked[:m] = R
            fill_augmented(
                stacked[m:],
                Xb,
                Y[rows].to(R.device),
                None if sqrt_w is None else sqrt_w[rows].to(R.device),
                self.fit_intercept,
            )
            R = qr_r(stacked)
        self.R = R
        self.n_samples += X.shape[0]
        self.weight_sum += float(w.sum()) if w is not None else float(X.shape[0])
        return self

    def _check_compatible(self, other: LeastSquaresState) -> None:
        mine = (self.n_features, self.n_targets, self.fit_intercept)
        theirs = (other.n_features, other.n_targets, other.fit_intercept)
        if mine != theirs:
            raise InputError(
                f"cannot merge states of different problems: (features, targets, intercept) "
                f"{mine} vs {theirs}"
            )

    def merge(self, other: LeastSquaresState) -> LeastSquaresState:
        """Combine with another state of the same problem (rows of both); returns ``self``."""
        self._check_compatible(other)
        self.R = fold_rows(self.R, other.R.to(self.R.device))
        self.n_samples += other.n_samples
        self.weight_sum += other.weight_sum
        return self

    def copy(self) -> LeastSquaresState:
        new = LeastSquaresState(
            self.n_features,
            self.n_targets,
            fit_intercept=self.fit_intercept,
            device=self.R.device,
        )
        new.R = self.R.clone()
        new.n_samples, new.weight_sum = self.n_samples, self.weight_sum
        return new

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

    def rss_of(self, theta: torch.Tensor) -> torch.Tensor:
        """Σ w (y − Aθ)² per target for parameters θ (p', k), intercept first, from R
        alone: ‖√w(Y − Aθ)‖² = ‖R_design θ − R_target‖² + ‖R_residual‖² (Q is orthogonal)."""
        fit = self.R_design @ theta.to(self.R) - self.R_target
        return (fit**2).sum(0) + (self.R_residual**2).sum(0)

    def state_dict(self) -> dict[str, Any]:
        """Tensors and metadata, for :func:`torchlinreg.solvers.state.save_state`."""
        return {
            "R": self.R.detach().cpu().contiguous(),
            "meta": {
                "n_features": self.n_features,
                "n_targets": self.n_targets,
                "fit_intercept": self.fit_intercept,
                "n_samples": self.n_samples,
                "weight_sum": self.weight_sum,
            },
        }

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> LeastSquaresState:
        meta = d["meta"]
        state = cls(
            int(meta["n_features"]),
            int(meta["n_targets"]),
            fit_intercept=bool(meta["fit_intercept"]),
        )
        R = d["R"]
        if tuple(R.shape) != tuple(state.R.shape) or R.dtype != torch.float64:
            raise InputError(
                f"saved state has R of shape {tuple(R.shape)} and dtype {R.dtype}, "
                f"expected {tuple(state.R.shape)} float64"
            )
        state.R = R.clone()
        state.n_samples = int(meta["n_samples"])
        state.weight_sum = float(meta["weight_sum"])
        return state

    def save(self, path: str) -> None:
        """Write the state to a ``.safetensors`` file (atomically)."""
        import json

        from safetensors.torch import save_file

        from .._files import atomic_path

        d = self.state_dict()
        with atomic_path(path) as tmp:
            save_file(
                {"R": d["R"]},
                tmp,
                metadata={
                    "format": "torchlinreg.LeastSquaresState",
                    "version": "1",
                    "meta": json.dumps(d["meta"]),
                },
            )

    @classmethod
    def load(cls, path: str) -> LeastSquaresState:
        """Read a state written by :meth:`save`; never executes code from the file."""
        import json

        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(path, framework="pt") as f:
                metadata = f.metadata() or {}
                if metadata.get("format") != "torchlinreg.LeastSquaresState":
                    raise InputError(f"{path} is not a saved torchlinreg least-squares state")
                if metadata.get("version") != "1":
                    raise InputError(
                        f"{path} has state format version {metadata.get('version')!r}; "
                        "this torchlinreg reads version 1: upgrade torchlinreg"
                    )
                tensors = {"R": f.get_tensor("R")}
        except (SafetensorError, OSError) as exc:
            raise InputError(f"{path} could not be read as a state file: {exc}") from None
        return cls.from_state_dict({**tensors, "meta": json.loads(metadata["meta"])})
