// qdot_avx2.cpp — AVX2 activation quantizers and integer dot-product tiles (see qdot.h).
// Compiled with -mavx2 -mfma -mf16c and called only when CPUID says so.
//
// A tile holds R x C accumulators of 8 float lanes: per block, each weight block is unpacked once
// into 32 bytes, each activation block loaded once, and every (row, token) pair takes
// maddubs (u8 x s8 pairs -> s16) -> madd with 1 (or the sub-block scales) -> s32 -> float, and one
// fused multiply-add by the two block scales. Lanes are summed once at the end. The pair's
// instruction sequence is the same in every R x C instantiation, hence batch invariance.
// Signed weights (Q8_0) use the sign trick (|w| x sign(a, w)); the others stay unsigned, their
// minimums or offsets entering through the activations' block sums.
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "quants/blocks.h"
#include "quants/qdot.h"
#include "quants/ref.h"
#include "quants/tile_dispatch.h"

namespace ember::avx2 {

namespace {

inline float fp16(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

inline int hsum_epi32(__m256i v) {
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
    return _mm_cvtsi128_si32(t);
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// 32 nibbles of 16 bytes: lanes 0-15 the low nibbles, 16-31 the high ones (ggml's order).
inline __m256i nibbles(const uint8_t* qs) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), _mm256_set1_epi8(0x0F));
}

// 0x10 in byte i where bit i of the 32-bit little-endian word is set.
inline __m256i fifth_bits(const uint8_t* qh) {
    uint32_t bits;
    std::memcpy(&bits, qh, 4);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(int(bits)),
                                               _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                                2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i mask = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, mask), mask);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// Per-byte bits [s, s+w) of a 32-byte vector (16-bit shifts are safe once masked per byte).
inline __m256i byte_bits(__m256i v, int s, int mask) {
    return _mm256_and_si256(_mm256_srli_epi16(v, s), _mm256_set1_epi8(char(mask)));
}

// ------------------------------------------------------------- 32-element weight blocks
struct Q4_0 {
    static constexpr size_t kBytes = sizeof(block_q4_0);
    static constexpr bool kSigned = false;
    static void load(const uint8_t* b, __m256i* q, float* d, float* m) {
        *d = fp16(b);
        *m = -8.0f * *d;
        *q = nibbles(b + 2);
    }
};
struct Q4_1 {
    static constexpr size_t kBytes = sizeof(block_q4_1);
    static constexpr bool kSigned = false;
    static void load(const uint8_t* b, __m256i* q, float* d, float* m) {
        *d = fp16(b);
        *m = fp16(b + 2);
        *q = nibbles(b + 4);
    }
};
struct Q5_0 {
    static constexpr size_t kBytes = sizeof(block_q5_0);
    static constexpr bool kSigned = false;
    static void load(const uint8_t* b, __m256i* q, float* d, float* m) {
        *d = fp16(b);
        *m = -16.0f * *d;
        *q = _mm256_or_si256(nibbles(b + 6), fifth_bits(b + 2));
    }
};
struct Q5_1 {
    static constexpr size_t kBytes = sizeof(block_q5_1);
    static constexpr bool kSigned = false;
    static void load(const uint8_t* b, __m256i* q, float* d, float* m) {
        *d = fp16(b);
        *m = fp16(b + 2);
        *q = _mm256_or_si256(nibbles(b + 8), fifth_bits(b + 4));
    }
};
struct Q8_0 {
    static constexpr size_t kBytes = sizeof(block_q8_0);
    static constexpr bool kSigned = true;
    static void load(const uint8_t* b, __m256i* q, float* d, float* m) {
        *d = fp16(b);
        *m = 0.0f;
        *q = load256(b + 2);
    }
};

template <class W>
struct Tile32 {
    template <int R, int C>
    static void run(int64_t n, const uint8_t* w, uint64_t ws, const uint8_t* a, uint64_t as, float* out, int64_t ldo) {
        __m256 acc[R][C];
        float mins[R][C];
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
            #pragma GCC unroll 8
            for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps(), mins[r][c] = 0.0f;
        const __m256i ones = _mm256_set1_epi16(1);
        for (int64_t i = 0; i < n / 32; ++i) {
            __m256i qa[C];
            float da[C], sa[C];
            #pragma GCC unroll 8
            for (int c = 0; c < C; ++c) {
                const uint8_t* p = a + c * as + i * sizeof(block_a8);
                std::memcpy(&da[c], p, 4);
                std::memcpy(&sa[c], p + 4, 4);
                qa[c] = load256(p + 8);
            }
            #pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
                __m256i qw;
                float dw, mw;
                W::load(w + r * ws + i * W::kBytes, &qw, &dw, &mw);
                const __m256i uw = W::kSigned ? _mm256_sign_epi8(qw, qw) : qw;
                #pragma GCC unroll 8
                for (int c = 0; c < C; ++c) {
                    const __m256i xa = W::kSigned ? _mm256_sign_epi8(qa[c], qw) : qa[c];
                    const __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(uw, xa), ones));
                    acc[r][c] = _mm256_fmadd_ps(f, _mm256_set1_ps(dw * da[c]), acc[r][c]);
                    if (!W::kSigned) mins[r][c] += mw * sa[c];
                }
            }
        }
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
            #pragma GCC unroll 8
            for (int c = 0; c < C; ++c) out[c * ldo + r] = hsum(acc[r][c]) + mins[r][c];
    }
};

