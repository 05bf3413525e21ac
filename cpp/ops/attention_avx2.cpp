// attention_avx2.cpp — the batched attention kernel (see attention.h), AVX2 + FMA + F16C.
//
// Keys are walked in tiles of 16 positions at multiples of 16. A tile's keys and values are
// converted to f32 once (scratch: keys dimension-major [hd][16], values row-major [16][hd]) — or,
// with a few queries only (decode: one sequence's heads), read as fp16 where they lie in the
// cache, each converted as it is used (the same values, so the same bits); then the queries whose
// range meets the tile go through it in groups of up to 6 consecutive queries that see the same
// positions of it (the heads of a GQA group share a range; on a tile wholly inside their ranges,
// all the queries do), the group's independent dependency chains interleaved. For each query:
//   scores: the 16 keys in the lanes (the cache keeps keys dimension-major): q[i] broadcast times
//           element i of the 16 keys, summed in two chains (even i, odd i), each in the order of
//           i, then added; scaled; positions outside the range set to -inf;
//   online softmax: running max m and sum l; p_j = exp(s_j - m_new) (0 outside the range),
//           alpha = exp(m_old - m_new) (1 when the max holds);
//   output: out * alpha + sum_j p_j * v_j over the tile's positions in the range, in order;
// and each output is divided by l at the end. Each step is lane-wise, or a reduction over the
// query's own lanes, and the group a query is in depends only on its own range, so a query goes
// through the same operations whatever the other queries of the batch: its result depends only
// on it, its range and the keys. The exponentials use a Cephes-style polynomial
// (ops/avx2_math.h). head_dim must be a multiple of 8 (else the scalar kernel runs).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/attention.h"
#include "ops/avx2_math.h"
#include "quants/fp16.h"

namespace ember::avx2 {

namespace {

constexpr int kTile = 16;
constexpr int kGroup = 6;  // queries at once (12 accumulators of output)

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

// Eight f32 of row `src` from element i (fp16 or f32).
inline __m256 load8(const uint8_t* src, bool f16, int32_t i) {
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * size_t(i))))
               : _mm256_loadu_ps(reinterpret_cast<const float*>(src) + i);
}

// Eight values of a tile row as f32: from the f32 scratch, or straight from the cache's fp16
// (exact, so either source gives the same bits).
inline __m256 ld8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 ld8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

// The tile's keys as f32, dimension-major [hd][16]: element i of key j0 + j at i * 16 + j (keys
// past `count` zeroed; or, where the tile lies in one block of dimension-major keys, whatever the
// block holds there: their scores are masked).
void load_keys(const PagedRows& k, int32_t j0, int32_t count, int32_t hd, float* dst) {
    const uint64_t es = k.element_stride();
    if (k.dim_major() && k.block_size % kTile == 0) {  // element i of the 16 keys lies together
        const uint8_t* first = k.row(j0);
        for (int32_t i = 0; i < hd; ++i) {
            const uint8_t* src = first + uint64_t(i) * es;
            _mm256_storeu_ps(dst + 16 * i, load8(src, k.f16, 0));
            _mm256_storeu_ps(dst + 16 * i + 8, load8(src, k.f16, 8));
        }
        return;
    }
    for (int32_t j = 0; j < kTile; ++j) {
        const uint8_t* src = j < count ? k.row(j0 + j) : nullptr;
        for (int32_t i = 0; i < hd; ++i) {
            float x = 0.0f;
            if (src && k.f16) {
                uint16_t h;
                std::memcpy(&h, src + uint64_t(i) * es, 2);
                x = fp16_to_fp32(h);
            } else if (src) {
                std::memcpy(&x, src + uint64_t(i) * es, 4);
            }
            dst[16 * i + j] = x;
        }
    }
}

