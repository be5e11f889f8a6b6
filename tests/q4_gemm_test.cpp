// W4A8 / W5A8 GEMM over the file's blocks (kernels/q4_gemm.h): block decoding against the
// GGUF dequantiser, the reference against a double-precision product of the dequantised
// weights and the activations, and the AVX2 kernel against the reference bit for bit on odd
// shapes, sub-ranges and the int16 sums' extreme values, for every format.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/q4_gemm.h"
#include "octet/cpu.h"
#include "octet/gguf.h"
#include "octet/half.h"

namespace octet::kernels::q4 {
namespace {

constexpr Format kFormats[] = {Format::Q4_0, Format::Q5_0, Format::Q4_K, Format::Q5_K};

gguf::Type type_of(Format f) {
  switch (f) {
    case Format::Q4_0: return gguf::Type::Q4_0;
    case Format::Q5_0: return gguf::Type::Q5_0;
    case Format::Q4_K: return gguf::Type::Q4_K;
    case Format::Q5_K: return gguf::Type::Q5_K;
  }
  return gguf::Type::Q4_0;
}

struct QMatrix {
  Format format;
  int64_t n, k;
  std::vector<uint8_t> bytes;
  std::vector<const uint8_t*> rows;
  Q4View view() const { return {rows.data(), n, k, format}; }
  // The file's weights as the GGUF dequantiser gives them, row-major [n][k].
  std::vector<float> dequantized() const {
    std::vector<float> w(static_cast<size_t>(n * k));
    for (int64_t r = 0; r < n; ++r)
      EXPECT_TRUE(gguf::dequantize(type_of(format), rows[r], w.data() + r * k, k).ok());
    return w;
  }
};

// Random codes and 6-bit scales; fp16 scales of either sign (K-quants: d > 0, dmin ≥ 0 as
// quantisers write them). fill >= 0: every code byte (and fifth-bit byte) that value.
QMatrix random_matrix(Format f, int64_t n, int64_t k, std::mt19937& g, int fill = -1) {
  const FormatInfo fi = info(f);
  const int64_t rb = row_bytes(f, k);
  QMatrix m{f, n, k, std::vector<uint8_t>(static_cast<size_t>(n * rb)), {}};
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  for (int64_t u = 0; u < n * (k / fi.group); ++u) {
    uint8_t* p = m.bytes.data() + u * fi.unit_bytes;
    for (int64_t j = 0; j < fi.unit_bytes; ++j)
      p[j] = fill >= 0 ? static_cast<uint8_t>(fill) : static_cast<uint8_t>(g());
    const bool kq = fi.has_min;
    const uint16_t d = fp32_to_fp16(kq ? scale(g) * 0.05f : (g() % 2 ? scale(g) : -scale(g)));
    std::memcpy(p, &d, 2);
    if (kq) {
      const uint16_t dmin = fp32_to_fp16(scale(g) * 0.02f);
      std::memcpy(p + 2, &dmin, 2);
      for (int j = 4; j < 16; ++j) p[j] = static_cast<uint8_t>(g());
    }
  }
  m.rows = consecutive_rows(m.bytes.data(), n, rb);
  return m;
}

struct Case {
  int64_t m, n, k;
};

struct Inputs {
  std::vector<uint8_t> a;
  std::vector<float> rs, bias, corr;
};

Inputs inputs(const QMatrix& w, int64_t m, int64_t ld, std::mt19937& g, int fixed_act = -1) {
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

TEST(Q4Gemm, DecodedBlocksAreTheDequantisersWeights) {
  std::mt19937 g(13);
  for (const Format f : kFormats) {
    const QMatrix w = random_matrix(f, 3, 512, g);
    const std::vector<float> want = w.dequantized();
    const bool five = info(f).five_bit;
    int8_t c[kBlock];
    for (int64_t r = 0; r < w.n; ++r)
      for (int64_t b = 0; b < w.k / kBlock; ++b) {
        float s, e;
        decode_block(f, w.rows[r], b, s, e, c);
        if (!info(f).has_min) {
          EXPECT_EQ(e, 0.0f);
        }
        for (int64_t j = 0; j < kBlock; ++j) {
          EXPECT_GE(c[j], five ? -16 : -8);
          EXPECT_LE(c[j], five ? 15 : 7);
          const float x = want[static_cast<size_t>(r * w.k + b * kBlock + j)];
          EXPECT_NEAR(s * c[j] + e, x, 1e-6f * (std::fabs(x) + std::fabs(e)) + 1e-9f)
              << name(f) << " row " << r << " block " << b << " k " << j;
        }
      }
  }
}

TEST(Q4Gemm, ReferenceIsTheFilesWeightsTimesInt8Activations) {
  std::mt19937 g(7);
  for (const Format f : kFormats)
    for (const Case c : {Case{3, 17, 256}, Case{5, 40, 768}}) {
      const QMatrix w = random_matrix(f, c.n, c.k, g);
      const std::vector<float> wf = w.dequantized();
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
                             wf[static_cast<size_t>(n * c.k + k)];
            want += t;
            mag += std::fabs(t);
          }
          want = want * in.rs[r] + in.bias[n];
          // The u8 offset's 128·Σ w cancels in float: allow its rounding, not more.
          EXPECT_NEAR(y[r * c.n + n], want, 2e-5 * (mag * in.rs[r] + 1))
              << name(f) << " " << r << "," << n;
        }
    }
}

void expect_kernel_equals_ref(const QMatrix& w, const Inputs& in, int64_t m, int64_t ld,
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
  // Rows around the 3-row tile and the 192-row chunk; channels around the 16-wide panel and
  // the 16-panel group; K of one unit, one K step (32 blocks), and 2-3 steps of unequal size.
  for (const Format f : kFormats) {
    const bool kq = info(f).has_min;
    const std::vector<int64_t> ks = kq ? std::vector<int64_t>{256, 768, 1280, 2304}
                                       : std::vector<int64_t>{32, 96, 512, 544, 1056};
    for (int64_t k : ks)
      for (int64_t n : {1, 15, 16, 17, 200, 1040})
        for (int64_t m : {1, 2, 4, 47, 100, 193}) {
          if (n * m * k > 40'000'000) continue;  // keep the test short
          const QMatrix w = random_matrix(f, n, k, g);
          const int64_t ld = k + 32 * (m % 2);  // row stride past K too
          const Inputs in = inputs(w, m, ld, g);
          const int64_t panels = (n + 15) / 16;
          SCOPED_TRACE(name(f));
          expect_kernel_equals_ref(w, in, m, ld, 0, m, 0, panels, m % 3 == 1, m % 4 == 1);
          if (testing::Test::HasFatalFailure()) return;
          // A sub-range, as one thread of the pool gets.
          if (m > 2 && panels > 1)
            expect_kernel_equals_ref(w, in, m, ld, 1, m - 1, 1, panels, true, false);
          if (testing::Test::HasFatalFailure()) return;
        }
  }
}

// Shadow outliers: per row 0-9 distinct columns in ascending order, always including the
// first and last k and the edges of the kernel's 32-block K steps on some rows.
struct Outliers {
  std::vector<Q4Outlier> e;
  std::vector<int32_t> row_begin{0};
  Q4Shadow view() const { return {e.data(), row_begin.data()}; }
};
Outliers random_outliers(int64_t m, int64_t k, std::mt19937& g) {
  Outliers o;
  std::normal_distribution<float> res(0.0f, 3.0f);
  for (int64_t r = 0; r < m; ++r) {
    std::vector<int32_t> cols;
    const int n = static_cast<int>(g() % 10);
    for (int i = 0; i < n; ++i) cols.push_back(static_cast<int32_t>(g() % k));
    if (r % 3 == 0) cols.insert(cols.end(), {0, static_cast<int32_t>(k - 1)});
    if (r % 4 == 1)
      for (int64_t edge = 32 * kBlock; edge < k; edge += 32 * kBlock)
        cols.insert(cols.end(), {static_cast<int32_t>(edge - 1), static_cast<int32_t>(edge)});
    std::sort(cols.begin(), cols.end());
    cols.erase(std::unique(cols.begin(), cols.end()), cols.end());
    for (int32_t c : cols) o.e.push_back({c, res(g)});
    o.row_begin.push_back(static_cast<int32_t>(o.e.size()));
  }
  return o;
}

TEST(Q4Gemm, ShadowOutliersAddTheFilesWeights) {
  std::mt19937 g(23);
  for (const Format f : kFormats) {
    const int64_t m = 9, n = 37, k = info(f).has_min ? 512 : 160;
    const QMatrix w = random_matrix(f, n, k, g);
    const std::vector<float> wf = w.dequantized();
    const Inputs in = inputs(w, m, k, g);
    const Outliers o = random_outliers(m, k, g);
    const Q4Shadow sh = o.view();
    std::vector<float> plain(static_cast<size_t>(m * n)), with = plain;
    int8::Epilogue ep;
    ep.ldy = n;
    const Acts a{in.a.data(), k, in.rs.data()};
    ep.y = plain.data();
    gemm_ref(a, w.view(), in.corr.data(), ep, 0, m, 0, 3);
    ep.y = with.data();
    gemm_ref(a, w.view(), in.corr.data(), ep, 0, m, 0, 3, &sh);
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < n; ++c) {
        double add = 0, mag = std::fabs(plain[r * n + c]);
        for (int32_t t = o.row_begin[r]; t < o.row_begin[r + 1]; ++t) {
          const double v = double{o.e[t].residual} * wf[static_cast<size_t>(c * k + o.e[t].col)];
          add += v;
          mag += std::fabs(v);
        }
        EXPECT_NEAR(with[r * n + c] - plain[r * n + c], add, 1e-6 * mag + 1e-9)
            << name(f) << " " << r << "," << c;
      }
  }
}