// ------------------------------------------------------------- K-quants against Q8K
template <bool Five>
struct TileQ45K {
    using B = typename std::conditional<Five, block_q5_K, block_q4_K>::type;
    template <int R, int C>
    static void run(int64_t n, const uint8_t* w, uint64_t ws, const uint8_t* a, uint64_t as, float* out, int64_t ldo) {
        __m256 acc[R][C];
        float mins[R][C];
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
            #pragma GCC unroll 8
            for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps(), mins[r][c] = 0.0f;
        const __m256i low4 = _mm256_set1_epi8(0x0F);
        for (int64_t i = 0; i < n / QK_K; ++i) {
            const block_q8_K* x[C];
            #pragma GCC unroll 8
            for (int c = 0; c < C; ++c) x[c] = reinterpret_cast<const block_q8_K*>(a + c * as) + i;
            #pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
                const B* b = reinterpret_cast<const B*>(w + r * ws) + i;
                uint8_t sc[8], mn[8];
                #pragma GCC unroll 8
                for (int j = 0; j < 8; ++j) ref::unpack_scale_min_k4(j, b->scales, &sc[j], &mn[j]);
                __m256i isum[C];
                int msum[C];
                #pragma GCC unroll 8
                for (int c = 0; c < C; ++c) {
                    isum[c] = _mm256_setzero_si256();
                    msum[c] = 0;
                    #pragma GCC unroll 8
                    for (int j = 0; j < 8; ++j) msum[c] += int(mn[j]) * (x[c]->bsums[2 * j] + x[c]->bsums[2 * j + 1]);
                }
                __m256i qh = _mm256_setzero_si256();
                if constexpr (Five) qh = load256(b->qh);
                #pragma GCC unroll 8
                for (int j = 0; j < 4; ++j) {  // 64 values: sub-blocks 2j (low nibbles) and 2j+1
                    const __m256i raw = load256(b->qs + 32 * j);
                    __m256i lo = _mm256_and_si256(raw, low4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
                    if constexpr (Five) {
                        lo = _mm256_or_si256(lo, _mm256_slli_epi16(byte_bits(qh, 2 * j, 1), 4));
                        hi = _mm256_or_si256(hi, _mm256_slli_epi16(byte_bits(qh, 2 * j + 1, 1), 4));
                    }
                    const __m256i s_lo = _mm256_set1_epi16(sc[2 * j]), s_hi = _mm256_set1_epi16(sc[2 * j + 1]);
                    #pragma GCC unroll 8
                    for (int c = 0; c < C; ++c) {
                        const __m256i p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load256(x[c]->qs + 64 * j)), s_lo);
                        const __m256i p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load256(x[c]->qs + 64 * j + 32)), s_hi);
                        isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(p_lo, p_hi));
                    }
                }
                const float d = fp16(reinterpret_cast<const uint8_t*>(&b->d)), dmin = fp16(reinterpret_cast<const uint8_t*>(&b->dmin));
                #pragma GCC unroll 8
                for (int c = 0; c < C; ++c) {
                    acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_set1_ps(d * x[c]->d), acc[r][c]);
                    mins[r][c] += (dmin * x[c]->d) * float(msum[c]);
                }
            }
        }
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
            #pragma GCC unroll 8
            for (int c = 0; c < C; ++c) out[c * ldo + r] = hsum(acc[r][c]) - mins[r][c];
    }
};

