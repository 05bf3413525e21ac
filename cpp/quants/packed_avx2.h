// packed_avx2.h — small AVX2 helpers shared by the packed tiles (packed_avx2.cpp) and the panels
// (panel_avx2.cpp): loads of packed blocks, broadcasts of activation bytes, the Q5 fifth bits.
// Include only from files compiled with -mavx2 -mfma -mf16c.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace ember::avx2::packed_detail {

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m256 load_f16x8(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline __m256i bcast32(const uint8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

// 0x10 in byte j of lane r where row r's fifth bit for register c's low (high) nibble j is set:
// the packer stored it as bit c (4 + c) of byte j (packed.cpp), so one 16-bit shift brings it to
// bit 4; bits shifted in from the neighbouring byte land outside the mask.
template <int C, bool High>
inline __m256i fifth_bits(__m256i qh) {
    const __m256i bit4 = _mm256_set1_epi8(0x10);
    if constexpr (!High) return _mm256_and_si256(_mm256_slli_epi16(qh, 4 - C), bit4);
    else if constexpr (C == 0) return _mm256_and_si256(qh, bit4);
    else return _mm256_and_si256(_mm256_srli_epi16(qh, C), bit4);
}

inline __m256i load_u8x8_epi32(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
inline __m256i load_i8x8_epi32(const uint8_t* p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
// Both 16-bit halves of each lane = the lane's (small) value: the multiplier madd wants.
inline __m256i pair16(__m256i x) { return _mm256_or_si256(_mm256_and_si256(x, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(x, 16)); }

// The per-type part of the 32-value formats: block size, where the quants (and fifth bits) sit,
// the values' width, and the 8 rows' minimum terms from their scales.
struct P4_0 {
    static constexpr int kBits = 4;
    static constexpr int kBytes = 144, kQs = 16;
    static constexpr bool kMin = true;
    static __m256 mins(const uint8_t*, __m256 d) { return _mm256_mul_ps(d, _mm256_set1_ps(-8.0f)); }
};
struct P4_1 {
    static constexpr int kBits = 4;
    static constexpr int kBytes = 160, kQs = 32;
    static constexpr bool kMin = true;
    static __m256 mins(const uint8_t* p, __m256) { return load_f16x8(p + 16); }
};
struct P5_0 {
    static constexpr int kBits = 5;
    static constexpr int kBytes = 176, kQs = 48, kQh = 16;
    static constexpr bool kMin = true;
    static __m256 mins(const uint8_t*, __m256 d) { return _mm256_mul_ps(d, _mm256_set1_ps(-16.0f)); }
};
struct P5_1 {
    static constexpr int kBits = 5;
    static constexpr int kBytes = 192, kQs = 64, kQh = 32;
    static constexpr bool kMin = true;
    static __m256 mins(const uint8_t* p, __m256) { return load_f16x8(p + 16); }
};
struct P8_0 {
    static constexpr int kBits = 8;
    static constexpr int kBytes = 272, kQs = 16;
    static constexpr bool kMin = false;
    static __m256 mins(const uint8_t*, __m256) { return _mm256_setzero_ps(); }
};

// A tile's C accumulators (8 rows each) start from out (a row already partly summed) or zero, and
// end in out.
template <int C>
__attribute__((always_inline)) inline void load_acc(__m256* acc, const float* out, int64_t ldo, bool accumulate) {
#pragma GCC unroll 8
    for (int t = 0; t < C; ++t) acc[t] = accumulate ? _mm256_loadu_ps(out + t * ldo) : _mm256_setzero_ps();
}
template <int C>
__attribute__((always_inline)) inline void store_acc(const __m256* acc, float* out, int64_t ldo) {
#pragma GCC unroll 8
    for (int t = 0; t < C; ++t) _mm256_storeu_ps(out + t * ldo, acc[t]);
}

// One block's float step for C tokens (ab[t]: the token's A8 block): acc += isum x (d x scale),
// then the minimum term m x (scaled block sum). The packed tiles and the panels share it, hence
// the same bits.
template <int C, bool Min>
__attribute__((always_inline)) inline void scale_block(const uint8_t* const* ab, const __m256i* isum, __m256 d, __m256 m,
                                                       __m256* acc) {
#pragma GCC unroll 8
    for (int t = 0; t < C; ++t) {
        float da, sa;
        std::memcpy(&da, ab[t], 4);
        std::memcpy(&sa, ab[t] + 4, 4);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(d, _mm256_set1_ps(da)), acc[t]);
        if constexpr (Min) acc[t] = _mm256_fmadd_ps(m, _mm256_set1_ps(sa), acc[t]);
    }
}

}  // namespace ember::avx2::packed_detail
