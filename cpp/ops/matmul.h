// matmul.h — y = x · Wᵀ for a batch of activation rows against a weight matrix in any ggml
// type, the matrix used in place.
//
// The weight rows are split over the pool's threads; each thread dequantizes a few rows at a
// time into its own scratch and takes their dot products with every activation row. An output
// element is always one dot_f32 over the whole row, so its value does not depend on the batch
// it is part of or on the thread count (batch invariance: a sequence decodes to the same bits
// alone or among others). F32 and F16 weights are read directly without the scratch copy.
#pragma once

#include <cstdint>
#include <vector>

#include "quants/dispatch.h"
#include "tensor.h"

namespace ember {

class ThreadPool;

// One weight matrix and where its outputs go: y[t * ldy + r] for row r of w and token t.
struct MatmulOut {
    const TensorView* w;
    float* y;
    int64_t ldy;
};

// Per-thread scratch for dequantized weight rows.
class MatmulScratch {
public:
    MatmulScratch(int n_threads, int64_t max_row_length);
    float* thread(int t) { return buf_.data() + size_t(t) * per_thread_; }
    static constexpr int64_t kRowsPerChunk = 8;

private:
    size_t per_thread_;
    std::vector<float> buf_;
};

// For each output: y = x · wᵀ, with x n_tokens rows of w.ne0 floats at stride ldx. All
// matrices share x (q/k/v, or gate/up): one parallel pass over their rows together.
void matmul(const MatmulOut* outs, int n_outs, const float* x, int64_t ldx, int64_t n_tokens, ThreadPool& pool,
            MatmulScratch& scratch, const KernelTable& k);

inline void matmul(const TensorView& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
                   ThreadPool& pool, MatmulScratch& scratch, const KernelTable& k) {
    const MatmulOut out{&w, y, ldy};
    matmul(&out, 1, x, ldx, n_tokens, pool, scratch, k);
}

}  // namespace ember