TEST(Q4Gemm, Avx2ShadowOutliersMatchReference) {
  if (!(cpu_features().avx2 && cpu_features().fma && cpu_features().f16c)) GTEST_SKIP() << "no AVX2";
  std::mt19937 g(29);
  // K of one and of 2-3 K steps (the outliers are added step by step), rows past the 192-row
  // chunk, channels past the 16-panel group; whole ranges and a thread's sub-range.
  for (const Format f : kFormats)
    for (const Case c : {Case{5, 20, info(f).has_min ? 256 : 96}, Case{200, 300, 2304},
                         Case{7, 33, info(f).has_min ? 1280 : 1056}}) {
      const QMatrix w = random_matrix(f, c.n, c.k, g);
      const Inputs in = inputs(w, c.m, c.k, g);
      std::vector<double> mag(static_cast<size_t>(c.m * c.n), 0.0);  // Σ_k a_u·|w|
      {
        const std::vector<float> wf = w.dequantized();
        for (int64_t r = 0; r < c.m; ++r)
          for (int64_t n = 0; n < c.n; ++n)
            for (int64_t k = 0; k < c.k; ++k)
              mag[static_cast<size_t>(r * c.n + n)] +=
                  in.a[static_cast<size_t>(r * c.k + k)] * std::fabs(wf[static_cast<size_t>(n * c.k + k)]);
      }
      const Outliers o = random_outliers(c.m, c.k, g);
      const Q4Shadow sh = o.view();
      const int64_t panels = (c.n + 15) / 16;
      for (const auto [m0, m1, p0, p1] :
           {std::array<int64_t, 4>{0, c.m, 0, panels}, {1, c.m - 1, 1, panels}}) {
        std::vector<float> want(static_cast<size_t>(c.m * c.n), 0.5f), got = want, plain = want;
        int8::Epilogue ep;
        ep.ldy = c.n;
        ep.bias = in.bias.data();
        const Acts a{in.a.data(), c.k, in.rs.data()};
        ep.y = want.data();
        gemm_ref(a, w.view(), in.corr.data(), ep, m0, m1, p0, p1, &sh);
        ep.y = got.data();
        gemm_avx2(a, w.view(), in.corr.data(), ep, m0, m1, p0, p1, &sh);
        ep.y = plain.data();
        gemm_ref(a, w.view(), in.corr.data(), ep, m0, m1, p0, p1);
        for (int64_t r = 0; r < c.m; ++r)
          for (int64_t n = 0; n < c.n; ++n) {
            const size_t i = static_cast<size_t>(r * c.n + n);
            // Float rounding of the folded residuals only: each is added to the kernel's
            // sums of u8 activations × weights, so a few of their ulps times the row scale —
            // far below any one outlier's term (~0.1-1 here).
            const double tol = 1e-7 * mag[i] * in.rs[r] + 2e-5 * std::fabs(want[i] - plain[i]) + 1e-6;
            ASSERT_NEAR(got[i], want[i], tol)
                << name(f) << " m " << c.m << " n " << c.n << " k " << c.k << " at " << r << ","
                << n << " (range " << m0 << "-" << m1 << " × " << p0 << "-" << p1
                << "; without outliers " << plain[i] << ")";
          }
      }
    }
}

