"""The forward pass's kernels, each on its own against float64 numpy on random inputs of odd sizes,
for every instruction set this CPU runs: dot products, scaled adds, the matmul over every weight
type (and its batch and thread invariance), RMSNorm, softmax, RoPE (checked against transformers'
own frequency tables for linear, YaRN and Llama 3 scaling) and paged attention."""

import numpy as np
import pytest

import gguf
from ember import _core, quants

ISAS = [isa for isa in ("scalar", "avx2", "avx512", "neon") if _core.isa_supported(isa)]
U = 2.0 ** -24  # float32 unit roundoff


def dot_bound(a, b):
    """Worst-case float32 rounding of a length-n sum of products: n * u * sum |a_i b_i| (plus slack)."""
    n = a.shape[-1]
    return (n + 2) * U * (np.abs(a.astype(np.float64)) * np.abs(b.astype(np.float64))).sum(-1) + 1e-30


def report(got, want, bound, what):
    err = np.abs(np.asarray(got, np.float64) - want)
    bad = err > bound
    if bad.any():
        i = np.unravel_index(np.argmax(err - bound), err.shape)
        pytest.fail(f"{what}: {int(bad.sum())} of {err.size} values out of bound; worst at {i}: "
                    f"got {np.asarray(got)[i]!r}, want {want[i]!r}, bound {np.broadcast_to(bound, err.shape)[i]!r}")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("n", [1, 3, 7, 8, 31, 33, 64, 100, 576, 4099])
def test_dot_products(isa, n):
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    want = a.astype(np.float64) @ b.astype(np.float64)
    report(_core._ops_dot(a, b, isa), want, dot_bound(a, b), f"dot_f32 n={n}")
    h = a.astype(np.float16)
    want16 = h.astype(np.float64) @ b.astype(np.float64)
    report(_core._ops_dot_f16(h.view(np.uint16), b, isa), want16, dot_bound(h.astype(np.float32), b), f"dot_f16 n={n}")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("n", [1, 5, 8, 17, 256, 1001])
def test_axpy(isa, n):
    rng = np.random.default_rng(n)
    y = rng.standard_normal(n).astype(np.float32)
    x = rng.standard_normal(n).astype(np.float32)
    a = np.float32(0.37)
    for f16 in (False, True):
        xs = x.astype(np.float16).astype(np.float64) if f16 else x.astype(np.float64)
        want = y.astype(np.float64) + float(a) * xs
        got = _core._ops_axpy(y, x, float(a), f16, isa)
        report(got, want, 2 * U * (np.abs(y) + np.abs(float(a) * xs)), f"axpy f16={f16} n={n}")


