// Int8 quantisation and GEMM: every ISA's kernels against the scalar reference (bit-exact,
// int32 and float), and the reference against a naive int64 sum on the unpacked operands.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <mutex>
#include <random>
#include <vector>

#include "kernels/int8_kernels.h"
#include "octet/cpu.h"
#include "octet/int8.h"

namespace octet {
namespace {

std::vector<Int8Isa> available_isas() {
  std::vector<Int8Isa> v;
  for (Int8Isa isa : {Int8Isa::kRef, Int8Isa::kAvx2, Int8Isa::kVnni})
    if (int8_isa_resolve(isa).ok()) v.push_back(isa);
  return v;
}

// The float-side kernels (load-time quantisation, column dequantisation, the shadow path) of
// every ISA this CPU runs; Int8Weights itself calls only the widest.
struct SideIsa {
  const char* name;
  int64_t (*row_check)(const float*, int64_t, float*);
  void (*row_quant)(const float*, int64_t, float, int8_t*, int64_t);
  void (*dequant_column)(const kernels::int8::WView&, int64_t, int64_t, int64_t, float*);
  void (*shadow_rows)(const kernels::int8::WView&, const ShadowEntry*, const int32_t*, int64_t,
                      int64_t, int64_t, int64_t, const float*, int64_t, float*, int64_t);
};

std::vector<SideIsa> side_isas() {
  namespace k8 = kernels::int8;
  std::vector<SideIsa> v{{"ref", k8::weight_row_check_ref, k8::weight_row_quant_ref,
                          k8::dequant_column_ref, k8::shadow_rows_ref}};
  const CpuFeatures& f = cpu_features();
  if (f.avx2 && f.fma)
    v.push_back({"avx2", k8::weight_row_check_avx2, k8::weight_row_quant_avx2,
                 k8::dequant_column_avx2, k8::shadow_rows_avx2});
  if (f.has_avx512())
    v.push_back({"avx512", k8::weight_row_check_avx512, k8::weight_row_quant_avx512,
                 k8::dequant_column_avx512, k8::shadow_rows_avx512});
  return v;
}

kernels::int8::WView view_of(const Int8Weights& w) {
  return {w.packed(), w.n(), w.k4(), w.panels(), w.scales(), w.shift_correction()};
}

std::vector<int8_t> random_q(std::mt19937& rng, int64_t n) {
  std::uniform_int_distribution<int> d(-127, 127);
  std::vector<int8_t> v(n);
  for (auto& x : v) x = static_cast<int8_t>(d(rng));
  return v;
}

// Two outlier lists entry for entry: row, column and residual, in order.
void expect_same_outliers(const OutlierList& got, const OutlierList& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].row, want[i].row) << "outlier " << i;
    EXPECT_EQ(got[i].col, want[i].col) << "outlier " << i;
    EXPECT_EQ(got[i].residual, want[i].residual) << "outlier " << i;
  }
}

std::vector<float> random_f(std::mt19937& rng, int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Σ_k q_x[m,k]·q_w[n,k] straight from the accessors (independent of the packed layouts).
std::vector<int64_t> naive(const Int8Activations& a, const Int8Weights& w) {
  std::vector<int64_t> y(a.m() * w.n());
  for (int64_t i = 0; i < a.m(); ++i)
    for (int64_t j = 0; j < w.n(); ++j) {
      int64_t s = 0;
      for (int64_t k = 0; k < a.k(); ++k) s += int64_t{a.at(i, k)} * w.at(j, k);
      y[i * w.n() + j] = s;
    }
  return y;
}

// Runs the GEMM on every ISA and pool configuration and checks exactness against the naive sum
// (int32) and against the reference ISA (float output, bit for bit).
void check_gemm(const std::vector<float>& x, int64_t m, int64_t k, const Int8Weights& w,
                float act_scale, const std::string& what) {
  SCOPED_TRACE(what + " M=" + std::to_string(m) + " N=" + std::to_string(w.n()) +
               " K=" + std::to_string(k));
  const int64_t n = w.n(), ldy = n + 3;
  std::mt19937 rng(7);
  const std::vector<float> bias = random_f(rng, n, -1, 1);
  const std::vector<float> y0 = random_f(rng, m * ldy, -1, 1);

  Int8Activations aref;
  ASSERT_TRUE(quantize_activations(x.data(), m, k, 0, act_scale, &aref, nullptr, nullptr,
                                   Int8Isa::kRef).ok());
  const std::vector<int64_t> expect = naive(aref, w);
  // Float outputs of the reference: plain, bias, accumulate + bias.
  std::vector<float> ref_plain(m * ldy, 0.f), ref_bias(m * ldy, 0.f), ref_acc = y0,
                     ref_acc0 = y0;
  ASSERT_TRUE(gemm_int8(aref, w, ref_plain.data(), ldy).ok());
  ASSERT_TRUE(gemm_int8(aref, w, ref_bias.data(), ldy, bias.data()).ok());
  ASSERT_TRUE(gemm_int8(aref, w, ref_acc.data(), ldy, bias.data(), true).ok());
  ASSERT_TRUE(gemm_int8(aref, w, ref_acc0.data(), ldy, nullptr, true).ok());
  // The reference itself against the exact sums (the padding columns stay untouched).
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      ASSERT_EQ(std::bit_cast<uint32_t>(ref_plain[i * ldy + j]),
                std::bit_cast<uint32_t>(std::fma(static_cast<float>(expect[i * n + j]),
                                                 aref.row_scale(i) * w.scale(j), 0.0f)));

  ThreadPool pool2(2), pool3(3);
  for (Int8Isa isa : available_isas()) {
    for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool2, &pool3}) {
      SCOPED_TRACE(std::string(int8_isa_name(isa)) + " threads=" +
                   std::to_string(pool ? pool->size() : 1));
      Int8Activations a;
      ASSERT_TRUE(quantize_activations(x.data(), m, k, 0, act_scale, &a, nullptr, pool, isa).ok());
      ASSERT_EQ(a.isa(), isa);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < k; ++j) ASSERT_EQ(a.at(i, j), aref.at(i, j)) << i << "," << j;

      std::vector<int32_t> y32(m * ldy, 12345);
      ASSERT_TRUE(gemm_int8_i32(a, w, y32.data(), ldy, pool).ok());
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j)
          ASSERT_EQ(y32[i * ldy + j], expect[i * n + j]) << "int32 at " << i << "," << j;
        for (int64_t j = n; j < ldy; ++j) ASSERT_EQ(y32[i * ldy + j], 12345) << "padding written";
      }

      std::vector<float> y(m * ldy, 0.f), yb(m * ldy, 0.f), ya = y0, ya0 = y0;
      ASSERT_TRUE(gemm_int8(a, w, y.data(), ldy, nullptr, false, pool).ok());
      ASSERT_TRUE(gemm_int8(a, w, yb.data(), ldy, bias.data(), false, pool).ok());
      ASSERT_TRUE(gemm_int8(a, w, ya.data(), ldy, bias.data(), true, pool).ok());
      ASSERT_TRUE(gemm_int8(a, w, ya0.data(), ldy, nullptr, true, pool).ok());
      for (int64_t i = 0; i < m * ldy; ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(ref_plain[i])) << i;
        ASSERT_EQ(std::bit_cast<uint32_t>(yb[i]), std::bit_cast<uint32_t>(ref_bias[i])) << i;
        ASSERT_EQ(std::bit_cast<uint32_t>(ya[i]), std::bit_cast<uint32_t>(ref_acc[i])) << i;
        ASSERT_EQ(std::bit_cast<uint32_t>(ya0[i]), std::bit_cast<uint32_t>(ref_acc0[i])) << i;
      }
      // The after-block hook (the shadow path's entry): disjoint blocks that cover the output,
      // each already final when its hook runs.
      std::vector<float> yh(m * ldy, 0.f);
      std::vector<int> seen(static_cast<size_t>(m * w.panels()), 0);
      std::mutex mu;
      bool final_ok = true;
      bool in_place = true;
      const GemmAfter after = [&](int64_t m0, int64_t m1, int64_t p0, int64_t p1, float* t,
                                  int64_t ldt) {
        std::lock_guard<std::mutex> lock(mu);
        in_place &= t == yh.data() + m0 * ldy + 16 * p0 && ldt == ldy;
        for (int64_t i = m0; i < m1; ++i)
          for (int64_t p = p0; p < p1; ++p) {
            ++seen[i * w.panels() + p];
            for (int64_t j = p * 16; j < std::min(n, p * 16 + 16); ++j)
              final_ok &= std::bit_cast<uint32_t>(t[(i - m0) * ldt + j - 16 * p0]) ==
                          std::bit_cast<uint32_t>(ref_bias[i * ldy + j]);
          }
      };
      ASSERT_TRUE(gemm_int8(a, w, yh.data(), ldy, bias.data(), false, pool, &after).ok());
      EXPECT_TRUE(final_ok);
      EXPECT_TRUE(in_place);
      for (int v : seen) ASSERT_EQ(v, 1);
      // y_transient: blocks may be computed in per-thread tiles (kernel views rebased to the
      // block); each must still be final and exact where its hook sees it.
      std::fill(seen.begin(), seen.end(), 0);
      in_place = true;
      ASSERT_TRUE(gemm_int8(a, w, yh.data(), ldy, bias.data(), false, pool, &after, 1, true).ok());
      EXPECT_TRUE(final_ok);
      EXPECT_FALSE(in_place) << "no block went to a tile";
      for (int v : seen) ASSERT_EQ(v, 1);
    }
  }
}

