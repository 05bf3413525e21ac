// sampler.h — turns one row of logits into the next token: penalties, temperature, top-k,
// top-p, min-p, then a seeded draw (or argmax when the temperature is 0).
//
// The chain, in order (the order vLLM and Hugging Face apply; documented because it changes
// results):
//   1. penalties over the recent tokens (the last repeat_last_n accepted ones, prompt included):
//      repeat (llama.cpp / CTRL: a positive logit is divided by it, a negative one multiplied),
//      frequency (minus count x penalty) and presence (minus penalty once if present);
//   2. temperature <= 0: the argmax of the penalized logits, lowest id on ties; nothing below runs;
//   3. logits / temperature, softmax;
//   4. top-k (k <= 0 or k >= n_vocab: off) keeps the k most probable;
//   5. top-p (p >= 1: off) keeps the smallest most-probable set whose mass reaches p
//      (always at least one token), measured on the distribution after top-k, renormalized;
//   6. min-p (0: off) keeps tokens whose probability is at least min_p x the most probable one;
//   7. a draw from what is left, renormalized, with the sampler's own generator.
// Ties in probability are broken by the lower token id, so the kept set never depends on sort
// stability. The generator is a 64-bit Mersenne Twister seeded with `seed`, and the uniform
// variate is built from its raw bits (not std::uniform_real_distribution, whose output differs
// between standard libraries), so a seed gives the same tokens on every platform.
//
// No allocation per token: the candidate buffer is sized for the vocabulary once.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace ember {

struct SamplingParams {
    float temperature = 0.8f;
    int32_t top_k = 40;
    float top_p = 0.95f;
    float min_p = 0.05f;
    float repeat_penalty = 1.0f;    // 1: off
    int32_t repeat_last_n = 64;     // window for all three penalties; 0: off, -1: every accepted token
    float presence_penalty = 0.0f;  // 0: off
    float frequency_penalty = 0.0f; // 0: off
    uint64_t seed = 0;
};

// Throws ArgumentError naming the field when a value is out of range or not finite
// (temperature < 0, top_p outside (0, 1], min_p outside [0, 1], repeat_penalty <= 0, ...).
void validate(const SamplingParams& p);

class Sampler {
public:
    Sampler(const SamplingParams& params, int32_t n_vocab);  // validates

    // Record a token of the sequence (prompt or generated) for the penalties.
    void accept(int32_t token);
    // The next token for these n_vocab logits (not modified). Throws ArgumentError when every
    // logit is NaN or -inf.
    int32_t sample(const float* logits);
    // Clear the penalty history and reseed.
    void reset(uint64_t seed);

    const SamplingParams& params() const { return params_; }

private:
    struct Candidate { int32_t id; float logit; float p; };
    float penalize(int32_t id, float logit) const;  // step 1 for one token
    const float* penalized(const float* logits);   // step 1 over the row: logits itself, or work_
    // step 3 into cand_ from the penalized row and its max; returns the count kept
    size_t softmax(const float* x, float max, double* total);
    bool top_k_first(const float* x, float max, double* total);  // steps 3-4 for a small k, or false
    void sort_prefix(size_t* sorted, size_t need, size_t end);  // grows the sorted prefix of cand_
    size_t mass_prefix(size_t end, double mass);  // moves a prefix holding `mass` to the front

    SamplingParams params_;
    int32_t n_vocab_;
    bool penalties_on_ = false;              // a non-empty window and at least one penalty set
    std::mt19937_64 rng_;
    std::vector<int32_t> history_;           // the window as a ring (bounded windows only; -1 keeps counts alone)
    size_t history_next_ = 0;                // ring position when the window is bounded
    std::vector<int32_t> counts_;            // per-token count inside the window
    std::vector<Candidate> cand_;            // n_vocab entries, reused every call
    std::vector<float> work_;                // the penalized logits (n_vocab when penalties are on)
    std::vector<float> scaled_;              // (l - max) / T per token, for top_k_first (n_vocab when top_k > 0)
    std::vector<float> topk_heap_;           // top_k_first's k largest
    std::vector<double> mass_hist_;          // mass per probability bucket, for mass_prefix (4 histograms)
};

// A uniform double in [0, 1) from 53 raw bits of the generator (the portable draw above).
double uniform01(std::mt19937_64& rng);

}  // namespace ember
