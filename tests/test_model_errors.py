"""Bad models and bad arguments get clear errors: a file that is not GGUF, a truncated one, an
unsupported architecture, missing or misshapen tensors, tensor types ember cannot compute with,
missing or inconsistent hyper-parameters, bad context arguments. Each is an exception naming the
problem (GGUFError for the file, ValueError for arguments), never a crash."""

from pathlib import Path

import gguf
import numpy as np
import pytest

import ember
from conftest import finish_gguf
from ember import GGUFError

GV = gguf.GGUFValueType


def copy_gguf(src: Path, dst: Path, *, arch=None, set_kv=None, drop_kv=(), drop_tensors=(), tensors=None):
    """Rewrite a GGUF file with some key/values or tensors changed (gguf-py reads and writes)."""
    r = gguf.GGUFReader(src)
    old_arch = r.fields["general.architecture"].contents()
    arch = arch or old_arch
    w = gguf.GGUFWriter(str(dst), arch)
    set_kv = dict(set_kv or {})
    for name, field in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture" or name in drop_kv or name in set_kv:
            continue
        key = name.replace(f"{old_arch}.", f"{arch}.", 1) if name.startswith(f"{old_arch}.") else name
        vtype = field.types[0]
        sub = field.types[-1] if vtype == GV.ARRAY else None
        w.add_key_value(key, field.contents(), vtype, sub)
    for key, (value, vtype) in set_kv.items():
        w.add_key_value(key, value, vtype, GV.BOOL if vtype == GV.ARRAY else None)
    replaced = dict(tensors or {})
    for t in r.tensors:
        if t.name in drop_tensors:
            continue
        if t.name in replaced:
            data, qtype = replaced.pop(t.name)
            w.add_tensor(t.name, data, raw_dtype=qtype)
            continue
        w.add_tensor(t.name, np.asarray(t.data), raw_shape=list(reversed([int(x) for x in t.shape])), raw_dtype=t.tensor_type)
    finish_gguf(w)
    return dst


def load(path, **kw):
    return ember.Model(path, n_ctx=64, verbose=False, **kw)


def test_not_a_gguf_file(tmp_path):
    p = tmp_path / "notes.gguf"
    p.write_text("hello, I am not a model\n" * 10)
    with pytest.raises(GGUFError, match="GGUF"):
        load(p)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.gguf")
    with pytest.raises(GGUFError):
        load(tmp_path)  # a directory