def _weights(type_name, rows, cols, rng):
    """Quantized weight rows of the given type and the float64 matrix they stand for (gguf-py's
    dequantizer is the independent reference)."""
    w = (rng.standard_normal((rows, cols)) * 0.5).astype(np.float32)
    qt = gguf.GGMLQuantizationType[type_name]
    if type_name == "F32":
        data = w.view(np.uint8).reshape(rows, cols * 4)
    elif type_name == "F16":
        data = w.astype(np.float16).view(np.uint8).reshape(rows, cols * 2)
    elif type_name in ("Q2_K", "Q3_K"):
        # no quantizer for these: random blocks with a sane fp16 super-block scale
        block_size, type_size = gguf.GGML_QUANT_SIZES[qt]
        data = rng.integers(0, 256, (rows, cols // block_size, type_size), dtype=np.uint8)
        d_at = type_size - 4 if type_name == "Q2_K" else type_size - 2  # Q2_K ends with d, dmin; Q3_K with d
        for k in range(0, type_size - d_at, 2):
            data[:, :, d_at + k:d_at + k + 2] = np.array([0.01], np.float16).view(np.uint8)
        data = data.reshape(rows, -1)
    else:
        data = quants.quantize(w, type_name.lower())
    ref = gguf.quants.dequantize(np.ascontiguousarray(data), qt).reshape(rows, cols).astype(np.float64)
    return np.ascontiguousarray(data), ref


MATMUL_TYPES = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
# Types with an integer kernel: the matmul quantizes the activations per block first.
ACT_BLOCK = {"Q4_0": 32, "Q4_1": 32, "Q5_0": 32, "Q5_1": 32, "Q8_0": 32, "Q4_K": 256, "Q5_K": 256, "Q6_K": 256}


def quantize_act_reference(x, block):
    """The activation quantization in numpy (float32 steps as the kernels take them): per block,
    d = max|x| / 127 and q = rint(x * (1/d)); returns the values q * d it stands for, in float64."""
    xb = x.astype(np.float32).reshape(*x.shape[:-1], -1, block)
    d = (np.abs(xb).max(-1, keepdims=True) / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d > 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    q = np.rint((xb * inv).astype(np.float32))
    return q, d, (q.astype(np.float64) * d.astype(np.float64)).reshape(x.shape)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("fmt,block", [("a8", 32), ("q8k", 256)])
def test_activation_quantizers(isa, fmt, block):
    """Bit for bit the numpy reference: the int8 values, the float scale, the block sums."""
    rng = np.random.default_rng(block)
    for scale in (1.0, 1e-3, 300.0):
        x = (rng.standard_normal(block * 5) * scale).astype(np.float32)
        x[:block] = 0.0  # an all-zero block: d = 0, every q = 0
        raw = _core._ops_quantize_act(x, fmt, isa)
        q, d, _ = quantize_act_reference(x, block)
        if fmt == "a8":
            blocks = raw.reshape(-1, 40)
            got_d = blocks[:, 0:4].copy().view(np.float32)[:, 0]
            got_s = blocks[:, 4:8].copy().view(np.float32)[:, 0]
            got_q = blocks[:, 8:].view(np.int8)
            np.testing.assert_array_equal(got_s, (d[:, 0] * q.sum(-1).astype(np.float32)).astype(np.float32))
        else:
            blocks = raw.reshape(-1, 292)
            got_d = blocks[:, 0:4].copy().view(np.float32)[:, 0]
            got_q = blocks[:, 4:260].view(np.int8)
            sums = blocks[:, 260:292].copy().view(np.int16)
            np.testing.assert_array_equal(sums, q.reshape(-1, 16, 16).sum(-1))
        np.testing.assert_array_equal(got_d, d[:, 0])
        np.testing.assert_array_equal(got_q, q.astype(np.int8))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("type_name", MATMUL_TYPES)
def test_matmul_every_type(isa, type_name):
    rng = np.random.default_rng(len(type_name) * 7 + MATMUL_TYPES.index(type_name))
    cols = 512 if type_name.endswith("_K") else 96
    rows = 37
    data, ref = _weights(type_name, rows, cols, rng)
    x = rng.standard_normal((9, cols)).astype(np.float32)
    xs = x.astype(np.float64)
    if type_name in ACT_BLOCK:
        _, _, xs = quantize_act_reference(x, ACT_BLOCK[type_name])
    want = xs @ ref.T
    got = _core._ops_matmul(data, type_name, cols, x, isa, 1)
    # integer sums are exact: what rounds is one multiply-add per block and the final sums
    bound = (cols + 2) * U * (np.abs(xs) @ np.abs(ref).T) + 1e-30
    report(got, want, bound, f"matmul {type_name} ({isa})")
    if type_name in ACT_BLOCK:
        # the activations' rounding is what separates the result from the float product
        exact = x.astype(np.float64) @ ref.T
        assert np.abs(got - exact).max() < 0.02 * np.abs(exact).max()


@pytest.mark.parametrize("type_name", [t for t in MATMUL_TYPES if t in ACT_BLOCK])
def test_integer_tiles_equal_the_scalar_reference(type_name):
    """The SIMD tiles against the scalar kernels: same quantized activations, same integer sums;
    only the float summation order differs."""
    if "avx2" not in ISAS:
        pytest.skip("no SIMD instruction set on this CPU")
    rng = np.random.default_rng(11)
    cols = 768 if type_name.endswith("_K") else 160
    data, ref = _weights(type_name, 13, cols, rng)
    x = rng.standard_normal((6, cols)).astype(np.float32)
    fast = _core._ops_matmul(data, type_name, cols, x, "avx2", 2)
    slow = _core._ops_matmul(data, type_name, cols, x, "scalar", 1)
    _, _, xs = quantize_act_reference(x, ACT_BLOCK[type_name])
    report(fast, slow.astype(np.float64), 2 * (cols + 2) * U * (np.abs(xs) @ np.abs(ref).T) + 1e-30,
           f"{type_name} avx2 vs scalar")


@pytest.mark.parametrize("type_name", ["F16", "Q4_0", "Q4_1", "Q5_0", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "Q3_K"])
def test_matmul_is_batch_and_thread_invariant(type_name):
    """An output never depends on the other rows of its batch or on the thread count, bit for bit."""
    rng = np.random.default_rng(5)
    cols = 256
    data, _ = _weights(type_name, 67, cols, rng)
    for n_tokens in (1, 2, 7, 67):
        x = rng.standard_normal((n_tokens, cols)).astype(np.float32)
        together = _core._ops_matmul(data, type_name, cols, x, None, 3)
        for t in range(n_tokens):
            alone = _core._ops_matmul(data, type_name, cols, x[t:t + 1], None, 1)
            np.testing.assert_array_equal(together[t], alone[0], err_msg=f"{type_name}: token {t} of {n_tokens}")


PACKED_TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]


@pytest.mark.parametrize("type_name", PACKED_TYPES)
# whole groups, a partial last group, and rows long enough to be taken in slices
@pytest.mark.parametrize("rows,cols", [(8, 32), (37, 96), (67, 160), (11, 1056)])
def test_packed_matmul(type_name, rows, cols):
    """Weights repacked 8 rows at a time: against float64 numpy, and the packed scalar reference is
    the file-layout reference (bit for bit while a row is taken whole). From 5 tokens the batch goes
    through the panels (quants/panel.h) where the type has them, two groups at a time where two
    full groups remain; 6, 7 and 9 end in tiles of 2, 3 and 1 tokens."""
    rng = np.random.default_rng(rows * cols)
    data, ref = _weights(type_name, rows, cols, rng)
    for n_tokens in (1, 3, 6, 7, 9, 33):
        x = rng.standard_normal((n_tokens, cols)).astype(np.float32)
        _, _, xs = quantize_act_reference(x, 32)
        want = xs @ ref.T
        bound = (cols + 2) * U * (np.abs(xs) @ np.abs(ref).T) + 1e-30
        packed_ref = _core._ops_matmul(data, type_name, cols, x, "scalar", 1, "packed_ref")
        file_ref = _core._ops_matmul(data, type_name, cols, x, "scalar", 1, "file")
        if cols <= 512 or n_tokens <= 4:
            np.testing.assert_array_equal(packed_ref, file_ref)
        report(packed_ref, want, bound, f"packed reference {type_name}")
        for isa in ISAS:
            if isa == "scalar":
                continue
            got = _core._ops_matmul(data, type_name, cols, x, isa, 2, "packed")
            report(got, want, bound, f"packed {type_name} ({isa}) {n_tokens} tokens")


@pytest.mark.parametrize("type_name", ["F16", "F32"])
@pytest.mark.parametrize("rows,cols", [(8, 1), (37, 96), (19, 600), (16, 577)])  # odd lengths, partial groups, slices
def test_packed_float_matmul(type_name, rows, cols):
    """F16 / F32 rows interleaved per value: against float64 numpy, every batch shape, and batch
    invariance (one token alone gives the bits it gives in a batch)."""
    if "avx2" not in ISAS:
        pytest.skip("no packed float kernels for this CPU")
    rng = np.random.default_rng(rows + cols)
    data, ref = _weights(type_name, rows, cols, rng)
    x = rng.standard_normal((13, cols)).astype(np.float32)
    want = x.astype(np.float64) @ ref.T
    bound = (cols + 2) * U * (np.abs(x.astype(np.float64)) @ np.abs(ref).T) + 1e-30
    together = _core._ops_matmul(data, type_name, cols, x, "avx2", 3, "packed")
    report(together, want, bound, f"packed {type_name} {rows}x{cols}")
    for t in (0, 6, 12):
        alone = _core._ops_matmul(data, type_name, cols, x[t:t + 1], "avx2", 1, "packed")
        np.testing.assert_array_equal(alone[0], together[t], err_msg=f"{type_name} token {t}")


@pytest.mark.parametrize("type_name", ["Q4_K", "Q6_K"])
@pytest.mark.parametrize("rows,cols", [(8, 256), (21, 768), (37, 768), (9, 4352)])  # partial groups; pairs; slices
def test_packed_k_matmul(type_name, rows, cols):
    rng = np.random.default_rng(rows * cols + 1)
    data, ref = _weights(type_name, rows, cols, rng)
    for n_tokens in (1, 3, 6, 7, 9, 33):
        x = rng.standard_normal((n_tokens, cols)).astype(np.float32)
        _, _, xs = quantize_act_reference(x, 256)
        want = xs @ ref.T
        bound = (cols + 2) * U * (np.abs(xs) @ np.abs(ref).T) + 1e-30
        packed_ref = _core._ops_matmul(data, type_name, cols, x, "scalar", 1, "packed_ref")
        if cols <= 512 or n_tokens <= 4:
            np.testing.assert_array_equal(packed_ref, _core._ops_matmul(data, type_name, cols, x, "scalar", 1, "file"))
        report(packed_ref, want, bound, f"packed reference {type_name}")
        if "avx2" in ISAS:
            together = _core._ops_matmul(data, type_name, cols, x, "avx2", 2, "packed")
            report(together, want, bound, f"packed {type_name} {n_tokens} tokens")
            alone = _core._ops_matmul(data, type_name, cols, x[-1:], "avx2", 1, "packed")
            np.testing.assert_array_equal(alone[0], together[-1])


@pytest.mark.parametrize("type_name", PACKED_TYPES + ["Q4_K", "Q6_K"])
def test_packed_rows_unpack_exactly(type_name):
    rng = np.random.default_rng(3)
    data, ref = _weights(type_name, 13, 256, rng)
    for row in (0, 7, 8, 12):
        np.testing.assert_array_equal(_core._ops_unpack_row(data, type_name, 256, row), ref[row].astype(np.float32))


@pytest.mark.parametrize("type_name", PACKED_TYPES)
def test_packed_matmul_is_batch_and_thread_invariant(type_name):
    """One token alone gives the bits it gives in a batch, on any thread count; and the AVX-512
    tiles (two and four row groups at once) give the AVX2 tiles' bits."""
    x86 = [isa for isa in ("avx2", "avx512") if isa in ISAS]
    if not x86:
        pytest.skip("no packed kernels for this CPU")
    rng = np.random.default_rng(6)
    cols = 1056  # 33 blocks: batches take the rows in slices, one token takes them whole
    data, _ = _weights(type_name, 45, cols, rng)  # 5 full groups and a partial one
    x = rng.standard_normal((67, cols)).astype(np.float32)
    first = None
    for isa in x86:
        together = _core._ops_matmul(data, type_name, cols, x, isa, 3, "packed")
        for t in (0, 5, 63, 64, 66):
            alone = _core._ops_matmul(data, type_name, cols, x[t:t + 1], isa, 1, "packed")
            np.testing.assert_array_equal(together[t], alone[0], err_msg=f"{type_name} ({isa}) token {t}")
        if first is None:
            first = together
        else:
            np.testing.assert_array_equal(together, first, err_msg=f"{type_name}: {isa} against {x86[0]}")


def test_matmul_rejects_bad_shapes():
    data, _ = _weights("Q8_0", 4, 64, np.random.default_rng(0))
    with pytest.raises(ValueError):
        _core._ops_matmul(data, "Q8_0", 64, np.zeros((2, 32), np.float32))
    with pytest.raises(ValueError):
        _core._ops_matmul(data, "Q8_0", 32, np.zeros((2, 32), np.float32))
    with pytest.raises(ValueError):
        _core._ops_matmul(data, "IQ2_XXS", 64, np.zeros((2, 64), np.float32))


@pytest.mark.parametrize("n", [1, 5, 64, 577])
def test_rms_norm(n):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((3, n)) * 3).astype(np.float32)
    w = rng.standard_normal(n).astype(np.float32)
    x64 = x.astype(np.float64)
    want = x64 / np.sqrt((x64 ** 2).mean(-1, keepdims=True) + 1e-6) * w
    report(_core._ops_rms_norm(x, w, 1e-6), want, 4 * U * np.abs(want) + 1e-30, f"rms_norm n={n}")
    want_nw = x64 / np.sqrt((x64 ** 2).mean(-1, keepdims=True) + 1e-6)
    report(_core._ops_rms_norm(x, None, 1e-6), want_nw, 4 * U * np.abs(want_nw) + 1e-30, "rms_norm without weight")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("n", [1, 7, 8, 100, 1537])
def test_gated_activations(isa, n):
    """act(gate) * up for SiLU and GELU (tanh form, as PyTorch's approximate="tanh"), over the
    range activations take, extremes included."""
    rng = np.random.default_rng(n)
    g = (rng.standard_normal(n) * 4).astype(np.float32)
    g[:min(n, 4)] = [-90.0, 90.0, 0.0, -1e-3][:min(n, 4)]
    u = rng.standard_normal(n).astype(np.float32)
    g64, u64 = g.astype(np.float64), u.astype(np.float64)
    silu = g64 / (1 + np.exp(-g64)) * u64
    gelu = 0.5 * g64 * (1 + np.tanh(np.sqrt(2 / np.pi) * (g64 + 0.044715 * g64 ** 3))) * u64
    report(_core._ops_gated(g, u, "silu", isa), silu, 4e-7 * np.abs(g64 * u64) + 1e-30, f"silu n={n}")
    report(_core._ops_gated(g, u, "gelu_tanh", isa), gelu, 4e-7 * np.abs(g64 * u64) + 1e-30, f"gelu n={n}")


@pytest.mark.parametrize("n", [1, 2, 9, 1000])
def test_softmax(n):
    x = (np.random.default_rng(n).standard_normal(n) * 10).astype(np.float32)
    e = np.exp(x.astype(np.float64) - x.max())
    want = e / e.sum()
    report(_core._ops_softmax(x), want, 1e-6 * want + 1e-12, f"softmax n={n}")


# ------------------------------------------------------------------------------------ RoPE
def _rope_reference(x, pos, n_dims, style, inv_freq, mscale=1.0):
    """Rotate with given per-pair inverse frequencies, in float64."""
    y = x.astype(np.float64).copy()
    theta = pos * inv_freq.astype(np.float64)
    c, s = np.cos(theta) * mscale, np.sin(theta) * mscale
    half = n_dims // 2
    if style == "normal":
        a, b = y[:, 0:n_dims:2].copy(), y[:, 1:n_dims:2].copy()
        y[:, 0:n_dims:2], y[:, 1:n_dims:2] = a * c - b * s, a * s + b * c
    else:
        a, b = y[:, :half].copy(), y[:, half:n_dims].copy()
        y[:, :half], y[:, half:n_dims] = a * c - b * s, a * s + b * c
    return y


def _angle_bound(pos, want, x):
    """transformers keeps its frequency table in float32 (as does the converter's rope_freqs): an
    angle pos * f is then off by up to pos * f * u, which moves a rotated value by that much times
    the pair's length."""
    return 1e-5 * (1 + np.abs(want)) + 2 * U * pos * (1 + np.abs(x).max())


def _hf_inv_freq(rope_parameters, head_dim=64, max_pos=4096):
    """transformers' own frequency table and attention factor for a RoPE configuration."""
    transformers = pytest.importorskip("transformers")
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    cfg = transformers.LlamaConfig(hidden_size=head_dim * 2, num_attention_heads=2, head_dim=head_dim,
                                   max_position_embeddings=max_pos, rope_parameters=rope_parameters)
    kind = rope_parameters["rope_type"]
    if kind == "default":
        base = rope_parameters["rope_theta"]
        return 1.0 / base ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim), 1.0
    inv, factor = ROPE_INIT_FUNCTIONS[kind](cfg, "cpu")
    return inv.double().numpy(), float(factor)


