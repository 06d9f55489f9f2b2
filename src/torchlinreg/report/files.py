"""``torchlinreg report MODEL DATA -o report.html``'s work: the saved model, its data
streamed once through the fitted design (weights and missing-value rule as fitted) for
the influence pass, the page written atomically."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from ..errors import InputError


def _source(model_file: Any, data_path: str, delimiter: str | None) -> tuple[Any, Any]:
    """The fitted design and the data through it, checked to hold every column the
    fit read (features, targets, weights), missing ones named."""
    from ..data.design import Design, require_columns
    from ..jobs.common import open_data

    design = model_file.design
    if design is None:
        names = getattr(model_file.estimator, "feature_names_in_", None)
        targets = list(getattr(model_file.estimator, "target_names_", None) or [])
        if names is None or not targets:
            raise InputError(
                "this model was not fitted from a file, so its columns cannot be found in "
                "DATA; fit it with 'torchlinreg fit' or from a DataFrame"
            )
        design = Design(targets=targets, inputs=[str(n) for n in names])
    source = open_data(data_path, delimiter)
    spec = getattr(model_file.estimator, "formula_", None)
    if spec is not None:
        from ..formula.source import formula_source

        source = formula_source(source, spec, design.missing, True)
    require_columns(source, design.inputs, "feature")
    require_columns(source, design.targets, "target")
    require_columns(source, [design.weights] if design.weights else [], "weights")
    return design, source


def _fitted(model_file: Any, model_path: str, data_path: str) -> list[tuple[str, Any]]:
    """What was fitted, from the model file's record and design."""
    from .model import fitted_pairs

    info, design = model_file.info, model_file.design
    pairs: list[tuple[str, Any]] = [("model file", os.path.basename(model_path))]
    if info.get("source"):
        n = info.get("n")
        rows = f" ({n:,} observations)" if isinstance(n, int) else ""
        pairs.append(("fitted on", f"{info['source']}{rows}"))
    pairs.append(("data of this report", os.path.basename(data_path)))
    if info.get("method"):
        pairs.append(("method", info["method"]))
    if design is not None:
        pairs.append(("target", ", ".join(design.targets)))
        if design.weights:
            pairs.append(("weights", design.weights))
        if design.one_hot:
            pairs.append(("one-hot", ", ".join(design.one_hot)))
    return fitted_pairs(model_file.estimator, pairs)


def report_file(
    model_path: str,
    data_path: str,
    output: str,
    *,
    delimiter: str | None = None,
    training_curve: bool = False,
    level: float = 0.95,
    top_k: int = 10,
    sample_size: int = 2000,
    seed: int = 0,
    quiet: bool = True,
) -> Any:
    """Write the report of the model in ``model_path`` on its data ``data_path`` to
    ``output``; returns the report's inputs. ``training_curve`` demands one (a
    gradient-trained model without recorded history is refused)."""
    from .._files import check_output_path
    from ..data.prefetch import one_core_for_reading
    from ..persistence import load_model
    from ..plots._mpl import require_matplotlib
    from .build import render, write_html
    from .model import gather

    check_output_path(output, inputs=(data_path, model_path))
    require_matplotlib()
    model_file = load_model(model_path)
    design, source = _source(model_file, data_path, delimiter)
    # The influence pass overlaps reading as fit does: one core left to the reader (on
    # a loaded 2-core machine, two torch threads on small blocks ran ten times slower).
    with one_core_for_reading():
        inputs = gather(
            model_file.estimator,
            lambda: _stream(source, design, quiet),
            title=f"Report: {os.path.basename(model_path)}",
            fitted=_fitted(model_file, model_path, data_path),
            history=model_file.info.get("history"),
            require_curve=training_curve,
            level=level,
            top_k=top_k,
            sample_size=sample_size,
            random_state=seed,
        )
    write_html(output, render(inputs))
    return inputs


def _stream(source: Any, design: Any, quiet: bool) -> Iterator[Any]:
    """The fitted rows, chunk by chunk, as the exact solver takes them."""
    from ..data.design import chunks
    from ..data.prefetch import prefetched
    from ..progress import Progress

    progress = Progress("influence", total=source.row_count, enabled=not quiet)
    try:
        for chunk, _ in prefetched(chunks(source, design)):
            progress.update(chunk.X.shape[0] + chunk.dropped)
            if chunk.X.shape[0]:
                yield chunk.as_solver_chunk()
    finally:
        progress.close()
