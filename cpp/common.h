// common.h — error types and checked arithmetic shared by the whole core.
//
// The core never exits or prints on error: it throws ember::Error (or a subclass), and the
// Python binding / `main` turn that into an exception or a one-line message. Messages are
// built with fail(...), which streams its arguments, so call sites read as sentences:
//   if (n_dims > 4) fail<GGUFError>("tensor '", name, "' has ", n_dims, " dims (max 4)");
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

namespace ember {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Malformed or unsupported GGUF content (surfaces as ember.GGUFError, a ValueError).
struct GGUFError : Error {
    using Error::Error;
};

// The file could not be opened at all (missing, a directory, no permission); errno_value
// lets the binding raise the matching OSError subclass.
struct FileError : Error {
    FileError(const std::string& msg, int err) : Error(msg), errno_value(err) {}
    int errno_value;
};

// A caller passed a bad argument (surfaces as ValueError).
struct ArgumentError : Error {
    using Error::Error;
};

// A fixed capacity ran out: sequence slots or KV-cache blocks (the caller may wait and retry).
struct CapacityError : Error {
    using Error::Error;
};

template <class E = Error, class... Args>
[[noreturn]] void fail(const Args&... args) {
    std::ostringstream os;
    (os << ... << args);
    throw E(os.str());
}

// Overflow-checked arithmetic on sizes read from untrusted input.
inline bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }
inline bool add_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_add_overflow(a, b, out); }

}  // namespace ember