TEST(Int8Gemm, KernelCallOverManyPanelsMatchesNaiveSum) {
  // One kernel call over every panel of a wide matrix with several K blocks (the threaded
  // driver hands out small panel chunks; a kernel must not rely on that, e.g. for the size of
  // its partial-sum buffer: the AVX2 kernel works in groups of 64 panels). 69 panels, K = 600,
  // row counts that take the int16 tiles (6+), the int8 small-call tiles (< 6) and both.
  std::mt19937 rng(41);
  const int64_t n = 1100, k = 600;
  const std::vector<int8_t> qw = random_q(rng, n * k);
  const std::vector<float> sw = random_f(rng, n, 0.001f, 0.02f);
  auto w = Int8Weights::from_int8(qw.data(), sw.data(), n, k);
  ASSERT_TRUE(w.ok()) << w.error();
  const kernels::int8::WView wv = view_of(*w);
  for (Int8Isa isa : available_isas())
    for (int64_t m : {1, 5, 13}) {
      const std::vector<float> x = random_f(rng, m * k, -1.0f, 1.0f);
      Int8Activations a;
      ASSERT_TRUE(quantize_activations(x.data(), m, k, 0, 0.01f, &a, nullptr, nullptr, isa).ok());
      const kernels::int8::Kernels& kr = isa == Int8Isa::kVnni   ? kernels::int8::kernels_vnni()
                                         : isa == Int8Isa::kAvx2 ? kernels::int8::kernels_avx2()
                                                                 : kernels::int8::kernels_ref();
      std::vector<int32_t> y(m * n, -7);
      kernels::int8::Epilogue ep;
      ep.y32 = y.data();
      ep.ldy = n;
      kr.gemm({a.data(), a.m(), a.ld(), a.row_scales()}, wv, ep, 0, m, 0, w->panels());
      const std::vector<int64_t> want = naive(a, *w);
      for (int64_t i = 0; i < m * n; ++i)
        ASSERT_EQ(y[i], want[i]) << int8_isa_name(isa) << " m=" << m << " at " << i;
    }
}

TEST(Int8Gemm, RandomAndOddShapesMatchReferenceExactly) {
  std::mt19937 rng(1);
  const int64_t shapes[][3] = {
      {1, 1, 1},   {1, 17, 3},  {3, 1, 5},   {7, 17, 3},    {8, 16, 4},   {9, 33, 7},
      {17, 48, 64}, {13, 50, 130}, {33, 100, 257}, {2, 300, 40}, {100, 16, 24}, {40, 35, 96},
      {1, 200, 896}, {25, 65, 33}, {16, 7, 1},  {65, 129, 67},
      // The VNNI microkernel's edges: full 8×48 tiles, 48-channel column blocks cut short
      // (N = 49, 97, 145), several K blocks of 6144 (K = 6149, 12301: k4 not a multiple of
      // the block), more rows than one 64-row chunk, primes everywhere.
      {8, 48, 516}, {9, 49, 1031}, {1, 97, 2053}, {67, 145, 1029}, {130, 96, 600},
      {3, 1, 4099}, {16, 144, 4}, {127, 53, 521}, {9, 49, 6149}, {17, 97, 12301},
      // Split over N with ≥ 128 rows: the last chunks go out in row pieces (3 and 4 pieces).
      {200, 300, 96}, {256, 200, 72}};
  for (const auto& s : shapes) {
    const int64_t m = s[0], n = s[1], k = s[2];
    const std::vector<int8_t> qw = random_q(rng, n * k);
    const std::vector<float> sw = random_f(rng, n, 0.001f, 0.02f);
    auto w = Int8Weights::from_int8(qw.data(), sw.data(), n, k);
    ASSERT_TRUE(w.ok()) << w.error();
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < k; ++i) ASSERT_EQ(w->at(j, i), qw[j * k + i]);
    // Scale 0.01 on values in ±1.5 clips some entries: outliers are part of real inputs.
    check_gemm(random_f(rng, m * k, -1.5f, 1.5f), m, k, *w, 0.01f, "random");
  }
}

