// vocab.h — a tokenizer vocabulary as GGUF carries it (tokenizer.ggml.* keys), validated.
//
// Plain data shared by the BPE and SentencePiece models and the tokenizer facade: tokens (bytes
// as stored), types, scores, merges ranks, special ids and flags. Loading checks every count and
// id against the vocabulary, so the models can index without further checks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ember {

class GGUFFile;

// Token types as llama.cpp / gguf-py number them.
enum class TokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct PairHash {
    size_t operator()(const std::pair<std::string, std::string>& p) const {
        return std::hash<std::string>()(p.first) * 31 + std::hash<std::string>()(p.second);
    }
};

struct Vocab {
    enum class Kind { BPE, SPM };
    Kind kind = Kind::BPE;
    std::string model;   // tokenizer.ggml.model: "gpt2" or "llama"
    std::string pre;     // tokenizer.ggml.pre ("default" when absent)
    std::vector<std::string> tokens;
    std::vector<TokenType> types;
    std::vector<float> scores;  // SPM: merge priority (higher first); BPE: empty
    std::unordered_map<std::string, int32_t> token_to_id;
    // BPE: rank of each merge "left right" (lower merges first)
    std::unordered_map<std::pair<std::string, std::string>, int32_t, PairHash> merge_rank;

    int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1, eot_id = -1;
    bool add_bos = false, add_eos = false;
    bool add_space_prefix = false;  // SPM: prepend a space to the text (the "dummy prefix")

    int32_t size() const { return int32_t(tokens.size()); }
    bool is_control(int32_t id) const { return types[id] == TokenType::Control; }
    int32_t find(std::string_view piece) const {  // -1 when absent
        auto it = token_to_id.find(std::string(piece));
        return it == token_to_id.end() ? -1 : it->second;
    }
};

// Throws GGUFError naming the file and key when the vocabulary is missing or inconsistent.
Vocab load_vocab(const GGUFFile& file);

}  // namespace ember
