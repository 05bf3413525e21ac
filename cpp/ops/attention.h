// attention.h — scaled dot-product attention over keys and values stored in fixed-size blocks
// (paged), fp16 or f32.
//
// attend() takes one query; attend_batch() a set of queries that read the same keys and values
// (one KV head of one sequence: the heads of a GQA group, several tokens). The caller picks the
// positions each query may see (causal, and a window where the layer has one); this file knows
// nothing of sequences or models. The batched kernel walks the keys in tiles of 16 positions
// (at multiples of 16, whatever the cache's block size) with an online softmax, converting each
// tile of keys and values to f32 once for all the queries; a query's result depends only on the
// query, its range and the keys — not on which other queries share its batch. Both kernels take
// keys either way (rows, or dimension-major) and values as rows.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ember {

struct KernelTable;

// Rows of one KV head: position j is in blocks[j / block_size], row j % block_size; element i of
// a row is dim_stride bytes after element i - 1. Values lie row by row (dim_stride: the element
// size); keys dimension-major, as the cache keeps them (kv_cache.h: row_stride is the element
// size, dim_stride block_size elements).
struct PagedRows {
    const uint8_t* base = nullptr;  // block 0, row 0 of this head
    uint64_t block_stride = 0;      // bytes between blocks
    uint64_t row_stride = 0;        // bytes between rows of a block
    int32_t block_size = 1;
    const int32_t* blocks = nullptr;
    bool f16 = true;                // elements are fp16 (else f32)
    uint64_t dim_stride = 0;        // bytes between a row's elements; 0: the element size

    uint64_t elem_bytes() const { return f16 ? 2 : 4; }
    uint64_t element_stride() const { return dim_stride ? dim_stride : elem_bytes(); }
    // rows interleaved element by element (with one row per block the two layouts are one)
    bool dim_major() const { return row_stride == elem_bytes() && element_stride() != elem_bytes(); }
    // element 0 of row j
    const uint8_t* row(int32_t j) const {
        return base + uint64_t(blocks[j / block_size]) * block_stride + uint64_t(j % block_size) * row_stride;
    }
};

// out[head_dim] = sum_j softmax_j(scale * q . k_j) * v_j over j in [j0, j1] (inclusive).
// scores: scratch for j1 - j0 + 1 floats.
void attend(const float* q, int32_t head_dim, const PagedRows& k, const PagedRows& v, int32_t j0, int32_t j1, float scale,
            float* scores, float* out, const KernelTable& kt);

// Ask for the keys and values of positions [j0, j1] (at most max_bytes of them) to come into
// the L2 cache: for a work item a thread is about to take.
void prefetch_kv(const PagedRows& k, const PagedRows& v, int32_t j0, int32_t j1, int32_t head_dim, uint64_t max_bytes);

// Query i: head_dim floats at q[i], sees positions [first[i], last[i]], writes out[i].
struct AttnQueries {
    const float* const* q;
    float* const* out;
    const int32_t* first;
    const int32_t* last;
    int32_t n;
};

using AttendBatchFn = void (*)(const AttnQueries& qs, int32_t head_dim, const PagedRows& k, const PagedRows& v, float scale,
                               float* scratch, const KernelTable& kt);
// Floats of scratch attend_batch needs for n queries of head_dim over a context of n_ctx.
size_t attend_batch_scratch(int32_t n, int32_t head_dim, int32_t n_ctx);

namespace ref {
// One attend() per query (the specification).
void attend_batch(const AttnQueries& qs, int32_t head_dim, const PagedRows& k, const PagedRows& v, float scale,
                  float* scratch, const KernelTable& kt);
}  // namespace ref
namespace avx2 {
void attend_batch(const AttnQueries& qs, int32_t head_dim, const PagedRows& k, const PagedRows& v, float scale,
                  float* scratch, const KernelTable& kt);
}  // namespace avx2

}  // namespace ember
