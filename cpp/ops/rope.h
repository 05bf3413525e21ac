// rope.h — rotary position embeddings (RoPE), with linear scaling, per-dimension frequency
// divisors (Llama 3.1's rope_freqs) and YaRN in ggml's parameterization.
//
// Pair i of a head (i < n_dims/2) is rotated by theta_i = pos * base^(-2i/n_dims) / factor_i.
// "Normal" style pairs dimensions (2i, 2i+1); NeoX style pairs (i, i + n_dims/2) — the
// rotate-half layout of Hugging Face models. Angles are computed in double: float32 angles
// lose about 1e-7 * pos radians, which matters at long contexts.
#pragma once

#include <cstdint>

namespace ember {

enum class RopeStyle { Normal, NeoX };
enum class RopeScaling { None, Linear, YaRN };

struct RopeParams {
    int32_t n_dims = 0;           // rotated dimensions per head (the first n_dims)
    float freq_base = 10000.0f;
    float freq_scale = 1.0f;      // 1 / scaling factor (linear and YaRN)
    RopeScaling scaling = RopeScaling::None;
    // YaRN: extrapolation mix, magnitude, correction band, training context
    float ext_factor = 0.0f;
    float attn_factor = 1.0f;
    float beta_fast = 32.0f, beta_slow = 1.0f;
    int32_t n_ctx_orig = 0;
};

// cs[2i] = cos(theta_i) * m, cs[2i+1] = sin(theta_i) * m for i < n_dims/2 at position pos,
// where m is YaRN's magnitude correction (1 otherwise). freq_factors may be nullptr.
void rope_cos_sin(const RopeParams& p, const float* freq_factors, int32_t pos, float* cs);

// Rotate the first n_dims dimensions of each of n_heads vectors (head_dim apart) in place.
void rope_apply(float* x, int32_t n_heads, int32_t head_dim, int32_t n_dims, RopeStyle style, const float* cs);

}  // namespace ember
