"""Inputs for the command-line fuzzer (tests/test_fuzz.py): data files (CSV, Parquet,
.npy) and model files, generated well-formed, then mutated (bytes flipped, truncated,
odd delimiters) or crafted (NaN/inf/huge values, control characters and duplicates in
names, wrong types, nested Parquet columns, int64 beyond 2^53, model metadata of the
wrong types or shapes with a recomputed checksum).

Every generator takes a ``numpy.random.Generator``: a case is reproduced from its seed.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

NAMES = ["x1", "x2", "g", "y", "id", "w"]  # the base data set's columns
ODD_NAMES = ["", " ", "a\nb", "e\x1b[31m", "größe", "価格", "intercept", "a,b", '"q"', "x1",
             "\u202eevil", "NA", "tab\there", "y"]  # fmt: skip
CELLS = ["", "NA", "nan", "NaN", "inf", "-inf", "1e400", "-1e308", "1e308", "abc", "0x10",
         "1,5", '"', '""', "null", "TRUE", "9007199254740993", "\x00", "é", " 3 ", "1e-320"]  # fmt: skip


def pick(rng: np.random.Generator, items: list[Any]) -> Any:
    return items[int(rng.integers(len(items)))]


def chance(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def base_columns(rng: np.random.Generator, n: int) -> dict[str, list[Any]]:
    """The well-formed data set models are fitted on: y ~ x1 + x2 + g, an id and weights."""
    x1 = rng.normal(size=n)
    x2 = rng.uniform(-3, 3, size=n)
    g = rng.choice(["red", "green", "blue"], size=n)
    y = 1.5 * x1 - 2 * x2 + (g == "red") + 0.3 * rng.normal(size=n)
    return {
        "x1": x1.tolist(),
        "x2": x2.tolist(),
        "g": g.tolist(),
        "y": y.tolist(),
        "id": [f"r{i:04d}" for i in range(n)],
        "w": rng.uniform(0.1, 2, size=n).tolist(),
    }


def crafted_columns(rng: np.random.Generator) -> dict[str, list[Any]]:
    """The base data set with its names and cells disturbed."""
    n = int(pick(rng, [0, 1, 2, 3, 5, 8, 30, 200]))
    cols = base_columns(rng, n)
    names = list(cols)
    if chance(rng, 0.3):  # rename some columns oddly (duplicates, empty, control chars)
        for _ in range(int(rng.integers(1, 3))):
            names[int(rng.integers(len(names)))] = pick(rng, ODD_NAMES)
    values = list(cols.values())
    if chance(rng, 0.5) and n:  # odd cells here and there
        for _ in range(int(rng.integers(1, 4))):
            j = int(rng.integers(len(values)))
            values[j][int(rng.integers(n))] = pick(rng, CELLS)
    if chance(rng, 0.15):  # a column of one repeated value, or many distinct levels
        j = int(rng.integers(len(values)))
        values[j] = (
            [pick(rng, [1.0, "a", 2**60, ""])] * n
            if chance(rng, 0.5)
            else [f"level{i}" for i in range(n)]
        )
    if chance(rng, 0.1):  # an extra constant or duplicated feature
        names.append(pick(rng, ["c", "x1copy"]))
        values.append([1.0] * n if names[-1] == "c" else list(values[0]))
    return (
        dict(zip(names, values, strict=True))
        if len(set(names)) == len(names)
        else {"__pairs__": list(zip(names, values, strict=True))}
    )


def _pairs(cols: dict[str, list[Any]]) -> list[tuple[str, list[Any]]]:
    return cols["__pairs__"] if "__pairs__" in cols else list(cols.items())


def column_names(cols: dict[str, list[Any]]) -> list[str]:
    return [name for name, _ in _pairs(cols)]


def _cell(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def write_csv(
    rng: np.random.Generator, cols: dict[str, list[Any]], directory: Path
) -> tuple[Path, str]:
    """The file, and its delimiter (for the command line's --delimiter)."""
    delimiter = pick(rng, [",", ",", ",", ";", "\t", "|"])
    ext = pick(rng, [".csv", ".csv", ".tsv", ".txt", ".csv.gz"])
    if ext.startswith(".tsv"):
        delimiter = "\t"
    pairs = _pairs(cols)
    lines = [delimiter.join(_quote(n, delimiter) for n, _ in pairs)]
    n = len(pairs[0][1]) if pairs else 0
    for i in range(n):
        lines.append(delimiter.join(_quote(_cell(v[i]), delimiter) for _, v in pairs))
    eol = "\r\n" if chance(rng, 0.1) else "\n"
    text = eol.join(lines) + (eol if chance(rng, 0.9) else "")
    data = (("\ufeff" if chance(rng, 0.05) else "") + text).encode("utf-8")
    data = mutate(rng, data, 0.25)
    path = directory / f"data{ext}"
    path.write_bytes(gzip.compress(data) if ext.endswith(".gz") else data)
    return path, delimiter


def _quote(text: str, delimiter: str) -> str:
    if any(ch in text for ch in (delimiter, '"', "\n", "\r")):
        return '"' + text.replace('"', '""') + '"'
    return text


def mutate(rng: np.random.Generator, data: bytes, p: float) -> bytes:
    """With probability ``p``: flip bytes, truncate, or insert junk."""
    if not data or not chance(rng, p):
        return data
    b = bytearray(data)
    what = pick(rng, ["flip", "flip", "truncate", "insert"])
    if what == "flip":
        for _ in range(int(rng.integers(1, 6))):
            b[int(rng.integers(len(b)))] = int(rng.integers(256))
    elif what == "truncate":
        b = b[: int(rng.integers(len(b)))]
    else:
        at = int(rng.integers(len(b) + 1))
        b[at:at] = bytes(rng.integers(0, 256, size=int(rng.integers(1, 9))).tolist())
    return bytes(b)


def write_parquet(rng: np.random.Generator, cols: dict[str, list[Any]], directory: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays, names = [], []
    for name, values in _pairs(cols):
        arrays.append(_arrow_column(rng, name, values))
        names.append(name)
    if chance(rng, 0.2) and arrays:  # a nested or exotic column
        n = len(arrays[0])
        kind = pick(rng, ["list", "struct", "int64", "dict", "null", "decimal"])
        extra = {
            "list": lambda: pa.array([[i, i + 1] for i in range(n)]),
            "struct": lambda: pa.array([{"a": i, "b": str(i)} for i in range(n)]),
            "int64": lambda: pa.array([2**53 + 1 + i for i in range(n)], pa.int64()),
            "dict": lambda: pa.array([pick(rng, ["u", "v"]) for _ in range(n)]).dictionary_encode(),
            "null": lambda: pa.nulls(n),
            "decimal": lambda: pa.array([i for i in range(n)], pa.decimal128(38, 2)),
        }[kind]()
        name = pick(rng, ["x1", "g", "id", "nested", "y"])
        if name in names:  # in place of that column: the command meets it by name
            arrays[names.index(name)] = extra
        else:
            arrays.append(extra)
            names.append(name)
    table = pa.Table.from_arrays(arrays, names=names)
    if chance(rng, 0.15):  # a directory of parts, the second maybe of another schema
        path = directory / "parts"
        path.mkdir()
        pq.write_table(table, path / "part-0.parquet")
        other = table.remove_column(0) if chance(rng, 0.5) else table
        pq.write_table(other, path / "part-1.parquet")
        return path
    path = directory / "data.parquet"
    pq.write_table(table, path)
    path.write_bytes(mutate(rng, path.read_bytes(), 0.15))
    return path


def _arrow_column(rng: np.random.Generator, name: str, values: list[Any]) -> Any:
    import pyarrow as pa

    if all(isinstance(v, float) for v in values):
        if chance(rng, 0.1):
            return pa.array(np.asarray(values, np.float32))
        return pa.array(values, pa.float64())
    if all(isinstance(v, int) for v in values):
        return pa.array(values, pa.int64())
    return pa.array([None if v == "" else str(v) for v in values], pa.string())


def write_npy(rng: np.random.Generator, directory: Path) -> Path:
    n = int(pick(rng, [0, 1, 3, 10, 50]))
    k = int(pick(rng, [0, 1, 2, 4]))
    dtype = pick(rng, ["<f8", ">f8", "<f4", "<i8", "|b1", "<c16", "<U3", "<f2"])
    a = rng.normal(size=(n, k)) * 10
    if chance(rng, 0.2) and a.size:
        a.flat[int(rng.integers(a.size))] = pick(rng, [np.nan, np.inf, 1e308])
    if chance(rng, 0.1):
        a = a.reshape(-1)  # 1-D
    path = directory / "data.npy"
    with np.errstate(invalid="ignore", over="ignore"):
        a = a.astype(dtype)
    np.save(path, a)
    raw = path.read_bytes()
    if chance(rng, 0.3):  # damage the header (its first 128 bytes) or the body
        b = bytearray(raw)
        for _ in range(int(rng.integers(1, 4))):
            b[int(rng.integers(min(len(b), 128)))] = int(rng.integers(256))
        raw = bytes(b)
    path.write_bytes(mutate(rng, raw, 0.1))
    return path


# Model files ---------------------------------------------------------------------------


def craft_model(rng: np.random.Generator, source: Path, directory: Path) -> Path:
    """A copy of a good model file: byte-mutated, or with its metadata or tensors changed
    and the checksum recomputed (so only the validation can refuse it)."""
    path = directory / "model.safetensors"
    raw = source.read_bytes()
    if chance(rng, 0.4):
        path.write_bytes(mutate(rng, raw, 1.0))
        return path
    if chance(rng, 0.1):
        return _foreign_dtype(rng, source, path)
    from safetensors import safe_open
    from safetensors.numpy import save

    from torchlinreg.persistence import _digest

    with safe_open(str(source), framework="numpy") as f:
        header = dict(f.metadata())
        arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    meta = json.loads(header["model"])
    if chance(rng, 0.7):
        meta = _mutate_json(rng, meta, depth=0)
    else:
        name = pick(rng, sorted(arrays))
        a = arrays[name]
        arrays[name] = pick(rng, [
            lambda: a.astype(np.float32),
            lambda: a.astype(np.int64),
            lambda: a.astype(np.float16),
            lambda: a.reshape(-1),
            lambda: np.full_like(a, np.nan),
            lambda: np.concatenate([a, a]) if a.ndim else a,
            lambda: a[..., :0] if a.ndim else a,
        ])()  # fmt: skip
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # to write a 5,000-digit integer
    try:
        model = json.dumps(meta)
    except (ValueError, RecursionError):
        model = header["model"]
    finally:
        sys.set_int_max_str_digits(limit)
    model = model.replace(json.dumps(_DEEP), "[" * 5000 + "0" + "]" * 5000)
    header["model"] = model
    with contextlib.suppress(ValueError, RecursionError):  # unreadable anyway
        header["sha256"] = _digest(json.loads(model), arrays, int(header["format_version"]))
    path.write_bytes(save(arrays, metadata=header))
    return path


def _foreign_dtype(rng: np.random.Generator, source: Path, path: Path) -> Path:
    """The same file with one tensor stored as bfloat16 or float8 (numpy has neither)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save

    with safe_open(str(source), framework="pt") as f:
        header = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    name = pick(rng, sorted(tensors))
    tensors[name] = tensors[name].to(pick(rng, [torch.bfloat16, torch.float8_e4m3fn]))
    path.write_bytes(save(tensors, metadata=header))
    return path


_DEEP = "<deeply nested>"
_ODD_VALUES: list[Any] = [None, True, -1, 0, 10**5000, 1e308, float("inf"), float("nan"),
                          "", "x", [], {}, [1, 2], {"a": 1}, 2**63, -(2**63) - 1, 0.5]  # fmt: skip


def _mutate_json(rng: np.random.Generator, value: Any, depth: int) -> Any:
    """Replace, drop or nest one node somewhere in a JSON value."""
    if isinstance(value, dict) and value and chance(rng, 0.8):
        key = pick(rng, sorted(value))
        value = dict(value)
        if chance(rng, 0.1):
            del value[key]
        else:
            value[key] = _mutate_json(rng, value[key], depth + 1)
        return value
    if isinstance(value, list) and value and chance(rng, 0.7):
        value = list(value)
        i = int(rng.integers(len(value)))
        if chance(rng, 0.15):
            value.append(value[i])  # one too many
        else:
            value[i] = _mutate_json(rng, value[i], depth + 1)
        return value
    if chance(rng, 0.03):
        return _DEEP  # replaced by 5,000 nested lists once the metadata is text
    return pick(rng, _ODD_VALUES)
