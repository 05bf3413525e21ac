// scheduler.cpp — see scheduler.h.
#include "scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common.h"
#include "sampler.h"
#include "text_stream.h"

namespace ember {

struct Scheduler::Request {
    Request(int64_t id_, std::vector<int32_t> prompt, const RequestParams& p, const Tokenizer& tok)
        : id(id_), params(p), tokens(std::move(prompt)), n_prompt(int32_t(tokens.size())),
          text(tok, p.gen.stop, p.gen.skip_special) {}

    int64_t id;
    RequestParams params;
    std::vector<int32_t> tokens;     // prompt + generated
    int32_t n_prompt;
    int32_t n_computed = 0;          // tokens[0 .. n_computed) are in the KV sequence
    int32_t seq = -1;                // >= 0 exactly while running
    // Made at the first admission (its buffers are n_vocab long: queued requests do not pay for
    // them) and kept across preemptions, so the draws continue where they were.
    std::unique_ptr<Sampler> sampler;
    TextStream text;
    PrefixCache::Chain chain;        // cache entries of the sequence's first blocks
    bool chain_broken = false;       // a hash collision: cache no more of this sequence
    bool cancelled = false;          // cancel() came during the forward pass
    // The step's outcome, made outside the lock and published under it.
    bool has_event = false;
    SchedulerEvent event;

    int32_t pending() const { return int32_t(tokens.size()) - n_computed; }
    int32_t n_generated() const { return int32_t(tokens.size()) - n_prompt; }
};

Scheduler::Scheduler(Context& ctx, const SchedulerParams& params)
    : ctx_(ctx), kv_(ctx.kv()), params_(params), block_size_(ctx.kv().params().block_size) {
    if (params_.token_budget <= 0) fail<ArgumentError>("token_budget must be positive, got ", params_.token_budget);
    if (kv_.n_seq_active() != 0) fail<ArgumentError>("the scheduler needs a context with no sequences in use");
    if (params_.prefix_cache) cache_ = std::make_unique<PrefixCache>(kv_);
    stats_.kv_blocks_total = kv_.params().n_blocks;
}

Scheduler::~Scheduler() {
    for (Request* r : running_) kv_.seq_free(r->seq);
    cache_.reset();  // its references go back while the KV cache is alive
}

// --- requests from any thread -------------------------------------------------------------------

int64_t Scheduler::submit(std::vector<int32_t> prompt, const RequestParams& params) {
    if (prompt.empty()) fail<ArgumentError>("the prompt is empty (no tokens)");
    for (int32_t id : prompt)
        if (id < 0 || id >= ctx_.n_vocab())
            fail<ArgumentError>("prompt token id ", id, " is out of range (vocabulary of ", ctx_.n_vocab(), ")");
    if (int64_t(prompt.size()) > ctx_.n_ctx())
        fail<ArgumentError>("the prompt has ", prompt.size(), " tokens, more than the context size (n_ctx = ", ctx_.n_ctx(), ")");
    validate(params.gen.sampling);
    if (params.logprobs > kMaxTopLogprobs)
        fail<ArgumentError>("logprobs must be at most ", kMaxTopLogprobs, ", got ", params.logprobs);
    auto req = std::make_unique<Request>(0, std::move(prompt), params, ctx_.model().tokenizer());  // checks stop strings
    std::lock_guard<std::mutex> lock(mu_);
    req->id = next_id_++;
    waiting_.push_back(req.get());
    const int64_t id = req->id;
    requests_.emplace(id, std::move(req));
    return id;
}

void Scheduler::cancel(int64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = requests_.find(id);
    if (it == requests_.end()) return;
    Request* r = it->second.get();
    if (r->cancelled) return;
    if (r->seq >= 0 && in_flight_) {  // in the forward pass now: step() finishes the job
        r->cancelled = true;
        return;
    }
    retire(r, FinishReason::Cancelled, "", pending_events_);
    snapshot();
}

bool Scheduler::has_work() const {
    std::lock_guard<std::mutex> lock(mu_);
    return !running_.empty() || !waiting_.empty() || !pending_events_.empty();
}

SchedulerStats Scheduler::stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    SchedulerStats s = stats_;
    s.running = int32_t(running_.size());
    s.waiting = int32_t(waiting_.size());
    return s;
}

