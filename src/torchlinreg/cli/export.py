"""``torchlinreg export MODEL -o OUT``: a saved model as an ONNX model (``.onnx``) or a
``torch.export`` program (``.pt2``), computing what ``predict`` computes."""

from __future__ import annotations

import argparse
import os

from ..errors import InputError
from .output import dumps, name_list, printable

FORMATS = {".onnx": "onnx", ".pt2": "pt2"}


def export_format(output: str, chosen: str | None) -> str:
    """``--format``, else the output's suffix (``.onnx`` or ``.pt2``)."""
    if chosen is not None:
        return chosen
    suffix = os.path.splitext(output)[1].lower()
    if suffix not in FORMATS:
        raise InputError(
            f"{output}: cannot tell the format from the suffix {suffix or '(none)'!r}; "
            "name the file .onnx or .pt2, or give --format onnx|pt2"
        )
    return FORMATS[suffix]


def run_export(args: argparse.Namespace) -> None:
    from .._files import check_output_path
    from ..export import save_program, to_onnx
    from ..persistence import load_model

    fmt = export_format(args.output, args.format)
    check_output_path(args.output, inputs=(args.model,))
    model = load_model(args.model).estimator
    if fmt == "onnx":
        to_onnx(model, args.output, dtype=args.dtype)
    else:
        save_program(model, args.output, dtype=args.dtype)
    names = getattr(model, "feature_names_in_", None)
    inputs = [str(n) for n in names] if names is not None else []
    targets = list(getattr(model, "target_names_", None) or [])
    if args.json:
        print(
            dumps(
                {
                    "output": args.output,
                    "format": fmt,
                    "dtype": args.dtype,
                    "n_features": int(model.n_features_in_),
                    "features": inputs,
                    "targets": targets,
                }
            )
        )
        return
    columns = f": the columns {name_list(inputs)}, in this order" if inputs else ""
    print(
        f"{'ONNX model' if fmt == 'onnx' else 'torch.export program'} written to "
        f"{printable(args.output)} ({args.dtype}); input X has {model.n_features_in_} "
        f"column(s){columns}"
    )
