// matmul.cpp — see matmul.h.
#include "ops/matmul.h"

#include <algorithm>

#include "threadpool.h"

namespace ember {

MatmulScratch::MatmulScratch(int n_threads, int64_t max_row_length)
    : per_thread_(size_t(max_row_length * kRowsPerChunk)), buf_(size_t(n_threads) * per_thread_) {}

// Rows [r0, r1) of one matrix against every token.
static void matmul_rows(const MatmulOut& o, int64_t r0, int64_t r1, const float* x, int64_t ldx, int64_t n_tokens,
                        float* scratch, const KernelTable& k) {
    const TensorView& w = *o.w;
    const int64_t n = w.ne0;
    if (w.type == GGMLType::F32 || w.type == GGMLType::F16) {
        for (int64_t r = r0; r < r1; ++r) {
            const uint8_t* row = w.row(r);
            for (int64_t t = 0; t < n_tokens; ++t)
                o.y[t * o.ldy + r] = w.type == GGMLType::F32 ? k.dot_f32(reinterpret_cast<const float*>(row), x + t * ldx, n)
                                                             : k.dot_f16(reinterpret_cast<const uint16_t*>(row), x + t * ldx, n);
        }
        return;
    }
    const DequantizeRowFn dequantize = k.dequantize[uint32_t(w.type)];
    for (int64_t c0 = r0; c0 < r1; c0 += MatmulScratch::kRowsPerChunk) {
        const int64_t c1 = std::min(r1, c0 + MatmulScratch::kRowsPerChunk);
        for (int64_t r = c0; r < c1; ++r) dequantize(w.row(r), scratch + (r - c0) * n, n);
        for (int64_t t = 0; t < n_tokens; ++t) {
            const float* xt = x + t * ldx;
            for (int64_t r = c0; r < c1; ++r) o.y[t * o.ldy + r] = k.dot_f32(scratch + (r - c0) * n, xt, n);
        }
    }
}

void matmul(const MatmulOut* outs, int n_outs, const float* x, int64_t ldx, int64_t n_tokens, ThreadPool& pool,
            MatmulScratch& scratch, const KernelTable& k) {
    int64_t total = 0;
    for (int i = 0; i < n_outs; ++i) total += outs[i].w->n_rows;
    pool.parallel_for(total, [&](int64_t begin, int64_t end, int thread) {
        // Walk the concatenated row range, one matrix at a time.
        int64_t offset = 0;
        for (int i = 0; i < n_outs && begin < end; ++i) {
            const int64_t rows = outs[i].w->n_rows;
            const int64_t lo = std::max(begin, offset), hi = std::min(end, offset + rows);
            if (lo < hi) matmul_rows(outs[i], lo - offset, hi - offset, x, ldx, n_tokens, scratch.thread(thread), k);
            offset += rows;
        }
    });
}

}  // namespace ember
