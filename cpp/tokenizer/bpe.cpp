// bpe.cpp — byte-level BPE (BpeModel, bpe_token_bytes): GPT-2's byte alphabet and merging.
//
// Each word of the pre-tokenizer starts as one symbol per byte (the token of that byte's GPT-2
// character); the adjacent pair with the lowest merge rank is merged, leftmost first on ties, until
// no pair has a merge. This is tokenizers' Word::merge_all, whose details decide the ids:
//  * a queue entry is still valid when the pair now at its position merges into the same token
//    (not merely the same rank), exactly as tokenizers and llama.cpp check it;
//  * a byte whose character is not in the vocabulary is dropped before merging, and its neighbours
//    become adjacent: tokenizers' BPE without an unk_token (SmolLM2 lacks a few control bytes).
#include <algorithm>
#include <array>
#include <unordered_map>

#include "tokenizer/models.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"

namespace ember {

namespace {

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves; the other 68 bytes take
// the code points 256, 257, ... in byte order, so that every byte is a visible character.
struct ByteAlphabet {
    std::array<char32_t, 256> to_cp{};
    std::array<int16_t, 324> to_byte{};  // code point -> byte, -1 outside the alphabet (max cp is 323)
    ByteAlphabet() {
        to_byte.fill(-1);
        char32_t extra = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            to_cp[size_t(b)] = printable ? char32_t(b) : extra++;
            to_byte[to_cp[size_t(b)]] = int16_t(b);
        }
    }
};
const ByteAlphabet kBytes;

uint64_t pair_key(int32_t left, int32_t right) { return (uint64_t(uint32_t(left)) << 32) | uint32_t(right); }

struct Merge {
    int32_t rank;
    int32_t id;  // the token left+right becomes
};

struct Symbol {
    int32_t id;
    int32_t prev, next;  // neighbours in the word, -1 at the ends
    bool alive;
};

// A candidate merge of the symbol at `pos` with its right neighbour.
struct Candidate {
    int32_t rank, pos, id;
    // std heaps are max-heaps: "less" means popped later, i.e. a higher rank, then further right.
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

struct BpeModel::Impl {
    PreTokenizer pre;
    std::array<int32_t, 256> byte_id{};  // token of each byte's character, -1 if absent
    std::unordered_map<uint64_t, Merge> merges;
    // With ignore_merges: the bytes of every normal token, so a word that is a token is found whole.
    std::unordered_map<std::string, int32_t> whole_words;

    explicit Impl(const Vocab& v) : pre(v.pre) {
        std::string s;
        for (int b = 0; b < 256; ++b) {
            s.clear();
            utf8_append(s, kBytes.to_cp[size_t(b)]);
            byte_id[size_t(b)] = v.find(s);
        }
        merges.reserve(v.merge_rank.size());
        for (const auto& [pair, rank] : v.merge_rank) {
            const int32_t l = v.find(pair.first), r = v.find(pair.second), m = v.find(pair.first + pair.second);
            if (l < 0 || r < 0 || m < 0) continue;  // a merge into nothing the vocabulary has: never applies
            auto [it, fresh] = merges.emplace(pair_key(l, r), Merge{rank, m});
            if (!fresh && rank < it->second.rank) it->second = Merge{rank, m};
        }
        if (pre.ignore_merges()) {
            whole_words.reserve(size_t(v.size()));
            for (int32_t id = 0; id < v.size(); ++id)
                if (v.types[size_t(id)] == TokenType::Normal) whole_words.emplace(bpe_token_bytes(v.tokens[size_t(id)]), id);
        }
    }

    const Merge* find_merge(int32_t left, int32_t right) const {
        auto it = merges.find(pair_key(left, right));
        return it == merges.end() ? nullptr : &it->second;
    }

    // Scratch space reused across the words of one encode() call.
    struct Work {
        std::vector<Symbol> sym;
        std::vector<Candidate> heap;
        std::string key;
    };

    void push_candidate(Work& w, int32_t pos) const {
        const Symbol& a = w.sym[size_t(pos)];
        if (a.next < 0) return;
        if (const Merge* m = find_merge(a.id, w.sym[size_t(a.next)].id)) {
            w.heap.push_back({m->rank, pos, m->id});
            std::push_heap(w.heap.begin(), w.heap.end());
        }
    }

    void encode_word(std::string_view word, Work& w, std::vector<int32_t>& out) const {
        if (!whole_words.empty()) {
            w.key.assign(word.data(), word.size());
            auto it = whole_words.find(w.key);
            if (it != whole_words.end()) {
                out.push_back(it->second);
                return;
            }
        }
        w.sym.clear();
        for (unsigned char b : word) {
            const int32_t id = byte_id[b];
            if (id < 0) continue;
            const int32_t n = int32_t(w.sym.size());
            w.sym.push_back({id, n - 1, -1, true});
            if (n > 0) w.sym[size_t(n - 1)].next = n;
        }
        if (w.sym.size() > 1) {
            w.heap.clear();
            for (int32_t i = 0; i + 1 < int32_t(w.sym.size()); ++i) push_candidate(w, i);
            while (!w.heap.empty()) {
                std::pop_heap(w.heap.begin(), w.heap.end());
                const Candidate c = w.heap.back();
                w.heap.pop_back();
                Symbol& left = w.sym[size_t(c.pos)];
                if (!left.alive || left.next < 0) continue;
                Symbol& right = w.sym[size_t(left.next)];
                const Merge* m = find_merge(left.id, right.id);
                if (!m || m->id != c.id) continue;  // stale: this pair changed since it was queued
                left.id = c.id;
                right.alive = false;
                left.next = right.next;
                if (right.next >= 0) w.sym[size_t(right.next)].prev = c.pos;
                if (left.prev >= 0) push_candidate(w, left.prev);
                push_candidate(w, c.pos);
            }
        }
        for (const Symbol& s : w.sym)
            if (s.alive) out.push_back(s.id);
    }
};

BpeModel::BpeModel(const Vocab& vocab) : impl_(std::make_unique<Impl>(vocab)) {}
BpeModel::~BpeModel() = default;

void BpeModel::encode(std::string_view text, std::vector<int32_t>& out) const {
    std::vector<std::pair<size_t, size_t>> words;
    impl_->pre.split(text, words);
    Impl::Work work;
    for (const auto& [begin, end] : words) impl_->encode_word(text.substr(begin, end - begin), work, out);
}

std::string bpe_token_bytes(std::string_view token) {
    std::string out;
    out.reserve(token.size());
    for (size_t pos = 0; pos < token.size();) {
        char32_t cp;
        const size_t n = utf8_decode(token, pos, &cp);
        if (cp < kBytes.to_byte.size() && kBytes.to_byte[cp] >= 0) out += char(kBytes.to_byte[cp]);
        else out.append(token.substr(pos, n));  // not a byte character (or not UTF-8): kept as it is
        pos += n;
    }
    return out;
}

}  // namespace ember