TEST(Int8Gemm, ExtremeValuesExerciseTheU8ShiftAndInt32Range) {
  // K at the supported maximum with every product at ±127·127: the VNNI u8-shifted sum reaches
  // 255·127·K, just inside int32; all -127 activations are u8 1s, all +127 u8 255s.
  // m = 8, n = 48 run the full VNNI asm tile, with K blocks (partial sums) for the larger K.
  for (int64_t k : {int64_t{5}, int64_t{1027}, kInt8MaxK}) {
    for (float xv : {-1000.0f, 1000.0f}) {
      for (int8_t wv : {int8_t{127}, int8_t{-127}}) {
        const int64_t m = 8, n = k == kInt8MaxK ? 48 : 51;
        std::vector<int8_t> qw(n * k, wv);
        std::vector<float> sw(n, 1.0f);
        auto w = Int8Weights::from_int8(qw.data(), sw.data(), n, k);
        ASSERT_TRUE(w.ok());
        EXPECT_EQ(w->column_sum(0), wv * k);
        std::vector<float> x(m * k, xv);
        check_gemm(x, m, k, *w, 1.0f, "extreme x=" + std::to_string(xv) +
                                          " w=" + std::to_string(wv));
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  }
}

TEST(Int8Gemm, MixedSignsAndZeroRows) {
  std::mt19937 rng(3);
  const int64_t m = 11, n = 37, k = 45;
  std::vector<int8_t> qw(n * k);
  for (int64_t i = 0; i < n * k; ++i) qw[i] = (i % 3 == 0) ? 127 : (i % 3 == 1) ? -127 : 0;
  std::vector<float> sw(n, 0.5f);
  auto w = Int8Weights::from_int8(qw.data(), sw.data(), n, k);
  ASSERT_TRUE(w.ok());
  std::vector<float> x = random_f(rng, m * k, -200, 200);
  for (int64_t j = 0; j < k; ++j) x[4 * k + j] = 0;  // an all-zero row
  check_gemm(x, m, k, *w, 1.0f, "mixed");
}

TEST(Int8Weights, QuantisationRoundTripAndPacking) {
  std::mt19937 rng(4);
  const int64_t n = 21, k = 29;
  std::vector<float> wf = random_f(rng, n * k, -3, 3);
  for (int64_t i = 0; i < k; ++i) wf[5 * k + i] = 0;  // zero row: scale 0, q 0
  auto w = Int8Weights::quantize(wf.data(), n, k);
  ASSERT_TRUE(w.ok());
  std::vector<float> row(k), col(n);
  std::vector<int8_t> qrow(k);
  for (int64_t j = 0; j < n; ++j) {
    float amax = 0;
    for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(wf[j * k + i]));
    EXPECT_FLOAT_EQ(w->scale(j), amax / 127.0f);
    w->dequant_row(j, row.data());
    w->row_int8(j, qrow.data());
    int32_t sum = 0, qmax = 0;
    for (int64_t i = 0; i < k; ++i) {
      EXPECT_LE(std::fabs(row[i] - wf[j * k + i]), 0.5f * w->scale(j) * 1.0001f + 1e-12f);
      EXPECT_EQ(qrow[i], w->at(j, i));
      EXPECT_GE(qrow[i], -127);
      sum += qrow[i];
      qmax = std::max<int32_t>(qmax, std::abs(qrow[i]));
    }
    EXPECT_EQ(w->column_sum(j), sum);
    EXPECT_EQ(qmax, j == 5 ? 0 : 127);
  }
  w->dequant_column(3, col.data());
  for (int64_t j = 0; j < n; ++j) EXPECT_EQ(col[j], w->scale(j) * w->at(j, 3));
  // The packed layout: one column block of 2 panels (N = 21 → 32), groups of 4 k, each group
  // the two panels' 16 lanes × 4 bytes side by side (128 bytes), zero padding.
  EXPECT_EQ(w->k4(), 8);
  EXPECT_EQ(w->panels(), 2);
  EXPECT_EQ(w->packed()[2 * 128 + 1 * 64 + 3 * 4 + 1], w->at(19, 9));
  EXPECT_EQ(w->packed_index(19, 9), 2 * 128 + 1 * 64 + 3 * 4 + 1);
  EXPECT_EQ(w->packed()[7 * 128 + 1 * 64 + 3 * 4 + 1], 0);  // k = 29 is padding
  EXPECT_EQ(w->packed()[0 * 128 + 1 * 64 + 6 * 4 + 0], 0);  // n = 22 is padding
}

TEST(Int8Weights, QuantiseRowsInBlocksEqualsWholeMatrix) {
  // More rows than one 1024-row block, N not a multiple of 48, K not a multiple of 4.
  std::mt19937 rng(9);
  const int64_t n = 1100, k = 37;
  std::vector<float> wf = random_f(rng, n * k, -2, 2);
  auto whole = Int8Weights::quantize(wf.data(), n, k);
  ASSERT_TRUE(whole.ok());
  auto rows = Int8Weights::quantize_rows(n, k, [&](int64_t r0, int64_t nr, float* d) {
    std::memcpy(d, wf.data() + r0 * k, sizeof(float) * static_cast<size_t>(nr * k));
    return Status::Ok();
  });
  ASSERT_TRUE(rows.ok()) << rows.error();
  ASSERT_EQ(rows->bytes(), whole->bytes());
  EXPECT_EQ(std::memcmp(rows->packed(), whole->packed(),
                        static_cast<size_t>(whole->panels() * whole->k4() * 64)), 0);
  std::vector<float> c1(n), c2(n);
  for (int64_t j = 0; j < n; ++j) {
    EXPECT_EQ(rows->scale(j), whole->scale(j));
    EXPECT_EQ(rows->column_sum(j), whole->column_sum(j));
  }
  for (int64_t i = 0; i < k; ++i) {
    rows->dequant_column(i, c1.data());
    for (int64_t j = 0; j < n; ++j) c2[j] = whole->scale(j) * whole->at(j, i);
    EXPECT_EQ(c1, c2) << "column " << i;
  }
  // A failing reader is reported, not swallowed.
  auto bad = Int8Weights::quantize_rows(n, k, [](int64_t, int64_t, float*) {
    return Status::Error("read failed");
  });
  EXPECT_FALSE(bad.ok());
}

TEST(Int8Weights, ColumnBlocksOfThreePanels) {
  // N = 100 → 7 panels: blocks of 3, 3, 1 panels (192, 192, 64 bytes per group of 4 k).
  std::mt19937 rng(9);
  const int64_t n = 100, k = 10;
  const std::vector<int8_t> qw = random_q(rng, n * k);
  const std::vector<float> sw(n, 1.0f);
  auto w = Int8Weights::from_int8(qw.data(), sw.data(), n, k);
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(w->panels(), 7);
  const int64_t k4 = 3;
  // n = 50: panel 3 = block 1, panel 0 inside it; k = 5: group 1, byte 1.
  EXPECT_EQ(w->packed_index(50, 5), 3 * k4 * 64 + 1 * 192 + 0 * 64 + 2 * 4 + 1);
  // n = 99: panel 6 = block 2 (1 panel wide); k = 9: group 2, byte 1.
  EXPECT_EQ(w->packed_index(99, 9), 6 * k4 * 64 + 2 * 64 + 3 * 4 + 1);
  // Every entry lands on a distinct byte and reads back.
  std::vector<int> seen(w->panels() * k4 * 64, 0);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < k; ++i) {
      const int64_t idx = w->packed_index(j, i);
      ASSERT_GE(idx, 0);
      ASSERT_LT(idx, static_cast<int64_t>(seen.size()));
      ASSERT_EQ(seen[idx]++, 0);
      ASSERT_EQ(w->packed()[idx], qw[j * k + i]);
    }
}

