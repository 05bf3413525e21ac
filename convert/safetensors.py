"""Reading safetensors checkpoints: one file or a sharded set, memory-mapped, tensor by tensor.

The format is an 8-byte little-endian header length, a JSON header mapping each tensor name
to its dtype, shape and [begin, end) byte range, then the raw data. Files come from outside,
so the header is validated (sizes, offsets, dtypes) before any tensor is touched, and tensors
are only read when asked for: a model larger than RAM converts.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np

# safetensors dtype name -> (numpy dtype of the stored bytes, item size)
_DTYPES: Dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # decoded below: bfloat16 is the top half of a float32
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
_MAX_HEADER = 100 * 1024 * 1024  # the reference implementation refuses larger headers too


class CheckpointError(ValueError):
    """A checkpoint folder or safetensors file is missing, truncated or malformed."""


@dataclass(frozen=True)
class TensorRef:
    name: str
    dtype: str               # safetensors name: "BF16", "F32", ...
    shape: Tuple[int, ...]
    path: Path
    begin: int               # absolute byte offset in the file
    end: int


def _read_header(path: Path) -> List[TensorRef]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: truncated safetensors file ({size} bytes, no header)")
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER or 8 + n > size:
            raise CheckpointError(f"{path}: header length {n} does not fit in the {size}-byte file (truncated?)")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: header is not a JSON object")
    data_start = 8 + n
    refs = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path}: tensor '{name}': malformed header entry {info!r}") from None
        if dtype not in _DTYPES:
            raise CheckpointError(f"{path}: tensor '{name}': unsupported dtype {dtype} (supported: {', '.join(_DTYPES)})")
        if not all(isinstance(d, int) and d >= 0 for d in shape) or not isinstance(begin, int) or not isinstance(end, int):
            raise CheckpointError(f"{path}: tensor '{name}': bad shape or offsets {info!r}")
        nbytes = int(np.prod(shape, dtype=np.float64)) * _DTYPES[dtype].itemsize
        if not 0 <= begin <= end or end - begin != nbytes:
            raise CheckpointError(f"{path}: tensor '{name}': offsets [{begin}, {end}) do not hold {shape} of {dtype}")
        if data_start + end > size:
            raise CheckpointError(f"{path}: tensor '{name}': data ends at {data_start + end}, past the end of the "
                                  f"{size}-byte file (truncated?)")
        refs.append(TensorRef(name, dtype, shape, path, data_start + begin, data_start + end))
    return refs


class Checkpoint:
    """All tensors of a model folder: `model.safetensors`, or shards listed by the index file."""

    def __init__(self, model_dir: Path):
        model_dir = Path(model_dir)
        index = model_dir / "model.safetensors.index.json"
        if index.exists():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise CheckpointError(f"{index}: not a valid safetensors index ({e})") from None
            files = sorted({model_dir / f for f in weight_map.values()})
            missing = [str(f) for f in files if not f.exists()]
            if missing:
                raise CheckpointError(f"{index}: shards missing: {', '.join(missing)}")
        else:
            files = sorted(model_dir.glob("*.safetensors"))
        if not files:
            raise CheckpointError(f"{model_dir}: no *.safetensors files (only safetensors checkpoints are supported)")
        self.tensors: Dict[str, TensorRef] = {}
        for f in files:
            for ref in _read_header(f):
                if ref.name in self.tensors:
                    raise CheckpointError(f"{f}: tensor '{ref.name}' also appears in {self.tensors[ref.name].path}")
                self.tensors[ref.name] = ref

    def __iter__(self) -> Iterator[TensorRef]:
        return iter(self.tensors.values())

    def __len__(self) -> int:
        return len(self.tensors)

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def load(self, name: str) -> np.ndarray:
        """The tensor as float32 (floating types) or its integer type, read through a memory map."""
        ref = self.tensors[name]
        stored = _DTYPES[ref.dtype]
        count = (ref.end - ref.begin) // stored.itemsize
        if count == 0:
            return np.zeros(ref.shape, dtype=np.float32)
        data = np.memmap(ref.path, dtype=stored, mode="r", offset=ref.begin, shape=(count,))
        if ref.dtype == "BF16":
            out = (data.astype(np.uint32) << 16).view(np.float32)
        elif stored.kind == "f":
            out = data.astype(np.float32)
        else:
            out = np.array(data)
        return out.reshape(ref.shape)