// The KV numbers are read here, under the lock and outside the forward pass, so that stats()
// never reads the pool while the engine thread changes it.
void Scheduler::snapshot() {
    stats_.kv_blocks_used = kv_.n_blocks_used();
    stats_.prefix_cache_blocks = cache_ ? cache_->size() : 0;
}

// --- the step ---------------------------------------------------------------------------------------

std::vector<SchedulerEvent> Scheduler::step() {
    std::vector<SchedulerEvent> events;
    {
        std::lock_guard<std::mutex> lock(mu_);
        events.swap(pending_events_);
        admit(events);
        build_batch(events);
        in_flight_ = !slots_.empty();
        snapshot();
    }
    if (slots_.empty()) return events;

    // Outside the lock: the running requests, the KV pool and the cache are this thread's until
    // in_flight_ drops; other threads only queue requests and flag cancellations.
    const float* logits = nullptr;
    std::string failure;
    try {
        logits = ctx_.decode(batch_);
    } catch (const std::exception& e) {  // a scheduling bug, not the request's fault; nothing ran
        failure = e.what();
    }
    int64_t n_sampled = 0;
    if (failure.empty()) {
        sampling_.clear();
        for (const Slot& s : slots_) {
            s.req->n_computed += s.n;
            if (cache_) register_blocks(s.req);
            if (s.out_row >= 0) sampling_.push_back(&s);
        }
        // Each request samples from its own row with its own sampler and text state, so the
        // requests go to the pass's threads, one at a time (a full-vocabulary softmax is a large
        // part of a decode step at many sequences); nothing here depends on which thread.
        const size_t n_vocab = size_t(ctx_.n_vocab());
        ctx_.pool().parallel_tasks(int64_t(sampling_.size()), [&](int64_t i, int) {
            const Slot& s = *sampling_[size_t(i)];
            sample(s.req, logits + size_t(s.out_row) * n_vocab);
        });
        n_sampled = int64_t(sampling_.size());
    }

    std::lock_guard<std::mutex> lock(mu_);
    in_flight_ = false;
    ++stats_.steps;
    stats_.last_step_tokens = batch_.size();
    stats_.last_step_requests = int32_t(slots_.size());
    stats_.computed_tokens_total += failure.empty() ? batch_.size() : 0;
    stats_.generated_tokens_total += n_sampled;
    for (const Slot& s : slots_) {
        Request* r = s.req;
        if (r->cancelled) continue;  // its token, if any, is dropped: below
        if (!failure.empty()) {
            retire(r, FinishReason::Error, "the forward pass failed: " + failure, events);
        } else if (r->has_event) {
            r->has_event = false;
            const bool done = r->event.finished;
            events.push_back(std::move(r->event));
            r->event = SchedulerEvent();
            if (done) retire(r, FinishReason::None, "", events);  // its last event is out already
        }
    }
    // Cancelled during the pass: in the batch or running without a share of it.
    const std::vector<Request*> running = running_;
    for (Request* r : running)
        if (r->cancelled) retire(r, FinishReason::Cancelled, "", events);
    admit(events);  // blocks and slots the finished requests left: the queue moves up at once
    snapshot();
    return events;
}

static int32_t blocks_for(int64_t tokens, int32_t block_size) { return int32_t((tokens + block_size - 1) / block_size); }

int32_t Scheduler::blocks_available() const { return kv_.n_blocks_free() + (cache_ ? cache_->n_evictable() : 0); }

