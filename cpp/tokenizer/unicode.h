// unicode.h — UTF-8 decoding/encoding and the Unicode properties the BPE pre-tokenizers test.
//
// The data (general categories, White_Space, ASCII case folds) is generated from Python's
// unicodedata by tools/gen_unicode_table.py into unicode_table.inc; nothing here is typed by hand.
// The regex classes of the pre-tokenizers map onto it as Oniguruma (Hugging Face tokenizers'
// regex engine) defines them: \p{L} = Lu|Ll|Lt|Lm|Lo, \p{N} = Nd|Nl|No, \p{P}, \p{S}, \p{M} likewise
// by major class, and \s = the White_Space property (not Python's str.isspace, which adds U+001C..1F).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ember {

// General categories, in the order the generator writes them (unassigned Cn is 0).
enum class UnicodeCategory : uint8_t {
    Cn, Lu, Ll, Lt, Lm, Lo, Mn, Mc, Me, Nd, Nl, No, Pc, Pd, Ps, Pe, Pi, Pf, Po, Sm, Sc, Sk, So,
    Zs, Zl, Zp, Cc, Cf, Cs, Co, Count
};

// Per-code-point class bits, what the pre-tokenizer matchers test.
enum UnicodeFlag : uint8_t {
    kLetter = 1 << 0,  // \p{L}
    kNumber = 1 << 1,  // \p{N}
    kMark = 1 << 2,    // \p{M}
    kPunct = 1 << 3,   // \p{P}
    kSymbol = 1 << 4,  // \p{S}
    kSpace = 1 << 5,   // \s (White_Space)
};

UnicodeCategory unicode_category(char32_t cp);   // Cn for anything above U+10FFFF
const char* unicode_category_name(UnicodeCategory c);
bool unicode_is_space(char32_t cp);
uint8_t unicode_flags(char32_t cp);               // UnicodeFlag bits
// The ASCII letter cp case-folds to (upper-case ASCII, U+017F -> 's', U+212A -> 'k'), else cp.
char32_t unicode_fold_ascii(char32_t cp);
// The Unicode version of the generated table (e.g. "14.0.0").
const char* unicode_table_version();

// Code point standing for a byte that is not part of valid UTF-8: classified like U+FFFD (a
// symbol), so invalid input splits predictably and every byte still reaches the BPE model.
constexpr char32_t kInvalidUtf8 = 0xFFFD;

// Decodes the UTF-8 sequence at s[pos] (pos < s.size()) into *cp and returns its length. Invalid
// or truncated sequences, overlong forms and surrogates give length 1 and *cp = kInvalidUtf8.
size_t utf8_decode(std::string_view s, size_t pos, char32_t* cp);
void utf8_append(std::string& out, char32_t cp);

}  // namespace ember
