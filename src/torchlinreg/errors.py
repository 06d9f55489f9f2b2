"""Exceptions that carry what went wrong and how to fix it.

Every error the user can cause derives from :class:`InputError` (a ``ValueError``), so
library callers can catch it like any bad-argument error and the CLI can map it to exit
code 2 with its one-line message.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input or options: the message names the problem and the fix."""

    exit_code = 2


class InputTypeError(InputError, TypeError):
    """Input of the wrong kind (a sparse matrix, objects that are not numbers)."""


class TrainingDivergedError(InputError, FloatingPointError):
    """The gradient trainer diverged: its cost became NaN or infinite, or grew where
    the step is known to be unstable (squared loss, full batch, plain SGD at or above
    2/λmax of the cost's Hessian; the message names that bound), or stayed far above
    its start (other optimizers and mini-batches; the message says what was seen).

    Attributes
    ----------
    epoch:
        The epoch at which divergence was seen.
    cost:
        That epoch's cost (finite when the cost grew, else ``nan`` or ``inf``).
    """

    def __init__(self, message: str, *, epoch: int, cost: float) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.cost = cost


class RankDeficientWarning(UserWarning):
    """Columns of X are linearly dependent: the minimum-norm solution was returned."""


class IllConditionedWarning(UserWarning):
    """X is badly conditioned: coefficients are sensitive to tiny changes in the data."""


class AccuracyWarning(UserWarning):
    """The solution could not be refined although its accuracy is at risk."""


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit``.

    Subclasses ``ValueError`` and ``AttributeError`` as scikit-learn's own does, so code
    written for scikit-learn estimators catches it.
    """


_sklearn_compatible: type[NotFittedError] | None = None


def not_fitted(message: str) -> NotFittedError:
    """A :class:`NotFittedError` that is also scikit-learn's when scikit-learn is in use.

    Code written for scikit-learn catches ``sklearn.exceptions.NotFittedError``; such code
    has imported scikit-learn, so the combined class is only built when it is loaded.
    """
    import sys

    global _sklearn_compatible
    if "sklearn" not in sys.modules:
        return NotFittedError(message)
    if _sklearn_compatible is None:
        from sklearn.exceptions import NotFittedError as SklearnNotFittedError

        _sklearn_compatible = type(
            "NotFittedError", (NotFittedError, SklearnNotFittedError), {"__module__": __name__}
        )
    return _sklearn_compatible(message)


class ConvergenceWarning(UserWarning):
    """Gradient training spent its budget far from the optimum (scikit-learn's
    ``ConvergenceWarning`` has the same meaning): more epochs, a larger or ``"auto"``
    learning rate, or the exact fit are the remedies."""