// Values j0 .. j0+15 of a KV head as f32, row-major [16][hd] (rows past `count` zeroed); a
// value row's elements lie together.
void load_rows(const PagedRows& rows, int32_t j0, int32_t count, int32_t hd, float* dst) {
    // j0 is a multiple of kTile: with blocks of a multiple of kTile rows the tile lies in one
    // block, found once (PagedRows::row divides by a run-time block size: it showed in profiles)
    const bool one_block = rows.block_size % kTile == 0;
    const uint8_t* first = rows.row(j0);
    for (int32_t j = 0; j < kTile; ++j) {
        float* d = dst + size_t(j) * size_t(hd);
        if (j >= count) {
            std::memset(d, 0, sizeof(float) * size_t(hd));
            continue;
        }
        const uint8_t* src = one_block ? first + uint64_t(j) * rows.row_stride : rows.row(j0 + j);
        if (rows.f16) {
            for (int32_t i = 0; i < hd; i += 8) _mm256_storeu_ps(d + i, load8(src, true, i));
        } else {
            std::memcpy(d, src, sizeof(float) * size_t(hd));
        }
    }
}

// Ask for the next tile's keys and values while this one is computed. A decoding batch reads
// each sequence's cache once per layer, mostly from memory, a few tiles per work item: too few
// for the hardware prefetcher to get ahead. (A 16-sequence batch spent ~13% of its time in
// decode-attention tiles at ~1 us each, against ~0.25 us with the tile in L1; this took that
// to ~11.7%, measured.)
inline void prefetch_tile(const PagedRows& k, const PagedRows& v, int32_t j0, int32_t hd) {
    if (k.block_size % kTile != 0 || v.block_size % kTile != 0) return;  // a tile may cross blocks: not worth the lookups
    const uint8_t* kr = k.row(j0);
    const uint8_t* vr = v.row(j0);
    const uint64_t kbytes = k.dim_major() ? uint64_t(hd) * k.element_stride() : uint64_t(kTile) * k.row_stride;
    const uint64_t vbytes = uint64_t(kTile) * v.row_stride;
    for (uint64_t off = 0; off < kbytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(kr + off), _MM_HINT_T0);
    for (uint64_t off = 0; off < vbytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(vr + off), _MM_HINT_T0);
}

// s[n][0..16) = q_n . k_j for the tile's 16 keys, NQ <= 3 queries at once. Element i of the 16
// keys is at kt + i * stride (the keys in the lanes: no horizontal sums). Each score is the sum
// over the even i plus the sum over the odd i, each in the order of i (two chains keep the
// multiply-adds flowing), whatever NQ.
template <int NQ, class T>
inline void scores16(const float* const* q, const T* kt, size_t stride, int32_t hd, float (*s)[kTile]) {
    __m256 e[NQ][2], o[NQ][2];
    #pragma GCC unroll 4
    for (int n = 0; n < NQ; ++n) e[n][0] = e[n][1] = o[n][0] = o[n][1] = _mm256_setzero_ps();
    for (int32_t i = 0; i < hd; i += 2) {
        const T* k0 = kt + size_t(i) * stride;
        const __m256 a0 = ld8(k0), a1 = ld8(k0 + 8);
        #pragma GCC unroll 4
        for (int n = 0; n < NQ; ++n) {
            const __m256 qv = _mm256_broadcast_ss(q[n] + i);
            e[n][0] = _mm256_fmadd_ps(qv, a0, e[n][0]);
            e[n][1] = _mm256_fmadd_ps(qv, a1, e[n][1]);
        }
        const T* k1 = k0 + stride;
        const __m256 b0 = ld8(k1), b1 = ld8(k1 + 8);
        #pragma GCC unroll 4
        for (int n = 0; n < NQ; ++n) {
            const __m256 qv = _mm256_broadcast_ss(q[n] + i + 1);
            o[n][0] = _mm256_fmadd_ps(qv, b0, o[n][0]);
            o[n][1] = _mm256_fmadd_ps(qv, b1, o[n][1]);
        }
    }
    #pragma GCC unroll 4
    for (int n = 0; n < NQ; ++n) {
        _mm256_store_ps(s[n], _mm256_add_ps(e[n][0], o[n][0]));
        _mm256_store_ps(s[n] + 8, _mm256_add_ps(e[n][1], o[n][1]));
    }
}

// Lanes js <= lane < je of 8 starting at lane `base`.
inline __m256 lanes_in(int32_t base, int32_t js, int32_t je) {
    const __m256i pos = _mm256_add_epi32(_mm256_set1_epi32(base), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(js), pos);       // pos < js
    const __m256i hi = _mm256_cmpgt_epi32(pos, _mm256_set1_epi32(je - 1));   // pos >= je
    return _mm256_castsi256_ps(_mm256_xor_si256(_mm256_or_si256(lo, hi), _mm256_set1_epi32(-1)));
}