// True while a running request is still computing full blocks r's tokens begin with (n > 1
// choices of one prompt, requests with one system prompt arriving together): r waits for them
// to be computed and cached and adopts them then, instead of computing the same blocks again.
bool Scheduler::awaits_shared_prefix(const Request& r) const {
    const int32_t full = (int32_t(r.tokens.size()) - 1) / block_size_;  // blocks r could adopt
    for (const Request* o : running_) {
        const int32_t limit = std::min<int32_t>(full, int32_t(o->tokens.size()) / block_size_);
        // its blocks go into the cache no more, or it has computed every block r could share
        if (o->chain_broken || o->n_computed >= limit * block_size_) continue;
        int32_t shared = 0;
        while (shared < limit && std::equal(r.tokens.begin() + shared * block_size_, r.tokens.begin() + (shared + 1) * block_size_,
                                            o->tokens.begin() + shared * block_size_))
            ++shared;
        if (shared > 0 && o->n_computed < shared * block_size_) return true;
    }
    return false;
}

void Scheduler::admit(std::vector<SchedulerEvent>& events) {
    const int32_t n_blocks = kv_.params().n_blocks;
    while (!waiting_.empty() && int32_t(running_.size()) < ctx_.params().n_seq_max) {
        Request* r = waiting_.front();
        const int32_t n_tok = int32_t(r->tokens.size());
        if (r->params.gen.max_tokens == 0) {  // nothing to compute (Generation does the same)
            retire(r, FinishReason::Length, "", events);
            continue;
        }
        if (blocks_for(n_tok, block_size_) > n_blocks) {
            retire(r, FinishReason::Error,
                   "the request's " + std::to_string(n_tok) + " tokens need " + std::to_string(blocks_for(n_tok, block_size_)) +
                       " KV blocks; the pool holds " + std::to_string(n_blocks) + " blocks of " +
                       std::to_string(block_size_) + " tokens",
                   events);
            continue;
        }
        if (cache_ && awaits_shared_prefix(*r)) break;  // first come, first served: the queue waits with it
        PrefixCache::Chain hit;
        if (cache_) hit = cache_->match(r->tokens.data(), (n_tok - 1) / block_size_);  // the last token stays to compute
        const int32_t cached = int32_t(hit.size()) * block_size_;
        const int32_t first_chunk = std::min(n_tok - cached, params_.token_budget);
        const int32_t need = blocks_for(cached + first_chunk, block_size_) - int32_t(hit.size());
        int32_t avail = blocks_available();
        for (const PrefixCache::Entry* e : hit) avail -= kv_.block_refcount(e->block) == 1;  // adopted: no longer evictable
        // A reserve of a block per running request keeps their decodes from preempting at once.
        // With nothing running the request goes in regardless: it fits the pool, in chunks.
        if (!running_.empty() && need + int32_t(running_.size()) > avail) break;  // first come, first served

        std::vector<int32_t> blocks;
        for (const PrefixCache::Entry* e : hit) blocks.push_back(e->block);
        r->seq = blocks.empty() ? kv_.seq_new() : kv_.seq_new_from_blocks(blocks);
        r->n_computed = cached;
        r->chain = std::move(hit);
        if (cache_) {
            cache_->touch(r->chain);
            ++stats_.prefix_queries;
            stats_.prefix_hit_blocks += int64_t(r->chain.size());
            stats_.prefix_hit_tokens += cached;
        }
        if (!r->sampler) {  // first admission: the prompt enters the penalty window
            r->sampler = std::make_unique<Sampler>(r->params.gen.sampling, ctx_.n_vocab());
            for (int32_t i = 0; i < r->n_prompt; ++i) r->sampler->accept(r->tokens[size_t(i)]);
            stats_.prompt_tokens_total += r->n_prompt;
        }
        waiting_.pop_front();
        running_.push_back(r);
    }
}

void Scheduler::build_batch(std::vector<SchedulerEvent>& events) {
    // Nothing could run: the oldest request waits for blocks the newer ones hold. Preempt the
    // newest until something runs; a request that cannot progress alone never will.
    while (!try_build_batch(events)) {
        if (running_.size() == 1)
            retire(running_.back(), FinishReason::Error, "the request does not fit in the KV cache even alone", events);
        else
            preempt(running_.back());
    }
}

