"""``torchlinreg compare MODEL1 MODEL2 ...``: nested saved models compared (F and
likelihood-ratio tests, :mod:`torchlinreg.stats.compare`) and shown side by side
(:mod:`torchlinreg.stats.etable`)."""

from __future__ import annotations

import argparse

from .output import dumps


def run_compare(args: argparse.Namespace) -> None:
    from ..persistence import load_model
    from ..stats.compare import compare
    from ..stats.etable import etable

    models = [load_model(path).estimator for path in args.models]
    names = [str(path) for path in args.models]
    comparison = compare(*models, names=names)
    table = etable(models, names=names)
    if args.json:
        print(dumps({"comparison": comparison.to_dict(), "table": table.to_dict()}))
        return
    print(comparison)
    print()
    print(table)