struct TileQ6K {
    template <int R, int C>
    static void run(int64_t n, const uint8_t* w, uint64_t ws, const uint8_t* a, uint64_t as, float* out, int64_t ldo) {
        __m256 acc[R][C];
        float offs[R][C];
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
            #pragma GCC unroll 8
            for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps(), offs[r][c] = 0.0f;
        const __m256i low4 = _mm256_set1_epi8(0x0F);
        for (int64_t i = 0; i < n / QK_K; ++i) {
            const block_q8_K* x[C];
            #pragma GCC unroll 8
            for (int c = 0; c < C; ++c) x[c] = reinterpret_cast<const block_q8_K*>(a + c * as) + i;
            #pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
                const block_q6_K* b = reinterpret_cast<const block_q6_K*>(w + r * ws) + i;
                __m256i isum[C];
                int off[C];  // 32 * sum of scale x activation sum: the values' offset of 32
                #pragma GCC unroll 8
                for (int c = 0; c < C; ++c) {
                    isum[c] = _mm256_setzero_si256();
                    off[c] = 0;
                    for (int s = 0; s < 16; ++s) off[c] += int(b->scales[s]) * x[c]->bsums[s];
                    off[c] *= 32;
                }
                #pragma GCC unroll 8
                for (int h = 0; h < 2; ++h) {
                    const __m256i ql0 = load256(b->ql + 64 * h), ql1 = load256(b->ql + 64 * h + 32), qh = load256(b->qh + 32 * h);
                    const __m256i q[4] = {
                        _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_slli_epi16(byte_bits(qh, 0, 3), 4)),
                        _mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_slli_epi16(byte_bits(qh, 2, 3), 4)),
                        _mm256_or_si256(byte_bits(ql0, 4, 0x0F), _mm256_slli_epi16(byte_bits(qh, 4, 3), 4)),
                        _mm256_or_si256(byte_bits(ql1, 4, 0x0F), _mm256_slli_epi16(byte_bits(qh, 6, 3), 4)),
                    };
                    #pragma GCC unroll 8
                    for (int k = 0; k < 4; ++k) {
                        const int s = 8 * h + 2 * k;  // 32 values = sub-blocks s and s+1 of 16
                        const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(b->scales[s + 1]), _mm_set1_epi16(b->scales[s]));
                        #pragma GCC unroll 8
                        for (int c = 0; c < C; ++c)
                            isum[c] = _mm256_add_epi32(
                                isum[c], _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], load256(x[c]->qs + 128 * h + 32 * k)), scale));
                    }
                }
                const float d = fp16(reinterpret_cast<const uint8_t*>(&b->d));
                #pragma GCC unroll 8
                for (int c = 0; c < C; ++c) {
                    const float dd = d * x[c]->d;
                    acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_set1_ps(dd), acc[r][c]);
                    offs[r][c] += dd * float(off[c]);
                }
            }
        }
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
            #pragma GCC unroll 8
            for (int c = 0; c < C; ++c) out[c * ldo + r] = hsum(acc[r][c]) - offs[r][c];
    }
};

// ------------------------------------------------------------- dispatch on the tile shape
template <class K>
void dispatch(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out, int64_t ldo) {
    tile_dispatch::run_rows_cols<K>(n, w, ws, nr, a, as, nt, out, ldo);
}

// ------------------------------------------------------------- activation quantizers
// Per block of 32 values: d = max|x| / 127, q = round(x * (1/d)); returns the sum of q.
inline int quantize32(const float* x, float* d_out, int8_t* q) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    #pragma GCC unroll 8
    for (int k = 0; k < 4; ++k) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
    }
    const float d = hmax(amax) / 127.0f;
    const float id = d > 0.0f ? 1.0f / d : 0.0f;
    const __m256 vid = _mm256_set1_ps(id);
    __m256i i32[4];
    #pragma GCC unroll 8
    for (int k = 0; k < 4; ++k)
        i32[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    // pack 4 x 8 int32 to 32 int8 in order (packs interleave the 128-bit lanes; permute them back)
    const __m256i i16a = _mm256_packs_epi32(i32[0], i32[1]), i16b = _mm256_packs_epi32(i32[2], i32[3]);
    const __m256i i8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(i16a, i16b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), i8);
    *d_out = d;
    return hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(i32[0], i32[1]), _mm256_add_epi32(i32[2], i32[3])));
}

}  // namespace

void quantize_row_a8(const float* x, void* y, int64_t n) {
    block_a8* b = static_cast<block_a8*>(y);
    for (int64_t i = 0; i < n / 32; ++i) {
        float d;
        const int sum = quantize32(x + 32 * i, &d, b[i].qs);
        b[i].d = d;
        b[i].s = d * float(sum);
    }
}

// As quantize_row_a8 but with one scale per 256 values: the block's max first, then the values.
void quantize_row_q8k_act(const float* x, void* y, int64_t n) {
    block_q8_K* b = static_cast<block_q8_K*>(y);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        __m256 amax = _mm256_setzero_ps();
        for (int k = 0; k < QK_K / 8; ++k) amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)));
        const float d = hmax(amax) / 127.0f;
        const __m256 vid = _mm256_set1_ps(d > 0.0f ? 1.0f / d : 0.0f);
        for (int g = 0; g < QK_K / 16; ++g) {
            const __m256i a = _mm256_cvtps_epi32(
                _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 16 * g), vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            const __m256i c = _mm256_cvtps_epi32(
                _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 16 * g + 8), vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            // 16 int32 -> 16 int8 in order: packs interleaves 128-bit lanes, the permute undoes it
            const __m256i i16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, c), 0xD8);
            const __m128i i8 = _mm_packs_epi16(_mm256_castsi256_si128(i16), _mm256_extracti128_si256(i16, 1));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(b[i].qs + 16 * g), i8);
            const int sum = hsum_epi32(_mm256_add_epi32(a, c));
            b[i].bsums[g] = int16_t(sum);
        }
        b[i].d = d;
    }
}

void dot_tile_q4_0(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<Tile32<Q4_0>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q4_1(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<Tile32<Q4_1>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q5_0(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<Tile32<Q5_0>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q5_1(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<Tile32<Q5_1>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q8_0(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<Tile32<Q8_0>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q4_K(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<TileQ45K<false>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q5_K(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<TileQ45K<true>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q6_K(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<TileQ6K>(n, w, ws, nr, a, as, nt, out, ldo);
}

}  // namespace ember::avx2
