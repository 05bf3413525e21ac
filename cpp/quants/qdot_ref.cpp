// qdot_ref.cpp — scalar activation quantizers and integer dot products: the specification for
// the SIMD versions (see qdot.h).
//
// Activations: per block, d = max|x| / 127 and q = round-to-nearest-even(x / d) (x * (1/d),
// one float multiply, so SIMD code reproduces it exactly); s = d * sum(q).
// Dots, per output: the integer sum of products of a block (or sub-block, scaled by its integer
// scale), times the two float scales, summed over blocks in order; minimums and offsets enter
// through the activations' block sums.
#include <cmath>
#include <cstring>
#include <type_traits>

#include "quants/blocks.h"
#include "quants/fp16.h"
#include "quants/qdot.h"
#include "quants/ref.h"

namespace ember {

ActFormat act_format(GGMLType t) {
    switch (t) {
        case GGMLType::Q4_0: case GGMLType::Q4_1: case GGMLType::Q5_0: case GGMLType::Q5_1: case GGMLType::Q8_0:
            return ActFormat::A8;
        case GGMLType::Q4_K: case GGMLType::Q5_K: case GGMLType::Q6_K:
            return ActFormat::Q8K;
        default:
            return ActFormat::None;
    }
}

uint64_t act_row_size(ActFormat f, int64_t n) {
    switch (f) {
        case ActFormat::A8: return uint64_t(n / 32) * sizeof(block_a8);
        case ActFormat::Q8K: return uint64_t(n / QK_K) * sizeof(block_q8_K);
        default: return uint64_t(n) * sizeof(float);
    }
}

namespace ref {

static float absmax(const float* x, int n) {
    float m = 0.0f;
    for (int j = 0; j < n; ++j) m = std::fmax(m, std::fabs(x[j]));
    return m;
}

void quantize_row_a8(const float* x, void* y, int64_t n) {
    block_a8* b = static_cast<block_a8*>(y);
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        const float d = absmax(x, 32) / 127.0f;
        const float id = d > 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; ++j) {
            b[i].qs[j] = int8_t(std::nearbyint(x[j] * id));
            sum += b[i].qs[j];
        }
        b[i].d = d;
        b[i].s = d * float(sum);
    }
}

void quantize_row_q8k_act(const float* x, void* y, int64_t n) {
    block_q8_K* b = static_cast<block_q8_K*>(y);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        const float d = absmax(x, QK_K) / 127.0f;
        const float id = d > 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < QK_K; ++j) b[i].qs[j] = int8_t(std::nearbyint(x[j] * id));
        for (int g = 0; g < QK_K / 16; ++g) {
            int sum = 0;
            for (int j = 0; j < 16; ++j) sum += b[i].qs[16 * g + j];
            b[i].bsums[g] = int16_t(sum);
        }
        b[i].d = d;
    }
}

