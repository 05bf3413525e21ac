// threadpool.cpp — see threadpool.h.
#include "threadpool.h"

#include <algorithm>

#include "common.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax() { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax() { __asm__ volatile("yield"); }
#else
static inline void cpu_relax() {}
#endif

namespace ember {

// Some tens of microseconds of spinning: longer than the gap between two jobs of one forward
// pass, much shorter than the gap between two requests.
static constexpr int kSpinIterations = 1 << 13;

int default_thread_count() { return int(std::max(1u, std::thread::hardware_concurrency())); }

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads) {
    if (n_threads < 1) fail<ArgumentError>("n_threads must be >= 1, got ", n_threads);
    threads_.reserve(size_t(n_threads - 1));
    try {
        for (int i = 1; i < n_threads; ++i) threads_.emplace_back(&ThreadPool::worker, this, i);
    } catch (const std::system_error& e) {
        stop_ = true;
        wake_.notify_all();
        for (std::thread& t : threads_) t.join();
        fail("could not start ", n_threads, " threads: ", e.what());
    }
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
}

static constexpr uint64_t kField = (uint64_t(1) << 20) - 1;
static uint64_t claim_word(uint32_t job, int64_t pieces) { return (uint64_t(job & 0xFFFFFF) << 40) | (uint64_t(pieces) << 20); }

void ThreadPool::work_on(uint32_t job, int thread) {
    uint64_t c = claim_.load(std::memory_order_acquire);
    for (;;) {
        if (uint32_t(c >> 40) != (job & 0xFFFFFF)) return;  // a later job: this one is over
        const uint64_t piece = c & kField;
        if (piece >= ((c >> 20) & kField)) return;            // every piece claimed
        if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
        // The job stays published until all its pieces are done, this one included.
        const int64_t n = job_n_, p = job_pieces_;
        const int64_t begin = job_guided_ ? guided_[piece] : n * int64_t(piece) / p;
        const int64_t end = job_guided_ ? guided_[piece + 1] : n * int64_t(piece + 1) / p;
        if (begin < end) {
            try {
                job_fn_(job_ctx_, begin, end, thread);
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex_);
                if (!error_) error_ = std::current_exception();
            }
        }
        done_.fetch_add(1, std::memory_order_acq_rel);
        c = claim_.load(std::memory_order_acquire);
    }
}

void ThreadPool::run_guided(int64_t n, int64_t grain, JobFn fn, void* ctx) {
    if (n <= 0) return;
    grain = std::max<int64_t>(grain, 1);
    if (n_threads_ == 1 || n <= grain) {
        fn(ctx, 0, n, 0);
        return;
    }
    const int64_t share = 2 * int64_t(n_threads_);
    int p = 0;
    guided_[0] = 0;
    for (int64_t b = 0; b < n; ++p) {
        const int64_t left = n - b;
        const int64_t size = p + 1 == kMaxGuided ? left : std::max(grain, (left + share - 1) / share);
        b += std::min(size, left);
        guided_[p + 1] = b;
    }
    job_guided_ = true;
    publish(n, p, fn, ctx);
}

void ThreadPool::run(int64_t n, int64_t n_pieces, JobFn fn, void* ctx) {
    if (n <= 0) return;
    if (n_threads_ == 1 || n_pieces == 1) {
        for (int64_t p = 0; p < n_pieces; ++p) fn(ctx, n * p / n_pieces, n * (p + 1) / n_pieces, 0);
        return;
    }
    if (n_pieces > kMaxPieces) fail<ArgumentError>("ThreadPool: too many pieces (", n_pieces, ")");
    job_guided_ = false;
    publish(n, n_pieces, fn, ctx);
}

void ThreadPool::publish(int64_t n, int64_t n_pieces, JobFn fn, void* ctx) {
    job_fn_ = fn;
    job_ctx_ = ctx;
    job_n_ = n;
    job_pieces_ = n_pieces;
    error_ = nullptr;
    done_.store(0, std::memory_order_relaxed);
    uint64_t gen;
    {
        // Taking the mutex orders the publication against a worker that is about to sleep.
        std::lock_guard<std::mutex> lock(mutex_);
        gen = generation_.load(std::memory_order_relaxed) + 1;
        claim_.store(claim_word(uint32_t(gen), n_pieces), std::memory_order_release);
        generation_.store(gen, std::memory_order_release);
    }
    wake_.notify_all();
    work_on(uint32_t(gen), 0);
    // Pieces claimed by workers may still run; a descheduled one gets the core after a while.
    for (int spin = 0; done_.load(std::memory_order_acquire) != n_pieces; ++spin) {
        if (spin < kSpinIterations) cpu_relax();
        else std::this_thread::yield();
    }
    if (error_) std::rethrow_exception(error_);
}

void ThreadPool::worker(int index) {
    uint64_t seen = 0;
    for (;;) {
        uint64_t gen = generation_.load(std::memory_order_acquire);
        for (int spin = 0; gen == seen && spin < kSpinIterations; ++spin) {
            cpu_relax();
            gen = generation_.load(std::memory_order_acquire);
        }
        if (gen == seen) {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stop_.load() || generation_.load(std::memory_order_acquire) != seen; });
            gen = generation_.load(std::memory_order_acquire);
        }
        if (stop_.load()) return;
        seen = gen;
        work_on(uint32_t(gen), index);
    }
}

}  // namespace ember
