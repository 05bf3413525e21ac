"""The GGUF reader treats files as untrusted: every malformed input raises ember.GGUFError.

Two parts:

* Readable unit tests: one hand-built bad file per problem, checking that GGUFError is raised and
  that the message names the file and the problem.
* A deterministic fuzz run: small valid seed files are written with gguf-py's GGUFWriter, a pure
  Python layout walker records the offset of every field in them, and ~3,800 mutated copies
  (truncations, bit flips, absurd counts/dims/types/offsets, duplicates, bad alignment, bad
  magic/version, spliced records, ...) are parsed by ONE worker subprocess. The worker prints one
  result line per file; a worker that dies or stops making progress is blamed on the first file
  without a result, and restarted after it. Any result other than `ok` / `GGUFError` (a crash, a
  hang, another exception type, a GGUFError whose message does not name the file) fails the test.
"""

from __future__ import annotations

import os
import queue
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

import ember  # noqa: E402
from ember.errors import GGUFError, GGUFFileNotFoundError  # noqa: E402
from conftest import finish_gguf  # noqa: E402

# ------------------------------------------------------------------------------------------------
# GGUF constants (value types and the few ggml tensor types the seeds use)
# ------------------------------------------------------------------------------------------------

UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
SCALAR_FMT = {UINT8: "B", INT8: "b", UINT16: "H", INT16: "h", UINT32: "I", INT32: "i", FLOAT32: "f",
              BOOL: "B", UINT64: "Q", INT64: "q", FLOAT64: "d"}

F32, F16, Q4_0, Q8_0, Q4_K, Q6_K = 0, 1, 2, 8, 12, 14
# ggml type id -> (block size, bytes per block), for the types the hand-built files use
TYPE_GEOMETRY = {F32: (1, 4), F16: (1, 2), Q4_0: (32, 18), Q8_0: (32, 34), Q4_K: (256, 144), Q6_K: (256, 210)}
TYPE_INFO = {info["id"]: info for info in map(ember.quants.type_info, ember.quants.TYPES)}  # every type ember knows
KNOWN_TYPE_IDS = sorted(TYPE_INFO)
UNKNOWN_TYPE_IDS = [4, 5, 31, 32, 33, 36, 37, 38, 40, 41, 100, 1 << 16, 1 << 31, (1 << 32) - 1]

U64_MAX = (1 << 64) - 1


# ------------------------------------------------------------------------------------------------
# A tiny raw GGUF encoder, for files GGUFWriter refuses to write (duplicates, bad counts, ...)
# ------------------------------------------------------------------------------------------------

def enc_str(s) -> bytes:
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def enc_value(vtype: int, value) -> bytes:
    """Encode a value without its type tag. Arrays are given as (elem_type, [items])."""
    if vtype == STRING:
        return enc_str(value)
    if vtype == ARRAY:
        elem_type, items = value
        return struct.pack("<IQ", elem_type, len(items)) + b"".join(enc_value(elem_type, v) for v in items)
    return struct.pack("<" + SCALAR_FMT[vtype], value)


def enc_kv(key, vtype: int, value) -> bytes:
    return enc_str(key) + struct.pack("<I", vtype) + enc_value(vtype, value)


@dataclass
class RawTensor:
    name: str
    ne: List[int]                 # ggml order: ne[0] is the row length
    type: int = F32
    offset: Optional[int] = None  # relative to the data section; None = next aligned slot

    def nbytes(self) -> int:
        block, size = TYPE_GEOMETRY.get(self.type, (1, 4))
        n = 1
        for d in self.ne:
            n *= d
        return n // block * size


