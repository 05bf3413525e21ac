// output_file.h — a file that appears under its name only when complete.
//
// OutputFile writes to a temporary sibling ("<path>.tmp.<pid>.<n>", same directory, so the final
// rename stays on one file system and is atomic) and renames it onto `path` in commit(). If the
// object is destroyed without commit() — an exception on the way, a cancelled run — the
// temporary file is removed, so a failed run never leaves a partial or truncated output behind
// and never clobbers an existing file at `path`.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "common.h"

namespace ember {

// The output could not be created, written or renamed. Like FileError it carries errno, but it
// is about a file being written (the binding raises a plain OSError, not a GGUF read error).
struct OutputFileError : FileError {
    using FileError::FileError;
};

class OutputFile {
public:
    explicit OutputFile(const std::string& path);  // throws OutputFileError
    ~OutputFile();                                 // removes the temporary file unless committed
    OutputFile(const OutputFile&) = delete;
    OutputFile& operator=(const OutputFile&) = delete;

    void write(const void* data, uint64_t n);  // throws OutputFileError (disk full, ...)
    void write_zeros(uint64_t n);
    uint64_t size() const { return size_; }     // bytes written so far
    const std::string& path() const { return path_; }

    void commit();  // flush, close and rename into place; throws OutputFileError

private:
    [[noreturn]] void fail_errno(const char* what, int err);
    void discard() noexcept;

    std::string path_, tmp_path_;
    std::FILE* f_ = nullptr;
    uint64_t size_ = 0;
    bool committed_ = false;
};

}  // namespace ember
