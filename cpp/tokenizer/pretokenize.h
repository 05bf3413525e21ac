// pretokenize.h — splitting text into words the way a byte-level BPE vocabulary's pre-tokenizer
// (named by tokenizer.ggml.pre) does, identically to Hugging Face `tokenizers`.
//
// A pre-tokenizer is a sequence of split steps, each one regex applied with tokenizers' "Isolated"
// behaviour: every match becomes a word, and so does every stretch between matches; the next step
// splits each of those words again, so lookaheads and `$` see the end of the word, not the text.
// The regex lists per name are llama.cpp's (src/llama-vocab.cpp), with the regexes as the model's
// tokenizer.json spells them (e.g. "(?i:'s|...)" with Unicode case folding, where llama.cpp
// approximates with '[sS]').
//
// Why hand-written matchers rather than a small regex engine: the regexes form a handful of
// families (GPT-2, Llama 3 and its variants, DeepSeek's class lists, digit splitters), and each
// alternative of each is a run of one character class with an optional prefix or suffix. Written
// out as code, every alternative's backtracking outcome is decided in one forward scan (e.g.
// "\s+(?!\S)" = the whitespace run minus its last character unless the run ends the word), which
// is linear-time, allocation-free and easy to check against the regex, where an engine would be
// more code, slower, and still need the same parity tests. The cost: a new regex family means a
// new matcher function, not a pasted string — pretokenize.cpp keeps the regex beside each one.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ember {

struct PreTokenizerFamily;  // pretokenize.cpp: the split steps of a group of names

class PreTokenizer {
public:
    // Throws GGUFError naming the known names when `name` is not one of them.
    explicit PreTokenizer(std::string_view name);

    // Appends the words of text as byte ranges [begin, end): in order, non-empty, and together
    // covering all of text. Bytes that are not valid UTF-8 count as symbols (see unicode.h).
    void split(std::string_view text, std::vector<std::pair<size_t, size_t>>& words) const;

    // BPE option tied to the name by llama.cpp: a word that is itself a token is emitted whole,
    // without applying merges (tokenizers' `ignore_merges`, tiktoken's behaviour).
    bool ignore_merges() const;

private:
    const PreTokenizerFamily* family_;
};

// Every tokenizer.ggml.pre value the pre-tokenizer accepts, sorted.
std::vector<std::string> pre_tokenizer_names();

}  // namespace ember
