// perplexity.cpp — see perplexity.h. A chunk is fed in pieces so that at most a piece's
// logits exist at once (a 256K vocabulary makes whole-chunk logits large).
#include "perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "batch.h"
#include "common.h"
#include "context.h"

namespace ember {

static constexpr int32_t kPiece = 128;

// -log softmax(row)[target], in double.
static double nll(const float* row, int32_t n, int32_t target) {
    float m = row[0];
    for (int32_t i = 1; i < n; ++i) m = std::max(m, row[i]);
    double sum = 0;
    for (int32_t i = 0; i < n; ++i) sum += std::exp(double(row[i]) - m);
    return -(double(row[target]) - m - std::log(sum));
}

PerplexityResult perplexity(Context& ctx, const std::vector<int32_t>& tokens, int32_t n_ctx, bool add_bos,
                            int32_t max_chunks) {
    if (n_ctx < 2 || n_ctx > ctx.n_ctx())
        fail<ArgumentError>("perplexity: the chunk size must be in [2, ", ctx.n_ctx(), "] (the context size), got ", n_ctx);
    const int64_t n_chunks_all = int64_t(tokens.size()) / n_ctx;
    if (n_chunks_all == 0)
        fail<ArgumentError>("perplexity: the text has ", tokens.size(), " tokens, fewer than one chunk of ", n_ctx);
    const int32_t bos = ctx.model().tokenizer().vocab().bos_id;
    if (add_bos && bos < 0) fail<ArgumentError>("perplexity: the vocabulary has no BOS token");
    for (int32_t id : tokens)
        if (id < 0 || id >= ctx.n_vocab()) fail<ArgumentError>("perplexity: token id ", id, " is out of range");
    const int64_t n_chunks = max_chunks < 0 ? n_chunks_all : std::min<int64_t>(max_chunks, n_chunks_all);

    const auto t0 = std::chrono::steady_clock::now();
    const int32_t first = n_ctx / 2, n_vocab = ctx.n_vocab();
    PerplexityResult r;
    double sum = 0, sum2 = 0;
    Batch batch;
    KVCache& kv = ctx.kv();
    for (int64_t c = 0; c < n_chunks; ++c) {
        const int64_t start = c * n_ctx;
        const int32_t seq = kv.seq_new();
        struct Free { KVCache& kv; int32_t s; ~Free() { kv.seq_free(s); } } guard{kv, seq};
        for (int32_t p0 = 0; p0 < n_ctx; p0 += kPiece) {
            const int32_t p1 = std::min(n_ctx, p0 + kPiece);
            batch.clear();
            for (int32_t j = p0; j < p1; ++j) {
                const int32_t tok = j == 0 && add_bos ? bos : tokens[size_t(start + j)];
                batch.add(tok, j, seq, j >= first && j < n_ctx - 1);
            }
            const float* logits = ctx.decode(batch);
            int32_t row = 0;
            for (int32_t j = std::max(p0, first); j < std::min(p1, n_ctx - 1); ++j, ++row) {
                const double x = nll(logits + size_t(row) * size_t(n_vocab), n_vocab, tokens[size_t(start + j + 1)]);
                sum += x;
                sum2 += x * x;
                ++r.n_scored;
            }
        }
        r.chunk_ppl.push_back(std::exp(sum / double(r.n_scored)));
    }
    r.mean_nll = sum / double(r.n_scored);
    r.ppl = std::exp(r.mean_nll);
    const double var = sum2 / double(r.n_scored) - r.mean_nll * r.mean_nll;
    r.ppl_error = var > 0 && r.n_scored > 1 ? std::sqrt(var / double(r.n_scored - 1)) * r.ppl : 0.0;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace ember