TEST(Int8Weights, VectorisedColumnDequantMatchesScalarDefinition) {
  // The shadow path's cold columns: every k (all 4 byte positions), every panel range, odd N
  // (padding lanes must come out 0), and extreme values ±127 (sign extension).
  std::mt19937 rng(11);
  for (int64_t n : {1, 16, 47, 100, 161}) {
    const int64_t k = 13;
    std::vector<int8_t> qw = random_q(rng, n * k);
    qw[0] = 127;
    qw[n * k - 1] = -127;
    const std::vector<float> sw = random_f(rng, n, 0.01f, 2.0f);
    auto w = Int8Weights::from_int8(qw.data(), sw.data(), n, k);
    ASSERT_TRUE(w.ok());
    const int64_t P = w->panels();
    std::vector<float> col(n), pan(P * 16 + 1, -1.0f);
    for (int64_t c = 0; c < k; ++c) {
      w->dequant_column(c, col.data());
      for (int64_t j = 0; j < n; ++j) ASSERT_EQ(col[j], sw[j] * qw[j * k + c]) << n << " " << c;
      for (const SideIsa& isa : side_isas())
        for (int64_t p0 = 0; p0 < P; ++p0) {
          const int64_t p1 = std::min(P, p0 + 2);
          std::fill(pan.begin(), pan.end(), -1.0f);
          isa.dequant_column(view_of(*w), c, p0, p1, pan.data());
          for (int64_t j = 0; j < (p1 - p0) * 16; ++j) {
            const int64_t nn = p0 * 16 + j;
            ASSERT_EQ(pan[j], nn < n ? sw[nn] * qw[nn * k + c] : 0.0f)
                << isa.name << " " << n << " " << c << " " << nn;
          }
          ASSERT_EQ(pan[(p1 - p0) * 16], -1.0f) << isa.name;  // nothing written past the range
        }
    }
  }
}

TEST(Int8Weights, ShadowRowsMatchScalarDefinition) {
  // The shadow path: rows of outliers (some rows without), each a hot float column or the int8
  // column read in place (every byte position k % 4), odd N (tail lanes untouched), row and
  // output panel ranges that start and end anywhere (also inside a 3-panel column block).
  // Bit-exact against the formula in kernels/int8_kernels.h computed from unpacked operands.
  // A row's entries come in ascending column order (as quantisation emits them); 9 and 40
  // rows (the kernel pairs rows for narrow blocks: odd counts leave one alone).
  std::mt19937 rng(17);
  for (auto [n, M] : {std::pair<int64_t, int64_t>{5, 9}, {16, 9}, {47, 9}, {161, 9}, {300, 9},
                      {47, 40}, {300, 40}}) {
    const int64_t k = 37;
    const std::vector<int8_t> qw = random_q(rng, n * k);
    const std::vector<float> sw = random_f(rng, n, 0.01f, 2.0f);
    auto w = Int8Weights::from_int8(qw.data(), sw.data(), n, k);
    ASSERT_TRUE(w.ok());
    const int64_t P = w->panels(), ldy = n + 3;
    // 3 float columns, panel-major ([panel][column][16], lanes past N zero as the model
    // builds them): hot value of column c at output nn = hot[(nn/16)·48 + c·16 + nn%16].
    const int64_t hot_stride = 3 * 16;
    std::vector<float> hot = random_f(rng, P * hot_stride, -1.0f, 1.0f);
    for (int64_t p = 0; p < P; ++p)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t l = 0; l < 16; ++l)
          if (p * 16 + l >= n) hot[p * hot_stride + c * 16 + l] = 0.0f;
    std::vector<ShadowEntry> ents;
    std::vector<int32_t> row_begin(M + 1, 0);
    std::uniform_int_distribution<int> ncount(0, 12), col(0, static_cast<int>(k) - 1), h(0, 3);
    for (int64_t r = 0; r < M; ++r) {
      std::vector<int> cols;
      for (int c = r == 4 ? 0 : ncount(rng); c > 0; --c) cols.push_back(col(rng));
      std::sort(cols.begin(), cols.end());
      cols.erase(std::unique(cols.begin(), cols.end()), cols.end());
      for (int c : cols) {
        const int hh = h(rng);  // 3: cold
        ents.push_back({hh < 3 ? hot.data() + hh * 16 : nullptr, c,
                        random_f(rng, 1, -30.0f, 30.0f)[0]});
      }
      row_begin[r + 1] = static_cast<int32_t>(ents.size());
    }
    for (auto [m0, m1, p0, p1] : {std::array<int64_t, 4>{0, M, 0, P}, {2, 7, 1, P}, {0, 3, 0, 1},
                                  {5, M, P / 2, P}, {0, M, 2, 4}, {3, M - 1, 0, P}}) {
      if (p0 >= p1 || p1 > P) continue;
      const std::vector<float> y0 = random_f(rng, M * ldy, -2.0f, 2.0f);
      std::vector<float> y = y0, want = y0;
      for (int64_t r = m0; r < m1; ++r) {
        if (row_begin[r] == row_begin[r + 1]) continue;
        for (int64_t nn = p0 * 16; nn < std::min(n, p1 * 16); ++nn) {
          float hs = 0.0f, cs = 0.0f;
          for (int32_t t = row_begin[r]; t < row_begin[r + 1]; ++t) {
            const ShadowEntry& e = ents[t];
            if (e.hot)
              hs = std::fma(e.residual, e.hot[(nn / 16) * hot_stride + nn % 16], hs);
            else
              cs = std::fma(e.residual, static_cast<float>(qw[nn * k + e.col]), cs);
          }
          float& o = want[r * ldy + nn];
          o = std::fma(cs, sw[nn], o + hs);
        }
      }
      // y at the block's element (m0, 16·p0), as a GemmAfter hook gets it.
      const int64_t at = m0 * ldy + p0 * 16;
      w->shadow_rows(ents.data(), row_begin.data(), m0, m1, p0, p1, hot.data(), hot_stride,
                     y.data() + at, ldy);
      for (int64_t j = 0; j < M * ldy; ++j)
        ASSERT_EQ(y[j], want[j]) << "n=" << n << " rows " << m0 << ".." << m1 << " panels "
                                 << p0 << ".." << p1 << " at " << j;
      for (const SideIsa& isa : side_isas()) {
        y = y0;
        isa.shadow_rows(view_of(*w), ents.data(), row_begin.data(), m0, m1, p0, p1, hot.data(),
                        hot_stride, y.data() + at, ldy);
        for (int64_t j = 0; j < M * ldy; ++j)
          ASSERT_EQ(y[j], want[j]) << isa.name << " n=" << n << " rows " << m0 << ".." << m1
                                   << " panels " << p0 << ".." << p1 << " at " << j;
      }
      // The hot entries alone, without int8 weights (the W4A8 path's: shadow_rows_hot).
      std::vector<ShadowEntry> hot_ents;
      std::vector<int32_t> hot_begin(M + 1, 0);
      for (int64_t r = 0; r < M; ++r) {
        for (int32_t t = row_begin[r]; t < row_begin[r + 1]; ++t)
          if (ents[t].hot) hot_ents.push_back(ents[t]);
        hot_begin[r + 1] = static_cast<int32_t>(hot_ents.size());
      }
      std::vector<float> want_hot = y0;
      for (int64_t r = m0; r < m1; ++r)
        for (int64_t nn = p0 * 16; nn < std::min(n, p1 * 16); ++nn) {
          float hs = 0.0f;
          for (int32_t t = hot_begin[r]; t < hot_begin[r + 1]; ++t)
            hs = std::fma(hot_ents[t].residual, hot_ents[t].hot[(nn / 16) * hot_stride + nn % 16], hs);
          if (hot_begin[r] < hot_begin[r + 1]) want_hot[r * ldy + nn] += hs;
        }
      y = y0;
      shadow_rows_hot(n, hot_ents.data(), hot_begin.data(), m0, m1, p0, p1, hot.data(), hot_stride,
                      y.data() + at, ldy);
      for (int64_t j = 0; j < M * ldy; ++j)
        ASSERT_EQ(y[j], want_hot[j]) << "hot only n=" << n << " at " << j;
      const kernels::int8::WView none{nullptr, n, 0, P, nullptr, nullptr};
      for (const SideIsa& isa : side_isas()) {
        y = y0;
        isa.shadow_rows(none, hot_ents.data(), hot_begin.data(), m0, m1, p0, p1, hot.data(),
                        hot_stride, y.data() + at, ldy);
        for (int64_t j = 0; j < M * ldy; ++j)
          ASSERT_EQ(y[j], want_hot[j]) << isa.name << " hot only n=" << n << " at " << j;
      }
    }
  }
}