// Fills batch_ and slots_; false when requests are running but none of them could be given a
// token (the caller frees blocks and tries again).
bool Scheduler::try_build_batch(std::vector<SchedulerEvent>& events) {
    batch_.clear();
    slots_.clear();
    int32_t avail = blocks_available(), budget = params_.token_budget, n_out = 0, need_total = 0;
    auto add = [&](Request* r, int32_t n, bool logits) {
        for (int32_t k = 0; k < n; ++k) {
            const int32_t pos = r->n_computed + k;
            batch_.add(r->tokens[size_t(pos)], pos, r->seq, logits && k == n - 1);
        }
        slots_.push_back({r, n, logits ? n_out++ : -1});
        const int32_t need = kv_.blocks_needed(r->seq, n);
        avail -= need;
        need_total += need;
        budget -= n;
    };

    // 1. One token of every decoding request, oldest first. One that finds no block takes the
    //    blocks of the most recently admitted (preempted by recompute); if that is itself, it
    //    waits in the queue; if it is alone, the pool can never hold it.
    for (size_t i = 0; i < running_.size(); ++i) {
        Request* r = running_[i];
        if (r->pending() != 1) continue;
        const int32_t need = kv_.blocks_needed(r->seq, 1);
        while (need > avail && running_.back() != r) {
            preempt(running_.back());
            avail = blocks_available() - need_total;
        }
        if (need > avail) {
            if (i == 0)
                retire(r, FinishReason::Error,
                       "the request outgrew the KV cache: " + std::to_string(r->tokens.size()) + " tokens need more than its " +
                           std::to_string(kv_.params().n_blocks) + " blocks of " + std::to_string(block_size_) + " tokens",
                       events);
            else
                preempt(r);
            break;  // r was the last running request
        }
        add(r, 1, true);
    }
    // 2. Chunks of pending tokens, oldest first, within the budget and the blocks left.
    for (Request* r : running_) {
        if (budget <= 0) break;
        const int32_t pend = r->pending();
        if (pend <= 1) continue;
        const int64_t room = int64_t(kv_.seq_blocks(r->seq).size()) * block_size_ - kv_.seq_len(r->seq);
        const int32_t n = int32_t(std::min<int64_t>(std::min(pend, budget), room + int64_t(avail) * block_size_));
        if (n <= 0) break;  // first come, first served: the younger ones wait as well
        add(r, n, n == pend);
    }
    if (cache_ && need_total > kv_.n_blocks_free()) cache_->evict(need_total - kv_.n_blocks_free());
    return !slots_.empty() || running_.empty();
}

void Scheduler::release(Request* r) {
    if (r->seq < 0) return;
    if (cache_) cache_->touch(r->chain);  // recency counts from the last use
    kv_.seq_free(r->seq);
    r->seq = -1;
    r->n_computed = 0;
    r->chain.clear();
    r->chain_broken = false;
}

void Scheduler::preempt(Request* r) {
    release(r);
    running_.erase(std::find(running_.begin(), running_.end(), r));
    waiting_.push_front(r);  // several preempted in one step: the older ends up in front
    ++stats_.preemptions;
}

// Remove r for good: free its sequence, drop it from the queues, and unless reason is None (its
// final event is out already) report it finished.
void Scheduler::retire(Request* r, FinishReason reason, const std::string& error, std::vector<SchedulerEvent>& events) {
    if (reason != FinishReason::None) {
        SchedulerEvent ev;
        ev.id = r->id;
        ev.finished = true;
        ev.finish_reason = reason;
        ev.error = error;
        ev.n_prompt = r->n_prompt;
        ev.n_generated = r->n_generated();
        events.push_back(std::move(ev));
    }
    if (r->seq >= 0) {
        release(r);
        running_.erase(std::find(running_.begin(), running_.end(), r));
    } else {
        const auto w = std::find(waiting_.begin(), waiting_.end(), r);
        if (w != waiting_.end()) waiting_.erase(w);
    }
    requests_.erase(r->id);  // r is gone
}

// --- outside the lock, on the engine thread ----------------------------------------------------------

