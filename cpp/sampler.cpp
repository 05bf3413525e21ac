// sampler.cpp — the chain of sampler.h over one reused candidate buffer: penalties and softmax in
// two passes over the vocabulary (the max, then exp), then only as much ordering as the cuts and
// the draw need: a selection for top-k, a partition for min-p, and for top-p and the draw a sorted
// prefix that grows, on large sets after a histogram pass has set aside what they cannot reach.
#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common.h"

namespace ember {

namespace {

// The first sorted prefix when no small top-k bounds the candidates; it grows 4x at a time, so a
// peaked distribution sorts a few hundred entries and a flat one a few selections more than a sort.
constexpr size_t kFirstPrefix = 256;
constexpr size_t kHeapSelectRatio = 64;  // see sort_prefix
// mass_prefix's histogram: a quarter octave of probability per bucket, p = 1 down to the smallest
// subnormal (bucket 507). Below kMassPrefixMin unsorted candidates, sorting is cheaper than two passes.
constexpr size_t kMassBuckets = 512;
constexpr size_t kMassPrefixMin = 4 * kFirstPrefix;
// Slack on a mass target, relative to the sum it is measured in: far above the rounding of a
// double sum over a vocabulary (n x 2^-53), far below any mass that matters.
constexpr double kMassSlack = 1e-9;
// A window of a billion tokens should not reserve gigabytes before one is accepted; past this the
// ring grows inside accept(), never inside sample().
constexpr size_t kHistoryReserve = 4096;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The one order of the chain: more probable first, then the lower id, so what is kept never
// depends on how a selection or sort happened to permute equal probabilities.
template <class C>
bool before(const C& a, const C& b) {
    return a.p > b.p || (a.p == b.p && a.id < b.id);
}

// Larger p, lower bucket; monotone in p, so a run of buckets from 0 is a prefix of the order.
inline size_t mass_bucket(float p) {
    uint32_t bits;
    std::memcpy(&bits, &p, sizeof bits);
    constexpr uint32_t one = 0x3F800000u;  // 1.0f; p never exceeds it
    return bits >= one ? 0 : (one - bits) >> 21;
}

[[noreturn]] void fail_no_candidates() {
    fail<ArgumentError>("sample: every logit is NaN or -inf (after penalties); there is no token to pick");
}

}  // namespace

double uniform01(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1.0p-53; }

void validate(const SamplingParams& p) {
    // Written as !(in range) so that NaN, which fails every comparison, is rejected too.
    if (!(std::isfinite(p.temperature) && p.temperature >= 0))
        fail<ArgumentError>("temperature must be a finite number >= 0, got ", p.temperature);
    if (!(p.top_p > 0 && p.top_p <= 1)) fail<ArgumentError>("top_p must be in (0, 1], got ", p.top_p);
    if (!(p.min_p >= 0 && p.min_p <= 1)) fail<ArgumentError>("min_p must be in [0, 1], got ", p.min_p);
    if (!(std::isfinite(p.repeat_penalty) && p.repeat_penalty > 0))
        fail<ArgumentError>("repeat_penalty must be a finite number > 0, got ", p.repeat_penalty);
    if (p.repeat_last_n < -1)
        fail<ArgumentError>("repeat_last_n must be -1 (every accepted token), 0 (off) or positive, got ", p.repeat_last_n);
    if (!std::isfinite(p.presence_penalty)) fail<ArgumentError>("presence_penalty must be finite, got ", p.presence_penalty);
    if (!std::isfinite(p.frequency_penalty)) fail<ArgumentError>("frequency_penalty must be finite, got ", p.frequency_penalty);
    // top_k needs no check: every value is meaningful (k <= 0 and k >= n_vocab are "off").
}

Sampler::Sampler(const SamplingParams& params, int32_t n_vocab) : params_(params), n_vocab_(n_vocab) {
    validate(params_);
    if (n_vocab <= 0) fail<ArgumentError>("n_vocab must be positive, got ", n_vocab);
    penalties_on_ = params_.repeat_last_n != 0 &&
                    (params_.repeat_penalty != 1 || params_.presence_penalty != 0 || params_.frequency_penalty != 0);
    counts_.assign(size_t(n_vocab), 0);
    cand_.resize(size_t(n_vocab));
    mass_hist_.resize(kMassBuckets);
    if (params_.repeat_last_n > 0) history_.reserve(std::min(size_t(params_.repeat_last_n), kHistoryReserve));
    rng_.seed(params_.seed);
}

void Sampler::accept(int32_t token) {
    if (token < 0 || token >= n_vocab_)
        fail<ArgumentError>("accept: token id ", token, " is out of range (vocabulary of ", n_vocab_, ")");
    const int32_t window = params_.repeat_last_n;
    if (window == 0) return;
    ++counts_[size_t(token)];
    if (window < 0) return;  // unbounded: the counts are the whole history
    if (history_.size() < size_t(window)) {
        history_.push_back(token);
        return;
    }
    // Full ring: the slot at history_next_ holds the oldest token, which leaves the window.
    int32_t& slot = history_[history_next_];
    --counts_[size_t(slot)];
    slot = token;
    history_next_ = (history_next_ + 1) % size_t(window);
}

void Sampler::reset(uint64_t seed) {
    history_.clear();
    history_next_ = 0;
    std::fill(counts_.begin(), counts_.end(), 0);
    params_.seed = seed;  // params() reports the seed the current sequence started from
    rng_.seed(seed);
}

float Sampler::penalize(int32_t id, float logit) const {
    const int32_t count = counts_[size_t(id)];
    if (count == 0) return logit;
    const float rp = params_.repeat_penalty;
    if (rp != 1) logit = logit > 0 ? logit / rp : logit * rp;  // always towards "less likely"
    return logit - (float(count) * params_.frequency_penalty + params_.presence_penalty);
}

int32_t Sampler::argmax(const float* logits) const {
    int32_t best = -1;
    float best_logit = kNegInf;
    for (int32_t i = 0; i < n_vocab_; ++i) {
        const float l = penalties_on_ ? penalize(i, logits[i]) : logits[i];
        if (l > best_logit) {  // strict: the first (lowest) id wins a tie; NaN never compares greater
            best_logit = l;
            best = i;
        }
    }
    if (best < 0) fail_no_candidates();
    return best;
}

// Fills cand_ with the tokens of non-zero probability (in id order), p = exp((logit - max) / T),
// unnormalized: the most probable has p = 1 exactly, and *total is the normalizer. NaN and -inf
// logits are impossible tokens; +inf ones, if any, share all the mass equally.
size_t Sampler::softmax(const float* logits, double* total) {
    const int32_t n = n_vocab_;
    // Pass 1, the max only (std::max keeps its first argument when the second is NaN).
    float max = kNegInf;
    if (penalties_on_) {
        for (int32_t i = 0; i < n; ++i) max = std::max(max, penalize(i, logits[i]));
    } else {
        for (int32_t i = 0; i < n; ++i) max = std::max(max, logits[i]);
    }
    if (!(max > kNegInf)) fail_no_candidates();

    Candidate* c = cand_.data();
    size_t kept = 0;
    if (std::isinf(max)) {
        for (int32_t i = 0; i < n; ++i) {
            const float l = penalties_on_ ? penalize(i, logits[i]) : logits[i];
            if (l == max) c[kept++] = {i, l, 1.0f};
        }
        *total = double(kept);
        return kept;
    }
    // Pass 2. Subtracting first keeps the quotient <= 0, so a tiny temperature cannot overflow.
    // NaN stays NaN and -inf becomes 0, and a p that fails `> 0` (those, and underflows, which
    // could never be drawn) is dropped here rather than sorted later.
    const float t = params_.temperature;
    double sum = 0;
    for (int32_t i = 0; i < n; ++i) {
        const float l = penalties_on_ ? penalize(i, logits[i]) : logits[i];
        const float e = std::exp((l - max) / t);
        if (e > 0) {
            c[kept++] = {i, l, e};
            sum += double(e);
        }
    }
    *total = sum;
    return kept;
}

// Makes cand_[0, need) sorted in the chain's order, given that cand_[0, *sorted) already is and
// holds the most probable *sorted entries of cand_[0, end).
void Sampler::sort_prefix(size_t* sorted, size_t need, size_t end) {
    if (need <= *sorted) return;
    const size_t m = std::min(end, std::max(need, *sorted == 0 ? kFirstPrefix : *sorted * 4));
    Candidate* c = cand_.data() + *sorted;
    const size_t grow = m - *sorted, rest = end - *sorted;
    // A heap select is several times faster than a selection plus sort while the prefix is a small
    // part of what remains (most entries lose one comparison against the heap top); past ~1/64 the
    // heap's log factor costs more than introselect's constant.
    if (grow * kHeapSelectRatio <= rest) {
        std::partial_sort(c, c + grow, c + rest, before<Candidate>);
    } else {
        if (grow < rest) std::nth_element(c, c + grow, c + rest, before<Candidate>);
        std::sort(c, c + grow, before<Candidate>);
    }
    *sorted = m;
}

// Partitions cand_[0, end) (which must be unsorted territory) so that its front holds every
// candidate down to the probability bucket where the cumulative mass, most probable first, passes
// `mass`; returns their count (end when the mass is never passed). That front is a prefix of the
// chain's order holding more than `mass`, so a walk looking for `mass` need only sort it: one
// histogram pass and one partition instead of selections over the whole vocabulary.
size_t Sampler::mass_prefix(size_t end, double mass) {
    Candidate* c = cand_.data();
    std::fill(mass_hist_.begin(), mass_hist_.end(), 0.0);
    for (size_t i = 0; i < end; ++i) mass_hist_[mass_bucket(c[i].p)] += double(c[i].p);
    double cum = 0;
    size_t b = 0;
    while (b < kMassBuckets && (cum += mass_hist_[b]) <= mass) ++b;
    if (b == kMassBuckets) return end;
    return size_t(std::partition(c, c + end, [b](const Candidate& x) { return mass_bucket(x.p) <= b; }) - c);
}

int32_t Sampler::sample(const float* logits) {
    if (params_.temperature <= 0) return argmax(logits);  // greedy consumes no random numbers

    double total = 0;
    const size_t n = softmax(logits, &total);
    Candidate* c = cand_.data();

    // 4. top-k: a selection, not a sort; the k kept are ordered below only as far as needed.
    size_t end = n, sorted = 0;
    const int32_t k = params_.top_k;
    if (k > 0 && size_t(k) < n) {
        end = size_t(k);
        if (end * kHeapSelectRatio <= n) {  // small k: the heap select sorts them as well
            std::partial_sort(c, c + end, c + n, before<Candidate>);
            sorted = end;
        } else {
            std::nth_element(c, c + end, c + n, before<Candidate>);
        }
        total = 0;
        for (size_t i = 0; i < end; ++i) total += double(c[i].p);
    }

    // 6, done before 5: top-p and min-p each keep a prefix of the same order, so the chain keeps
    // the shorter one. min-p's prefix needs no order (p >= min_p x the most probable, whose p is
    // exactly 1), so partitioning it out first shrinks what top-p and the draw have to sort;
    // top-p's mass is still measured against the whole top-k set, `total`.
    size_t keep = end;
    double kept_mass = total;
    if (params_.min_p > 0) {
        const float cut = params_.min_p;
        const auto survives = [cut](const Candidate& x) { return x.p >= cut; };
        // Sorted already (small k): the survivors are a prefix, found without moving anything.
        keep = sorted ? size_t(std::partition_point(c, c + end, survives) - c)
                      : size_t(std::partition(c, c + end, survives) - c);
        if (keep < end) {
            kept_mass = 0;
            for (size_t i = 0; i < keep; ++i) kept_mass += double(c[i].p);
        }
    }
    sorted = std::min(sorted, keep);

    // Both walks below need the order only up to where their mass is reached. On a large unsorted
    // set, mass_prefix first narrows the sorting to a prefix sure to hold that mass (with slack for
    // rounding); should the ordered sum still fall short, the walk carries on over all of `keep`.
    const auto narrow = [&](double mass, double scale) {
        return sorted == 0 && keep > kMassPrefixMin ? mass_prefix(keep, mass + kMassSlack * scale) : keep;
    };

    // 5. top-p: the smallest prefix whose mass reaches top_p of the top-k mass (at least one token).
    size_t last = keep;
    if (params_.top_p < 1) {
        const double reach = double(params_.top_p) * total;
        const size_t limit = narrow(reach, total);
        double cum = 0;
        size_t i = 0;
        while (i < keep) {
            sort_prefix(&sorted, i + 1, i < limit ? limit : keep);
            cum += double(c[i++].p);
            if (cum >= reach) break;
        }
        last = i;
        kept_mass = cum;
    }

    // 7. the draw: the first candidate, in order, whose cumulative mass passes u x the kept mass.
    const double target = uniform01(rng_) * kept_mass;
    const size_t limit = narrow(target, kept_mass);
    double cum = 0;
    for (size_t i = 0; i < last; ++i) {
        sort_prefix(&sorted, i + 1, i < limit ? limit : keep);
        cum += double(c[i].p);
        if (cum > target) return c[i].id;
    }
    return c[last - 1].id;  // rounding: the ordered sum fell just short of kept_mass
}

}  // namespace ember
