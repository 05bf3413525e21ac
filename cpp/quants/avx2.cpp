// avx2.cpp — AVX2 + F16C dequantizers (compiled with -mavx2 -mfma -mf16c; called only when CPUID
// says so). Each one must equal its scalar twin in ref.cpp bit for bit: multiplies and adds stay
// separate (no FMA) because the reference rounds after each.
#include <immintrin.h>

#include <cstring>

#include "quants/blocks.h"
#include "quants/fp16.h"
#include "quants/ref.h"
#include "quants/simd.h"

namespace ember::avx2 {

void dequantize_row_f16(const void* x, float* y, int64_t n) {
    const uint8_t* p = static_cast<const uint8_t*>(x);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i));
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
    }
    if (i < n) ref::dequantize_row_f16(p + 2 * i, y + i, n - i);
}

void dequantize_row_bf16(const void* x, float* y, int64_t n) {
    const uint8_t* p = static_cast<const uint8_t*>(x);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i));
        const __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(w));
    }
    if (i < n) ref::dequantize_row_bf16(p + 2 * i, y + i, n - i);
}

void quantize_row_f16(const float* x, void* y, int64_t n) {
    uint8_t* p = static_cast<uint8_t*>(y);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p + 2 * i), h);
    }
    if (i < n) ref::quantize_row_f16(x + i, p + 2 * i, n - i);
}

// 16 packed bytes of nibbles -> 32 bytes: low nibbles first, then high nibbles (ggml's order).
static inline __m256i unpack_nibbles(const uint8_t* qs) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i mask = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_and_si128(packed, mask);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
    return _mm256_set_m128i(hi, lo);
}

// Convert 32 int8 values to 4 x 8 floats and store d * v (+ m when with_min).
template <bool with_min>
static inline void store_scaled(__m256i bytes, __m256 d, __m256 m, float* y) {
    const __m128i halves[2] = {_mm256_castsi256_si128(bytes), _mm256_extracti128_si256(bytes, 1)};
    for (int h = 0; h < 2; ++h) {
        const __m256i a = _mm256_cvtepi8_epi32(halves[h]);
        const __m256i b = _mm256_cvtepi8_epi32(_mm_srli_si128(halves[h], 8));
        __m256 fa = _mm256_mul_ps(d, _mm256_cvtepi32_ps(a));
        __m256 fb = _mm256_mul_ps(d, _mm256_cvtepi32_ps(b));
        if (with_min) {
            fa = _mm256_add_ps(fa, m);
            fb = _mm256_add_ps(fb, m);
        }
        _mm256_storeu_ps(y + 16 * h, fa);
        _mm256_storeu_ps(y + 16 * h + 8, fb);
    }
}

void dequantize_row_q4_0(const void* x, float* y, int64_t n) {
    const block_q4_0* b = static_cast<const block_q4_0*>(x);
    const __m256i eight = _mm256_set1_epi8(8);
    for (int64_t i = 0; i < n / QK4_0; ++i, y += QK4_0) {
        const __m256 d = _mm256_set1_ps(fp16_to_fp32(b[i].d));
        const __m256i q = _mm256_sub_epi8(unpack_nibbles(b[i].qs), eight);
        store_scaled<false>(q, d, d, y);
    }
}

void dequantize_row_q4_1(const void* x, float* y, int64_t n) {
    const block_q4_1* b = static_cast<const block_q4_1*>(x);
    for (int64_t i = 0; i < n / QK4_1; ++i, y += QK4_1) {
        const __m256 d = _mm256_set1_ps(fp16_to_fp32(b[i].d));
        const __m256 m = _mm256_set1_ps(fp16_to_fp32(b[i].m));
        store_scaled<true>(unpack_nibbles(b[i].qs), d, m, y);
    }
}

void dequantize_row_q8_0(const void* x, float* y, int64_t n) {
    const block_q8_0* b = static_cast<const block_q8_0*>(x);
    for (int64_t i = 0; i < n / QK8_0; ++i, y += QK8_0) {
        const __m256 d = _mm256_set1_ps(fp16_to_fp32(b[i].d));
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
        store_scaled<false>(q, d, d, y);
    }
}

}  // namespace ember::avx2