// Cache the blocks the last pass filled. A block another request computed first (the same
// tokens after the same prefix, so the same bits) replaces this one's copy, which goes back to
// the pool: concurrent requests with one system prompt end up holding it once.
void Scheduler::register_blocks(Request* r) {
    if (r->chain_broken) return;
    while (int32_t(r->chain.size()) < r->n_computed / block_size_) {
        const size_t k = r->chain.size();
        const int32_t block = kv_.seq_blocks(r->seq)[k];
        const PrefixCache::Entry* e =
            cache_->insert(k ? r->chain.back() : nullptr, r->tokens.data() + k * size_t(block_size_), block);
        if (!e) {
            r->chain_broken = true;
            return;
        }
        if (e->block != block) kv_.seq_share_block(r->seq, int32_t(k), e->block);
        r->chain.push_back(e);
    }
}

// Sample the next token from r's logits and decide whether r is done, as Generation::step does.
void Scheduler::sample(Request* r, const float* logits) {
    SchedulerEvent& ev = r->event;
    ev = SchedulerEvent();
    ev.id = r->id;
    r->has_event = true;
    int32_t id = -1;
    try {
        id = r->sampler->sample(logits);
    } catch (const std::exception& e) {  // every logit NaN or -inf
        ev.finished = true;
        ev.finish_reason = FinishReason::Error;
        ev.error = e.what();
        ev.n_prompt = r->n_prompt;
        ev.n_generated = r->n_generated();
        return;
    }
    if (r->params.logprobs >= 0) {
        ev.logprobs.emplace_back();
        fill_logprobs(logits, id, r->params.logprobs, &ev.logprobs.back());
    }
    r->tokens.push_back(id);
    ev.tokens.push_back(id);
    const GenerateParams& gp = r->params.gen;
    FinishReason fin = FinishReason::None;
    if (!gp.ignore_eos && ctx_.model().tokenizer().is_eog(id)) {
        r->text.flush();
        fin = FinishReason::Stop;
    } else {
        r->sampler->accept(id);
        if (r->text.push(id)) {
            fin = FinishReason::Stop;
        } else if ((gp.max_tokens >= 0 && r->n_generated() >= gp.max_tokens) || r->n_computed >= ctx_.n_ctx()) {
            r->text.flush();  // the new token needs no KV row: only the rows before it must fit
            fin = FinishReason::Length;
        }
    }
    ev.text = r->text.take_ready(fin != FinishReason::None);
    ev.finished = fin != FinishReason::None;
    ev.finish_reason = fin;
    ev.n_prompt = r->n_prompt;
    ev.n_generated = r->n_generated();
}

// log-softmax of the raw logits (before penalties and temperature, as OpenAI's logprobs are),
// at the token and at the k most probable ids (ties: the lower id first).
void Scheduler::fill_logprobs(const float* logits, int32_t token, int32_t k, TokenLogprob* out) const {
    const int32_t n = ctx_.n_vocab();
    float mx = -std::numeric_limits<float>::infinity();
    for (int32_t v = 0; v < n; ++v) mx = std::max(mx, logits[v]);
    double sum = 0;
    for (int32_t v = 0; v < n; ++v) sum += std::exp(double(logits[v]) - double(mx));
    const double lse = double(mx) + std::log(sum);
    out->token = token;
    out->logprob = float(double(logits[token]) - lse);
    out->top.clear();
    if (k <= 0) return;
    // one pass keeping the best k in order: k is at most 20
    std::vector<std::pair<int32_t, float>>& top = out->top;
    top.reserve(size_t(k) + 1);
    for (int32_t v = 0; v < n; ++v) {
        const float l = logits[v];
        if (int32_t(top.size()) == k && !(l > top.back().second)) continue;
        auto at = std::find_if(top.begin(), top.end(), [&](const std::pair<int32_t, float>& t) { return l > t.second; });
        top.insert(at, {v, l});
        if (int32_t(top.size()) > k) top.pop_back();
    }
    for (auto& t : top) t.second = float(double(t.second) - lse);
}

}  // namespace ember
