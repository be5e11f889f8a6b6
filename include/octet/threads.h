// A small fork-join pool: parallel_for splits [0, n) into contiguous ranges, one per
// thread, the caller taking part. Meant for kernel-level parallelism on a few cores.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "octet/status.h"

namespace octet {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // n_threads <= 0: hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // fn(begin, end, thread_index) over a split of [0, n); ranges are multiples of `grain`
  // (but the last). Blocks until all ranges are done. Not re-entrant.
  void parallel_for(int64_t n, int64_t grain,
                    const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  void worker(int idx);
  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  // A job is published by bumping generation_ (release) after its fields are written.
  // Workers and the caller spin briefly before sleeping on the condition variables: a chunk
  // or a decode step runs hundreds of parallel_for calls microseconds apart, and a futex
  // wake-up per call costs as much as a small GEMM.
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0, job_grain_ = 1;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  bool stop_ = false;
};

// Runs fn on the pool if there is one, else inline on the caller.
void parallel_for(ThreadPool* pool, int64_t n, int64_t grain,
                  const std::function<void(int64_t, int64_t, int)>& fn);

// parallel_for for work that can fail: fn(begin, end) returns a Status; the call returns the
// first error any range reported (Ok when none). Ranges are not cancelled by another's error.
Status parallel_try(ThreadPool* pool, int64_t n, int64_t grain,
                    const std::function<Status(int64_t, int64_t)>& fn);

}  // namespace octet
