// vec_neon.cpp — AArch64 Advanced SIMD vector kernels (see vec.h): dot products, scaled adds and
// the gated activations over float32 and fp16 data. Plain ARMv8-A: no flags beyond the baseline.
//
// Dots: four 4-wide FMA accumulators over 16 values, a 4-wide step, then the scalar reference
// for the last n % 4 values, added last; the order depends on n only. Scaled adds keep the
// multiply and the add separate, so they give the scalar reference's bits (they are memory-bound:
// fusing would buy nothing). fp16 is widened with FCVTL, exact for every non-NaN half.
#include <arm_neon.h>

#include "ops/neon_math.h"
#include "ops/vec.h"

namespace ember::neon {

static inline float32x4_t load_f16x4(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

template <class Load>
static float dot(Load load, const float* b, int64_t n) {  // n: a multiple of 4
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, load(i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, load(i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, load(i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, load(i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, load(i), vld1q_f32(b + i));
    return vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
}

float dot_f32(const float* a, const float* b, int64_t n) {
    const int64_t m = n & ~int64_t(3);
    float s = dot([a](int64_t i) { return vld1q_f32(a + i); }, b, m);
    if (m < n) s += ref::dot_f32(a + m, b + m, n - m);
    return s;
}

float dot_f16(const uint16_t* a, const float* b, int64_t n) {
    const int64_t m = n & ~int64_t(3);
    float s = dot([a](int64_t i) { return load_f16x4(a + i); }, b, m);
    if (m < n) s += ref::dot_f16(a + m, b + m, n - m);
    return s;
}

template <class Load>
static void axpy(float* y, Load load, float a, int64_t n) {  // n: a multiple of 4
    for (int64_t i = 0; i < n; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vmulq_n_f32(load(i), a)));
}

void axpy_f32(float* y, const float* x, float a, int64_t n) {
    const int64_t m = n & ~int64_t(3);
    axpy(y, [x](int64_t i) { return vld1q_f32(x + i); }, a, m);
    if (m < n) ref::axpy_f32(y + m, x + m, a, n - m);
}

void axpy_f16(float* y, const uint16_t* x, float a, int64_t n) {
    const int64_t m = n & ~int64_t(3);
    axpy(y, [x](int64_t i) { return load_f16x4(x + i); }, a, m);
    if (m < n) ref::axpy_f16(y + m, x + m, a, n - m);
}

// silu(x) = x / (1 + exp(-x)); gelu(x) = 0.5 x (1 + tanh(u)) = x - x / (1 + exp(2u)),
// u = sqrt(2/pi) (x + 0.044715 x^3): the forms (and the fused steps) of vec_avx2.cpp. Where
// exp overflows its clamp the quotient is a tiny multiple of x, as the exact value is.
void silu_mul(float* gate, const float* up, int64_t n) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t x = vld1q_f32(gate + i);
        const float32x4_t s = vdivq_f32(x, vaddq_f32(one, exp_ps(vnegq_f32(x))));
        vst1q_f32(gate + i, vmulq_f32(s, vld1q_f32(up + i)));
    }
    if (i < n) ref::silu_mul(gate + i, up + i, n - i);
}

void gelu_tanh_mul(float* gate, const float* up, int64_t n) {
    const float32x4_t one = vdupq_n_f32(1.0f), k = vdupq_n_f32(2.0f * 0.7978845608028654f), c = vdupq_n_f32(0.044715f);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t x = vld1q_f32(gate + i);
        const float32x4_t u2 = vmulq_f32(k, vfmaq_f32(x, vmulq_f32(c, x), vmulq_f32(x, x)));  // 2u
        const float32x4_t g = vsubq_f32(x, vdivq_f32(x, vaddq_f32(one, exp_ps(u2))));
        vst1q_f32(gate + i, vmulq_f32(g, vld1q_f32(up + i)));
    }
    if (i < n) ref::gelu_tanh_mul(gate + i, up + i, n - i);
}

}  // namespace ember::neon
