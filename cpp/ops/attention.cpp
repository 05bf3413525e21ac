// attention.cpp — see attention.h. attend(): two passes over the keys and values (the scores,
// then the softmax-weighted sum of values); the scores fit in the caller's scratch for any
// context. ref::attend_batch runs it for each query. Keys stored dimension-major (the cache's
// layout) are scored a run of one block's positions at a time: scores += q[i] * (element i of
// the run's keys), i = 0, 1, ... (each score summed over i in order).
#include "ops/attention.h"

#include <algorithm>
#include <cstring>

#include "ops/norm.h"
#include "quants/dispatch.h"

namespace ember {

void prefetch_kv(const PagedRows& k, const PagedRows& v, int32_t j0, int32_t j1, int32_t head_dim, uint64_t max_bytes) {
    uint64_t sent = 0;
    for (int32_t j = j0; j <= j1 && sent < max_bytes;) {
        const int32_t run = std::min(j1 + 1, (j / k.block_size + 1) * k.block_size) - j;  // within one block
        // dimension-major keys: element i of the run's rows lies together, element_stride apart
        const uint64_t kbytes = k.dim_major() ? uint64_t(head_dim) * k.element_stride() : uint64_t(run) * k.row_stride;
        const uint64_t vbytes = uint64_t(run) * v.row_stride;
        const uint8_t* kr = k.row(j);
        const uint8_t* vr = v.row(j);
        for (uint64_t off = 0; off < kbytes; off += 64) __builtin_prefetch(kr + off, 0, 2);
        for (uint64_t off = 0; off < vbytes; off += 64) __builtin_prefetch(vr + off, 0, 2);
        sent += kbytes + vbytes;
        j += run;
    }
}

void attend(const float* q, int32_t head_dim, const PagedRows& k, const PagedRows& v, int32_t j0, int32_t j1, float scale,
            float* scores, float* out, const KernelTable& kt) {
    const int32_t n = j1 - j0 + 1;
    if (k.dim_major()) {
        std::memset(scores, 0, sizeof(float) * size_t(n));
        for (int32_t j = j0; j <= j1;) {
            const int32_t run = std::min(j1 + 1, (j / k.block_size + 1) * k.block_size) - j;  // within one block
            const uint8_t* kr = k.row(j);
            float* s = scores + (j - j0);
            for (int32_t i = 0; i < head_dim; ++i) {
                const uint8_t* ki = kr + uint64_t(i) * k.element_stride();
                if (k.f16) kt.axpy_f16(s, reinterpret_cast<const uint16_t*>(ki), q[i], run);
                else kt.axpy_f32(s, reinterpret_cast<const float*>(ki), q[i], run);
            }
            j += run;
        }
        for (int32_t j = 0; j < n; ++j) scores[j] *= scale;
    } else {
        for (int32_t j = j0; j <= j1; ++j) {
            const uint8_t* kr = k.row(j);
            const float d = k.f16 ? kt.dot_f16(reinterpret_cast<const uint16_t*>(kr), q, head_dim)
                                  : kt.dot_f32(reinterpret_cast<const float*>(kr), q, head_dim);
            scores[j - j0] = d * scale;
        }
    }
    softmax(scores, n);
    std::memset(out, 0, sizeof(float) * size_t(head_dim));
    for (int32_t j = j0; j <= j1; ++j) {
        const uint8_t* vr = v.row(j);
        if (v.f16) kt.axpy_f16(out, reinterpret_cast<const uint16_t*>(vr), scores[j - j0], head_dim);
        else kt.axpy_f32(out, reinterpret_cast<const float*>(vr), scores[j - j0], head_dim);
    }
}

size_t attend_batch_scratch(int32_t n, int32_t head_dim, int32_t n_ctx) {
    // ref: the scores of one query; avx2: a tile of keys and of values, and two floats per query
    return std::max<size_t>(size_t(n_ctx), size_t(32) * size_t(head_dim) + 2 * size_t(n) + 16);
}

namespace ref {

void attend_batch(const AttnQueries& qs, int32_t head_dim, const PagedRows& k, const PagedRows& v, float scale,
                  float* scratch, const KernelTable& kt) {
    for (int32_t i = 0; i < qs.n; ++i) attend(qs.q[i], head_dim, k, v, qs.first[i], qs.last[i], scale, scratch, qs.out[i], kt);
}

}  // namespace ref
}  // namespace ember
