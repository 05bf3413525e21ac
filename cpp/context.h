// context.h — an inference context over a loaded model: the paged KV cache, the thread pool,
// the forward buffers, and decode(batch), the one entry point that runs the model.
//
// decode() checks the whole batch before anything runs (token ids, sequences, positions,
// context size, free KV blocks) and then evaluates it in micro-batches of at most n_batch
// tokens. A Context is used by one thread at a time (callers serialize); the Model it reads
// may be shared.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "batch.h"
#include "kv_cache.h"
#include "model/forward.h"
#include "model/model.h"
#include "quants/types.h"
#include "threadpool.h"

namespace ember {

struct ContextParams {
    int32_t n_ctx = 4096;      // tokens per sequence at most
    int32_t n_seq_max = 1;     // sequences at once; the KV pool holds n_ctx x n_seq_max tokens
    int32_t n_batch = 512;     // tokens per forward micro-batch
    int32_t n_threads = 0;     // 0: one per hardware thread
    GGMLType kv_type = GGMLType::F16;
    int32_t kv_block_size = 16;
    int32_t n_kv_blocks = 0;   // 0: enough for every sequence at n_ctx; fewer lets sequences compete
};

class Context {
public:
    Context(std::shared_ptr<const Model> model, const ContextParams& params);  // throws ArgumentError

    const Model& model() const { return *model_; }
    std::shared_ptr<const Model> model_ptr() const { return model_; }
    const ContextParams& params() const { return params_; }
    KVCache& kv() { return kv_; }
    const KVCache& kv() const { return kv_; }
    int32_t n_ctx() const { return params_.n_ctx; }
    int32_t n_vocab() const { return model_->hparams().n_vocab; }
    int n_threads() const { return pool_.size(); }
    // The pass's threads, idle between passes: for per-sequence work on its outputs (sampling).
    ThreadPool& pool() { return pool_; }

    // Evaluates the batch; returns the logits of the tokens that asked for them, n_outputs()
    // rows of n_vocab in batch order, valid until the next call. Throws ArgumentError for a
    // malformed batch or a sequence that would outgrow n_ctx, CapacityError when the KV pool
    // has too few free blocks; either way nothing has changed.
    const float* decode(const Batch& batch);
    int32_t n_outputs() const { return n_outputs_; }

private:
    void validate(const Batch& batch);

    std::shared_ptr<const Model> model_;
    ContextParams params_;
    KVCache kv_;
    ThreadPool pool_;
    ForwardBuffers buf_;
    const KernelTable& kernels_;
    std::vector<float> logits_;
    int32_t n_outputs_ = 0;
    std::vector<int32_t> seq_new_tokens_;  // per sequence slot, during validation
};

// The KV cache geometry a context with these parameters would allocate (for reports).
KVCacheParams kv_cache_params(const HParams& hp, const ContextParams& p);

}  // namespace ember
