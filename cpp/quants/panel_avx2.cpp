// panel_avx2.cpp — AVX2 panels (see panel.h): decode a slice of a packed group once, then tiles
// of up to 4 tokens that only multiply and add. Compiled with -mavx2 -mfma -mf16c.
//
// The tiles take one group or two adjacent ones (G): each step loads the G groups' vectors of 4
// values, and each token's 4 activation bytes, broadcast once, multiply all G of them; the sums
// stay in registers. The packed tiles' float steps follow in the same order, hence the same bits.
#include <immintrin.h>

#include "quants/blocks.h"
#include "quants/packed.h"
#include "quants/packed_avx2.h"
#include "quants/panel.h"
#include "quants/qdot.h"
#include "quants/tile_dispatch.h"

namespace ember::avx2 {

namespace {

using namespace packed_detail;

inline void store256(uint8_t* p, __m256i v) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }
inline __m256i load_a(const uint8_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }

// ---------------------------------------------------------------- 32-value formats
template <class P>
void decode_blocks(int64_t b0, int64_t nb, const uint8_t* group, uint8_t* panel) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* p = group + (b0 + b) * P::kBytes;
        uint8_t* o = panel + uint64_t(b) * kPanelBlockBytes;
        const __m256 d = load_f16x8(p);
        _mm256_store_ps(reinterpret_cast<float*>(o), d);
        _mm256_store_ps(reinterpret_cast<float*>(o + 32), P::mins(p, d));
        __m256i lo[4], hi[4];
        for (int c = 0; c < 4; ++c) {
            const __m256i v = load256(p + P::kQs + 32 * c);
            lo[c] = _mm256_and_si256(v, low4);
            hi[c] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
        }
        if constexpr (P::kBits == 5) {
            const __m256i qh = load256(p + P::kQh);
            lo[0] = _mm256_or_si256(lo[0], fifth_bits<0, false>(qh)), hi[0] = _mm256_or_si256(hi[0], fifth_bits<0, true>(qh));
            lo[1] = _mm256_or_si256(lo[1], fifth_bits<1, false>(qh)), hi[1] = _mm256_or_si256(hi[1], fifth_bits<1, true>(qh));
            lo[2] = _mm256_or_si256(lo[2], fifth_bits<2, false>(qh)), hi[2] = _mm256_or_si256(hi[2], fifth_bits<2, true>(qh));
            lo[3] = _mm256_or_si256(lo[3], fifth_bits<3, false>(qh)), hi[3] = _mm256_or_si256(hi[3], fifth_bits<3, true>(qh));
        }
        // packed register c holds values 4c.. (low nibbles) and 16 + 4c.. (high): vector j = 4j..
        for (int c = 0; c < 4; ++c) store256(o + 64 + 32 * c, lo[c]), store256(o + 64 + 32 * (4 + c), hi[c]);
    }
}

// G groups' panels (G = 1, or 2 for two adjacent groups) x C tokens: each broadcast of 4
// activation bytes feeds the G groups' weight registers. Four-bit values keep a whole block in
// int16 (sixteen products of at most 15 x 127 per lane), five-bit values widen per half (four
// products of at most 31 x 127). The integer sums are exact and the float step is the packed
// tile's (scale_block): the same bits as the packed tile for any G.
template <class P>
struct BlockTiles {
    template <int G, int C>
    static void run(int64_t b0, int64_t nb, const uint8_t* const* panels, const uint8_t* a, uint64_t as, float* out,
                    int64_t ldo, bool accumulate) {
        constexpr int kHalves = P::kBits == 4 ? 1 : 2, kSteps = 8 / kHalves;
        const __m256i ones = _mm256_set1_epi16(1);
        __m256 acc[G][C];
#pragma GCC unroll 2
        for (int g = 0; g < G; ++g) load_acc<C>(acc[g], out + g * kPackRows, ldo, accumulate);
        for (int64_t b = 0; b < nb; ++b) {
            const uint8_t* o[G];
#pragma GCC unroll 2
            for (int g = 0; g < G; ++g) o[g] = panels[g] + uint64_t(b) * kPanelBlockBytes;
            const uint8_t* ab[C];
#pragma GCC unroll 4
            for (int t = 0; t < C; ++t) ab[t] = a + t * as + (b0 + b) * sizeof(block_a8);
            __m256i isum[G][C];
#pragma GCC unroll 2
            for (int h = 0; h < kHalves; ++h) {
                __m256i s[G][C];
#pragma GCC unroll 8
                for (int j = 0; j < kSteps; ++j) {
                    const int k = h * kSteps + j;
                    __m256i w[G];
#pragma GCC unroll 2
                    for (int g = 0; g < G; ++g) w[g] = load_a(o[g] + 64 + 32 * k);
#pragma GCC unroll 4
                    for (int t = 0; t < C; ++t) {
                        const __m256i x = bcast32(ab[t] + 8 + 4 * k);
#pragma GCC unroll 2
                        for (int g = 0; g < G; ++g) {
                            const __m256i v = _mm256_maddubs_epi16(w[g], x);
                            s[g][t] = j == 0 ? v : _mm256_add_epi16(s[g][t], v);
                            // keep the sum in its register: left free, GCC computes every product
                            // of the unrolled block first and parks them all on the stack (measured)
                            __asm__("" : "+x"(s[g][t]));
                        }
                    }
                }
#pragma GCC unroll 2
                for (int g = 0; g < G; ++g)
#pragma GCC unroll 4
                    for (int t = 0; t < C; ++t) {
                        const __m256i wide = _mm256_madd_epi16(s[g][t], ones);
                        isum[g][t] = h == 0 ? wide : _mm256_add_epi32(isum[g][t], wide);
                    }
            }
#pragma GCC unroll 2
            for (int g = 0; g < G; ++g)
                scale_block<C, true>(ab, isum[g], _mm256_load_ps(reinterpret_cast<const float*>(o[g])),
                                     _mm256_load_ps(reinterpret_cast<const float*>(o[g] + 32)), acc[g]);
        }
#pragma GCC unroll 2
        for (int g = 0; g < G; ++g) store_acc<C>(acc[g], out + g * kPackRows, ldo);
    }
};

