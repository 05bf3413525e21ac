"""`ember quantize IN OUT TYPE`: small llama-like GGUF files built with gguf-py, every TYPE.

Checks: each output tensor's bytes equal ember.quants.quantize of the source values (and
gguf.quants.quantize where gguf-py has the type); tensors that keep their type are copied byte
for byte; the metadata is copied exactly (byte for byte in the file) except general.file_type
and general.quantization_version; the per-tensor types of the Q4_K_M / Q5_K_M mixes follow
hand-written tables derived from llama.cpp's rules (cpp/quantize_rules.cpp); errors are clear
and never leave an output (or a temporary file) behind. The real models: SmolLM2 to Q8_0, and
Gemma 3's llama.cpp-made Q4_K_M reproduced exactly.
"""

from __future__ import annotations

import os
from collections import Counter
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import gguf
import numpy as np
import pytest

import ember
from ember import cli, quants
from ember.quantize import QUANTIZE_MODEL_TYPES, quantize_model
from conftest import finish_gguf

N_EMBD, N_KV, N_FF, N_VOCAB = 256, 128, 320, 384  # N_FF: ffn_down rows are 320 long, not a multiple of 256

# TYPE -> (the base ggml type, gguf.LlamaFileType written to general.file_type)
TYPES = {
    "f16": ("F16", gguf.LlamaFileType.MOSTLY_F16),
    "bf16": ("BF16", gguf.LlamaFileType.MOSTLY_BF16),
    "q8_0": ("Q8_0", gguf.LlamaFileType.MOSTLY_Q8_0),
    "q4_0": ("Q4_0", gguf.LlamaFileType.MOSTLY_Q4_0),
    "q4_1": ("Q4_1", gguf.LlamaFileType.MOSTLY_Q4_1),
    "q5_0": ("Q5_0", gguf.LlamaFileType.MOSTLY_Q5_0),
    "q5_1": ("Q5_1", gguf.LlamaFileType.MOSTLY_Q5_1),
    "q4_k": ("Q4_K", gguf.LlamaFileType.MOSTLY_Q4_K_S),  # a pure Q4_K file is what llama.cpp calls Q4_K_S --pure
    "q5_k": ("Q5_K", gguf.LlamaFileType.MOSTLY_Q5_K_S),
    "q6_k": ("Q6_K", gguf.LlamaFileType.MOSTLY_Q6_K),
    "q4_k_m": ("Q4_K", gguf.LlamaFileType.MOSTLY_Q4_K_M),
    "q5_k_m": ("Q5_K", gguf.LlamaFileType.MOSTLY_Q5_K_M),
}
GGUF_PY_QUANTIZES = {"F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"}  # bit-exact with ember
K_FALLBACK = {"Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}  # llama.cpp's tensor_type_fallback
# Never quantized in the test models: 1-D tensors (norms), position embeddings (llama.cpp keeps
# them), and a [1, 256] matrix, which ggml counts as 1-D (trailing dimensions of 1 do not count).
KEPT_2D = {"position_embd.weight", "dummy_row.weight"}


# ---------------------------------------------------------------------------------------------
# test models

def build_model(path: Path, *, n_layer: int = 4, tied: bool = False, dtype=np.float32, seed: int = 0,
                layer_order=None, alignment: int | None = None, poison: str | None = None) -> dict:
    """A llama-like GGUF; returns {tensor name: the float32 values as stored}."""
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), "llama")
    if alignment:
        w.add_custom_alignment(alignment)
    w.add_name("tést model ✓")
    w.add_block_count(n_layer)
    w.add_context_length(128)
    w.add_embedding_length(N_EMBD)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"tok{i}" for i in range(N_VOCAB)])
    w.add_token_scores([float(-i) for i in range(N_VOCAB)])
    w.add_token_types([1] * N_VOCAB)
    for key, value, vtype in [
        ("test.u8", 200, gguf.GGUFValueType.UINT8), ("test.i8", -100, gguf.GGUFValueType.INT8),
        ("test.u16", 60000, gguf.GGUFValueType.UINT16), ("test.i16", -30000, gguf.GGUFValueType.INT16),
        ("test.i32", -(2**31), gguf.GGUFValueType.INT32), ("test.u64", 2**64 - 1, gguf.GGUFValueType.UINT64),
        ("test.i64", -(2**63), gguf.GGUFValueType.INT64), ("test.f64", 1 / 3, gguf.GGUFValueType.FLOAT64),
        ("test.bool", True, gguf.GGUFValueType.BOOL),
    ]:
        w.add_key_value(key, value, vtype)
    w.add_array("test.nested", [[1, 2], [3, 4, 5]])
    w.add_array("test.nested_strings", [["x"], ["y", "zé"]])
    w.add_array("test.bools", [True, False, True])

    values = {}

    def add(name, shape, norm=False):
        x = (1 + 0.1 * rng.standard_normal(shape)) if norm else 0.05 * rng.standard_normal(shape) * rng.uniform(0.2, 3.0)
        x = x.astype(np.float32)
        if name == poison:
            x.flat[7] = np.nan
        stored = x if x.ndim == 1 else x.astype(dtype)
        w.add_tensor(name, stored)
        values[name] = stored.astype(np.float32)

    add("token_embd.weight", (N_VOCAB, N_EMBD))
    add("position_embd.weight", (16, N_EMBD))
    add("dummy_row.weight", (1, N_EMBD))
    add("odd_rows.weight", (8, 48))  # 48: no 32-block type fits, so F16
    for i in (layer_order or range(n_layer)):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", (N_EMBD,), norm=True)
        add(p + "attn_q.weight", (N_EMBD, N_EMBD))
        add(p + "attn_k.weight", (N_KV, N_EMBD))
        add(p + "attn_v.weight", (N_KV, N_EMBD))
        add(p + "attn_output.weight", (N_EMBD, N_EMBD))
        add(p + "ffn_norm.weight", (N_EMBD,), norm=True)
        add(p + "ffn_gate.weight", (N_FF, N_EMBD))
        add(p + "ffn_up.weight", (N_FF, N_EMBD))
        add(p + "ffn_down.weight", (N_EMBD, N_FF))
    add("output_norm.weight", (N_EMBD,), norm=True)
    if not tied:
        add("output.weight", (N_VOCAB, N_EMBD))
    finish_gguf(w)
    return values


