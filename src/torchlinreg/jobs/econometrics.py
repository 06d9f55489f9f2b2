"""The command line's covariance and test options beyond HC0–HC3 and one-way clusters:
``--cov-type HAC --lags L``, ``--cov-type CRV3 --cluster COL``, ``--cluster A,B``
(two-way), ``--test "x1 = x2"``; checked with the fit's other options
(:class:`~.fit.FitOptions`) and applied to its summaries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from .fit import FitOptions


def cluster_columns(options: FitOptions) -> list[str]:
    """The columns named by ``--cluster`` (one, or two for two-way clustering)."""
    if options.cluster is None:
        return []
    names = [c.strip() for c in options.cluster.split(",")]
    if not 1 <= len(names) <= 2 or not all(names):
        raise InputError(
            f"--cluster takes one column or two separated by a comma (two-way), got "
            f"{options.cluster!r}"
        )
    if len(names) == 2 and names[0] == names[1]:
        raise InputError(f"--cluster names {names[0]!r} twice; give two different columns")
    return names


def check(options: FitOptions) -> None:
    """``--cluster`` with cluster or CRV3 (one column for CRV3), ``--lags`` with HAC,
    ``--test`` with the exact method (it asks for the summary)."""
    columns = cluster_columns(options)
    if options.cov_type == "CRV3":
        if not columns:
            raise InputError("--cov-type CRV3 needs --cluster COL, the column of cluster labels")
        if len(columns) == 2:
            raise InputError("CRV3 takes one cluster column; two-way clustering is CRV1")
    if options.lags is not None:
        if options.cov_type != "HAC":
            raise InputError("--lags is for --cov-type HAC")
        if options.lags < 0:
            raise InputError(f"--lags must be 0 or more, got {options.lags}")
    if options.tests:
        options.summary = True


def restriction_tests(summaries: list[Any], tests: list[str]) -> list[dict[str, Any]]:
    """Each ``--test`` on each target's summary (F test, as statsmodels' f_test)."""
    from ..stats.wald import test

    out = []
    for s in summaries:
        for text in tests:
            result = test(s, text).to_dict()
            out.append({"target": s.target, **result})
    return out


def test_lines(found: list[dict[str, Any]]) -> list[str]:
    """The tests as text, one line each."""
    lines = []
    for t in found:
        dist = (
            f"F({t['df_num']}, {t['df_denom']:g})" if t["kind"] == "F" else f"chi2({t['df_num']})"
        )
        lines.append(
            f"test {'; '.join(t['restrictions'])} ({t['target']}, {t['cov_type']}): "
            f"{dist} = {t['statistic']:.6g}, p-value = {t['p_value']:.4g}"
        )
    return lines
