// qdot_neon_tiles.h — the AArch64 integer dot-product tiles (see qdot.h), written once over an
// int8 dot-product policy and instantiated twice: qdot_neon.cpp with widening multiplies (plain
// ARMv8-A) and qdot_neon_dotprod.cpp with SDOT (compiled with the dot-product extension, used only
// when the CPU reports it). Include only from those two files.
//
// Everything here is in an unnamed namespace on purpose: the two files compile these templates
// with different target flags, and with external linkage the linker would keep one copy of each
// instantiation for both, possibly the SDOT one on a CPU without it.
//
// The results are the scalar reference's bits, not merely close to them: the integer sums of a
// block (or super-block) are exact whatever the lane arrangement, and the float steps are the
// reference's own operations in its order, done lane-wise. A vector's four lanes hold four
// weight rows of one activation row: per block, the four rows' int32 partial sums are folded by
// two pairwise adds into one vector of per-row block sums, converted, multiplied by the per-row
// scale (dw * da, rounded as the reference rounds it) and added to that row's accumulator;
// minimums and offsets go into a second accumulator, added (or subtracted) at the end as the
// reference does. So each output is the same operations whatever nr and nt are (batch
// invariance), and equals ref::dot_tile_* exactly. Rows past nr are lanes fed with zeros.
//
// A Dot policy provides:
//   int32x4_t dot32(int8x16_t w0, int8x16_t w1, int8x16_t a0, int8x16_t a1)  // 32 products
//   int32x4_t dot16(int8x16_t w, int8x16_t a)                                 // 16 products
// each a vector whose lanes sum to the exact dot product (the lane split is the policy's own).
// Operands: weights in [-128, 127] (nibbles and 5-bit values are non-negative), activations in
// [-127, 127] as the activation quantizers produce them.
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstring>
#include <type_traits>
#include <utility>

#include "quants/blocks.h"
#include "quants/qdot.h"
#include "quants/tile_dispatch.h"

namespace ember::neon {
namespace {

inline float load_f32(const uint8_t* p) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
}

inline uint16_t load_u16(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return h;
}

// Four fp16 values, gathered in a general register (row r in bits 16r..16r+15; unused rows 0;
// no round trip through memory, which would stall store-to-load forwarding), to float lanes.
// FCVTL is exact, as fp16_to_fp32.
inline float32x4_t fp16x4(uint64_t h) { return vcvt_f32_f16(vreinterpret_f16_u16(vcreate_u16(h))); }
inline uint64_t fp16_lane(const uint8_t* p, int r) { return uint64_t(load_u16(p)) << (16 * r); }

// The per-row block sums of four rows: lane r = sum of s[r]'s lanes (exact integer adds).
inline int32x4_t fold4(const int32x4_t s[4]) { return vpaddq_s32(vpaddq_s32(s[0], s[1]), vpaddq_s32(s[2], s[3])); }

// out[c * ldo + r] = lane r of v for r < R.
template <int R>
inline void store_rows(float* out, float32x4_t v) {
    if constexpr (R == 4) {
        vst1q_f32(out, v);
    } else {
        float t[4];
        vst1q_f32(t, v);
        for (int r = 0; r < R; ++r) out[r] = t[r];
    }
}

// 32 nibbles of 16 bytes: q0 = values 0-15 (low nibbles), q1 = values 16-31 (high nibbles).
inline void nibbles(const uint8_t* qs, int8x16_t* q0, int8x16_t* q1) {
    const uint8x16_t raw = vld1q_u8(qs);
    *q0 = vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0F)));
    *q1 = vreinterpretq_s8_u8(vshrq_n_u8(raw, 4));
}

// 0x10 in byte j of (f0, f1) where bit j of the 32-bit little-endian word at qh is set.
inline void fifth_bits(const uint8_t* qh, uint8x16_t* f0, uint8x16_t* f1) {
    uint32_t bits;
    std::memcpy(&bits, qh, 4);
    const uint8x8_t b = vcreate_u8(bits);
    const uint8x16_t lanes = vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201ull));  // byte k: 1 << (k % 8)
    const uint8x16_t bit4 = vdupq_n_u8(0x10);
    *f0 = vandq_u8(vtstq_u8(vcombine_u8(vdup_lane_u8(b, 0), vdup_lane_u8(b, 1)), lanes), bit4);
    *f1 = vandq_u8(vtstq_u8(vcombine_u8(vdup_lane_u8(b, 2), vdup_lane_u8(b, 3)), lanes), bit4);
}