TEST(Int8Weights, RowKernelsOfEveryIsaMatchScalarDefinition) {
  // The load-time row kernels called directly (Int8Weights uses only the widest ISA): max |w|
  // and the first non-finite index (NaN, ±Inf, in the vector part and in the tail), and the
  // codes at dst[(i / 4)·stride + i % 4] with the bytes between groups untouched.
  std::mt19937 rng(29);
  for (const SideIsa& isa : side_isas())
    for (int64_t k : {1, 5, 8, 13, 64, 259}) {
      std::vector<float> w = random_f(rng, k, -3.0f, 3.0f);
      float amax = -1, want = 0;
      for (float v : w) want = std::max(want, std::fabs(v));
      ASSERT_EQ(isa.row_check(w.data(), k, &amax), -1) << isa.name << " k=" << k;
      ASSERT_EQ(amax, want) << isa.name << " k=" << k;
      for (float bad : {NAN, INFINITY, -INFINITY})
        for (int64_t at : {int64_t{0}, k / 2, k - 1}) {
          std::vector<float> b = w;
          b[at] = bad;
          ASSERT_EQ(isa.row_check(b.data(), k, &amax), at) << isa.name << " k=" << k;
        }
      const int64_t stride = 12;
      const float inv = 127.0f / want;
      std::vector<int8_t> got((k + 3) / 4 * stride, 99);
      isa.row_quant(w.data(), k, inv, got.data(), stride);
      for (int64_t i = 0; i < static_cast<int64_t>(got.size()); ++i) {
        const int64_t g = i / stride, l = i % stride, kk = g * 4 + l;
        const int8_t expect =
            l < 4 && kk < k ? static_cast<int8_t>(kernels::int8::quantize_one(w[kk], inv)) : 99;
        ASSERT_EQ(got[i], expect) << isa.name << " k=" << k << " byte " << i;
      }
    }
}

TEST(Int8Weights, QuantiseMatchesScalarDefinition) {
  // Per-channel scale amax/127 and quantize_one for every element (the vectorised load-time
  // path, also on 2 threads), odd K (tail groups), an all-zero row, and the index of the first
  // non-finite value in the error.
  std::mt19937 rng(23);
  ThreadPool pool(2);
  for (int64_t k : {1, 3, 17, 64, 259}) {
    const int64_t n = 70;
    std::vector<float> w = random_f(rng, n * k, -3.0f, 3.0f);
    std::fill_n(w.begin() + 5 * k, k, 0.0f);
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      auto q = Int8Weights::quantize(w.data(), n, k, 0, p);
      ASSERT_TRUE(q.ok()) << q.error();
      for (int64_t j = 0; j < n; ++j) {
        float amax = 0;
        for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(w[j * k + i]));
        ASSERT_EQ(q->scale(j), amax / 127.0f) << j;
        const float inv = amax > 0 ? 127.0f / amax : 0.0f;
        for (int64_t i = 0; i < k; ++i)
          ASSERT_EQ(q->at(j, i), kernels::int8::quantize_one(w[j * k + i], inv)) << j << "," << i;
      }
    }
    std::vector<float> bad = w;
    bad[(n - 1) * k + k / 2] = INFINITY;
    auto e = Int8Weights::quantize(bad.data(), n, k, 0, &pool);
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.error().find("[" + std::to_string(n - 1) + ", " + std::to_string(k / 2) + "]"),
              std::string::npos) << e.error();
  }
}

TEST(Int8Weights, RejectsBadInput) {
  std::vector<int8_t> q = {1, -128};
  std::vector<float> s = {1, 1};
  EXPECT_FALSE(Int8Weights::from_int8(q.data(), s.data(), 1, 2).ok());
  std::vector<float> w = {1, NAN};
  EXPECT_FALSE(Int8Weights::quantize(w.data(), 1, 2).ok());
  EXPECT_FALSE(Int8Weights::quantize(w.data(), 0, 2).ok());
  EXPECT_FALSE(Int8Weights::quantize(w.data(), 1, kInt8MaxK + 1).ok());
}

