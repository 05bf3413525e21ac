// packed_avx2.cpp — AVX2 tiles over packed weights (see packed.h): 8 rows x up to 4 tokens.
// Compiled with -mavx2 -mfma -mf16c and called only when CPUID says so.
//
// Each 32-byte load holds 4 consecutive values (two sets of 4 with nibbles) of the group's 8
// rows; 4 activation bytes broadcast to every lane make maddubs + madd leave row r's partial
// sum in lane r. Per block: the 8 rows' fp16 scales become one float vector, one multiply by
// the token's scale and one fused multiply-add per token; minimums and offsets go through the
// activation block sums, one more fused multiply-add. The lanes are the outputs.
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "quants/blocks.h"
#include "quants/packed.h"
#include "quants/packed_avx2.h"
#include "quants/qdot.h"
#include "quants/tile_dispatch.h"

namespace ember::avx2 {

namespace {

using namespace packed_detail;

// Integer sums of one packed block for C tokens (a[t]: the token's 32 int8 values).
template <class P, int C>
__attribute__((always_inline)) inline void block_sums(const uint8_t* p, const uint8_t* const* a, __m256i* isum) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    if constexpr (std::is_same<P, P8_0>::value) {
        // eight-bit values (sign trick: |w| x sign(a, w)); a product pair may reach 2 x 128 x 127,
        // so each maddubs widens to int32 at once. A quarter of a block's weights at a time stays
        // in registers (half a block left too few for 4 tokens' sums: spills, measured).
        #pragma GCC unroll 8
        for (int t = 0; t < C; ++t) isum[t] = _mm256_setzero_si256();
        #pragma GCC unroll 8
        for (int h = 0; h < 4; ++h) {
            const __m256i v0 = load256(p + P::kQs + 64 * h), v1 = load256(p + P::kQs + 64 * h + 32);
            const __m256i av0 = _mm256_sign_epi8(v0, v0), av1 = _mm256_sign_epi8(v1, v1);
            #pragma GCC unroll 8
            for (int t = 0; t < C; ++t) {
                const __m256i sx0 = _mm256_sign_epi8(bcast32(a[t] + 8 * h), v0);
                const __m256i sx1 = _mm256_sign_epi8(bcast32(a[t] + 8 * h + 4), v1);
                isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(_mm256_maddubs_epi16(av0, sx0), ones));
                isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(_mm256_maddubs_epi16(av1, sx1), ones));
                // keep the sum in its register here: left free, GCC reorders the whole unrolled
                // block into 32 products parked on the stack before any add (measured)
                __asm__("" : "+x"(isum[t]));
            }
        }
    } else if constexpr (std::is_same<P, P4_0>::value || std::is_same<P, P4_1>::value) {
        // four-bit values: unpack the block's 8 x 32 bytes once, then each token in turn (eight
        // products of at most 15 x 127 per lane fit in int16)
        __m256i w[8];
        #pragma GCC unroll 8
        for (int c = 0; c < 4; ++c) {
            const __m256i v = load256(p + P::kQs + 32 * c);
            w[2 * c] = _mm256_and_si256(v, low4);
            w[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
        }
        #pragma GCC unroll 8
        for (int t = 0; t < C; ++t) {
            __m256i s16 = _mm256_maddubs_epi16(w[0], bcast32(a[t]));
            s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(w[1], bcast32(a[t] + 16)));
            for (int c = 1; c < 4; ++c) {
                s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(w[2 * c], bcast32(a[t] + 4 * c)));
                s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(w[2 * c + 1], bcast32(a[t] + 16 + 4 * c)));
            }
            isum[t] = _mm256_madd_epi16(s16, ones);
        }
    } else {  // five-bit values: four products of at most 31 x 127 per lane fit in int16
        const __m256i qh = load256(p + P::kQh);
        __m256i w[8];
        const auto unpack = [&](auto c) {
            constexpr int J = decltype(c)::value;
            const __m256i v = load256(p + P::kQs + 32 * J);
            w[2 * J] = _mm256_or_si256(_mm256_and_si256(v, low4), fifth_bits<J, false>(qh));
            w[2 * J + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), low4), fifth_bits<J, true>(qh));
        };
        unpack(std::integral_constant<int, 0>{});
        unpack(std::integral_constant<int, 1>{});
        unpack(std::integral_constant<int, 2>{});
        unpack(std::integral_constant<int, 3>{});
        #pragma GCC unroll 8
        for (int t = 0; t < C; ++t) {
            __m256i s0 = _mm256_maddubs_epi16(w[0], bcast32(a[t]));
            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(w[1], bcast32(a[t] + 16)));
            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(w[2], bcast32(a[t] + 4)));
            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(w[3], bcast32(a[t] + 20)));
            __m256i s1 = _mm256_maddubs_epi16(w[4], bcast32(a[t] + 8));
            s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(w[5], bcast32(a[t] + 24)));
            s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(w[6], bcast32(a[t] + 12)));
            s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(w[7], bcast32(a[t] + 28)));
            isum[t] = _mm256_add_epi32(_mm256_madd_epi16(s0, ones), _mm256_madd_epi16(s1, ones));
        }
    }
}

