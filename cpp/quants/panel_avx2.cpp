// panel_avx2.cpp — AVX2 panels (see panel.h): decode a slice of a packed group once, then tiles
// of up to 4 tokens that only multiply and add. Compiled with -mavx2 -mfma -mf16c.
//
// The tiles keep 4 weight vectors in registers and pass them over every token of the tile (half
// a block at a time), so each loaded vector serves up to 4 tokens and the accumulators stay in
// registers; the packed tiles' float steps follow in the same order, hence the same bits.
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

template <class P>
struct BlockTile {
    template <int C>
    static void run(int64_t b0, int64_t nb, const uint8_t* panel, const uint8_t* a, uint64_t as, float* out, int64_t ldo,
                    bool accumulate) {
        const __m256i ones = _mm256_set1_epi16(1);
        __m256 acc[C];
        load_acc<C>(acc, out, ldo, accumulate);
        for (int64_t b = 0; b < nb; ++b) {
            const uint8_t* o = panel + uint64_t(b) * kPanelBlockBytes;
            const uint8_t* ab[C];
#pragma GCC unroll 4
            for (int t = 0; t < C; ++t) ab[t] = a + t * as + (b0 + b) * sizeof(block_a8);
            // each half widens to int32 on its own: four products of at most 31 x 127 per lane
            // fit in int16 (for four-bit values a whole block would, but the extra live
            // registers cost more than the madd saved: measured)
            __m256i isum[C];
#pragma GCC unroll 2
            for (int h = 0; h < 2; ++h) {
                const __m256i w0 = load_a(o + 64 + 128 * h), w1 = load_a(o + 96 + 128 * h);
                const __m256i w2 = load_a(o + 128 + 128 * h), w3 = load_a(o + 160 + 128 * h);
#pragma GCC unroll 4
                for (int t = 0; t < C; ++t) {
                    const uint8_t* q = ab[t] + 8 + 16 * h;
                    __m256i v = _mm256_add_epi16(_mm256_maddubs_epi16(w0, bcast32(q)), _mm256_maddubs_epi16(w1, bcast32(q + 4)));
                    v = _mm256_add_epi16(v, _mm256_maddubs_epi16(w2, bcast32(q + 8)));
                    v = _mm256_add_epi16(v, _mm256_maddubs_epi16(w3, bcast32(q + 12)));
                    const __m256i wide = _mm256_madd_epi16(v, ones);
                    isum[t] = h == 0 ? wide : _mm256_add_epi32(isum[t], wide);
                }
            }
            const __m256 d = _mm256_load_ps(reinterpret_cast<const float*>(o));
            const __m256 m = _mm256_load_ps(reinterpret_cast<const float*>(o + 32));
            scale_block<C, true>(ab, isum, d, m, acc);
        }
        store_acc<C>(acc, out, ldo);
    }
};

