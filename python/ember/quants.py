"""ggml quant formats: quantize float32 matrices to blocks and dequantize blocks back.

Type names are ggml's, case-insensitive: ``"q4_0"``, ``"Q6_K"``, ``"bf16"``. Quantizers for
F16/BF16/Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 reproduce ggml's reference rounding bit for bit; Q4_K, Q5_K
and Q6_K use ember's own scale search (error bounds in cpp/quants/quantize_k.cpp).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from . import _core

__all__ = ["quantize", "dequantize", "type_info", "TYPES", "QUANTIZE_TYPES", "DEQUANTIZE_TYPES", "row_bytes"]

TYPES: Tuple[str, ...] = tuple(_core.type_names())
QUANTIZE_TYPES: Tuple[str, ...] = tuple(t for t in TYPES if _core.type_info(t)["can_quantize"])
DEQUANTIZE_TYPES: Tuple[str, ...] = tuple(t for t in TYPES if _core.type_info(t)["can_dequantize"])


def _check_type_name(qtype: object) -> str:
    if not isinstance(qtype, str):
        raise TypeError(f"quant type must be a str such as 'q4_0', got {type(qtype).__name__}")
    if qtype.upper() not in TYPES:
        raise ValueError(f"unknown quant type '{qtype}'; known: {', '.join(t.lower() for t in TYPES)}")
    return qtype.upper()


def type_info(qtype: str) -> dict:
    """Block geometry and capabilities: name, id, block_size, type_size, can_quantize, can_dequantize."""
    return _core.type_info(_check_type_name(qtype))


def row_bytes(qtype: str, n: int) -> int:
    info = type_info(qtype)
    if n <= 0 or n % info["block_size"]:
        raise ValueError(f"{info['name']}: row length {n} is not a positive multiple of the block size {info['block_size']}")
    return n // info["block_size"] * info["type_size"]


def quantize(x: np.ndarray, qtype: str, *, isa: Optional[str] = None) -> np.ndarray:
    """Quantize a 2-D float array (rows, row_length) → uint8 array (rows, bytes per row).

    The row length must be a multiple of the type's block size; values must be finite (and
    within ±65504 for formats that store fp16 values or scales).
    """
    name = _check_type_name(qtype)
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"quantize expects a floating-point array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"quantize expects a 2-D array (rows, row_length), got shape {arr.shape}")
    if not type_info(name)["can_quantize"]:
        raise ValueError(f"quantizing to {name} is not supported; supported: {', '.join(t.lower() for t in QUANTIZE_TYPES)}")
    return _core.quantize(np.ascontiguousarray(arr, dtype=np.float32), name, isa)


def dequantize(data: "np.ndarray | bytes", qtype: str, shape: "int | Sequence[int]", *, isa: Optional[str] = None) -> np.ndarray:
    """Dequantize raw blocks to a float32 array of ``shape`` (numpy order, last dim = row length)."""
    name = _check_type_name(qtype)
    if isinstance(data, (bytes, bytearray, memoryview)):
        buf = np.frombuffer(data, dtype=np.uint8)
    elif isinstance(data, np.ndarray):
        buf = np.ascontiguousarray(data)
    else:
        raise TypeError(f"dequantize expects a numpy array or bytes, got {type(data).__name__}")
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not all(isinstance(d, (int, np.integer)) for d in dims):
        raise TypeError(f"shape must be a sequence of ints, got {shape!r}")
    if not type_info(name)["can_dequantize"]:
        raise ValueError(f"dequantizing {name} is not supported")
    return _core.dequantize(buf, name, [int(d) for d in dims], isa)