def build_gguf(kvs=(), tensors=(), *, version=3, magic=b"GGUF", alignment=32, n_tensors=None, n_kv=None,
               data_size=None) -> bytes:
    """A GGUF file from (key, type, value) triples and RawTensors; counts can be overridden."""
    out = bytearray(magic + struct.pack("<I", version))
    out += struct.pack("<QQ", len(tensors) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv)
    for kv in kvs:
        out += enc_kv(*kv)
    end, next_free = 0, 0
    for t in tensors:
        off = next_free if t.offset is None else t.offset
        out += enc_str(t.name) + struct.pack("<I", len(t.ne)) + b"".join(struct.pack("<Q", d) for d in t.ne)
        out += struct.pack("<IQ", t.type, off)
        end = max(end, off + t.nbytes())
        next_free = -(-(off + t.nbytes()) // alignment) * alignment
    if tensors:
        out += bytes(-len(out) % alignment)
        out += bytes(end if data_size is None else data_size)
    return bytes(out)


# ------------------------------------------------------------------------------------------------
# Layout walker: the offset of every field of a (valid) GGUF file
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    off: int
    size: int
    kind: str  # magic version n_tensors n_kv key_len key value_type str_len str arr_elem_type arr_len
    #            scalar n_dims dim tensor_type tensor_offset tensor_name_len tensor_name


@dataclass
class KVRecord:
    start: int
    end: int
    key: str
    vtype: int
    type_off: int
    value_off: int
    value: object


@dataclass
class TensorRecord:
    start: int
    end: int
    name: str
    n_dims_off: int
    dim_offs: List[int]
    type_off: int
    offset_off: int
    ne: List[int]
    type: int
    offset: int


@dataclass
class Layout:
    size: int
    version: int
    fields: List[Field] = field(default_factory=list)
    kvs: List[KVRecord] = field(default_factory=list)
    tensors: List[TensorRecord] = field(default_factory=list)
    kv_start: int = 24
    ti_start: int = 0
    ti_end: int = 0
    alignment: int = 32
    data_offset: int = 0

    def of_kind(self, *kinds: str) -> List[Field]:
        return [f for f in self.fields if f.kind in kinds]

    def tensor_nbytes(self, t: TensorRecord) -> int:
        info = TYPE_INFO[t.type]
        n = 1
        for d in t.ne:
            n *= d
        return n // info["block_size"] * info["type_size"]


def walk_gguf(buf: bytes) -> Layout:
    """Walk a valid little-endian GGUF v2/v3 file, recording where each field lies."""
    lay = Layout(size=len(buf), version=0)
    pos = 0

    def take(fmt: str, kind: str):
        nonlocal pos
        size = struct.calcsize("<" + fmt)
        if pos + size > len(buf):
            raise ValueError(f"walker: {kind} at {pos} runs past the end")
        (v,) = struct.unpack_from("<" + fmt, buf, pos)
        lay.fields.append(Field(pos, size, kind))
        pos += size
        return v

    def string(len_kind: str, kind: str) -> bytes:
        nonlocal pos
        n = take("Q", len_kind)
        if pos + n > len(buf):
            raise ValueError(f"walker: {kind} at {pos} runs past the end")
        lay.fields.append(Field(pos, n, kind))
        pos += n
        return buf[pos - n:pos]

    def value(vtype: int):
        if vtype == STRING:
            return string("str_len", "str")
        if vtype == ARRAY:
            elem_type = take("I", "arr_elem_type")
            return [value(elem_type) for _ in range(take("Q", "arr_len"))]
        return take(SCALAR_FMT[vtype], "scalar")

    if take("I", "magic") != 0x46554747:
        raise ValueError("walker: not a GGUF file")
    lay.version = take("I", "version")
    n_tensors, n_kv = take("Q", "n_tensors"), take("Q", "n_kv")
    lay.kv_start = pos
    for _ in range(n_kv):
        start = pos
        key = string("key_len", "key").decode()
        type_off = pos
        vtype = take("I", "value_type")
        value_off = pos
        v = value(vtype)
        lay.kvs.append(KVRecord(start, pos, key, vtype, type_off, value_off, v))
        if key == "general.alignment":
            lay.alignment = v
    lay.ti_start = pos
    for _ in range(n_tensors):
        start = pos
        name = string("tensor_name_len", "tensor_name").decode()
        n_dims_off = pos
        n_dims = take("I", "n_dims")
        dim_offs, ne = [], []
        for _ in range(n_dims):
            dim_offs.append(pos)
            ne.append(take("Q", "dim"))
        type_off = pos
        ttype = take("I", "tensor_type")
        offset_off = pos
        off = take("Q", "tensor_offset")
        lay.tensors.append(TensorRecord(start, pos, name, n_dims_off, dim_offs, type_off, offset_off, ne, ttype, off))
    lay.ti_end = pos
    lay.data_offset = -(-pos // lay.alignment) * lay.alignment
    return lay


# ------------------------------------------------------------------------------------------------
# Seeds: small valid files written by gguf-py
# ------------------------------------------------------------------------------------------------

@dataclass
class Seed:
    name: str
    path: Path
    data: bytes
    layout: Layout
    arrays: Dict[str, Tuple[np.ndarray, np.ndarray, int]]  # tensor name -> (float data, stored bytes, ggml type)


def _quantize(x: np.ndarray, qtype) -> np.ndarray:
    """Quantized blocks as uint8 (..., bytes per row). gguf-py has no Q4_K/Q6_K quantizer: use ember's."""
    try:
        return gguf.quants.quantize(x, qtype)
    except NotImplementedError:
        q = ember.quants.quantize(x.reshape(-1, x.shape[-1]), qtype.name)
        return q.reshape(*x.shape[:-1], q.shape[-1])


def _write_seed(path: Path, rng: np.random.Generator, *, version: int = 3, alignment: Optional[int] = None,
                rich_metadata: bool, tensors: List[Tuple[str, str, Tuple[int, ...]]]) -> Dict:
    """Write one seed; tensors are (name, ggml type name, numpy shape)."""
    qt = gguf.GGMLQuantizationType
    vt = gguf.GGUFValueType
    w = gguf.GGUFWriter(str(path), arch="fuzz")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    # keys of equal length (fuzz.xxx) so that a key can be overwritten by another one in place
    w.add_uint8("fuzz.u08", 200)
    w.add_int8("fuzz.i08", -100)
    w.add_uint16("fuzz.u16", 60000)
    w.add_int16("fuzz.i16", -30000)
    w.add_uint32("fuzz.u32", 4000000000)
    w.add_int32("fuzz.i32", -2000000000)
    w.add_float32("fuzz.f32", 1.5)
    w.add_string("fuzz.str", "héllo wörld")
    if rich_metadata:
        w.add_uint64("fuzz.u64", 2 ** 63 + 5)
        w.add_int64("fuzz.i64", -(2 ** 62))
        w.add_float64("fuzz.f64", -2.25)
        w.add_bool("fuzz.bo1", True)
        w.add_bool("fuzz.bo0", False)
        w.add_key_value("fuzz.ai3", [1, -2, 3, 2 ** 30], vt.ARRAY, sub_type=vt.INT32)
        w.add_key_value("fuzz.au1", [1, 2, 255], vt.ARRAY, sub_type=vt.UINT8)
        w.add_key_value("fuzz.au6", [2 ** 40, 7], vt.ARRAY, sub_type=vt.UINT64)
        w.add_key_value("fuzz.af3", [0.5, -1.25, 3.0], vt.ARRAY, sub_type=vt.FLOAT32)
        w.add_key_value("fuzz.af6", [0.1, 1e300], vt.ARRAY, sub_type=vt.FLOAT64)
        w.add_key_value("fuzz.abo", [True, False, True], vt.ARRAY, sub_type=vt.BOOL)
        w.add_array("fuzz.ast", ["a", "bc", "", "déf", "tok" * 5])
        w.add_key_value("fuzz.ann", [[1, 2], [3], [4, 5, 6]], vt.ARRAY, sub_type=vt.ARRAY)
        w.add_key_value("fuzz.ans", [["x", "yz"], ["w"]], vt.ARRAY, sub_type=vt.ARRAY)
    arrays = {}
    for name, tname, shape in tensors:
        x = rng.standard_normal(shape).astype(np.float32)
        if tname == "F32":
            stored = x
            w.add_tensor(name, x)
        elif tname == "F16":
            stored = x.astype(np.float16)
            w.add_tensor(name, stored)
        elif tname == "I8":
            stored = (x * 40).astype(np.int8)
            w.add_tensor(name, stored)
        else:
            stored = _quantize(x, qt[tname])
            w.add_tensor(name, stored, raw_dtype=qt[tname])
        arrays[name] = (x, stored, int(qt[tname]))
    finish_gguf(w)
    if version != 3:
        with open(path, "r+b") as fh:
            fh.seek(4)
            fh.write(struct.pack("<I", version))
    return arrays


SEED_SPECS = {
    # name: (version, general.alignment or None, rich metadata, tensors)
    "rich": (3, None, True, [("blk.0.a", "F32", (8,)), ("blk.1.b", "F16", (3, 4)), ("blk.2.c", "Q4_0", (2, 64)),
                             ("blk.3.d", "Q8_0", (2, 2, 32)), ("blk.4.e", "Q4_K", (1, 256)), ("blk.5.f", "Q6_K", (256,))]),
    "v2": (2, None, True, [("blk.0.a", "Q8_0", (3, 32)), ("blk.1.b", "F32", (2, 3)), ("blk.2.c", "Q4_K", (256,))]),
    "align64": (3, 64, False, [("blk.0.a", "F32", (4, 4)), ("blk.1.b", "Q8_0", (3, 32)), ("blk.2.c", "F16", (2, 2, 8)),
                               ("blk.3.d", "Q6_K", (1, 256))]),
    "align8": (3, 8, True, [("blk.0.a", "Q6_K", (2, 256)), ("blk.1.b", "F32", (5,)), ("blk.2.c", "Q4_0", (32,))]),
    # alignment 1: tensors start at odd offsets (unaligned rows for the dequantizers)
    "align1": (3, 1, False, [("blk.0.a", "I8", (3,)), ("blk.1.b", "Q4_0", (32,)), ("blk.2.c", "F32", (3,)),
                             ("blk.3.d", "Q8_0", (2, 32)), ("blk.4.e", "F16", (1, 3, 1))]),
    "meta_only": (3, None, True, []),
}


def make_seeds(directory: Path) -> List[Seed]:
    rng = np.random.default_rng(20240601)
    seeds = []
    for name, (version, alignment, rich, tensors) in SEED_SPECS.items():
        path = directory / f"seed_{name}.gguf"
        arrays = _write_seed(path, rng, version=version, alignment=alignment, rich_metadata=rich, tensors=tensors)
        data = path.read_bytes()
        seeds.append(Seed(name, path, data, walk_gguf(data), arrays))
    return seeds


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> List[Seed]:
    return make_seeds(tmp_path_factory.mktemp("seeds"))


# ------------------------------------------------------------------------------------------------
# Mutations. Each takes (rng, seed) and returns (bytes, description) or None when not applicable.
# ------------------------------------------------------------------------------------------------

def _put(buf: bytearray, off: int, fmt: str, value: int) -> None:
    struct.pack_into("<" + fmt, buf, off, value)


def _absurd_u64(size: int, orig: int) -> List[int]:
    return [1 << 63, U64_MAX, 1 << 32, (1 << 63) - 1, 1 << 62, 1 << 31, (1 << 32) + 1, U64_MAX - 7,
            size + 1, size, size // 2, max(size - 1, 0), orig + 1, max(orig - 1, 0), orig * 2 + 1, orig + (1 << 32)]


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def mut_truncate(region: str) -> Callable:
    def f(rng, s: Seed):
        lay = s.layout
        bounds = {"header": (0, 24), "kv": (lay.kv_start, lay.ti_start), "tensor_info": (lay.ti_start, lay.ti_end),
                  "data": (lay.ti_end, lay.size), "any": (0, lay.size)}[region]
        lo, hi = bounds
        if hi <= lo:
            return None
        cut = int(rng.integers(lo, hi))
        return s.data[:cut], f"truncate({region}) at {cut} of {lay.size}"
    return f


def mut_flip_bits(region: str) -> Callable:
    def f(rng, s: Seed):
        hi = s.layout.ti_end if region == "meta" else s.layout.size
        buf = bytearray(s.data)
        spots = []
        for _ in range(int(rng.integers(1, 5))):
            off, bit = int(rng.integers(0, hi)), int(rng.integers(0, 8))
            buf[off] ^= 1 << bit
            spots.append(f"{off}.{bit}")
        return bytes(buf), f"flip bits ({region}) {','.join(spots)}"
    return f


def mut_overwrite_bytes(rng, s: Seed):
    buf = bytearray(s.data)
    spots = []
    for _ in range(int(rng.integers(1, 4))):
        n = int(rng.integers(1, 9))
        off = int(rng.integers(0, max(s.layout.ti_end - n, 1)))
        buf[off:off + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        spots.append(f"{off}+{n}")
    return bytes(buf), f"overwrite random bytes {','.join(spots)}"


def mut_field_random(rng, s: Seed):
    """Any field of the layout gets random content of its own size (keys, names and strings included)."""
    fl = _pick(rng, [f for f in s.layout.fields if f.size > 0])
    buf = bytearray(s.data)
    buf[fl.off:fl.off + fl.size] = rng.integers(0, 256, fl.size, dtype=np.uint8).tobytes()
    return bytes(buf), f"random {fl.kind} at {fl.off}"


def mut_count(rng, s: Seed):
    fl = _pick(rng, s.layout.of_kind("n_tensors", "n_kv", "key_len", "str_len", "arr_len", "tensor_name_len"))
    (orig,) = struct.unpack_from("<Q", s.data, fl.off)
    value = _pick(rng, _absurd_u64(s.layout.size, orig)) & U64_MAX
    buf = bytearray(s.data)
    _put(buf, fl.off, "Q", value)
    return bytes(buf), f"{fl.kind} at {fl.off}: {orig} -> {value}"


def mut_dims(rng, s: Seed):
    if not s.layout.tensors:
        return None
    t = _pick(rng, s.layout.tensors)
    buf = bytearray(s.data)
    choice = int(rng.integers(3))
    if choice == 0 or len(t.ne) == 1:
        d = int(rng.integers(len(t.ne)))
        value = _pick(rng, [0, 1, 1 << 62, 1 << 63, U64_MAX, (1 << 63) - 1, 1 << 32, 1 << 31, t.ne[d] * 2,
                            t.ne[d] + 1, t.ne[d] - 1, t.ne[d] * 256])
        _put(buf, t.dim_offs[d], "Q", value)
        what = f"dim {d} = {value}"
    else:
        # products that overflow uint64, or fit uint64 but not int64
        pairs = [(1 << 33, 1 << 31), (3037000500, 3037000500), (1 << 40, 1 << 40), (1 << 32, 1 << 32),
                 (256, (1 << 63) // 128), (1 << 21, 1 << 43)]
        a, b = _pick(rng, pairs)
        _put(buf, t.dim_offs[0], "Q", a)
        _put(buf, t.dim_offs[1], "Q", b)
        if len(t.ne) > 2 and choice == 2:
            _put(buf, t.dim_offs[2], "Q", 1 << 22)
        what = f"dims {a} x {b}"
    return bytes(buf), f"tensor '{t.name}' {what}"


def mut_n_dims(rng, s: Seed):
    if not s.layout.tensors:
        return None
    t = _pick(rng, s.layout.tensors)
    value = _pick(rng, [0, 5, 6, 8, 255, 1 << 31, (1 << 32) - 1, len(t.ne) + 1, len(t.ne) - 1, 4])
    buf = bytearray(s.data)
    _put(buf, t.n_dims_off, "I", value)
    return bytes(buf), f"tensor '{t.name}' n_dims {len(t.ne)} -> {value}"


def mut_tensor_type(rng, s: Seed):
    if not s.layout.tensors:
        return None
    t = _pick(rng, s.layout.tensors)
    # unknown ids, or known ids of other geometry (wrong block size, data size, IQ types, ...)
    value = _pick(rng, UNKNOWN_TYPE_IDS) if rng.random() < 0.6 else _pick(rng, KNOWN_TYPE_IDS)
    buf = bytearray(s.data)
    _put(buf, t.type_off, "I", value)
    return bytes(buf), f"tensor '{t.name}' type {t.type} -> {value}"


def mut_value_type(rng, s: Seed):
    fl = _pick(rng, s.layout.of_kind("value_type", "arr_elem_type"))
    value = _pick(rng, [13, 14, 255, 1 << 31, (1 << 32) - 1]) if rng.random() < 0.5 else int(rng.integers(13))
    buf = bytearray(s.data)
    _put(buf, fl.off, "I", value)
    return bytes(buf), f"{fl.kind} at {fl.off} -> {value}"


def mut_tensor_offset(rng, s: Seed):
    lay = s.layout
    if not lay.tensors:
        return None
    t = _pick(rng, lay.tensors)
    others = [o for o in lay.tensors if o is not t]
    data_len = lay.size - lay.data_offset
    a = lay.alignment
    up = lambda v: -(-v // a) * a  # noqa: E731
    options = {
        "misaligned": t.offset + int(rng.integers(1, a)) if a > 1 else None,
        "at_eof": up(data_len),
        "past_eof": up(data_len) + a,
        "straddles_eof": up(max(data_len - lay.tensor_nbytes(t) // 2, 0)),
        "huge": (1 << 63),
        "max": U64_MAX - U64_MAX % a,
        "wraps": U64_MAX - U64_MAX % a - up(lay.data_offset),
        "overlap_same": _pick(rng, others).offset if others else None,
        "overlap_inside": (_pick(rng, others).offset + a) if others else None,
        "zero": 0,
    }
    kind = _pick(rng, sorted(k for k, v in options.items() if v is not None))
    buf = bytearray(s.data)
    _put(buf, t.offset_off, "Q", options[kind] & U64_MAX)
    return bytes(buf), f"tensor '{t.name}' offset {t.offset} -> {options[kind]} ({kind})"


def _splice(s: Seed, at: int, insert: bytes = b"", delete: int = 0, n_kv_delta: int = 0, n_tensors_delta: int = 0):
    buf = bytearray(s.data[:at] + insert + s.data[at + delete:])
    n_tensors, n_kv = struct.unpack_from("<QQ", buf, 8)
    struct.pack_into("<QQ", buf, 8, n_tensors + n_tensors_delta, n_kv + n_kv_delta)
    return bytes(buf)


def mut_duplicate(rng, s: Seed):
    lay = s.layout
    kind = int(rng.integers(4))
    if kind == 0:  # a key/value record twice
        kv = _pick(rng, lay.kvs)
        return _splice(s, kv.end, s.data[kv.start:kv.end], n_kv_delta=1), f"duplicate kv '{kv.key}'"
    if kind == 1 and lay.tensors:  # a tensor info twice
        t = _pick(rng, lay.tensors)
        return _splice(s, t.end, s.data[t.start:t.end], n_tensors_delta=1), f"duplicate tensor info '{t.name}'"
    if kind == 2:  # a key renamed in place to another key of the same length
        pairs = [(a, b) for a in lay.kvs for b in lay.kvs if a is not b and len(a.key) == len(b.key)]
        a, b = _pick(rng, pairs)
        buf = bytearray(s.data)
        buf[a.start + 8:a.start + 8 + len(a.key)] = b.key.encode()
        return bytes(buf), f"key '{a.key}' renamed to '{b.key}'"
    if len(lay.tensors) > 1:  # a tensor renamed to another tensor's name (all seed names have equal length)
        i, j = rng.choice(len(lay.tensors), 2, replace=False)
        a, b = lay.tensors[int(i)], lay.tensors[int(j)]
        buf = bytearray(s.data)
        buf[a.start + 8:a.start + 8 + len(a.name)] = b.name.encode()
        return bytes(buf), f"tensor '{a.name}' renamed to '{b.name}'"
    return None


BAD_ALIGNMENTS = [0, 3, 5, 6, 7, 12, 48, 100, (1 << 31) + 1, (1 << 32) - 1]
ODD_ALIGNMENTS = [1, 2, 4, 16, 128, 1 << 16, 1 << 31]  # powers of two, but not what the file was written with


def mut_alignment(rng, s: Seed):
    lay = s.layout
    kv = next((k for k in lay.kvs if k.key == "general.alignment"), None)
    roll = rng.random()
    if roll < 0.45:
        value = _pick(rng, BAD_ALIGNMENTS) if rng.random() < 0.7 else _pick(rng, ODD_ALIGNMENTS)
        record, what = enc_kv("general.alignment", UINT32, value), f"general.alignment = {value}"
    else:
        vtype, value = _pick(rng, [(INT32, 32), (FLOAT32, 32.0), (UINT16, 32), (UINT64, 32), (INT64, 32),
                                   (STRING, "32"), (BOOL, 1), (ARRAY, (UINT32, [32]))])
        record, what = enc_kv("general.alignment", vtype, value), f"general.alignment of type {vtype}"
    if kv is not None:
        if roll < 0.45:  # in place
            buf = bytearray(s.data)
            _put(buf, kv.value_off, "I", value)
            return bytes(buf), what + " (in place)"
        return _splice(s, kv.start, record, delete=kv.end - kv.start), what + " (replaced)"
    return _splice(s, lay.kv_start, record, n_kv_delta=1), what + " (inserted)"


def mut_magic(rng, s: Seed):
    magic = _pick(rng, [b"GGUG", b"FUGG", b"\0\0\0\0", b"GGML", b"ggjt", b"gguf", b"GGU\0",
                        rng.integers(0, 256, 4, dtype=np.uint8).tobytes()])
    return magic + s.data[4:], f"magic {magic!r}"


def mut_version(rng, s: Seed):
    value = _pick(rng, [0, 1, 4, 5, 256, (1 << 32) - 1, 0x01000000, 0x02000000, 0x03000000, 0x00030000, 1 << 31])
    buf = bytearray(s.data)
    _put(buf, 4, "I", value)
    return bytes(buf), f"version {value}"


def mut_structure(rng, s: Seed):
    lay = s.layout
    kind = int(rng.integers(6))
    if kind == 0:
        kv = _pick(rng, lay.kvs)
        return _splice(s, kv.start, delete=kv.end - kv.start, n_kv_delta=-1), f"kv '{kv.key}' removed"
    if kind == 1 and lay.tensors:
        t = _pick(rng, lay.tensors)
        return _splice(s, t.start, delete=t.end - t.start, n_tensors_delta=-1), f"tensor info '{t.name}' removed"
    if kind == 2:
        at, n = int(rng.integers(24, lay.ti_end)), int(rng.integers(1, 17))
        return _splice(s, at, rng.integers(0, 256, n, dtype=np.uint8).tobytes()), f"{n} random bytes inserted at {at}"
    if kind == 3:
        at, n = int(rng.integers(24, lay.ti_end)), int(rng.integers(1, 17))
        return _splice(s, at, delete=n), f"{n} bytes deleted at {at}"
    if kind == 4:  # a string one byte shorter than stored: everything after it is read out of step
        fl = _pick(rng, lay.of_kind("key_len", "str_len", "tensor_name_len"))
        (orig,) = struct.unpack_from("<Q", s.data, fl.off)
        buf = bytearray(s.data)
        _put(buf, fl.off, "Q", max(orig - 1, 0) if rng.random() < 0.5 else orig + 1)
        return bytes(buf), f"{fl.kind} at {fl.off} off by one"
    n_kv, n_t = struct.unpack_from("<QQ", s.data, 16)[0], struct.unpack_from("<Q", s.data, 8)[0]
    buf = bytearray(s.data)
    _put(buf, 16, "Q", max(n_kv + int(rng.integers(-2, 3)), 0))
    _put(buf, 8, "Q", max(n_t + int(rng.integers(-2, 3)), 0))
    return bytes(buf), "kv/tensor counts nudged"


def mut_bad_utf8(rng, s: Seed):
    """Invalid UTF-8 / NUL in a key, tensor name or string; sometimes followed by an error in the same record."""
    fl = _pick(rng, [f for f in s.layout.of_kind("key", "str", "tensor_name") if f.size > 0])
    buf = bytearray(s.data)
    bad = _pick(rng, [b"\xff", b"\x80", b"\x00", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])
    bad = bad[:fl.size]
    at = fl.off + int(rng.integers(0, fl.size - len(bad) + 1))
    buf[at:at + len(bad)] = bad
    what = f"{bad!r} in {fl.kind} at {at}"
    if rng.random() < 0.5:  # make the record itself fail, so the message quotes the bad bytes
        if fl.kind == "key":
            kv = next(k for k in s.layout.kvs if k.start < fl.off < k.end)
            _put(buf, kv.type_off, "I", 99)
            what += ", then unknown value type"
        elif fl.kind == "tensor_name":
            t = next(t for t in s.layout.tensors if t.start < fl.off < t.end)
            _put(buf, t.n_dims_off, "I", 7)
            what += ", then 7 dims"
    return bytes(buf), what


MUTATIONS: List[Tuple[str, Callable, int]] = [
    ("truncate_header", mut_truncate("header"), 60),
    ("truncate_kv", mut_truncate("kv"), 160),
    ("truncate_tensor_info", mut_truncate("tensor_info"), 160),
    ("truncate_data", mut_truncate("data"), 120),
    ("truncate_any", mut_truncate("any"), 80),
    ("flip_bits_meta", mut_flip_bits("meta"), 600),
    ("flip_bits_any", mut_flip_bits("any"), 160),
    ("overwrite_bytes", mut_overwrite_bytes, 400),
    ("field_random", mut_field_random, 300),
    ("absurd_count", mut_count, 300),
    ("dims", mut_dims, 200),
    ("n_dims", mut_n_dims, 120),
    ("tensor_type", mut_tensor_type, 160),
    ("value_type", mut_value_type, 160),
    ("tensor_offset", mut_tensor_offset, 200),
    ("duplicate", mut_duplicate, 100),
    ("alignment", mut_alignment, 100),
    ("magic", mut_magic, 40),
    ("version", mut_version, 60),
    ("structure", mut_structure, 160),
    ("bad_utf8", mut_bad_utf8, 120),
]


def generate_corpus(seeds: List[Seed], directory: Path, rng_seed: int = 1234) -> List[Tuple[Path, str]]:
    rng = np.random.default_rng(rng_seed)
    corpus = []
    for kind, mutate, count in MUTATIONS:
        made = attempts = 0
        while made < count and attempts < count * 20:
            attempts += 1
            seed = _pick(rng, seeds)
            got = mutate(rng, seed)
            if got is None:
                continue
            data, what = got
            path = directory / f"{len(corpus):05d}_{kind}.gguf"
            path.write_bytes(data)
            corpus.append((path, f"{kind} on seed '{seed.name}': {what}"))
            made += 1
        assert made == count, f"mutation {kind} could only be applied {made} times"
    return corpus


# ------------------------------------------------------------------------------------------------
# The worker: one subprocess parses many files, one result line each
# ------------------------------------------------------------------------------------------------

WORKER_MAIN = r'''
import faulthandler, os, resource, sys
faulthandler.enable()
# a runaway allocation should become MemoryError (reported), not swap the machine to death;
# not under AddressSanitizer (EMBER_SANITIZE builds), whose shadow memory needs terabytes of address space
if "asan" not in os.environ.get("LD_PRELOAD", ""):
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))

def main():
    def peak_rss_kb():
        # VmHWM is this process's own high-water mark. getrusage's ru_maxrss is not: Linux carries
        # the parent's peak across fork + exec, so a worker started from a big pytest looks big.
        try:
            with open("/proc/self/status", encoding="ascii") as st:
                for line in st:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    list_file, start = sys.argv[1], int(sys.argv[2])
    with open(list_file, encoding="utf-8") as fh:
        paths = fh.read().splitlines()
    setup()
    out = sys.stdout
    out.write("READY\n")
    out.flush()
    for i in range(start, len(paths)):
        status, detail = probe(paths[i])
        out.write(f"{i}\t{status}\t{detail}\n")
        out.flush()
    out.write(f"RSS\t{peak_rss_kb()}\n")
    out.write("DONE\n")
    out.flush()
'''

PROBE_EMBER = r'''
def setup():
    global ember, GGUFError, NO_DEQUANT
    import ember
    from ember.errors import GGUFError
    expected = os.environ["EMBER_FUZZ_EXPECT_PKG"]
    if os.path.dirname(os.path.abspath(ember.__file__)) != expected:
        raise SystemExit(f"worker imported ember from {ember.__file__}, expected {expected}")
    NO_DEQUANT = {t for t in ember.quants.TYPES if not ember.quants.type_info(t)["can_dequantize"]}

def check(cond, what):
    if not cond:
        raise AssertionError(what)

def probe(path):
    name = os.path.basename(path)
    try:
        f = ember.GGUFFile(path)
        f.metadata, f.metadata_types, f.version, f.alignment, f.data_offset
        size = f.file_size
        for t in f.tensors:
            raw = f.raw_tensor(t.name)
            check(raw.nbytes == t.nbytes, f"raw_tensor has {raw.nbytes} bytes, info says {t.nbytes}")
            check(f.data_offset <= t.offset and t.offset + t.nbytes <= size, "tensor data outside the file")
            try:
                x = f.read_tensor(t.name)
            except GGUFError:
                raise
            except ValueError as e:
                if t.type in NO_DEQUANT and "not supported" in str(e):
                    continue
                raise
            check(x.shape == t.shape and x.dtype.name == "float32", f"read_tensor gave {x.shape} {x.dtype}")
        f.close()
        return "ok", ""
    except GGUFError as e:
        msg = str(e)
        if name not in msg:
            return "GGUFError-without-file-name", ascii(msg)[:300]
        return "GGUFError", ""
    except Exception as e:
        return type(e).__name__, ascii(str(e))[:300]
'''

# For the harness self-test: misbehaves on purpose, by file name.
PROBE_SELFTEST = r'''
import signal, time
def setup():
    pass

def probe(path):
    if "crash" in path:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "abort" in path:
        os.abort()
    if "hang" in path:
        time.sleep(600)
    if "keyerror" in path:
        return "KeyError", "'x'"
    return ("GGUFError" if "bad" in path else "ok"), ""
'''


@dataclass
class WorkerRun:
    results: Dict[int, Tuple[str, str]]
    crashers: List[Tuple[int, str]]  # (index, why): died or hung on this file
    peak_rss_kb: int
    starts: int
    seconds: float


def run_worker(paths: List[Path], workdir: Path, probe_src: str = PROBE_EMBER, per_file_timeout: float = 10.0,
               total_timeout: float = 60.0) -> WorkerRun:
    script = workdir / "gguf_fuzz_worker.py"
    script.write_text(WORKER_MAIN + probe_src + "\nmain()\n", encoding="utf-8")
    list_file = workdir / "gguf_fuzz_files.txt"
    list_file.write_text("".join(f"{p}\n" for p in paths), encoding="utf-8")

    pkg_dir = os.path.dirname(os.path.abspath(ember.__file__))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(pkg_dir)] + [p for p in sys.path if p])
    env["EMBER_FUZZ_EXPECT_PKG"] = pkg_dir
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = "1"
    env["PYTHONFAULTHANDLER"] = "1"

    t0 = time.monotonic()
    deadline = t0 + total_timeout
    results: Dict[int, Tuple[str, str]] = {}
    crashers: List[Tuple[int, str]] = []
    peak_rss, start, starts = 0, 0, 0
    while start < len(paths):
        starts += 1
        stderr_path = workdir / f"worker_stderr_{starts}.txt"
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen([sys.executable, str(script), str(list_file), str(start)], stdout=subprocess.PIPE,
                                    stderr=err, env=env, cwd=str(workdir), text=True, encoding="utf-8")
        lines: "queue.Queue[Optional[str]]" = queue.Queue()

        def pump(stream=proc.stdout, q=lines):
            for line in stream:
                q.put(line)
            q.put(None)

        threading.Thread(target=pump, daemon=True).start()
        next_idx, ready, done = start, False, False
        while True:
            # the per-file clock starts once the worker has imported ember (READY)
            wait = min(per_file_timeout if ready else total_timeout, deadline - time.monotonic())
            if wait <= 0:
                proc.kill()
                proc.wait()
                pytest.fail(f"fuzz worker exceeded the total time limit of {total_timeout:.0f} s "
                            f"(at file {next_idx}: {paths[min(next_idx, len(paths) - 1)]})")
            try:
                line = lines.get(timeout=wait)
            except queue.Empty:
                if deadline - time.monotonic() <= 0:
                    continue  # reported as a total timeout above
                proc.kill()
                proc.wait()
                crashers.append((next_idx, f"hang: no result within {per_file_timeout:.0f} s"))
                start = next_idx + 1
                break
            if line is None:
                rc = proc.wait()
                tail = stderr_path.read_text(errors="replace")[-1500:]
                if not ready:
                    pytest.fail(f"fuzz worker failed to start (exit status {rc}):\n{tail}")
                if done and rc == 0:
                    start = len(paths)
                else:
                    crashers.append((next_idx, f"worker died (exit status {rc}); stderr tail:\n{tail}"))
                    start = next_idx + 1
                break
            fields = line.rstrip("\n").split("\t", 2)
            if fields[0] == "READY":
                ready = True
            elif fields[0] == "DONE":
                done = True
            elif fields[0] == "RSS":
                peak_rss = max(peak_rss, int(fields[1]))
            elif len(fields) == 3 and fields[0].isdigit():
                results[int(fields[0])] = (fields[1], fields[2])
                next_idx = int(fields[0]) + 1
    return WorkerRun(results, crashers, peak_rss, starts, time.monotonic() - t0)


# ------------------------------------------------------------------------------------------------
# Unit tests: one problem each, message checked
# ------------------------------------------------------------------------------------------------

def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def expect_gguf_error(path: Path, *words: str) -> str:
    with pytest.raises(GGUFError) as ei:
        f = ember.GGUFFile(path)
        for t in f.tensors:  # (parsing is eager; this only matters if it were not)
            f.read_tensor(t.name)
    msg = str(ei.value)
    assert path.name in msg, msg
    for w in words:
        assert w.lower() in msg.lower(), f"expected {w!r} in: {msg}"
    return msg


KVS = [("general.architecture", STRING, "fuzz"), ("fuzz.n", UINT32, 7)]


def test_valid_hand_built_file_parses(tmp_path):
    p = _write(tmp_path, "good.gguf", build_gguf(KVS + [("fuzz.arr", ARRAY, (STRING, ["a", "b"]))],
                                                 [RawTensor("a", [4, 2]), RawTensor("b", [32], Q8_0)]))
    f = ember.GGUFFile(p)
    assert f.metadata == {"general.architecture": "fuzz", "fuzz.n": 7, "fuzz.arr": ["a", "b"]}
    assert [(t.name, t.shape, t.type) for t in f.tensors] == [("a", (2, 4), "F32"), ("b", (32,), "Q8_0")]
    assert f.read_tensor("a").shape == (2, 4)


def test_missing_file(tmp_path):
    p = tmp_path / "does_not_exist.gguf"
    with pytest.raises(FileNotFoundError) as ei:
        ember.GGUFFile(p)
    assert isinstance(ei.value, GGUFError) and isinstance(ei.value, GGUFFileNotFoundError)
    assert p.name in str(ei.value)


def test_empty_file(tmp_path):
    expect_gguf_error(_write(tmp_path, "empty.gguf", b""), "empty")


def test_bad_magic(tmp_path):
    expect_gguf_error(_write(tmp_path, "magic.gguf", build_gguf(KVS, magic=b"GGML")), "magic", "not a GGUF file")


@pytest.mark.parametrize("cut", [2, 6, 13, 23])
def test_truncated_header(tmp_path, cut):
    expect_gguf_error(_write(tmp_path, f"cut{cut}.gguf", build_gguf(KVS)[:cut]), "truncated")


def test_truncated_key_value(tmp_path):
    data = build_gguf(KVS)
    expect_gguf_error(_write(tmp_path, "cutkv.gguf", data[:-2]), "truncated", "key/value #1")


def test_version_1(tmp_path):
    expect_gguf_error(_write(tmp_path, "v1.gguf", build_gguf(KVS, version=1)), "version 1")


@pytest.mark.parametrize("version", [0, 4, 0xFFFFFFFF])
def test_unsupported_version(tmp_path, version):
    expect_gguf_error(_write(tmp_path, "v.gguf", build_gguf(KVS, version=version)), "version", str(version))


def test_byte_swapped_version(tmp_path):
    expect_gguf_error(_write(tmp_path, "be.gguf", build_gguf(KVS, version=0x03000000)), "byte-swapped")


@pytest.mark.parametrize("count", [1 << 63, U64_MAX, 1 << 32])
def test_huge_tensor_count(tmp_path, count):
    expect_gguf_error(_write(tmp_path, "ntensors.gguf", build_gguf(KVS, n_tensors=count)), "tensor count", str(count))


@pytest.mark.parametrize("count", [1 << 63, U64_MAX, 1000])
def test_huge_kv_count(tmp_path, count):
    expect_gguf_error(_write(tmp_path, "nkv.gguf", build_gguf(KVS, n_kv=count)), "key/value")


def test_huge_string_length(tmp_path):
    data = bytearray(build_gguf(KVS))
    struct.pack_into("<Q", data, 24, 1 << 63)  # length of the first key
    expect_gguf_error(_write(tmp_path, "keylen.gguf", bytes(data)), "length", "exceeds")


def test_huge_array_length(tmp_path):
    data = bytearray(build_gguf([("fuzz.a", ARRAY, (UINT64, [1, 2]))]))
    struct.pack_into("<Q", data, 24 + 8 + 6 + 4 + 4, U64_MAX)
    expect_gguf_error(_write(tmp_path, "arrlen.gguf", bytes(data)), "array length", "impossible")


def test_unknown_value_type(tmp_path):
    data = build_gguf(KVS, n_kv=3) + enc_str("fuzz.x") + struct.pack("<I", 13)
    expect_gguf_error(_write(tmp_path, "vtype.gguf", data), "unknown value type 13", "fuzz.x")


def test_arrays_nested_too_deep(tmp_path):
    value = (INT32, [1])
    for _ in range(5):
        value = (ARRAY, [value])
    expect_gguf_error(_write(tmp_path, "deep.gguf", build_gguf([("fuzz.deep", ARRAY, value)])), "nested")


def test_dim_zero(tmp_path):
    expect_gguf_error(_write(tmp_path, "dim0.gguf", build_gguf(KVS, [RawTensor("w", [4, 0])])), "dimension 1 is 0")


@pytest.mark.parametrize("n_dims", [0, 5])
def test_bad_n_dims(tmp_path, n_dims):
    ne = [2] * n_dims
    expect_gguf_error(_write(tmp_path, "ndims.gguf", build_gguf(KVS, [RawTensor("w", ne)])), f"{n_dims} dimensions")


@pytest.mark.parametrize("ne", [[1 << 62, 1 << 62], [3037000500, 3037000500], [U64_MAX]])
def test_element_count_overflow(tmp_path, ne):
    expect_gguf_error(_write(tmp_path, "big.gguf", build_gguf(KVS, [RawTensor("w", ne, offset=0)], data_size=64)),
                      "overflows")


def test_unknown_tensor_type(tmp_path):
    expect_gguf_error(_write(tmp_path, "ttype.gguf", build_gguf(KVS, [RawTensor("w", [4], type=31)])),
                      "unknown tensor type 31")


def test_row_not_multiple_of_block(tmp_path):
    expect_gguf_error(_write(tmp_path, "block.gguf", build_gguf(KVS, [RawTensor("w", [48, 2], type=Q4_0)])),
                      "block size")


def test_misaligned_offset(tmp_path):
    expect_gguf_error(_write(tmp_path, "misaligned.gguf", build_gguf(KVS, [RawTensor("w", [4], offset=4)])),
                      "not a multiple of the alignment")


def test_tensor_past_end_of_file(tmp_path):
    data = build_gguf(KVS, [RawTensor("w", [64])])
    expect_gguf_error(_write(tmp_path, "short.gguf", data[:-4]), "outside the file")
    expect_gguf_error(_write(tmp_path, "far.gguf", build_gguf(KVS, [RawTensor("w", [4], offset=1 << 40)], data_size=16)),
                      "outside the file")
    expect_gguf_error(_write(tmp_path, "wrap.gguf", build_gguf(KVS, [RawTensor("w", [4], offset=U64_MAX - 31)],
                                                               data_size=16)), "outside the file")


def test_overlapping_tensors(tmp_path):
    tensors = [RawTensor("a", [16]), RawTensor("b", [16], offset=32)]  # a is 64 bytes at 0
    msg = expect_gguf_error(_write(tmp_path, "overlap.gguf", build_gguf(KVS, tensors)), "overlaps")
    assert "'a'" in msg and "'b'" in msg


def test_duplicate_key(tmp_path):
    expect_gguf_error(_write(tmp_path, "dupkey.gguf", build_gguf(KVS + [("fuzz.n", UINT32, 8)])), "duplicate key")


def test_duplicate_tensor_name(tmp_path):
    expect_gguf_error(_write(tmp_path, "dupname.gguf", build_gguf(KVS, [RawTensor("w", [4]), RawTensor("w", [4])])),
                      "duplicate tensor name")


@pytest.mark.parametrize("value", [0, 3, 48])
def test_alignment_not_power_of_two(tmp_path, value):
    data = build_gguf(KVS + [("general.alignment", UINT32, value)])
    expect_gguf_error(_write(tmp_path, "align.gguf", data), "general.alignment", "power of two")


def test_alignment_wrong_type(tmp_path):
    data = build_gguf(KVS + [("general.alignment", UINT64, 32)])
    expect_gguf_error(_write(tmp_path, "aligntype.gguf", data), "general.alignment", "uint32", "uint64")


def test_invalid_utf8_names_are_reachable(tmp_path):
    """Keys and tensor names are bytes; whatever the reader lists must be readable through the same API."""
    data = build_gguf([(b"fuzz.\xff\x00key", UINT32, 1)], [RawTensor(b"w\xff\x80", [4])])
    f = ember.GGUFFile(_write(tmp_path, "utf8.gguf", data))
    assert list(f.metadata.values()) == [1]
    (t,) = f.tensors
    assert f.read_tensor(t.name).shape == (4,)
    assert f.raw_tensor(t.name).nbytes == 16


def test_invalid_utf8_and_nul_in_error_message(tmp_path):
    data = build_gguf([], n_kv=1) + enc_str(b"k\xff\x00z") + struct.pack("<I", 99)
    msg = expect_gguf_error(_write(tmp_path, "utf8err.gguf", data), "key/value #0", "unknown value type 99")
    assert "('k\\xff\\x00z')" in msg  # quoted with escapes, not cut at the NUL


def test_unsupported_type_with_odd_name_and_missing_tensor(tmp_path):
    data = build_gguf(KVS, [RawTensor(b"iq\x00\xfe", [256], type=16)], data_size=66)  # IQ2_XXS: no dequantizer
    f = ember.GGUFFile(_write(tmp_path, "iq.gguf", data))
    (t,) = f.tensors
    with pytest.raises(ValueError, match="IQ2_XXS is not supported") as ei:
        f.read_tensor(t.name)
    assert not isinstance(ei.value, GGUFError)
    with pytest.raises(KeyError, match="no tensor named"):
        f.read_tensor("iq\udcff")


def test_key_too_long(tmp_path):
    data = build_gguf([("k" * 70000, UINT8, 1)])
    expect_gguf_error(_write(tmp_path, "longkey.gguf", data), "key length 70000 exceeds 65535")


# ------------------------------------------------------------------------------------------------
# Seeds and walker sanity, harness self-test, the fuzz run
# ------------------------------------------------------------------------------------------------

def test_seeds_parse_and_walker_agrees(seeds):
    for s in seeds:
        f = ember.GGUFFile(s.path)
        lay = s.layout
        assert f.version == lay.version
        assert list(f.metadata) == [kv.key for kv in lay.kvs]
        assert f.data_offset == lay.data_offset and f.alignment == lay.alignment
        assert len(f.tensors) == len(lay.tensors) == len(s.arrays)
        for t, rec in zip(f.tensors, lay.tensors):
            assert t.name == rec.name and t.offset == lay.data_offset + rec.offset
            assert t.shape == tuple(reversed(rec.ne))
            x, stored, qtype = s.arrays[t.name]
            assert t.shape == x.shape
            got = f.read_tensor(t.name)
            if stored.dtype == np.uint8:  # quantized blocks: gguf-py's reference dequantizer
                want = gguf.quants.dequantize(stored, gguf.GGMLQuantizationType(qtype))
            else:
                want = stored.astype(np.float32)
            np.testing.assert_allclose(got, want.reshape(x.shape), rtol=1e-6, atol=1e-6, err_msg=f"{s.name}/{t.name}")
        md = f.metadata
        if s.name in ("rich", "v2", "align8"):
            assert md["fuzz.u64"] == 2 ** 63 + 5 and md["fuzz.i08"] == -100 and md["fuzz.bo1"] is True
            assert md["fuzz.ann"] == [[1, 2], [3], [4, 5, 6]] and md["fuzz.ast"][3] == "déf"
            assert f.metadata_types["fuzz.ans"] == "array[array[string]]"
        # the walker's fields tile the header region: every byte from 0 to the end of the tensor infos
        pos = 0
        for fl in sorted(lay.fields, key=lambda fl: fl.off):
            assert fl.off == pos, (s.name, fl)
            pos += fl.size
        assert pos == lay.ti_end


def test_worker_harness_detects_crashes_hangs_and_exceptions(tmp_path):
    names = ["a_ok", "b_crash", "c_bad", "d_hang", "e_keyerror", "f_abort", "g_ok"]
    paths = [tmp_path / n for n in names]
    run = run_worker(paths, tmp_path, probe_src=PROBE_SELFTEST, per_file_timeout=2.0, total_timeout=30.0)
    assert [paths[i].name for i, _ in run.crashers] == ["b_crash", "d_hang", "f_abort"]
    assert "worker died" in run.crashers[0][1] and "hang" in run.crashers[1][1] and "worker died" in run.crashers[2][1]
    assert {paths[i].name: r[0] for i, r in run.results.items()} == {
        "a_ok": "ok", "c_bad": "GGUFError", "e_keyerror": "KeyError", "g_ok": "ok"}
    assert run.starts == 4 and run.peak_rss_kb > 0


def test_fuzz_corrupted_files(seeds, tmp_path):
    t0 = time.monotonic()
    corpus = generate_corpus(seeds, tmp_path)
    paths = [p for p, _ in corpus]
    run = run_worker(paths, tmp_path)

    problems = [f"  CRASH/HANG {paths[i].name} [{corpus[i][1]}]: {why}" if i < len(paths) else
                f"  CRASH after the last file: {why}" for i, why in run.crashers]
    counts: Dict[str, int] = {}
    for i, (status, detail) in sorted(run.results.items()):
        counts[status] = counts.get(status, 0) + 1
        if status not in ("ok", "GGUFError"):
            problems.append(f"  {status} {paths[i].name} [{corpus[i][1]}]: {detail}")
    summary = (f"{len(paths)} files, results {counts}, {len(run.crashers)} crashes/hangs, worker started "
               f"{run.starts}x, peak RSS {run.peak_rss_kb // 1024} MiB, {time.monotonic() - t0:.1f} s")
    print(summary)
    assert not problems, f"{summary}\n" + "\n".join(problems[:60])

    parsed = len(run.results)
    assert parsed == len(paths) >= 1000, summary
    assert counts.get("GGUFError", 0) > 0.3 * parsed, summary
    assert counts.get("ok", 0) >= 0.02 * parsed, summary
    assert 0 < run.peak_rss_kb < 1024 * 1024, summary
