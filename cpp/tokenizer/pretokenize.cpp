// pretokenize.cpp — the split steps of each pre-tokenizer family, as matcher functions, and the
// table of names (see pretokenize.h for why matchers and not a regex engine).
//
// Each matcher answers one question: how many code points does the regex match when it starts at
// i, in a word that ends at `end` (0: no match here). Alternatives are tried in the regex's order,
// and each returns what Oniguruma's backtracking would settle on; the comment above each matcher
// is the regex it implements.
#include "tokenizer/pretokenize.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

#include "common.h"
#include "tokenizer/unicode.h"

namespace ember {

namespace {

// The text as code points, with the properties the matchers test and the UTF-8 length of each.
struct Text {
    std::vector<char32_t> cp;
    std::vector<uint8_t> flags;  // UnicodeFlag bits
    std::vector<uint8_t> nbytes;

    explicit Text(std::string_view s) {
        cp.reserve(s.size());
        flags.reserve(s.size());
        nbytes.reserve(s.size());
        for (size_t pos = 0; pos < s.size();) {
            char32_t c;
            const size_t n = utf8_decode(s, pos, &c);
            cp.push_back(c);
            flags.push_back(unicode_flags(c));
            nbytes.push_back(uint8_t(n));
            pos += n;
        }
    }
    size_t size() const { return cp.size(); }
};

// The word is [begin, end); i is where the match is tried (begin <= i < end).
using Matcher = size_t (*)(const Text& t, size_t begin, size_t i, size_t end);

bool is_crlf(char32_t c) { return c == '\r' || c == '\n'; }
bool ascii_letter(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// End of the run of characters having any of `f`, from i.
size_t run_end(const Text& t, size_t i, size_t end, uint8_t f) {
    while (i < end && (t.flags[i] & f)) ++i;
    return i;
}

// \s+(?!\S)|\s+ at a whitespace character: the whitespace run, less its last character when a
// non-space follows it (that space then starts the next word, " word"), but never less than one.
size_t space_tail(const Text& t, size_t i, size_t end) {
    const size_t k = run_end(t, i, end, kSpace);
    return (k == end || k - i == 1) ? k - i : k - i - 1;
}

// \s*[\r\n]+ : the greedy \s* gives back characters until [\r\n]+ can match, so the match ends
// just after the last CR or LF of the whitespace run (none in the run: no match).
size_t space_newlines(const Text& t, size_t i, size_t end) {
    const size_t k = run_end(t, i, end, kSpace);
    for (size_t j = k; j > i; --j)
        if (is_crlf(t.cp[j - 1])) return j - i;
    return 0;
}

// 's|'t|'re|'ve|'m|'ll|'d ; with Fold, inside (?i:...): letters compare after Unicode case
// folding, so "'S" and "'ſ" (U+017F folds to s) match as well.
template <bool Fold>
size_t contraction(const Text& t, size_t i, size_t end) {
    if (t.cp[i] != '\'' || i + 1 >= end) return 0;
    const auto at = [&](size_t j) { return Fold ? unicode_fold_ascii(t.cp[j]) : t.cp[j]; };
    const char32_t a = at(i + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= end) return 0;
    const char32_t b = at(i + 2);
    return ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) ? 3 : 0;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (GPT-2; Hugging Face's ByteLevel pre-tokenizer with use_regex)
size_t match_gpt2(const Text& t, size_t, size_t i, size_t end) {
    if (size_t n = contraction<false>(t, i, end)) return n;
    // The three " ?X+" alternatives: which class X is decided by the first non-' ' character;
    // the optional space is kept only when a character of that class follows it.
    const auto cls = [&](size_t j) -> uint8_t {
        const uint8_t f = t.flags[j];
        return (f & kLetter) ? kLetter : (f & kNumber) ? kNumber : (f & kSpace) ? kSpace : 0;
    };
    const size_t s = (t.cp[i] == ' ' && i + 1 < end && cls(i + 1) != kSpace) ? i + 1 : i;
    const uint8_t c = cls(s);
    if (c == kSpace) return space_tail(t, i, end);
    size_t k = s + 1;
    while (k < end && cls(k) == c) ++k;
    return k - i;
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// (Llama 3 / cl100k). MaxDigits: the {1,3} (Qwen2: 1; 0 = \p{N}+, MiniCPM5). Marks: Qwen3.5's
// variant, [\p{L}\p{M}]+ for the letters and [^\s\p{L}\p{M}\p{N}] for the punctuation.
template <size_t MaxDigits, bool Marks>
size_t match_llama3(const Text& t, size_t, size_t i, size_t end) {
    if (size_t n = contraction<true>(t, i, end)) return n;
    const uint8_t word = Marks ? uint8_t(kLetter | kMark) : uint8_t(kLetter);
    const uint8_t f = t.flags[i];
    // One optional lead character (not a letter, digit, CR or LF), then letters. When the lead is
    // itself a word character (a mark, with Marks) the result is the same run either way.
    if (!(f & (kLetter | kNumber)) && !is_crlf(t.cp[i]) && i + 1 < end && (t.flags[i + 1] & word))
        return run_end(t, i + 1, end, word) - i;
    if (f & word) return run_end(t, i, end, word) - i;
    if (f & kNumber) return run_end(t, i, MaxDigits ? std::min(end, i + MaxDigits) : end, kNumber) - i;
    const uint8_t not_punct = uint8_t(kSpace | kLetter | kNumber | (Marks ? kMark : 0));
    const size_t s = (t.cp[i] == ' ' && i + 1 < end && !(t.flags[i + 1] & not_punct)) ? i + 1 : i;
    if (!(t.flags[s] & not_punct)) {
        size_t k = s;
        while (k < end && !(t.flags[k] & not_punct)) ++k;
        while (k < end && is_crlf(t.cp[k])) ++k;
        return k - i;
    }
    if (size_t n = space_newlines(t, i, end)) return n;
    return (f & kSpace) ? space_tail(t, i, end) : 0;
}

// [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// (DeepSeek V3's main split, after digits and CJK runs are cut out)
size_t match_deepseek3(const Text& t, size_t, size_t i, size_t end) {
    const char32_t c = t.cp[i];
    const uint8_t f = t.flags[i];
    const bool ascii_punct = (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                             (c >= 0x7B && c <= 0x7E);
    if (ascii_punct && i + 1 < end && ascii_letter(t.cp[i + 1])) {
        size_t k = i + 1;
        while (k < end && ascii_letter(t.cp[k])) ++k;
        return k - i;
    }
    const uint8_t word = kLetter | kMark, ps = kPunct | kSymbol;
    if (!(f & (kLetter | ps)) && !is_crlf(c) && i + 1 < end && (t.flags[i + 1] & word))
        return run_end(t, i + 1, end, word) - i;
    if (f & word) return run_end(t, i, end, word) - i;
    const size_t s = (c == ' ' && i + 1 < end && (t.flags[i + 1] & ps)) ? i + 1 : i;
    if (t.flags[s] & ps) {
        size_t k = run_end(t, s, end, ps);
        while (k < end && is_crlf(t.cp[k])) ++k;
        return k - i;
    }
    if (size_t n = space_newlines(t, i, end)) return n;
    return (f & kSpace) ? space_tail(t, i, end) : 0;
}

// \p{N}{1,Max} (Max = 0: \p{N}+). Max = 1 is also tokenizers' Digits(individual_digits=true).
template <size_t Max>
size_t match_digits(const Text& t, size_t, size_t i, size_t end) {
    return run_end(t, i, Max ? std::min(end, i + Max) : end, kNumber) - i;
}

// [0-9][0-9][0-9]
size_t match_three_ascii_digits(const Text& t, size_t, size_t i, size_t end) {
    if (i + 3 > end) return 0;
    for (size_t k = i; k < i + 3; ++k)
        if (t.cp[k] < '0' || t.cp[k] > '9') return 0;
    return 3;
}

// \s+$ : `$` is Oniguruma's end of line, i.e. the end of the word or just before a line feed.
size_t match_space_at_end(const Text& t, size_t begin, size_t i, size_t end) {
    // Inside a whitespace run the match from the previous position was tried and failed (a match
    // can only have ended here before a line feed), and the run ends at the same place: skip the
    // rescan, which would make a long run of spaces quadratic.
    if (i > begin && (t.flags[i - 1] & kSpace) && t.cp[i] != '\n') return 0;
    const size_t k = run_end(t, i, end, kSpace);
    for (size_t j = k; j > i; --j)
        if (j == end || t.cp[j] == '\n') return j - i;
    return 0;
}

// -- character classes written as lists in the regexes ------------------------------------------

struct Range {
    char32_t first, last;
};

template <size_t N>
bool in_ranges(const Range (&r)[N], char32_t c) {
    for (const Range& x : r)
        if (c >= x.first && c <= x.last) return true;
    return false;
}

// DeepSeek LLM's letter class [A-Za-zµÀ-ÖØ-öø-ƺ...𞤀-𞥃] (Unicode's cased letters as of an older
// version), transcribed to code points. Beware when comparing with a copy of the regex: some ends
// (U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126, U+212A) have canonical equivalents that Unicode
// normalization of source text silently substitutes.
const Range kDeepseekLetters[] = {
    {0x0041, 0x005A}, {0x0061, 0x007A}, {0x00B5, 0x00B5}, {0x00C0, 0x00D6}, {0x00D8, 0x00F6}, {0x00F8, 0x01BA},
    {0x01BC, 0x01BF}, {0x01C4, 0x0293}, {0x0295, 0x02AF}, {0x0370, 0x0373}, {0x0376, 0x0377}, {0x037B, 0x037D},
    {0x037F, 0x037F}, {0x0386, 0x0386}, {0x0388, 0x038A}, {0x038C, 0x038C}, {0x038E, 0x03A1}, {0x03A3, 0x03F5},
    {0x03F7, 0x0481}, {0x048A, 0x052F}, {0x0531, 0x0556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD},
    {0x1C90, 0x1CBA}, {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D}, {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4},
    {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC},
    {0x2102, 0x2102}, {0x2107, 0x2107}, {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124},
    {0x2126, 0x2126}, {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F},
    {0x2145, 0x2149}, {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE},
    {0x2CF2, 0x2CF3}, {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787}, {0xA78B, 0xA78E},
    {0xAB70, 0xABBF}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F},
    {0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF},
    {0x1E900, 0x1E943},
};
// [!-/:-~！-／：-～‘-‟　-。]
const Range kDeepseekPunct[] = {{0x21, 0x2F}, {0x3A, 0x7E}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E}, {0x2018, 0x201F}, {0x3000, 0x3002}};
// [一-龥ࠀ-一가-퟿]
const Range kDeepseekCjk[] = {{0x4E00, 0x9FA5}, {0x0800, 0x4E00}, {0xAC00, 0xD7FF}};
// [一-龥぀-ゟ゠-ヿ]
const Range kDeepseek3Cjk[] = {{0x4E00, 0x9FA5}, {0x3040, 0x309F}, {0x30A0, 0x30FF}};

using Class = bool (*)(char32_t c, uint8_t flags);
bool cls_crlf(char32_t c, uint8_t) { return is_crlf(c); }
bool cls_letter(char32_t, uint8_t f) { return f & kLetter; }
bool cls_punct(char32_t, uint8_t f) { return f & kPunct; }
bool cls_ds_letter(char32_t c, uint8_t) { return in_ranges(kDeepseekLetters, c); }
bool cls_ds_punct(char32_t c, uint8_t) { return in_ranges(kDeepseekPunct, c); }
bool cls_ds_cjk(char32_t c, uint8_t) { return in_ranges(kDeepseekCjk, c); }
bool cls_ds3_cjk(char32_t c, uint8_t) { return in_ranges(kDeepseek3Cjk, c); }
// [\p{P}\$\+<=>\^~\|]  (llama.cpp's "default"); with the backtick: Falcon's
bool cls_default_punct(char32_t c, uint8_t f) {
    return (f & kPunct) || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' || c == '~' || c == '|';
}
bool cls_falcon_punct(char32_t c, uint8_t f) { return cls_default_punct(c, f) || c == '`'; }

// [class]
template <Class In>
size_t match_one(const Text& t, size_t, size_t i, size_t) { return In(t.cp[i], t.flags[i]) ? 1 : 0; }

// [class]+
template <Class In>
size_t match_run(const Text& t, size_t, size_t i, size_t end) {
    size_t k = i;
    while (k < end && In(t.cp[k], t.flags[k])) ++k;
    return k - i;
}

// \s?[class]+ : the optional whitespace is kept only when a class character follows it (and a
// whitespace character of the class, like U+3000 in DeepSeek's punctuation, may start the run).
template <Class In>
size_t match_space_run(const Text& t, size_t, size_t i, size_t end) {
    if ((t.flags[i] & kSpace) && i + 1 < end && In(t.cp[i + 1], t.flags[i + 1])) return 1 + match_run<In>(t, i + 1, i + 1, end);
    return match_run<In>(t, i, i, end);
}

// Split one word [begin, end) by a step: matches and the stretches between them, in order.
void split_isolated(const Text& t, Matcher m, size_t begin, size_t end, std::vector<std::pair<size_t, size_t>>& out) {
    size_t gap = begin, i = begin;
    while (i < end) {
        const size_t n = m(t, begin, i, end);
        if (n == 0) {
            ++i;
            continue;
        }
        if (gap < i) out.emplace_back(gap, i);
        out.emplace_back(i, i + n);
        i += n;
        gap = i;
    }
    if (gap < end) out.emplace_back(gap, end);
}

}  // namespace

struct PreTokenizerFamily {
    std::vector<Matcher> steps;
    bool ignore_merges;
    std::vector<std::string_view> names;
};

namespace {

// llama.cpp's names (src/llama-vocab.cpp) grouped by the splitting they get. Only names whose
// regexes were checked against that list are here; the rest get a clear error.
const std::vector<PreTokenizerFamily>& families() {
    static const std::vector<PreTokenizerFamily> table = {
        // llama.cpp's fallback for files without a pre-tokenizer name
        {{match_run<cls_default_punct>, match_gpt2, match_digits<0>, match_three_ascii_digits}, false, {"default"}},
        // "gpt2" is not a llama.cpp name (it writes "gpt-2"); accepted because it is the spelling of
        // tokenizer.ggml.model for these vocabularies and hand-made files confuse the two.
        {{match_gpt2}, false,
         {"gpt-2", "gpt2", "phi-2", "mpt", "olmo", "jais", "trillion", "granite-docling", "jina-es", "jina-de",
          "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "modern-bert", "exaone4"}},
        // tokenizers' Digits(individual_digits=true), then ByteLevel's GPT-2 regex (SmolLM's tokenizer.json)
        {{match_digits<1>, match_gpt2}, false,
         {"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b", "mellum2"}},
        {{match_llama3<3, false>}, true,
         {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"}},
        {{match_llama3<3, false>}, false, {"dbrx", "smaug-bpe", "glm4", "chatglm-bpe"}},
        {{match_llama3<1, false>}, false,
         {"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open", "grok-2"}},
        {{match_llama3<1, true>}, false, {"qwen35"}},
        {{match_digits<3>, match_llama3<0, false>}, true, {"minicpm5"}},
        {{match_one<cls_crlf>, match_space_run<cls_ds_letter>, match_space_run<cls_ds_punct>, match_space_at_end,
          match_run<cls_ds_cjk>, match_digits<0>},
         false, {"deepseek-llm"}},
        {{match_one<cls_crlf>, match_space_run<cls_letter>, match_space_run<cls_punct>, match_run<cls_ds_cjk>,
          match_digits<1>},
         false, {"deepseek-coder"}},
        {{match_digits<3>, match_run<cls_ds3_cjk>, match_deepseek3}, false, {"deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"}},
        {{match_run<cls_falcon_punct>, match_gpt2, match_three_ascii_digits}, false, {"falcon"}},
    };
    return table;
}

}  // namespace

std::vector<std::string> pre_tokenizer_names() {
    std::vector<std::string> names;
    for (const PreTokenizerFamily& f : families())
        for (std::string_view n : f.names) names.emplace_back(n);
    std::sort(names.begin(), names.end());
    return names;
}

PreTokenizer::PreTokenizer(std::string_view name) : family_(nullptr) {
    for (const PreTokenizerFamily& f : families())
        if (std::find(f.names.begin(), f.names.end(), name) != f.names.end()) family_ = &f;
    if (!family_) {
        std::string known;
        for (const std::string& n : pre_tokenizer_names()) known += (known.empty() ? "" : ", ") + n;
        fail<GGUFError>("tokenizer.ggml.pre: unknown BPE pre-tokenizer '", std::string(name),
                        "' (ember knows: ", known, ")");
    }
}

bool PreTokenizer::ignore_merges() const { return family_->ignore_merges; }

void PreTokenizer::split(std::string_view text, std::vector<std::pair<size_t, size_t>>& words) const {
    if (text.empty()) return;
    const Text t(text);
    // Word boundaries in code points; each step splits every word of the previous one.
    std::vector<std::pair<size_t, size_t>> cur{{0, t.size()}}, next;
    for (Matcher m : family_->steps) {
        next.clear();
        next.reserve(cur.size() * 2);
        for (const auto& w : cur) split_isolated(t, m, w.first, w.second, next);
        cur.swap(next);
    }
    // Code points to bytes: the words tile the text in order.
    size_t c = 0, byte = 0;
    words.reserve(words.size() + cur.size());
    for (const auto& w : cur) {
        const size_t start = byte;
        for (; c < w.second; ++c) byte += t.nbytes[c];
        words.emplace_back(start, byte);
    }
}

}  // namespace ember
