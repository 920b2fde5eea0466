"""Minimal safetensors reader/writer over numpy memory maps.

The format is an 8-byte little-endian header length, a JSON header mapping tensor names to
dtype, shape and byte offsets, then raw little-endian data. Reading through `np.memmap` lets the
loader slice out just the shard a device needs (a 70B model is never materialized on one host),
and bf16 is handled through `ml_dtypes`, which the `safetensors` numpy backend does not support.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Iterable, Mapping

import ml_dtypes
import numpy as np

DTYPES = {
    "F64": np.dtype(np.float64), "F32": np.dtype(np.float32), "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16), "I64": np.dtype(np.int64), "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16), "I8": np.dtype(np.int8), "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}
_NAMES = {v: k for k, v in DTYPES.items()}


class SafetensorsError(ValueError):
    """A safetensors file that cannot be read as written."""


def read_tensors(file: str | os.PathLike) -> dict[str, np.ndarray]:
    """Memory-mapped, read-only arrays for every tensor in `file` (no data is read yet)."""
    file = os.fspath(file)
    with open(file, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise SafetensorsError(f"{file}: too short to be a safetensors file")
        (header_len,) = struct.unpack("<Q", raw)
        if header_len > 100_000_000:
            raise SafetensorsError(f"{file}: implausible header length {header_len}")
        try:
            header = json.loads(f.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise SafetensorsError(f"{file}: corrupt header: {e}") from None
    header.pop("__metadata__", None)
    data_start = 8 + header_len
    size = os.path.getsize(file)
    whole = np.memmap(file, dtype=np.uint8, mode="r") if size > data_start else None
    out = {}
    for name, info in header.items():
        if info["dtype"] not in DTYPES:
            raise SafetensorsError(f"{file}: tensor {name!r} has unsupported dtype {info['dtype']}")
        dtype = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        if end - begin != int(np.prod(shape)) * dtype.itemsize or data_start + end > size:
            raise SafetensorsError(f"{file}: tensor {name!r} has offsets {begin}..{end} that do not "
                                   f"match shape {shape} {info['dtype']} or the file size")
        if whole is None or end == begin:
            out[name] = np.zeros(shape, dtype)
        else:
            out[name] = whole[data_start + begin: data_start + end].view(dtype).reshape(shape)
    return out


def write_tensors(file: str | os.PathLike, tensors: Mapping[str, np.ndarray],
                  metadata: Mapping[str, str] | None = None) -> None:
    """Write `tensors` to `file` (atomically: written to a temporary name, then renamed)."""
    header: dict[str, object] = {"__metadata__": dict(metadata or {"format": "pt"})}
    offset = 0
    arrays = []
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        if array.dtype not in _NAMES:
            raise SafetensorsError(f"tensor {name!r}: dtype {array.dtype} cannot be stored")
        header[name] = {"dtype": _NAMES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        arrays.append(array)
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # align data to 8 bytes
    tmp = os.fspath(file) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for array in arrays:
            f.write(array.tobytes())
    os.replace(tmp, file)


def index_files(directory: str | os.PathLike) -> list[str]:
    """The safetensors files of a HF checkpoint directory (sharded via the index, or single)."""
    directory = os.fspath(directory)
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f).get("weight_map", {})
        files = sorted(set(weight_map.values()))
        missing = [f for f in files if not os.path.exists(os.path.join(directory, f))]
        if missing:
            raise FileNotFoundError(f"{index} lists files that do not exist: {missing}")
        return [os.path.join(directory, f) for f in files]
    single = os.path.join(directory, "model.safetensors")
    if os.path.exists(single):
        return [single]
    found = sorted(f for f in os.listdir(directory) if f.endswith(".safetensors"))
    if not found:
        raise FileNotFoundError(f"{directory}: no model.safetensors, "
                                f"model.safetensors.index.json or *.safetensors files")
    return [os.path.join(directory, f) for f in found]


def open_checkpoint(files: Iterable[str]) -> dict[str, tuple[np.ndarray, str]]:
    """Name -> (memory-mapped array, file it came from) over all files of a checkpoint."""
    tensors: dict[str, tuple[np.ndarray, str]] = {}
    for file in files:
        for name, array in read_tensors(file).items():
            tensors[name] = (array, file)
    return tensors
