"""A stream read twice (fit, then refinement) must give the same data on both passes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from torchlinreg import InputError, LinearRegression
from torchlinreg.cli import main


def wampler_like(n: int = 21):  # type: ignore[no-untyped-def]
    """NIST Wampler1's design: x = 0..20, columns x..x⁵, a polynomial target
    (κ ≈ 1e6 after scaling: refinement is due)."""
    x = np.arange(n, dtype=np.float64)
    X = np.column_stack([x**k for k in range(1, 6)])
    y = 1 + X.sum(axis=1)
    return X, y


def test_a_chunk_function_with_other_values_on_the_second_call_is_refused() -> None:
    X, y = wampler_like()
    calls = []

    def chunks():  # type: ignore[no-untyped-def]
        calls.append(1)
        Xc = X.copy()
        if len(calls) > 2:  # the third pass: the first refinement step
            Xc[7, 2] = np.nextafter(Xc[7, 2], np.inf)  # one value, one ulp
        return [(Xc[i : i + 5], y[i : i + 5]) for i in range(0, len(y), 5)]

    with pytest.raises(InputError, match="the data changed between passes"):
        LinearRegression(refine=True).fit_chunks(chunks)
    assert len(calls) == 3


@pytest.mark.parametrize("change", ["y", "weight", "rows", "sign"])
def test_any_change_of_rows_targets_or_weights_is_refused(change) -> None:
    X, y = wampler_like()
    w = np.linspace(1.0, 2.0, len(y))
    calls = []

    def chunks():  # type: ignore[no-untyped-def]
        calls.append(1)
        Xc, yc, wc = X.copy(), y.copy(), w.copy()
        if len(calls) > 2:  # the third pass: the first refinement step
            if change == "y":
                yc[3] += 1.0
            elif change == "weight":
                wc[0] = 0.0
            elif change == "rows":
                Xc, yc, wc = Xc[:-1], yc[:-1], wc[:-1]
            else:
                Xc[4, 1] = -Xc[4, 1]
        return [(Xc[i : i + 5], yc[i : i + 5], wc[i : i + 5]) for i in range(0, len(yc), 5)]

    with pytest.raises(InputError, match="changed between passes"):
        LinearRegression(refine=True).fit_chunks(chunks)


def test_a_change_before_the_refinement_starts_gives_the_fit_of_the_data_refined() -> None:
    """The fit is made again on the second pass, whose rows every refinement pass is
    checked against: data changed between the first two passes give the refined fit of
    the second pass's data, counts and coefficients alike, not a mixture."""
    X, y = wampler_like()
    changed = y + np.eye(len(y))[3]
    calls = []

    def chunks():  # type: ignore[no-untyped-def]
        calls.append(1)
        yc = y if len(calls) == 1 else changed
        return [(X[i : i + 5], yc[i : i + 5]) for i in range(0, len(y), 5)]

    model = LinearRegression(refine=True).fit_chunks(chunks)
    reference = LinearRegression().fit(X, changed)  # in memory: refined to the last digit
    assert model.refined_ and len(calls) > 2
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-12)
    expected = LinearRegression(refine=False).fit_chunks([(X, changed)]).state_
    assert model.state_.n_samples == len(y)
    assert float(model.state_.rss_of(model._theta())) == pytest.approx(
        float(expected.rss_of(model._theta())), rel=1e-9
    )


def test_the_same_rows_in_another_order_and_chunking_are_the_same_data() -> None:
    X, y = wampler_like()
    calls = []

    def chunks():  # type: ignore[no-untyped-def]
        calls.append(1)
        order = np.random.default_rng(len(calls)).permutation(len(y))
        size = 3 + len(calls)
        return [(X[order[i : i + size]], y[order[i : i + size]]) for i in range(0, len(y), size)]

    model = LinearRegression(refine=True).fit_chunks(chunks)
    assert model.refined_ and len(calls) > 1
    np.testing.assert_allclose(model.coef_, np.ones(5), rtol=1e-12)


