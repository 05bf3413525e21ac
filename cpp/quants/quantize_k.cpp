// quantize_k.cpp — quantizers for Q4_K, Q5_K and Q6_K.
//
// No reference fixes these bit for bit (ggml's own output depends on its search), so ember uses
// its own weighted least-squares search, in the spirit of ggml's:
//   1. per sub-block, try a sweep of candidate step sizes; for each, round to the grid and solve
//      the 2x2 (scale, offset) or 1x1 (scale) weighted least-squares problem for that rounding;
//      keep the candidate with the smallest weighted squared error;
//   2. quantize the sub-block scales (and mins) to 6 or 8 bits against one fp16 super-scale;
//   3. re-round every value against the scales as they will be decoded.
// Weights favour large-magnitude values (|x| plus the block's RMS for Q4_K/Q5_K, x^2 for Q6_K),
// which lowers the error where it matters most for matrix products.
//
// Documented bounds (tested in tests/test_quants.py):
//  - on Gaussian and uniform rows, the RMS of the round-trip error relative to the RMS of the
//    input stays below 0.085 (Q4_K), 0.045 (Q5_K) and 0.025 (Q6_K); measured 0.072 / 0.036 /
//    0.018 on Gaussian data;
//  - on any finite input, no element is off by more than one grid step of its sub-block
//    (sub-block span / number of levels) plus the 6-bit scale rounding (the super-block's
//    max |x| / 64).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quants/blocks.h"
#include "quants/fp16.h"
#include "quants/ref.h"

namespace ember::ref {

static inline int round_int(float v) { return int(std::nearbyint(v)); }

// Fit x ~ scale * L - min with L in [0, nmax], min >= 0, minimizing sum w (scale*L - min - x)^2.
// Writes L, returns scale, stores min.
static float fit_scale_min(const float* x, const float* w, int n, int nmax, uint8_t* L, float* min_out) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
    }
    lo = std::min(lo, 0.0f);  // the offset is stored unsigned: the grid may only start at or below 0
    if (hi <= lo) {
        std::memset(L, 0, size_t(n));
        *min_out = -lo;
        return 0.0f;
    }
    float best_scale = (hi - lo) / float(nmax), best_offset = lo, best_err = INFINITY;
    uint8_t trial[QK_K];
    // Step sizes around the naive (hi - lo) / nmax: range/(nmax - 1) ... range/(nmax + 1).
    for (int step = -1; step <= 20; ++step) {
        const float iscale = step < 0 ? float(nmax) / (hi - lo) : (float(nmax) - 1.0f + 0.1f * float(step)) / (hi - lo);
        double sw = 0, sl = 0, sll = 0, sx = 0, slx = 0;
        for (int i = 0; i < n; ++i) {
            const int q = std::clamp(round_int(iscale * (x[i] - lo)), 0, nmax);
            trial[i] = uint8_t(q);
            sw += w[i];
            sl += w[i] * q;
            sll += double(w[i]) * q * q;
            sx += w[i] * x[i];
            slx += double(w[i]) * q * x[i];
        }
        const double det = sw * sll - sl * sl;
        if (det <= 0) continue;
        double scale = (sw * slx - sx * sl) / det;
        double offset = (sll * sx - sl * slx) / det;
        if (offset > 0) {  // the offset must not be positive: refit the scale alone with offset 0
            offset = 0;
            scale = sll > 0 ? slx / sll : 0;
        }
        if (scale <= 0) continue;
        double err = 0;
        for (int i = 0; i < n; ++i) {
            const double diff = scale * trial[i] + offset - x[i];
            err += w[i] * diff * diff;
        }
        if (err < best_err) {
            best_err = float(err);
            best_scale = float(scale);
            best_offset = float(offset);
            std::memcpy(L, trial, size_t(n));
        }
    }
    if (best_err == INFINITY) {  // every candidate degenerate: plain min/max grid
        const float iscale = float(nmax) / (hi - lo);
        for (int i = 0; i < n; ++i) L[i] = uint8_t(std::clamp(round_int(iscale * (x[i] - lo)), 0, nmax));
    }
    *min_out = -best_offset;
    return best_scale;
}

// Fit x ~ scale * L with L in [-nmax, nmax - 1], weights x^2. Returns scale (may be negative).
static float fit_scale_symmetric(const float* x, int n, int nmax) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; ++i) {
        if (amax < std::fabs(x[i])) {
            amax = std::fabs(x[i]);
            max = x[i];
        }
    }
    if (amax < 1e-30f) return 0.0f;
    float best_scale = 0.0f;
    double best_score = -1.0;
    for (int step = -9; step <= 9; ++step) {
        const float iscale = -(float(nmax) + 0.1f * float(step)) / max;
        double slx = 0, sll = 0;
        for (int i = 0; i < n; ++i) {
            const int q = std::clamp(round_int(iscale * x[i]), -nmax, nmax - 1);
            const double w = double(x[i]) * x[i];
            slx += w * q * x[i];
            sll += w * q * q;
        }
        // error = sum w x^2 - slx^2 / sll at the optimal scale, so maximize slx^2 / sll
        if (sll > 0 && slx * slx / sll > best_score) {
            best_score = slx * slx / sll;
            best_scale = float(slx / sll);
        }
    }
    return best_scale;
}

