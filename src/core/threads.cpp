#include "octet/threads.h"

#include <algorithm>

namespace octet {

namespace {
// Range of thread `idx` out of `nt` over n items in units of grain.
void split(int64_t n, int64_t grain, int nt, int idx, int64_t* b, int64_t* e) {
  const int64_t units = (n + grain - 1) / grain;
  const int64_t per = units / nt, extra = units % nt;
  const int64_t ub = idx * per + std::min<int64_t>(idx, extra);
  const int64_t ue = ub + per + (idx < extra ? 1 : 0);
  *b = std::min(n, ub * grain);
  *e = std::min(n, ue * grain);
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = std::max(1u, std::thread::hardware_concurrency());
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_start_.notify_all();
  for (auto& t : threads_) t.join();
}

namespace {
// About 50-100 µs of polling before a thread blocks.
constexpr int kSpins = 20000;
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

void ThreadPool::worker(int idx) {
  uint64_t seen = 0;
  for (;;) {
    // Spin for the next job, then sleep.
    bool got = false;
    for (int i = 0; i < kSpins; ++i) {
      if (generation_.load(std::memory_order_acquire) != seen) {
        got = true;
        break;
      }
      cpu_relax();
    }
    if (!got) {
      std::unique_lock<std::mutex> lk(mu_);
      cv_start_.wait(lk, [&] { return stop_ || generation_.load() != seen; });
      if (stop_) return;
    }
    if (generation_.load(std::memory_order_acquire) == seen) continue;
    const std::function<void(int64_t, int64_t, int)>* job;
    int64_t n, grain;
    {
      // The fields are stable while this generation is pending (the caller waits for all).
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) return;
      seen = generation_.load();
      job = job_;
      n = job_n_;
      grain = job_grain_;
    }
    int64_t b, e;
    split(n, grain, n_threads_, idx, &b, &e);
    if (b < e) (*job)(b, e, idx);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lk(mu_);
      cv_done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (n_threads_ == 1 || n <= grain) {
    fn(0, n, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    job_ = &fn;
    job_n_ = n;
    job_grain_ = grain;
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_start_.notify_all();
  int64_t b, e;
  split(n, grain, n_threads_, 0, &b, &e);
  if (b < e) fn(b, e, 0);
  for (int i = 0; i < kSpins && pending_.load(std::memory_order_acquire) != 0; ++i) cpu_relax();
  if (pending_.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_done_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }
  std::lock_guard<std::mutex> lk(mu_);
  job_ = nullptr;
}

void parallel_for(ThreadPool* pool, int64_t n, int64_t grain,
                  const std::function<void(int64_t, int64_t, int)>& fn) {
  if (pool) {
    pool->parallel_for(n, grain, fn);
  } else if (n > 0) {
    fn(0, n, 0);
  }
}

Status parallel_try(ThreadPool* pool, int64_t n, int64_t grain,
                    const std::function<Status(int64_t, int64_t)>& fn) {
  std::mutex mu;
  Status first = Status::Ok();
  parallel_for(pool, n, grain, [&](int64_t b, int64_t e, int) {
    Status st = fn(b, e);
    if (st.ok()) return;
    std::lock_guard<std::mutex> lk(mu);
    if (first.ok()) first = std::move(st);
  });
  return first;
}

}  // namespace octet