// A single token's tile streams the weights once and does little arithmetic per byte: the
// hardware prefetcher alone leaves it waiting on memory (measured ~10% slower decode), so each
// block asks for the bytes 2 KiB ahead.
constexpr int kPrefetchAhead = 2048;
template <int Bytes>
inline void prefetch_ahead(const uint8_t* p) {
    #pragma GCC unroll 40
    for (int off = 0; off < Bytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchAhead + off), _MM_HINT_T0);
}

template <class P>
struct Tile {
    template <int C>
    static void run(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, float* out, int64_t ldo,
                    bool accumulate) {
        // One accumulator per token: the block's scaled sum, then its minimum term (a fixed
        // order, so any number of tokens gives the same bits).
        __m256 acc[C];
        load_acc<C>(acc, out, ldo, accumulate);
        for (int64_t b = b0; b < b0 + nb; ++b) {
            const uint8_t* p = group + b * P::kBytes;
            if constexpr (C == 1) prefetch_ahead<P::kBytes>(p);
            const uint8_t* ab[C];
            #pragma GCC unroll 8
            for (int t = 0; t < C; ++t) ab[t] = a + t * as + b * sizeof(block_a8);
            const uint8_t* qs[C];
            #pragma GCC unroll 8
            for (int t = 0; t < C; ++t) qs[t] = ab[t] + 8;
            __m256i isum[C];
            block_sums<P, C>(p, qs, isum);
            const __m256 d = load_f16x8(p);
            const __m256 m = P::mins(p, d);
            scale_block<C, P::kMin>(ab, isum, d, m, acc);
        }
        store_acc<C>(acc, out, ldo);
    }
};


// Two adjacent groups (16 rows) x C tokens of eight-bit values: one broadcast per 4 activation
// bytes serves both groups. Each group's operations are Tile<P8_0>'s (exact integer sums, the
// same float step), so the bits are the same.
struct PairTile8 {
    template <int C>
    static void run(int64_t b0, int64_t nb, const uint8_t* group0, const uint8_t* group1, const uint8_t* a, uint64_t as,
                    float* out, int64_t ldo, bool accumulate) {
        using P = P8_0;
        const __m256i ones = _mm256_set1_epi16(1);
        __m256 acc0[C], acc1[C];
        load_acc<C>(acc0, out, ldo, accumulate);
        load_acc<C>(acc1, out + kPackRows, ldo, accumulate);
        for (int64_t b = b0; b < b0 + nb; ++b) {
            const uint8_t* p0 = group0 + b * P::kBytes;
            const uint8_t* p1 = group1 + b * P::kBytes;
            const uint8_t* ab[C];
            #pragma GCC unroll 8
            for (int t = 0; t < C; ++t) ab[t] = a + t * as + b * sizeof(block_a8);
            __m256i i0[C], i1[C];
            #pragma GCC unroll 8
            for (int k = 0; k < 8; ++k) {
                const __m256i v0 = load256(p0 + P::kQs + 32 * k), v1 = load256(p1 + P::kQs + 32 * k);
                const __m256i u0 = _mm256_sign_epi8(v0, v0), u1 = _mm256_sign_epi8(v1, v1);
                #pragma GCC unroll 8
                for (int t = 0; t < C; ++t) {
                    const __m256i x = bcast32(ab[t] + 8 + 4 * k);
                    const __m256i q0 = _mm256_madd_epi16(_mm256_maddubs_epi16(u0, _mm256_sign_epi8(x, v0)), ones);
                    const __m256i q1 = _mm256_madd_epi16(_mm256_maddubs_epi16(u1, _mm256_sign_epi8(x, v1)), ones);
                    i0[t] = k == 0 ? q0 : _mm256_add_epi32(i0[t], q0);
                    i1[t] = k == 0 ? q1 : _mm256_add_epi32(i1[t], q1);
                    __asm__("" : "+x"(i0[t]), "+x"(i1[t]));  // as in block_sums: no parked products
                }
            }
            const __m256 d0 = load_f16x8(p0), d1 = load_f16x8(p1);
            scale_block<C, false>(ab, i0, d0, _mm256_setzero_ps(), acc0);
            scale_block<C, false>(ab, i1, d1, _mm256_setzero_ps(), acc1);
        }
        store_acc<C>(acc0, out, ldo);
        store_acc<C>(acc1, out + kPackRows, ldo);
    }
};