@pytest.fixture(scope="module")
def model_f32(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "f32.gguf"
    return path, build_model(path, n_layer=4, tied=False, dtype=np.float32)


@pytest.fixture(scope="module")
def model_f16_tied(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "f16_tied.gguf"
    return path, build_model(path, n_layer=3, tied=True, dtype=np.float16, seed=1)


# ---------------------------------------------------------------------------------------------
# helpers

def raw_fields(path: Path) -> dict:
    """Each key/value exactly as stored in the file: {key: bytes}."""
    r = gguf.GGUFReader(path)
    return {k: b"".join(np.asarray(p).tobytes() for p in f.parts)
            for k, f in r.fields.items() if not k.startswith("GGUF.")}


def out_types(path: Path) -> dict:
    with ember.GGUFFile(path) as f:
        return {t.name: t.type for t in f.tensors}


def block_size(t: str) -> int:
    return quants.type_info(t)["block_size"]


def expected_single_type(name: str, shape, base: str, src_type: str) -> str:
    if len(shape) == 1 or name in KEPT_2D:
        return src_type
    t = base
    if shape[-1] % block_size(t):
        t = K_FALLBACK.get(t, "F16")
        if shape[-1] % block_size(t):
            t = "F16"
    return t


def no_leftovers(directory: Path, *allowed: str) -> None:
    extra = sorted(p.name for p in directory.iterdir() if p.name not in allowed)
    assert not extra, f"files left behind: {extra}"


def run(src, dst, qtype, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("n_threads", 2)
    return quantize_model(src, dst, qtype, **kw)


# ---------------------------------------------------------------------------------------------
# every TYPE: bytes, types, metadata, readers

def check_output(src: Path, values: dict, out: Path, qtype: str, stats: dict, expected_types: dict | None = None):
    base, file_type = TYPES[qtype]
    with ember.GGUFFile(src) as fin, ember.GGUFFile(out) as fout:
        src_types = {t.name: t.type for t in fin.tensors}
        assert [t.name for t in fout.tensors] == [t.name for t in fin.tensors]  # input order kept
        assert fout.alignment == fin.alignment
        for t in fout.tensors:
            ti = fin.tensor_info(t.name)
            assert t.shape == ti.shape, t.name
            if expected_types is not None:
                assert t.type == expected_types[t.name], f"{t.name}: {t.type}, expected {expected_types[t.name]}"
            else:
                assert t.type == expected_single_type(t.name, t.shape, base, ti.type), t.name
            if len(t.shape) == 1:
                assert t.type == "F32", t.name
            got = np.asarray(fout.raw_tensor(t.name)).reshape(-1)
            if t.type == ti.type:  # kept: the bytes as they were
                assert np.array_equal(got, np.asarray(fin.raw_tensor(t.name)).reshape(-1)), t.name
                continue
            x = values[t.name].reshape(-1, t.shape[-1])
            want = quants.quantize(x, t.type).reshape(-1)
            assert np.array_equal(got, want), f"{t.name} ({t.type}): bytes differ from ember.quants.quantize"
            if t.type in GGUF_PY_QUANTIZES:
                ref = np.asarray(gguf.quants.quantize(x, gguf.GGMLQuantizationType[t.type]))
                assert np.array_equal(got, ref.view(np.uint8).reshape(-1)), f"{t.name} ({t.type}): differs from gguf-py"
        assert stats["n_tensors"] == len(fout.tensors)
        assert stats["tensor_types"] == dict(Counter(t.type for t in fout.tensors))
        assert stats["n_copied"] == sum(t.type == src_types[t.name] for t in fout.tensors)
        assert stats["n_converted"] + stats["n_copied"] == stats["n_tensors"]
        assert stats["output_bytes"] == os.path.getsize(out) and stats["input_bytes"] == os.path.getsize(src)
        assert stats["file_type"] == int(file_type) and stats["file_type_name"] == file_type.name

    # Metadata: every key/value byte for byte, except the two the quantizer sets.
    before, after = raw_fields(src), raw_fields(out)
    assert list(after)[: len(before)] == list(before)  # same keys, same order; new keys appended
    for key, raw in before.items():
        if key not in ("general.file_type", "general.quantization_version"):
            assert after[key] == raw, key
    r = gguf.GGUFReader(out)
    assert r.fields["general.file_type"].types == [gguf.GGUFValueType.UINT32]
    assert r.fields["general.file_type"].contents() == int(file_type)
    assert r.fields["general.quantization_version"].contents() == 2
    # gguf-py reads the data where ember put it
    with ember.GGUFFile(out) as f:
        for t in r.tensors:
            data = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type)
            want = f.read_tensor(t.name)
            assert np.array_equal(data.reshape(want.shape), want), t.name


@pytest.mark.parametrize("qtype", [t for t in TYPES if not t.endswith("_m")])
def test_single_types_from_f32(model_f32, tmp_path, qtype):
    src, values = model_f32
    out = tmp_path / f"{qtype}.gguf"
    stats = run(src, out, qtype)
    check_output(src, values, out, qtype, stats)
    base = TYPES[qtype][0]
    # fallbacks: odd_rows (48) for every block type, ffn_down (320) for the K-quants
    assert stats["n_fallback"] == (0 if base in ("F16", "BF16") else 1 + (4 if base.endswith("_K") else 0))
    no_leftovers(tmp_path, out.name)


@pytest.mark.parametrize("qtype", [t for t in TYPES if not t.endswith("_m")])
def test_single_types_from_f16_tied(model_f16_tied, tmp_path, qtype):
    src, values = model_f16_tied
    out = tmp_path / f"{qtype}.gguf"
    stats = run(src, out, qtype)
    check_output(src, values, out, qtype, stats)


# ---------------------------------------------------------------------------------------------
# the mixes, against hand-written tables
#
# llama.cpp (llama_tensor_get_type), for Q4_K_M and Q5_K_M, base Q4_K / Q5_K:
#  - output.weight -> Q6_K; with no output.weight (tied), token_embd.weight -> Q6_K instead;
#  - attn_v and ffn_down -> Q6_K on use_more_bits layers: i < n/8, i >= 7n/8, (i - n/8) % 3 == 2;
#    n = 4: layers 2 (i % 3 == 2) and 3 (>= 3); n = 3: layer 2; n = 12: layers 0, 3, 6, 9, 10, 11;
#  - rows not a multiple of 256: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0; not a multiple of
#    32 either -> F16. ffn_down rows are 320 long here, odd_rows 48.

def mix_table(n_layer, more_bits, *, tied, base, src_2d):
    low = {"Q4_K": "Q5_0", "Q5_K": "Q5_1"}[base]  # base on 320-long rows
    t = {
        "token_embd.weight": "Q6_K" if tied else base,
        "position_embd.weight": src_2d,
        "dummy_row.weight": src_2d,
        "odd_rows.weight": "F16",
        "output_norm.weight": "F32",
    }
    if not tied:
        t["output.weight"] = "Q6_K"
    for i in range(n_layer):
        p = f"blk.{i}."
        t.update({p + "attn_norm.weight": "F32", p + "ffn_norm.weight": "F32",
                  p + "attn_q.weight": base, p + "attn_k.weight": base, p + "attn_output.weight": base,
                  p + "ffn_gate.weight": base, p + "ffn_up.weight": base,
                  p + "attn_v.weight": "Q6_K" if i in more_bits else base,
                  p + "ffn_down.weight": "Q8_0" if i in more_bits else low})
    return t


@pytest.mark.parametrize("qtype", ["q4_k_m", "q5_k_m"])
def test_mix_untied_4_layers(model_f32, tmp_path, qtype):
    src, values = model_f32
    out = tmp_path / "mix.gguf"
    stats = run(src, out, qtype)
    table = mix_table(4, {2, 3}, tied=False, base=TYPES[qtype][0], src_2d="F32")
    check_output(src, values, out, qtype, stats, expected_types=table)
    assert stats["n_fallback"] == 5  # 4 ffn_down + odd_rows


@pytest.mark.parametrize("qtype", ["q4_k_m", "q5_k_m"])
def test_mix_tied_3_layers_f16(model_f16_tied, tmp_path, qtype):
    src, values = model_f16_tied
    out = tmp_path / "mix.gguf"
    stats = run(src, out, qtype)
    table = mix_table(3, {2}, tied=True, base=TYPES[qtype][0], src_2d="F16")
    check_output(src, values, out, qtype, stats, expected_types=table)


def test_mix_counts_layers_in_layer_order_not_file_order(tmp_path):
    # Tensors stored blk.0, blk.1, blk.10, blk.11, blk.2, ... (as in SmolLM2's file): llama.cpp
    # walks them sorted by layer number, so the more-bits layers are 0, 3, 6, 9, 10, 11.
    src = tmp_path / "twelve.gguf"
    order = sorted(range(12), key=str)
    values = build_model(src, n_layer=12, layer_order=order)
    out = tmp_path / "out.gguf"
    stats = run(src, out, "q4_k_m")
    table = mix_table(12, {0, 3, 6, 9, 10, 11}, tied=False, base="Q4_K", src_2d="F32")
    check_output(src, values, out, "q4_k_m", stats, expected_types=table)


# ---------------------------------------------------------------------------------------------
# requantization, copies, threads, layout

def test_requantize_refused_then_allowed(model_f32, tmp_path):
    src, _ = model_f32
    q8 = tmp_path / "q8.gguf"
    run(src, q8, "q8_0")
    out = tmp_path / "q4.gguf"
    with pytest.raises(ValueError, match=r"tensor 'token_embd.weight' is already quantized \(Q8_0\).*Q4_0.*--allow-requantize"):
        run(q8, out, "q4_0")
    assert not out.exists()
    no_leftovers(tmp_path, q8.name)

    stats = run(q8, out, "q4_0", allow_requantize=True)
    with ember.GGUFFile(q8) as f:
        dequantized = {t.name: f.read_tensor(t.name) for t in f.tensors}
    check_output(q8, dequantized, out, "q4_0", stats)

    # up in precision needs no permission: Q4_0 -> Q8_0, Q4_0 -> F16
    for qtype in ("q8_0", "f16"):
        up = tmp_path / f"up_{qtype}.gguf"
        stats = run(out, up, qtype)
        with ember.GGUFFile(out) as f:
            dequantized = {t.name: f.read_tensor(t.name) for t in f.tensors}
        check_output(out, dequantized, up, qtype, stats)


def test_same_type_copies_bytes(model_f32, tmp_path):
    src, _ = model_f32
    q5 = tmp_path / "q5.gguf"
    run(src, q5, "q5_1")
    again = tmp_path / "again.gguf"
    stats = run(q5, again, "q5_1")
    assert stats["n_copied"] == stats["n_tensors"] and stats["n_converted"] == 0
    assert again.read_bytes() == q5.read_bytes()  # same metadata, same types: the same file


def test_thread_count_does_not_change_the_output(model_f32, tmp_path):
    src, _ = model_f32
    outs = []
    for n in (1, 3, 0):
        out = tmp_path / f"t{n}.gguf"
        stats = run(src, out, "q4_k_m", n_threads=n)
        assert stats["n_threads"] == (n or os.cpu_count() or stats["n_threads"])
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]


def test_alignment_and_3d_tensors(tmp_path):
    src = tmp_path / "experts.gguf"
    rng = np.random.default_rng(5)
    w = gguf.GGUFWriter(str(src), "llama")
    w.add_custom_alignment(64)
    x = rng.standard_normal((3, 40, 256)).astype(np.float32)  # three experts of 40 x 256
    w.add_tensor("blk.0.ffn_up_exps.weight", x)
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(256, np.float32))
    finish_gguf(w)
    out = tmp_path / "out.gguf"
    run(src, out, "q6_k")
    with ember.GGUFFile(out) as f:
        assert f.alignment == 64
        assert all((t.offset - f.data_offset) % 64 == 0 for t in f.tensors)
        t = f.tensor_info("blk.0.ffn_up_exps.weight")
        assert t.type == "Q6_K" and t.shape == (3, 40, 256)
        assert np.array_equal(np.asarray(f.raw_tensor(t.name)).reshape(-1), quants.quantize(x.reshape(-1, 256), "q6_k").reshape(-1))


