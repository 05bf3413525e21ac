// neon.cpp — AArch64 Advanced SIMD row dequantizers and the fp16 quantizer; bit-identical to ref.cpp
// (no fused multiply-add; FCVTL / FCVTN convert exactly / round to nearest even, with subnormals
// and overflow to infinity, as fp16.h does; only a NaN may come out with another NaN's payload).
#include <arm_neon.h>

#include "quants/blocks.h"
#include "quants/fp16.h"
#include "quants/ref.h"
#include "quants/simd.h"

namespace ember::neon {

void dequantize_row_f16(const void* x, float* y, int64_t n) {
    const uint16_t* p = static_cast<const uint16_t*>(x);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p + i))));
    if (i < n) ref::dequantize_row_f16(p + i, y + i, n - i);
}

void dequantize_row_bf16(const void* x, float* y, int64_t n) {
    const uint16_t* p = static_cast<const uint16_t*>(x);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p + i), 16)));
    if (i < n) ref::dequantize_row_bf16(p + i, y + i, n - i);
}

void quantize_row_f16(const float* x, void* y, int64_t n) {
    uint16_t* p = static_cast<uint16_t*>(y);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(p + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    if (i < n) ref::quantize_row_f16(x + i, p + i, n - i);
}

static inline void store_scaled(int8x16_t v, float32x4_t d, float* y) {
    const int16x8_t lo = vmovl_s8(vget_low_s8(v)), hi = vmovl_s8(vget_high_s8(v));
    vst1q_f32(y + 0, vmulq_f32(d, vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo)))));
    vst1q_f32(y + 4, vmulq_f32(d, vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo)))));
    vst1q_f32(y + 8, vmulq_f32(d, vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi)))));
    vst1q_f32(y + 12, vmulq_f32(d, vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi)))));
}

void dequantize_row_q4_0(const void* x, float* y, int64_t n) {
    const block_q4_0* b = static_cast<const block_q4_0*>(x);
    for (int64_t i = 0; i < n / QK4_0; ++i, y += QK4_0) {
        const float32x4_t d = vdupq_n_f32(fp16_to_fp32(b[i].d));
        const uint8x16_t packed = vld1q_u8(b[i].qs);
        const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(packed, vdupq_n_u8(0x0F))), vdupq_n_s8(8));
        const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(packed, 4)), vdupq_n_s8(8));
        store_scaled(lo, d, y);
        store_scaled(hi, d, y + 16);
    }
}

void dequantize_row_q8_0(const void* x, float* y, int64_t n) {
    const block_q8_0* b = static_cast<const block_q8_0*>(x);
    for (int64_t i = 0; i < n / QK8_0; ++i, y += QK8_0) {
        const float32x4_t d = vdupq_n_f32(fp16_to_fp32(b[i].d));
        store_scaled(vld1q_s8(b[i].qs), d, y);
        store_scaled(vld1q_s8(b[i].qs + 16), d, y + 16);
    }
}

}  // namespace ember::neon