// ------------------------------------------------------------- K-quants (8 rows x 256 values)
// Tokens go in pairs (the pair shares each loaded register of weights); each token's operations
// are the same in a pair or alone.
struct PK4 {
    static constexpr int kBytes = 1184;
    template <int N>
    static void superblock(const uint8_t* p, const block_q8_K* const* x, __m256* acc) {
        const __m256i low4 = _mm256_set1_epi8(0x0F);
        __m256i isum[N], msum[N];
#pragma GCC unroll 2
        for (int t = 0; t < N; ++t) isum[t] = _mm256_setzero_si256(), msum[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
            __m256i s_lo[N], s_hi[N];
#pragma GCC unroll 2
            for (int t = 0; t < N; ++t) s_lo[t] = _mm256_setzero_si256(), s_hi[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int c = 0; c < 8; ++c) {
                const __m256i v = load256(p + 160 + 32 * (8 * j + c));
                const __m256i lo = _mm256_and_si256(v, low4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
#pragma GCC unroll 2
                for (int t = 0; t < N; ++t) {
                    s_lo[t] = _mm256_add_epi16(s_lo[t], _mm256_maddubs_epi16(lo, bcast32(reinterpret_cast<const uint8_t*>(x[t]->qs) + 64 * j + 4 * c)));
                    s_hi[t] = _mm256_add_epi16(s_hi[t], _mm256_maddubs_epi16(hi, bcast32(reinterpret_cast<const uint8_t*>(x[t]->qs) + 64 * j + 32 + 4 * c)));
                }
            }
            const __m256i sc_lo = pair16(load_u8x8_epi32(p + 32 + 8 * (2 * j))), sc_hi = pair16(load_u8x8_epi32(p + 32 + 8 * (2 * j + 1)));
#pragma GCC unroll 2
            for (int t = 0; t < N; ++t)
                isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_madd_epi16(s_lo[t], sc_lo), _mm256_madd_epi16(s_hi[t], sc_hi)));
        }
#pragma GCC unroll 8
        for (int s = 0; s < 8; ++s) {
            const __m256i mn = load_u8x8_epi32(p + 96 + 8 * s);
#pragma GCC unroll 2
            for (int t = 0; t < N; ++t)
                msum[t] = _mm256_add_epi32(msum[t], _mm256_mullo_epi32(mn, _mm256_set1_epi32(x[t]->bsums[2 * s] + x[t]->bsums[2 * s + 1])));
        }
        const __m256 d = load_f16x8(p), dmin = load_f16x8(p + 16);
#pragma GCC unroll 2
        for (int t = 0; t < N; ++t) {
            const __m256 dx = _mm256_set1_ps(x[t]->d);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(d, dx), acc[t]);
            acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum[t]), _mm256_mul_ps(dmin, dx), acc[t]);
        }
    }
};

struct PK6 {
    static constexpr int kBytes = 2192;
    template <int N>
    static void superblock(const uint8_t* p, const block_q8_K* const* x, __m256* acc) {
        __m256i isum[N], off[N];
#pragma GCC unroll 2
        for (int t = 0; t < N; ++t) isum[t] = _mm256_setzero_si256(), off[t] = _mm256_setzero_si256();
#pragma GCC unroll 16
        for (int s = 0; s < 16; ++s) {  // sub-blocks of 16 values: 4 registers
            const __m256i sc32 = load_i8x8_epi32(p + 16 + 8 * s), sc = pair16(sc32);
            const __m256i r0 = load256(p + 144 + 32 * (4 * s)), r1 = load256(p + 144 + 32 * (4 * s + 1));
            const __m256i r2 = load256(p + 144 + 32 * (4 * s + 2)), r3 = load256(p + 144 + 32 * (4 * s + 3));
#pragma GCC unroll 2
            for (int t = 0; t < N; ++t) {
                const uint8_t* q = reinterpret_cast<const uint8_t*>(x[t]->qs) + 16 * s;
                // two products of at most 63 x 127 per lane, twice: fits int16
                const __m256i s01 = _mm256_add_epi16(_mm256_maddubs_epi16(r0, bcast32(q)), _mm256_maddubs_epi16(r1, bcast32(q + 4)));
                const __m256i s23 = _mm256_add_epi16(_mm256_maddubs_epi16(r2, bcast32(q + 8)), _mm256_maddubs_epi16(r3, bcast32(q + 12)));
                isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_madd_epi16(s01, sc), _mm256_madd_epi16(s23, sc)));
                off[t] = _mm256_add_epi32(off[t], _mm256_mullo_epi32(sc32, _mm256_set1_epi32(x[t]->bsums[s])));
            }
        }
        const __m256 d = load_f16x8(p);
