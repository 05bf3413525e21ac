// big_buffer.h — large zero-filled buffers (the KV cache, the repacked weights), optionally on
// huge pages.
//
// Pages come straight from the OS, zero, and stay untouched, hence not resident, until first
// written. A buffer may ask for 2 MiB pages: each decoding step streams all the repacked
// weights (~70-140 MB), with 4 KiB pages a TLB miss every 4 KiB (Zen 3's second-level TLB
// covers 8 MiB); on huge pages single-sequence decoding ran ~4% faster (measured). The KV cache
// does not ask: a batch of 16 decoding sequences ran ~10% slower with it on huge pages
// (measured, no compaction stalls; the cause not found). Linux gives transparent huge pages to
// anonymous memory that asks (MADV_HUGEPAGE, with /sys/kernel/mm/transparent_hugepage/enabled
// "madvise" or "always"); elsewhere, or when the kernel says no, the buffer has plain pages.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ember {

class BigBuffer {
public:
    BigBuffer() = default;
    // throws CapacityError when the memory is not there
    explicit BigBuffer(uint64_t bytes, bool huge_pages = false);
    ~BigBuffer();
    BigBuffer(BigBuffer&& o) noexcept;
    BigBuffer& operator=(BigBuffer&& o) noexcept;
    BigBuffer(const BigBuffer&) = delete;
    BigBuffer& operator=(const BigBuffer&) = delete;

    uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }

private:
    void release();
    uint8_t* data_ = nullptr;  // page aligned (2 MiB on huge pages)
    uint64_t size_ = 0;
    void* map_ = nullptr;      // the mapping, which may start before data_
    uint64_t map_bytes_ = 0;
};

}  // namespace ember