def _splitmix64_finaliser(z: int) -> int:
    """The reference: splitmix64's output function on unsigned 64-bit integers."""
    mask = (1 << 64) - 1
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def test_the_mixer_is_splitmix64_on_the_bit_patterns(rng) -> None:
    import torch

    from torchlinreg.solvers.fingerprint import mix_

    values = [0, 1, 2**63, 2**64 - 1, *rng.integers(0, 2**63, 50, dtype=np.uint64).tolist()]
    values += [v | (1 << 63) for v in values[4:]]  # the sign bit set: logical shifts needed
    signed = torch.tensor([v - (1 << 64) if v >> 63 else v for v in values], dtype=torch.int64)
    got = [v % (1 << 64) for v in mix_(signed).tolist()]
    assert got == [_splitmix64_finaliser(v) for v in values]


def _reference_row_hash(row: list[float]) -> int:
    """The row hash from its definition, in Python integers: splitmix64's finaliser of
    Σⱼ Kⱼvⱼ + Lⱼ(vⱼ >> 32) modulo 2⁶⁴ over the float64 bit patterns vⱼ (>> arithmetic),
    the keys splitmix64's outputs from seeds 1 (K) and 2 (L)."""
    import struct

    mask, golden = (1 << 64) - 1, 0x9E3779B97F4A7C15
    total = 0
    for j, value in enumerate(row):
        bits = struct.unpack("<q", struct.pack("<d", value))[0]  # signed
        low_key = _splitmix64_finaliser(((j + 1) * golden + 1) & mask)
        high_key = _splitmix64_finaliser(((j + 1) * golden + 2) & mask)
        total += low_key * bits + high_key * (bits >> 32)
    return _splitmix64_finaliser(total & mask)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_hashes_follow_their_definition_across_blocks(dtype, rng, monkeypatch) -> None:
    import torchlinreg.solvers.fingerprint as fingerprint

    monkeypatch.setattr(fingerprint, "_BLOCK_VALUES", 7)  # blocks of 1 or 2 rows, and 7
    X = (rng.normal(size=(11, 3)) * 10.0 ** rng.integers(-30, 30, size=(11, 3))).astype(dtype)
    X[0] = [-0.0, 0.0, -1.0]
    Y = rng.normal(size=(11, 2))
    w = rng.uniform(0.5, 2.0, size=11)
    got = fingerprint.row_hashes(_chunk(X, Y, w)).tolist()
    rows = np.c_[X.astype(np.float64), Y, w].tolist()
    assert [h % (1 << 64) for h in got] == [_reference_row_hash(row) for row in rows]


def test_float32_rows_are_the_same_data_as_their_float64_values(rng) -> None:
    X = rng.normal(size=(9, 3)).astype(np.float32)
    y = rng.normal(size=9)
    assert _fingerprint([(X, y)]) == _fingerprint([(X.astype(np.float64), y)])


@pytest.mark.cuda
def test_row_hashes_are_the_same_on_cuda(rng) -> None:
    import torch

    from torchlinreg.data.chunks import validate_chunk
    from torchlinreg.solvers.fingerprint import row_hashes

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    X, y, w = rng.normal(size=(50, 4)), rng.normal(size=50), rng.uniform(0.5, 2.0, 50)
    on_cuda = validate_chunk(X, y, w, device=torch.device("cuda"), whole=False)
    assert row_hashes(on_cuda).cpu().tolist() == row_hashes(_chunk(X, y, w)).tolist()


def _chunk(X, y, w=None):  # type: ignore[no-untyped-def]
    from torchlinreg.data.chunks import validate_chunk

    return validate_chunk(X, y, w, whole=False)


def _fingerprint(parts):  # type: ignore[no-untyped-def]
    from torchlinreg.solvers.fingerprint import Fingerprint

    f = Fingerprint()
    for part in parts:
        f.add(_chunk(*part))
    return f


def _moved(change: str, X: np.ndarray, y: np.ndarray, w: np.ndarray):  # type: ignore[no-untyped-def]
    """The data with values moved, none changed: every column keeps its values."""
    X, y, w = X.copy(), y.copy(), w.copy()
    if change == "y between rows":
        y[[0, 1]] = y[[1, 0]]
    elif change == "x between rows":
        X[[2, 9], 3] = X[[9, 2], 3]
    elif change == "weight between rows":
        w[[4, 5]] = w[[5, 4]]
    elif change == "x between columns":
        X[6, [0, 1]] = X[6, [1, 0]]
    elif change == "x and y within a row":
        X[3, 0], y[3] = y[3], X[3, 0]
    elif change == "two signs in a row":  # each flip changes a bit pattern by 2⁶³
        X[5, :2] = -X[5, :2]
    elif change == "dummies between columns":  # 0 and 1: patterns 1023·2⁵² apart
        X[8, [2, 3]] = X[8, [3, 2]]
    else:  # the sign moved: each column keeps its bit sum
        X[0, 0], X[1, 0] = -X[0, 0], -X[1, 0]
    return X, y, w