// out[g][c .. c + 8*NV) = out * alpha[g] + sum_{j in [js, je)} p[g][j] * v_j, G queries at once.
template <int G, int NV, class T>
inline void accumulate_pv(float* const* out, const T* vtile, int32_t hd, int32_t c, const float (*p)[kTile],
                          const float* alpha, int32_t js, int32_t je) {
    __m256 acc[G][NV];
    #pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
        const __m256 a = _mm256_broadcast_ss(alpha + g);
        #pragma GCC unroll 2
        for (int u = 0; u < NV; ++u) acc[g][u] = _mm256_mul_ps(_mm256_loadu_ps(out[g] + c + 8 * u), a);
    }
    for (int32_t j = js; j < je; ++j) {
        const T* vr = vtile + size_t(j) * size_t(hd) + c;
        __m256 vv[NV];
        #pragma GCC unroll 2
        for (int u = 0; u < NV; ++u) vv[u] = ld8(vr + 8 * u);
        #pragma GCC unroll 8
        for (int g = 0; g < G; ++g) {
            const __m256 pj = _mm256_broadcast_ss(&p[g][j]);
            #pragma GCC unroll 2
            for (int u = 0; u < NV; ++u) acc[g][u] = _mm256_fmadd_ps(pj, vv[u], acc[g][u]);
        }
    }
    #pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
        #pragma GCC unroll 2
        for (int u = 0; u < NV; ++u) _mm256_storeu_ps(out[g] + c + 8 * u, acc[g][u]);
    }
}

// One tile for G queries (indices idx) that all see positions [js, je) of it.
// ktile: element i of the 16 keys at ktile + i * kstride; vtile: row-major [16][hd].
template <int G, class T>
void tile_group(const AttnQueries& qs, const int32_t* idx, int32_t hd, const T* ktile, size_t kstride, const T* vtile,
                float scale, int32_t js, int32_t je, float* m, float* l) {
    const float* q[G];
    float* out[G];
    #pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
        q[g] = qs.q[idx[g]];
        out[g] = qs.out[idx[g]];
    }
    // scores, three queries at a time (12 accumulators)
    alignas(32) float sc[G][kTile];
    #pragma GCC unroll 2
    for (int g = 0; g + 3 <= G; g += 3) scores16<3>(q + g, ktile, kstride, hd, sc + g);
    if (G % 3 == 2) scores16<2>(q + G - 2, ktile, kstride, hd, sc + G - 2);
    if (G % 3 == 1) scores16<1>(q + G - 1, ktile, kstride, hd, sc + G - 1);
    const __m256 vscale = _mm256_set1_ps(scale);
    const bool partial = js > 0 || je < kTile;
    const __m256 in0 = lanes_in(0, js, je), in1 = lanes_in(8, js, je);
    const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    alignas(32) float p[G][kTile];
    alignas(32) float alpha[G];
    float psum[G];
    #pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
        __m256 a = _mm256_mul_ps(_mm256_load_ps(sc[g]), vscale), b = _mm256_mul_ps(_mm256_load_ps(sc[g] + 8), vscale);
        if (partial) {  // (on a full tile the masks are all ones: the same values either way)
            a = _mm256_blendv_ps(neg_inf, a, in0);
            b = _mm256_blendv_ps(neg_inf, b, in1);
        }
        const int32_t qi = idx[g];
        const float m_new = std::max(m[qi], hmax(_mm256_max_ps(a, b)));
        alpha[g] = m_new == m[qi] ? 1.0f : std::exp(m[qi] - m_new);  // 0 on the first tile (m = -inf); exp(0) = 1
        m[qi] = m_new;
        const __m256 vm = _mm256_set1_ps(m_new);
        __m256 p0 = exp_ps(_mm256_sub_ps(a, vm)), p1 = exp_ps(_mm256_sub_ps(b, vm));
        if (partial) {
            p0 = _mm256_and_ps(p0, in0);
            p1 = _mm256_and_ps(p1, in1);
        }
        _mm256_store_ps(p[g], p0);
        _mm256_store_ps(p[g] + 8, p1);
        psum[g] = hsum(_mm256_add_ps(p0, p1));
    }
    #pragma GCC unroll 8
    for (int g = 0; g < G; ++g) l[idx[g]] = l[idx[g]] * alpha[g] + psum[g];
    int32_t c = 0;
    for (; c + 16 <= hd; c += 16) accumulate_pv<G, 2>(out, vtile, hd, c, p, alpha, js, je);
    if (c < hd) accumulate_pv<G, 1>(out, vtile, hd, c, p, alpha, js, je);
}

