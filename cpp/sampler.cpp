// sampler.cpp — the chain of sampler.h over one reused candidate buffer: penalties and softmax in
// two passes over the vocabulary (the max, then exp), then only as much ordering as the cuts and
// the draw need: a selection for top-k, a partition for min-p, and for top-p and the draw a sorted
// prefix that grows, on large sets after a histogram pass has set aside what they cannot reach.
#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
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
// top_k_first's margin below the k-th largest (l - max) / T: ~300x exp4's relative error.
constexpr float kTopKMargin = 1e-4f;
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

// Four floats as one value (GCC/Clang vector extensions: an SSE2 or NEON register, whichever the
// target has, with no ISA-specific code); a lane-wise `<` or `==` gives all-ones or zero.
typedef float f32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));

inline f32x4 load4(const float* p) {
    f32x4 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

inline bool any_lane(i32x4 v) {
    uint64_t w[2];
    std::memcpy(w, &v, sizeof w);
    return (w[0] | w[1]) != 0;
}

// The largest of x[0, n), NaN ignored (-inf when every value is NaN or -inf): running maxima in
// 16 lanes, m < x ? x : m (NaN fails `<` and stays out). The max is exact, so the grouping
// cannot change it; of +0 and -0, either may come back, and both give the same exp(l - max).
float row_max(const float* x, int32_t n) {
    f32x4 m[4];
    for (f32x4& v : m) v = f32x4{kNegInf, kNegInf, kNegInf, kNegInf};
    int32_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 4; ++j) {
            const f32x4 a = load4(x + i + 4 * j);
            m[j] = m[j] < a ? a : m[j];
        }
    float max = kNegInf;
    for (const f32x4& v : m)
        for (int j = 0; j < 4; ++j) max = max < v[j] ? v[j] : max;
    for (; i < n; ++i) max = max < x[i] ? x[i] : max;
    return max;
}

// Whether any of x[0, 16) passes cmp(lanes, v) (a lane-wise vector comparison).
template <class Cmp>
inline bool any_of16(const float* x, float v, Cmp cmp) {
    const f32x4 vv = {v, v, v, v};
    return any_lane(cmp(load4(x), vv) | cmp(load4(x + 4), vv) | cmp(load4(x + 8), vv) | cmp(load4(x + 12), vv));
}
const auto lanes_eq = [](f32x4 a, f32x4 b) { return a == b; };
const auto lanes_gt = [](f32x4 a, f32x4 b) { return a > b; };
const auto lanes_ge = [](f32x4 a, f32x4 b) { return a >= b; };

// The first i with x[i] == v (v occurs in x[0, n)): 16 at a time, then within the 16.
int32_t first_equal(const float* x, int32_t n, float v) {
    int32_t i = 0;
    while (i + 16 <= n && !any_of16(x + i, v, lanes_eq)) i += 16;
    while (!(x[i] == v)) ++i;
    return i;
}

// exp(x) in four lanes for x <= 0, our own rather than libm's so that a seed's draws do not
// depend on the C library: round x / ln 2 to n, r = x - n ln 2 in two parts (Cody and Waite),
// e^r from a degree-6 polynomial (Cephes' expf coefficients: ~1 ulp on [-ln 2 / 2, ln 2 / 2]),
// times 2^n built in the exponent bits. exp(0) is exactly 1. Below -87 (p < ~1.6e-38 of the most
// probable token), NaN and -inf give 0: never drawn. Plain IEEE operations only, and the file is
// built without FMA contraction, so every target computes the same bits.
constexpr float kExpFloor = -87.0f;

