"""Tiny random Hugging Face models of every family ember runs, with a byte-level BPE tokenizer
trained here: the golden sources for the converter and engine tests (made in well under a second)."""

import zlib

import torch
import transformers

SAMPLE_TEXT = ("The quick brown fox jumps over the lazy dog. 0123456789 ember converts tiny models!\n"
               "def f(x):\n    return x * 2  # code\n") * 20


def _tokenizer(vocab_size: int):
    """A byte-level BPE tokenizer trained here, saved the way transformers saves one."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([SAMPLE_TEXT], trainer)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                                unk_token="<|endoftext|>")
    return fast


FAMILIES = {
    "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM, {}),
    "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM, {}),
    "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM, {}),
    "qwen3": (transformers.Qwen3Config, transformers.Qwen3ForCausalLM, {"head_dim": 24}),
    "gemma3": (transformers.Gemma3TextConfig, transformers.Gemma3ForCausalLM, {"head_dim": 16, "sliding_window": 16}),
}


def make_tiny_model(family: str, path, *, tie: bool = False, shard: bool = False, n_layer: int = 2, scale: float = 0.2,
                    **overrides):
    """A random model with every parameter (norms and biases included) drawn at random, N(0, scale^2).
    The seed depends only on the family, so every run builds the same model."""
    config_cls, model_cls, extra = FAMILIES[family]
    tok = _tokenizer(320)
    cfg = config_cls(vocab_size=len(tok), hidden_size=64, intermediate_size=96, num_hidden_layers=n_layer,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                     tie_word_embeddings=tie, rms_norm_eps=1e-5, **{**extra, **overrides})
    torch.manual_seed(zlib.crc32(family.encode()) % 1000)
    model = model_cls(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * scale)
    model.save_pretrained(path, max_shard_size="40KB" if shard else "2GB")
    tok.save_pretrained(path)
    return model
