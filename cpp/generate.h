// generate.h — one sequence from prompt to finish: prefill, then sample / decode one token at a
// time, turning tokens into text as it goes and ending on EOS, a stop string, max_tokens or
// the context size. `main`, the Python binding and (later) the server all generate through it.
//
// Stop strings are never emitted: text that could still turn out to be the start of a stop
// string is held back until it cannot (or the generation ends). When one appears, the text
// ends right before it and the finish reason is "stop"; EOS (any end-of-generation token)
// also gives "stop" and is not part of the text. max_tokens or a full context give "length".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "batch.h"
#include "context.h"
#include "sampler.h"
#include "text_stream.h"
#include "tokenizer/tokenizer.h"

namespace ember {

struct GenerateParams {
    SamplingParams sampling;
    int32_t max_tokens = -1;          // < 0: until EOS or the context is full
    std::vector<std::string> stop;    // stop strings
    bool ignore_eos = false;          // keep going past end-of-generation tokens
    bool skip_special = true;         // leave control tokens out of the text
};

// Error and Cancelled end only scheduled requests (cpp/scheduler.h): a request that can never
// fit in the KV pool, or one its caller cancelled.
enum class FinishReason { None, Stop, Length, Error, Cancelled };
const char* finish_reason_name(FinishReason r);  // "", "stop", "length", "error", "cancelled"

struct GenerationStats {
    int32_t n_prompt = 0;         // prompt tokens evaluated
    int32_t n_generated = 0;      // tokens sampled
    double prompt_seconds = 0;    // prefill, up to the first sampled token
    double generate_seconds = 0;  // everything after
};

class Generation {
public:
    // Takes a sequence slot in the context's KV cache for as long as it lives. Throws
    // ArgumentError for an empty prompt, an id out of range or a prompt longer than n_ctx,
    // CapacityError when no sequence slot or too few KV blocks are free.
    Generation(Context& ctx, std::vector<int32_t> prompt, const GenerateParams& params);
    // Continue in an existing sequence of the caller's whose first n_cached tokens are
    // prompt[0 .. n_cached) (n_cached < prompt.size(), and the sequence holds no more): only the
    // rest of the prompt is evaluated. The sequence stays the caller's — it is not freed, and
    // when the generation ends it holds the prompt and every sampled token but the last (which
    // was never evaluated): seq_len() tokens in all. A conversation reuses its history this way.
    Generation(Context& ctx, std::vector<int32_t> prompt, const GenerateParams& params, int32_t seq, int32_t n_cached);
    ~Generation();
    Generation(const Generation&) = delete;
    Generation& operator=(const Generation&) = delete;

    // Computes until some text is ready or the generation ends; returns that text (possibly
    // empty at the very end). Calling it after done() returns "".
    std::string next();
    bool done() const { return finish_ != FinishReason::None; }
    FinishReason finish_reason() const { return finish_; }
    const std::vector<int32_t>& prompt() const { return prompt_; }
    const std::vector<int32_t>& tokens() const { return tokens_; }  // sampled ids (EOS included)
    const std::string& text() const { return text_.emitted(); }     // everything next() returned
    const GenerationStats& stats() const { return stats_; }
    int32_t seq_id() const { return seq_; }

private:
    struct Common {};
    Generation(Context& ctx, std::vector<int32_t> prompt, const GenerateParams& params, Common);
    void prefill();
    void evaluate();                  // decode batch_ and keep its logits
    void step();                      // sample one token, decode it, feed it back
    void finish(FinishReason r);

    Context& ctx_;
    std::vector<int32_t> prompt_;
    GenerateParams params_;
    Sampler sampler_;
    TextStream text_;
    Batch batch_;
    int32_t seq_ = -1;
    bool owns_seq_ = true;
    int32_t n_cached_ = 0;            // prompt tokens already in the sequence
    // The last evaluated token's logits, copied out of the context: other generations may use
    // the context between two calls of next().
    std::vector<float> logits_;
    bool prefilled_ = false;
    FinishReason finish_ = FinishReason::None;
    std::vector<int32_t> tokens_;
    GenerationStats stats_;
};

}  // namespace ember
