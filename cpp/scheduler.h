// scheduler.h — continuous batching: many requests share one Context, each engine step runs one
// forward pass holding a token of every request that is decoding and chunks of the prompts of
// the others, and requests join and leave between steps.
//
// A request is its tokens (prompt + generated) and n_computed, how many of them are in its KV
// sequence; the tokens past n_computed are pending. A step builds one Batch: first the single
// pending token of every decoding request (oldest admitted first), then chunks of pending
// tokens of the others until token_budget tokens are used. Logits are asked for a request's last
// pending token when its chunk reaches it; the request then samples a token, appends it and
// reports it in an event (text via TextStream, so stop strings behave as in Generation).
//
// KV blocks. Waiting requests are admitted first come, first served while a sequence slot is
// free and the pool holds the blocks of their first chunk plus a reserve of one block per running
// request (room for decodes to grow). When a decode finds no block, the most recently admitted
// request is preempted by recompute: its sequence is freed and it goes back to the front of the
// queue keeping its tokens, its sampler and its text state, so nothing is emitted twice and the
// continuation is the same. A request the whole pool cannot hold ends with an error event.
//
// Prefix sharing (PrefixCache): every full block a sequence computes is cached; an admitted
// request adopts the longest cached run of blocks its tokens begin with, always leaving its last
// token to compute (it needs that token's logits). A waiting request whose first blocks a running
// request is still computing (n > 1 choices of one prompt; one system prompt arriving in a
// burst) is admitted once they are cached, so each shared block is computed once.
//
// Results do not depend on the company a request keeps: the forward pass computes each token's
// outputs with the same operations whatever the batch (context.h), and each request samples
// from its own logits with its own seeded Sampler, so a request gives the same tokens alone or
// among others, chunked or not, preempted or not, with prefix hits or without.
//
// Threads. step() is called from one thread (the engine thread). submit(), cancel(), has_work()
// and stats() may be called from any thread at any time: they take a mutex that step() holds
// only while it admits requests and builds the batch and while it retires finished ones, never
// during the forward pass or sampling (which runs a request per task on the context's threads).
// While the forward pass runs, a cancel of a request in the batch is recorded and completed when
// the pass returns.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "batch.h"
#include "context.h"
#include "generate.h"
#include "prefix_cache.h"

namespace ember {

struct SchedulerParams {
    int32_t token_budget = 512;  // tokens per step: decodes first, then prompt chunks
    bool prefix_cache = true;
};

constexpr int32_t kMaxTopLogprobs = 20;

struct RequestParams {
    GenerateParams gen;
    int32_t logprobs = -1;  // < 0: none; k in [0, kMaxTopLogprobs]: each token's log-probability and the k best
};

struct TokenLogprob {
    int32_t token = -1;
    float logprob = 0;                             // log-softmax of the raw logits at the token
    std::vector<std::pair<int32_t, float>> top;    // the k most probable (id, logprob), best first
};

struct SchedulerEvent {
    int64_t id = 0;
    std::string text;                  // newly emitted text (may be empty: held back, or none)
    std::vector<int32_t> tokens;       // newly sampled ids
    std::vector<TokenLogprob> logprobs;  // one per token when the request asked for them
    bool finished = false;
    FinishReason finish_reason = FinishReason::None;
    std::string error;                 // finish_reason Error: why
    int32_t n_prompt = 0;
    int32_t n_generated = 0;
};

struct SchedulerStats {
    int32_t running = 0, waiting = 0;
    int32_t kv_blocks_used = 0, kv_blocks_total = 0;  // used includes blocks only the prefix cache holds
    int32_t prefix_cache_blocks = 0;
    int64_t prefix_queries = 0, prefix_hit_blocks = 0, prefix_hit_tokens = 0;
    int64_t preemptions = 0;
    int64_t prompt_tokens_total = 0;     // prompt tokens of requests that started
    int64_t generated_tokens_total = 0;  // tokens sampled
    int64_t computed_tokens_total = 0;   // tokens run through the model (recomputation included)
    int64_t steps = 0;
    int32_t last_step_tokens = 0, last_step_requests = 0;  // the last forward pass: tokens, requests in it
};

class Scheduler {
public:
    // ctx must outlive the scheduler and be used by nothing else meanwhile; its n_seq_max is the
    // most requests running at once, its KV pool their blocks.
    Scheduler(Context& ctx, const SchedulerParams& params);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Queue a request; returns its id. Throws ArgumentError for an empty prompt, a token id out
    // of range, a prompt longer than n_ctx, bad sampling parameters, empty stop strings or a
    // logprobs count above kMaxTopLogprobs.
    int64_t submit(std::vector<int32_t> prompt, const RequestParams& params);
    // Drop a request now, queued or running: its sequence and blocks are freed (when it is in the
    // forward pass running at that moment: as soon as the pass returns), and the next step()
    // reports it finished with reason Cancelled. Unknown or finished ids: nothing happens.
    void cancel(int64_t id);
    // One engine step (admit, one forward pass, sample); returns what happened. Never throws for
    // a request's sake: a request that cannot run ends with an Error event.
    std::vector<SchedulerEvent> step();
    bool has_work() const;  // requests queued or running, or events not yet returned
    SchedulerStats stats() const;
    const Context& context() const { return ctx_; }

private:
    struct Request;
    struct Slot {  // one request's tokens in the batch
        Request* req;
        int32_t n;        // tokens
        int32_t out_row;  // its logits row, or -1
    };

    // Under mu_:
    void admit(std::vector<SchedulerEvent>& events);
    void build_batch(std::vector<SchedulerEvent>& events);
    bool try_build_batch(std::vector<SchedulerEvent>& events);
    void preempt(Request* r);
    void release(Request* r);  // free r's sequence (its cached blocks stay in the cache)
    void retire(Request* r, FinishReason reason, const std::string& error, std::vector<SchedulerEvent>& events);
    int32_t blocks_available() const;  // free blocks plus cached blocks that could be evicted
    bool awaits_shared_prefix(const Request& r) const;
    void snapshot();
    // Engine thread only, outside mu_:
    void register_blocks(Request* r);
    void sample(Request* r, const float* logits);
    void fill_logprobs(const float* logits, int32_t token, int32_t k, TokenLogprob* out) const;

    Context& ctx_;
    KVCache& kv_;
    SchedulerParams params_;
    int32_t block_size_;
    std::unique_ptr<PrefixCache> cache_;  // null when prefix sharing is off

    mutable std::mutex mu_;
    std::unordered_map<int64_t, std::unique_ptr<Request>> requests_;  // every live request
    std::deque<Request*> waiting_;
    std::vector<Request*> running_;  // admission order, oldest first
    std::vector<SchedulerEvent> pending_events_;  // from cancel() and submit(), for the next step
    bool in_flight_ = false;  // the forward pass runs: running requests belong to the engine thread
    int64_t next_id_ = 1;
    SchedulerStats stats_;

    Batch batch_;
    std::vector<Slot> slots_;
    std::vector<const Slot*> sampling_;  // this step's slots with a logits row
};

}  // namespace ember
