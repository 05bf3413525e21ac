// spm.cpp — SentencePiece tokenization of raw text (tokenizer.ggml.model = "llama"), see models.h.
//
// The algorithm is SentencePiece's BPE encoder, which is also what llama.cpp runs for these
// vocabularies and what Hugging Face's converted tokenizers reproduce with merges:
//   1. spaces become U+2581 ("▁"), and a "▁" is put in front when the caller asks for the dummy
//      prefix;
//   2. the text is cut into UTF-8 characters;
//   3. the adjacent pair whose concatenation is a vocabulary piece with the highest score is
//      merged, the leftmost pair on equal scores, until no adjacent pair makes a piece
//      (Hugging Face's converted tokenizers break a tie between two splits of the same piece,
//      "aa"+"a" against "a"+"aa", by the longer left part rather than by position; we keep
//      SentencePiece's order, and the Gemma 3 corpus comes out identical either way);
//   4. each remaining symbol is emitted as its piece; a symbol that is no piece (a character
//      the vocabulary lacks) becomes one <0xNN> token per byte, or, in a vocabulary without byte
//      tokens, the unknown token (one for a run of such characters, as SentencePiece does).
//
// Which pieces a merge may produce: SentencePiece merges into NORMAL, USER_DEFINED and UNUSED
// pieces only; CONTROL, UNKNOWN and BYTE pieces live in a separate table it never merges into.
// llama.cpp merges into any token. We follow SentencePiece: text can then never turn into a
// control token such as "<start_of_turn>" by merging (the facade alone decides whether control
// tokens written in the text count), and a literal "<0x41>" stays text. Hugging Face's converted
// tokenizers could in principle merge into those tokens too, but only where the vocabulary has
// the partial pieces to get there; Gemma 3's has none (the tests check the whole corpus).
//
// A character that is no piece may still merge into one ("é" + "a" → "éa" where only "éa" is a
// piece), as in SentencePiece and llama.cpp, which look only at the concatenation. Hugging Face's
// converted tokenizers differ there (their merges pair pieces only; the character has become byte
// tokens first), but only for vocabularies with such pieces, which SentencePiece's trainer does
// not make and Gemma 3 does not have.
//
// UNUSED pieces take part in merges and are then split back into the two symbols they were
// made of (SentencePiece's "resegmentation"); so a merge chain may pass through a piece the
// model is not meant to emit.
//
// Speed: one max-heap of candidate pairs over the whole fragment (SentencePiece does not split
// text into words), stale entries skipped when popped; pieces are looked up in a flat hash
// table (PieceTable). O(n log n) in the fragment's characters.
#include <algorithm>
#include <cstring>
#include <queue>
#include <string>
#include <unordered_map>

#include "common.h"
#include "tokenizer/models.h"