TEST(Int8Activations, StaticQuantisationOutliersAndBounds) {
  std::mt19937 rng(5);
  const int64_t m = 9, k = 70;
  const float s = 0.05f;  // clip range ±6.35
  std::vector<float> x = random_f(rng, m * k, -6, 6);
  x[0 * k + 3] = 100.0f;
  x[2 * k + 69] = -7.5f;
  x[8 * k + 17] = 6.36f;
  x[8 * k + 18] = 6.35f;  // 6.35 / 0.05 = 127 (± rounding): not beyond the clip range
  x[4 * k + 0] = -1e30f;
  for (int64_t j = 0; j < k; ++j) x[5 * k + j] = j % 3 ? 50.0f : -9.0f;  // a row of outliers
  for (Int8Isa isa : available_isas()) {
    for (int threads : {1, 2}) {
      SCOPED_TRACE(std::string(int8_isa_name(isa)) + " threads=" + std::to_string(threads));
      ThreadPool pool(threads);
      Int8Activations a;
      OutlierList out = {{1, 1, 1.0f}};  // must be cleared
      ASSERT_TRUE(quantize_activations(x.data(), m, k, 0, s, &a, &out, &pool, isa).ok());
      OutlierList expect;
      const float inv = 1.0f / s;
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < k; ++j) {
          const float v = x[i * k + j];
          const int q = a.at(i, j);
          EXPECT_EQ(a.row_scale(i), s);
          if (std::fabs(v * inv) > 127.0f) {
            expect.push_back({static_cast<int32_t>(i), static_cast<int32_t>(j),
                              v > 0 ? v - 127.0f * s : v + 127.0f * s});
            EXPECT_EQ(q, v > 0 ? 127 : -127);
          } else {
            EXPECT_LE(std::fabs(q * s - v), 0.5f * s * 1.001f) << i << "," << j;
          }
        }
      ASSERT_GE(expect.size(), 4u);
      ASSERT_NO_FATAL_FAILURE(expect_same_outliers(out, expect));
      for (size_t i = 0; i < expect.size(); ++i) {
        // clip + residual gives the value back.
        const float clip = (out[i].residual > 0 ? 127.0f : -127.0f) * s;
        EXPECT_NEAR(clip + out[i].residual, x[out[i].row * k + out[i].col],
                    1e-6f * std::fabs(x[out[i].row * k + out[i].col]));
      }
    }
  }
}

// RowScale::kFitBelowClip: rows reaching the clip (127·s) are quantised exactly as with the
// tensor's scale (same bytes, same outliers); a row below it gets max|x|/127 and the bytes of
// a plain quantisation at that scale, its largest entry at ±127 and no outlier. Rows of both
// kinds in runs of every length around the VNNI row block (8), whole and made on the fly.
TEST(Int8Activations, RowsBelowTheClipGetTheirOwnScale) {
  std::mt19937 rng(11);
  const int64_t m = 45, k = 72;
  const float s = 0.05f;  // clip ±6.35
  std::vector<float> x = random_f(rng, m * k, -1, 1);
  std::vector<float> want_scale(m, s);
  for (int64_t i = 0; i < m; ++i) {
    // Rows 0-2, 11-20 and 27 reach the clip (some beyond it: outliers); rows 5 and 33 are all
    // zero (keep s); rows 8 and 38 have their maximum just under the clip; the rest are small.
    // Rows 28-44 are all below the clip: the whole VNNI row block 32-39 (quantised as one, each
    // row with its own scale) between partial blocks (row by row).
    const bool reach = i < 3 || (i >= 11 && i <= 20) || i == 27;
    if (reach) x[i * k + (i * 7) % k] = i % 2 ? 6.35f * 3 : -6.35f;
    if (i == 5 || i == 33)
      for (int64_t j = 0; j < k; ++j) x[i * k + j] = 0;
    if (i == 8 || i == 38) x[i * k + 40] = -6.34f;
    if (!reach && i != 5 && i != 33) {
      float a = 0;
      for (int64_t j = 0; j < k; ++j) a = std::max(a, std::fabs(x[i * k + j]));
      want_scale[i] = a / 127.0f;
    }
  }
  for (Int8Isa isa : available_isas()) {
    for (int threads : {1, 2}) {
      SCOPED_TRACE(std::string(int8_isa_name(isa)) + " threads=" + std::to_string(threads));
      ThreadPool pool(threads);
      Int8Activations tensor, fit, fit_rows;
      OutlierList ot, of, ofr;
      ASSERT_TRUE(quantize_activations(x.data(), m, k, 0, s, &tensor, &ot, &pool, isa).ok());
      ASSERT_TRUE(quantize_activations(x.data(), m, k, 0, s, &fit, &of, &pool, isa,
                                       RowScale::kFitBelowClip).ok());
      const ActRowFn row = [&](int64_t r, float*) { return x.data() + r * k; };
      ASSERT_TRUE(quantize_activations_rows(row, m, k, s, &fit_rows, &ofr, &pool, isa,
                                            RowScale::kFitBelowClip).ok());
      ASSERT_GE(ot.size(), 5u);
      expect_same_outliers(of, ot);
      expect_same_outliers(ofr, ot);
      for (int64_t i = 0; i < m; ++i) {
        EXPECT_EQ(fit.row_scale(i), want_scale[i]) << "row " << i;
        EXPECT_EQ(fit_rows.row_scale(i), want_scale[i]) << "row " << i;
        Int8Activations one;
        ASSERT_TRUE(quantize_activations(x.data() + i * k, 1, k, 0, want_scale[i], &one, nullptr,
                                         nullptr, isa).ok());
        int top = 0;
        for (int64_t j = 0; j < k; ++j) {
          EXPECT_EQ(fit.at(i, j), one.at(0, j)) << i << "," << j;
          EXPECT_EQ(fit_rows.at(i, j), fit.at(i, j)) << i << "," << j;
          if (want_scale[i] == s) {
            EXPECT_EQ(fit.at(i, j), tensor.at(i, j)) << i << "," << j;
          }
          top = std::max(top, std::abs(static_cast<int>(fit.at(i, j))));
        }
        if (want_scale[i] != s) {
          EXPECT_EQ(top, 127) << "row " << i;
        }
      }
    }
  }
}

TEST(Int8Activations, DynamicPerRowAndNaN) {
  std::mt19937 rng(6);
  const int64_t m = 5, k = 37;
  std::vector<float> x = random_f(rng, m * k, -3, 3);
  for (int64_t j = 0; j < k; ++j) x[1 * k + j] = 0;  // zero row → scale 0, q 0
  x[3 * k + 36] = 50;
  Int8Activations ref;
  ASSERT_TRUE(quantize_activations_dynamic(x.data(), m, k, 0, &ref, nullptr, Int8Isa::kRef).ok());
  for (int64_t i = 0; i < m; ++i) {
    float amax = 0;
    int qmax = 0;
    for (int64_t j = 0; j < k; ++j) amax = std::max(amax, std::fabs(x[i * k + j]));
    EXPECT_EQ(ref.row_scale(i), amax / 127.0f);
    for (int64_t j = 0; j < k; ++j) {
      qmax = std::max(qmax, std::abs(int{ref.at(i, j)}));
      EXPECT_LE(std::fabs(ref.at(i, j) * ref.row_scale(i) - x[i * k + j]),
                0.5f * ref.row_scale(i) * 1.001f);
    }
    EXPECT_EQ(qmax, i == 1 ? 0 : 127);
  }
  std::vector<float> xn = x;
  xn[2 * k + 5] = NAN;
  for (Int8Isa isa : available_isas()) {
    Int8Activations a;
    ASSERT_TRUE(quantize_activations_dynamic(x.data(), m, k, 0, &a, nullptr, isa).ok());
    for (int64_t i = 0; i < m; ++i) {
      EXPECT_EQ(a.row_scale(i), ref.row_scale(i));
      for (int64_t j = 0; j < k; ++j) ASSERT_EQ(a.at(i, j), ref.at(i, j));
    }
    // NaN: never -128, the same on every ISA (127), and not an outlier.
    OutlierList out;
    ASSERT_TRUE(quantize_activations(xn.data(), m, k, 0, 0.1f, &a, &out, nullptr, isa).ok());
    EXPECT_EQ(a.at(2, 5), 127) << int8_isa_name(isa);
    for (const Outlier& o : out) EXPECT_FALSE(o.row == 2 && o.col == 5);
  }
}