f32x4 exp4(f32x4 x) {
    const i32x4 ok = x >= kExpFloor;  // false for NaN too
    x = ok ? x : f32x4{0, 0, 0, 0};
    const f32x4 magic = f32x4{0, 0, 0, 0} + 12582912.0f;  // 1.5 x 2^23: adding it rounds to an integer
    const f32x4 n = (x * 1.44269504088896341f + magic) - magic;
    const f32x4 r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    f32x4 p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = (p * r) * r + r + 1.0f;
    const i32x4 bits = (__builtin_convertvector(n, i32x4) + 127) << 23;
    f32x4 scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return ok ? p * scale : f32x4{0, 0, 0, 0};
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
    if (penalties_on_) work_.resize(size_t(n_vocab));
    if (params_.top_k > 0) {
        scaled_.resize(size_t(n_vocab));
        topk_heap_.reserve(size_t(std::min(params_.top_k, n_vocab)));
    }
    mass_hist_.resize(4 * kMassBuckets);
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

const float* Sampler::penalized(const float* logits) {
    if (!penalties_on_) return logits;
    float* x = work_.data();
    std::memcpy(x, logits, sizeof(float) * size_t(n_vocab_));
    for (int32_t i = 0; i < n_vocab_; ++i)
        if (counts_[size_t(i)] != 0) x[i] = penalize(i, x[i]);
    return x;
}

// Fills cand_ with the tokens of non-zero probability (in id order), p = exp((x - max) / T) over
// the penalized logits x and their max, unnormalized: the most probable has p = 1 exactly, and
// *total is the normalizer. NaN and -inf logits are impossible tokens; +inf ones, if any, share
// all the mass equally.
size_t Sampler::softmax(const float* x, float max, double* total) {
    const int32_t n = n_vocab_;
    Candidate* c = cand_.data();
    size_t kept = 0;
    if (std::isinf(max)) {
        for (int32_t i = 0; i < n; ++i) {
            const float l = x[i];
            if (l == max) c[kept++] = {i, l, 1.0f};
        }
        *total = double(kept);
        return kept;
    }
    // Subtracting first keeps the quotient <= 0, so a tiny temperature cannot overflow. NaN stays
    // NaN and -inf becomes 0, and a p that fails `> 0` (those, and underflows, which could never
    // be drawn) is dropped here rather than sorted later. Four lanes at a time, four exps in flight
    // (each is one long chain of operations), each lane with its own running sum (a single one
    // made this pass wait on the latency of every addition), added up in a fixed order.
    const float t = params_.temperature;
    double sum[4] = {0, 0, 0, 0};
    const auto keep = [&](int32_t i, f32x4 l, f32x4 e) {
        for (int j = 0; j < 4; ++j)
            if (e[j] > 0) {
                c[kept++] = {i + j, l[j], e[j]};
                sum[j] += double(e[j]);
            }
    };
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        f32x4 l[4], e[4];
        for (int g = 0; g < 4; ++g) l[g] = load4(x + i + 4 * g);
        for (int g = 0; g < 4; ++g) e[g] = exp4((l[g] - max) / t);
        for (int g = 0; g < 4; ++g) keep(i + 4 * g, l[g], e[g]);
    }
    for (; i < n; i += 4) {  // the last 1-15, the final 1-3 padded with -inf (p = 0)
        f32x4 l = {kNegInf, kNegInf, kNegInf, kNegInf};
        std::memcpy(&l, x + i, sizeof(float) * size_t(std::min(4, n - i)));
        keep(i, l, exp4((l - max) / t));
    }
    *total = (sum[0] + sum[1]) + (sum[2] + sum[3]);
    return kept;
}

