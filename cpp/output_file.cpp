// output_file.cpp — temporary file + rename, POSIX.
#include "output_file.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ember {

static constexpr size_t kBufferSize = 4 << 20;  // large sequential writes

OutputFile::OutputFile(const std::string& path) : path_(path) {
    if (path.empty()) throw OutputFileError("output path is empty", ENOENT);
    // O_EXCL on a fresh name: never opens (or truncates) anything that already exists. Mode 0666
    // lets the umask decide the permissions, as for any newly created file.
    static std::atomic<unsigned> counter{0};
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
        tmp_path_ = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
        fd = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        const int err = errno;
        tmp_path_.clear();
        throw OutputFileError("cannot create output file '" + path + "': " + std::strerror(err), err);
    }
    f_ = ::fdopen(fd, "wb");
    if (!f_) {
        const int err = errno;
        ::close(fd);
        ::unlink(tmp_path_.c_str());
        tmp_path_.clear();
        throw OutputFileError("cannot create output file '" + path + "': " + std::strerror(err), err);
    }
    std::setvbuf(f_, nullptr, _IOFBF, kBufferSize);
}

OutputFile::~OutputFile() {
    if (!committed_) discard();
}

void OutputFile::discard() noexcept {
    if (f_) std::fclose(f_);
    f_ = nullptr;
    if (!tmp_path_.empty()) ::unlink(tmp_path_.c_str());
    tmp_path_.clear();
}

void OutputFile::fail_errno(const char* what, int err) {
    discard();
    throw OutputFileError(std::string(what) + " output file '" + path_ + "': " + std::strerror(err), err);
}

void OutputFile::write(const void* data, uint64_t n) {
    if (!f_) throw OutputFileError("output file '" + path_ + "' is already closed", EBADF);
    if (n && std::fwrite(data, 1, size_t(n), f_) != size_t(n)) fail_errno("cannot write", errno ? errno : EIO);
    size_ += n;
}

void OutputFile::write_zeros(uint64_t n) {
    static const uint8_t zeros[256] = {};
    while (n > 0) {
        const uint64_t k = n < sizeof(zeros) ? n : sizeof(zeros);
        write(zeros, k);
        n -= k;
    }
}

void OutputFile::commit() {
    if (!f_) throw OutputFileError("output file '" + path_ + "' is already closed", EBADF);
    // A write error can surface only at flush or close (delayed allocation, NFS): check both.
    if (std::fflush(f_) != 0) fail_errno("cannot write", errno ? errno : EIO);
    const int rc = std::fclose(f_);
    f_ = nullptr;
    if (rc != 0) fail_errno("cannot close", errno ? errno : EIO);
    if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) fail_errno("cannot rename the temporary file to the", errno);
    tmp_path_.clear();
    committed_ = true;
}

}  // namespace ember
