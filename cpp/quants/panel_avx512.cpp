// panel_avx512.cpp — AVX-512 VNNI tiles over panels (panel.h): two row groups in one 512-bit
// register. Compiled with AVX-512 F/BW/VL/VNNI flags and called only when CPUID (and the OS's
// saved state) say so.
//
// Q4_0/Q4_1 decode two adjacent groups into one pair panel (vector k of both side by side); Q5_0/
// Q5_1 keep the AVX2 decode, one panel per group, and a tile reads vector k of both into the two
// halves of a register. Either way the register's 16 lanes are the pair's 16 rows. Each token's 4
// activation bytes, broadcast, meet it in one VPDPBUSD (unsigned weight byte x signed activation
// byte, four products added into each 32-bit lane): a block's integer sum is 8 instructions per
// token where AVX2 spends 8 multiply-adds, 7 adds and a widening. The sums are exact integers
// either way and the float step is the AVX2 tiles' (scale_block), lane by lane, so every output
// has the bits the AVX2 and packed tiles give. A single group (a matrix's odd last one) keeps
// the AVX2 decode and tile.
//
// Everything here has internal linkage and no header of inline SIMD helpers is included: an
// inline function compiled with these flags could be the copy the linker keeps for the AVX2 files
// too, and run on a CPU without AVX-512.
#include <immintrin.h>

#include <cstring>

// GCC 12's AVX-512 intrinsics start some results from _mm512_undefined_*() and then warn about it
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "quants/blocks.h"
#include "quants/packed.h"
#include "quants/panel.h"
#include "quants/qdot.h"
#include "quants/tile_dispatch.h"

namespace ember::avx512 {

namespace {

inline __m512i bcast32(const uint8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}
// 32 aligned bytes of each panel: the low half from the first group, the high from the second.
inline __m512i load_pair(const uint8_t* p0, const uint8_t* p1) {
    const __m256i lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(p0));
    const __m256i hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(p1));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}
inline __m512 load_pair_ps(const uint8_t* p0, const uint8_t* p1) { return _mm512_castsi512_ps(load_pair(p0, p1)); }

// The four-bit packed blocks (packed.h): Q4_0's minimum term is -8 d, Q4_1's is stored.
inline __m256 load_f16x8(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
struct Q40 {
    static constexpr int kBytes = 144, kQs = 16;
    static __m256 mins(const uint8_t*, __m256 d) { return _mm256_mul_ps(d, _mm256_set1_ps(-8.0f)); }
};
struct Q41 {
    static constexpr int kBytes = 160, kQs = 32;
    static __m256 mins(const uint8_t* p, __m256) { return load_f16x8(p + 16); }
};

// A pair panel (panel.h): blocks [b0, b0 + nb) of two adjacent groups decoded together, vector k
// of both side by side, so that a 512-bit tile loads its 16 rows in one go.
template <class P>
void decode_pair4(int64_t b0, int64_t nb, const uint8_t* group0, const uint8_t* group1, uint8_t* panel) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* p0 = group0 + (b0 + b) * P::kBytes;
        const uint8_t* p1 = group1 + (b0 + b) * P::kBytes;
        uint8_t* o = panel + uint64_t(b) * kPairPanelBlockBytes;
        const __m256 d0 = load_f16x8(p0), d1 = load_f16x8(p1);
        _mm256_store_ps(reinterpret_cast<float*>(o), d0);
        _mm256_store_ps(reinterpret_cast<float*>(o + 32), d1);
        _mm256_store_ps(reinterpret_cast<float*>(o + 64), P::mins(p0, d0));
        _mm256_store_ps(reinterpret_cast<float*>(o + 96), P::mins(p1, d1));
        for (int h = 0; h < 2; ++h) {  // packed registers 2h and 2h + 1 of each group
            const __m512i a = _mm512_loadu_si512(p0 + P::kQs + 64 * h), c = _mm512_loadu_si512(p1 + P::kQs + 64 * h);
            const __m512i alo = _mm512_and_si512(a, low4), clo = _mm512_and_si512(c, low4);
            const __m512i ahi = _mm512_and_si512(_mm512_srli_epi16(a, 4), low4), chi = _mm512_and_si512(_mm512_srli_epi16(c, 4), low4);
            // 128-bit lanes 0-1 of each: register 2h; lanes 2-3: register 2h + 1
            _mm512_store_si512(o + 128 + 64 * (2 * h), _mm512_shuffle_i64x2(alo, clo, 0x44));
            _mm512_store_si512(o + 128 + 64 * (2 * h + 1), _mm512_shuffle_i64x2(alo, clo, 0xEE));
            _mm512_store_si512(o + 128 + 64 * (4 + 2 * h), _mm512_shuffle_i64x2(ahi, chi, 0x44));
            _mm512_store_si512(o + 128 + 64 * (5 + 2 * h), _mm512_shuffle_i64x2(ahi, chi, 0xEE));
        }
    }
}

