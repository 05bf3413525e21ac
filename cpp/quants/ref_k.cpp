// ref_k.cpp — scalar dequantization of the K-quants (super-blocks of 256) and the Q8_K quantizer.
//
// Each value is computed in the reference's order, e.g. (d * scale) * q - (dmin * min), so the
// result is bit-identical to ggml's reference and gguf-py's numpy port.
#include <algorithm>
#include <cmath>

#include "quants/blocks.h"
#include "quants/fp16.h"
#include "quants/ref.h"

namespace ember::ref {

// Q4_K / Q5_K pack eight 6-bit scales and eight 6-bit mins into 12 bytes:
// bytes 0-3 and 4-7 hold scales/mins 0-3 in their low 6 bits; scales/mins 4-7 take their low
// nibble from bytes 8-11 and their top two bits from the spare bits of bytes 0-7.
void unpack_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = uint8_t((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
        *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

void dequantize_row_q2_K(const void* x, float* y, int64_t n) {
    const block_q2_K* b = static_cast<const block_q2_K*>(x);
    for (int64_t i = 0; i < n / QK_K; ++i, y += QK_K) {
        const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
        // element e = 128*h + 32*k + l reads bits 2k..2k+1 of qs[32*h + l]; scale index e / 16
        for (int e = 0; e < QK_K; ++e) {
            const int h = e / 128, k = (e % 128) / 32, l = e % 32;
            const int q = (b[i].qs[32 * h + l] >> (2 * k)) & 3;
            const uint8_t s = b[i].scales[e / 16];
            const float dl = d * float(s & 0x0F), ml = dmin * float(s >> 4);
            y[e] = dl * float(q) - ml;
        }
    }
}

void dequantize_row_q3_K(const void* x, float* y, int64_t n) {
    const block_q3_K* b = static_cast<const block_q3_K*>(x);
    for (int64_t i = 0; i < n / QK_K; ++i, y += QK_K) {
        const float d = fp16_to_fp32(b[i].d);
        const uint8_t* s = b[i].scales;
        float dl[16];
        for (int j = 0; j < 16; ++j) {
            // low nibble from bytes 0-7 (j < 8: low half, else high half); 2 high bits from 8-11
            const int lo = j < 8 ? (s[j] & 0x0F) : (s[j - 8] >> 4);
            const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
            dl[j] = d * float(int8_t((lo | (hi << 4)) - 32));
        }
        for (int e = 0; e < QK_K; ++e) {
            const int h = e / 128, k = (e % 128) / 32, l = e % 32;
            const int low = (b[i].qs[32 * h + l] >> (2 * k)) & 3;
            const int high = (b[i].hmask[l] >> (e / 32)) & 1;  // a clear bit means subtract 4
            y[e] = dl[e / 16] * float(low - (high ? 0 : 4));
        }
    }
}

void dequantize_row_q4_K(const void* x, float* y, int64_t n) {
    const block_q4_K* b = static_cast<const block_q4_K*>(x);
    for (int64_t i = 0; i < n / QK_K; ++i, y += QK_K) {
        const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
        // 64 elements per chunk c: low nibbles of qs[32c..] are sub-block 2c, high nibbles 2c+1
        for (int sb = 0; sb < 8; ++sb) {
            uint8_t sc, m;
            unpack_scale_min_k4(sb, b[i].scales, &sc, &m);
            const float d1 = d * float(sc), m1 = dmin * float(m);
            const uint8_t* q = b[i].qs + 32 * (sb / 2);
            const int shift = 4 * (sb % 2);
            for (int l = 0; l < 32; ++l) y[32 * sb + l] = d1 * float((q[l] >> shift) & 0x0F) - m1;
        }
    }
}

void dequantize_row_q5_K(const void* x, float* y, int64_t n) {
    const block_q5_K* b = static_cast<const block_q5_K*>(x);
    for (int64_t i = 0; i < n / QK_K; ++i, y += QK_K) {
        const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
        for (int sb = 0; sb < 8; ++sb) {
            uint8_t sc, m;
            unpack_scale_min_k4(sb, b[i].scales, &sc, &m);
            const float d1 = d * float(sc), m1 = dmin * float(m);
            const uint8_t* q = b[i].qs + 32 * (sb / 2);
            const int shift = 4 * (sb % 2);
            for (int l = 0; l < 32; ++l) {
                const int v = ((q[l] >> shift) & 0x0F) | (((b[i].qh[l] >> sb) & 1) << 4);
                y[32 * sb + l] = d1 * float(v) - m1;
            }
        }
    }
}

void dequantize_row_q6_K(const void* x, float* y, int64_t n) {
    const block_q6_K* b = static_cast<const block_q6_K*>(x);
    for (int64_t i = 0; i < n / QK_K; ++i, y += QK_K) {
        const float d = fp16_to_fp32(b[i].d);
        // element e = 128*h + 32*k + l: low 4 bits from ql[64h + 32*(k%2) + l] (high nibble when
        // k >= 2), top 2 bits from bits 2k..2k+1 of qh[32h + l]
        for (int e = 0; e < QK_K; ++e) {
            const int h = e / 128, k = (e % 128) / 32, l = e % 32;
            const int low = (b[i].ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0F;
            const int high = (b[i].qh[32 * h + l] >> (2 * k)) & 3;
            const float dl = d * float(b[i].scales[e / 16]);
            y[e] = dl * float((low | (high << 4)) - 32);
        }
    }
}

void dequantize_row_q8_K(const void* x, float* y, int64_t n) {
    const block_q8_K* b = static_cast<const block_q8_K*>(x);
    for (int64_t i = 0; i < n / QK_K; ++i, y += QK_K)
        for (int j = 0; j < QK_K; ++j) y[j] = b[i].d * float(b[i].qs[j]);
}

// Q8_K as ggml's reference makes it: the signed value of largest magnitude maps to -128,
// the scale is stored as float, and per-16 sums of the quants ride along for the dot products.
void quantize_row_q8_K(const float* x, void* y, int64_t n) {
    block_q8_K* b = static_cast<block_q8_K*>(y);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK_K; ++j) {
            if (amax < std::fabs(x[j])) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            b[i].d = 0.0f;
            std::fill(b[i].qs, b[i].qs + QK_K, int8_t(0));
            std::fill(b[i].bsums, b[i].bsums + QK_K / 16, int16_t(0));
            continue;
        }
        const float iscale = -128.0f / max;
        for (int j = 0; j < QK_K; ++j) {
            const int v = int(std::nearbyint(iscale * x[j]));
            b[i].qs[j] = int8_t(std::min(127, v));
        }
        for (int j = 0; j < QK_K / 16; ++j) {
            int sum = 0;
            for (int l = 0; l < 16; ++l) sum += b[i].qs[16 * j + l];
            b[i].bsums[j] = int16_t(sum);
        }
        b[i].d = 1.0f / iscale;
    }
}

}  // namespace ember::ref