# ---------------------------------------------------------------------------------------------
# errors: clear, and nothing left behind

def test_bad_arguments(model_f32, tmp_path):
    src, _ = model_f32
    out = tmp_path / "out.gguf"
    with pytest.raises(ValueError, match=r"unknown quantization type 'q3_k_s'.*q4_k_m"):
        run(src, out, "q3_k_s")
    with pytest.raises(ValueError, match="unknown quantization type"):
        ember._core.quantize_model(str(src), str(out), "q9_9", 1, False, False)  # the core checks too
    with pytest.raises(TypeError, match="qtype must be a str"):
        run(src, out, 4)
    with pytest.raises(TypeError, match="n_threads must be an int"):
        run(src, out, "q4_0", n_threads="2")
    with pytest.raises(TypeError, match="n_threads must be an int"):
        run(src, out, "q4_0", n_threads=True)
    with pytest.raises(ValueError, match="n_threads must be between"):
        run(src, out, "q4_0", n_threads=-1)
    with pytest.raises(TypeError, match="allow_requantize must be a bool"):
        run(src, out, "q4_0", allow_requantize=1)
    with pytest.raises(TypeError, match="input must be a path"):
        run(None, out, "q4_0")
    assert QUANTIZE_MODEL_TYPES == tuple(TYPES)
    no_leftovers(tmp_path)


