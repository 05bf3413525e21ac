// attention_avx2.cpp — the batched attention kernel (see attention.h), AVX2 + FMA + F16C.
//
// Keys are walked in tiles of 16 positions at multiples of 16. A tile's keys and values are
// converted to f32 once (row-major scratch), then for each query whose range meets the tile:
//   scores: for 8 keys at a time, 8 accumulators over head_dim in 8-lane chunks, folded into one
//           vector (lane j = key j) by a fixed add tree; scaled; keys outside the range masked;
//   online softmax: running max m and sum l; the query's output accumulates p_j * v_j after
//           being rescaled by exp(m_old - m_new);
// and each output is divided by l at the end. The exponentials use a Cephes-style polynomial
// (ops/avx2_math.h). head_dim must be a multiple of 8 (else the scalar kernel runs).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/attention.h"
#include "ops/avx2_math.h"

namespace ember::avx2 {

namespace {

constexpr int kTile = 16;

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

// Rows j0 .. j0+15 of a KV head as f32 (rows past `count` zeroed).
void load_tile(const PagedRows& rows, int32_t j0, int32_t count, int32_t hd, float* dst) {
    for (int32_t j = 0; j < kTile; ++j) {
        float* d = dst + size_t(j) * size_t(hd);
        if (j >= count) {
            std::memset(d, 0, sizeof(float) * size_t(hd));
            continue;
        }
        const uint8_t* src = rows.row(j0 + j);
        if (rows.f16) {
            for (int32_t i = 0; i < hd; i += 8)
                _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i))));
        } else {
            std::memcpy(d, src, sizeof(float) * size_t(hd));
        }
    }
}

// Scores of one query against 8 keys (rows of k, hd apart): lane j = q . k_j.
inline __m256 scores8(const float* q, const float* k, int32_t hd) {
    __m256 a[8];
    #pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) a[j] = _mm256_setzero_ps();
    for (int32_t i = 0; i < hd; i += 8) {
        const __m256 qv = _mm256_loadu_ps(q + i);
        #pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) a[j] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + size_t(j) * size_t(hd) + i), a[j]);
    }
    const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
    const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
    const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// out[0 .. 8*NV) = out * alpha + sum_j p[j] * v_j over the tile's rows (registers held throughout).
template <int NV>
inline void accumulate_pv(float* out, const float* vtile, int32_t hd, const float* p, int32_t count, __m256 alpha) {
    __m256 acc[NV];
    #pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) acc[c] = _mm256_mul_ps(_mm256_loadu_ps(out + 8 * c), alpha);
    for (int32_t j = 0; j < count; ++j) {
        const __m256 pj = _mm256_set1_ps(p[j]);
        const float* vr = vtile + size_t(j) * size_t(hd);
        #pragma GCC unroll 8
        for (int c = 0; c < NV; ++c) acc[c] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vr + 8 * c), acc[c]);
    }
    #pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) _mm256_storeu_ps(out + 8 * c, acc[c]);
}

using AccumulateFn = void (*)(float*, const float*, int32_t, const float*, int32_t, __m256);
constexpr AccumulateFn kAccumulate[9] = {nullptr,           accumulate_pv<1>, accumulate_pv<2>, accumulate_pv<3>, accumulate_pv<4>,
                                         accumulate_pv<5>, accumulate_pv<6>, accumulate_pv<7>, accumulate_pv<8>};

// Lanes whose position j0 + lane is in [first, last].
inline __m256 in_range(int32_t j0, int32_t first, int32_t last) {
    const __m256i pos = _mm256_add_epi32(_mm256_set1_epi32(j0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(first), pos);   // pos < first
    const __m256i hi = _mm256_cmpgt_epi32(pos, _mm256_set1_epi32(last));    // pos > last
    return _mm256_castsi256_ps(_mm256_xor_si256(_mm256_or_si256(lo, hi), _mm256_set1_epi32(-1)));
}

}  // namespace

void attend_batch(const AttnQueries& qs, int32_t hd, const PagedRows& k, const PagedRows& v, float scale, float* scratch,
                  const KernelTable& kt) {
    if (hd % 8 != 0 || qs.n == 0) {
        ref::attend_batch(qs, hd, k, v, scale, scratch, kt);
        return;
    }
    float* ktile = scratch;                            // [16][hd]
    float* vtile = ktile + size_t(kTile) * size_t(hd); // [16][hd]
    float* m = vtile + size_t(kTile) * size_t(hd);     // [n] running max
    float* l = m + qs.n;                               // [n] running sum
    int32_t lo = std::numeric_limits<int32_t>::max(), hi = -1;
    for (int32_t i = 0; i < qs.n; ++i) {
        lo = std::min(lo, qs.first[i]);
        hi = std::max(hi, qs.last[i]);
        m[i] = -std::numeric_limits<float>::infinity();
        l[i] = 0.0f;
        std::memset(qs.out[i], 0, sizeof(float) * size_t(hd));
    }
    const __m256 vscale = _mm256_set1_ps(scale), neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    alignas(32) float p[kTile];
    for (int32_t j0 = lo / kTile * kTile; j0 <= hi; j0 += kTile) {
        const int32_t count = std::min(kTile, hi - j0 + 1);
        load_tile(k, j0, count, hd, ktile);
        load_tile(v, j0, count, hd, vtile);
        for (int32_t i = 0; i < qs.n; ++i) {
            const int32_t first = qs.first[i], last = qs.last[i];
            if (last < j0 || first > j0 + kTile - 1) continue;
            const __m256 in0 = in_range(j0, first, last), in1 = in_range(j0 + 8, first, last);
            const __m256 s0 = _mm256_blendv_ps(neg_inf, _mm256_mul_ps(scores8(qs.q[i], ktile, hd), vscale), in0);
            const __m256 s1 = _mm256_blendv_ps(neg_inf, _mm256_mul_ps(scores8(qs.q[i], ktile + 8 * size_t(hd), hd), vscale), in1);
            const float m_new = std::max(m[i], hmax(_mm256_max_ps(s0, s1)));
            const float alpha = std::exp(m[i] - m_new);  // 0 on the first tile (m = -inf)
            const __m256 vm = _mm256_set1_ps(m_new);
            const __m256 p0 = _mm256_and_ps(exp_ps(_mm256_sub_ps(s0, vm)), in0);
            const __m256 p1 = _mm256_and_ps(exp_ps(_mm256_sub_ps(s1, vm)), in1);
            l[i] = l[i] * alpha + hsum(_mm256_add_ps(p0, p1));
            m[i] = m_new;
            _mm256_store_ps(p, p0);
            _mm256_store_ps(p + 8, p1);
            float* out = qs.out[i];
            const __m256 va = _mm256_set1_ps(alpha);
            for (int32_t d = 0; d < hd; d += 64)  // 8 registers of the output at a time
                kAccumulate[std::min(64, hd - d) / 8](out + d, vtile + d, hd, p, count, va);
        }
    }
    for (int32_t i = 0; i < qs.n; ++i) {
        const __m256 inv = _mm256_set1_ps(l[i] > 0.0f ? 1.0f / l[i] : 0.0f);
        for (int32_t d = 0; d < hd; d += 8) _mm256_storeu_ps(qs.out[i] + d, _mm256_mul_ps(_mm256_loadu_ps(qs.out[i] + d), inv));
    }
}

}  // namespace ember::avx2
