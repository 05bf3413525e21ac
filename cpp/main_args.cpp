// main_args.cpp — see main_args.h. The flags are a table (names, value, help, setter), so the
// parser, the -h text and the error messages cannot drift apart.
#include "main_args.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <sstream>

namespace ember {

#ifndef EMBER_VERSION
#define EMBER_VERSION "0.1.0"
#endif

namespace {

// Parsing state beyond MainArgs: -ctk and -ctv are reconciled once every flag is read.
struct ParseState {
    MainArgs a;
    std::string cache_k, cache_v;
};

using Setter = std::function<void(ParseState&, const std::string& flag, const std::string& value)>;

struct Flag {
    std::vector<const char*> names;  // short first, as llama.cpp lists them
    const char* metavar;             // nullptr: a switch without a value
    const char* help;
    Setter set;
};

int64_t parse_int(const std::string& flag, const std::string& v, int64_t lo, int64_t hi) {
    errno = 0;
    char* end = nullptr;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0') fail<UsageError>(flag, " expects an integer, got '", v, "'");
    if (errno == ERANGE || x < lo || x > hi) {
        if (hi == INT32_MAX) fail<UsageError>(flag, " must be at least ", lo, ", got ", v);
        fail<UsageError>(flag, " must be in [", lo, ", ", hi, "], got ", v);
    }
    return x;
}

float parse_float(const std::string& flag, const std::string& v) {
    errno = 0;
    char* end = nullptr;
    const float x = std::strtof(v.c_str(), &end);
    if (v.empty() || *end != '\0') fail<UsageError>(flag, " expects a number, got '", v, "'");
    if (!std::isfinite(x)) fail<UsageError>(flag, " must be a finite number, got ", v);
    return x;
}

// An int flag with a lower bound, stored in an int32_t member.
Setter int_at_least(int32_t MainArgs::*field, int32_t lo) {
    return [field, lo](ParseState& s, const std::string& f, const std::string& v) {
        s.a.*field = int32_t(parse_int(f, v, lo, INT32_MAX));
    };
}

// A float flag; ok() says whether the value is in range and `range` how to say it.
Setter float_in(float MainArgs::*field, bool (*ok)(float), const char* range) {
    return [field, ok, range](ParseState& s, const std::string& f, const std::string& v) {
        const float x = parse_float(f, v);
        if (!ok(x)) fail<UsageError>(f, " must be ", range, ", got ", v);
        s.a.*field = x;
    };
}

Setter switch_to(bool MainArgs::*field, bool value) {
    return [field, value](ParseState& s, const std::string&, const std::string&) { s.a.*field = value; };
}

std::string lower(std::string s) {
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string cache_type(const std::string& f, const std::string& v) {
    const std::string t = lower(v);
    if (t != "f16" && t != "f32")
        fail<UsageError>(f, " must be f16 or f32, got '", v, "' (ember's KV cache has no quantized types)");
    return t;
}

std::string read_prompt_file(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) fail<UsageError>("cannot read prompt file '", path, "': ", std::strerror(errno));
    std::string text;
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    const int err = std::ferror(f) ? errno : 0;
    std::fclose(f);
    if (err) fail<UsageError>("cannot read prompt file '", path, "': ", std::strerror(err));
    // llama.cpp drops one trailing newline: an editor's final newline is not part of the prompt.
    if (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
}

const std::vector<Flag>& flags() {
    static const std::vector<Flag> table = {
        {{"-h", "--help"}, nullptr, "print this help and exit", switch_to(&MainArgs::help, true)},
        {{"--version"}, nullptr, "print the version and exit", switch_to(&MainArgs::version, true)},
        {{"-m", "--model"}, "FNAME", "model path, a GGUF file (required)",
         [](ParseState& s, const std::string&, const std::string& v) { s.a.model = v; }},
        {{"-p", "--prompt"}, "PROMPT", "prompt to start generation with",
         [](ParseState& s, const std::string&, const std::string& v) {
             s.a.prompt = v;
             s.a.prompt_file.clear();
         }},
        {{"-f", "--file"}, "FNAME", "a file containing the prompt",
         [](ParseState& s, const std::string&, const std::string& v) {
             s.a.prompt = read_prompt_file(v);
             s.a.prompt_file = v;
         }},
        {{"-sys", "--system-prompt"}, "PROMPT", "system prompt for conversation mode",
         [](ParseState& s, const std::string&, const std::string& v) { s.a.system_prompt = v; }},
        {{"-n", "--n-predict"}, "N", "tokens to predict (default: -1, until EOS or the context is full)",
         [](ParseState& s, const std::string& f, const std::string& v) {
             // -2 is llama.cpp's "until the context is full", which is what -1 does here too
             const int64_t n = parse_int(f, v, INT32_MIN, INT32_MAX);
             if (n < -2) fail<UsageError>(f, " must be -1 (no limit) or at least 0, got ", v);
             s.a.n_predict = int32_t(n);
         }},
        {{"-c", "--ctx-size"}, "N", "context size in tokens (default: 4096; 0 = the model's training context)",
         int_at_least(&MainArgs::n_ctx, 0)},
        {{"-b", "--batch-size"}, "N", "prompt tokens per forward step (default: 512)",
         int_at_least(&MainArgs::n_batch, 1)},
        {{"-t", "--threads"}, "N", "threads (default: one per hardware thread)", int_at_least(&MainArgs::n_threads, 1)},
        {{"-s", "--seed"}, "SEED", "sampling seed (default: -1, a random seed)",
         [](ParseState& s, const std::string& f, const std::string& v) {
             if (v == "-1") {
                 s.a.seed_random = true;
                 return;
             }
             errno = 0;
             char* end = nullptr;
             const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
             if (v.empty() || v[0] == '-' || v[0] == '+' || *end != '\0' || errno == ERANGE)
                 fail<UsageError>(f, " expects -1 or an integer in [0, 2^64), got '", v, "'");
             s.a.seed_random = false;
             s.a.seed = x;
         }},
        {{"--temp"}, "N", "temperature (default: 0.8; 0 = greedy)",
         float_in(&MainArgs::temp, [](float x) { return x >= 0; }, ">= 0")},
        {{"--top-k"}, "N", "top-k sampling (default: 40; 0 = off)",
         [](ParseState& s, const std::string& f, const std::string& v) {
             s.a.top_k = int32_t(parse_int(f, v, INT32_MIN, INT32_MAX));
         }},
        {{"--top-p"}, "N", "top-p sampling (default: 0.95; 1.0 = off)",
         float_in(&MainArgs::top_p, [](float x) { return x > 0 && x <= 1; }, "in (0, 1]")},
        {{"--min-p"}, "N", "min-p sampling (default: 0.05; 0.0 = off)",
         float_in(&MainArgs::min_p, [](float x) { return x >= 0 && x <= 1; }, "in [0, 1]")},
        {{"--repeat-penalty"}, "N", "penalize repeated tokens (default: 1.0 = off)",
         float_in(&MainArgs::repeat_penalty, [](float x) { return x > 0; }, "> 0")},
        {{"--repeat-last-n"}, "N", "tokens the penalties look back over (default: 64; 0 = off, -1 = all)",
         int_at_least(&MainArgs::repeat_last_n, -1)},
        {{"--presence-penalty"}, "N", "presence penalty (default: 0.0 = off)",
         float_in(&MainArgs::presence_penalty, [](float) { return true; }, "finite")},
        {{"--frequency-penalty"}, "N", "frequency penalty (default: 0.0 = off)",
         float_in(&MainArgs::frequency_penalty, [](float) { return true; }, "finite")},
        {{"-r", "--reverse-prompt"}, "PROMPT", "stop generating at PROMPT (may be repeated)",
         [](ParseState& s, const std::string& f, const std::string& v) {
             if (v.empty()) fail<UsageError>(f, " must not be empty");
             s.a.reverse_prompts.push_back(v);
         }},
        {{"--ignore-eos"}, nullptr, "keep generating after the end-of-sequence token",
         switch_to(&MainArgs::ignore_eos, true)},
        {{"-e", "--escape"}, nullptr, "process escapes (\\n, \\r, \\t, \\', \\\", \\\\) in prompts (default)",
         switch_to(&MainArgs::escape, true)},
        {{"--no-escape"}, nullptr, "do not process escape sequences", switch_to(&MainArgs::escape, false)},
        {{"-ctk", "--cache-type-k"}, "TYPE", "KV cache type for K: f16 (default) or f32",
         [](ParseState& s, const std::string& f, const std::string& v) { s.cache_k = cache_type(f, v); }},
        {{"-ctv", "--cache-type-v"}, "TYPE", "KV cache type for V: f16 (default) or f32 (the same as K)",
         [](ParseState& s, const std::string& f, const std::string& v) { s.cache_v = cache_type(f, v); }},
        {{"--verbose-prompt"}, nullptr, "print the prompt's tokens before generating",
         switch_to(&MainArgs::verbose_prompt, true)},
        {{"--no-display-prompt"}, nullptr, "do not echo the prompt", switch_to(&MainArgs::display_prompt, false)},
        {{"-i", "--interactive"}, nullptr, "interactive chat (the same as -cnv)", switch_to(&MainArgs::conversation, true)},
        {{"-cnv", "--conversation"}, nullptr, "chat using the model's chat template, reading turns from stdin",
         switch_to(&MainArgs::conversation, true)},
        {{"-no-cnv", "--no-conversation"}, nullptr, "plain completion (the default)",
         switch_to(&MainArgs::conversation, false)},
    };
    return table;
}

const Flag* find_flag(const std::string& name) {
    for (const Flag& f : flags())
        for (const char* n : f.names)
            if (name == n) return &f;
    return nullptr;
}

}  // namespace

std::string process_escapes(const std::string& s) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\' || i + 1 == s.size()) {
            out += s[i];
            continue;
        }
        const char c = s[++i];
        switch (c) {
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case '\'': out += '\''; break;
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case 'x':
                if (i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
                    out += char(hex(s[i + 1]) * 16 + hex(s[i + 2]));
                    i += 2;
                    break;
                }
                [[fallthrough]];
            default:  // not an escape ember knows: keep it as written
                out += '\\';
                out += c;
        }
    }
    return out;
}