// Two groups' panels x C tokens: one broadcast per 4 activation bytes serves both groups. Each
// group's integer sums and float step are BlockTile's (integer sums are exact in any order), so
// the bits are the same. Four-bit values keep a whole block in int16 (sixteen products of at most
// 15 x 127 per lane), five-bit values widen per half as BlockTile does.
template <class P>
struct BlockPairTile {
    template <int C>
    static void run(int64_t b0, int64_t nb, const uint8_t* panel0, const uint8_t* panel1, const uint8_t* a, uint64_t as,
                    float* out, int64_t ldo, bool accumulate) {
        constexpr int kHalves = P::kBits == 4 ? 1 : 2, kSteps = 8 / kHalves;
        const __m256i ones = _mm256_set1_epi16(1);
        __m256 acc0[C], acc1[C];
        load_acc<C>(acc0, out, ldo, accumulate);
        load_acc<C>(acc1, out + kPackRows, ldo, accumulate);
        for (int64_t b = 0; b < nb; ++b) {
            const uint8_t* o0 = panel0 + uint64_t(b) * kPanelBlockBytes;
            const uint8_t* o1 = panel1 + uint64_t(b) * kPanelBlockBytes;
            const uint8_t* ab[C];
#pragma GCC unroll 4
            for (int t = 0; t < C; ++t) ab[t] = a + t * as + (b0 + b) * sizeof(block_a8);
            __m256i i0[C], i1[C];
#pragma GCC unroll 2
            for (int h = 0; h < kHalves; ++h) {
                __m256i s0[C], s1[C];
#pragma GCC unroll 8
                for (int j = 0; j < kSteps; ++j) {
                    const int k = h * kSteps + j;
                    const __m256i w0 = load_a(o0 + 64 + 32 * k), w1 = load_a(o1 + 64 + 32 * k);
#pragma GCC unroll 4
                    for (int t = 0; t < C; ++t) {
                        const __m256i x = bcast32(ab[t] + 8 + 4 * k);
                        const __m256i v0 = _mm256_maddubs_epi16(w0, x), v1 = _mm256_maddubs_epi16(w1, x);
                        s0[t] = j == 0 ? v0 : _mm256_add_epi16(s0[t], v0);
                        s1[t] = j == 0 ? v1 : _mm256_add_epi16(s1[t], v1);
                        // keep the sums in registers: left free, GCC computes every product of
                        // the unrolled block first and parks them all on the stack (measured)
                        __asm__("" : "+x"(s0[t]), "+x"(s1[t]));
                    }
                }
#pragma GCC unroll 4
                for (int t = 0; t < C; ++t) {
                    const __m256i wide0 = _mm256_madd_epi16(s0[t], ones), wide1 = _mm256_madd_epi16(s1[t], ones);
                    i0[t] = h == 0 ? wide0 : _mm256_add_epi32(i0[t], wide0);
                    i1[t] = h == 0 ? wide1 : _mm256_add_epi32(i1[t], wide1);
                }
            }
            scale_block<C, true>(ab, i0, _mm256_load_ps(reinterpret_cast<const float*>(o0)),
                                 _mm256_load_ps(reinterpret_cast<const float*>(o0 + 32)), acc0);
            scale_block<C, true>(ab, i1, _mm256_load_ps(reinterpret_cast<const float*>(o1)),
                                 _mm256_load_ps(reinterpret_cast<const float*>(o1 + 32)), acc1);
        }
        store_acc<C>(acc0, out, ldo);
        store_acc<C>(acc1, out + kPackRows, ldo);
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

struct SuperTileQ4K {
    template <int C>
    static void run(int64_t b0, int64_t nb, const uint8_t* panel, const uint8_t* a, uint64_t as, float* out, int64_t ldo,
                    bool accumulate) {
        __m256 acc[C];
        load_acc<C>(acc, out, ldo, accumulate);
        for (int64_t sb = 0; sb < nb / 8; ++sb) {
            const uint8_t* o = panel + uint64_t(sb) * kPanelSuperBytes;
            const block_q8_K* x[C];
#pragma GCC unroll 4
            for (int t = 0; t < C; ++t) x[t] = reinterpret_cast<const block_q8_K*>(a + t * as) + b0 / 8 + sb;
            __m256i isum[C], msum[C];
#pragma GCC unroll 4
            for (int t = 0; t < C; ++t) isum[t] = _mm256_setzero_si256(), msum[t] = _mm256_setzero_si256();
            for (int i = 0; i < 8; ++i) {  // sub-block i: 32 values, eight products of at most 15 x 127 per lane
                __m256i s[C];
#pragma GCC unroll 8
                for (int c = 0; c < 8; ++c) {
                    const __m256i w = load_a(o + 576 + 32 * (8 * i + c));
#pragma GCC unroll 4
                    for (int t = 0; t < C; ++t) {
                        const __m256i v = _mm256_maddubs_epi16(w, bcast32(reinterpret_cast<const uint8_t*>(x[t]->qs) + 32 * i + 4 * c));
                        s[t] = c == 0 ? v : _mm256_add_epi16(s[t], v);
                    }
                }
                const __m256i sc = load_a(o + 64 + 32 * i);
#pragma GCC unroll 4
                for (int t = 0; t < C; ++t) isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(s[t], sc));
            }
#pragma GCC unroll 8
            for (int s = 0; s < 8; ++s) {
                const __m256i mn = load_a(o + 320 + 32 * s);
#pragma GCC unroll 4
                for (int t = 0; t < C; ++t)
                    msum[t] = _mm256_add_epi32(msum[t], _mm256_madd_epi16(mn, bcast32(reinterpret_cast<const uint8_t*>(x[t]->bsums + 2 * s))));
            }
            const __m256 d = _mm256_load_ps(reinterpret_cast<const float*>(o));
            const __m256 dmin = _mm256_load_ps(reinterpret_cast<const float*>(o + 32));
#pragma GCC unroll 4
            for (int t = 0; t < C; ++t) {
                const __m256 dx = _mm256_set1_ps(x[t]->d);
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(d, dx), acc[t]);
                acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum[t]), _mm256_mul_ps(dmin, dx), acc[t]);
            }
        }
        store_acc<C>(acc, out, ldo);
    }
};

