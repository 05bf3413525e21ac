// qdot_neon.cpp — AArch64 activation quantizers and the baseline integer dot-product tiles (see
// qdot.h), plain ARMv8-A Advanced SIMD: every AArch64 CPU runs them. The tiles themselves are in
// qdot_neon_tiles.h; this file gives them int8 dot products from widening multiplies (SMULL /
// SMLAL2 to 16 bits, SADALP to 32). qdot_neon_dotprod.cpp has the SDOT version.
//
// The quantizers give the scalar reference's bytes: the block maximum is exact in any order,
// d and 1/d are the same scalar operations, x * (1/d) is one multiply per value, and FCVTNS
// rounds to nearest with ties to even as nearbyint does in the default rounding mode.
#include <arm_neon.h>

#include "quants/qdot_neon_tiles.h"

namespace ember::neon {

namespace {

// Two products of int8 fit int16: |w| <= 128 and |a| <= 127 give at most 32512.
struct Widening {
    static int32x4_t dot16(int8x16_t w, int8x16_t a) {
        return vpaddlq_s16(vmlal_high_s8(vmull_s8(vget_low_s8(w), vget_low_s8(a)), w, a));
    }
    static int32x4_t dot32(int8x16_t w0, int8x16_t w1, int8x16_t a0, int8x16_t a1) {
        const int16x8_t p0 = vmlal_high_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(a0)), w0, a0);
        const int16x8_t p1 = vmlal_high_s8(vmull_s8(vget_low_s8(w1), vget_low_s8(a1)), w1, a1);
        return vpadalq_s16(vpaddlq_s16(p0), p1);
    }
};

inline float absmax(const float32x4_t* v, int k) {
    float32x4_t m = vdupq_n_f32(0.0f);
    for (int j = 0; j < k; ++j) m = vmaxq_f32(m, vabsq_f32(v[j]));
    return vmaxvq_f32(m);
}

// 16 values times id to int8 (round to nearest even; the values are within [-127, 127]).
// Returns the four int32 vectors' sum vector for the block sums.
inline int32x4_t quantize16(const float* x, float id, int8_t* q) {
    int32x4_t i[4];
    for (int k = 0; k < 4; ++k) i[k] = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 4 * k), id));
    const int16x8_t lo = vcombine_s16(vqmovn_s32(i[0]), vqmovn_s32(i[1]));
    const int16x8_t hi = vcombine_s16(vqmovn_s32(i[2]), vqmovn_s32(i[3]));
    vst1q_s8(q, vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi)));
    return vaddq_s32(vaddq_s32(i[0], i[1]), vaddq_s32(i[2], i[3]));
}

inline float inverse(float d) { return d > 0.0f ? 1.0f / d : 0.0f; }

}  // namespace

void quantize_row_a8(const float* x, void* y, int64_t n) {
    block_a8* b = static_cast<block_a8*>(y);
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        float32x4_t v[8];
        for (int k = 0; k < 8; ++k) v[k] = vld1q_f32(x + 4 * k);
        const float d = absmax(v, 8) / 127.0f, id = inverse(d);
        const int32x4_t s = vaddq_s32(quantize16(x, id, b[i].qs), quantize16(x + 16, id, b[i].qs + 16));
        b[i].d = d;
        b[i].s = d * float(vaddvq_s32(s));
    }
}

// As quantize_row_a8 with one scale per 256 values (the super-block's maximum first) and int16
// sums per 16.
void quantize_row_q8k_act(const float* x, void* y, int64_t n) {
    block_q8_K* b = static_cast<block_q8_K*>(y);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int k = 0; k < QK_K / 4; ++k) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + 4 * k)));
        const float d = vmaxvq_f32(m) / 127.0f, id = inverse(d);
        for (int g = 0; g < QK_K / 16; ++g) b[i].bsums[g] = int16_t(vaddvq_s32(quantize16(x + 16 * g, id, b[i].qs + 16 * g)));
        b[i].d = d;
    }
}

void dot_tile_q4_0(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<Tile32<Q4_0, Widening>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q4_1(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<Tile32<Q4_1, Widening>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q5_0(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<Tile32<Q5_0, Widening>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q5_1(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<Tile32<Q5_1, Widening>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q8_0(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<Tile32<Q8_0, Widening>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q4_K(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<TileQ45K<false, Widening>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q5_K(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<TileQ45K<true, Widening>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q6_K(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    dispatch<TileQ6K<Widening>>(n, w, ws, nr, a, as, nt, out, ldo);
}

}  // namespace ember::neon
