// batch.h — the input of one forward pass: tokens that may belong to several sequences.
//
// Token i is `token[i]` at position `pos[i]` of sequence `seq[i]`; `logits[i]` asks for its
// next-token logits. Each sequence's tokens must appear in order and continue it exactly
// (position = the tokens it already holds, then +1 per token): the KV cache is append-only.
// Single-sequence generation is the special case of one sequence id.
#pragma once

#include <cstdint>
#include <vector>

namespace ember {

struct Batch {
    std::vector<int32_t> token, pos, seq;
    std::vector<uint8_t> logits;

    int32_t size() const { return int32_t(token.size()); }
    void clear() {
        token.clear();
        pos.clear();
        seq.clear();
        logits.clear();
    }
    void add(int32_t t, int32_t p, int32_t s, bool want_logits) {
        token.push_back(t);
        pos.push_back(p);
        seq.push_back(s);
        logits.push_back(want_logits ? 1 : 0);
    }
    int32_t n_outputs() const {
        int32_t n = 0;
        for (uint8_t l : logits) n += l != 0;
        return n;
    }
};

}  // namespace ember
