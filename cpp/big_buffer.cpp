// big_buffer.cpp — see big_buffer.h.
#include "big_buffer.h"

#include <sys/mman.h>

#include <utility>

#include "common.h"

namespace ember {

static constexpr uint64_t kHugePage = uint64_t(1) << 21;

BigBuffer::BigBuffer(uint64_t bytes, bool huge_pages) {
    if (bytes == 0) return;
    // Huge pages need 2 MiB alignment: map a huge page more and start at the first boundary.
    const bool huge = huge_pages && bytes >= kHugePage;
    uint64_t map_bytes = 0;
    if (__builtin_add_overflow(bytes, huge ? kHugePage : 0, &map_bytes) || map_bytes > (uint64_t(1) << 46))
        fail<CapacityError>("could not allocate ", bytes >> 20, " MiB: too large");
    void* m = ::mmap(nullptr, size_t(map_bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) fail<CapacityError>("could not allocate ", bytes >> 20, " MiB");
    map_ = m;
    map_bytes_ = map_bytes;
    const uintptr_t start = reinterpret_cast<uintptr_t>(m);
    data_ = reinterpret_cast<uint8_t*>(huge ? (start + kHugePage - 1) / kHugePage * kHugePage : start);
    size_ = bytes;
#ifdef MADV_HUGEPAGE
    if (huge) ::madvise(data_, size_t(bytes), MADV_HUGEPAGE);  // advice: a refusal changes nothing
#endif
}

void BigBuffer::release() {
    if (map_) ::munmap(map_, size_t(map_bytes_));
    map_ = nullptr;
    data_ = nullptr;
    size_ = map_bytes_ = 0;
}

BigBuffer::~BigBuffer() { release(); }

BigBuffer::BigBuffer(BigBuffer&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      map_(std::exchange(o.map_, nullptr)),
      map_bytes_(std::exchange(o.map_bytes_, 0)) {}

BigBuffer& BigBuffer::operator=(BigBuffer&& o) noexcept {
    if (this != &o) {
        release();
        data_ = std::exchange(o.data_, nullptr);
        size_ = std::exchange(o.size_, 0);
        map_ = std::exchange(o.map_, nullptr);
        map_bytes_ = std::exchange(o.map_bytes_, 0);
    }
    return *this;
}

}  // namespace ember
