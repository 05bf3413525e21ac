// neon_math.h — vector exponential for the AArch64 Advanced SIMD kernels (include only from
// NEON files). The same Cephes-style reduction and degree-6 polynomial as ops/avx2_math.h, with
// the same fused multiply-adds, so the two SIMD paths agree with each other as well as with the
// scalar reference: exp(x) = 2^n * p(r), x = n ln2 + r, |r| <= ln2/2, relative error about 1e-7;
// inputs are clamped to the range where 2^n is a normal float.
#pragma once

#include <arm_neon.h>

namespace ember::neon {

inline float32x4_t exp_ps(float32x4_t x) {
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3f)), vdupq_n_f32(88.3f));
    // n = nearest integer to x / ln2 (FRINTN: ties to even, as _MM_FROUND_TO_NEAREST_INT)
    const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    // r = x - n ln2, with ln2 split in two so that n * hi is exact (Cody-Waite)
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), vmulq_f32(p, r), r);  // 1 + r + r^2 p(r)
    // 2^n built in the exponent field (n is integral and within [-126, 127] after the clamp)
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

}  // namespace ember::neon