@pytest.mark.parametrize("style", ["normal", "neox"])
@pytest.mark.parametrize("pos", [0, 1, 17, 3000])
def test_rope_plain_and_partial(style, pos):
    rng = np.random.default_rng(pos)
    x = rng.standard_normal((3, 64)).astype(np.float32)
    for n_dims in (64, 32):  # whole head, and partial rotary (the rest untouched)
        inv = 10000.0 ** -(np.arange(0, n_dims, 2) / n_dims)
        want = _rope_reference(x, pos, n_dims, style, inv)
        got = _core._ops_rope(x, pos, n_dims, style, 10000.0)
        report(got, want, 1e-6 * (1 + np.abs(want)), f"rope {style} n_dims={n_dims} pos={pos}")


def test_rope_linear_scaling_matches_transformers():
    x = np.random.default_rng(1).standard_normal((2, 64)).astype(np.float32)
    inv, _ = _hf_inv_freq({"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0})
    for pos in (5, 900):
        got = _core._ops_rope(x, pos, 64, "neox", 10000.0, 0.25, "linear")
        want = _rope_reference(x, pos, 64, "neox", inv)
        report(got, want, _angle_bound(pos, want, x), f"linear rope pos={pos}")


@pytest.mark.parametrize("factor,orig", [(4.0, 512), (8.0, 2048)])
def test_rope_yarn_matches_transformers(factor, orig):
    x = np.random.default_rng(2).standard_normal((2, 64)).astype(np.float32)
    params = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": factor, "original_max_position_embeddings": orig}
    inv, attn_factor = _hf_inv_freq(params, max_pos=int(orig * factor))
    for pos in (3, 700, 4000):
        got = _core._ops_rope(x, pos, 64, "neox", 10000.0, 1.0 / factor, "yarn", 1.0, 1.0, 32.0, 1.0, orig)
        want = _rope_reference(x, pos, 64, "neox", inv, attn_factor)
        report(got, want, _angle_bound(pos, want, x), f"yarn factor={factor} pos={pos}")


def test_rope_llama3_factors_match_transformers():
    """Llama 3.1 scaling as the converter's per-pair divisors (rope_freqs) equals transformers' table."""
    import json

    from ember.convert.arch import Llama

    params = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
              "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    inv, _ = _hf_inv_freq(params, max_pos=131072)
    cfg = {"architectures": ["LlamaForCausalLM"], "hidden_size": 128, "num_hidden_layers": 1, "num_attention_heads": 2,
           "intermediate_size": 8, "vocab_size": 8, "head_dim": 64, "rope_theta": 500000.0, "rope_scaling": params}
    (_, factors), = Llama(json.loads(json.dumps(cfg))).extra_tensors()
    x = np.random.default_rng(3).standard_normal((2, 64)).astype(np.float32)
    for pos in (1, 5000, 100000):
        got = _core._ops_rope(x, pos, 64, "normal", 500000.0, freq_factors=factors.astype(np.float32))
        want = _rope_reference(x, pos, 64, "normal", inv)
        report(got, want, _angle_bound(pos, want, x), f"llama3 rope pos={pos}")


# ------------------------------------------------------------------------------- attention
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("f16", [True, False])
@pytest.mark.parametrize("n,j0,j1,block", [(1, 0, 0, 16), (37, 0, 36, 16), (37, 10, 30, 16), (100, 60, 99, 7), (64, 0, 63, 1)])
@pytest.mark.parametrize("key_rows", [False, True])  # keys dimension-major per block (the cache's layout), or rows
def test_paged_attention(isa, f16, n, j0, j1, block, key_rows):
    rng = np.random.default_rng(n + j0)
    d = 40
    q = rng.standard_normal(d).astype(np.float32)
    k = rng.standard_normal((n, d)).astype(np.float32)
    v = rng.standard_normal((n, d)).astype(np.float32)
    kk = (k.astype(np.float16) if f16 else k).astype(np.float64)[j0:j1 + 1]
    vv = (v.astype(np.float16) if f16 else v).astype(np.float64)[j0:j1 + 1]
    scale = d ** -0.5
    s = kk @ q.astype(np.float64) * scale
    p = np.exp(s - s.max())
    p /= p.sum()
    want = p @ vv
    got = _core._ops_attention(q, k, v, j0, j1, scale, block, f16, 7, isa, key_rows)
    bound = 1e-5 * (np.abs(p) @ np.abs(vv)) + 1e-6
    report(got, want, bound, f"attention n={n} [{j0}, {j1}] block={block} f16={f16}")


def _attention_reference(q, k, v, first, last, scale, f16):
    kk = (k.astype(np.float16) if f16 else k).astype(np.float64)
    vv = (v.astype(np.float16) if f16 else v).astype(np.float64)
    out = np.zeros((len(q), k.shape[1]))
    bound = np.zeros_like(out)
    for i in range(len(q)):
        s = kk[first[i]:last[i] + 1] @ q[i].astype(np.float64) * scale
        p = np.exp(s - s.max())
        p /= p.sum()
        out[i] = p @ vv[first[i]:last[i] + 1]
        bound[i] = 1e-5 * (p @ np.abs(vv[first[i]:last[i] + 1])) + 1e-6
    return out, bound


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("d", [8, 24, 40, 64, 256, 20])  # 20: not a multiple of 8 (the scalar kernel)
@pytest.mark.parametrize("f16", [True, False])
@pytest.mark.parametrize("key_rows", [False, True])
def test_batched_attention(isa, d, f16, key_rows):
    """Many queries over one KV head (a GQA group, several tokens, causal and windowed ranges)."""
    rng = np.random.default_rng(d)
    n = 150
    k = rng.standard_normal((n, d)).astype(np.float32)
    v = rng.standard_normal((n, d)).astype(np.float32)
    ranges = [(0, 0), (0, 15), (0, 16), (3, 17), (0, 149), (100, 149), (140, 149), (17, 17), (31, 64), (0, 77)]
    q = (rng.standard_normal((len(ranges), d)) * 2).astype(np.float32)
    first, last = [r[0] for r in ranges], [r[1] for r in ranges]
    want, bound = _attention_reference(q, k, v, first, last, d ** -0.5, f16)
    for block in (16, 7):
        got = _core._ops_attention_batch(q, k, v, first, last, d ** -0.5, block, f16, 3, isa, key_rows)
        report(got, want, bound, f"batched attention d={d} block={block} f16={f16}")
        # a query's result does not depend on the other queries in its batch
        for i in (0, 4, 8):
            alone = _core._ops_attention_batch(q[i:i + 1], k, v, first[i:i + 1], last[i:i + 1], d ** -0.5, block, f16, 3, isa,
                                               key_rows)
            np.testing.assert_array_equal(alone[0], got[i])


def test_threadpool_runs_every_piece_once():
    """Jobs of changing shapes back to back: no index lost or run twice, no hang (a subprocess with
    a timeout guards against the latter)."""
    import subprocess
    import sys

    code = "from ember import _core; print(_core._ops_threadpool_stress(2, 20000), _core._ops_threadpool_stress(3, 5000))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["20000", "5000"]