// SuperTileQ4K for two groups' panels: one broadcast per 4 activation bytes serves both. The
// integer sums are exact and the float step is SuperTileQ4K's: the same bits.
struct SuperPairTileQ4K {
    template <int C>
    static void run(int64_t b0, int64_t nb, const uint8_t* panel0, const uint8_t* panel1, const uint8_t* a, uint64_t as,
                    float* out, int64_t ldo, bool accumulate) {
        __m256 acc0[C], acc1[C];
        load_acc<C>(acc0, out, ldo, accumulate);
        load_acc<C>(acc1, out + kPackRows, ldo, accumulate);
        for (int64_t sb = 0; sb < nb / 8; ++sb) {
            const uint8_t* o0 = panel0 + uint64_t(sb) * kPanelSuperBytes;
            const uint8_t* o1 = panel1 + uint64_t(sb) * kPanelSuperBytes;
            const block_q8_K* x[C];
#pragma GCC unroll 4
            for (int t = 0; t < C; ++t) x[t] = reinterpret_cast<const block_q8_K*>(a + t * as) + b0 / 8 + sb;
            __m256i isum0[C], isum1[C];
#pragma GCC unroll 4
            for (int t = 0; t < C; ++t) isum0[t] = isum1[t] = _mm256_setzero_si256();
            for (int i = 0; i < 8; ++i) {
                __m256i s0[C], s1[C];
#pragma GCC unroll 8
                for (int c = 0; c < 8; ++c) {
                    const __m256i w0 = load_a(o0 + 576 + 32 * (8 * i + c)), w1 = load_a(o1 + 576 + 32 * (8 * i + c));
#pragma GCC unroll 4
                    for (int t = 0; t < C; ++t) {
                        const __m256i q = bcast32(reinterpret_cast<const uint8_t*>(x[t]->qs) + 32 * i + 4 * c);
                        const __m256i v0 = _mm256_maddubs_epi16(w0, q), v1 = _mm256_maddubs_epi16(w1, q);
                        s0[t] = c == 0 ? v0 : _mm256_add_epi16(s0[t], v0);
                        s1[t] = c == 0 ? v1 : _mm256_add_epi16(s1[t], v1);
                        __asm__("" : "+x"(s0[t]), "+x"(s1[t]));  // no parked products (see BlockPairTile)
                    }
                }
                const __m256i sc0 = load_a(o0 + 64 + 32 * i), sc1 = load_a(o1 + 64 + 32 * i);
#pragma GCC unroll 4
                for (int t = 0; t < C; ++t) {
                    isum0[t] = _mm256_add_epi32(isum0[t], _mm256_madd_epi16(s0[t], sc0));
                    isum1[t] = _mm256_add_epi32(isum1[t], _mm256_madd_epi16(s1[t], sc1));
                }
            }
            __m256i msum0[C], msum1[C];
#pragma GCC unroll 4
            for (int t = 0; t < C; ++t) msum0[t] = msum1[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int s = 0; s < 8; ++s) {
                const __m256i mn0 = load_a(o0 + 320 + 32 * s), mn1 = load_a(o1 + 320 + 32 * s);
#pragma GCC unroll 4
                for (int t = 0; t < C; ++t) {
                    const __m256i bs = bcast32(reinterpret_cast<const uint8_t*>(x[t]->bsums + 2 * s));
                    msum0[t] = _mm256_add_epi32(msum0[t], _mm256_madd_epi16(mn0, bs));
                    msum1[t] = _mm256_add_epi32(msum1[t], _mm256_madd_epi16(mn1, bs));
                }
            }
            const __m256 d0 = _mm256_load_ps(reinterpret_cast<const float*>(o0)), d1 = _mm256_load_ps(reinterpret_cast<const float*>(o1));
            const __m256 dmin0 = _mm256_load_ps(reinterpret_cast<const float*>(o0 + 32));
            const __m256 dmin1 = _mm256_load_ps(reinterpret_cast<const float*>(o1 + 32));
#pragma GCC unroll 4
            for (int t = 0; t < C; ++t) {
                const __m256 dx = _mm256_set1_ps(x[t]->d);
                acc0[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum0[t]), _mm256_mul_ps(d0, dx), acc0[t]);
                acc0[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum0[t]), _mm256_mul_ps(dmin0, dx), acc0[t]);
                acc1[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum1[t]), _mm256_mul_ps(d1, dx), acc1[t]);
                acc1[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum1[t]), _mm256_mul_ps(dmin1, dx), acc1[t]);
            }
        }
        store_acc<C>(acc0, out, ldo);
        store_acc<C>(acc1, out + kPackRows, ldo);
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
        case GGMLType::Q4_0: return tile_dispatch::run_cols<BlockTile<P4_0>>;
        case GGMLType::Q4_1: return tile_dispatch::run_cols<BlockTile<P4_1>>;
        case GGMLType::Q5_0: return tile_dispatch::run_cols<BlockTile<P5_0>>;
        case GGMLType::Q5_1: return tile_dispatch::run_cols<BlockTile<P5_1>>;
        case GGMLType::Q4_K: return tile_dispatch::run_cols<SuperTileQ4K>;
        default: return nullptr;
    }
}

PanelPairTileFn panel_pair_tile(GGMLType t) {
    switch (t) {
        case GGMLType::Q4_0: return tile_dispatch::run_pair_cols<BlockPairTile<P4_0>>;
        case GGMLType::Q4_1: return tile_dispatch::run_pair_cols<BlockPairTile<P4_1>>;
        case GGMLType::Q5_0: return tile_dispatch::run_pair_cols<BlockPairTile<P5_0>>;
        case GGMLType::Q5_1: return tile_dispatch::run_pair_cols<BlockPairTile<P5_1>>;
        case GGMLType::Q4_K: return tile_dispatch::run_pair_cols<SuperPairTileQ4K>;
        default: return nullptr;
    }
}

int32_t panel_min_tokens(GGMLType) { return kPackCols + 1; }

}  // namespace ember::avx2
