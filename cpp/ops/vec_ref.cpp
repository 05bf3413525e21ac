// vec_ref.cpp — scalar vector kernels, the specification for the SIMD ones (see vec.h).
// Four interleaved partial sums: the same association a 4-wide machine would use, and enough
// independent chains that the scalar path is not latency-bound.
#include "ops/vec.h"

#include "ops/activation.h"
#include "quants/fp16.h"

namespace ember::ref {

template <class Load>
static float dot4(const Load& a, const float* b, int64_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a(i) * b[i];
        s1 += a(i + 1) * b[i + 1];
        s2 += a(i + 2) * b[i + 2];
        s3 += a(i + 3) * b[i + 3];
    }
    for (; i < n; ++i) s0 += a(i) * b[i];
    return (s0 + s1) + (s2 + s3);
}

float dot_f32(const float* a, const float* b, int64_t n) {
    return dot4([a](int64_t i) { return a[i]; }, b, n);
}

float dot_f16(const uint16_t* a, const float* b, int64_t n) {
    return dot4([a](int64_t i) { return fp16_to_fp32(a[i]); }, b, n);
}

void axpy_f32(float* y, const float* x, float a, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void axpy_f16(float* y, const uint16_t* x, float a, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}

void silu_mul(float* gate, const float* up, int64_t n) { gated<silu>(gate, up, gate, n); }
void gelu_tanh_mul(float* gate, const float* up, int64_t n) { gated<gelu_tanh>(gate, up, gate, n); }

}  // namespace ember::ref
