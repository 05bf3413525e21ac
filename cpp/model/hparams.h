// hparams.h — a model's hyper-parameters, read only from GGUF metadata ({arch}.* keys) with
// checked getters: a missing required key, a wrong value type or an inconsistent value (heads
// that do not divide, a rotary size past the head size, absurd sizes) is a GGUFError naming the
// file and the key. The tensor shapes are checked against these values when the weights load.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/arch.h"
#include "ops/rope.h"

namespace ember {

class GGUFFile;

struct HParams {
    const ArchTraits* traits = nullptr;
    int32_t n_vocab = 0;          // the tokenizer's vocabulary (set by the loader)
    int32_t n_ctx_train = 0;
    int32_t n_embd = 0;
    int32_t n_layer = 0;
    int32_t n_head = 0;
    int32_t n_head_kv = 0;
    int32_t head_dim_k = 0;       // per-head size of q and k
    int32_t head_dim_v = 0;
    int32_t n_ff = 0;
    float norm_eps = 1e-5f;
    float attn_scale = 0.0f;      // multiplies q.k (1/sqrt(head_dim_k) unless the file says)
    float final_logit_softcap = 0.0f;  // 0: none
    RopeParams rope;              // global layers (Gemma 3 has two RoPE configurations)
    RopeParams rope_swa;          // sliding-window layers (Gemma 3)
    int32_t n_swa = 0;            // sliding window in tokens (0: none)
    std::vector<bool> swa_layers; // per layer: true when it attends within the window

    int32_t q_dim() const { return n_head * head_dim_k; }
    int32_t k_dim() const { return n_head_kv * head_dim_k; }
    int32_t v_dim() const { return n_head_kv * head_dim_v; }
};

// Throws GGUFError for an unsupported architecture or bad hyper-parameters. n_vocab is left
// for the caller (it is the tokenizer's vocabulary size).
HParams load_hparams(const GGUFFile& file);

}  // namespace ember