// 32-value formats (Q4_0, Q4_1, Q5_0, Q5_1): after the decode their panels differ only in the
// values' range (0..15 or 0..31), which VPDPBUSD does not care about: one tile serves all four.
// P pairs of groups (16 rows each) x C tokens. Every broadcast of activation bytes feeds P
// multiply-adds: with one pair the loads (a broadcast per VPDPBUSD) bound the tile, with two
// they no longer do (measured).
template <int P, bool PairPanels>
struct BlockTiles {
    template <int C>
    static void run(int64_t b0, int64_t nb, const uint8_t* const* panels, const uint8_t* a, uint64_t as, float* out,
                    int64_t ldo, bool accumulate) {
        __m512 acc[P][C];
#pragma GCC unroll 2
        for (int q = 0; q < P; ++q)
#pragma GCC unroll 4
            for (int t = 0; t < C; ++t)
                acc[q][t] = accumulate ? _mm512_loadu_ps(out + t * ldo + 16 * q) : _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; ++b) {
            // PairPanels: o[2q] is pair q's block (o[2q + 1] unused); else one panel per group
            const uint8_t* o[2 * P];
#pragma GCC unroll 4
            for (int g = 0; g < 2 * P; ++g)
                o[g] = PairPanels ? panels[g / 2] + uint64_t(b) * kPairPanelBlockBytes : panels[g] + uint64_t(b) * kPanelBlockBytes;
            const uint8_t* ab[C];
#pragma GCC unroll 4
            for (int t = 0; t < C; ++t) ab[t] = a + t * as + (b0 + b) * sizeof(block_a8);
            __m512i isum[P][C];
#pragma GCC unroll 2
            for (int q = 0; q < P; ++q)
#pragma GCC unroll 4
                for (int t = 0; t < C; ++t) isum[q][t] = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int k = 0; k < 8; ++k) {
                __m512i w[P];
#pragma GCC unroll 2
                for (int q = 0; q < P; ++q)
                    w[q] = PairPanels ? _mm512_load_si512(o[2 * q] + 128 + 64 * k) : load_pair(o[2 * q] + 64 + 32 * k, o[2 * q + 1] + 64 + 32 * k);
#pragma GCC unroll 4
                for (int t = 0; t < C; ++t) {
                    const __m512i x = bcast32(ab[t] + 8 + 4 * k);
#pragma GCC unroll 2
                    for (int q = 0; q < P; ++q) isum[q][t] = _mm512_dpbusd_epi32(isum[q][t], w[q], x);
                }
            }
            // scale_block (packed_avx2.h), on 16 lanes: the same operations per lane
#pragma GCC unroll 2
            for (int q = 0; q < P; ++q) {
                const __m512 d = PairPanels ? _mm512_load_ps(o[2 * q]) : load_pair_ps(o[2 * q], o[2 * q + 1]);
                const __m512 m = PairPanels ? _mm512_load_ps(o[2 * q] + 64) : load_pair_ps(o[2 * q] + 32, o[2 * q + 1] + 32);
#pragma GCC unroll 4
                for (int t = 0; t < C; ++t) {
                    float da, sa;
                    std::memcpy(&da, ab[t], 4);
                    std::memcpy(&sa, ab[t] + 4, 4);
                    acc[q][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[q][t]), _mm512_mul_ps(d, _mm512_set1_ps(da)), acc[q][t]);
                    acc[q][t] = _mm512_fmadd_ps(m, _mm512_set1_ps(sa), acc[q][t]);
                }
            }
        }
#pragma GCC unroll 2
        for (int q = 0; q < P; ++q)
#pragma GCC unroll 4
            for (int t = 0; t < C; ++t) _mm512_storeu_ps(out + t * ldo + 16 * q, acc[q][t]);
    }
};

// The dispatch shapes (tile_dispatch.h): a pair of groups, or two pairs; from one panel per group,
// or from pair panels (the first pointer of each pair).
template <bool PairPanels>
struct PairTile {
    template <int C>
    static void run(int64_t b0, int64_t nb, const uint8_t* panel0, const uint8_t* panel1, const uint8_t* a, uint64_t as,
                    float* out, int64_t ldo, bool accumulate) {
        const uint8_t* panels[2] = {panel0, panel1};
        BlockTiles<1, PairPanels>::template run<C>(b0, nb, panels, a, as, out, ldo, accumulate);
    }
};
template <bool PairPanels>
struct QuadTile {
    template <int C>
    static void run(int64_t b0, int64_t nb, const uint8_t* const* panels, const uint8_t* a, uint64_t as, float* out,
                    int64_t ldo, bool accumulate) {
        BlockTiles<2, PairPanels>::template run<C>(b0, nb, panels, a, as, out, ldo, accumulate);
    }
};

}  // namespace

PanelPairDecodeFn panel_pair_decode(GGMLType t) {
    switch (t) {
        case GGMLType::Q4_0: return decode_pair4<Q40>;
        case GGMLType::Q4_1: return decode_pair4<Q41>;
        default: return nullptr;
    }
}

// The four-bit formats' tiles read pair panels (panel_pair_decode), the five-bit ones the AVX2
// panels of each group.
PanelPairTileFn panel_pair_tile(GGMLType t) {
    switch (t) {
        case GGMLType::Q4_0:
        case GGMLType::Q4_1: return tile_dispatch::run_pair_cols<PairTile<true>>;
        case GGMLType::Q5_0:
        case GGMLType::Q5_1: return tile_dispatch::run_pair_cols<PairTile<false>>;
        default: return nullptr;
    }
}

PanelQuadTileFn panel_quad_tile(GGMLType t) {
    switch (t) {
        case GGMLType::Q4_0:
        case GGMLType::Q4_1: return tile_dispatch::run_quad_cols<QuadTile<true>>;
        case GGMLType::Q5_0:
        case GGMLType::Q5_1: return tile_dispatch::run_quad_cols<QuadTile<false>>;
        default: return nullptr;
    }
}

}  // namespace ember::avx512
