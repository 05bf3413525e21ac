// attention.h — scaled dot-product attention of one query head over keys and values stored in
// fixed-size blocks (paged), fp16 or f32.
//
// The caller picks the range of positions [j0, j1] the query may see (causal, and a sliding
// window where the layer has one); this file knows nothing of sequences or models.
#pragma once

#include <cstdint>

#include "quants/dispatch.h"

namespace ember {

// Rows of one KV head: position j is in blocks[j / block_size], row j % block_size.
struct PagedRows {
    const uint8_t* base = nullptr;  // block 0, row 0 of this head
    uint64_t block_stride = 0;      // bytes between blocks
    uint64_t row_stride = 0;        // bytes between rows of a block
    int32_t block_size = 1;
    const int32_t* blocks = nullptr;
    bool f16 = true;                // elements are fp16 (else f32)

    const uint8_t* row(int32_t j) const {
        return base + uint64_t(blocks[j / block_size]) * block_stride + uint64_t(j % block_size) * row_stride;
    }
};

// out[head_dim] = sum_j softmax_j(scale * q . k_j) * v_j over j in [j0, j1] (inclusive).
// scores: scratch for j1 - j0 + 1 floats.
void attend(const float* q, int32_t head_dim, const PagedRows& k, const PagedRows& v, int32_t j0, int32_t j1, float scale,
            float* scores, float* out, const KernelTable& kt);

}  // namespace ember
