// tokenizer.h — text <-> token ids for a GGUF vocabulary: the narrow API main and Python use.
//
// Owns the special-token handling common to both algorithms: control and user-defined tokens
// are found in the text first (user-defined always, control ones only when parse_special), the
// raw text between them goes to the BPE or SentencePiece model, and BOS/EOS are added as the
// vocabulary (or the caller) asks. Decoding maps ids back to bytes; StreamDecoder does it one
// token at a time without ever emitting half a UTF-8 character.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/models.h"
#include "tokenizer/vocab.h"

namespace ember {

class GGUFFile;

struct EncodeOptions {
    bool add_special = true;     // add BOS/EOS as the vocabulary says (add_bos / add_eos below override)
    bool parse_special = false;  // match control tokens written in the text
    int add_bos = -1;            // -1: the vocabulary's choice; 0/1: force
    int add_eos = -1;
};

class Tokenizer {
public:
    explicit Tokenizer(Vocab vocab);
    static Tokenizer from_gguf(const GGUFFile& file);

    std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opt = {}) const;
    // Bytes of the ids concatenated; skip_special drops control tokens (BOS, EOS, ...).
    std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
    // The bytes of one token (throws ArgumentError for an id out of range).
    std::string token_bytes(int32_t id) const;

    const Vocab& vocab() const { return vocab_; }
    int32_t n_vocab() const { return vocab_.size(); }
    // End of generation: EOS, EOT, and control tokens that end a turn in common chat formats
    // ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", ...), as llama.cpp counts them.
    bool is_eog(int32_t id) const { return id >= 0 && id < vocab_.size() && eog_[size_t(id)]; }

private:
    void check_id(int32_t id) const;
    Vocab vocab_;
    // Ids of the tokens matched in text (control, user-defined), bucketed by first byte and
    // longest first, so "<|im_start|>" wins over a shorter token that is its prefix.
    std::vector<int32_t> specials_by_byte_[256];
    std::unique_ptr<BpeModel> bpe_;
    std::unique_ptr<SpmModel> spm_;
    std::vector<bool> eog_;
};

// Incremental detokenizer for streaming: push() returns the text that is complete so far
// (whole UTF-8 characters only); flush() returns what is left (invalid bytes as U+FFFD).
// A continuation (generated text after a prompt) keeps the leading space of its first token,
// which decoding a whole text drops as SentencePiece's dummy prefix.
class StreamDecoder {
public:
    explicit StreamDecoder(const Tokenizer& tok, bool skip_special = false, bool continuation = false)
        : tok_(tok), skip_special_(skip_special), first_(!continuation) {}
    std::string push(int32_t id);
    std::string flush();

private:
    const Tokenizer& tok_;
    bool skip_special_;
    bool first_;
    std::string pending_;
};

// Length of the longest prefix of s made of complete UTF-8 sequences (an incomplete sequence
// at the end is held back; invalid bytes elsewhere count as complete).
size_t utf8_complete_prefix(std::string_view s);

}  // namespace ember
