// perplexity.h — llama.cpp's perplexity measurement, so the numbers compare with its tool.
//
// The tokens are cut into chunks of n_ctx; each chunk is evaluated in a fresh sequence with
// its first token replaced by BOS (when add_bos), and only the second half of each chunk is
// scored: the negative log-likelihood of token j+1 given tokens up to j, for j in
// [n_ctx/2, n_ctx - 1). PPL = exp(mean NLL); its error is the standard error of the mean NLL
// carried through exp (llama.cpp's estimate).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace ember {

class Context;

struct PerplexityResult {
    double ppl = 0, ppl_error = 0, mean_nll = 0;
    std::vector<double> chunk_ppl;  // running PPL after each chunk (llama.cpp's "[i]value" list)
    int64_t n_scored = 0;
    double seconds = 0;
};

// Throws ArgumentError when there are fewer than n_ctx tokens or n_ctx is outside
// [2, ctx.n_ctx()]. max_chunks < 0: every whole chunk.
PerplexityResult perplexity(Context& ctx, const std::vector<int32_t>& tokens, int32_t n_ctx, bool add_bos,
                            int32_t max_chunks = -1);

}  // namespace ember
