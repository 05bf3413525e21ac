// models.h — the two tokenization algorithms the facade (tokenizer.h) dispatches to.
//
// Both take a fragment of raw text that contains no special tokens (the facade has already
// split those out) and append token ids. Both are built once per vocabulary and are read-only
// afterwards, so one instance serves any number of threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace ember {

// Byte-level BPE (tokenizer.ggml.model = "gpt2"): the pre-tokenizer named by vocab.pre splits
// the text into words, each word's bytes are mapped to GPT-2's printable alphabet, and merges
// are applied lowest rank first (bpe.cpp, pretokenize.cpp).
class BpeModel {
public:
    explicit BpeModel(const Vocab& vocab);  // throws GGUFError for an unknown vocab.pre
    ~BpeModel();
    void encode(std::string_view text, std::vector<int32_t>& out) const;
private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The bytes a byte-level BPE token stands for (undoes GPT-2's byte-to-unicode mapping);
// characters outside that alphabet are kept as their UTF-8.
std::string bpe_token_bytes(std::string_view token);

// SentencePiece (tokenizer.ggml.model = "llama"): spaces become U+2581, pieces are merged by
// score, bytes with no piece fall back to <0xNN> tokens (spm.cpp). with_space_prefix: this
// fragment starts the text and the vocabulary wants a leading space added.
class SpmModel {
public:
    explicit SpmModel(const Vocab& vocab);
    ~SpmModel();
    void encode(std::string_view text, bool with_space_prefix, std::vector<int32_t>& out) const;
private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The bytes a SentencePiece token stands for: U+2581 back to spaces, <0xNN> to the byte.
std::string spm_token_bytes(const Vocab& vocab, int32_t id);

}  // namespace ember