@pytest.mark.parametrize(
    "change",
    [
        "y between rows",
        "x between rows",
        "weight between rows",
        "x between columns",
        "x and y within a row",
        "two signs in a row",
        "dummies between columns",
        "signs between rows",
    ],
)
def test_the_fingerprint_sees_values_moved_between_rows_not_rows_reordered(change, rng) -> None:
    X = rng.normal(size=(20, 4))
    X[1, 0] = -X[0, 0]  # for the sign change
    X[8, 2:4] = [0.0, 1.0]  # two dummy columns
    y = rng.normal(size=20)
    w = rng.uniform(0.5, 2.0, size=20)
    first = _fingerprint([(X[:10], y[:10], w[:10]), (X[10:], y[10:], w[10:])])
    order = rng.permutation(20)
    again = [
        (X[order[i : i + 7]], y[order[i : i + 7]], w[order[i : i + 7]]) for i in range(0, 20, 7)
    ]
    assert _fingerprint(again) == first  # the same rows, shuffled and chunked otherwise
    Xm, ym, wm = _moved(change, X, y, w)
    assert _fingerprint([(Xm, ym, wm)]) != first


@pytest.mark.parametrize("column", ["y", "x"])
def test_values_swapped_within_a_column_between_passes_are_refused(column) -> None:
    X, y = wampler_like()
    calls = []

    def chunks():  # type: ignore[no-untyped-def]
        calls.append(1)
        Xc, yc = X.copy(), y.copy()
        if len(calls) > 2:  # the third pass: the first refinement step
            if column == "y":
                yc[[0, 1]] = yc[[1, 0]]
            else:
                Xc[[3, 17], 2] = Xc[[17, 3], 2]
        return [(Xc[i : i + 5], yc[i : i + 5]) for i in range(0, len(yc), 5)]

    with pytest.raises(InputError, match="changed between passes"):
        LinearRegression(refine=True).fit_chunks(chunks)
    assert len(calls) == 3