// ---------------------------------------------------------------- Q4_K (packed.h's PK4 layout)
void decode_q4_K(int64_t b0, int64_t nb, const uint8_t* group, uint8_t* panel) {
    constexpr int kBytes = 1184;
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    for (int64_t sb = 0; sb < nb / 8; ++sb) {
        const uint8_t* p = group + (b0 / 8 + sb) * kBytes;
        uint8_t* o = panel + uint64_t(sb) * kPanelSuperBytes;
        _mm256_store_ps(reinterpret_cast<float*>(o), load_f16x8(p));
        _mm256_store_ps(reinterpret_cast<float*>(o + 32), load_f16x8(p + 16));
        for (int s = 0; s < 8; ++s) {
            store256(o + 64 + 32 * s, pair16(load_u8x8_epi32(p + 32 + 8 * s)));
            store256(o + 320 + 32 * s, pair16(load_u8x8_epi32(p + 96 + 8 * s)));
        }
        for (int j = 0; j < 4; ++j)
            for (int c = 0; c < 8; ++c) {
                const __m256i v = load256(p + 160 + 32 * (8 * j + c));
                store256(o + 576 + 32 * (16 * j + c), _mm256_and_si256(v, low4));
                store256(o + 576 + 32 * (16 * j + 8 + c), _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
            }
    }
}

// G groups' Q4_K panels x C tokens (as BlockTiles: one broadcast feeds G groups; exact integer
// sums; the same float step whatever G).
struct SuperTilesQ4K {
    template <int G, int C>
    static void run(int64_t b0, int64_t nb, const uint8_t* const* panels, const uint8_t* a, uint64_t as, float* out,
                    int64_t ldo, bool accumulate) {
        __m256 acc[G][C];
#pragma GCC unroll 2
        for (int g = 0; g < G; ++g) load_acc<C>(acc[g], out + g * kPackRows, ldo, accumulate);
        for (int64_t sb = 0; sb < nb / 8; ++sb) {
            const uint8_t* o[G];
#pragma GCC unroll 2
            for (int g = 0; g < G; ++g) o[g] = panels[g] + uint64_t(sb) * kPanelSuperBytes;
            const block_q8_K* x[C];
#pragma GCC unroll 4
            for (int t = 0; t < C; ++t) x[t] = reinterpret_cast<const block_q8_K*>(a + t * as) + b0 / 8 + sb;
            __m256i isum[G][C], msum[G][C];
#pragma GCC unroll 2
            for (int g = 0; g < G; ++g)
#pragma GCC unroll 4
                for (int t = 0; t < C; ++t) isum[g][t] = msum[g][t] = _mm256_setzero_si256();
            for (int i = 0; i < 8; ++i) {  // sub-block i: 32 values, eight products of at most 15 x 127 per lane
                __m256i s[G][C];
#pragma GCC unroll 8
                for (int c = 0; c < 8; ++c) {
                    __m256i w[G];
#pragma GCC unroll 2
                    for (int g = 0; g < G; ++g) w[g] = load_a(o[g] + 576 + 32 * (8 * i + c));
#pragma GCC unroll 4
                    for (int t = 0; t < C; ++t) {
                        const __m256i q = bcast32(reinterpret_cast<const uint8_t*>(x[t]->qs) + 32 * i + 4 * c);
#pragma GCC unroll 2
                        for (int g = 0; g < G; ++g) {
                            const __m256i v = _mm256_maddubs_epi16(w[g], q);
                            s[g][t] = c == 0 ? v : _mm256_add_epi16(s[g][t], v);
                            __asm__("" : "+x"(s[g][t]));  // no parked products (see BlockTiles)
                        }
                    }
                }
#pragma GCC unroll 2
                for (int g = 0; g < G; ++g) {
                    const __m256i sc = load_a(o[g] + 64 + 32 * i);
#pragma GCC unroll 4
                    for (int t = 0; t < C; ++t) isum[g][t] = _mm256_add_epi32(isum[g][t], _mm256_madd_epi16(s[g][t], sc));
                }
            }
#pragma GCC unroll 8
            for (int s = 0; s < 8; ++s) {
                __m256i mn[G];
#pragma GCC unroll 2
                for (int g = 0; g < G; ++g) mn[g] = load_a(o[g] + 320 + 32 * s);
#pragma GCC unroll 4
                for (int t = 0; t < C; ++t) {
                    const __m256i bs = bcast32(reinterpret_cast<const uint8_t*>(x[t]->bsums + 2 * s));
#pragma GCC unroll 2
                    for (int g = 0; g < G; ++g) msum[g][t] = _mm256_add_epi32(msum[g][t], _mm256_madd_epi16(mn[g], bs));
                }
            }
#pragma GCC unroll 2
            for (int g = 0; g < G; ++g) {
                const __m256 d = _mm256_load_ps(reinterpret_cast<const float*>(o[g]));
                const __m256 dmin = _mm256_load_ps(reinterpret_cast<const float*>(o[g] + 32));
#pragma GCC unroll 4
                for (int t = 0; t < C; ++t) {
                    const __m256 dx = _mm256_set1_ps(x[t]->d);
                    acc[g][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[g][t]), _mm256_mul_ps(d, dx), acc[g][t]);
                    acc[g][t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum[g][t]), _mm256_mul_ps(dmin, dx), acc[g][t]);
                }
            }
        }
#pragma GCC unroll 2
        for (int g = 0; g < G; ++g) store_acc<C>(acc[g], out + g * kPackRows, ldo);
    }
};