def test_bad_files(model_f32, tmp_path):
    src, _ = model_f32
    out = tmp_path / "out.gguf"
    with pytest.raises(FileNotFoundError, match="missing.gguf"):
        run(tmp_path / "missing.gguf", out, "q4_0")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all")
    with pytest.raises(ember.GGUFError, match=r"junk.gguf.*not a GGUF file"):
        run(junk, out, "q4_0")
    with pytest.raises(FileNotFoundError, match=r"cannot create output file .*no_such_dir"):
        run(src, tmp_path / "no_such_dir" / "out.gguf", "q4_0")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        run(src, tmp_path, "q4_0")
    no_leftovers(tmp_path, junk.name)


def test_output_is_input(model_f32, tmp_path):
    src, _ = model_f32
    copy = tmp_path / "model.gguf"
    copy.write_bytes(src.read_bytes())
    before = copy.read_bytes()
    with pytest.raises(ValueError, match="is the input file"):
        run(copy, copy, "q4_0")
    link = tmp_path / "link.gguf"
    link.symlink_to(copy)
    with pytest.raises(ValueError, match="is the input file"):
        run(copy, link, "q4_0")
    with pytest.raises(ValueError, match="is the input file"):
        run(copy, f"{tmp_path}/./model.gguf", "q4_0")
    assert copy.read_bytes() == before
    no_leftovers(tmp_path, copy.name, link.name)