// ------------------------------------------------------------- 32-element weight blocks
// load(block, &q0, &q1): the values 0-15 and 16-31; the fp16 scale d is the block's first field
// and the minimum (kMin == 1) is at kMinAt; kMin 0: none (Q8_0), -8 / -16: that multiple of d.
struct Q4_0 {
    static constexpr size_t kBytes = sizeof(block_q4_0), kMinAt = 0;
    static constexpr int kMin = -8;
    static void load(const uint8_t* b, int8x16_t* q0, int8x16_t* q1) { nibbles(b + offsetof(block_q4_0, qs), q0, q1); }
};
struct Q4_1 {
    static constexpr size_t kBytes = sizeof(block_q4_1), kMinAt = offsetof(block_q4_1, m);
    static constexpr int kMin = 1;
    static void load(const uint8_t* b, int8x16_t* q0, int8x16_t* q1) { nibbles(b + offsetof(block_q4_1, qs), q0, q1); }
};
template <class B>
inline void load_q5(const uint8_t* b, int8x16_t* q0, int8x16_t* q1) {
    int8x16_t lo, hi;
    uint8x16_t f0, f1;
    nibbles(b + offsetof(B, qs), &lo, &hi);
    fifth_bits(b + offsetof(B, qh), &f0, &f1);
    *q0 = vreinterpretq_s8_u8(vorrq_u8(vreinterpretq_u8_s8(lo), f0));
    *q1 = vreinterpretq_s8_u8(vorrq_u8(vreinterpretq_u8_s8(hi), f1));
}
struct Q5_0 {
    static constexpr size_t kBytes = sizeof(block_q5_0), kMinAt = 0;
    static constexpr int kMin = -16;
    static void load(const uint8_t* b, int8x16_t* q0, int8x16_t* q1) { load_q5<block_q5_0>(b, q0, q1); }
};
struct Q5_1 {
    static constexpr size_t kBytes = sizeof(block_q5_1), kMinAt = offsetof(block_q5_1, m);
    static constexpr int kMin = 1;
    static void load(const uint8_t* b, int8x16_t* q0, int8x16_t* q1) { load_q5<block_q5_1>(b, q0, q1); }
};
struct Q8_0 {
    static constexpr size_t kBytes = sizeof(block_q8_0), kMinAt = 0;
    static constexpr int kMin = 0;
    static void load(const uint8_t* b, int8x16_t* q0, int8x16_t* q1) {
        *q0 = vld1q_s8(reinterpret_cast<const int8_t*>(b + offsetof(block_q8_0, qs)));
        *q1 = vld1q_s8(reinterpret_cast<const int8_t*>(b + offsetof(block_q8_0, qs) + 16));
    }
};

