"""Quant formats against gguf-py's numpy `quants` module (bit for bit) and against numpy
references written here for the formats gguf-py lacks (Q8_1, Q8_K)."""

import gguf
import numpy as np
import pytest

from ember import _core, quants
from conftest import assert_bits_equal

GQ = gguf.GGMLQuantizationType
ISAS = [i for i in ("scalar", "avx2", "avx512", "neon") if _core.isa_supported(i)]
BIT_EXACT_QUANTIZE = ["f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0"]
SHAPES = [(1, 32), (1, 256), (3, 256), (17, 96), (64, 4096), (5, 512 + 256)]


def _matrix(rng, shape, kind):
    if kind == "normal":
        return (rng.standard_normal(shape) * rng.uniform(1e-3, 50)).astype(np.float32)
    if kind == "uniform":
        return rng.uniform(-1, 1, shape).astype(np.float32)
    if kind == "special":
        x = rng.standard_normal(shape).astype(np.float32)
        x[0, :32] = 0.0                              # an all-zero block
        x[0, 32:64] = 1.5                            # a constant block
        x[-1, :2] = [3.0, -3.0]                      # magnitude tie: the first one wins
        x[-1, 32:64] = rng.standard_normal(32) * 1e-6  # scales in fp16's subnormal range
        x[shape[0] // 2, -32:] = rng.uniform(-60000, 60000, 32)  # near the top of fp16
        return x
    raise ValueError(kind)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("qtype", BIT_EXACT_QUANTIZE)
def test_quantize_bit_exact_against_gguf_py(qtype, shape, isa):
    rng = np.random.default_rng(hash((qtype, shape)) % 2**32)
    for kind in ("normal", "uniform", "special"):
        if kind == "special" and shape[1] < 64:
            continue
        x = _matrix(rng, shape, kind)
        want = gguf.quants.quantize(x, GQ[qtype.upper()]).view(np.uint8).reshape(shape[0], -1)
        got = quants.quantize(x, qtype, isa=isa)
        assert got.shape == want.shape and got.dtype == np.uint8
        if not np.array_equal(got, want):
            rows = np.nonzero((got != want).any(axis=1))[0]
            pytest.fail(f"{qtype} {kind} {shape} ({isa}): {len(rows)} rows differ, first row {rows[0]}")


DEQUANT_TYPES = ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]


def _random_blocks(rng, qtype, n_blocks):
    """Random bytes with every fp16 field made finite (NaN payloads are not a format property)."""
    info = quants.type_info(qtype)
    raw = rng.integers(0, 256, (n_blocks, info["type_size"]), dtype=np.uint8)
    layout = {  # byte offsets of fp16 fields in each block
        "F16": [], "BF16": [], "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "Q8_1": [0, 2],
        "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
    }[qtype]
    for off in layout:
        raw[:, off + 1] &= 0x3B  # exponent < 31 and |d| small enough that sums stay finite
    if qtype in ("F16", "BF16"):
        raw[:, 1] &= 0x3F if qtype == "BF16" else 0x7B
    return raw


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("qtype", DEQUANT_TYPES)
def test_dequantize_bit_exact_against_gguf_py(qtype, isa):
    rng = np.random.default_rng(7)
    info = quants.type_info(qtype)
    for rows, blocks_per_row in [(1, 1), (3, 5), (33, 2)]:
        if info["block_size"] == 1:
            blocks_per_row *= 37  # odd element counts exercise the SIMD tails
        raw = _random_blocks(rng, qtype, rows * blocks_per_row).reshape(rows, -1)
        shape = (rows, blocks_per_row * info["block_size"])
        want = gguf.quants.dequantize(raw, GQ[qtype]).reshape(shape)
        assert_bits_equal(quants.dequantize(raw, qtype, shape, isa=isa), want, f"{qtype} {shape} {isa}")


def _q8_reference(x, block):
    """Symmetric 8-bit blocks: d = amax/127 (float32), q = round-half-away(x * (1/d))."""
    b = x.reshape(-1, block)
    d = np.abs(b).max(axis=1, keepdims=True) / np.float32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
    q = np.trunc(np.abs(b * inv) + np.float32(0.5)) * np.sign(b * inv)
    return d, q.astype(np.int8)


