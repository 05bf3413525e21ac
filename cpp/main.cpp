// main.cpp — the standalone `main` program: load a GGUF model and generate from a prompt, or
// chat on stdin (-cnv), with llama.cpp's flags (main_args.h) and its stderr report shape.
//
// Thin over the core: the model, the context and ember::Generation do the work; this file owns
// the process concerns — where text goes (the completion to stdout, flushed per piece; the
// load report and timings to stderr), Ctrl-C, exit codes, and turning every error into one
// `error: ...` line. Everything that can fail before generation starts (flags, the file, the
// chat template, a prompt longer than the context) is checked before the report is printed, so
// such a failure prints exactly that one line.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "common.h"
#include "context.h"
#include "generate.h"
#include "main_args.h"
#include "model/model.h"
#include "quants/dispatch.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

using namespace ember;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// --- Ctrl-C ------------------------------------------------------------------------------------
// The handler only counts; the generation loop looks at the count between pieces, so a stop is
// clean (timings printed, KV cache released). A press beyond g_hard_limit — the user insisting
// while a long prompt evaluates — leaves at once with the shell's code for SIGINT.
volatile std::sig_atomic_t g_interrupts = 0;
volatile std::sig_atomic_t g_hard_limit = 1;
constexpr int kInterruptedExit = 130;  // 128 + SIGINT, as llama.cpp and shells report it

extern "C" void on_sigint(int) {
    g_interrupts = g_interrupts + 1;
    if (g_interrupts > g_hard_limit) _exit(kInterruptedExit);
}

