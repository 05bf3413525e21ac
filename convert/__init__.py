"""Hugging Face checkpoints (config.json + safetensors + tokenizer) → GGUF.

Installed as ``ember.convert``; ``ember convert HF_DIR -o out.gguf --outtype f16`` calls
:func:`convert`. The output follows llama.cpp's conventions (key names, tensor names, Q/K row
order), so it loads in ember and in llama.cpp alike.

The file is written in two passes over a plan made up front: first the header, metadata and
tensor table (shapes and types are known before any data is read), then the tensors one at a
time, each read through a memory map, transformed, quantized and written before the next is
touched — peak memory is about one tensor, whatever the model's size. Output goes to a
temporary name and is renamed only when complete: a failure leaves no partial file behind.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import gguf
import numpy as np

from .arch import Architecture, ConfigError, architecture_for
from .safetensors import Checkpoint, CheckpointError

__all__ = ["convert", "OUTTYPES", "ConvertResult", "ConfigError", "CheckpointError"]

GQ = gguf.GGMLQuantizationType
FT = gguf.LlamaFileType
# --outtype -> (ggml type of the weight matrices, general.file_type)
OUTTYPES: Dict[str, Tuple[GQ, int]] = {
    "f32": (GQ.F32, FT.ALL_F32), "f16": (GQ.F16, FT.MOSTLY_F16), "bf16": (GQ.BF16, FT.MOSTLY_BF16),
    "q8_0": (GQ.Q8_0, FT.MOSTLY_Q8_0), "q4_0": (GQ.Q4_0, FT.MOSTLY_Q4_0), "q4_1": (GQ.Q4_1, FT.MOSTLY_Q4_1),
}


@dataclass
class PlannedTensor:
    gguf_name: str
    shape: Tuple[int, ...]        # numpy order
    qtype: GQ
    source: Optional[str] = None  # checkpoint tensor name, or None for a computed tensor
    data: Optional[np.ndarray] = None

    @property
    def nbytes(self) -> int:
        block, size = gguf.GGML_QUANT_SIZES[self.qtype]
        n = int(np.prod(self.shape, dtype=np.int64))
        return n // block * size


@dataclass
class ConvertResult:
    path: Path
    architecture: str
    n_tensors: int
    types: Dict[str, int] = field(default_factory=dict)
    nbytes: int = 0
    seconds: float = 0.0


def tensor_type(shape: Tuple[int, ...], outtype: str) -> GQ:
    """Vectors (norms, biases, RoPE factors) stay F32 as in llama.cpp; matrices take the
    requested type, falling back to F16 when the row length is not a whole number of blocks."""
    want = OUTTYPES[outtype][0]
    if len(shape) < 2 or want == GQ.F32:
        return GQ.F32
    if shape[-1] % gguf.GGML_QUANT_SIZES[want][0] != 0:
        return GQ.F16
    return want


def _encode(data: np.ndarray, qtype: GQ) -> np.ndarray:
    from .. import quants  # the C++ quantizers (bit-exact with ggml's reference)

    data = np.ascontiguousarray(data, dtype=np.float32)
    if qtype == GQ.F32:
        return data
    if qtype == GQ.F16:
        return data.astype(np.float16)
    rows = data.reshape(-1, data.shape[-1])
    return quants.quantize(rows, qtype.name)


def _plan(arch: Architecture, ckpt: Checkpoint, outtype: str) -> List[PlannedTensor]:
    plan: List[PlannedTensor] = []
    seen: Dict[str, str] = {}
    for ref in ckpt:
        if arch.skip(ref.name):
            continue
        name = arch.gguf_name(ref.name)
        if name in seen:
            raise ConfigError(f"tensors '{seen[name]}' and '{ref.name}' both map to '{name}'")
        seen[name] = ref.name
        if ref.dtype not in ("F32", "F16", "BF16", "F64"):
            raise CheckpointError(f"tensor '{ref.name}' has dtype {ref.dtype}; only floating-point weights convert")
        want = arch.expected_shape(name)
        if want is not None and tuple(ref.shape) != want:
            raise ConfigError(f"tensor '{ref.name}' has shape {list(ref.shape)}, but config.json implies {list(want)}")
        plan.append(PlannedTensor(name, tuple(ref.shape), tensor_type(tuple(ref.shape), outtype), source=ref.name))
    for name, data in arch.extra_tensors():
        plan.append(PlannedTensor(name, data.shape, GQ.F32, data=data))
    if "token_embd.weight" not in seen:
        raise ConfigError("the checkpoint has no token embedding (model.embed_tokens.weight)")
    for i in range(arch.n_layer):
        if f"blk.{i}.attn_q.weight" not in seen:
            raise ConfigError(f"the checkpoint has no weights for layer {i} (config.json says {arch.n_layer} layers)")
    return plan


def _model_name(model_dir: Path, config: dict) -> str:
    name = config.get("_name_or_path") or ""
    return Path(name).name or model_dir.resolve().name


class _Progress:
    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.done, self.t0 = total, enabled, 0, time.monotonic()
        self.tty = enabled and sys.stderr.isatty()

    def step(self, t: PlannedTensor) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 24
        filled = width * self.done // max(self.total, 1)
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {self.done:>4}/{self.total} "
                f"{t.gguf_name:<36} {t.qtype.name:<5} {list(t.shape)}")
        if self.tty:
            sys.stderr.write("\r\033[K" + line + ("\n" if self.done == self.total else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def convert(model_dir: "str | os.PathLike[str]", outfile: "str | os.PathLike[str]", outtype: str = "f16", *,
            progress: bool = True) -> ConvertResult:
    """Convert a Hugging Face model folder to a GGUF file. Raises ValueError subclasses with a
    message naming the file and the problem; never leaves a partial output file."""
    t0 = time.monotonic()
    model_dir, outfile = Path(model_dir), Path(outfile)
    if outtype not in OUTTYPES:
        raise ValueError(f"unknown outtype '{outtype}'; choose from {', '.join(OUTTYPES)}")
    if not model_dir.is_dir():
        raise CheckpointError(f"{model_dir}: not a directory")
    cfg_path = model_dir / "config.json"
    if not cfg_path.exists():
        raise CheckpointError(f"{model_dir}: no config.json (is this a Hugging Face model folder?)")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{cfg_path}: not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{cfg_path}: not a JSON object")

    from .vocab import add_vocab, load_vocab

    arch = architecture_for(config)
    ckpt = Checkpoint(model_dir)
    plan = _plan(arch, ckpt, outtype)
    vocab = load_vocab(model_dir, arch.n_vocab)

    if not outfile.parent.is_dir():
        raise ValueError(f"{outfile}: the output directory does not exist")
    fd, tmp_name = tempfile.mkstemp(dir=outfile.parent, prefix=f".{outfile.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        w = gguf.GGUFWriter(str(tmp), gguf.MODEL_ARCH_NAMES[arch.gguf_arch])
        w.add_type(gguf.GGUFType.MODEL)
        w.add_name(_model_name(model_dir, config))
        arch.write_hparams(w)
        w.add_file_type(int(OUTTYPES[outtype][1]))
        if OUTTYPES[outtype][0] not in (GQ.F32, GQ.F16, GQ.BF16):
            w.add_quantization_version(gguf.GGML_QUANT_VERSION)
        add_vocab(w, vocab)
        for t in plan:
            if t.qtype in (GQ.F32, GQ.F16):
                w.add_tensor_info(t.gguf_name, t.shape, np.dtype(np.float32 if t.qtype == GQ.F32 else np.float16), t.nbytes)
            else:
                byte_shape = (*t.shape[:-1], t.nbytes // max(1, int(np.prod(t.shape[:-1], dtype=np.int64))))
                w.add_tensor_info(t.gguf_name, byte_shape, np.dtype(np.uint8), t.nbytes, raw_dtype=t.qtype)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        bar = _Progress(len(plan), progress)
        for t in plan:
            data = t.data if t.source is None else arch.transform(t.gguf_name, ckpt.load(t.source))
            w.write_tensor_data(_encode(data, t.qtype))
            bar.step(t)
        w.close()
        os.chmod(tmp, 0o644)
        os.replace(tmp, outfile)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    result = ConvertResult(outfile, gguf.MODEL_ARCH_NAMES[arch.gguf_arch], len(plan),
                           dict(Counter(t.qtype.name for t in plan)), outfile.stat().st_size, time.monotonic() - t0)
    if progress:
        types = ", ".join(f"{n} {k}" for k, n in sorted(result.types.items()))
        print(f"ember convert: wrote {outfile} ({result.architecture}, {result.n_tensors} tensors: {types}; "
              f"{result.nbytes / 2**20:.1f} MiB) in {result.seconds:.1f} s", file=sys.stderr)
    return result
