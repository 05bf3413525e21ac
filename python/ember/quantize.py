"""Quantizing a GGUF model: ``ember quantize IN OUT TYPE`` as a function.

The work is done by the C++ core (cpp/quantize.cpp) without the GIL: each tensor the rules
choose to quantize is dequantized to float32 and re-quantized with ember's kernels, on
``n_threads`` threads; everything else is copied byte for byte. TYPE is a single ggml type for
every quantizable tensor (``"q4_0"``, ``"q6_k"``, ``"f16"``, ...) or one of llama.cpp's mixes
(``"q4_k_m"``, ``"q5_k_m"``), whose per-tensor choices are in cpp/quantize_rules.cpp.

The output appears only when complete: it is written under a temporary name next to OUT and
renamed at the end, and removed on any error (or Ctrl-C), so a failed run leaves nothing behind.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Tuple

from . import _core

__all__ = ["quantize_model", "QUANTIZE_MODEL_TYPES"]

#: The TYPE values quantize_model accepts (case-insensitive).
QUANTIZE_MODEL_TYPES: Tuple[str, ...] = tuple(_core.quantize_model_types())


def _path(value: object, what: str) -> bytes:
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(f"{what} must be a path (str or os.PathLike), got {type(value).__name__}")
    path = os.fsencode(value)
    if not path:
        raise ValueError(f"{what} path is empty")
    return path


def quantize_model(
    input: "str | os.PathLike[str]",
    output: "str | os.PathLike[str]",
    qtype: str,
    *,
    n_threads: int = 0,
    allow_requantize: bool = False,
    progress: bool = True,
) -> Dict[str, Any]:
    """Write ``output``: the GGUF model ``input`` with its weights quantized to ``qtype``.

    ``n_threads=0`` uses every CPU. Tensors that are already quantized are only requantized to
    fewer bits per weight when ``allow_requantize`` is true; a tensor already in its target type
    is copied unchanged. ``progress`` prints one line per tensor and a summary to ``sys.stderr``.

    Returns statistics: ``type``, ``file_type`` (the ``general.file_type`` written, llama.cpp's
    numbering) and ``file_type_name``, ``n_tensors``, ``n_converted``, ``n_copied``,
    ``n_fallback``, ``tensor_types`` (output type name -> count), ``input_bytes``,
    ``output_bytes``, ``seconds``, ``n_threads``.

    Raises ValueError for an unknown ``qtype``, an output that is the input, or a refused
    requantization; :class:`ember.GGUFError` (a ValueError; an OSError too when the file cannot
    be opened) for a bad input; OSError when the output cannot be written.
    """
    src = _path(input, "input")
    dst = _path(output, "output")
    if not isinstance(qtype, str):
        raise TypeError(f"qtype must be a str such as 'q4_k_m', got {type(qtype).__name__}")
    if qtype.lower() not in QUANTIZE_MODEL_TYPES:
        raise ValueError(f"unknown quantization type '{qtype}' (expected one of: {', '.join(QUANTIZE_MODEL_TYPES)})")
    if isinstance(n_threads, bool) or not isinstance(n_threads, int):
        raise TypeError(f"n_threads must be an int, got {type(n_threads).__name__}")
    if n_threads < 0 or n_threads > 4096:
        raise ValueError(f"n_threads must be between 0 (one per CPU) and 4096, got {n_threads}")
    for name, flag in (("allow_requantize", allow_requantize), ("progress", progress)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
    return _core.quantize_model(src, dst, qtype.lower(), n_threads, allow_requantize, progress)