MainArgs parse_main_args(int argc, const char* const* argv) {
    ParseState s;
    bool escape_prompt = false;  // whether the prompt came from -p (a file's text is taken as is)
    for (int i = 1; i < argc; ++i) {
        const std::string name = argv[i];
        const Flag* f = find_flag(name);
        if (!f) {
            if (!name.empty() && name[0] == '-') fail<UsageError>("unknown argument: ", name, " (see --help)");
            fail<UsageError>("unexpected argument '", name, "' (the prompt goes after -p)");
        }
        std::string value;
        if (f->metavar) {
            if (i + 1 >= argc) fail<UsageError>(name, " needs a value (", f->metavar, ")");
            value = argv[++i];
        }
        f->set(s, name, value);
        if (name == "-p" || name == "--prompt") escape_prompt = true;
        if (name == "-f" || name == "--file") escape_prompt = false;
    }
    MainArgs& a = s.a;
    if (a.help || a.version) return a;
    if (a.model.empty()) fail<UsageError>("no model given: pass -m MODEL.gguf (see --help)");
    if (!s.cache_k.empty() && !s.cache_v.empty() && s.cache_k != s.cache_v)
        fail<UsageError>("-ctk ", s.cache_k, " and -ctv ", s.cache_v,
                         " differ, but ember stores K and V in one type: give both the same");
    if (!s.cache_k.empty()) a.cache_type = s.cache_k;
    if (!s.cache_v.empty()) a.cache_type = s.cache_v;
    // llama.cpp processes escapes in the prompt, the system prompt and the reverse prompts;
    // a -f file is taken as written (its backslashes are usually meant, e.g. in code).
    if (a.escape) {
        if (escape_prompt) a.prompt = process_escapes(a.prompt);
        a.system_prompt = process_escapes(a.system_prompt);
        for (std::string& r : a.reverse_prompts) r = process_escapes(r);
    }
    return a;
}

std::string main_usage(const char* program) {
    std::ostringstream os;
    os << "usage: " << program << " -m MODEL.gguf [-p PROMPT | -f FILE] [options]\n\n"
       << "Generate text with a GGUF model (llama.cpp's flag names and defaults). The completion\n"
       << "streams to stdout; the load report and timings go to stderr.\n\noptions:\n";
    for (const Flag& f : flags()) {
        std::string left = "  ";
        for (size_t i = 0; i < f.names.size(); ++i) left += (i ? ", " : "") + std::string(f.names[i]);
        if (f.metavar) left += std::string(" ") + f.metavar;
        if (left.size() < 34) left.resize(34, ' ');
        else left += "\n" + std::string(34, ' ');
        os << left << f.help << "\n";
    }
    return os.str();
}

std::string main_version() { return "ember main " EMBER_VERSION; }

}  // namespace ember