// Rows made on the fly (the FFN activation fed straight to the quantiser) quantise exactly as
// the same rows in memory, with the same outliers in the same (row-major) order.
// Same bytes, row scales and outliers (in order) as the whole-matrix quantisation.
void expect_same_quantisation(const Int8Activations& want, const OutlierList& ow,
                              const Int8Activations& got, const OutlierList& og, float s) {
  ASSERT_NO_FATAL_FAILURE(expect_same_outliers(og, ow));
  ASSERT_EQ(got.m(), want.m());
  for (int64_t i = 0; i < want.m(); ++i) {
    EXPECT_EQ(got.row_scale(i), s);
    for (int64_t j = 0; j < want.k(); ++j)
      ASSERT_EQ(got.at(i, j), want.at(i, j)) << i << "," << j;
  }
}

// Every ISA's quantiser against the scalar reference on odd shapes: rows that start and end
// inside the VNNI row block (the whole-block path and the single-row path meet), K not a
// multiple of 4 or 16, a row stride wider than K, many outliers (~5 %).
TEST(Int8Activations, RowBlocksAndOddShapesMatchReference) {
  std::mt19937 rng(12);
  const float s = 0.03f;  // clip range ±3.81 of uniform ±4
  for (int64_t k : {1, 3, 4, 15, 16, 17, 63, 70, 100, 256}) {
    for (int64_t m : {1, 7, 8, 9, 16, 23, 40}) {
      for (int64_t pad : {0, 5}) {
        const int64_t ldx = k + pad;
        std::vector<float> x = random_f(rng, m * ldx, -4, 4);
        Int8Activations want;
        OutlierList ow;
        ASSERT_TRUE(quantize_activations(x.data(), m, k, ldx, s, &want, &ow, nullptr,
                                         Int8Isa::kRef).ok());
        for (Int8Isa isa : available_isas()) {
          for (int threads : {1, 2}) {
            SCOPED_TRACE(std::string(int8_isa_name(isa)) + " threads=" + std::to_string(threads) +
                         " m=" + std::to_string(m) + " k=" + std::to_string(k) +
                         " ldx=" + std::to_string(ldx));
            ThreadPool pool(threads);
            Int8Activations got;
            OutlierList og;
            ASSERT_TRUE(quantize_activations(x.data(), m, k, ldx, s, &got, &og, &pool, isa).ok());
            expect_same_quantisation(want, ow, got, og, s);
            Int8Activations plain;  // the same codes without the outlier list
            ASSERT_TRUE(quantize_activations(x.data(), m, k, ldx, s, &plain, nullptr, &pool, isa).ok());
            expect_same_quantisation(want, {}, plain, {}, s);
          }
        }
      }
    }
  }
}

// The VNNI quantiser's row ranges may start and end inside a row block: pieces give the
// bytes and outliers of one whole-range call.
TEST(Int8Activations, VnniRangesInsideRowBlocksMatchOneCall) {
  if (!int8_isa_resolve(Int8Isa::kVnni).ok()) GTEST_SKIP() << "no AVX-512 VNNI";
  const kernels::int8::Kernels& kr = kernels::int8::kernels_vnni();
  std::mt19937 rng(13);
  const int64_t m = 29, k = 70, ld = 72, ldx = 75;  // ld: K rounded up to groups of 4
  const float s = 0.03f;
  std::vector<float> x = random_f(rng, m * ldx, -4, 4);
  const size_t bytes = static_cast<size_t>((m + 7) / 8 * 8 * ld);  // whole row blocks
  std::vector<uint8_t> whole(bytes, 0), parts(bytes, 0);
  OutlierList ow, op;
  kr.quant(x.data(), ldx, k, 1.0f / s, s, whole.data(), ld, 0, m, &ow);
  for (auto [r0, r1] : {std::pair{0, 3}, {3, 11}, {11, 12}, {12, 24}, {24, 29}})
    kr.quant(x.data() + r0 * ldx, ldx, k, 1.0f / s, s, parts.data(), ld, r0, r1, &op);
  EXPECT_EQ(parts, whole);
  ASSERT_GE(ow.size(), 20u);
  expect_same_outliers(op, ow);
}

TEST(Int8Activations, RowsMadeOnTheFlyMatchRowsInMemory) {
  std::mt19937 rng(8);
  const int64_t m = 37, k = 100;  // rows not a multiple of any row block, K not of 16
  std::vector<float> g = random_f(rng, m * 2 * k, -4, 4);
  for (int64_t i = 0; i < m; i += 3) g[i * 2 * k + (i * 7) % k] = 40.0f;  // a few outliers
  std::vector<float> x(m * k);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < k; ++j) x[i * k + j] = g[i * 2 * k + j] * g[i * 2 * k + k + j];
  const float s = 0.06f;
  for (Int8Isa isa : available_isas()) {
    for (int threads : {1, 2}) {
      SCOPED_TRACE(std::string(int8_isa_name(isa)) + " threads=" + std::to_string(threads));
      ThreadPool pool(threads);
      Int8Activations want, got;
      OutlierList ow, og;
      ASSERT_TRUE(quantize_activations(x.data(), m, k, 0, s, &want, &ow, &pool, isa).ok());
      const ActRowFn row = [&](int64_t r, float* buf) -> const float* {
        for (int64_t j = 0; j < k; ++j) buf[j] = g[r * 2 * k + j] * g[r * 2 * k + k + j];
        return buf;
      };
      ASSERT_TRUE(quantize_activations_rows(row, m, k, s, &got, &og, &pool, isa).ok());
      ASSERT_GE(ow.size(), 10u);
      ASSERT_EQ(og.size(), ow.size());
      expect_same_quantisation(want, ow, got, og, s);
    }
  }
  Int8Activations a;
  EXPECT_FALSE(quantize_activations_rows(nullptr, 2, 4, 1.0f, &a).ok());
  EXPECT_FALSE(quantize_activations_rows([](int64_t, float* b) -> const float* { return b; }, 2, 4,
                                         0.0f, &a).ok());
}

