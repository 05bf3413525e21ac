// fp16.h — scalar IEEE half and bfloat16 conversions, the reference the SIMD paths must match.
//
// fp32 -> fp16 rounds to nearest even, with correct subnormals and overflow to infinity, as
// numpy's astype(float16) and ggml's reference do. fp32 -> bf16 follows ggml: NaN forced quiet,
// everything else rounded to nearest even.
#pragma once

#include <cstdint>
#include <cstring>

namespace ember {

inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

inline float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1f;
    const uint32_t mant = h & 0x3ff;
    if (exp == 0) {
        // zero or subnormal: mant * 2^-24 is exact in float32
        const float v = float(mant) * bits_f32(0x33800000u);  // 2^-24
        return bits_f32(f32_bits(v) | sign);
    }
    if (exp == 31) return bits_f32(sign | 0x7f800000u | (mant << 13));
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

inline uint16_t fp32_to_fp16(float f) {
    uint32_t x = f32_bits(f);
    const uint32_t sign = x & 0x80000000u;
    x ^= sign;
    uint32_t out;
    if (x >= 0x47800000u) {                  // >= 65536 (or inf/nan): nothing rounds back into range
        out = x > 0x7f800000u ? 0x7e00u : 0x7c00u;
    } else if (x < 0x38800000u) {            // below the smallest normal half (2^-14)
        // Adding 0.5 shifts the value so the float adder's own round-to-nearest-even
        // performs the half's subnormal rounding; the low bits are then the result.
        const float magic = bits_f32(126u << 23);  // 0.5
        out = f32_bits(bits_f32(x) + magic) - (126u << 23);
    } else {
        const uint32_t odd = (x >> 13) & 1;  // ties go to even
        x += 0xC8000000u + 0xfffu + odd;     // rebias 127 -> 15 and round (may carry into inf)
        out = x >> 13;
    }
    return uint16_t(out | (sign >> 16));
}

inline float bf16_to_fp32(uint16_t h) { return bits_f32(uint32_t(h) << 16); }

inline uint16_t fp32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 64);  // quiet NaN
    return uint16_t((uint64_t(x) + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

}  // namespace ember
