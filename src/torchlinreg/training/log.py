"""The tutorial's log line, generalised to any number of features and targets."""

from __future__ import annotations

from collections.abc import Sequence

# Beyond this many values a parameter is shown as its first few, then "...".
_SHOWN = 6


def _values(v: float | Sequence) -> str:
    if isinstance(v, (int, float)):
        return f"{v:.3f}"
    items = [_values(x) for x in v[:_SHOWN]]
    if len(v) > _SHOWN:
        items.append(f"... ({len(v)} values)")
    return "[" + ", ".join(items) + "]"


def format_log_line(
    epoch: int, epochs: int, W: float | Sequence, b: float | Sequence | None, cost: float
) -> str:
    """``Epoch {:4d}/{} W: {:.3f}, b: {:.3f} Cost: {:.6f}`` as in the tutorial.

    ``W`` and ``b`` are plain floats for one feature and one target, nested lists
    otherwise; ``b`` is ``None`` for a model without intercept.
    """
    line = f"Epoch {epoch:4d}/{epochs} W: {_values(W)}"
    if b is not None:
        line += f", b: {_values(b)}"
    return f"{line} Cost: {cost:.6f}"
