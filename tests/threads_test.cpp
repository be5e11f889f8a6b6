#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "octet/aligned.h"
#include "octet/threads.h"

namespace octet {
namespace {

// The SIMD buffers' allocators: 64-byte alignment always; HugeVector buffers of at least
// 2 MiB start on a 2 MiB boundary (the huge-page advice needs whole 2 MiB pages) and hold
// their data through growth (the allocation size picks the matching delete).
TEST(AlignedStorage, AlignmentAndHugeBuffers) {
  // 300 000 floats (1.2 MB) grow past 2 MiB: a 64-byte block freed, a 2 MiB-aligned one made.
  for (size_t n : {size_t{1}, size_t{1000}, size_t{300000}, size_t{1} << 20, size_t{3} << 20}) {
    detail::AlignedVector<float> a(n, 1.5f);
    detail::HugeVector<float> h(n, 2.5f);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % 64, 0u) << n;
    const uintptr_t want = n * sizeof(float) >= detail::kHugePageBytes ? detail::kHugePageBytes : 64;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(h.data()) % want, 0u) << n;
    EXPECT_EQ(h[n - 1], 2.5f);
    h.resize(n * 2 + 5, 3.5f);
    const uintptr_t grown =
        (n * 2 + 5) * sizeof(float) >= detail::kHugePageBytes ? detail::kHugePageBytes : 64;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(h.data()) % grown, 0u) << n;
    EXPECT_EQ(h[n - 1], 2.5f);
    EXPECT_EQ(h[n * 2 + 4], 3.5f);
    EXPECT_EQ(a[n - 1], 1.5f);
  }
}

TEST(ThreadPool, CoversEveryIndexOnceInGrainAlignedRanges) {
  ThreadPool pool(3);
  for (int64_t n : {1, 7, 16, 100, 1001}) {
    for (int64_t grain : {1, 4, 16}) {
      std::vector<std::atomic<int>> hits(n);
      pool.parallel_for(n, grain, [&](int64_t b, int64_t e, int) {
        EXPECT_EQ(b % grain, 0);
        for (int64_t i = b; i < e; ++i) hits[i]++;
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << n << " " << grain << " " << i;
    }
  }
}

TEST(ThreadPool, ReusableManyTimes) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  for (int r = 0; r < 2000; ++r)
    pool.parallel_for(10, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) sum += i;
    });
  EXPECT_EQ(sum.load(), 2000 * 45);
}

// parallel_try: Ok when every range is; else one of the ranges' errors (the first reported),
// every range still run; the same without a pool (inline).
TEST(ThreadPool, ParallelTryReportsAnErrorAndRunsEveryRange) {
  ThreadPool pool(3);
  for (ThreadPool* p : {&pool, static_cast<ThreadPool*>(nullptr)}) {
    std::vector<std::atomic<int>> hits(100);
    Status ok = parallel_try(p, 100, 4, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i]++;
      return Status::Ok();
    });
    EXPECT_TRUE(ok.ok());
    std::atomic<int64_t> ran{0};
    Status bad = parallel_try(p, 100, 4, [&](int64_t b, int64_t e) -> Status {
      ran += e - b;
      for (int64_t i = b; i < e; ++i)
        if (i == 37 || i == 90) return Status::Error("bad row " + std::to_string(i));
      return Status::Ok();
    });
    ASSERT_FALSE(bad.ok());
    EXPECT_TRUE(bad.message() == "bad row 37" || bad.message() == "bad row 90") << bad.message();
    EXPECT_EQ(ran.load(), 100);
    for (int64_t i = 0; i < 100; ++i) ASSERT_EQ(hits[i].load(), 1) << i;
  }
}

}  // namespace
}  // namespace octet
