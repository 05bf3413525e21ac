// unicode.cpp — lookups over the generated table (unicode_table.inc) and UTF-8 coding.
#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <iterator>

namespace ember {

namespace {

#include "tokenizer/unicode_table.inc"

static_assert(std::size(kCategoryNames) == size_t(UnicodeCategory::Count), "unicode.h and the generated table disagree");

UnicodeCategory lookup_category(char32_t cp) {
    if (cp > 0x10FFFF) return UnicodeCategory::Cn;
    // The last run starting at or before cp: runs are sorted by first code point, and the
    // category sits in the low 5 bits, so (cp << 5) | 31 is above every entry of cp's run.
    const uint32_t key = (uint32_t(cp) << 5) | 31u;
    const uint32_t* it = std::upper_bound(std::begin(kCategoryRuns), std::end(kCategoryRuns), key);
    return UnicodeCategory(*(it - 1) & 31u);  // the first run starts at U+0000, so it > begin
}

bool lookup_space(char32_t cp) {
    for (const auto& r : kWhiteSpace)
        if (cp >= r[0] && cp <= r[1]) return true;
    return false;
}

uint8_t flags_of(UnicodeCategory c) {
    using C = UnicodeCategory;
    switch (c) {
        case C::Lu: case C::Ll: case C::Lt: case C::Lm: case C::Lo: return kLetter;
        case C::Mn: case C::Mc: case C::Me: return kMark;
        case C::Nd: case C::Nl: case C::No: return kNumber;
        case C::Pc: case C::Pd: case C::Ps: case C::Pe: case C::Pi: case C::Pf: case C::Po: return kPunct;
        case C::Sm: case C::Sc: case C::Sk: case C::So: return kSymbol;
        default: return 0;
    }
}

// Flags of the 128 ASCII code points, computed once: most text is mostly ASCII.
struct AsciiFlags {
    std::array<uint8_t, 128> f{};
    AsciiFlags() {
        for (char32_t c = 0; c < 128; ++c) f[c] = uint8_t(flags_of(lookup_category(c)) | (lookup_space(c) ? kSpace : 0));
    }
};
const AsciiFlags kAscii;

}  // namespace

UnicodeCategory unicode_category(char32_t cp) { return lookup_category(cp); }

const char* unicode_category_name(UnicodeCategory c) {
    return size_t(c) < std::size(kCategoryNames) ? kCategoryNames[size_t(c)] : "??";
}

bool unicode_is_space(char32_t cp) { return cp < 128 ? (kAscii.f[cp] & kSpace) != 0 : lookup_space(cp); }

uint8_t unicode_flags(char32_t cp) {
    if (cp < 128) return kAscii.f[cp];
    return uint8_t(flags_of(lookup_category(cp)) | (lookup_space(cp) ? kSpace : 0));
}

char32_t unicode_fold_ascii(char32_t cp) {
    if (cp >= 'A' && cp <= 'Z') return cp + ('a' - 'A');
    if (cp < 128) return cp;
    for (const auto& f : kFoldToAscii)
        if (f[0] == cp) return f[1];
    return cp;
}

const char* unicode_table_version() { return kUnicodeVersion; }

size_t utf8_decode(std::string_view s, size_t pos, char32_t* cp) {
    const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char c = byte(pos);
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    char32_t v, min;
    if ((c & 0xE0) == 0xC0) len = 2, v = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, v = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, v = c & 0x07, min = 0x10000;
    else len = 0, v = 0, min = 0;
    bool ok = len > 0 && pos + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
        ok = (byte(pos + k) & 0xC0) == 0x80;
        v = (v << 6) | (byte(pos + k) & 0x3F);
    }
    // Reject what Python's strict UTF-8 decoder rejects: overlong forms, surrogates, > U+10FFFF.
    if (!ok || v < min || (v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF) {
        *cp = kInvalidUtf8;
        return 1;
    }
    *cp = v;
    return len;
}

void utf8_append(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

}  // namespace ember
