// forward.h — the transformer forward pass over a batch of tokens, and the buffers it works in.
//
// The buffers are sized once for the largest micro-batch (n_batch tokens) and the context, so
// the pass allocates nothing per token.
#pragma once

#include <cstdint>
#include <vector>

#include "batch.h"
#include "kv_cache.h"
#include "model/model.h"
#include "ops/matmul.h"
#include "quants/dispatch.h"

namespace ember {

class ThreadPool;

struct ForwardBuffers {
    ForwardBuffers(const HParams& hp, int32_t n_batch, int32_t n_ctx, int n_threads);

    int32_t n_batch, n_ctx;
    std::vector<float> x;          // [n_batch, n_embd] the residual stream
    std::vector<float> xb;         // [n_batch, n_embd] a block's normalized input
    std::vector<float> q, k, v;    // [n_batch, q_dim], [n_batch, k_dim], [n_batch, v_dim]
    std::vector<float> att;        // [n_batch, q_dim] attention output, heads side by side
    std::vector<float> proj;       // [n_batch, n_embd] a block's output before the residual add
    std::vector<float> gate, up;   // [n_batch, n_ff]
    std::vector<float> rope_cs;    // [n_batch, rope.n_dims] cos/sin per token, global layers
    std::vector<float> rope_cs_swa;// [n_batch, rope_swa.n_dims] sliding-window layers
    // attention: work items (a run of one sequence's tokens x a KV head x some of its query
    // heads) and per-thread scratch for the kernel and its query lists
    struct AttnTask {
        int32_t token, n_tokens;   // micro-batch tokens [token, token + n_tokens), one sequence
        int32_t kv_head, head0, n_heads;
    };
    std::vector<AttnTask> attn_tasks;
    size_t attn_scratch_floats, attn_max_queries;
    std::vector<float> attn_scratch;            // [n_threads, attn_scratch_floats]
    std::vector<const float*> attn_q;           // [n_threads, attn_max_queries]
    std::vector<float*> attn_out;
    std::vector<int32_t> attn_first, attn_last;
    std::vector<int32_t> out_rows; // tokens of the micro-batch that want logits
    MatmulScratch mm;
};

// Runs tokens [begin, end) of the batch (at most n_batch; already validated, their KV rows
// reserved) through the model, writing their keys and values into the cache, and the logits
// of those that asked into `logits` (one row of n_vocab per such token, in batch order).
void forward(const Model& model, const Batch& batch, int32_t begin, int32_t end, KVCache& kv, ThreadPool& pool,
             ForwardBuffers& buf, const KernelTable& k, float* logits);

}  // namespace ember
