// generate.cpp — see generate.h.
#include "generate.h"

#include <algorithm>
#include <chrono>

#include "common.h"

namespace ember {

using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

const char* finish_reason_name(FinishReason r) {
    switch (r) {
        case FinishReason::Stop: return "stop";
        case FinishReason::Length: return "length";
        case FinishReason::Error: return "error";
        case FinishReason::Cancelled: return "cancelled";
        default: return "";
    }
}

static std::vector<int32_t> checked_prompt(const Context& ctx, std::vector<int32_t> prompt) {
    if (prompt.empty()) fail<ArgumentError>("the prompt is empty (no tokens)");
    for (int32_t id : prompt)
        if (id < 0 || id >= ctx.n_vocab())
            fail<ArgumentError>("prompt token id ", id, " is out of range (vocabulary of ", ctx.n_vocab(), ")");
    if (int64_t(prompt.size()) > ctx.n_ctx())
        fail<ArgumentError>("the prompt has ", prompt.size(), " tokens, more than the context size (n_ctx = ", ctx.n_ctx(), ")");
    return prompt;
}

// What both constructors share: the checks of the prompt and the stop strings, the buffers.
Generation::Generation(Context& ctx, std::vector<int32_t> prompt, const GenerateParams& params, Common)
    : ctx_(ctx),
      prompt_(checked_prompt(ctx, std::move(prompt))),
      params_(params),
      sampler_(params.sampling, ctx.n_vocab()),
      text_(ctx.model().tokenizer(), params.stop, params.skip_special) {
    if (params_.max_tokens > 0) tokens_.reserve(size_t(params_.max_tokens));
    logits_.resize(size_t(ctx.n_vocab()));
}

Generation::Generation(Context& ctx, std::vector<int32_t> prompt, const GenerateParams& params)
    : Generation(ctx, std::move(prompt), params, Common{}) {
    const int32_t need = (int32_t(prompt_.size()) + ctx.kv().params().block_size - 1) / ctx.kv().params().block_size;
    if (need > ctx.kv().n_blocks_free())
        fail<CapacityError>("KV cache full: the prompt needs ", need, " blocks, ", ctx.kv().n_blocks_free(), " are free");
    seq_ = ctx_.kv().seq_new();
}

Generation::Generation(Context& ctx, std::vector<int32_t> prompt, const GenerateParams& params, int32_t seq,
                       int32_t n_cached)
    : Generation(ctx, std::move(prompt), params, Common{}) {
    if (!ctx.kv().seq_exists(seq)) fail<ArgumentError>("no sequence with id ", seq);
    if (n_cached < 0 || n_cached >= int32_t(prompt_.size()) || ctx.kv().seq_len(seq) != n_cached)
        fail<ArgumentError>("sequence ", seq, " holds ", ctx.kv().seq_len(seq), " tokens; a continuation needs it to hold ",
                            "exactly n_cached (", n_cached, ") tokens, fewer than the prompt's ", prompt_.size());
    seq_ = seq;
    owns_seq_ = false;
    n_cached_ = n_cached;
}

void Generation::evaluate() {
    const float* row = ctx_.decode(batch_);
    std::copy(row, row + logits_.size(), logits_.begin());
}

Generation::~Generation() {
    if (owns_seq_ && seq_ >= 0 && ctx_.kv().seq_exists(seq_)) ctx_.kv().seq_free(seq_);
}

void Generation::prefill() {
    const auto t0 = Clock::now();
    prefilled_ = true;
    for (int32_t id : prompt_) sampler_.accept(id);
    if (params_.max_tokens == 0) {
        finish(FinishReason::Length);
        return;
    }
    batch_.clear();
    for (size_t i = size_t(n_cached_); i < prompt_.size(); ++i) batch_.add(prompt_[i], int32_t(i), seq_, i + 1 == prompt_.size());
    evaluate();
    stats_.n_prompt = int32_t(prompt_.size()) - n_cached_;
    stats_.prompt_seconds = seconds_since(t0);
}

void Generation::finish(FinishReason r) {
    finish_ = r;
    // Release the sequence now: a finished generation holds no KV blocks while its text is read.
    if (owns_seq_ && seq_ >= 0 && ctx_.kv().seq_exists(seq_)) ctx_.kv().seq_free(seq_);
    if (owns_seq_) seq_ = -1;
}

void Generation::step() {
    const Tokenizer& tok = ctx_.model().tokenizer();
    const int32_t id = sampler_.sample(logits_.data());
    tokens_.push_back(id);
    ++stats_.n_generated;
    if (!params_.ignore_eos && tok.is_eog(id)) {
        text_.flush();
        finish(FinishReason::Stop);
        return;
    }
    sampler_.accept(id);
    if (text_.push(id)) {
        finish(FinishReason::Stop);
        return;
    }
    const int32_t len = ctx_.kv().seq_len(seq_);
    if ((params_.max_tokens >= 0 && stats_.n_generated >= params_.max_tokens) || len >= ctx_.n_ctx()) {
        text_.flush();
        finish(FinishReason::Length);
        return;
    }
    batch_.clear();
    batch_.add(id, len, seq_, true);
    evaluate();
}

std::string Generation::next() {
    if (done()) return text_.take_ready(true);
    if (!prefilled_) {
        prefill();
        if (done()) return text_.take_ready(true);
    }
    const auto t1 = Clock::now();
    std::string ready;
    while (!done() && ready.empty()) {
        step();
        ready = text_.take_ready(done());
    }
    stats_.generate_seconds += seconds_since(t1);
    return ready;
}

}  // namespace ember
