// context.cpp — see context.h.
#include "context.h"

#include <algorithm>

#include "common.h"
#include "quants/dispatch.h"

namespace ember {

static ContextParams checked(const ContextParams& p) {
    if (p.n_ctx <= 0) fail<ArgumentError>("n_ctx must be positive, got ", p.n_ctx);
    if (p.n_ctx > (1 << 24)) fail<ArgumentError>("n_ctx ", p.n_ctx, " is too large (at most ", 1 << 24, ")");
    if (p.n_seq_max <= 0 || p.n_seq_max > 4096) fail<ArgumentError>("n_seq_max must be in [1, 4096], got ", p.n_seq_max);
    if (p.n_batch <= 0 || p.n_batch > 1 << 16) fail<ArgumentError>("n_batch must be in [1, 65536], got ", p.n_batch);
    if (p.n_threads < 0 || p.n_threads > 1024) fail<ArgumentError>("n_threads must be in [0, 1024] (0: one per CPU), got ", p.n_threads);
    if (p.kv_type != GGMLType::F16 && p.kv_type != GGMLType::F32)
        fail<ArgumentError>("kv_type must be f16 or f32, got ", type_traits(p.kv_type).name);
    if (p.kv_block_size <= 0 || p.kv_block_size > 4096)
        fail<ArgumentError>("kv_block_size must be in [1, 4096], got ", p.kv_block_size);
    if (p.n_kv_blocks < 0) fail<ArgumentError>("n_kv_blocks must be >= 0 (0: sized from n_ctx x n_seq_max), got ", p.n_kv_blocks);
    ContextParams out = p;
    if (out.n_threads == 0) out.n_threads = default_thread_count();
    return out;
}

KVCacheParams kv_cache_params(const HParams& hp, const ContextParams& p) {
    KVCacheParams kp;
    kp.n_layer = hp.n_layer;
    kp.k_dim = hp.k_dim();
    kp.v_dim = hp.v_dim();
    kp.n_head = hp.n_head_kv;
    kp.block_size = p.kv_block_size;
    kp.n_seq_max = p.n_seq_max;
    kp.type = p.kv_type;
    const int64_t per_seq = (int64_t(p.n_ctx) + p.kv_block_size - 1) / p.kv_block_size;
    const int64_t n_blocks = p.n_kv_blocks > 0 ? p.n_kv_blocks : per_seq * p.n_seq_max;
    if (n_blocks > INT32_MAX) fail<ArgumentError>("n_ctx x n_seq_max is too large");
    kp.n_blocks = int32_t(n_blocks);
    return kp;
}

Context::Context(std::shared_ptr<const Model> model, const ContextParams& params)
    : model_(std::move(model)),
      params_(checked(params)),
      kv_(kv_cache_params(model_->hparams(), params_)),
      pool_(params_.n_threads),
      buf_(model_->hparams(), std::min(params_.n_batch, params_.n_ctx * params_.n_seq_max), params_.n_ctx, params_.n_threads),
      kernels_(kernels()) {
    seq_new_tokens_.assign(size_t(params_.n_seq_max), 0);
    logits_.resize(size_t(params_.n_seq_max) * size_t(n_vocab()));
}

void Context::validate(const Batch& b) {
    const int32_t n = b.size();
    if (n == 0) fail<ArgumentError>("empty batch");
    if (b.pos.size() != size_t(n) || b.seq.size() != size_t(n) || b.logits.size() != size_t(n))
        fail<ArgumentError>("batch arrays differ in length");
    std::fill(seq_new_tokens_.begin(), seq_new_tokens_.end(), 0);
    for (int32_t i = 0; i < n; ++i) {
        const int32_t tok = b.token[size_t(i)], s = b.seq[size_t(i)], pos = b.pos[size_t(i)];
        if (tok < 0 || tok >= n_vocab())
            fail<ArgumentError>("token id ", tok, " is out of range (vocabulary of ", n_vocab(), ")");
        if (!kv_.seq_exists(s)) fail<ArgumentError>("batch token ", i, ": no sequence with id ", s);
        const int32_t expect = kv_.seq_len(s) + seq_new_tokens_[size_t(s)];
        if (pos != expect)
            fail<ArgumentError>("batch token ", i, ": sequence ", s, " continues at position ", expect, ", got ", pos);
        if (expect >= params_.n_ctx)
            fail<ArgumentError>("sequence ", s, " would exceed the context size (n_ctx = ", params_.n_ctx, " tokens)");
        ++seq_new_tokens_[size_t(s)];
    }
    int64_t need = 0;
    for (int32_t s = 0; s < params_.n_seq_max; ++s)
        if (seq_new_tokens_[size_t(s)] > 0) need += kv_.blocks_needed(s, seq_new_tokens_[size_t(s)]);
    if (need > kv_.n_blocks_free())
        fail<CapacityError>("KV cache full: the batch needs ", need, " blocks, ", kv_.n_blocks_free(), " of ",
                            kv_.params().n_blocks, " are free");
}

const float* Context::decode(const Batch& b) {
    validate(b);
    for (int32_t s = 0; s < params_.n_seq_max; ++s)
        if (seq_new_tokens_[size_t(s)] > 0) kv_.reserve(s, seq_new_tokens_[size_t(s)]);
    n_outputs_ = b.n_outputs();
    const size_t need = size_t(n_outputs_) * size_t(n_vocab());
    if (logits_.size() < need) logits_.resize(need);  // grows to the largest request, then stays

    const int32_t step = buf_.n_batch;
    int32_t out_row = 0;
    for (int32_t begin = 0; begin < b.size(); begin += step) {
        const int32_t end = std::min(b.size(), begin + step);
        forward(*model_, b, begin, end, kv_, pool_, buf_, kernels_, logits_.data() + size_t(out_row) * size_t(n_vocab()));
        // the micro-batch's rows are in the cache now: later micro-batches attend to them
        for (int32_t i = begin; i < end; ++i) kv_.commit(b.seq[size_t(i)], 1);
        for (int32_t i = begin; i < end; ++i) out_row += b.logits[size_t(i)] != 0;
    }
    return logits_.data();
}

}  // namespace ember
