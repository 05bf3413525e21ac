// main_args.h — the command line of `main`: llama.cpp's flag names and defaults, parsed and
// range-checked into MainArgs before any model is touched.
//
// parse_main_args() throws UsageError (an ArgumentError) with a one-line message that names the
// flag, so `main` can print `error: <message>` and exit 1. The flags and their defaults follow
// llama.cpp's `llama-cli`, so scripts written for it run unchanged where ember supports the
// feature, and fail with a clear message where it does not.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common.h"

namespace ember {

struct UsageError : ArgumentError {
    using ArgumentError::ArgumentError;
};

struct MainArgs {
    std::string model;                 // -m (required)
    std::string prompt;                // -p, or the contents of -f
    std::string prompt_file;           // -f (empty: none)
    std::string system_prompt;         // -sys (conversation mode)
    std::vector<std::string> reverse_prompts;  // -r, may repeat
    int32_t n_predict = -1;            // -1 (or -2): until EOS or the context is full
    int32_t n_ctx = 4096;              // 0: the model's training context
    int32_t n_batch = 512;
    int32_t n_threads = 0;             // 0: one per hardware thread
    bool seed_random = true;           // -s -1 (the default)
    uint64_t seed = 0;
    float temp = 0.8f;
    int32_t top_k = 40;
    float top_p = 0.95f;
    float min_p = 0.05f;
    float repeat_penalty = 1.0f;
    int32_t repeat_last_n = 64;
    float presence_penalty = 0.0f;
    float frequency_penalty = 0.0f;
    bool ignore_eos = false;
    bool escape = true;                // process \n \t ... in -p (llama.cpp's default)
    std::string cache_type = "f16";    // -ctk / -ctv (must agree: ember keeps K and V in one type)
    bool verbose_prompt = false;
    bool display_prompt = true;
    bool conversation = false;         // -i / -cnv
    bool help = false;
    bool version = false;
};

// Parses argv[1..argc-1]. Reads the -f file (throws UsageError when it cannot) and applies the
// escape processing, so the result is ready to run.
MainArgs parse_main_args(int argc, const char* const* argv);

// llama.cpp's escape processing: \n \r \t \' \" \\ and \xHH; an unknown escape stays as written.
std::string process_escapes(const std::string& s);

// The -h text.
std::string main_usage(const char* program);

// "ember main <version>".
std::string main_version();

}  // namespace ember