TEST(Q4Gemm, Avx2SumsStayExactAtTheExtremes) {
  if (!(cpu_features().avx2 && cpu_features().fma && cpu_features().f16c)) GTEST_SKIP() << "no AVX2";
  std::mt19937 g(3);
  // Activation 255 with every code byte 0x00 (c = −8 or −16) puts −32640 in every int16 sum
  // of a block (4-bit) or half (5-bit); 0 and 0xFF (c = 7 or 15) the other ends. Any
  // saturation would show as a mismatch against the int32 reference.
  for (const Format f : kFormats)
    for (int fill : {0x00, 0xFF})
      for (int act : {0, 255}) {
        const QMatrix w = random_matrix(f, 33, 2304, g, fill);
        const Inputs in = inputs(w, 7, 2304, g, act);
        SCOPED_TRACE(name(f));
        expect_kernel_equals_ref(w, in, 7, 2304, 0, 7, 0, 3, false, false);
        if (testing::Test::HasFatalFailure()) return;
      }
}

TEST(Q4Gemm, ColumnOffsetsAre128TimesTheRowSums) {
  std::mt19937 g(5);
  for (const Format f : {Format::Q4_0, Format::Q5_0}) {  // formats without a minimum term
    const QMatrix w = random_matrix(f, 9, 96, g);
    const std::vector<float> wf = w.dequantized();
    std::vector<float> corr(9);
    column_offsets(w.view(), corr.data());
    for (int64_t n = 0; n < 9; ++n) {
      double want = 0;
      for (int64_t k = 0; k < 96; ++k) want += 128.0 * wf[static_cast<size_t>(n * 96 + k)];
      EXPECT_NEAR(corr[n], want, 1e-4 * std::fabs(want) + 1e-3) << name(f);
    }
  }
}

TEST(Q4Gemm, Avx2ColumnOffsetsEqualReference) {
  if (!(cpu_features().avx2 && cpu_features().fma && cpu_features().f16c)) GTEST_SKIP() << "no AVX2";
  std::mt19937 g(17);
  for (const Format f : kFormats)
    for (int fill : {-1, 0x00, 0xFF}) {
      const QMatrix w = random_matrix(f, 21, 768, g, fill);
      std::vector<float> want(21), got(21);
      column_offsets_ref(w.view(), want.data());
      column_offsets_avx2(w.view(), got.data());
      for (int64_t n = 0; n < 21; ++n)
        ASSERT_EQ(std::bit_cast<uint32_t>(got[n]), std::bit_cast<uint32_t>(want[n]))
            << name(f) << " fill " << fill << " row " << n;
    }
}

}  // namespace
}  // namespace octet::kernels::q4
