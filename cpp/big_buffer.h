// big_buffer.h — large zero-filled buffers (the KV cache, the repacked weights), on huge pages
// where the OS offers them.
//
// The forward pass reads ~100 MB per decoding step in scattered pieces: with 4 KiB pages every
// piece is a TLB miss (Zen 3's second-level TLB covers 8 MiB), and a decoding batch's KV tiles
// stalled on them (an L1-resident attention tile runs ~4x faster than one from memory;
// 2 MiB pages took ~20% off the latter, measured). Linux gives transparent huge pages to
// anonymous memory that asks (MADV_HUGEPAGE; /sys/kernel/mm/transparent_hugepage/enabled set
// to "madvise" or "always"); elsewhere, or when the kernel says no, the buffer is plain pages.
// Pages stay untouched, hence not resident, until first written.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ember {

class BigBuffer {
public:
    BigBuffer() = default;
    explicit BigBuffer(uint64_t bytes);  // throws CapacityError when the memory is not there
    ~BigBuffer();
    BigBuffer(BigBuffer&& o) noexcept;
    BigBuffer& operator=(BigBuffer&& o) noexcept;
    BigBuffer(const BigBuffer&) = delete;
    BigBuffer& operator=(const BigBuffer&) = delete;

    uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }

private:
    void release();
    uint8_t* data_ = nullptr;  // 2 MiB aligned (4 KiB below 2 MiB)
    uint64_t size_ = 0;
    void* map_ = nullptr;      // the mapping, which may start before data_
    uint64_t map_bytes_ = 0;
};

}  // namespace ember
