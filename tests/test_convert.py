"""The converter: tiny random Hugging Face models of every supported family → GGUF, compared
tensor by tensor with the source; the real SmolLM2 checkpoint round trip; bad inputs."""

import json
import os
import resource
import shutil
import subprocess
import sys
import time

import gguf
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

import ember
from ember.convert import CheckpointError, ConfigError, convert
from ember.convert.arch import unpermute_qk
from tiny_models import FAMILIES, make_tiny_model

GQ = gguf.GGMLQuantizationType

def hf_to_gguf_name(arch, name):
    return arch.gguf_name(name)


def _source_tensors(model):
    return {k: v.detach().float().numpy() for k, v in model.state_dict().items()}


def _compare(family, name, gguf_data, source, cfg):
    """Undo the documented permutation (exact), or redo Gemma's +1 on norms (exact in that direction)."""
    if family in ("llama", "mistral") and name.endswith("attn_q.weight"):
        gguf_data = unpermute_qk(gguf_data, cfg.num_attention_heads)
    elif family in ("llama", "mistral") and name.endswith("attn_k.weight"):
        gguf_data = unpermute_qk(gguf_data, cfg.num_key_value_heads)
    elif family == "gemma3" and name.endswith("norm.weight"):
        source = source + np.float32(1)
    np.testing.assert_array_equal(gguf_data, source, err_msg=f"{family}: {name}")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_f32_conversion_equals_the_source(family, tmp_path):
    src = tmp_path / "hf"
    model = make_tiny_model(family, src, tie=family == "gemma3")
    out = tmp_path / "out.gguf"
    result = convert(src, out, "f32", progress=False)
    assert result.path == out and out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    from ember.convert.arch import architecture_for

    arch = architecture_for(json.loads((src / "config.json").read_text()))
    source = _source_tensors(model)
    cfg = model.config
    with ember.GGUFFile(out) as f:
        md = f.metadata
        gguf_arch = {"mistral": "llama", "gemma3": "gemma3"}.get(family, family)
        assert md["general.architecture"] == gguf_arch
        assert md["general.file_type"] == int(gguf.LlamaFileType.ALL_F32)
        assert md[f"{gguf_arch}.block_count"] == 2
        assert md[f"{gguf_arch}.embedding_length"] == 64
        assert md[f"{gguf_arch}.feed_forward_length"] == 96
        assert md[f"{gguf_arch}.attention.head_count"] == 4
        assert md[f"{gguf_arch}.attention.head_count_kv"] == 2
        assert md[f"{gguf_arch}.context_length"] == 256
        assert md[f"{gguf_arch}.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-5)
        assert md[f"{gguf_arch}.rope.freq_base"] == pytest.approx(1e6 if family == "gemma3" else cfg.rope_parameters["rope_theta"])
        if family in ("qwen3", "gemma3"):
            assert md[f"{gguf_arch}.attention.key_length"] == cfg.head_dim
        if family == "gemma3":
            assert md["gemma3.attention.sliding_window"] == 16
        assert md["tokenizer.ggml.model"] == "gpt2" and len(md["tokenizer.ggml.tokens"]) == cfg.vocab_size
        names = {t.name for t in f.tensors}
        expected = {hf_to_gguf_name(arch, k) for k in source if not k.endswith("inv_freq")}
        if family == "gemma3":  # tied: the checkpoint stores no lm_head, GGUF has no output tensor
            expected.discard("output.weight")
            assert "output.weight" not in names
        assert names == expected
        if family == "qwen2":
            assert "blk.0.attn_q.bias" in names
        if family in ("qwen3", "gemma3"):
            assert "blk.1.attn_k_norm.weight" in names
        for hf_name, want in source.items():
            gname = hf_to_gguf_name(arch, hf_name)
            if gname not in names:
                continue
            info = f.tensor_info(gname)
            assert info.type == "F32"
            _compare(family, gname, f.read_tensor(gname), want, cfg)
    # gguf-py reads the file too
    assert len(gguf.GGUFReader(out).tensors) == len(names)


@pytest.mark.parametrize("outtype", ["f16", "bf16", "q8_0", "q4_0", "q4_1"])
def test_quantized_outtypes_equal_gguf_py(outtype, tmp_path):
    src = tmp_path / "hf"
    model = make_tiny_model("qwen2", src)
    out = tmp_path / "out.gguf"
    convert(src, out, outtype, progress=False)
    source = _source_tensors(model)
    want_type = GQ[outtype.upper()]
    r = gguf.GGUFReader(out)
    assert int(r.fields["general.file_type"].contents()) == int(
        {"f16": gguf.LlamaFileType.MOSTLY_F16, "bf16": gguf.LlamaFileType.MOSTLY_BF16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
         "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0, "q4_1": gguf.LlamaFileType.MOSTLY_Q4_1}[outtype])
    from ember.convert.arch import architecture_for

    arch = architecture_for(json.loads((src / "config.json").read_text()))
    by_name = {arch.gguf_name(k): v for k, v in source.items()}
    for t in r.tensors:
        data = by_name[t.name]
        if data.ndim == 1:
            assert t.tensor_type == GQ.F32, t.name
            continue
        assert t.tensor_type == want_type, t.name
        want = gguf.quants.quantize(data.astype(np.float32), want_type)
        assert np.array_equal(np.asarray(t.data).view(np.uint8).ravel(), np.asarray(want).view(np.uint8).ravel()), t.name


def test_sharded_checkpoint(tmp_path):
    src = tmp_path / "hf"
    model = make_tiny_model("llama", src, shard=True)
    assert (src / "model.safetensors.index.json").exists()
    out = tmp_path / "out.gguf"
    convert(src, out, "f32", progress=False)
    with ember.GGUFFile(out) as f:
        emb = f.read_tensor("token_embd.weight")
    np.testing.assert_array_equal(emb, model.model.embed_tokens.weight.detach().numpy())


# ------------------------------------------------------------------------------- bad input
def _assert_fails(src, out, exc, match, outtype="f32"):
    with pytest.raises(exc, match=match):
        convert(src, out, outtype, progress=False)
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")], "temporary file left behind"


def test_bad_inputs(tmp_path):
    out = tmp_path / "out" / "model.gguf"
    out.parent.mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    _assert_fails(empty, out, CheckpointError, "no config.json")
    _assert_fails(tmp_path / "nope", out, CheckpointError, "not a directory")

    src = tmp_path / "hf"
    make_tiny_model("llama", src)
    _assert_fails(src, out, ValueError, "unknown outtype", outtype="q9")

    cfg = json.loads((src / "config.json").read_text())
    bad = tmp_path / "unknown_arch"
    shutil.copytree(src, bad)
    (bad / "config.json").write_text(json.dumps({**cfg, "architectures": ["FancyForCausalLM"], "model_type": "fancy"}))
    _assert_fails(bad, out, ConfigError, "unsupported architecture FancyForCausalLM")

    wrong = tmp_path / "wrong_shape"
    shutil.copytree(src, wrong)
    (wrong / "config.json").write_text(json.dumps({**cfg, "intermediate_size": 100}))
    _assert_fails(wrong, out, ConfigError, r"mlp.*has shape \[.*\], but config.json implies")

    trunc = tmp_path / "truncated"
    shutil.copytree(src, trunc)
    st = trunc / "model.safetensors"
    st.write_bytes(st.read_bytes()[: st.stat().st_size // 2])
    _assert_fails(trunc, out, CheckpointError, "truncated")

    garbage = tmp_path / "garbage"
    shutil.copytree(src, garbage)
    (garbage / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json!!}....")
    _assert_fails(garbage, out, CheckpointError, "not valid JSON")

    nojson = tmp_path / "badconfig"
    shutil.copytree(src, nojson)
    (nojson / "config.json").write_text("{")
    _assert_fails(nojson, out, CheckpointError, "config.json: not valid JSON")

    missing_layer = tmp_path / "missing_layer"
    shutil.copytree(src, missing_layer)
    (missing_layer / "config.json").write_text(json.dumps({**cfg, "num_hidden_layers": 3}))
    _assert_fails(missing_layer, out, ConfigError, "no weights for layer 2")

    no_weights = tmp_path / "no_weights"
    shutil.copytree(src, no_weights)
    (no_weights / "model.safetensors").unlink()
    _assert_fails(no_weights, out, CheckpointError, "no \\*.safetensors")


# ------------------------------------------------------------------------------- a real checkpoint
@pytest.mark.slow
def test_smollm2_round_trip(smollm2_path, smollm2_hf, tmp_path):
    out = tmp_path / "smollm2-f32.gguf"
    # Convert in a child process so its time and peak memory are its own.
    code = ("import sys, time; from ember.convert import convert; t = time.perf_counter(); "
            "convert(sys.argv[1], sys.argv[2], 'f32', progress=False); "
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
            "print(time.perf_counter() - t, int(hwm) // 1024)")
    done = subprocess.run([sys.executable, "-c", code, str(smollm2_hf), str(out)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr[-2000:]
    seconds, peak_mib = done.stdout.split()
    print(f"SmolLM2 HF -> F32 GGUF: {float(seconds):.1f} s, peak RSS {peak_mib} MiB, {out.stat().st_size / 2**20:.0f} MiB")

    with ember.GGUFFile(smollm2_path) as orig, ember.GGUFFile(out) as mine:
        assert {t.name for t in mine.tensors} == {t.name for t in orig.tensors}
        for t in orig.tensors:
            assert mine.tensor_info(t.name).type == "F32"
            np.testing.assert_array_equal(mine.read_tensor(t.name), orig.read_tensor(t.name), err_msg=t.name)
        a, b = orig.metadata, mine.metadata
        for key in ("llama.block_count", "llama.context_length", "llama.embedding_length", "llama.feed_forward_length",
                    "llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.freq_base",
                    "llama.attention.layer_norm_rms_epsilon", "llama.vocab_size", "llama.rope.dimension_count",
                    "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                    "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                    "tokenizer.chat_template"):
            assert b.get(key) == a.get(key), key


def test_cli_convert(tmp_path, capsys):
    from ember import cli

    src = tmp_path / "hf"
    make_tiny_model("qwen3", src)
    out = tmp_path / "tiny.gguf"
    assert cli.main(["convert", str(src), "-o", str(out), "--outtype", "q8_0"]) == 0
    err = capsys.readouterr().err
    assert "ember convert: wrote" in err and "Q8_0" in err
    with ember.GGUFFile(out) as f:
        assert f.metadata["general.architecture"] == "qwen3"
    assert cli.main(["convert", str(tmp_path / "missing"), "-o", str(tmp_path / "x.gguf")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ember convert: error:") and "not a directory" in err and "\n" not in err
    assert not (tmp_path / "x.gguf").exists()