def test_truncated_file(tiny_gguf, tmp_path):
    data = tiny_gguf.read_bytes()
    for cut in (10, len(data) // 3, len(data) - 100):
        p = tmp_path / f"cut{cut}.gguf"
        p.write_bytes(data[:cut])
        with pytest.raises(GGUFError):
            load(p)


def test_unsupported_architecture(tiny_gguf, tmp_path):
    p = copy_gguf(tiny_gguf, tmp_path / "gpt2.gguf", arch="gpt2")
    with pytest.raises(GGUFError, match=r"architecture 'gpt2' is not supported \(supported: llama, qwen2, qwen3, gemma3\)"):
        load(p)
    with pytest.raises(GGUFError, match="architecture 'mamba' is not supported"):
        load(copy_gguf(tiny_gguf, tmp_path / "mamba.gguf", arch="mamba"))


def test_missing_tensors(tiny_gguf, tmp_path):
    for name in ("blk.1.attn_q.weight", "blk.0.ffn_down.weight", "output_norm.weight", "token_embd.weight"):
        p = copy_gguf(tiny_gguf, tmp_path / f"no-{name}.gguf", drop_tensors=(name,))
        with pytest.raises(GGUFError, match=rf"tensor '{name}': missing \(the llama architecture needs it\)"):
            load(p)


def test_misshapen_and_unusable_tensors(tiny_gguf, tmp_path):
    r = gguf.GGUFReader(tiny_gguf)
    q = next(t for t in r.tensors if t.name == "blk.0.attn_q.weight")
    wrong = np.zeros((int(q.shape[1]) + 1, int(q.shape[0])), np.float32)  # one row too many
    p = copy_gguf(tiny_gguf, tmp_path / "shape.gguf", tensors={q.name: (wrong, None)})
    with pytest.raises(GGUFError, match=r"tensor 'blk.0.attn_q.weight': has shape .* expected"):
        load(p)
    # a type ember has no kernel for (IQ4_NL: 18 bytes per 32 values)
    rows, cols = int(q.shape[1]), int(q.shape[0])
    raw = np.zeros((rows, cols // 32 * 18), np.uint8)
    p = copy_gguf(tiny_gguf, tmp_path / "iq4.gguf", tensors={q.name: (raw, gguf.GGMLQuantizationType.IQ4_NL)})
    with pytest.raises(GGUFError, match="has type IQ4_NL, which ember cannot compute with"):
        load(p)
    norm = np.zeros(7, np.float32)
    p = copy_gguf(tiny_gguf, tmp_path / "norm.gguf", tensors={"blk.0.attn_norm.weight": (norm, None)})
    with pytest.raises(GGUFError, match="attn_norm.weight': has shape"):
        load(p)


def test_bad_hyper_parameters(tiny_gguf, tmp_path):
    cases = [
        (dict(drop_kv=("llama.block_count",)), r"'llama.block_count': missing"),
        (dict(drop_kv=("llama.embedding_length",)), r"'llama.embedding_length': missing"),
        (dict(set_kv={"llama.attention.head_count_kv": (3, GV.UINT32)}), "does not divide head_count"),
        (dict(set_kv={"llama.attention.head_count": (0, GV.UINT32)}), r"head_count': value 0 is outside"),
        (dict(set_kv={"llama.block_count": (10**9, GV.UINT32)}), r"block_count': value 1000000000 is outside"),
        (dict(set_kv={"llama.block_count": ("two", GV.STRING)}), "must be an integer"),
        (dict(set_kv={"llama.rope.freq_base": (float("nan"), GV.FLOAT32)}), "freq_base': value nan is outside"),
        (dict(set_kv={"llama.rope.dimension_count": (17, GV.UINT32)}), "dimension_count': .*(outside|even)"),
        (dict(set_kv={"llama.rope.scaling.type": ("longrope", GV.STRING)}), "RoPE scaling 'longrope' is not supported"),
        (dict(set_kv={"llama.rope.scaling.type": ("yarn", GV.STRING)}), "scaling"),
        (dict(set_kv={"llama.block_count": (3, GV.UINT32)}), r"tensor 'blk.2.attn_norm.weight': missing"),
        (dict(drop_kv=("tokenizer.ggml.tokens",)), "tokenizer.ggml.tokens"),
    ]
    for i, (kw, match) in enumerate(cases):
        p = copy_gguf(tiny_gguf, tmp_path / f"hp{i}.gguf", **kw)
        with pytest.raises(GGUFError, match=match):
            load(p)


def test_bad_context_arguments(tiny_gguf):
    for kw, exc, match in [
        (dict(n_ctx=0), ValueError, "n_ctx must be positive"),
        (dict(n_ctx=-5), ValueError, "n_ctx must be positive"),
        (dict(n_ctx="4096"), TypeError, "n_ctx"),
        (dict(n_ctx=1 << 30), ValueError, "n_ctx .* too large"),
        (dict(n_threads=0), ValueError, "n_threads"),
        (dict(n_threads=2.5), TypeError, "n_threads"),
        (dict(kv_type="q8_0"), ValueError, "kv_type must be 'f16' or 'f32'"),
        (dict(kv_type=16), TypeError, "kv_type"),
        (dict(n_seq_max=0), ValueError, "n_seq_max"),
        (dict(n_batch=0), ValueError, "n_batch"),
        (dict(kv_block_size=0), ValueError, "kv_block_size"),
        (dict(kv_blocks=0), ValueError, "kv_blocks"),
    ]:
        with pytest.raises(exc, match=match):
            ember.Model(tiny_gguf, verbose=False, **{"n_ctx": 64, **kw})
    m = ember.Model(tiny_gguf, n_ctx=64, kv_type="F32", verbose=False)  # case does not matter
    assert m.info["kv_type"] == "F32"


def test_token_ids_out_of_range(tiny_gguf):
    m = load(tiny_gguf)
    for ids in ([m.n_vocab], [-1], [0, 2**31 - 1]):
        with pytest.raises(ValueError, match="out of range"):
            m.logits(ids)
        with pytest.raises(ValueError, match="out of range"):
            m.generate(ids, max_tokens=1)
    with pytest.raises((ValueError, TypeError)):
        m.logits([2**40])
    assert m.kv_usage()["sequences"] == 0