static void pack_scale_min_k4(const uint8_t ls[8], const uint8_t lm[8], uint8_t q[12]) {
    for (int j = 0; j < 4; ++j) {
        q[j] = uint8_t(ls[j] | ((ls[j + 4] >> 4) << 6));
        q[j + 4] = uint8_t(lm[j] | ((lm[j + 4] >> 4) << 6));
        q[j + 8] = uint8_t((ls[j + 4] & 0x0F) | ((lm[j + 4] & 0x0F) << 4));
    }
}

// Shared by Q4_K and Q5_K: eight sub-blocks of 32 with 6-bit scales and mins; L gets the final
// quants in [0, nmax].
static void quantize_superblock_k4(const float* x, int nmax, uint16_t* d_out, uint16_t* dmin_out,
                                   uint8_t packed_scales[12], uint8_t L[QK_K]) {
    float sum_x2 = 0.0f;
    for (int i = 0; i < QK_K; ++i) sum_x2 += x[i] * x[i];
    const float av_x = std::sqrt(sum_x2 / QK_K);
    float scales[8], mins[8], w[32];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; ++j) {
        for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(x[32 * j + l]);
        scales[j] = fit_scale_min(x + 32 * j, w, 32, nmax, L + 32 * j, &mins[j]);
        max_scale = std::max(max_scale, scales[j]);
        max_min = std::max(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
        ls[j] = uint8_t(std::min(63, round_int(inv_scale * scales[j])));
        lm[j] = uint8_t(std::min(63, round_int(inv_min * mins[j])));
    }
    pack_scale_min_k4(ls, lm, packed_scales);
    *d_out = fp32_to_fp16(max_scale / 63.0f);
    *dmin_out = fp32_to_fp16(max_min / 63.0f);
    // Re-round against the scales exactly as the decoder will see them.
    const float d = fp16_to_fp32(*d_out), dmin = fp16_to_fp32(*dmin_out);
    for (int j = 0; j < 8; ++j) {
        const float dl = d * float(ls[j]), ml = dmin * float(lm[j]);
        for (int l = 0; l < 32; ++l) {
            const int q = dl != 0.0f ? round_int((x[32 * j + l] + ml) / dl) : 0;
            L[32 * j + l] = uint8_t(std::clamp(q, 0, nmax));
        }
    }
}

void quantize_row_q4_K(const float* x, void* y, int64_t n) {
    block_q4_K* b = static_cast<block_q4_K*>(y);
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        quantize_superblock_k4(x, 15, &b[i].d, &b[i].dmin, b[i].scales, L);
        for (int c = 0; c < 4; ++c)
            for (int l = 0; l < 32; ++l) b[i].qs[32 * c + l] = uint8_t(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
    }
}

void quantize_row_q5_K(const float* x, void* y, int64_t n) {
    block_q5_K* b = static_cast<block_q5_K*>(y);
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        quantize_superblock_k4(x, 31, &b[i].d, &b[i].dmin, b[i].scales, L);
        std::memset(b[i].qh, 0, sizeof(b[i].qh));
        for (int sb = 0; sb < 8; ++sb)
            for (int l = 0; l < 32; ++l) b[i].qh[l] |= uint8_t(((L[32 * sb + l] >> 4) & 1) << sb);
        for (int c = 0; c < 4; ++c)
            for (int l = 0; l < 32; ++l)
                b[i].qs[32 * c + l] = uint8_t((L[64 * c + l] & 0x0F) | ((L[64 * c + 32 + l] & 0x0F) << 4));
    }
}

void quantize_row_q6_K(const float* x, void* y, int64_t n) {
    block_q6_K* b = static_cast<block_q6_K*>(y);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float scales[16];
        float max_scale = 0.0f, max_abs_scale = 0.0f;
        for (int j = 0; j < 16; ++j) {
            scales[j] = fit_scale_symmetric(x + 16 * j, 16, 32);
            if (std::fabs(scales[j]) > max_abs_scale) {
                max_abs_scale = std::fabs(scales[j]);
                max_scale = scales[j];
            }
        }
        std::memset(b[i].ql, 0, sizeof(b[i].ql));
        std::memset(b[i].qh, 0, sizeof(b[i].qh));
        if (max_abs_scale == 0.0f) {
            std::memset(b[i].scales, 0, sizeof(b[i].scales));
            b[i].d = 0;
            // all-zero scales decode to 0 whatever the quants; store the neutral code 32
            for (int e = 0; e < QK_K; ++e) {
                const int h = e / 128, k = (e % 128) / 32, l = e % 32;
                b[i].qh[32 * h + l] |= uint8_t(2 << (2 * k));
            }
            continue;
        }
        const float iscale = -128.0f / max_scale;  // the largest scale maps to -128
        b[i].d = fp32_to_fp16(1.0f / iscale);
        for (int j = 0; j < 16; ++j) b[i].scales[j] = int8_t(std::min(127, round_int(iscale * scales[j])));
        const float d = fp16_to_fp32(b[i].d);
        for (int e = 0; e < QK_K; ++e) {
            const float dl = d * float(b[i].scales[e / 16]);
            const int q = dl != 0.0f ? std::clamp(round_int(x[e] / dl), -32, 31) + 32 : 32;
            const int h = e / 128, k = (e % 128) / 32, l = e % 32;
            b[i].ql[64 * h + 32 * (k % 2) + l] |= uint8_t((q & 0x0F) << (4 * (k / 2)));
            b[i].qh[32 * h + l] |= uint8_t((q >> 4) << (2 * k));
        }
    }
}

}  // namespace ember::ref
