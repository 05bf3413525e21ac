// activation.h — the gated feed-forward's nonlinearities, elementwise.
#pragma once

#include <cmath>
#include <cstdint>

namespace ember {

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

// GELU, tanh approximation (PyTorch's approximate="tanh", Gemma's gelu_pytorch_tanh).
inline float gelu_tanh(float x) {
    constexpr float kSqrt2OverPi = 0.7978845608028654f;
    return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

// h = act(gate) * up, elementwise over n values (h may alias gate).
template <float (*Act)(float)>
inline void gated(const float* gate, const float* up, float* h, int64_t n) {
    for (int64_t i = 0; i < n; ++i) h[i] = Act(gate[i]) * up[i];
}

}  // namespace ember