// The reference per block: acc += (dw * da) * float(isum); mins += mw * sa; result acc + mins.
template <class W, class Dot>
struct Tile32 {
    template <int R, int C>
    static void run(int64_t n, const uint8_t* w, uint64_t ws, const uint8_t* a, uint64_t as, float* out, int64_t ldo) {
        float32x4_t acc[C], mins[C];
        #pragma GCC unroll 4
        for (int c = 0; c < C; ++c) acc[c] = mins[c] = vdupq_n_f32(0.0f);
        for (int64_t i = 0; i < n / 32; ++i) {
            int8x16_t q0[R], q1[R];
            uint64_t hd = 0, hm = 0;
            #pragma GCC unroll 4
            for (int r = 0; r < R; ++r) {
                const uint8_t* b = w + r * ws + uint64_t(i) * W::kBytes;
                W::load(b, &q0[r], &q1[r]);
                hd |= fp16_lane(b, r);
                if constexpr (W::kMin == 1) hm |= fp16_lane(b + W::kMinAt, r);
            }
            const float32x4_t dw = fp16x4(hd);
            float32x4_t mw = vdupq_n_f32(0.0f);
            if constexpr (W::kMin == 1) mw = fp16x4(hm);
            else if constexpr (W::kMin != 0) mw = vmulq_n_f32(dw, float(W::kMin));  // exact: a power of two
            #pragma GCC unroll 4
            for (int c = 0; c < C; ++c) {
                const uint8_t* p = a + c * as + uint64_t(i) * sizeof(block_a8);
                const float da = load_f32(p + offsetof(block_a8, d)), sa = load_f32(p + offsetof(block_a8, s));
                const int8x16_t a0 = vld1q_s8(reinterpret_cast<const int8_t*>(p + offsetof(block_a8, qs)));
                const int8x16_t a1 = vld1q_s8(reinterpret_cast<const int8_t*>(p + offsetof(block_a8, qs) + 16));
                int32x4_t s[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
                #pragma GCC unroll 4
                for (int r = 0; r < R; ++r) s[r] = Dot::dot32(q0[r], q1[r], a0, a1);
                acc[c] = vaddq_f32(acc[c], vmulq_f32(vmulq_n_f32(dw, da), vcvtq_f32_s32(fold4(s))));
                if constexpr (W::kMin != 0) mins[c] = vaddq_f32(mins[c], vmulq_n_f32(mw, sa));
            }
        }
        // Q8_0: the reference adds a sum of zeros, +0, which leaves acc unchanged (acc is never -0).
        #pragma GCC unroll 4
        for (int c = 0; c < C; ++c) store_rows<R>(out + c * ldo, W::kMin != 0 ? vaddq_f32(acc[c], mins[c]) : acc[c]);
    }
};

// ------------------------------------------------------------- K-quants against Q8K
// A super-block's integer sums are built one weight row at a time, so that only one row's
// accumulators (one vector per activation row) are live in the inner loop, and folded across
// rows as they come (fold_rows). Sub-block scales sit in vector lanes and enter by
// multiply-accumulate by element (MLA by lane); lane numbers must be constants, also in an
// unoptimized build, hence the loops over sub-blocks are unroll<N>() with constant indices.

// The helpers and lambdas below must melt into the kernels (the compiler's inlining heuristics
// otherwise split some instantiations into calls per row, with accumulators through memory).
#define EMBER_NEON_INLINE __attribute__((always_inline))

// f(std::integral_constant<int, 0>{}), ..., f(std::integral_constant<int, N - 1>{}).
template <class F, int... I>
inline EMBER_NEON_INLINE void unroll_seq(F&& f, std::integer_sequence<int, I...>) {
    (f(std::integral_constant<int, I>{}), ...);
}
template <int N, class F>
inline EMBER_NEON_INLINE void unroll(F&& f) {
    unroll_seq(f, std::make_integer_sequence<int, N>{});
}

// An optimization barrier on one vector (no instruction). GCC writes the multiply-accumulate
// intrinsics as plain vector arithmetic, and integer sums are associative: without this it
// regroups a super-block's whole chain of products into one tree, every product live at once.
inline EMBER_NEON_INLINE void keep(int32x4_t& v) { asm("" : "+w"(v)); }

// out[c] lane r = the lane sum of row r's vector for activation row c, for four rows (zeros past
// R): row_sums(r, vec[C]) fills row r's vectors (from zero); they are folded two rows at a time
// with the pairwise adds of fold4, so at most two rows' vectors are live.
template <int R, int C, class RowSums>
inline EMBER_NEON_INLINE void fold_rows(RowSums&& row_sums, int32x4_t out[C]) {
    int32x4_t prev[C], half[C];
    unroll<4>([&](auto rc) EMBER_NEON_INLINE {
        constexpr int r = decltype(rc)::value;
        int32x4_t cur[C];
        for (int c = 0; c < C; ++c) cur[c] = vdupq_n_s32(0);
        if constexpr (r < R) row_sums(r, cur);
        // A compiler barrier: rows read the same activation bytes, and loads merged across rows
        // would keep a whole activation super-block per token live in registers (spilled).
        asm volatile("" ::: "memory");
        for (int c = 0; c < C; ++c) {
            if constexpr (r % 2 == 0) prev[c] = cur[c];
            else if constexpr (r == 1) half[c] = vpaddq_s32(prev[c], cur[c]);
            else out[c] = vpaddq_s32(half[c], vpaddq_s32(prev[c], cur[c]));
        }
    });
}

// Q4_K / Q5_K: the eight 6-bit scales and mins of the 12 packed bytes, one per byte of *sc and
// *mn (ref::unpack_scale_min_k4 on all eight sub-blocks at once, in general registers):
// sub-blocks 0-3 take the low 6 bits of bytes 0-3 (scales) and 4-7 (mins); sub-blocks 4-7 the
// nibbles of bytes 8-11 with the top 2 bits of bytes 0-3 (scales) and 4-7 (mins) above them.
inline void k4_scales(const uint8_t* q, uint64_t* sc, uint64_t* mn) {
    uint32_t a, b, c;
    std::memcpy(&a, q, 4);
    std::memcpy(&b, q + 4, 4);
    std::memcpy(&c, q + 8, 4);
    const uint32_t low6 = 0x3F3F3F3Fu, low4 = 0x0F0F0F0Fu, bits45 = 0x30303030u;
    const uint32_t sc_hi = (c & low4) | ((a >> 2) & bits45), mn_hi = ((c >> 4) & low4) | ((b >> 2) & bits45);
    *sc = (a & low6) | uint64_t(sc_hi) << 32;
    *mn = (b & low6) | uint64_t(mn_hi) << 32;
}

// Per super-block: isum = sum_sb sc * (q . a) and msum = sum_sb m * (bsums pair), both exact;
// acc += (d * da) * float(isum); mins += (dmin * da) * float(msum); result acc - mins.
template <bool Five, class Dot>
struct TileQ45K {
    using B = std::conditional_t<Five, block_q5_K, block_q4_K>;
    template <int R, int C>
    static void run(int64_t n, const uint8_t* w, uint64_t ws, const uint8_t* a, uint64_t as, float* out, int64_t ldo) {
        float32x4_t acc[C], mins[C];
        for (int c = 0; c < C; ++c) acc[c] = mins[c] = vdupq_n_f32(0.0f);
        const uint8x16_t low4 = vdupq_n_u8(0x0F), bit4 = vdupq_n_u8(0x10);
        for (int64_t i = 0; i < n / QK_K; ++i) {
            const uint8_t* x[C];
            for (int c = 0; c < C; ++c) x[c] = a + c * as + uint64_t(i) * sizeof(block_q8_K);
            const uint8_t* b[R];
            uint64_t hd = 0, hm = 0, mns[R];
            for (int r = 0; r < R; ++r) {
                b[r] = w + r * ws + uint64_t(i) * sizeof(B);
                hd |= fp16_lane(b[r] + offsetof(B, d), r);
                hm |= fp16_lane(b[r] + offsetof(B, dmin), r);
            }
            int32x4_t is[C], ms[C];
            fold_rows<R, C>([&](int r, int32x4_t cur[C]) EMBER_NEON_INLINE {
                uint64_t scb;
                k4_scales(b[r] + offsetof(B, scales), &scb, &mns[r]);
                const uint16x8_t sc16 = vmovl_u8(vcreate_u8(scb));
                const int32x4_t sc[2] = {vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(sc16))),
                                         vreinterpretq_s32_u32(vmovl_high_u16(sc16))};
                uint8x16_t qh0 = vdupq_n_u8(0), qh1 = qh0;
                if constexpr (Five) qh0 = vld1q_u8(b[r] + offsetof(B, qh)), qh1 = vld1q_u8(b[r] + offsetof(B, qh) + 16);
                unroll<4>([&](auto jc) EMBER_NEON_INLINE {  // 64 values: sub-blocks 2j (low nibbles) and 2j+1 (high)
                    constexpr int j = decltype(jc)::value;
                    const uint8_t* qs = b[r] + offsetof(B, qs) + 32 * j;
                    const uint8x16_t raw0 = vld1q_u8(qs), raw1 = vld1q_u8(qs + 16);
                    uint8x16_t lo0 = vandq_u8(raw0, low4), lo1 = vandq_u8(raw1, low4);
                    uint8x16_t hi0 = vshrq_n_u8(raw0, 4), hi1 = vshrq_n_u8(raw1, 4);
                    if constexpr (Five) {
                        // bit sb of qh[l] is the fifth bit of value l of sub-block sb: moved to 0x10
                        const int8x16_t sh_lo = vdupq_n_s8(int8_t(4 - 2 * j)), sh_hi = vdupq_n_s8(int8_t(3 - 2 * j));
                        lo0 = vorrq_u8(lo0, vandq_u8(vshlq_u8(qh0, sh_lo), bit4));
                        lo1 = vorrq_u8(lo1, vandq_u8(vshlq_u8(qh1, sh_lo), bit4));
                        hi0 = vorrq_u8(hi0, vandq_u8(vshlq_u8(qh0, sh_hi), bit4));
                        hi1 = vorrq_u8(hi1, vandq_u8(vshlq_u8(qh1, sh_hi), bit4));
                    }
                    for (int c = 0; c < C; ++c) {
                        const int8_t* xq = reinterpret_cast<const int8_t*>(x[c] + offsetof(block_q8_K, qs)) + 64 * j;
                        const int32x4_t p_lo = Dot::dot32(vreinterpretq_s8_u8(lo0), vreinterpretq_s8_u8(lo1), vld1q_s8(xq),
                                                          vld1q_s8(xq + 16));
                        const int32x4_t p_hi = Dot::dot32(vreinterpretq_s8_u8(hi0), vreinterpretq_s8_u8(hi1),
                                                          vld1q_s8(xq + 32), vld1q_s8(xq + 48));
                        cur[c] = vmlaq_laneq_s32(cur[c], p_lo, sc[j / 2], (2 * j) % 4);
                        cur[c] = vmlaq_laneq_s32(cur[c], p_hi, sc[j / 2], (2 * j + 1) % 4);
                        keep(cur[c]);
                    }
                });
            }, is);
            // the activations' sums per sub-block of 32 (pairs of 16-sums: at most 4064)
            int16x8_t pair[C];
            for (int c = 0; c < C; ++c) {
                const uint8_t* bs = x[c] + offsetof(block_q8_K, bsums);
                pair[c] = vpaddq_s16(vreinterpretq_s16_u8(vld1q_u8(bs)), vreinterpretq_s16_u8(vld1q_u8(bs + 16)));
            }
            fold_rows<R, C>([&](int r, int32x4_t cur[C]) EMBER_NEON_INLINE {
                const int16x8_t m = vreinterpretq_s16_u16(vmovl_u8(vcreate_u8(mns[r])));
                for (int c = 0; c < C; ++c) cur[c] = vmlal_high_s16(vmull_s16(vget_low_s16(m), vget_low_s16(pair[c])), m, pair[c]);
            }, ms);
            const float32x4_t d = fp16x4(hd), dmin = fp16x4(hm);
            for (int c = 0; c < C; ++c) {
                const float da = load_f32(x[c] + offsetof(block_q8_K, d));
                acc[c] = vaddq_f32(acc[c], vmulq_f32(vmulq_n_f32(d, da), vcvtq_f32_s32(is[c])));
                mins[c] = vaddq_f32(mins[c], vmulq_f32(vmulq_n_f32(dmin, da), vcvtq_f32_s32(ms[c])));
            }
        }
        for (int c = 0; c < C; ++c) store_rows<R>(out + c * ldo, vsubq_f32(acc[c], mins[c]));
    }
};