namespace ember {

namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

// Length of the UTF-8 character at s[i]: the sequence its lead byte announces when all its
// continuation bytes are there, else 1 (an invalid byte is a symbol of its own, so it falls back
// to its byte token and valid characters after it are still recognized).
size_t utf8_char_len(std::string_view s, size_t i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    if (need == 1 || i + need > s.size()) return 1;
    for (size_t k = 1; k < need; ++k)
        if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 1;
    return need;
}

bool merge_target(TokenType t) {
    return t == TokenType::Normal || t == TokenType::UserDefined || t == TokenType::Unused;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// The byte of a "<0xNN>" piece, or -1.
int byte_piece_value(std::string_view t) {
    if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
    const int hi = hex_digit(t[3]), lo = hex_digit(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

// A symbol of the fragment being encoded: bytes [start, start + len) of the normalized text,
// linked to its neighbours. len == 0 marks a symbol merged into its left neighbour.
struct Symbol {
    int32_t prev, next;
    uint32_t start, len;
    int32_t id;  // the piece this symbol is, or -1
};

// A candidate merge of symbols left and right (adjacent when pushed) into piece id.
struct Bigram {
    float score;
    int32_t left, right;
    uint32_t len;  // left.len + right.len when pushed: a changed sum means the entry is stale
    int32_t id;
};

struct BigramOrder {  // "less" for std::priority_queue: the top is the highest score, then the leftmost
    bool operator()(const Bigram& a, const Bigram& b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
};

// Piece text → id: open addressing over a blob of all pieces that this model owns (so it does
// not depend on where the Vocab it was built from lives afterwards). Half the encoder's time is
// lookups, and std::unordered_map's chained nodes cost a cache miss or two more per lookup.
class PieceTable {
public:
    void build(const std::vector<std::string>& pieces) {
        size_t total = 0;
        for (const std::string& t : pieces) total += t.size();
        if (total > UINT32_MAX) fail<GGUFError>("the vocabulary's pieces take ", total, " bytes (too many)");
        blob_.reserve(total);
        size_t cap = 16;
        while (cap < 2 * pieces.size()) cap *= 2;  // load factor at most 1/2
        slots_.assign(cap, Slot{0, -1, 0, 0});
        mask_ = cap - 1;
        for (size_t id = 0; id < pieces.size(); ++id) {
            const std::string& t = pieces[id];
            const uint64_t h = hash(t);
            size_t i = size_t(h) & mask_;
            bool duplicate = false;
            for (; slots_[i].id >= 0; i = (i + 1) & mask_)
                if (key(slots_[i]) == t) duplicate = true;  // the first id keeps the text, as in load_vocab
            if (duplicate) continue;
            slots_[i] = Slot{uint32_t(h >> 32), int32_t(id), uint32_t(blob_.size()), uint32_t(t.size())};
            blob_ += t;
        }
    }

    int32_t find(std::string_view s) const {
        const uint64_t h = hash(s);
        const uint32_t tag = uint32_t(h >> 32);
        for (size_t i = size_t(h) & mask_;; i = (i + 1) & mask_) {
            const Slot& slot = slots_[i];
            if (slot.id < 0) return -1;
            if (slot.tag == tag && slot.len == s.size() && std::memcmp(blob_.data() + slot.off, s.data(), s.size()) == 0)
                return slot.id;
        }
    }

private:
    struct Slot {
        uint32_t tag;  // high half of the hash, checked before the text
        int32_t id;    // -1: empty
        uint32_t off, len;
    };

    // 8 bytes at a time, multiply-xorshift mixing; pieces are short (Gemma's average 7 bytes).
    static uint64_t hash(std::string_view s) {
        uint64_t h = 0x9E3779B97F4A7C15ull ^ s.size();
        size_t i = 0;
        for (; i + 8 <= s.size(); i += 8) {
            uint64_t w;
            std::memcpy(&w, s.data() + i, 8);
            h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
            h ^= h >> 31;
        }
        uint64_t w = 0;
        std::memcpy(&w, s.data() + i, s.size() - i);
        h = (h ^ w) * 0x94D049BB133111EBull;
        return h ^ (h >> 29);
    }
    std::string_view key(const Slot& slot) const { return std::string_view(blob_).substr(slot.off, slot.len); }

    std::string blob_;
    std::vector<Slot> slots_;
    size_t mask_ = 0;
};

// The vocabulary as the encoder needs it.
struct Pieces {
    PieceTable table;
    std::vector<float> scores;
    std::vector<TokenType> types;
    size_t max_merge_len = 0;  // longest piece a merge may produce, in bytes
    int32_t byte_id[256];
    bool byte_fallback = false;  // all 256 <0xNN> pieces exist
    int32_t unk_id = -1;

    explicit Pieces(const Vocab& v) : scores(v.scores), types(v.types) {
        const int32_t n = v.size();
        scores.resize(size_t(n), 0.0f);  // load_vocab gives SPM vocabularies scores; be safe anyway
        table.build(v.tokens);
        std::fill(std::begin(byte_id), std::end(byte_id), -1);
        for (int32_t id = 0; id < n; ++id) {
            const std::string& piece = v.tokens[size_t(id)];
            if (merge_target(types[size_t(id)])) max_merge_len = std::max(max_merge_len, piece.size());
            const int b = byte_piece_value(piece);
            if (b >= 0 && types[size_t(id)] == TokenType::Byte && byte_id[b] < 0) byte_id[b] = id;
        }
        byte_fallback = std::all_of(std::begin(byte_id), std::end(byte_id), [](int32_t id) { return id >= 0; });
        unk_id = v.unk_id;
        for (int32_t id = 0; id < n && unk_id < 0; ++id)
            if (types[size_t(id)] == TokenType::Unknown) unk_id = id;
    }

    int32_t find(std::string_view piece) const { return table.find(piece); }
};

// One encode call's working state.
struct Session {
    const Pieces& m;
    std::string text;  // normalized: "▁" for spaces, plus the dummy prefix
    std::vector<Symbol> sym;
    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    // UNUSED piece → length of the left part of the last pair pushed that makes it (SentencePiece
    // keeps the same map, filled the same way, to split such pieces back up).
    std::unordered_map<std::string_view, uint32_t> unused_split;
    bool last_was_unk = false;  // the last id emitted stands for characters the vocabulary lacks

    void try_pair(int32_t left, int32_t right) {
        if (left < 0 || right < 0) return;
        const Symbol& l = sym[size_t(left)];
        const Symbol& r = sym[size_t(right)];
        const uint32_t len = l.len + r.len;
        if (len > m.max_merge_len) return;
        const std::string_view piece(text.data() + l.start, len);
        const int32_t id = m.find(piece);
        if (id < 0 || !merge_target(m.types[size_t(id)])) return;
        queue.push(Bigram{m.scores[size_t(id)], left, right, len, id});
        if (m.types[size_t(id)] == TokenType::Unused) unused_split[piece] = l.len;
    }

    void merge_all() {
        for (int32_t i = 1; i < int32_t(sym.size()); ++i) try_pair(i - 1, i);
        while (!queue.empty()) {
            const Bigram b = queue.top();
            queue.pop();
            Symbol& l = sym[size_t(b.left)];
            Symbol& r = sym[size_t(b.right)];
            if (l.len == 0 || r.len == 0 || l.len + r.len != b.len) continue;  // one side has changed
            l.len += r.len;
            l.id = b.id;
            r.len = 0;
            l.next = r.next;
            if (r.next >= 0) sym[size_t(r.next)].prev = b.left;
            try_pair(l.prev, b.left);
            try_pair(b.left, l.next);
        }
    }

    // A symbol that is no piece: its bytes as <0xNN> tokens, else the unknown token.
    void fallback(std::string_view bytes, std::vector<int32_t>& out) {
        if (m.byte_fallback) {
            for (char c : bytes) out.push_back(m.byte_id[static_cast<unsigned char>(c)]);
            last_was_unk = false;
            return;
        }
        if (m.unk_id < 0) {
            std::string hex;
            for (char c : bytes) hex += "<0x" + std::string(1, "0123456789ABCDEF"[(c >> 4) & 15]) + "0123456789ABCDEF"[c & 15] + ">";
            fail<ArgumentError>("the text has a character this vocabulary cannot encode (it has neither byte "
                                "tokens nor an unknown token): bytes ", hex);
        }
        if (!last_was_unk) out.push_back(m.unk_id);  // SentencePiece and HF fuse runs of unknowns
        last_was_unk = true;
    }

    void emit(std::string_view piece, int32_t id, std::vector<int32_t>& out) {
        if (id < 0) return fallback(piece, out);
        if (m.types[size_t(id)] == TokenType::Unused) {
            auto it = unused_split.find(piece);
            if (it != unused_split.end()) {
                const std::string_view a = piece.substr(0, it->second), b = piece.substr(it->second);
                emit(a, m.find(a), out);
                emit(b, m.find(b), out);
                return;
            }
        }
        out.push_back(id);
        last_was_unk = false;
    }
};

}  // namespace

struct SpmModel::Impl {
    Pieces pieces;
    explicit Impl(const Vocab& v) : pieces(v) {}
    void encode(std::string_view text, bool with_space_prefix, std::vector<int32_t>& out) const;
};

void SpmModel::Impl::encode(std::string_view raw, bool with_space_prefix, std::vector<int32_t>& out) const {
    // An empty text with the prefix gives a lone "▁": the facade asks for that when the text starts
    // with a user-defined piece, since SentencePiece puts its dummy prefix before those too.
    Session s{pieces, {}, {}, {}, {}, false};
    s.text.reserve(raw.size() + raw.size() / 2 + 3);
    if (with_space_prefix) s.text += kSpaceMark;
    for (char c : raw) {
        if (c == ' ') s.text += kSpaceMark;
        else s.text += c;
    }
    if (s.text.size() > size_t(INT32_MAX)) fail<ArgumentError>("text of ", raw.size(), " bytes is too long to tokenize");

    s.sym.reserve(s.text.size());
    for (size_t i = 0; i < s.text.size();) {
        const size_t len = utf8_char_len(s.text, i);
        const int32_t idx = int32_t(s.sym.size());
        s.sym.push_back(Symbol{idx - 1, idx + 1, uint32_t(i), uint32_t(len), pieces.find(std::string_view(s.text).substr(i, len))});
        i += len;
    }
    if (s.sym.empty()) return;
    s.sym.back().next = -1;
    s.merge_all();
    for (int32_t i = 0; i >= 0; i = s.sym[size_t(i)].next) {
        const Symbol& y = s.sym[size_t(i)];
        s.emit(std::string_view(s.text).substr(y.start, y.len), y.id, out);
    }
}

SpmModel::SpmModel(const Vocab& vocab) : impl_(std::make_unique<Impl>(vocab)) {}
SpmModel::~SpmModel() = default;

void SpmModel::encode(std::string_view text, bool with_space_prefix, std::vector<int32_t>& out) const {
    impl_->encode(text, with_space_prefix, out);
}

std::string spm_token_bytes(const Vocab& vocab, int32_t id) {
    if (id < 0 || id >= vocab.size()) fail<ArgumentError>("token id ", id, " is out of range (vocabulary of ", vocab.size(), ")");
    const std::string& t = vocab.tokens[size_t(id)];
    if (vocab.types[size_t(id)] == TokenType::Byte) {
        const int b = byte_piece_value(t);
        if (b >= 0) return std::string(1, char(b));
    }
    std::string out;
    out.reserve(t.size());
    for (size_t i = 0; i < t.size();) {
        if (t.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
            out += ' ';
            i += kSpaceMark.size();
        } else {
            out += t[i++];
        }
    }
    return out;
}

}  // namespace ember
