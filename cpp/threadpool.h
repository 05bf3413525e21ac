// threadpool.h — persistent worker threads for the forward pass.
//
// One parallel_for per operation: the index range is cut into contiguous pieces, always the same
// for a given range, and every piece is computed by one thread — so which values are added in
// which order never depends on timing, and results are reproducible run to run.
// Pieces are claimed, not assigned: the caller and the workers take them from a shared
// counter, so a worker the OS has not scheduled yet (a busy machine, more threads than free
// cores) costs nothing — the caller does its piece too instead of waiting for it.
// Workers spin briefly on an atomic generation counter before sleeping on a condition
// variable: the forward pass issues hundreds of small jobs per token, and a futex wake-up for
// each would cost more than the work. No allocation per job.
#pragma once

#include <atomic>
#include <condition_variable>
#include <algorithm>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace ember {

class ThreadPool {
public:
    explicit ThreadPool(int n_threads);  // total threads including the caller; >= 1
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }

    // fn(begin, end, thread) for each of min(n, size()) pieces of [0, n); `thread` identifies the
    // executing thread (0 .. size()-1, for per-thread scratch), not the piece. Returns when all
    // pieces are done; an exception thrown by any piece is rethrown here (the first one).
    template <class F>
    void parallel_for(int64_t n, F&& fn) {
        auto call = [](void* ctx, int64_t b, int64_t e, int t) { (*static_cast<std::remove_reference_t<F>*>(ctx))(b, e, t); };
        run(n, std::min<int64_t>(n, n_threads_), call, &fn);
    }

    // fn(begin, end, thread) over [0, n) in pieces that shrink toward the end ("guided"): each is
    // a 1/(2 size()) share of what is left, but at least `grain` long. The first pieces are large
    // (few claims), the last small, so threads that run at different speeds (another process on
    // a core, a late wake-up) still finish together: with equal halves the faster thread waited
    // ~7% of each matmul (measured). The pieces depend only on n, grain and size().
    template <class F>
    void parallel_guided(int64_t n, int64_t grain, F&& fn) {
        auto call = [](void* ctx, int64_t b, int64_t e, int t) { (*static_cast<std::remove_reference_t<F>*>(ctx))(b, e, t); };
        run_guided(n, grain, call, &fn);
    }

    // fn(task, thread) for every task in [0, n), handed out one at a time: for work whose cost
    // varies a lot from task to task (causal attention). Each task's result must not depend on
    // the thread that runs it.
    template <class F>
    void parallel_tasks(int64_t n, F&& fn) {
        auto call = [](void* ctx, int64_t b, int64_t e, int t) {
            for (int64_t i = b; i < e; ++i) (*static_cast<std::remove_reference_t<F>*>(ctx))(i, t);
        };
        run(n, std::min<int64_t>(n, kMaxPieces), call, &fn);
    }

private:
    using JobFn = void (*)(void* ctx, int64_t begin, int64_t end, int thread);
    // Pieces [n*p/n_pieces, n*(p+1)/n_pieces) for p < n_pieces, claimed by the threads.
    void run(int64_t n, int64_t n_pieces, JobFn fn, void* ctx);
    void run_guided(int64_t n, int64_t grain, JobFn fn, void* ctx);
    // Publish a job of n_pieces pieces, take part in it, and wait for its end.
    void publish(int64_t n, int64_t n_pieces, JobFn fn, void* ctx);
    void worker(int index);
    // Claim and run pieces of job `job` until none is left; false when the job is over.
    void work_on(uint32_t job, int thread);

    int n_threads_;
    std::vector<std::thread> threads_;
    // The current job. claim_ packs the job number (24 bits), its piece count (20 bits) and the
    // next unclaimed piece (20 bits) into one word, so a claimer checks a piece against the count
    // of the job it read, and its compare-and-swap succeeds only if that job is still published;
    // the job's other fields are read only after a successful claim (the job cannot end before
    // the claimed piece is done).
    static constexpr int64_t kMaxPieces = (int64_t(1) << 20) - 1;
    JobFn job_fn_ = nullptr;
    void* job_ctx_ = nullptr;
    int64_t job_n_ = 0, job_pieces_ = 0;
    // Piece p of a guided job is [guided_[p], guided_[p + 1]); job_guided_ says the job is one.
    static constexpr int kMaxGuided = 256;
    int64_t guided_[kMaxGuided + 1] = {};
    bool job_guided_ = false;
    // Each counter on its own cache line: the caller polls done_ and the workers poll
    // generation_ while pieces are being claimed; sharing one line, every claim and every
    // finished piece would pull it away from all the pollers.
    alignas(64) std::atomic<uint64_t> claim_{0};
    alignas(64) std::atomic<int64_t> done_{0};
    alignas(64) std::atomic<uint64_t> generation_{0};
    char pad_[64 - sizeof(std::atomic<uint64_t>)] = {};
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::condition_variable wake_;
    std::exception_ptr error_;
    std::mutex error_mutex_;
};

// Threads to use when the caller says 0: one per hardware thread.
int default_thread_count();

}  // namespace ember