namespace {

// ---------------------------------------------------------------- 32-element weight blocks
// unpack(block, q, &d, &m): the 32 integer values (non-negative, so that x = d*q + m per block
// holds with the offset types' m = -8d or -16d), the scale and the minimum.
void unpack_q4_0(const uint8_t* p, int q[32], float* d, float* m) {
    block_q4_0 b;
    std::memcpy(&b, p, sizeof b);
    for (int j = 0; j < 16; ++j) q[j] = b.qs[j] & 0x0F, q[j + 16] = b.qs[j] >> 4;
    *d = fp16_to_fp32(b.d);
    *m = -8.0f * *d;
}
void unpack_q4_1(const uint8_t* p, int q[32], float* d, float* m) {
    block_q4_1 b;
    std::memcpy(&b, p, sizeof b);
    for (int j = 0; j < 16; ++j) q[j] = b.qs[j] & 0x0F, q[j + 16] = b.qs[j] >> 4;
    *d = fp16_to_fp32(b.d);
    *m = fp16_to_fp32(b.m);
}
template <class B>
void unpack_q5(const B& b, int q[32]) {
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    for (int j = 0; j < 16; ++j) {
        q[j] = (b.qs[j] & 0x0F) | int(((qh >> j) & 1) << 4);
        q[j + 16] = (b.qs[j] >> 4) | int(((qh >> (j + 16)) & 1) << 4);
    }
}
void unpack_q5_0(const uint8_t* p, int q[32], float* d, float* m) {
    block_q5_0 b;
    std::memcpy(&b, p, sizeof b);
    unpack_q5(b, q);
    *d = fp16_to_fp32(b.d);
    *m = -16.0f * *d;
}
void unpack_q5_1(const uint8_t* p, int q[32], float* d, float* m) {
    block_q5_1 b;
    std::memcpy(&b, p, sizeof b);
    unpack_q5(b, q);
    *d = fp16_to_fp32(b.d);
    *m = fp16_to_fp32(b.m);
}
void unpack_q8_0(const uint8_t* p, int q[32], float* d, float* m) {
    block_q8_0 b;
    std::memcpy(&b, p, sizeof b);
    for (int j = 0; j < 32; ++j) q[j] = b.qs[j];
    *d = fp16_to_fp32(b.d);
    *m = 0.0f;
}

using Unpack32 = void (*)(const uint8_t*, int*, float*, float*);

template <Unpack32 Unpack, size_t BlockBytes>
float dot32(int64_t n, const uint8_t* w, const uint8_t* a) {
    float acc = 0.0f, mins = 0.0f;
    for (int64_t i = 0; i < n / 32; ++i) {
        int q[32];
        float dw, mw;
        Unpack(w + i * BlockBytes, q, &dw, &mw);
        block_a8 x;
        std::memcpy(&x, a + i * sizeof(block_a8), sizeof x);
        int isum = 0;
        for (int j = 0; j < 32; ++j) isum += q[j] * x.qs[j];
        acc += (dw * x.d) * float(isum);
        mins += mw * x.s;
    }
    return acc + mins;
}

// ---------------------------------------------------------------- K-quants against Q8K
block_q8_K load_q8k(const uint8_t* a, int64_t i) {
    block_q8_K x;
    std::memcpy(&x, a + i * sizeof(block_q8_K), sizeof x);
    return x;
}

// Q4_K and Q5_K: eight sub-blocks of 32 with 6-bit scales and mins; x = d*sc*q - dmin*m.
template <bool Five>
float dot_q45_K(int64_t n, const uint8_t* w, const uint8_t* a) {
    using B = typename std::conditional<Five, block_q5_K, block_q4_K>::type;
    float acc = 0.0f, mins = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        B b;
        std::memcpy(&b, w + i * sizeof(B), sizeof b);
        const block_q8_K x = load_q8k(a, i);
        int isum = 0, msum = 0;
        for (int sb = 0; sb < 8; ++sb) {
            uint8_t sc, m;
            unpack_scale_min_k4(sb, b.scales, &sc, &m);
            const uint8_t* q = b.qs + 32 * (sb / 2);
            int s = 0;
            for (int l = 0; l < 32; ++l) {
                int v = (q[l] >> (4 * (sb % 2))) & 0x0F;
                if constexpr (Five) v |= ((b.qh[l] >> sb) & 1) << 4;
                s += v * x.qs[32 * sb + l];
            }
            isum += int(sc) * s;
            msum += int(m) * (x.bsums[2 * sb] + x.bsums[2 * sb + 1]);
        }
        acc += (fp16_to_fp32(b.d) * x.d) * float(isum);
        mins += (fp16_to_fp32(b.dmin) * x.d) * float(msum);
    }
    return acc - mins;
}

// Q6_K: sixteen sub-blocks of 16 with int8 scales; x = d*sc*(q - 32).
float dot_q6_K(int64_t n, const uint8_t* w, const uint8_t* a) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        block_q6_K b;
        std::memcpy(&b, w + i * sizeof b, sizeof b);
        const block_q8_K x = load_q8k(a, i);
        int isum = 0;
        for (int sub = 0; sub < 16; ++sub) {
            int s = 0;
            for (int e = 16 * sub; e < 16 * sub + 16; ++e) {
                const int h = e / 128, k = (e % 128) / 32, l = e % 32;
                const int low = (b.ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0F;
                const int high = (b.qh[32 * h + l] >> (2 * k)) & 3;
                s += ((low | (high << 4)) - 32) * x.qs[e];
            }
            isum += int(b.scales[sub]) * s;
        }
        acc += (fp16_to_fp32(b.d) * x.d) * float(isum);
    }
    return acc;
}

using DotFn = float (*)(int64_t, const uint8_t*, const uint8_t*);

template <DotFn Dot>
void tile(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out, int64_t ldo) {
    for (int r = 0; r < nr; ++r)
        for (int t = 0; t < nt; ++t) out[t * ldo + r] = Dot(n, w + r * ws, a + t * as);
}

}  // namespace

void dot_tile_q4_0(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    tile<dot32<unpack_q4_0, sizeof(block_q4_0)>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q4_1(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    tile<dot32<unpack_q4_1, sizeof(block_q4_1)>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q5_0(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    tile<dot32<unpack_q5_0, sizeof(block_q5_0)>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q5_1(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    tile<dot32<unpack_q5_1, sizeof(block_q5_1)>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q8_0(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    tile<dot32<unpack_q8_0, sizeof(block_q8_0)>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q4_K(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    tile<dot_q45_K<false>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q5_K(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    tile<dot_q45_K<true>>(n, w, ws, nr, a, as, nt, out, ldo);
}
void dot_tile_q6_K(int64_t n, const uint8_t* w, uint64_t ws, int nr, const uint8_t* a, uint64_t as, int nt, float* out,
                   int64_t ldo) {
    tile<dot_q6_K>(n, w, ws, nr, a, as, nt, out, ldo);
}

}  // namespace ref
}  // namespace ember
