// mapped_file.h — a read-only memory mapping of a whole file.
// Owned through shared_ptr so zero-copy views (numpy arrays, tensor views) can keep it alive
// after the GGUF reader that opened it is closed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ember {

class MappedFile {
public:
    explicit MappedFile(const std::string& path);  // throws FileError / GGUFError
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }
    const std::string& path() const { return path_; }
    // Give back the physical pages of [p, p + n) (a range inside the mapping that will not be
    // read again soon, e.g. weights repacked elsewhere); reading it later faults the file back in.
    void release(const uint8_t* p, uint64_t n) const;

private:
    std::string path_;
    const uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
};

}  // namespace ember