@pytest.mark.parametrize("rewrite", ["one value", "y of two rows swapped"])
def test_cli_refuses_a_file_rewritten_between_the_fit_and_the_refinement_pass(
    rewrite, tmp_path, monkeypatch, capsys
) -> None:
    import torchlinreg.solvers.refine as refine

    X, y = wampler_like()
    path = tmp_path / "wampler.csv"
    header = "x1,x2,x3,x4,x5,y"

    def write(values: np.ndarray) -> None:
        np.savetxt(path, np.c_[X, values], delimiter=",", header=header, comments="", fmt="%.17g")

    write(y)
    original = refine.refine_from_chunks

    def rewrite_then_refine(*args, **kwargs):  # type: ignore[no-untyped-def]
        # After the first pass: one target value changes, or two rows' targets swap.
        write(y + np.eye(len(y))[5] if rewrite == "one value" else y[[1, 0, *range(2, len(y))]])
        return original(*args, **kwargs)

    monkeypatch.setattr(refine, "refine_from_chunks", rewrite_then_refine)
    out = tmp_path / "model.safetensors"
    code = main(["fit", str(path), "--target", "y", "-o", str(out), "--json"])
    err = capsys.readouterr().err
    assert code == 2
    assert "changed between passes" in err and "Traceback" not in err
    assert not out.exists()

    # Unchanged, the same command refines (the hook runs) and succeeds.
    refined = []

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        refined.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(refine, "refine_from_chunks", spy)
    write(y)
    assert main(["fit", str(path), "--target", "y", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert refined and result["n"] == len(y)
    coefficients = result["coefficients"]["y"]
    np.testing.assert_allclose(list(coefficients.values()), np.ones(6), rtol=1e-12)


def test_without_refinement_the_stream_is_read_once_and_the_warning_says_why() -> None:
    from torchlinreg import AccuracyWarning

    x = np.linspace(0, 1, 30)
    X = np.column_stack([x**k for k in range(1, 8)])  # κ ≈ 1e7: digits at risk
    y = X.sum(axis=1) + np.sin(40 * x)
    calls = []

    def chunks():  # type: ignore[no-untyped-def]
        calls.append(1)
        return [(X[i : i + 10], y[i : i + 10]) for i in range(0, 30, 10)]

    with pytest.warns(AccuracyWarning, match="could not be refined: refine=False was given"):
        model = LinearRegression(refine=False).fit_chunks(chunks)
    assert len(calls) == 1 and not model.refined_
    with pytest.warns(AccuracyWarning, match="one-shot iterator"):
        LinearRegression().fit_chunks(iter(chunks()))


def _offset_design(n: int = 200):  # type: ignore[no-untyped-def]
    """x ≈ 1e6 with x²: κ ≈ 2e6 once centred, 6e11 uncentred (κ²·ε ≫ 0.01), so passes
    over a stream cannot refine it, and with the noise digits are at risk."""
    rng = np.random.default_rng(3)
    x = 1e6 + rng.uniform(0.0, 10.0, n)
    X = np.column_stack([x, x * x])
    y = 3 + 2 * x - 1e-7 * x * x + rng.standard_normal(n)
    return X, y


def _scaled_condition(A: np.ndarray) -> float:
    """numpy's κ₂ of A with columns scaled by powers of two to 2-norms in [0.5, 1)."""
    return float(np.linalg.cond(A * 2.0 ** -np.frexp(np.linalg.norm(A, axis=0))[1]))


def _check_numbers(message: str, X: np.ndarray, model: LinearRegression) -> None:
    """Each number in the warning is the one its rule tests, from an independent oracle."""
    import re

    from torchlinreg.models._diagnostics import error_bound

    eps = float(np.finfo(np.float64).eps)
    n = len(X)
    centred = _scaled_condition(np.column_stack([np.ones(n), X - X.mean(0)]))
    uncentred = _scaled_condition(np.column_stack([np.ones(n), X]))
    head = re.search(
        r"worst-case relative error bound ε·\(κ \+ κ²·tan θ\) = (\S+), κ = (\S+) the "
        r"condition number of the centred",
        message,
    )
    rule = re.search(
        r"needs condition number² · ε < (\S+) for the uncentred design .* whose condition "
        r"number is (\S+) \(condition number² · ε = ([^)]+)\)",
        message,
    )
    assert head and rule, message
    # Printed to 1 and 2 significant digits: half a unit in the last place.
    estimate = error_bound(model.state_, model.condition_number_)
    assert float(head[1]) == pytest.approx(estimate, rel=0.5)
    assert float(head[2]) == pytest.approx(centred, rel=0.05)
    limit, kappa, product = float(rule[1]), float(rule[2]), float(rule[3])
    assert kappa == pytest.approx(uncentred, rel=0.05)
    assert product == pytest.approx(uncentred**2 * eps, rel=0.05)
    assert product >= limit  # the rule it states is the rule that failed
    assert "fit()" not in message  # true for the command line as for the library


def test_the_unrefined_warning_prints_the_numbers_its_rule_uses() -> None:
    from torchlinreg import AccuracyWarning

    X, y = _offset_design()
    chunks = [(X[i : i + 50], y[i : i + 50]) for i in range(0, len(y), 50)]
    with pytest.warns(AccuracyWarning) as caught:
        model = LinearRegression().fit_chunks(chunks)
    assert not model.refined_
    (message,) = [str(w.message) for w in caught if issubclass(w.category, AccuracyWarning)]
    _check_numbers(message, X, model)


def test_the_cli_warning_prints_the_numbers_its_rule_uses(tmp_path, capsys) -> None:
    X, y = _offset_design()
    path = tmp_path / "offset.csv"
    np.savetxt(path, np.c_[X, y], delimiter=",", header="x,x2,y", comments="", fmt="%.17g")
    assert main(["fit", str(path), "--target", "y"]) == 0
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if "accuracy at risk" in line]
    from torchlinreg import AccuracyWarning

    with pytest.warns(AccuracyWarning):
        model = LinearRegression().fit_chunks([(X, y)])  # the state the command fitted
    _check_numbers(line, X, model)
