// W4A8 GEMM over Q4_0 blocks (kernels/q4_gemm.h): the reference against a double-precision
// product of the file's weights and the activations, and the AVX2 kernel against the
// reference bit for bit on odd shapes, sub-ranges and the int16 sums' extreme values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/q4_gemm.h"
#include "octet/cpu.h"
#include "octet/half.h"

namespace octet::kernels::q4 {
namespace {

struct Q4Matrix {
  int64_t n, k;
  std::vector<uint8_t> bytes;
  std::vector<const uint8_t*> rows;
  Q4View view() const { return {rows.data(), n, k}; }
  float d(int64_t r, int64_t b) const {
    uint16_t h;
    std::memcpy(&h, bytes.data() + r * (k / kBlock * kBlockBytes) + b * kBlockBytes, 2);
    return fp16_to_fp32(h);
  }
  int code(int64_t r, int64_t kk) const {  // 0..15
    const uint8_t byte = bytes[static_cast<size_t>(r * (k / kBlock * kBlockBytes) +
                                                   (kk / kBlock) * kBlockBytes + 2 + kk % 16)];
    return kk % kBlock < 16 ? byte & 15 : byte >> 4;
  }
};

// fixed_code >= 0: every nibble that value (the int16 sums' extremes).
Q4Matrix random_q4(int64_t n, int64_t k, std::mt19937& g, int fixed_code = -1) {
  Q4Matrix m{n, k, std::vector<uint8_t>(static_cast<size_t>(n * (k / kBlock) * kBlockBytes)), {}};
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  for (int64_t blk = 0; blk < n * (k / kBlock); ++blk) {
    uint8_t* p = m.bytes.data() + blk * kBlockBytes;
    const uint16_t h = fp32_to_fp16(g() % 2 ? scale(g) : -scale(g));
    std::memcpy(p, &h, 2);
    for (int j = 0; j < 16; ++j)
      p[2 + j] = fixed_code >= 0 ? static_cast<uint8_t>(fixed_code * 17) : static_cast<uint8_t>(g());
  }
  m.rows = consecutive_rows(m.bytes.data(), n, k / kBlock * kBlockBytes);
  return m;
}

struct Case {
  int64_t m, n, k;
};

struct Inputs {
  std::vector<uint8_t> a;
  std::vector<float> rs, bias, corr;
};

Inputs inputs(const Q4Matrix& w, int64_t m, int64_t ld, std::mt19937& g, int fixed_act = -1) {
  Inputs in;
  in.a.resize(static_cast<size_t>(m * ld));
  for (auto& v : in.a) v = fixed_act >= 0 ? static_cast<uint8_t>(fixed_act) : static_cast<uint8_t>(g());
  std::uniform_real_distribution<float> u(0.5f, 2.0f);
  for (int64_t r = 0; r < m; ++r) in.rs.push_back(u(g) * 0.01f);
  for (int64_t c = 0; c < w.n; ++c) in.bias.push_back(u(g) - 1.25f);
  in.corr.resize(static_cast<size_t>(w.n));
  column_offsets(w.view(), in.corr.data());
  return in;
}

TEST(Q4Gemm, ReferenceIsTheFilesWeightsTimesInt8Activations) {
  std::mt19937 g(7);
  for (const Case c : {Case{3, 17, 64}, Case{5, 40, 544}}) {
    const Q4Matrix w = random_q4(c.n, c.k, g);
    const Inputs in = inputs(w, c.m, c.k, g);
    std::vector<float> y(static_cast<size_t>(c.m * c.n), 0.0f);
    int8::Epilogue ep;
    ep.y = y.data();
    ep.ldy = c.n;
    ep.bias = in.bias.data();
    gemm_ref({in.a.data(), c.k, in.rs.data()}, w.view(), in.corr.data(), ep, 0, c.m, 0,
             (c.n + 15) / 16);
    for (int64_t r = 0; r < c.m; ++r)
      for (int64_t n = 0; n < c.n; ++n) {
        double want = 0, mag = 0;
        for (int64_t k = 0; k < c.k; ++k) {
          const double t = (in.a[static_cast<size_t>(r * c.k + k)] - 128.0) *
                           (w.code(n, k) - 8.0) * w.d(n, k / kBlock);
          want += t;
          mag += std::fabs(t);
        }
        want = want * in.rs[r] + in.bias[n];
        EXPECT_NEAR(y[r * c.n + n], want, 1e-5 * (mag * in.rs[r] + 1)) << r << "," << n;
      }
  }
}

void expect_kernel_equals_ref(const Q4Matrix& w, const Inputs& in, int64_t m, int64_t ld,
                              int64_t m0, int64_t m1, int64_t p0, int64_t p1, bool bias,
                              bool accumulate) {
  std::vector<float> want(static_cast<size_t>(m * w.n), 0.25f), got = want;
  int8::Epilogue ep;
  ep.ldy = w.n;
  ep.bias = bias ? in.bias.data() : nullptr;
  ep.accumulate = accumulate;
  const Acts a{in.a.data(), ld, in.rs.data()};
  ep.y = want.data();
  gemm_ref(a, w.view(), in.corr.data(), ep, m0, m1, p0, p1);
  ep.y = got.data();
  gemm_avx2(a, w.view(), in.corr.data(), ep, m0, m1, p0, p1);
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
        << "m " << m << " n " << w.n << " k " << w.k << " at row " << i / w.n << " col "
        << i % w.n << ": " << got[i] << " vs " << want[i];
}

TEST(Q4Gemm, Avx2EqualsReferenceOnOddShapes) {
  if (!(cpu_features().avx2 && cpu_features().fma && cpu_features().f16c)) GTEST_SKIP() << "no AVX2";
  std::mt19937 g(11);
  // Rows around the 3-row tile and the 48-row chunk; channels around the 16-wide panel and
  // the 64-panel group; K of one block, one K step, and 2-3 steps of unequal size.
  for (int64_t k : {32, 96, 512, 544, 1056})
    for (int64_t n : {1, 15, 16, 17, 200, 1040})
      for (int64_t m : {1, 2, 4, 47, 49, 100}) {
        if (n == 1040 && m > 49) continue;  // keep the test short
        const Q4Matrix w = random_q4(n, k, g);
        const int64_t ld = k + 32 * (m % 2);  // row stride past K too
        const Inputs in = inputs(w, m, ld, g);
        const int64_t panels = (n + 15) / 16;
        expect_kernel_equals_ref(w, in, m, ld, 0, m, 0, panels, m % 3 == 1, m % 4 == 1);
        if (testing::Test::HasFatalFailure()) return;
        // A sub-range, as one thread of the pool gets.
        if (m > 2 && panels > 1)
          expect_kernel_equals_ref(w, in, m, ld, 1, m - 1, 1, panels, true, false);
        if (testing::Test::HasFatalFailure()) return;
      }
}

TEST(Q4Gemm, Avx2SumsStayExactAtTheExtremes) {
  if (!(cpu_features().avx2 && cpu_features().fma && cpu_features().f16c)) GTEST_SKIP() << "no AVX2";
  std::mt19937 g(3);
  // Activation 255 with code 0 (c = −8) puts −32640 in every int16 sum of a block; 0 and 15
  // the other ends. Any saturation would show as a mismatch against the int32 reference.
  for (int code : {0, 15})
    for (int act : {0, 255}) {
      const Q4Matrix w = random_q4(33, 1056, g, code);
      const Inputs in = inputs(w, 7, 1056, g, act);
      expect_kernel_equals_ref(w, in, 7, 1056, 0, 7, 0, 3, false, false);
      if (testing::Test::HasFatalFailure()) return;
    }
}

TEST(Q4Gemm, ColumnOffsetsAreTheCodesSumsTimesTheirScales) {
  std::mt19937 g(5);
  const Q4Matrix w = random_q4(9, 96, g);
  std::vector<float> corr(9);
  column_offsets(w.view(), corr.data());
  for (int64_t n = 0; n < 9; ++n) {
    double want = 0;
    for (int64_t k = 0; k < 96; ++k) want += 128.0 * (w.code(n, k) - 8) * w.d(n, k / kBlock);
    EXPECT_NEAR(corr[n], want, 1e-4 * std::fabs(want) + 1e-3);
  }
}

}  // namespace
}  // namespace octet::kernels::q4