template <class T>
using TileGroupFn = void (*)(const AttnQueries&, const int32_t*, int32_t, const T*, size_t, const T*, float, int32_t,
                             int32_t, float*, float*);
template <class T>
constexpr TileGroupFn<T> kTileGroup[kGroup + 1] = {nullptr,          tile_group<1, T>, tile_group<2, T>, tile_group<3, T>,
                                                  tile_group<4, T>, tile_group<5, T>, tile_group<6, T>};  // by group size

}  // namespace

void attend_batch(const AttnQueries& qs, int32_t hd, const PagedRows& k, const PagedRows& v, float scale, float* scratch,
                  const KernelTable& kt) {
    if (hd % 8 != 0 || qs.n == 0) {
        ref::attend_batch(qs, hd, k, v, scale, scratch, kt);
        return;
    }
    float* ktile = scratch;                            // [hd][16]
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
    // the fp16 cache as it lies: a tile in one block, keys dimension-major, value rows packed
    const bool keys16 = k.f16 && k.block_size % kTile == 0 && k.dim_major();
    const bool values16 =
        v.f16 && v.block_size % kTile == 0 && v.row_stride == 2 * uint64_t(hd) && v.element_stride() == 2;
    const bool direct = qs.n <= kGroup && keys16 && values16;
    const size_t kstride16 = size_t(k.element_stride() / 2);  // (direct) elements from key element i to i + 1
    // The first tile into L1 now (the forward pass sent this work item's rows to L2 during the
    // item before, prefetch_kv), each next one while the tile before it is computed.
    if (lo / kTile * kTile <= hi) prefetch_tile(k, v, lo / kTile * kTile, hd);
    for (int32_t j0 = lo / kTile * kTile; j0 <= hi; j0 += kTile) {
        const int32_t count = std::min(kTile, hi - j0 + 1);
        // With few queries (a decoding sequence's heads) each key is read by one group: the
        // group reads the fp16 rows where they lie, together in one block (rows past `count`
        // are read but never count: their scores are masked, their values unused).
        const uint16_t* k16 = direct ? reinterpret_cast<const uint16_t*>(k.row(j0)) : nullptr;
        const uint16_t* v16 = direct ? reinterpret_cast<const uint16_t*>(v.row(j0)) : nullptr;
        if (!direct) {
            load_keys(k, j0, count, hd, ktile);
            load_rows(v, j0, count, hd, vtile);
        }
        if (j0 + kTile <= hi) prefetch_tile(k, v, j0 + kTile, hd);
        // runs of up to kGroup queries (in batch order) that see the same positions of the tile
        int32_t idx[kGroup], n_idx = 0, js = 0, je = 0;
        for (int32_t i = 0; i <= qs.n; ++i) {
            int32_t s = 0, e = 0;
            if (i < qs.n) {
                s = std::max(qs.first[i] - j0, 0);
                e = std::min(qs.last[i] - j0 + 1, kTile);
            }
            const bool meets = s < e;
            if (n_idx > 0 && (!meets || s != js || e != je || n_idx == kGroup)) {
                if (direct) kTileGroup<uint16_t>[n_idx](qs, idx, hd, k16, kstride16, v16, scale, js, je, m, l);
                else kTileGroup<float>[n_idx](qs, idx, hd, ktile, kTile, vtile, scale, js, je, m, l);
                n_idx = 0;
            }
            if (!meets) continue;
            if (n_idx == 0) js = s, je = e;
            idx[n_idx++] = i;
        }
    }
    for (int32_t i = 0; i < qs.n; ++i) {
        const __m256 inv = _mm256_set1_ps(l[i] > 0.0f ? 1.0f / l[i] : 0.0f);
        for (int32_t d = 0; d < hd; d += 8) _mm256_storeu_ps(qs.out[i] + d, _mm256_mul_ps(_mm256_loadu_ps(qs.out[i] + d), inv));
    }
}

}  // namespace ember::avx2
