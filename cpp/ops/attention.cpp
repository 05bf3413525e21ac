// attention.cpp — see attention.h. Two passes over the keys and values: the scores, then the
// softmax-weighted sum of values (the scores fit in the caller's scratch for any context).
#include "ops/attention.h"

#include <cstring>

#include "ops/norm.h"

namespace ember {

void attend(const float* q, int32_t head_dim, const PagedRows& k, const PagedRows& v, int32_t j0, int32_t j1, float scale,
            float* scores, float* out, const KernelTable& kt) {
    const int32_t n = j1 - j0 + 1;
    for (int32_t j = j0; j <= j1; ++j) {
        const uint8_t* kr = k.row(j);
        const float d = k.f16 ? kt.dot_f16(reinterpret_cast<const uint16_t*>(kr), q, head_dim)
                              : kt.dot_f32(reinterpret_cast<const float*>(kr), q, head_dim);
        scores[j - j0] = d * scale;
    }
    softmax(scores, n);
    std::memset(out, 0, sizeof(float) * size_t(head_dim));
    for (int32_t j = j0; j <= j1; ++j) {
        const uint8_t* vr = v.row(j);
        if (v.f16) kt.axpy_f16(out, reinterpret_cast<const uint16_t*>(vr), scores[j - j0], head_dim);
        else kt.axpy_f32(out, reinterpret_cast<const float*>(vr), scores[j - j0], head_dim);
    }
}

}  // namespace ember
