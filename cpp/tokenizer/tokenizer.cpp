// tokenizer.cpp — special-token partitioning, BOS/EOS, decoding and streaming (see tokenizer.h).
#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "common.h"
#include "gguf.h"

namespace ember {

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
    for (int32_t id = 0; id < vocab_.size(); ++id) {
        const TokenType t = vocab_.types[size_t(id)];
        const std::string& tok = vocab_.tokens[size_t(id)];
        if ((t == TokenType::Control || t == TokenType::UserDefined) && !tok.empty())
            specials_by_byte_[static_cast<unsigned char>(tok[0])].push_back(id);
    }
    for (auto& bucket : specials_by_byte_)
        std::stable_sort(bucket.begin(), bucket.end(), [this](int32_t a, int32_t b) {
            return vocab_.tokens[size_t(a)].size() > vocab_.tokens[size_t(b)].size();
        });
    if (vocab_.kind == Vocab::Kind::BPE) bpe_ = std::make_unique<BpeModel>(vocab_);
    else spm_ = std::make_unique<SpmModel>(vocab_);

    static const char* const kTurnEnds[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                            "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<｜end▁of▁sentence｜>"};
    eog_.assign(size_t(vocab_.size()), false);
    for (int32_t id : {vocab_.eos_id, vocab_.eot_id})
        if (id >= 0) eog_[size_t(id)] = true;
    for (const char* name : kTurnEnds) {
        const int32_t id = vocab_.find(name);
        if (id >= 0 && vocab_.types[size_t(id)] == TokenType::Control) eog_[size_t(id)] = true;
    }
}

Tokenizer Tokenizer::from_gguf(const GGUFFile& file) { return Tokenizer(load_vocab(file)); }

void Tokenizer::check_id(int32_t id) const {
    if (id < 0 || id >= vocab_.size()) fail<ArgumentError>("token id ", id, " is out of range (vocabulary of ", vocab_.size(), ")");
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& opt) const {
    std::vector<int32_t> out;
    const bool add_bos = opt.add_bos >= 0 ? opt.add_bos == 1 : (opt.add_special && vocab_.add_bos);
    const bool add_eos = opt.add_eos >= 0 ? opt.add_eos == 1 : (opt.add_special && vocab_.add_eos);
    if (add_bos) {
        if (vocab_.bos_id < 0) fail<ArgumentError>("this vocabulary has no BOS token to add");
        out.push_back(vocab_.bos_id);
    }
    auto encode_raw = [&](size_t begin, size_t end) {
        if (end <= begin) return;
        std::string_view frag = text.substr(begin, end - begin);
        if (bpe_) bpe_->encode(frag, out);
        else spm_->encode(frag, begin == 0 && vocab_.add_space_prefix, out);
    };
    size_t raw_start = 0, pos = 0;
    while (pos < text.size()) {
        int32_t match = -1;
        for (int32_t id : specials_by_byte_[static_cast<unsigned char>(text[pos])]) {
            const std::string& tok = vocab_.tokens[size_t(id)];
            if (!opt.parse_special && vocab_.types[size_t(id)] == TokenType::Control) continue;
            if (tok.size() <= text.size() - pos && text.compare(pos, tok.size(), tok) == 0) {
                match = id;
                break;
            }
        }
        if (match < 0) {
            ++pos;
            continue;
        }
        encode_raw(raw_start, pos);
        // SentencePiece adds its dummy prefix to the whole text before it looks for user-defined
        // pieces, so a text that starts with one gets a lone "▁" in front of it.
        if (pos == 0 && spm_ && vocab_.add_space_prefix && vocab_.types[size_t(match)] == TokenType::UserDefined)
            spm_->encode({}, true, out);
        out.push_back(match);
        pos += vocab_.tokens[size_t(match)].size();
        raw_start = pos;
    }
    encode_raw(raw_start, text.size());
    if (add_eos) {
        if (vocab_.eos_id < 0) fail<ArgumentError>("this vocabulary has no EOS token to add");
        out.push_back(vocab_.eos_id);
    }
    return out;
}

std::string Tokenizer::token_bytes(int32_t id) const {
    check_id(id);
    const TokenType t = vocab_.types[size_t(id)];
    if (t == TokenType::Control) return vocab_.tokens[size_t(id)];
    if (vocab_.kind == Vocab::Kind::BPE)
        return t == TokenType::UserDefined ? vocab_.tokens[size_t(id)] : bpe_token_bytes(vocab_.tokens[size_t(id)]);
    // SentencePiece writes a space as U+2581 in user-defined pieces too (a tokenizer.model's
    // "▁▁" piece is two spaces), and its decoder turns them back like any other piece's.
    return spm_token_bytes(vocab_, id);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
    StreamDecoder d(*this, skip_special);
    std::string out;
    for (int32_t id : ids) out += d.push(id);
    out += d.flush();
    return out;
}

size_t utf8_complete_prefix(std::string_view s) {
    // Look back at most 3 bytes for the lead byte of a sequence that runs past the end.
    const size_t n = s.size();
    for (size_t back = 1; back <= 3 && back <= n; ++back) {
        const unsigned char c = static_cast<unsigned char>(s[n - back]);
        if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
        const size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
        return need > back ? n - back : n;
    }
    return n;
}

// Replace each invalid UTF-8 sequence by U+FFFD the way Python's decode(errors="replace") does:
// one U+FFFD per "maximal subpart", i.e. a truncated sequence (a lead byte and the continuation
// bytes that may follow it) counts once, any other bad byte once on its own.
static std::string sanitize_utf8(std::string_view s) {
    std::string out;
    size_t i = 0;
    while (i < s.size()) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        // sequence length and the range allowed for the second byte (overlongs, surrogates and
        // code points past U+10FFFF are excluded there)
        size_t len = 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c < 0x80) len = 1;
        else if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c >= 0xE0 && c <= 0xEF) len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        size_t k = len == 0 ? 0 : 1;
        while (k < len && i + k < s.size()) {
            const unsigned char b = static_cast<unsigned char>(s[i + k]);
            if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) break;
            ++k;
        }
        if (len > 0 && k == len) {
            out.append(s.substr(i, len));
        } else {
            out += "\xEF\xBF\xBD";
        }
        i += std::max<size_t>(k, 1);
    }
    return out;
}

std::string StreamDecoder::push(int32_t id) {
    const Vocab& v = tok_.vocab();
    std::string piece = tok_.token_bytes(id);  // validates the id
    if (skip_special_ && v.is_control(id)) return {};
    if (first_) {
        // SentencePiece's dummy prefix: the space the encoder added is not part of the text.
        if (v.kind == Vocab::Kind::SPM && v.add_space_prefix && !piece.empty() && piece[0] == ' ' && !v.is_control(id))
            piece.erase(0, 1);
        if (!v.is_control(id)) first_ = false;
    }
    pending_ += piece;
    const size_t n = utf8_complete_prefix(pending_);
    std::string ready = sanitize_utf8(std::string_view(pending_).substr(0, n));
    pending_.erase(0, n);
    return ready;
}

std::string StreamDecoder::flush() {
    std::string rest = sanitize_utf8(pending_);
    pending_.clear();
    return rest;
}

}  // namespace ember
