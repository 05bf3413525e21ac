// mapped_file.cpp — POSIX mmap of a whole file, read-only and private.
#include "mapped_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

namespace ember {

MappedFile::MappedFile(const std::string& path) : path_(path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        throw FileError("cannot open '" + path + "': " + std::strerror(err), err);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        throw FileError("cannot stat '" + path + "': " + std::strerror(err), err);
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        throw FileError("'" + path + "' is a directory, not a GGUF file", EISDIR);
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail<GGUFError>("GGUF file '", path, "': not a regular file");
    }
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ == 0) {
        ::close(fd);
        fail<GGUFError>("GGUF file '", path, "': file is empty (0 bytes)");
    }
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    ::close(fd);  // the mapping keeps its own reference to the file
    if (p == MAP_FAILED) throw FileError("cannot mmap '" + path + "': " + std::strerror(err), err);
    data_ = static_cast<const uint8_t*>(p);
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace ember

namespace ember {

void MappedFile::release(const uint8_t* p, uint64_t n) const {
    const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
    const uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
    const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
    if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);  // advice: failure changes nothing
}

}  // namespace ember