// The dispatch shapes (tile_dispatch.h) over K::run<G, C>: one group, or a pair.
template <class K>
struct OneGroup {
    template <int C>
    static void run(int64_t b0, int64_t nb, const uint8_t* panel, const uint8_t* a, uint64_t as, float* out, int64_t ldo,
                    bool accumulate) {
        const uint8_t* panels[1] = {panel};
        K::template run<1, C>(b0, nb, panels, a, as, out, ldo, accumulate);
    }
};
template <class K>
struct TwoGroups {
    template <int C>
    static void run(int64_t b0, int64_t nb, const uint8_t* panel0, const uint8_t* panel1, const uint8_t* a, uint64_t as,
                    float* out, int64_t ldo, bool accumulate) {
        const uint8_t* panels[2] = {panel0, panel1};
        K::template run<2, C>(b0, nb, panels, a, as, out, ldo, accumulate);
    }
};

}  // namespace

PanelDecodeFn panel_decode(GGMLType t) {
    switch (t) {
        case GGMLType::Q4_0: return decode_blocks<P4_0>;
        case GGMLType::Q4_1: return decode_blocks<P4_1>;
        case GGMLType::Q5_0: return decode_blocks<P5_0>;
        case GGMLType::Q5_1: return decode_blocks<P5_1>;
        case GGMLType::Q4_K: return decode_q4_K;
        default: return nullptr;
    }
}

PanelTileFn panel_tile(GGMLType t) {
    switch (t) {
        case GGMLType::Q4_0: return tile_dispatch::run_cols<OneGroup<BlockTiles<P4_0>>>;
        case GGMLType::Q4_1: return tile_dispatch::run_cols<OneGroup<BlockTiles<P4_1>>>;
        case GGMLType::Q5_0: return tile_dispatch::run_cols<OneGroup<BlockTiles<P5_0>>>;
        case GGMLType::Q5_1: return tile_dispatch::run_cols<OneGroup<BlockTiles<P5_1>>>;
        case GGMLType::Q4_K: return tile_dispatch::run_cols<OneGroup<SuperTilesQ4K>>;
        default: return nullptr;
    }
}

PanelPairTileFn panel_pair_tile(GGMLType t) {
    switch (t) {
        case GGMLType::Q4_0: return tile_dispatch::run_pair_cols<TwoGroups<BlockTiles<P4_0>>>;
        case GGMLType::Q4_1: return tile_dispatch::run_pair_cols<TwoGroups<BlockTiles<P4_1>>>;
        case GGMLType::Q5_0: return tile_dispatch::run_pair_cols<TwoGroups<BlockTiles<P5_0>>>;
        case GGMLType::Q5_1: return tile_dispatch::run_pair_cols<TwoGroups<BlockTiles<P5_1>>>;
        case GGMLType::Q4_K: return tile_dispatch::run_pair_cols<TwoGroups<SuperTilesQ4K>>;
        default: return nullptr;
    }
}

int32_t panel_min_tokens(GGMLType) { return kPackCols + 1; }

}  // namespace ember::avx2