// Q6_K: per super-block isum = sum_sub sc * ((q - 32) . a) over sixteen sub-blocks of 16, exact;
// acc += (d * da) * float(isum).
template <class Dot>
struct TileQ6K {
    template <int R, int C>
    static void run(int64_t n, const uint8_t* w, uint64_t ws, const uint8_t* a, uint64_t as, float* out, int64_t ldo) {
        float32x4_t acc[C];
        for (int c = 0; c < C; ++c) acc[c] = vdupq_n_f32(0.0f);
        const uint8x16_t low4 = vdupq_n_u8(0x0F), bits45 = vdupq_n_u8(0x30);
        const int8x16_t off = vdupq_n_s8(32);
        for (int64_t i = 0; i < n / QK_K; ++i) {
            const uint8_t* x[C];
            for (int c = 0; c < C; ++c) x[c] = a + c * as + uint64_t(i) * sizeof(block_q8_K);
            const uint8_t* b[R];
            uint64_t hd = 0;
            for (int r = 0; r < R; ++r) {
                b[r] = w + r * ws + uint64_t(i) * sizeof(block_q6_K);
                hd |= fp16_lane(b[r] + offsetof(block_q6_K, d), r);
            }
            int32x4_t is[C];
            fold_rows<R, C>([&](int r, int32x4_t cur[C]) EMBER_NEON_INLINE {
                const int8x16_t s8 = vld1q_s8(reinterpret_cast<const int8_t*>(b[r] + offsetof(block_q6_K, scales)));
                const int16x8_t s_lo = vmovl_s8(vget_low_s8(s8)), s_hi = vmovl_high_s8(s8);
                const int32x4_t sc[4] = {vmovl_s16(vget_low_s16(s_lo)), vmovl_high_s16(s_lo), vmovl_s16(vget_low_s16(s_hi)),
                                         vmovl_high_s16(s_hi)};
                // Value e = 128h + 32k + l: low 4 bits in ql[64h + 32(k % 2) + l] >> 4(k / 2), high 2
                // bits in qh[32h + l] >> 2k; values l = 0-15 are sub-block 8h + 2k, l = 16-31 the next.
                unroll<2>([&](auto hc) EMBER_NEON_INLINE {
                    constexpr int h = decltype(hc)::value;
                    const uint8_t* qh = b[r] + offsetof(block_q6_K, qh) + 32 * h;
                    const uint8x16_t qh0 = vld1q_u8(qh), qh1 = vld1q_u8(qh + 16);
                    unroll<4>([&](auto kc) EMBER_NEON_INLINE {
                        constexpr int k = decltype(kc)::value, s = 8 * h + 2 * k;
                        const uint8_t* ql = b[r] + offsetof(block_q6_K, ql) + 64 * h + 32 * (k % 2);
                        const int8x16_t sh_l = vdupq_n_s8(int8_t(-4 * (k / 2))), sh_h = vdupq_n_s8(int8_t(4 - 2 * k));
                        // (low | high << 4) - 32, with the high bits shifted straight to bits 4-5
                        const uint8x16_t v0 = vorrq_u8(vandq_u8(vshlq_u8(vld1q_u8(ql), sh_l), low4), vandq_u8(vshlq_u8(qh0, sh_h), bits45));
                        const uint8x16_t v1 =
                            vorrq_u8(vandq_u8(vshlq_u8(vld1q_u8(ql + 16), sh_l), low4), vandq_u8(vshlq_u8(qh1, sh_h), bits45));
                        const int8x16_t q0 = vsubq_s8(vreinterpretq_s8_u8(v0), off), q1 = vsubq_s8(vreinterpretq_s8_u8(v1), off);
                        for (int c = 0; c < C; ++c) {
                            const int8_t* xq = reinterpret_cast<const int8_t*>(x[c] + offsetof(block_q8_K, qs)) + 128 * h + 32 * k;
                            cur[c] = vmlaq_laneq_s32(cur[c], Dot::dot16(q0, vld1q_s8(xq)), sc[s / 4], s % 4);
                            cur[c] = vmlaq_laneq_s32(cur[c], Dot::dot16(q1, vld1q_s8(xq + 16)), sc[s / 4], s % 4 + 1);
                            keep(cur[c]);
                        }
                    });
                });
            }, is);
            const float32x4_t d = fp16x4(hd);
            for (int c = 0; c < C; ++c) {
                const float da = load_f32(x[c] + offsetof(block_q8_K, d));
                acc[c] = vaddq_f32(acc[c], vmulq_f32(vmulq_n_f32(d, da), vcvtq_f32_s32(is[c])));
            }
        }
        for (int c = 0; c < C; ++c) store_rows<R>(out + c * ldo, acc[c]);
    }
};

// ------------------------------------------------------------- dispatch on the tile shape
template <class K>
void dispatch(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out, int64_t ldo) {
    tile_dispatch::run_rows_cols<K>(n, w, ws, nr, a, as, nt, out, ldo);
}

}  // namespace
}  // namespace ember::neon

#undef EMBER_NEON_INLINE