def test_q8_1_against_numpy_reference():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, 128)).astype(np.float32)
    raw = quants.quantize(x, "q8_1").reshape(-1, 36)
    d, q = _q8_reference(x, 32)
    d16 = d.astype(np.float16)
    assert np.array_equal(raw[:, 0:2].copy().view(np.float16), d16)
    assert np.array_equal(raw[:, 4:].view(np.int8), q)
    s = (q.astype(np.float32).sum(axis=1, keepdims=True) * d).astype(np.float16)  # s from the unrounded d
    assert np.array_equal(raw[:, 2:4].copy().view(np.float16), s)
    assert_bits_equal(quants.dequantize(raw, "q8_1", x.shape), (q * d16.astype(np.float32)).reshape(x.shape))


def test_q8_K_against_numpy_reference():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 512)).astype(np.float32)
    x[1, :256] = 0
    raw = quants.quantize(x, "q8_k").reshape(-1, 292)
    b = x.reshape(-1, 256)
    imax = np.abs(b).argmax(axis=1)
    mx = b[np.arange(len(b)), imax][:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        iscale = np.where(mx == 0, np.float32(0), np.float32(-128) / mx).astype(np.float32)
        q = np.minimum(np.rint(iscale * b), 127).astype(np.int8)  # rint: ties to even, as ggml's nearest_int
        d = np.where(iscale == 0, np.float32(0), np.float32(1) / iscale).astype(np.float32)
    assert np.array_equal(raw[:, :4].copy().view(np.float32), d)
    assert np.array_equal(raw[:, 4:260].view(np.int8), q)
    assert np.array_equal(raw[:, 260:].copy().view(np.int16), q.reshape(-1, 16, 16).sum(axis=2).astype(np.int16))
    assert_bits_equal(quants.dequantize(raw, "q8_k", x.shape), (q * d).reshape(x.shape))


# Round-trip bounds for ember's K-quant search (documented in cpp/quants/quantize_k.cpp): RMS error
# relative to the RMS of the data, and the worst element relative to its sub-block's step size.
K_BOUNDS = {"q4_k": (0.085, 15, 32), "q5_k": (0.045, 31, 32), "q6_k": (0.025, 63, 16)}


@pytest.mark.parametrize("qtype", sorted(K_BOUNDS))
@pytest.mark.parametrize("kind", ["normal", "uniform", "special"])
def test_k_quant_round_trip_within_bound(qtype, kind):
    rel_bound, levels, sub = K_BOUNDS[qtype]
    rng = np.random.default_rng(11)
    x = _matrix(rng, (48, 1024), kind)
    raw = quants.quantize(x, qtype)
    y = quants.dequantize(raw, qtype, x.shape)
    # the format is ggml's: gguf-py decodes ember's blocks to the same values
    assert_bits_equal(y, gguf.quants.dequantize(raw, GQ[qtype.upper()]).reshape(x.shape), qtype)
    err = y.astype(np.float64) - x
    if kind != "special":  # the special rows mix wildly different scales on purpose
        rel = np.sqrt(np.mean(err**2)) / np.sqrt(np.mean(x.astype(np.float64) ** 2))
        assert rel < rel_bound, f"{qtype}: relative RMS error {rel:.4f} >= {rel_bound}"
    # per element: within one quantization step of its sub-block, plus the 6-bit scale rounding
    blocks = x.reshape(-1, sub).astype(np.float64)
    span = np.maximum(blocks.max(axis=1), 0) - np.minimum(blocks.min(axis=1), 0)
    step = span / levels
    worst = np.abs(err.reshape(-1, sub)).max(axis=1)
    superblock_max = np.repeat(np.abs(x.reshape(-1, 256)).max(axis=1), 256 // sub)
    assert np.all(worst <= step + superblock_max / 64 + 1e-30), f"{qtype}: an element is off by more than a step"


def test_k_quants_all_zero_and_constant():
    for qtype in K_BOUNDS:
        for value in (0.0, 2.5, -7.0):
            x = np.full((2, 256), value, dtype=np.float32)
            y = quants.dequantize(quants.quantize(x, qtype), qtype, x.shape)
            assert np.allclose(y, x, atol=abs(value) * 0.01 + 1e-6), (qtype, value)


@pytest.mark.parametrize("qtype", ["f16", "q4_0", "q8_0", "bf16"])
def test_simd_matches_scalar_on_odd_shapes(qtype):
    rng = np.random.default_rng(5)
    block = quants.type_info(qtype)["block_size"]
    for rows, cols in [(1, block), (7, block * 13), (31, block * 3 if block > 1 else 1001)]:
        x = rng.standard_normal((rows, cols)).astype(np.float32)
        outs = [quants.quantize(x, qtype, isa=i) for i in ISAS]
        for o in outs[1:]:
            assert np.array_equal(o, outs[0])
        deq = [quants.dequantize(outs[0], qtype, x.shape, isa=i) for i in ISAS]
        for d in deq[1:]:
            assert_bits_equal(d, deq[0], f"{qtype} {rows}x{cols}")


def test_bad_arguments():
    x = np.ones((2, 64), dtype=np.float32)
    with pytest.raises(ValueError, match="unknown quant type 'q9_9'"):
        quants.quantize(x, "q9_9")
    with pytest.raises(TypeError, match="must be a str"):
        quants.quantize(x, 4)
    with pytest.raises(ValueError, match="not supported"):
        quants.quantize(x, "q2_k")
    with pytest.raises(ValueError, match="2-D"):
        quants.quantize(np.ones(64, dtype=np.float32), "q4_0")
    with pytest.raises(ValueError, match="2-D"):
        quants.quantize(np.ones((1, 2, 64), dtype=np.float32), "q4_0")
    with pytest.raises(TypeError, match="floating-point"):
        quants.quantize(np.ones((2, 64), dtype=np.int32), "q4_0")
    with pytest.raises(ValueError, match="multiple of the block size 32"):
        quants.quantize(np.ones((2, 48), dtype=np.float32), "q4_0")
    with pytest.raises(ValueError, match="multiple of the block size 256"):
        quants.quantize(np.ones((2, 64), dtype=np.float32), "q4_k")
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[1, 5] = bad
        with pytest.raises(ValueError, match="non-finite value .* row 1, column 5"):
            quants.quantize(y, "q8_0")
    y = x.copy()
    y[0, 3] = 1e6
    with pytest.raises(ValueError, match="exceeds the format's range"):
        quants.quantize(y, "q4_0")
    assert quants.quantize(y, "bf16").shape == (2, 128)  # bf16 has the range of float32
    raw = quants.quantize(x, "q4_0")
    with pytest.raises(ValueError, match="needs 72 bytes of data, got 36"):
        quants.dequantize(raw[:1], "q4_0", (2, 64))
    with pytest.raises(ValueError, match="not a multiple of the block size"):
        quants.dequantize(raw, "q4_0", (4, 36))
    with pytest.raises(ValueError, match="positive"):
        quants.dequantize(raw, "q4_0", (-2, 64))
    with pytest.raises(TypeError):
        quants.dequantize("not bytes", "q4_0", (2, 64))
    with pytest.raises(TypeError, match="sequence of ints"):
        quants.dequantize(raw, "q4_0", (2.0, 64))
    with pytest.raises(ValueError, match="IQ2_XXS is not supported"):
        quants.dequantize(np.zeros(66, np.uint8), "iq2_xxs", (256,))
    assert quants.dequantize(bytes(raw), "Q4_0", [2, 64]).shape == (2, 64)  # bytes and any case work


def test_type_table_matches_gguf_py():
    for name in quants.TYPES:
        if name == "Q8_1":
            continue  # ggml's block_q8_1 stores fp16 d and s (36 bytes); gguf-py still lists 40
        info = quants.type_info(name)
        assert (info["block_size"], info["type_size"]) == gguf.GGML_QUANT_SIZES[GQ[name]], name
        assert info["id"] == GQ[name].value
    assert quants.row_bytes("q4_k", 512) == 288
    assert set(BIT_EXACT_QUANTIZE + ["q4_k", "q5_k", "q6_k"]) <= {t.lower() for t in quants.QUANTIZE_TYPES}