// Segments of rows in any order give the bytes and outliers of whole-row quantisation.
TEST(Int8Activations, SegmentsInAnyOrderMatchWholeRows) {
  std::mt19937 rng(9);
  const int64_t m = 21, k = 96;  // rows not a multiple of the VNNI row block
  std::vector<float> x = random_f(rng, m * k, -3, 3);
  for (int64_t i = 0; i < m; i += 2) x[i * k + (i * 11) % k] = (i % 4 ? 30.0f : -25.0f);
  const float s = 0.05f;
  for (Int8Isa isa : available_isas()) {
    SCOPED_TRACE(int8_isa_name(isa));
    Int8Activations want, got;
    OutlierList ow, og;
    ASSERT_TRUE(quantize_activations(x.data(), m, k, 0, s, &want, &ow, nullptr, isa).ok());
    Int8SegmentQuantizer q;
    ASSERT_TRUE(q.begin(m, k, s, &got, isa).ok());
    // (row, first column, width) in a shuffled order, widths 16 and 32.
    std::vector<std::array<int64_t, 3>> segs;
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < k;) {
        const int64_t n = (r + c) % 3 == 0 && c + 32 <= k ? 32 : 16;
        segs.push_back({r, c, n});
        c += n;
      }
    std::shuffle(segs.begin(), segs.end(), rng);
    for (const auto& sg : segs) q.segment(x.data() + sg[0] * k + sg[1], sg[0], sg[1], sg[2], &og);
    ASSERT_GE(ow.size(), 10u);
    ASSERT_EQ(og.size(), ow.size());
    std::sort(og.begin(), og.end(),
              [](const Outlier& a, const Outlier& b) { return a.row != b.row ? a.row < b.row : a.col < b.col; });
    expect_same_quantisation(want, ow, got, og, s);
    // Row groups (segment_rows, x with its own row stride): groups of 1-9 rows that start
    // inside and on 8-row blocks, columns in two segments, the second first.
    Int8Activations rows;
    OutlierList orows;
    ASSERT_TRUE(q.begin(m, k, s, &rows, isa).ok());
    for (int64_t c0 : {int64_t{48}, int64_t{0}}) {
      for (int64_t r0 = 0, n = 1; r0 < m; r0 += n, n = n % 9 + 1) {
        const int64_t r1 = std::min(m, r0 + n), ldx = 50;
        std::vector<float> seg((r1 - r0) * ldx, 0.0f);
        for (int64_t r = r0; r < r1; ++r)
          std::copy_n(x.data() + r * k + c0, 48, seg.data() + (r - r0) * ldx);
        q.segment_rows(seg.data(), ldx, r0, r1, c0, 48, &orows);
      }
    }
    std::sort(orows.begin(), orows.end(),
              [](const Outlier& a, const Outlier& b) { return a.row != b.row ? a.row < b.row : a.col < b.col; });
    expect_same_quantisation(want, ow, rows, orows, s);
  }
  Int8Activations a;
  Int8SegmentQuantizer q;
  EXPECT_FALSE(q.begin(2, 40, 1.0f, &a).ok());  // K not a multiple of 16
  EXPECT_FALSE(q.begin(2, 32, 0.0f, &a).ok());
}

TEST(Int8Activations, RejectsBadInput) {
  std::vector<float> x(8, 1.0f);
  Int8Activations a;
  EXPECT_FALSE(quantize_activations(x.data(), 2, 4, 0, 0.0f, &a).ok());
  EXPECT_FALSE(quantize_activations(x.data(), 2, 4, 0, NAN, &a).ok());
  EXPECT_FALSE(quantize_activations(x.data(), 2, 4, 3, 1.0f, &a).ok());  // ldx < k
  ASSERT_TRUE(quantize_activations(x.data(), 2, 4, 0, 1.0f, &a).ok());
  std::vector<float> w(3 * 5, 1.0f), y(2 * 3);
  auto wq = Int8Weights::quantize(w.data(), 3, 5);
  ASSERT_TRUE(wq.ok());
  EXPECT_FALSE(gemm_int8(a, *wq, y.data(), 3).ok());  // K mismatch
}

TEST(Int8Linear, ForwardApproximatesFloatAndShadowRestoresOutliers) {
  std::mt19937 rng(8);
  const int64_t m = 6, n = 40, k = 64;
  const std::vector<float> wf = random_f(rng, n * k, -0.5f, 0.5f);
  const std::vector<float> bias = random_f(rng, n, -1, 1);
  std::vector<float> x = random_f(rng, m * k, -1, 1);
  x[1 * k + 7] = 30;  // outliers, far beyond the clip range ±1.27
  x[4 * k + 50] = -12;
  auto lin = Int8Linear::from_float(wf.data(), n, k, bias.data());
  ASSERT_TRUE(lin.ok()) << lin.error();
  const float s = 0.01f;
  ThreadPool pool(2);
  Int8Activations scratch;
  OutlierList out;
  std::vector<float> y(m * n), yd(m * n);
  Int8ForwardOptions opt;
  opt.outliers = &out;
  opt.scratch = &scratch;
  ASSERT_TRUE(lin->forward(x.data(), m, s, y.data(), n, &pool, opt).ok());
  ASSERT_EQ(out.size(), 2u);
  lin->add_outlier_products(out, y.data(), n);
  ASSERT_TRUE(lin->forward_dynamic(x.data(), m, yd.data(), n, &pool).ok());
  // Reference: dequantised weights × unquantised x. After the shadow pass the only error left
  // is activation rounding, at most s/2 per entry.
  std::vector<float> deq(k);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      lin->weights().dequant_row(j, deq.data());
      double r = bias[j], absw = 0;
      for (int64_t t = 0; t < k; ++t) {
        r += double{deq[t]} * x[i * k + t];
        absw += std::fabs(deq[t]);
      }
      EXPECT_NEAR(y[i * n + j], r, 0.5 * s * absw + 1e-4) << i << "," << j;
      double amax = 0;
      for (int64_t t = 0; t < k; ++t) amax = std::max(amax, std::fabs(double{x[i * k + t]}));
      EXPECT_NEAR(yd[i * n + j], r, 0.5 * amax / 127 * absw + 1e-4) << i << "," << j;
    }
  // The generic helper with float columns matches up to the weights used.
  std::vector<float> y2(m * n);
  ASSERT_TRUE(lin->forward(x.data(), m, s, y2.data(), n, &pool, opt).ok());
  std::vector<std::vector<float>> cols(k, std::vector<float>(n));
  for (int64_t t = 0; t < k; ++t) lin->weights().dequant_column(t, cols[t].data());
  add_outlier_products(out, [&](int64_t c) { return cols[c].data(); }, n, y2.data(), n);
  for (int64_t i = 0; i < m * n; ++i) EXPECT_FLOAT_EQ(y2[i], y[i]);
}

}  // namespace
}  // namespace octet