// Step 3 and 4 together for a small top-k: the k most probable tokens, sorted, in cand_[0, k),
// and *total their mass, bit for bit what softmax() and the top-k selection give, without an exp
// per vocabulary entry. q = (l - max) / T is computed for every token as softmax() computes it;
// the tokens with p > 0 are those with q >= kExpFloor. Below the k-th largest q by more than
// kTopKMargin, exp4 (~1e-7 relative error) is certain to give a p below that of each of the k
// tokens at or above it, so only the tokens within the margin can be among the k most probable
// (ties in p included) and only they are exponentiated. Returns false, having changed nothing
// that matters, where the full pass must decide: +inf logits, or fewer than k x kHeapSelectRatio
// tokens with p > 0 (the selection then takes another path, whose order differs).
bool Sampler::top_k_first(const float* x, float max, double* total) {
    const int32_t n = n_vocab_;
    const size_t k = size_t(params_.top_k);
    if (std::isinf(max)) return false;
    const float t = params_.temperature;
    float* q = scaled_.data();
    size_t live = 0;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const f32x4 v = (load4(x + i) - max) / t;
        std::memcpy(q + i, &v, sizeof v);
        const i32x4 ok = v >= kExpFloor;
        live += size_t(-(ok[0] + ok[1] + ok[2] + ok[3]));  // a true lane is -1
    }
    for (; i < n; ++i) {
        q[i] = (x[i] - max) / t;
        live += q[i] >= kExpFloor;
    }
    if (live < k * kHeapSelectRatio) return false;

    // The k-th largest q: a min-heap of the k largest so far. Once it is full, a block of 16 with
    // nothing above its smallest is passed over with a few vector compares (nearly every block).
    std::vector<float>& heap = topk_heap_;
    heap.clear();
    const auto lower = std::greater<float>();
    const auto offer = [&](float v) {
        if (!(v >= kExpFloor)) return;  // p = 0 (NaN too)
        if (heap.size() < k) {
            heap.push_back(v);
            std::push_heap(heap.begin(), heap.end(), lower);
        } else if (v > heap.front()) {
            std::pop_heap(heap.begin(), heap.end(), lower);
            heap.back() = v;
            std::push_heap(heap.begin(), heap.end(), lower);
        }
    };
    for (i = 0; i + 16 <= n; i += 16)
        if (heap.size() < k || any_of16(q + i, heap.front(), lanes_gt))
            for (int j = 0; j < 16; ++j) offer(q[i + j]);
    for (; i < n; ++i) offer(q[i]);
    const float cut = std::max(heap.front() - kTopKMargin, kExpFloor);

    Candidate* c = cand_.data();
    size_t m = 0;
    for (i = 0; i + 16 <= n; i += 16)
        if (any_of16(q + i, cut, lanes_ge))
            for (int32_t j = i; j < i + 16; ++j)
                if (q[j] >= cut) c[m++] = {j, x[j], q[j]};  // p holds q until the exp below
    for (; i < n; ++i)
        if (q[i] >= cut) c[m++] = {i, x[i], q[i]};
    for (size_t j = 0; j < m; j += 4) {
        f32x4 v = {0, 0, 0, 0};
        const size_t w = std::min<size_t>(4, m - j);
        for (size_t l = 0; l < w; ++l) v[l] = c[j + l].p;
        const f32x4 e = exp4(v);
        for (size_t l = 0; l < w; ++l) c[j + l].p = e[l];
    }
    std::partial_sort(c, c + k, c + m, before<Candidate>);
    double sum = 0;
    for (size_t j = 0; j < k; ++j) sum += double(c[j].p);
    *total = sum;
    return true;
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
    // Four histograms, candidate i into number i % 4, then added up: neighbours mostly fall in the
    // same bucket, and with one histogram each addition waited on the one before it.
    double* h = mass_hist_.data();
    std::fill(h, h + 4 * kMassBuckets, 0.0);
    size_t i = 0;
    for (; i + 4 <= end; i += 4)
        for (size_t j = 0; j < 4; ++j) h[j * kMassBuckets + mass_bucket(c[i + j].p)] += double(c[i + j].p);
    for (; i < end; ++i) h[mass_bucket(c[i].p)] += double(c[i].p);
    for (size_t k = 0; k < kMassBuckets; ++k)
        h[k] = (h[k] + h[kMassBuckets + k]) + (h[2 * kMassBuckets + k] + h[3 * kMassBuckets + k]);
    double cum = 0;
    size_t b = 0;
    while (b < kMassBuckets && (cum += h[b]) <= mass) ++b;
    if (b == kMassBuckets) return end;
    return size_t(std::partition(c, c + end, [b](const Candidate& x) { return mass_bucket(x.p) <= b; }) - c);
}

int32_t Sampler::sample(const float* logits) {
    // 1, and the max of what it gives (exact, so shared by every step below)
    const float* x = penalized(logits);
    const float max = row_max(x, n_vocab_);
    if (!(max > kNegInf)) fail_no_candidates();
    // 2. greedy: the first (lowest) id of the max; it consumes no random numbers
    if (params_.temperature <= 0) return first_equal(x, n_vocab_, max);

    double total = 0;
    Candidate* c = cand_.data();
    size_t end = 0, sorted = 0;
    const int32_t k = params_.top_k;
    if (k > 0 && size_t(k) * kHeapSelectRatio <= size_t(n_vocab_) && top_k_first(x, max, &total)) {
        end = sorted = size_t(k);  // steps 3 and 4 at once, the k sorted
    } else {
        const size_t n = softmax(x, max, &total);
        // 4. top-k: a selection, not a sort; the k kept are ordered below only as far as needed.
        end = n;
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
