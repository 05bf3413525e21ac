// vec_avx2.cpp — AVX2 + FMA + F16C vector kernels (compiled with those flags; chosen at run
// time only when CPUID has them). Four 8-wide FMA accumulators; the tail goes through the
// scalar reference and is added last.
#include <immintrin.h>

#include "ops/avx2_math.h"
#include "ops/vec.h"

namespace ember::avx2 {

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256 load_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

template <class Load>
static float dot(Load load, const float* b, int64_t n) {  // n: a multiple of 8
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(load(i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(load(i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(load(i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(load(i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(load(i), _mm256_loadu_ps(b + i), s0);
    return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

float dot_f32(const float* a, const float* b, int64_t n) {
    const int64_t m = n & ~int64_t(7);
    float s = dot([a](int64_t i) { return _mm256_loadu_ps(a + i); }, b, m);
    if (m < n) s += ref::dot_f32(a + m, b + m, n - m);
    return s;
}

float dot_f16(const uint16_t* a, const float* b, int64_t n) {
    const int64_t m = n & ~int64_t(7);
    float s = dot([a](int64_t i) { return load_f16(a + i); }, b, m);
    if (m < n) s += ref::dot_f16(a + m, b + m, n - m);
    return s;
}

template <class Load>
static void axpy(float* y, Load load, float a, int64_t n) {  // n: a multiple of 8
    const __m256 va = _mm256_set1_ps(a);
    for (int64_t i = 0; i < n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load(i), _mm256_loadu_ps(y + i)));
}

void axpy_f32(float* y, const float* x, float a, int64_t n) {
    const int64_t m = n & ~int64_t(7);
    axpy(y, [x](int64_t i) { return _mm256_loadu_ps(x + i); }, a, m);
    if (m < n) ref::axpy_f32(y + m, x + m, a, n - m);
}

void axpy_f16(float* y, const uint16_t* x, float a, int64_t n) {
    const int64_t m = n & ~int64_t(7);
    axpy(y, [x](int64_t i) { return load_f16(x + i); }, a, m);
    if (m < n) ref::axpy_f16(y + m, x + m, a, n - m);
}

// silu(x) = x / (1 + exp(-x)); gelu(x) = 0.5 x (1 + tanh(u)) = x - x / (1 + exp(2u)),
// u = sqrt(2/pi) (x + 0.044715 x^3). The tail goes through the scalar reference.
void silu_mul(float* gate, const float* up, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(gate + i);
        const __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, exp_ps(_mm256_sub_ps(zero, x))));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
    }
    if (i < n) ref::silu_mul(gate + i, up + i, n - i);
}

void gelu_tanh_mul(float* gate, const float* up, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), k = _mm256_set1_ps(2.0f * 0.7978845608028654f), c = _mm256_set1_ps(0.044715f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(gate + i);
        const __m256 u2 = _mm256_mul_ps(k, _mm256_fmadd_ps(_mm256_mul_ps(c, x), _mm256_mul_ps(x, x), x));  // 2u
        const __m256 g = _mm256_sub_ps(x, _mm256_div_ps(x, _mm256_add_ps(one, exp_ps(u2))));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(g, _mm256_loadu_ps(up + i)));
    }
    if (i < n) ref::gelu_tanh_mul(gate + i, up + i, n - i);
}

}  // namespace ember::avx2