def test_failure_mid_run_leaves_nothing_and_keeps_an_existing_output(tmp_path):
    src = tmp_path / "nan.gguf"
    build_model(src, n_layer=2, poison="blk.1.ffn_up.weight")
    out = tmp_path / "out.gguf"
    out.write_bytes(b"precious")
    with pytest.raises(ember.GGUFError, match=r"nan.gguf': tensor 'blk.1.ffn_up.weight'.*non-finite"):
        run(src, out, "q4_k")  # fails after several tensors were written
    assert out.read_bytes() == b"precious"
    no_leftovers(tmp_path, src.name, out.name)


# ---------------------------------------------------------------------------------------------
# command line

def test_cli_quantize(model_f32, tmp_path, capsys):
    src, _ = model_f32
    out = tmp_path / "cli.gguf"
    assert cli.main(["quantize", str(src), str(out), "Q4_K_M", "-t", "2"]) == 0
    err = capsys.readouterr().err.splitlines()
    n = len(out_types(out))
    assert len(err) == n + 3
    assert re.fullmatch(r"\[ *1/ *%d\] token_embd\.weight +F32 +-> Q4_K +\[384, 256\]  \d+\.\d KiB" % n, err[0]), err[0]
    assert any(re.match(r"\[ *\d+/\d+\] blk\.0\.attn_norm\.weight +F32 +-> F32 .*\(copied\)", line) for line in err)
    assert any("blk.0.ffn_down.weight" in line and "-> Q5_0" in line and "fallback" in line for line in err)
    assert err[-3].startswith(f"done: {n} tensors (") and "on 2 threads" in err[-3]
    # by type id; Q6_K: output + attn_v of layers 2, 3 (their ffn_down fell back to Q8_0)
    assert err[-2] == "types: F32 11, F16 1, Q5_0 2, Q8_0 2, Q4_K 23, Q6_K 3"
    assert err[-1].startswith("size: ") and "MOSTLY_Q4_K_M" in err[-1]
    assert out_types(out)["output.weight"] == "Q6_K"

    quiet = tmp_path / "quiet.gguf"
    assert cli.main(["quantize", str(src), str(quiet), "q8_0", "--quiet"]) == 0
    assert capsys.readouterr().err == ""

    q8 = quiet
    refused = tmp_path / "refused.gguf"
    assert cli.main(["quantize", str(q8), str(refused), "q4_0", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ember quantize: error: ") and err.count("\n") == 1 and "--allow-requantize" in err
    assert not refused.exists()
    assert cli.main(["quantize", str(q8), str(refused), "q4_0", "--quiet", "--allow-requantize"]) == 0
    assert out_types(refused)["blk.0.attn_q.weight"] == "Q4_0"

    for argv in (["quantize", str(src), str(tmp_path / "x.gguf"), "q2_k"],
                 ["quantize", str(tmp_path / "missing.gguf"), str(tmp_path / "x.gguf"), "q4_0"],
                 ["quantize", str(src), str(tmp_path / "nodir" / "x.gguf"), "q4_0"],
                 ["quantize", str(src), str(src), "q4_0"]):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("ember quantize: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "x.gguf").exists()


def test_cli_subprocess(model_f32, tmp_path):
    src, _ = model_f32
    out = tmp_path / "sub.gguf"
    done = subprocess.run([sys.executable, "-m", "ember.cli", "quantize", str(src), str(out), "q5_0", "-t", "1"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "MOSTLY_Q5_0" in done.stderr and out.exists()
    done = subprocess.run([sys.executable, "-m", "ember.cli", "quantize", str(src)], capture_output=True, text=True)
    assert done.returncode == 2 and "output" in done.stderr  # argparse: missing arguments


# ---------------------------------------------------------------------------------------------
# real models

@pytest.mark.slow
def test_smollm2_to_q8_0_and_q4_k_m(smollm2_path, tmp_path):
    out = tmp_path / "smollm2-q8_0.gguf"
    stats = run(smollm2_path, out, "q8_0")
    assert stats["tensor_types"] == {"F32": 61, "Q8_0": 211} and stats["n_copied"] == 62  # + token_embd, already Q8_0
    r = gguf.GGUFReader(out)
    assert r.fields["general.file_type"].contents() == int(gguf.LlamaFileType.MOSTLY_Q8_0)
    with ember.GGUFFile(smollm2_path) as fin, ember.GGUFFile(out) as fout:
        assert len(fout.tensors) == 272
        for name in ("token_embd.weight", "blk.0.attn_q.weight", "blk.17.ffn_down.weight", "output_norm.weight"):
            x, y = fin.read_tensor(name), fout.read_tensor(name)
            raw = np.asarray(fout.raw_tensor(name)).reshape(-1)
            if fin.tensor_info(name).type == fout.tensor_info(name).type:
                assert np.array_equal(raw, np.asarray(fin.raw_tensor(name)).reshape(-1)), name
                continue
            assert np.array_equal(raw, quants.quantize(x.reshape(-1, x.shape[-1]), "q8_0").reshape(-1)), name
            # Q8_0: half a step (block max / 127) per value, plus the step's fp16 rounding times 127
            blocks = x.reshape(-1, 32)
            step = np.abs(blocks).max(axis=1, keepdims=True) / 127
            assert np.all(np.abs(y.reshape(-1, 32) - blocks) <= step * (0.5 + 127 * 2.0**-11) + 1e-7), name

    # Q4_K_M lowers Q4_1 (5.0 bits) to Q4_K (4.5) in most ffn_down: refused unless allowed.
    mixed = tmp_path / "smollm2-q4_k_m.gguf"
    with pytest.raises(ValueError, match=r"tensor 'blk\.\d+\.ffn_down\.weight' is already quantized \(Q4_1\)"):
        run(smollm2_path, mixed, "q4_k_m")
    assert not mixed.exists()
    stats = run(smollm2_path, mixed, "q4_k_m", allow_requantize=True)
    types = out_types(mixed)
    # 576-long rows fall back (Q4_K -> Q5_0, Q6_K -> Q8_0); the tied token_embd takes the output
    # rule: Q8_0 for rows that are not a multiple of 256; ffn_down rows are 1536 long.
    assert types["token_embd.weight"] == "Q8_0"
    more_bits = {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29}  # n = 30: i < 3, i >= 26, (i - 3) % 3 == 2
    for i in range(30):
        assert types[f"blk.{i}.attn_v.weight"] == ("Q8_0" if i in more_bits else "Q5_0"), i
        assert types[f"blk.{i}.ffn_down.weight"] == ("Q6_K" if i in more_bits else "Q4_K"), i
        assert types[f"blk.{i}.attn_q.weight"] == "Q5_0"
    assert stats["tensor_types"] == {"F32": 61, "Q5_0": 166, "Q8_0": 15, "Q4_K": 16, "Q6_K": 14}
    with ember.GGUFFile(mixed) as f:
        w = f.read_tensor("blk.3.ffn_down.weight")
        assert w.shape == (576, 1536) and np.isfinite(w).all()


@pytest.mark.slow
def test_gemma3_q4_k_m_reproduces_llama_cpp(gemma3_path, tmp_path):
    # The Gemma 3 file was made by llama.cpp's quantizer (Q4_K_M; 640-long rows, tied embeddings,
    # 18 layers). Our rules choose the same type for every tensor, so every tensor is copied and
    # the output is the input, byte for byte.
    out = tmp_path / "gemma.gguf"
    stats = run(gemma3_path, out, "q4_k_m")
    assert stats["n_copied"] == stats["n_tensors"] == 236
    assert stats["n_fallback"] == 90  # 81 Q4_K -> Q5_0 and 9 Q6_K (attn_v) -> Q8_0
    assert out.read_bytes() == Path(gemma3_path).read_bytes()


@pytest.mark.slow
def test_ctrl_c_cancels_and_leaves_nothing(smollm2_path, tmp_path):
    # The core takes the GIL between tensors to look for signals: Ctrl-C stops the run, removes
    # the temporary file and raises KeyboardInterrupt.
    src = tmp_path / "f16.gguf"
    run(smollm2_path, src, "f16")
    out = tmp_path / "out.gguf"
    child = (
        "import signal, sys\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from ember.quantize import quantize_model\n"
        "print('start', flush=True)\n"
        "try:\n"
        f"    quantize_model({str(src)!r}, {str(out)!r}, 'q4_k', n_threads=1, progress=False)\n"
        "    print('finished')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(ember.__file__).parent.parent),
                                                                     os.environ.get("PYTHONPATH")])))
    p = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().strip() == "start"
    time.sleep(0.5)  # the run takes several seconds on one thread
    p.send_signal(signal.SIGINT)
    stdout, _ = p.communicate(timeout=60)
    assert stdout.strip() == "interrupted"
    no_leftovers(tmp_path, src.name)