#pragma GCC unroll 2
        for (int t = 0; t < N; ++t) {  // the values are q - 32
            const __m256i v = _mm256_sub_epi32(isum[t], _mm256_slli_epi32(off[t], 5));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_mul_ps(d, _mm256_set1_ps(x[t]->d)), acc[t]);
        }
    }
};

template <class P>
struct TileK {
    template <int C>
    static void run(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, float* out, int64_t ldo,
                    bool accumulate) {
        __m256 acc[C];
        load_acc<C>(acc, out, ldo, accumulate);
        for (int64_t sb = b0 / 8; sb < (b0 + nb) / 8; ++sb) {
            const uint8_t* p = group + sb * P::kBytes;
            if constexpr (C == 1) prefetch_ahead<P::kBytes>(p);
            const block_q8_K* x[C];
#pragma GCC unroll 4
            for (int t = 0; t < C; ++t) x[t] = reinterpret_cast<const block_q8_K*>(a + t * as) + sb;
#pragma GCC unroll 2
            for (int t = 0; t + 1 < C; t += 2) P::template superblock<2>(p, x + t, acc + t);
            if (C % 2) P::template superblock<1>(p, x + C - 1, acc + C - 1);
        }
        store_acc<C>(acc, out, ldo);
    }
};

template <class P, template <class> class T = Tile>
void dispatch(int64_t b0, int64_t nb, const uint8_t* group, const uint8_t* a, uint64_t as, int nt, float* out, int64_t ldo,
              bool accumulate) {
    tile_dispatch::run_cols<T<P>>(b0, nb, group, a, as, nt, out, ldo, accumulate);
}

}  // namespace

void packed_tile_q4_0(int64_t b0, int64_t nb, const uint8_t* g, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate) {
    dispatch<P4_0>(b0, nb, g, a, as, nt, out, ldo, accumulate);
}
void packed_tile_q4_1(int64_t b0, int64_t nb, const uint8_t* g, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate) {
    dispatch<P4_1>(b0, nb, g, a, as, nt, out, ldo, accumulate);
}
void packed_tile_q5_0(int64_t b0, int64_t nb, const uint8_t* g, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate) {
    dispatch<P5_0>(b0, nb, g, a, as, nt, out, ldo, accumulate);
}
void packed_tile_q5_1(int64_t b0, int64_t nb, const uint8_t* g, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate) {
    dispatch<P5_1>(b0, nb, g, a, as, nt, out, ldo, accumulate);
}
void packed_tile_q8_0(int64_t b0, int64_t nb, const uint8_t* g, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate) {
    dispatch<P8_0>(b0, nb, g, a, as, nt, out, ldo, accumulate);
}

void packed_pair_tile_q8_0(int64_t b0, int64_t nb, const uint8_t* g0, const uint8_t* g1, const uint8_t* a, uint64_t as, int nt,
                           float* out, int64_t ldo, bool accumulate) {
    tile_dispatch::run_pair_cols<PairTile8>(b0, nb, g0, g1, a, as, nt, out, ldo, accumulate);
}

void packed_tile_q4_K(int64_t b0, int64_t nb, const uint8_t* g, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate) {
    dispatch<PK4, TileK>(b0, nb, g, a, as, nt, out, ldo, accumulate);
}
void packed_tile_q6_K(int64_t b0, int64_t nb, const uint8_t* g, const uint8_t* a, uint64_t as, int nt, float* out,
                      int64_t ldo, bool accumulate) {
    dispatch<PK6, TileK>(b0, nb, g, a, as, nt, out, ldo, accumulate);
}

}  // namespace ember::avx2
