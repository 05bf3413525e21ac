"""Hugging Face architectures → GGUF: hyper-parameters, tensor names and tensor transforms.

One class per family, registered under the `architectures` names of config.json. Each knows
which GGUF architecture it becomes, which hyper-parameter keys to write, the shape every tensor
must have, and the few places where the GGUF layout differs from the checkpoint's (llama.cpp's
conventions, so files load in both ember and llama.cpp):
  - Llama/Mistral: the rows of Q and K are permuted from Hugging Face's rotate-half RoPE layout
    to the interleaved-pairs layout ggml's "normal" RoPE expects (`permute_qk`);
  - Gemma 3: Hugging Face stores RMSNorm weights as w with the norm applying (1 + w); GGUF stores
    1 + w, so ggml's plain RMSNorm applies;
  - Qwen2/Qwen3/Gemma 3 use NeoX-style RoPE, whose layout already matches: no permutation.
Tensor names come from gguf-py's TensorNameMap (the table llama.cpp's own converter uses).
"""

from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Tuple, Type

import gguf
import numpy as np


class ConfigError(ValueError):
    """config.json is missing a needed field or describes something unsupported."""


def permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder the rows of each head from [first halves..., second halves...] to interleaved pairs.

    Hugging Face's rotate_half pairs dimension i with i + d/2; ggml's normal RoPE pairs 2i with
    2i + 1. Row j of a head in GGUF is row (j % 2) * d/2 + j // 2 of the checkpoint's head.
    """
    rows = w.shape[0]
    head_dim = rows // n_head
    return w.reshape(n_head, 2, head_dim // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """The inverse of permute_qk (used by tests to compare with the source)."""
    rows = w.shape[0]
    head_dim = rows // n_head
    return w.reshape(n_head, head_dim // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def split_name(gguf_name: str) -> Tuple[str, str]:
    """"blk.3.attn_q.weight" -> ("attn_q", "weight"); "token_embd.weight" -> ("token_embd", "weight")."""
    base, _, kind = gguf_name.rpartition(".")
    return (base.split(".", 2)[-1] if base.startswith("blk.") else base), kind


def _get(cfg: dict, *keys: str, default=None, required: bool = True):
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    if default is not None or not required:
        return default
    raise ConfigError(f"config.json has no '{keys[0]}'")


def rope_settings(cfg: dict, layer_type: Optional[str] = None) -> Dict:
    """RoPE base and scaling from either transformers 4 (`rope_theta`, `rope_scaling`) or
    transformers 5 (`rope_parameters`, possibly one dict per layer type)."""
    params = cfg.get("rope_parameters")
    if isinstance(params, dict) and layer_type and isinstance(params.get(layer_type), dict):
        params = params[layer_type]
    merged: Dict = {}
    if isinstance(cfg.get("rope_scaling"), dict):
        merged.update(cfg["rope_scaling"])
    if isinstance(params, dict):
        merged.update({k: v for k, v in params.items() if not isinstance(v, dict)})
    if "rope_theta" not in merged and cfg.get("rope_theta") is not None:
        merged["rope_theta"] = cfg["rope_theta"]
    merged.setdefault("rope_theta", 10000.0)
    merged["rope_type"] = merged.get("rope_type") or merged.get("type") or "default"
    return merged


class Architecture:
    """Base: a llama-shaped decoder. Subclasses override the class attributes and hooks."""

    gguf_arch: gguf.MODEL_ARCH = gguf.MODEL_ARCH.LLAMA
    permute_qk_rows = False       # llama-style RoPE needs Q/K rows permuted
    norm_plus_one = False         # Gemma's (1 + w) RMSNorm
    write_vocab_size = False
    always_write_head_dim = False  # key/value_length even when it equals hidden / heads

    def __init__(self, config: dict):
        self.config = config
        cfg = config
        self.n_embd = int(_get(cfg, "hidden_size"))
        self.n_layer = int(_get(cfg, "num_hidden_layers"))
        self.n_head = int(_get(cfg, "num_attention_heads"))
        self.n_head_kv = int(_get(cfg, "num_key_value_heads", default=self.n_head))
        self.n_ff = int(_get(cfg, "intermediate_size"))
        self.n_vocab = int(_get(cfg, "vocab_size"))
        self.head_dim = int(cfg.get("head_dim") or self.n_embd // self.n_head)
        self.n_ctx = int(_get(cfg, "max_position_embeddings", default=2048))
        self.eps = float(_get(cfg, "rms_norm_eps", default=1e-6))
        for name, v in [("hidden_size", self.n_embd), ("num_hidden_layers", self.n_layer), ("num_attention_heads", self.n_head),
                        ("num_key_value_heads", self.n_head_kv), ("intermediate_size", self.n_ff), ("vocab_size", self.n_vocab),
                        ("head_dim", self.head_dim)]:
            if v <= 0:
                raise ConfigError(f"config.json: {name} must be positive, got {v}")
        if self.n_head % self.n_head_kv:
            raise ConfigError(f"config.json: num_attention_heads {self.n_head} is not a multiple of num_key_value_heads {self.n_head_kv}")
        if self.permute_qk_rows and self.head_dim % 2:
            raise ConfigError(f"config.json: head_dim {self.head_dim} must be even for RoPE")
        self.names = gguf.get_tensor_name_map(self.gguf_arch, self.n_layer)

    # -- hyper-parameters -------------------------------------------------------------------
    def write_hparams(self, w: gguf.GGUFWriter) -> None:
        w.add_context_length(self.n_ctx)
        w.add_embedding_length(self.n_embd)
        w.add_block_count(self.n_layer)
        w.add_feed_forward_length(self.n_ff)
        w.add_head_count(self.n_head)
        w.add_head_count_kv(self.n_head_kv)
        w.add_layer_norm_rms_eps(self.eps)
        if self.always_write_head_dim or self.head_dim != self.n_embd // self.n_head:
            w.add_key_length(self.head_dim)
            w.add_value_length(self.head_dim)
        if self.write_vocab_size:
            w.add_vocab_size(self.n_vocab)
        self.write_rope(w, self.rope())

    def rope(self) -> Dict:
        return rope_settings(self.config)

    def write_rope(self, w: gguf.GGUFWriter, rope: Dict) -> None:
        w.add_rope_freq_base(float(rope["rope_theta"]))
        kind = rope["rope_type"]
        if kind in ("linear", "yarn"):
            w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR if kind == "linear" else gguf.RopeScalingType.YARN)
            w.add_rope_scaling_factor(float(rope["factor"]))
            if kind == "yarn" and rope.get("original_max_position_embeddings"):
                w.add_rope_scaling_orig_ctx_len(int(rope["original_max_position_embeddings"]))
        elif kind not in ("default", "llama3"):
            raise ConfigError(f"config.json: rope scaling type '{kind}' is not supported (default, linear, yarn, llama3)")

    def extra_tensors(self) -> List[Tuple[str, np.ndarray]]:
        """Tensors GGUF needs that the checkpoint does not store (e.g. Llama 3's RoPE factors)."""
        return []

    # -- tensors ------------------------------------------------------------------------------
    def skip(self, hf_name: str) -> bool:
        return hf_name.endswith(".rotary_emb.inv_freq")

    def hf_name(self, hf_name: str) -> str:
        return hf_name

    def gguf_name(self, hf_name: str) -> str:
        name = self.names.get_name(self.hf_name(hf_name), try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ConfigError(f"tensor '{hf_name}' has no GGUF name for architecture {self.gguf_arch.name.lower()}")
        return name

    def expected_shape(self, gguf_name: str) -> Optional[Tuple[int, ...]]:
        """numpy-order shape the tensor must have; None for tensors this table does not know."""
        e, ff, hd, q, kv = self.n_embd, self.n_ff, self.head_dim, self.n_head * self.head_dim, self.n_head_kv * self.head_dim
        base, kind = split_name(gguf_name)
        weights = {
            "token_embd": (self.n_vocab, e), "output": (self.n_vocab, e), "output_norm": (e,),
            "attn_norm": (e,), "ffn_norm": (e,), "post_attention_norm": (e,), "post_ffw_norm": (e,),
            "attn_q": (q, e), "attn_k": (kv, e), "attn_v": (kv, e), "attn_output": (e, q),
            "ffn_gate": (ff, e), "ffn_up": (ff, e), "ffn_down": (e, ff),
            "attn_q_norm": (hd,), "attn_k_norm": (hd,),
        }
        biases = {"attn_q": (q,), "attn_k": (kv,), "attn_v": (kv,), "attn_output": (e,)}
        return (biases if kind == "bias" else weights).get(base)

    def transform(self, gguf_name: str, data: np.ndarray) -> np.ndarray:
        base, _ = split_name(gguf_name)
        if self.permute_qk_rows and base == "attn_q":
            data = permute_qk(data, self.n_head)
        elif self.permute_qk_rows and base == "attn_k":
            data = permute_qk(data, self.n_head_kv)
        if self.norm_plus_one and gguf_name.endswith("norm.weight"):
            data = data + np.float32(1)
        return data


REGISTRY: Dict[str, Type[Architecture]] = {}


def register(*hf_architectures: str) -> Callable[[Type[Architecture]], Type[Architecture]]:
    def deco(cls: Type[Architecture]) -> Type[Architecture]:
        for a in hf_architectures:
            REGISTRY[a] = cls
        return cls
    return deco


@register("LlamaForCausalLM", "MistralForCausalLM")
class Llama(Architecture):
    gguf_arch = gguf.MODEL_ARCH.LLAMA
    permute_qk_rows = True
    write_vocab_size = True

    def write_hparams(self, w: gguf.GGUFWriter) -> None:
        super().write_hparams(w)
        w.add_rope_dimension_count(self.head_dim)

    def extra_tensors(self) -> List[Tuple[str, np.ndarray]]:
        rope = rope_settings(self.config)
        if rope["rope_type"] != "llama3":
            return []
        # Llama 3.1 scaling as per-dimension frequency divisors (ggml's rope "freq factors"):
        # long wavelengths are slowed by `factor`, short ones kept, the band between blended.
        factor = float(rope["factor"])
        low, high = float(rope.get("low_freq_factor", 1.0)), float(rope.get("high_freq_factor", 4.0))
        old_ctx = float(rope.get("original_max_position_embeddings", 8192))
        base = float(rope["rope_theta"])
        freqs = base ** -(np.arange(0, self.head_dim, 2, dtype=np.float64) / self.head_dim)
        out = []
        for f in freqs:
            wavelen = 2 * math.pi / f
            if wavelen < old_ctx / high:
                out.append(1.0)
            elif wavelen > old_ctx / low:
                out.append(factor)
            else:
                smooth = (old_ctx / wavelen - low) / (high - low)
                out.append(1.0 / ((1 - smooth) / factor + smooth))
        return [(gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight", np.array(out, dtype=np.float32))]


@register("Qwen2ForCausalLM")
class Qwen2(Architecture):
    gguf_arch = gguf.MODEL_ARCH.QWEN2


@register("Qwen3ForCausalLM")
class Qwen3(Architecture):
    gguf_arch = gguf.MODEL_ARCH.QWEN3


@register("Gemma3ForCausalLM", "Gemma3ForConditionalGeneration")
class Gemma3(Architecture):
    gguf_arch = gguf.MODEL_ARCH.GEMMA3
    norm_plus_one = True
    always_write_head_dim = True

    def __init__(self, config: dict):
        # The multimodal checkpoint nests the text model's config; only the text part converts.
        text = config.get("text_config") if "text_config" in config else config
        super().__init__(text)
        self.sliding_window = text.get("sliding_window")

    def write_hparams(self, w: gguf.GGUFWriter) -> None:
        super().write_hparams(w)
        cfg = self.config
        if cfg.get("attn_logit_softcapping") is not None:
            raise ConfigError("config.json: attn_logit_softcapping is not supported")
        if self.sliding_window:
            w.add_sliding_window(int(self.sliding_window))
            # llama.cpp assumes every sixth layer global and base 10000 for the others; a config
            # that says otherwise is written out (keys llama.cpp ignores for Gemma 3, ember reads)
            types = cfg.get("layer_types")
            if isinstance(types, list) and len(types) == self.n_layer:
                w.add_sliding_window_pattern([t == "sliding_attention" for t in types])
            elif cfg.get("sliding_window_pattern") not in (None, 6):
                w.add_sliding_window_pattern(int(cfg["sliding_window_pattern"]))
            params = cfg.get("rope_parameters")
            local = params.get("sliding_attention") if isinstance(params, dict) else None
            swa_base = float((local or {}).get("rope_theta") or cfg.get("rope_local_base_freq") or 10000.0)
            if swa_base != 10000.0:
                w.add_rope_freq_base_swa(swa_base)
        # Hugging Face scales q.k by query_pre_attn_scalar^-0.5; llama.cpp by head_dim^-0.5
        scalar = cfg.get("query_pre_attn_scalar")
        if scalar is not None and float(scalar) != float(self.head_dim):
            w.add_attention_scale(float(scalar) ** -0.5)
        if cfg.get("final_logit_softcapping") is not None:
            w.add_final_logit_softcapping(float(cfg["final_logit_softcapping"]))

    def rope(self) -> Dict:
        # The global layers' RoPE; the sliding layers' base (10000) is fixed by the architecture.
        return rope_settings(self.config, "full_attention")

    def skip(self, hf_name: str) -> bool:
        return super().skip(hf_name) or any(k in hf_name for k in ("vision_tower", "multi_modal_projector"))

    def hf_name(self, hf_name: str) -> str:
        # Multimodal checkpoints nest the text model: "model.language_model.layers.0..." (transformers 5)
        # or "language_model.model.layers.0..." (4.x) stand for "model.layers.0...".
        for prefix in ("model.language_model.", "language_model.model.", "language_model."):
            if hf_name.startswith(prefix):
                rest = hf_name[len(prefix):]
                return rest if rest.startswith("lm_head") else "model." + rest
        return hf_name


def architecture_for(config: dict) -> Architecture:
    archs = config.get("architectures") or []
    for a in archs:
        if a in REGISTRY:
            return REGISTRY[a](config)
    by_type = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
               "qwen3": "Qwen3ForCausalLM", "gemma3_text": "Gemma3ForCausalLM", "gemma3": "Gemma3ForConditionalGeneration"}
    mt = config.get("model_type")
    if not archs and mt in by_type:
        return REGISTRY[by_type[mt]](config)
    what = ", ".join(archs) if archs else f"model_type '{mt}'"
    raise ConfigError(f"unsupported architecture {what}; supported: {', '.join(sorted(REGISTRY))}")