void install_signal_handlers(int hard_limit) {
    g_hard_limit = hard_limit;
    struct sigaction sa = {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a Ctrl-C at the "> " prompt must interrupt the read
    sigaction(SIGINT, &sa, nullptr);
    // A reader that goes away (`main ... | head`) ends the output; write() then reports EPIPE.
    std::signal(SIGPIPE, SIG_IGN);
}

// --- output ------------------------------------------------------------------------------------
// Writes and flushes; false once stdout is a closed pipe (then there is no one to generate for).
bool emit(const std::string& s) {
    if (s.empty()) return true;
    const bool ok = std::fwrite(s.data(), 1, s.size(), stdout) == s.size() && std::fflush(stdout) == 0;
    if (!ok && errno == EPIPE) return false;
    std::clearerr(stdout);
    return true;
}

std::string one_line(std::string s) {
    for (char& c : s)
        if (c == '\n' || c == '\r') c = ' ';
    return s;
}

// Token pieces for --verbose-prompt, with control bytes escaped so each id stays on one line.
std::string printable(const std::string& piece) {
    std::string out;
    for (unsigned char c : piece) {
        if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else out += char(c);
    }
    return out;
}

void print_prompt_tokens(const Tokenizer& tok, const std::string& text, const std::vector<int32_t>& ids) {
    std::fprintf(stderr, "ember: prompt: '%s'\n", printable(text).c_str());
    std::fprintf(stderr, "ember: number of tokens in prompt = %zu\n", ids.size());
    for (int32_t id : ids) std::fprintf(stderr, "%6d -> '%s'\n", id, printable(tok.token_bytes(id)).c_str());
    std::fprintf(stderr, "\n");
}

// --- the report --------------------------------------------------------------------------------
struct Totals {
    int64_t n_prompt = 0, n_generated = 0;
    double prompt_seconds = 0, generate_seconds = 0;
    void add(const GenerationStats& s) {
        n_prompt += s.n_prompt;
        n_generated += s.n_generated;
        prompt_seconds += s.prompt_seconds;
        generate_seconds += s.generate_seconds;
    }
};

void print_load_report(const Context& ctx, const MainArgs& a, const GenerateParams& gp) {
    const Model& m = ctx.model();
    const HParams& hp = m.hparams();
    const KVCache& kv = ctx.kv();
    const double mib = 1024.0 * 1024.0;
    std::fprintf(stderr, "ember: loaded '%s' (%s, %.1f M parameters, %.1f MiB of weights) from %s\n", m.name().c_str(),
                 hp.traits->name, double(m.n_params()) / 1e6, double(m.weights().matrix_bytes) / mib, a.model.c_str());
    std::fprintf(stderr, "ember: n_ctx = %d (trained with %d), n_batch = %d, n_threads = %d, isa = %s\n", ctx.n_ctx(),
                 hp.n_ctx_train, ctx.params().n_batch, ctx.n_threads(), isa_name(best_isa()));
    std::fprintf(stderr, "ember: KV cache = %.2f MiB (%s, %d blocks of %d tokens)\n", double(kv.bytes()) / mib,
                 a.cache_type.c_str(), kv.params().n_blocks, kv.params().block_size);
    if (hp.n_ctx_train > 0 && ctx.n_ctx() > hp.n_ctx_train)
        std::fprintf(stderr, "ember: warning: n_ctx %d is more than the model was trained with (%d)\n", ctx.n_ctx(),
                     hp.n_ctx_train);
    const SamplingParams& s = gp.sampling;
    std::fprintf(stderr, "ember: seed = %llu\n", static_cast<unsigned long long>(s.seed));
    std::fprintf(stderr,
                 "ember: sampling: temp = %.3f, top_k = %d, top_p = %.3f, min_p = %.3f, repeat_penalty = %.3f, "
                 "repeat_last_n = %d, presence_penalty = %.3f, frequency_penalty = %.3f\n",
                 s.temperature, s.top_k, s.top_p, s.min_p, s.repeat_penalty, s.repeat_last_n, s.presence_penalty,
                 s.frequency_penalty);
}

void print_rate(const char* what, double seconds, int64_t n, const char* unit) {
    const double ms = seconds * 1e3;
    std::fprintf(stderr, "ember: %s = %.2f ms / %lld %s (%.2f ms per token, %.2f tokens per second)\n", what, ms,
                 static_cast<long long>(n), unit, n > 0 ? ms / double(n) : 0.0, seconds > 0 ? double(n) / seconds : 0.0);
}

void print_timings(const Totals& t, double load_seconds, double total_seconds) {
    std::fprintf(stderr, "\n");
    std::fprintf(stderr, "ember: load time = %.2f ms\n", load_seconds * 1e3);
    print_rate("prompt eval time", t.prompt_seconds, t.n_prompt, "tokens");
    print_rate("eval time", t.generate_seconds, t.n_generated, "runs");
    std::fprintf(stderr, "ember: total time = %.2f ms / %lld tokens\n", total_seconds * 1e3,
                 static_cast<long long>(t.n_prompt + t.n_generated));
}

GenerateParams generate_params(const MainArgs& a) {
    GenerateParams gp;
    SamplingParams& s = gp.sampling;
    s.temperature = a.temp;
    s.top_k = a.top_k;
    s.top_p = a.top_p;
    s.min_p = a.min_p;
    s.repeat_penalty = a.repeat_penalty;
    s.repeat_last_n = a.repeat_last_n;
    s.presence_penalty = a.presence_penalty;
    s.frequency_penalty = a.frequency_penalty;
    // llama.cpp draws a 32-bit seed; printing it lets a good sample be reproduced with -s.
    s.seed = a.seed_random ? uint64_t(std::random_device{}()) : a.seed;
    validate(s);
    gp.max_tokens = a.n_predict < 0 ? -1 : a.n_predict;
    gp.stop = a.reverse_prompts;
    gp.ignore_eos = a.ignore_eos;
    gp.skip_special = true;
    return gp;
}

enum class Streamed { Done, Interrupted, ReaderGone };

// Streams the generation's text to stdout until it ends, Ctrl-C is pressed or stdout closes.
Streamed stream(Generation& gen) {
    while (!gen.done()) {
        if (g_interrupts > 0) return Streamed::Interrupted;
        if (!emit(gen.next())) return Streamed::ReaderGone;
    }
    return Streamed::Done;
}

// --- completion mode ---------------------------------------------------------------------------
int complete(Context& ctx, const MainArgs& a, const GenerateParams& gp, double load_seconds, Clock::time_point t_start) {
    const Tokenizer& tok = ctx.model().tokenizer();
    EncodeOptions opt;
    opt.add_special = true;
    opt.parse_special = true;  // llama.cpp's default: "<|im_start|>" in a prompt is the control token
    std::vector<int32_t> ids = tok.encode(a.prompt, opt);
    if (ids.empty()) fail<UsageError>("the prompt is empty: give one with -p or -f");
    Generation gen(ctx, ids, gp);  // checks the prompt against the context before anything prints

    print_load_report(ctx, a, gp);
    if (a.verbose_prompt) print_prompt_tokens(tok, a.prompt, ids);
    std::fprintf(stderr, "\n");

    Streamed how = Streamed::Done;
    if (a.display_prompt && !emit(a.prompt)) how = Streamed::ReaderGone;
    if (how == Streamed::Done) how = stream(gen);
    Totals t;
    t.add(gen.stats());
    if (how == Streamed::Interrupted) std::fprintf(stderr, "\nember: interrupted\n");
    print_timings(t, load_seconds, seconds_since(t_start));
    return how == Streamed::Interrupted ? kInterruptedExit : 0;
}

// --- conversation mode -------------------------------------------------------------------------
enum class Input { Line, End, Interrupted };

// One user turn from stdin; a line ending in '\' continues on the next (llama.cpp's multi-line
// input). Without SA_RESTART a Ctrl-C makes the read fail with EINTR.
Input read_turn(std::string* out) {
    out->clear();
    char* buf = nullptr;
    size_t cap = 0;
    Input result = Input::Line;
    for (;;) {
        errno = 0;
        const ssize_t n = getline(&buf, &cap, stdin);
        if (n < 0) {
            result = g_interrupts > 0 || errno == EINTR ? Input::Interrupted : out->empty() ? Input::End : Input::Line;
            break;
        }
        std::string line(buf, size_t(n));
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
        if (!line.empty() && line.back() == '\\') {
            line.pop_back();
            *out += line + "\n";
            continue;
        }
        *out += line;
        break;
    }
    std::free(buf);
    return result;
}

int converse(Context& ctx, const MainArgs& a, const GenerateParams& gp, double load_seconds, Clock::time_point t_start) {
    const Model& model = ctx.model();
    const Tokenizer& tok = model.tokenizer();
    const Vocab& v = tok.vocab();
    const ChatFormat fmt = detect_chat_format(model.chat_template());  // an unknown template fails here, before the report
    // The template writes BOS itself for some formats; when the tokenizer adds it, it must not
    // appear twice.
    const std::string bos = v.bos_id >= 0 && !v.add_bos ? v.tokens[size_t(v.bos_id)] : "";
    const std::string eos = v.eos_id >= 0 ? v.tokens[size_t(v.eos_id)] : "";
    EncodeOptions opt;
    opt.add_special = true;
    opt.parse_special = true;

    print_load_report(ctx, a, gp);
    std::fprintf(stderr, "ember: chat format = %s; end a line with '\\' for more lines, Ctrl-D (EOF) to quit, "
                         "Ctrl-C to stop a reply\n\n",
                 chat_format_name(fmt));

    if (g_interrupts > 0) {  // Ctrl-C while the model loaded
        print_timings(Totals(), load_seconds, seconds_since(t_start));
        return kInterruptedExit;
    }
    std::vector<ChatMessage> messages;
    if (!a.system_prompt.empty()) messages.push_back({"system", a.system_prompt});
    std::string pending = a.prompt;  // -p in conversation mode is the first user turn (llama.cpp)
    // The conversation lives in one sequence; each turn re-renders it and evaluates only what
    // follows the longest prefix the sequence already holds.
    const int32_t seq = ctx.kv().seq_new();
    std::vector<int32_t> cached;
    Totals totals;
    int rc = 0;
    for (;;) {
        g_interrupts = 0;
        std::string user;
        if (!pending.empty()) {
            user.swap(pending);
        } else {
            if (!emit("> ")) break;
            const Input in = read_turn(&user);
            if (in == Input::Interrupted) {
                rc = kInterruptedExit;
                break;
            }
            if (in == Input::End) break;
            if (user.empty()) continue;
        }
        messages.push_back({"user", user});
        const std::string text = render_chat(fmt, messages, /*add_generation_prompt=*/true, bos, eos);
        const std::vector<int32_t> ids = tok.encode(text, opt);
        if (a.verbose_prompt) print_prompt_tokens(tok, text, ids);
        if (int64_t(ids.size()) >= ctx.n_ctx()) {
            std::fprintf(stderr, "\nerror: the conversation (%zu tokens) no longer fits in the context (n_ctx = %d); "
                                 "restart with a larger -c\n",
                         ids.size(), ctx.n_ctx());
            rc = 1;
            break;
        }
        size_t keep = 0;
        while (keep < cached.size() && keep < ids.size() && cached[keep] == ids[keep]) ++keep;
        if (keep == ids.size()) --keep;  // the last prompt token is evaluated for its logits
        ctx.kv().seq_truncate(seq, int32_t(keep));
        Generation gen(ctx, ids, gp, seq, int32_t(keep));
        const Streamed how = stream(gen);
        totals.add(gen.stats());
        // what the sequence holds now: the prompt, then the sampled tokens that were evaluated
        cached = ids;
        cached.insert(cached.end(), gen.tokens().begin(), gen.tokens().end());
        cached.resize(size_t(ctx.kv().seq_len(seq)));
        messages.push_back({"assistant", gen.text()});
        if (how == Streamed::ReaderGone) break;
        emit("\n");
        if (how == Streamed::Interrupted && g_interrupts >= 2) {  // a second Ctrl-C: leave
            rc = kInterruptedExit;
            break;
        }
    }
    emit("\n");
    print_timings(totals, load_seconds, seconds_since(t_start));
    return rc;
}

int run(int argc, char** argv) {
    const auto t_start = Clock::now();
    const MainArgs a = parse_main_args(argc, argv);
    if (a.help) {
        std::fputs(main_usage(argv[0]).c_str(), stdout);
        return 0;
    }
    if (a.version) {
        std::printf("%s\n", main_version().c_str());
        return 0;
    }
    // Conversation mode: the first Ctrl-C stops the reply, the second exits cleanly, a third at once.
    install_signal_handlers(a.conversation ? 2 : 1);
    const GenerateParams gp = generate_params(a);

    std::shared_ptr<const Model> model = Model::load(a.model);
    ContextParams cp;
    cp.n_ctx = a.n_ctx == 0 ? model->hparams().n_ctx_train : a.n_ctx;
    if (cp.n_ctx <= 0) fail<UsageError>("-c 0 asks for the training context, but the model does not give one");
    cp.n_batch = a.n_batch;
    cp.n_threads = a.n_threads;
    cp.n_seq_max = 1;
    cp.kv_type = a.cache_type == "f32" ? GGMLType::F32 : GGMLType::F16;
    Context ctx(model, cp);
    const double load_seconds = seconds_since(t_start);

    if (a.conversation) return converse(ctx, a, gp, load_seconds, t_start);
    return complete(ctx, a, gp, load_seconds, t_start);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "error: %s\n", one_line(e.what()).c_str());
    } catch (...) {
        std::fflush(stdout);
        std::fprintf(stderr, "error: unknown failure\n");
    }
    return 1;
}
