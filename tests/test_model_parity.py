"""Whole-model parity with Hugging Face transformers (torch, CPU, float32): teacher-forced logits over
a 64-token text and 20 greedy tokens.

- Tiny random models of every family ember runs (every parameter random, norms and biases included),
  converted to F32 GGUF by ember, plus RoPE variants (linear, Llama 3.1, YaRN), tied embeddings and
  Gemma 3's interleaved sliding-window / global layers with their own RoPE bases.
- SmolLM2-135M as F32 (the converter's round trip of the shipped file) and the shipped Q4_1 file,
  and the Gemma 3 270M Q4_K_M file, against transformers on the dequantized weights.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import ember
from ember.convert import convert
from tiny_models import SAMPLE_TEXT, make_tiny_model

N_TOKENS = 64
N_GREEDY = 20
# A quantized model's logits differ from the float reference's by 1-2 (see the comparisons
# below), so its greedy path may take the other side of a near tie; each token it picks must then
# still be one the reference ranks within this margin of its first after the same prefix.
GREEDY_MARGIN = 1.0

# name -> (family, make_tiny_model options)
VARIANTS = {
    "llama": ("llama", {}),
    "mistral": ("mistral", {}),
    "qwen2": ("qwen2", {}),
    "qwen3": ("qwen3", {}),
    # three layers: sliding, global, sliding (window 16 < 64 tokens), each kind with its RoPE base;
    # query_pre_attn_scalar left at 256 (not head_dim): the converter writes the scale
    "gemma3": ("gemma3", {"tie": True, "n_layer": 3,
                          "layer_types": ["sliding_attention", "full_attention", "sliding_attention"]}),
    "llama-tied": ("llama", {"tie": True}),
    "llama-rope-linear": ("llama", {"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}}),
    "llama-rope-llama3": ("llama", {"rope_parameters": {"rope_type": "llama3", "factor": 8.0, "rope_theta": 500000.0,
                                                        "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                        "original_max_position_embeddings": 32}}),
    "qwen2-yarn": ("qwen2", {"rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0,
                                                 "original_max_position_embeddings": 16}}),
}


def hf_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def hf_greedy(model, ids, n):
    """Greedy continuation by repeated full forward passes (no generate() configuration to trip on)."""
    out = list(ids)
    with torch.no_grad():
        for _ in range(n):
            out.append(int(model(torch.tensor([out])).logits[0, -1].argmax()))
    return out[len(ids):]


def hf_margins(model, prompt, tokens):
    """The reference's logit margin of its best token over each of `tokens`, after the prompt and
    the tokens before it (teacher forcing, one forward pass): 0 where it picks the same token."""
    with torch.no_grad():
        logits = model(torch.tensor([list(prompt) + list(tokens)])).logits[0].float().numpy()
    rows = logits[len(prompt) - 1:len(prompt) - 1 + len(tokens)]
    return rows.max(-1) - rows[np.arange(len(tokens)), list(tokens)]


def compare(got, want, what):
    diff = np.abs(got.astype(np.float64) - want)
    pos, tok = np.unravel_index(np.argmax(diff), diff.shape)
    agree = float((got.argmax(-1) == want.argmax(-1)).mean())
    print(f"{what}: max |diff| {diff.max():.3g} at position {pos}, token {tok} (logits up to {np.abs(want).max():.3g}); "
          f"top-1 agreement {agree:.1%}")
    return diff.max(), agree


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def tiny(request, tmp_path_factory):
    family, options = VARIANTS[request.param]
    d = tmp_path_factory.mktemp(request.param)
    model = make_tiny_model(family, d / "hf", **options)
    model.eval()
    convert(d / "hf", d / "model.gguf", "f32", progress=False)
    return request.param, model, d / "model.gguf"


def test_tiny_models_logits_and_greedy(tiny):
    name, hf, path = tiny
    # the f32 cache keeps ember's arithmetic to float32 rounding; the f16 default is checked below
    m = ember.Model(path, n_ctx=256, kv_type="f32", verbose=False)
    ids = m.tokenize(SAMPLE_TEXT)[:N_TOKENS]
    assert len(ids) == N_TOKENS
    want = hf_logits(hf, ids)
    err, agree = compare(m.logits(ids), want, name)
    assert err <= 1e-3
    assert agree == 1.0
    prompt = ids[:12]
    got = m.complete(prompt, max_tokens=N_GREEDY, temperature=0, ignore_eos=True).token_ids
    assert got == hf_greedy(hf, prompt, N_GREEDY), name


def test_perplexity_matches_transformers(tmp_path):
    """llama.cpp's perplexity (chunks of n_ctx, the second half of each scored) recomputed with
    transformers' logits and float64 numpy."""
    hf = make_tiny_model("llama", tmp_path / "hf").eval()
    convert(tmp_path / "hf", tmp_path / "m.gguf", "f32", progress=False)
    m = ember.Model(tmp_path / "m.gguf", n_ctx=64, kv_type="f32", verbose=False)
    text = SAMPLE_TEXT * 3
    ids = m.tokenize(text, add_special=False)
    n_ctx, first = 48, 24
    nll = []
    for c in range(len(ids) // n_ctx):
        chunk = ids[c * n_ctx:(c + 1) * n_ctx]
        logp = hf_logits(hf, chunk).astype(np.float64)
        logp -= np.log(np.exp(logp - logp.max(-1, keepdims=True)).sum(-1, keepdims=True)) + logp.max(-1, keepdims=True)
        nll += [-logp[j, chunk[j + 1]] for j in range(first, n_ctx - 1)]
    want = float(np.exp(np.mean(nll)))
    got = m.perplexity(text, n_ctx)
    assert got["n_scored"] == len(nll)
    assert got["ppl"] == pytest.approx(want, rel=1e-4)
    assert got["chunk_ppl"][-1] == pytest.approx(got["ppl"])
    assert 0 < got["ppl_error"] < got["ppl"]


def test_tiny_models_f16_cache(tiny):
    name, hf, path = tiny
    m = ember.Model(path, n_ctx=256, verbose=False)  # kv_type="f16"
    ids = m.tokenize(SAMPLE_TEXT)[:N_TOKENS]
    want = hf_logits(hf, ids)
    err, agree = compare(m.logits(ids), want, name + " (f16 KV)")
    # fp16 keys and values round at 2^-11 relative; through softmax and two layers that stays
    # far below the logits' own scale
    assert err <= 5e-3 * max(1.0, np.abs(want).max())
    assert agree >= 0.98


# --------------------------------------------------------------------------------- SmolLM2
TEXT = ("The history of the Roman Empire spans many centuries. It began when Augustus became the first "
        "emperor in 27 BC and lasted in the west until 476 AD. During this time, the empire built roads, "
        "aqueducts and cities across Europe, North Africa and the Middle East, and Latin spread with it.")


@pytest.fixture(scope="module")
def smollm2_torch(smollm2_hf):
    return transformers.LlamaForCausalLM.from_pretrained(smollm2_hf, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def smollm2_f32(smollm2_hf, tmp_path_factory):
    out = tmp_path_factory.mktemp("smollm2_f32") / "smollm2-f32.gguf"
    convert(smollm2_hf, out, "f32", progress=False)
    return out


@pytest.mark.slow
def test_smollm2_f32(smollm2_f32, smollm2_torch):
    m = ember.Model(smollm2_f32, n_ctx=512, verbose=False)
    ids = m.tokenize(TEXT)[:N_TOKENS]
    assert len(ids) == N_TOKENS
    err, agree = compare(m.logits(ids), hf_logits(smollm2_torch, ids), "SmolLM2 F32")
    assert err <= 0.02
    assert agree == 1.0
    prompt = m.tokenize("The capital of France is")
    got = m.complete(prompt, max_tokens=N_GREEDY, temperature=0, ignore_eos=True).token_ids
    assert got == hf_greedy(smollm2_torch, prompt, N_GREEDY)


@pytest.mark.slow
def test_smollm2_q4_1(smollm2_path, smollm2_torch):
    """The shipped Q4_1 file against transformers on the same weights, dequantized."""
    m = ember.Model(smollm2_path, n_ctx=512, verbose=False)
    ids = m.tokenize(TEXT)
    err, agree = compare(m.logits(ids), hf_logits(smollm2_torch, ids), "SmolLM2 Q4_1")
    assert agree >= 0.95
    prompt = m.tokenize("The capital of France is")
    got = m.complete(prompt, max_tokens=N_GREEDY, temperature=0, ignore_eos=True)
    margins = hf_margins(smollm2_torch, prompt, got.token_ids)
    print("ember:", repr(got.text), "\ntransformers' margins over ember's tokens:", np.round(margins, 2))
    assert "Paris" in got.text
    assert margins.max() <= GREEDY_MARGIN, f"token {int(margins.argmax())} of the greedy continuation"


@pytest.mark.slow
def test_gemma3_q4_k_m(gemma3_path):
    """Gemma 3 270M Q4_K_M (Q5_0, Q4_K, Q6_K, Q8_0 weights; SentencePiece; 5:1 sliding-window layers)."""
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(gemma3_path.parent), gguf_file=gemma3_path.name,
                                                           dtype=torch.float32).eval()
    m = ember.Model(gemma3_path, n_ctx=1024, verbose=False)
    # long enough to pass the 512-token window of the sliding layers; the last N_TOKENS positions
    # are scored (a 262144-token output head over every position would cost most of the test)
    ids = m.tokenize(" ".join([TEXT] * 10))
    assert 512 + N_TOKENS < len(ids) < 1024
    seq = m._engine.seq_new()
    try:
        n = len(ids)
        got = m._engine.decode(ids, list(range(n)), [seq] * n, [i >= n - N_TOKENS for i in range(n)])
    finally:
        m._engine.seq_free(seq)
    with torch.no_grad():
        hidden = hf.model(torch.tensor([ids])).last_hidden_state[0, -N_TOKENS:]
        want = hf.lm_head(hidden).float().numpy()
    err, agree = compare(got, want, "Gemma 3 Q4_K_M")
    assert agree >= 0.95
    prompt = m.tokenize("The capital of France is")
    got = m.complete(prompt, max_tokens=N_GREEDY, temperature=0, ignore_eos=True)
    margins = hf_margins(hf, prompt, got.token_ids)
    print("ember:", repr(got.text), "\ntransformers' margins over ember's tokens:", np.round(margins, 2))
    assert "France" in got.text or "Paris" in got.text
    assert margins.max() <= GREEDY_MARGIN, f"token {int(margins.argmax())} of the greedy continuation"
