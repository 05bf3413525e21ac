// ref.cpp — scalar reference for the plain and 32-element block formats.
//
// Quantizers reproduce ggml's reference rounding (and so gguf-py's numpy port) bit for bit:
// every product and sum is rounded separately (this file is built with -ffp-contract=off),
// and the order of operations matches the reference: (x - min) * id + 0.5, then truncation.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quants/blocks.h"
#include "quants/fp16.h"
#include "quants/ref.h"

namespace ember::ref {

// ---------------------------------------------------------------- plain types
void dequantize_row_f32(const void* x, float* y, int64_t n) { std::memcpy(y, x, size_t(n) * 4); }

void dequantize_row_f16(const void* x, float* y, int64_t n) {
    const uint8_t* p = static_cast<const uint8_t*>(x);
    for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        y[i] = fp16_to_fp32(h);
    }
}

void dequantize_row_bf16(const void* x, float* y, int64_t n) {
    const uint8_t* p = static_cast<const uint8_t*>(x);
    for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        y[i] = bf16_to_fp32(h);
    }
}

template <class T>
static void widen_row(const void* x, float* y, int64_t n) {
    const uint8_t* p = static_cast<const uint8_t*>(x);
    for (int64_t i = 0; i < n; ++i) {
        T v;
        std::memcpy(&v, p + sizeof(T) * i, sizeof(T));  // tensors in a file need not be aligned
        y[i] = static_cast<float>(v);
    }
}
void dequantize_row_f64(const void* x, float* y, int64_t n) { widen_row<double>(x, y, n); }
void dequantize_row_i8(const void* x, float* y, int64_t n) { widen_row<int8_t>(x, y, n); }
void dequantize_row_i16(const void* x, float* y, int64_t n) { widen_row<int16_t>(x, y, n); }
void dequantize_row_i32(const void* x, float* y, int64_t n) { widen_row<int32_t>(x, y, n); }
void dequantize_row_i64(const void* x, float* y, int64_t n) { widen_row<int64_t>(x, y, n); }

void quantize_row_f32(const float* x, void* y, int64_t n) { std::memcpy(y, x, size_t(n) * 4); }

void quantize_row_f16(const float* x, void* y, int64_t n) {
    uint16_t* out = static_cast<uint16_t*>(y);
    for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_fp16(x[i]);
}

void quantize_row_bf16(const float* x, void* y, int64_t n) {
    uint16_t* out = static_cast<uint16_t*>(y);
    for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_bf16(x[i]);
}

// ---------------------------------------------------------------- 32-element blocks
// The signed value of largest magnitude (the first one on ties), as the reference picks it.
static float signed_absmax(const float* x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; ++j) {
        if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float* x, int n, float* lo, float* hi) {
    float mn = x[0], mx = x[0];
    for (int j = 1; j < n; ++j) {
        mn = std::min(mn, x[j]);
        mx = std::max(mx, x[j]);
    }
    *lo = mn;
    *hi = mx;
}

static inline float inverse_or_zero(float d) { return d != 0.0f ? 1.0f / d : 0.0f; }

static inline uint8_t trunc_clamp(float v, int hi) {
    int q = static_cast<int>(v);  // truncation toward zero, as the reference casts
    return static_cast<uint8_t>(std::clamp(q, 0, hi));
}

void quantize_row_q4_0(const float* x, void* y, int64_t n) {
    block_q4_0* b = static_cast<block_q4_0*>(y);
    for (int64_t i = 0; i < n / QK4_0; ++i, x += QK4_0) {
        const float d = signed_absmax(x, QK4_0) / -8.0f;
        const float id = inverse_or_zero(d);
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            const uint8_t lo = trunc_clamp(x[j] * id + 8.5f, 15);
            const uint8_t hi = trunc_clamp(x[j + QK4_0 / 2] * id + 8.5f, 15);
            b[i].qs[j] = uint8_t(lo | (hi << 4));
        }
    }
}

void quantize_row_q4_1(const float* x, void* y, int64_t n) {
    block_q4_1* b = static_cast<block_q4_1*>(y);
    for (int64_t i = 0; i < n / QK4_1; ++i, x += QK4_1) {
        float mn, mx;
        min_max(x, QK4_1, &mn, &mx);
        const float d = (mx - mn) / 15.0f;
        const float id = inverse_or_zero(d);
        b[i].d = fp32_to_fp16(d);
        b[i].m = fp32_to_fp16(mn);
        for (int j = 0; j < QK4_1 / 2; ++j) {
            const uint8_t lo = trunc_clamp((x[j] - mn) * id + 0.5f, 15);
            const uint8_t hi = trunc_clamp((x[j + QK4_1 / 2] - mn) * id + 0.5f, 15);
            b[i].qs[j] = uint8_t(lo | (hi << 4));
        }
    }
}

// Q5 packs the low nibbles like Q4 and the fifth bits of all 32 quants into one 32-bit word.
static void pack_q5(const uint8_t q[32], uint8_t qh[4], uint8_t qs[16]) {
    uint32_t high = 0;
    for (int j = 0; j < 32; ++j) high |= uint32_t((q[j] >> 4) & 1) << j;
    std::memcpy(qh, &high, 4);
    for (int j = 0; j < 16; ++j) qs[j] = uint8_t((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4));
}

