// packed_float_avx2.cpp — AVX2 float tiles over row-interleaved weights (see packed_float.h).
#include <immintrin.h>

#include <array>
#include <utility>

#include "quants/packed_float.h"

namespace ember::avx2 {

namespace {

template <bool F16>
inline __m256 load_w(const uint8_t* p) {
    if constexpr (F16) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    else return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
}

template <bool F16>
struct FloatTile {
    static constexpr uint64_t kStep = F16 ? 16 : 32;  // bytes per value of a group
    template <int G, int C>
    static void run(int64_t k0, int64_t nk, const uint8_t* groups, uint64_t gb, const float* x, int64_t ldx, float* out,
                    int64_t ldo, bool accumulate) {
        __m256 acc[G * C];
#pragma GCC unroll 32
        for (int i = 0; i < G * C; ++i)
            acc[i] = accumulate ? _mm256_loadu_ps(out + (i % C) * ldo + 8 * (i / C)) : _mm256_setzero_ps();
        const float* xk = x + k0;
        const uint8_t* wk = groups + uint64_t(k0) * kStep;
        for (int64_t k = 0; k < nk; ++k, ++xk, wk += kStep) {
            __m256 w[G];
#pragma GCC unroll 8
            for (int g = 0; g < G; ++g) w[g] = load_w<F16>(wk + uint64_t(g) * gb);
#pragma GCC unroll 8
            for (int t = 0; t < C; ++t) {
                const __m256 xv = _mm256_broadcast_ss(xk + t * ldx);
#pragma GCC unroll 8
                for (int g = 0; g < G; ++g) acc[g * C + t] = _mm256_fmadd_ps(w[g], xv, acc[g * C + t]);
            }
        }
#pragma GCC unroll 32
        for (int i = 0; i < G * C; ++i) _mm256_storeu_ps(out + (i % C) * ldo + 8 * (i / C), acc[i]);
    }
};

using RawTile = void (*)(int64_t, int64_t, const uint8_t*, uint64_t, const float*, int64_t, float*, int64_t, bool);

template <class K, int... I>
constexpr std::array<RawTile, sizeof...(I)> table(std::integer_sequence<int, I...>) {
    return {{&K::template run<I / kFloatTileCols + 1, I % kFloatTileCols + 1>...}};
}

template <bool F16>
void dispatch(int64_t k0, int64_t nk, const uint8_t* groups, uint64_t gb, int ng, const float* x, int64_t ldx, int nt, float* out,
              int64_t ldo, bool accumulate) {
    static constexpr auto tiles = table<FloatTile<F16>>(std::make_integer_sequence<int, kFloatTileGroups * kFloatTileCols>{});
    tiles[size_t((ng - 1) * kFloatTileCols + (nt - 1))](k0, nk, groups, gb, x, ldx, out, ldo, accumulate);
}

}  // namespace

void float_tile_f16(int64_t k0, int64_t nk, const uint8_t* groups, uint64_t gb, int ng, const float* x, int64_t ldx, int nt,
                    float* out, int64_t ldo, bool accumulate) {
    dispatch<true>(k0, nk, groups, gb, ng, x, ldx, nt, out, ldo, accumulate);
}
void float_tile_f32(int64_t k0, int64_t nk, const uint8_t* groups, uint64_t gb, int ng, const float* x, int64_t ldx, int nt,
                    float* out, int64_t ldo, bool accumulate) {
    dispatch<false>(k0, nk, groups, gb, ng, x, ldx, nt, out, ldo, accumulate);
}

}  // namespace ember::avx2
