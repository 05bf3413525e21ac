// matmul.h — y = x · Wᵀ for a batch of activation rows against a weight matrix in any ggml
// type, the matrix used in place.
//
// Two paths, chosen by the weight type:
//   - integer (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K): the activations are quantized
//     once per call (quants/qdot.h) and tiles of up to 4 rows x 4 tokens take integer dot
//     products; tokens are walked in blocks that stay in cache while the rows stream past;
//   - float (F32, F16, BF16 and the rest): each output is one dot_f32 / dot_f16 over the whole
//     row, the weight rows dequantized a few at a time into per-thread scratch when needed.
// The weight rows are split over the pool's threads. In both paths an output element is
// computed by the same sequence of operations whatever the batch and thread count, so a
// sequence decodes to the same bits alone or among others (batch invariance).
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

// Per-thread scratch for dequantized weight rows, and room for the quantized activations of
// n_tokens rows (one buffer per activation format: one call may mix weight types).
class MatmulScratch {
public:
    MatmulScratch(int n_threads, int64_t max_row_length, int64_t max_tokens);
    float* thread(int t) { return buf_.data() + size_t(t) * per_thread_; }
    uint8_t* act(ActFormat f) { return act_[size_t(f)].data(); }
    int64_t max_tokens() const { return max_tokens_; }
    int64_t max_row_length() const { return max_row_; }
    static constexpr int64_t kRowsPerChunk = 8;

private:
    size_t per_thread_;
    std::vector<float> buf_;
    std::vector<uint8_t> act_[3];
    int64_t max_tokens_, max_row_;
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