void quantize_row_q5_0(const float* x, void* y, int64_t n) {
    block_q5_0* b = static_cast<block_q5_0*>(y);
    for (int64_t i = 0; i < n / QK5_0; ++i, x += QK5_0) {
        const float d = signed_absmax(x, QK5_0) / -16.0f;
        const float id = inverse_or_zero(d);
        b[i].d = fp32_to_fp16(d);
        uint8_t q[QK5_0];
        for (int j = 0; j < QK5_0; ++j) q[j] = trunc_clamp(x[j] * id + 16.5f, 31);
        pack_q5(q, b[i].qh, b[i].qs);
    }
}

void quantize_row_q5_1(const float* x, void* y, int64_t n) {
    block_q5_1* b = static_cast<block_q5_1*>(y);
    for (int64_t i = 0; i < n / QK5_1; ++i, x += QK5_1) {
        float mn, mx;
        min_max(x, QK5_1, &mn, &mx);
        const float d = (mx - mn) / 31.0f;
        const float id = inverse_or_zero(d);
        b[i].d = fp32_to_fp16(d);
        b[i].m = fp32_to_fp16(mn);
        uint8_t q[QK5_1];
        for (int j = 0; j < QK5_1; ++j) q[j] = trunc_clamp((x[j] - mn) * id + 0.5f, 31);
        pack_q5(q, b[i].qh, b[i].qs);
    }
}

static float absmax(const float* x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
    return amax;
}

void quantize_row_q8_0(const float* x, void* y, int64_t n) {
    block_q8_0* b = static_cast<block_q8_0*>(y);
    for (int64_t i = 0; i < n / QK8_0; ++i, x += QK8_0) {
        const float d = absmax(x, QK8_0) / 127.0f;
        const float id = inverse_or_zero(d);
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; ++j) b[i].qs[j] = int8_t(std::round(x[j] * id));  // half away from zero
    }
}

void quantize_row_q8_1(const float* x, void* y, int64_t n) {
    block_q8_1* b = static_cast<block_q8_1*>(y);
    for (int64_t i = 0; i < n / QK8_1; ++i, x += QK8_1) {
        const float d = absmax(x, QK8_1) / 127.0f;
        const float id = inverse_or_zero(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; ++j) {
            b[i].qs[j] = int8_t(std::round(x[j] * id));
            sum += b[i].qs[j];
        }
        b[i].d = fp32_to_fp16(d);
        b[i].s = fp32_to_fp16(float(sum) * d);
    }
}

void dequantize_row_q4_0(const void* x, float* y, int64_t n) {
    const block_q4_0* b = static_cast<const block_q4_0*>(x);
    for (int64_t i = 0; i < n / QK4_0; ++i, y += QK4_0) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            y[j] = d * float((b[i].qs[j] & 0x0F) - 8);
            y[j + QK4_0 / 2] = d * float((b[i].qs[j] >> 4) - 8);
        }
    }
}

void dequantize_row_q4_1(const void* x, float* y, int64_t n) {
    const block_q4_1* b = static_cast<const block_q4_1*>(x);
    for (int64_t i = 0; i < n / QK4_1; ++i, y += QK4_1) {
        const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
        for (int j = 0; j < QK4_1 / 2; ++j) {
            y[j] = d * float(b[i].qs[j] & 0x0F) + m;
            y[j + QK4_1 / 2] = d * float(b[i].qs[j] >> 4) + m;
        }
    }
}

static void unpack_q5(const uint8_t qh[4], const uint8_t qs[16], int q[32]) {
    uint32_t high;
    std::memcpy(&high, qh, 4);
    for (int j = 0; j < 16; ++j) {
        q[j] = (qs[j] & 0x0F) | int(((high >> j) & 1) << 4);
        q[j + 16] = (qs[j] >> 4) | int(((high >> (j + 16)) & 1) << 4);
    }
}

void dequantize_row_q5_0(const void* x, float* y, int64_t n) {
    const block_q5_0* b = static_cast<const block_q5_0*>(x);
    for (int64_t i = 0; i < n / QK5_0; ++i, y += QK5_0) {
        const float d = fp16_to_fp32(b[i].d);
        int q[QK5_0];
        unpack_q5(b[i].qh, b[i].qs, q);
        for (int j = 0; j < QK5_0; ++j) y[j] = d * float(q[j] - 16);
    }
}

void dequantize_row_q5_1(const void* x, float* y, int64_t n) {
    const block_q5_1* b = static_cast<const block_q5_1*>(x);
    for (int64_t i = 0; i < n / QK5_1; ++i, y += QK5_1) {
        const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
        int q[QK5_1];
        unpack_q5(b[i].qh, b[i].qs, q);
        for (int j = 0; j < QK5_1; ++j) y[j] = d * float(q[j]) + m;
    }
}

void dequantize_row_q8_0(const void* x, float* y, int64_t n) {
    const block_q8_0* b = static_cast<const block_q8_0*>(x);
    for (int64_t i = 0; i < n / QK8_0; ++i, y += QK8_0) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK8_0; ++j) y[j] = float(b[i].qs[j]) * d;
    }
}

void dequantize_row_q8_1(const void* x, float* y, int64_t n) {
    const block_q8_1* b = static_cast<const block_q8_1*>(x);
    for (int64_t i = 0; i < n / QK8_1; ++i, y += QK8_1) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK8_1; ++j) y[j] = float(b[i].qs[j]) * d;
    }
}

}  // namespace ember::ref
