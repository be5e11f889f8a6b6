// Float kernels (GEMM, vector ops, attention) on every ISA this CPU has, against the scalar
// references in kernels/ref, on shapes that are not multiples of the block sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/float_isa.h"
#include "kernels/ref/float_ref.h"
#include "octet/half.h"
#include "octet/kernels.h"
#include "octet/threads.h"

namespace octet::kernels {
namespace {

std::vector<FloatIsa> isas() {
  std::vector<FloatIsa> v;
  for (FloatIsa isa : {FloatIsa::kScalar, FloatIsa::kAvx2, FloatIsa::kAvx512})
    if (set_float_isa(isa)) v.push_back(isa);
  set_float_isa(FloatIsa::kAuto);
  return v;
}

class FloatKernels : public ::testing::TestWithParam<FloatIsa> {
 protected:
  void SetUp() override {
    if (!set_float_isa(GetParam())) GTEST_SKIP() << "CPU lacks " << float_isa_name(GetParam());
  }
  void TearDown() override { set_float_isa(FloatIsa::kAuto); }
};

std::vector<float> randn(std::mt19937& rng, int64_t n, float sd = 1.f) {
  std::normal_distribution<float> d(0.f, sd);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

TEST(FloatIsaSelect, ReportsActiveIsa) {
  ASSERT_TRUE(set_float_isa(FloatIsa::kScalar));
  EXPECT_EQ(float_isa(), FloatIsa::kScalar);
  ASSERT_TRUE(set_float_isa(FloatIsa::kAuto));
  EXPECT_NE(float_isa(), FloatIsa::kAuto);
}

TEST_P(FloatKernels, PackUnpackRoundTrip) {
  std::mt19937 rng(1);
  for (auto [n, k] : {std::pair<int64_t, int64_t>{1, 1}, {17, 5}, {50, 33}}) {
    const auto w = randn(rng, n * k);
    PackedF32 p(w.data(), n, k);
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t j = 0; j < n; ++j) {
      p.unpack_row(j, row.data());
      for (int64_t t = 0; t < k; ++t) ASSERT_EQ(row[t], w[j * k + t]);
    }
  }
}

TEST_P(FloatKernels, GemmMatchesReference) {
  std::mt19937 rng(2);
  ThreadPool pool(3);
  struct Shape { int64_t m, n, k; };
  const Shape shapes[] = {{1, 1, 1},    {1, 97, 640},  {2, 49, 257},  {3, 17, 3},
                          {7, 48, 256}, {8, 130, 513}, {9, 16, 31},   {13, 113, 129},
                          {17, 47, 1},  {64, 31, 300}, {37, 200, 77}, {1, 1000, 33}};
  for (const Shape& s : shapes) {
    const auto x = randn(rng, s.m * s.k), w = randn(rng, s.n * s.k);
    const int64_t ldy = s.n + 3;
    std::vector<float> ref(static_cast<size_t>(s.m * ldy), 0.f);
    gemm_f32_ref(x.data(), s.m, w.data(), s.n, s.k, ref.data(), ldy);
    PackedF32 p(w.data(), s.n, s.k);
    for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool}) {
      SCOPED_TRACE("m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) + " k=" +
                   std::to_string(s.k) + (tp ? " pool" : " serial"));
      std::vector<float> y(static_cast<size_t>(s.m * ldy), -7.f);  // sentinel in the padding
      gemm_f32(x.data(), s.m, p, y.data(), ldy, tp);
      for (int64_t i = 0; i < s.m; ++i) {
        for (int64_t j = 0; j < s.n; ++j) {
          double mag = 0;
          for (int64_t t = 0; t < s.k; ++t) mag += std::fabs(x[i * s.k + t] * w[j * s.k + t]);
          ASSERT_NEAR(y[i * ldy + j], ref[i * ldy + j], 1e-6 * mag + 1e-30) << i << "," << j;
        }
        for (int64_t j = s.n; j < ldy; ++j) ASSERT_EQ(y[i * ldy + j], -7.f) << "padding written";
      }
    }
  }
}

const int64_t kLens[] = {0, 1, 5, 15, 16, 17, 33, 100, 640, 1031};

void expect_close(const std::vector<float>& got, const std::vector<float>& want, double rel,
                  double abs = 0) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], rel * std::fabs(want[i]) + abs) << "at " << i;
}

TEST_P(FloatKernels, DotAxpyAddScale) {
  std::mt19937 rng(3);
  for (int64_t n : kLens) {
    SCOPED_TRACE(n);
    const auto a = randn(rng, n), b = randn(rng, n);
    double mag = 0;
    for (int64_t i = 0; i < n; ++i) mag += std::fabs(a[i] * b[i]);
    EXPECT_NEAR(dot_f32(a.data(), b.data(), n), ref::dot_f32(a.data(), b.data(), n), 1e-6 * mag + 1e-30);
    auto y1 = b, y2 = b;
    axpy_f32(y1.data(), 0.37f, a.data(), n);
    ref::axpy_f32(y2.data(), 0.37f, a.data(), n);
    expect_close(y1, y2, 1e-6, 1e-6);
    y1 = b, y2 = b;
    add_f32(y1.data(), a.data(), n);
    ref::add_f32(y2.data(), a.data(), n);
    expect_close(y1, y2, 0);
    y1 = b, y2 = b;
    scale_f32(y1.data(), -1.7f, n);
    ref::scale_f32(y2.data(), -1.7f, n);
    expect_close(y1, y2, 0);
  }
}

TEST_P(FloatKernels, RmsNorm) {
  std::mt19937 rng(4);
  for (int64_t n : kLens) {
    if (n == 0) continue;
    SCOPED_TRACE(n);
    const auto x = randn(rng, n, 3.f), w = randn(rng, n);
    for (const float* wp : {w.data(), static_cast<const float*>(nullptr)}) {
      std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
      rmsnorm_f32(x.data(), wp, a.data(), n, 1e-6f);
      ref::rmsnorm_f32(x.data(), wp, b.data(), n, 1e-6f);
      expect_close(a, b, 2e-6);
    }
    auto inplace = x;  // out == x allowed
    std::vector<float> b(static_cast<size_t>(n));
    rmsnorm_f32(inplace.data(), w.data(), inplace.data(), n, 1e-6f);
    ref::rmsnorm_f32(x.data(), w.data(), b.data(), n, 1e-6f);
    expect_close(inplace, b, 2e-6);
  }
}

TEST_P(FloatKernels, SoftmaxWideRange) {
  std::mt19937 rng(5);
  for (int64_t n : kLens) {
    SCOPED_TRACE(n);
    auto x = randn(rng, n, 30.f);  // exp arguments down to ~-200: underflow must give ~0
    auto y = x;
    softmax_f32(x.data(), n);
    ref::softmax_f32(y.data(), n);
    expect_close(x, y, 2e-6, 1e-37);
  }
}

// Activation inputs: a spread plus the edges of exp (overflow, underflow, denormals) and 0.
std::vector<float> activation_inputs(std::mt19937& rng, int64_t n) {
  auto g = randn(rng, n, 4.f);
  const float edges[] = {0.f, -0.f, 1e-20f, -1e-20f, 88.f, -88.f, 89.f, -89.f, 100.f, -100.f,
                         103.f, -103.f, 150.f, -150.f, 20.f, -20.f, 7.5f, -7.5f};
  for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]) && i < g.size(); ++i) g[i * 7 % g.size()] = edges[i];
  return g;
}

TEST_P(FloatKernels, SiluAndGeluMul) {
  std::mt19937 rng(6);
  for (int64_t n : kLens) {
    SCOPED_TRACE(n);
    const auto g = activation_inputs(rng, n), u = randn(rng, n);
    auto a = g, b = g;
    silu_mul_f32(a.data(), u.data(), n);
    ref::silu_mul_f32(b.data(), u.data(), n);
    expect_close(a, b, 2e-6, 1e-38);
    a = g, b = g;
    gelu_tanh_mul_f32(a.data(), u.data(), n);
    ref::gelu_tanh_mul_f32(b.data(), u.data(), n);
    // Deep in the negative tail gelu ≈ g·e^(-2t) with |2t| up to ~100: float rounding of t
    // alone is ~1e-5 relative there, so outputs below 1e-9·|g·up| get an absolute bound.
    for (int64_t i = 0; i < n; ++i)
      ASSERT_NEAR(a[i], b[i], 2e-6 * std::fabs(b[i]) + 1e-9 * std::fabs(g[i] * u[i]) + 1e-38)
          << "gelu at g=" << g[i];
  }
}

// Out of place (out = act(gate)·up, the prefill's form) equals the in-place form bit for bit.
TEST_P(FloatKernels, ActMulOutOfPlace) {
  std::mt19937 rng(16);
  for (int64_t n : kLens) {
    const auto g = activation_inputs(rng, n), u = randn(rng, n);
    auto a = g;
    std::vector<float> out(static_cast<size_t>(n), -1.f);
    silu_mul_f32(a.data(), u.data(), n);
    silu_mul_f32(g.data(), u.data(), out.data(), n);
    ASSERT_EQ(out, a) << n;
    a = g;
    gelu_tanh_mul_f32(a.data(), u.data(), n);
    gelu_tanh_mul_f32(g.data(), u.data(), out.data(), n);
    ASSERT_EQ(out, a) << n;
  }
}

// On panel-interleaved rows (16 gate values, their 16 up values, ...: the paired gate/up
// GEMM's output) the activation equals the out-of-place form on the halves bit for bit; a
// length that is not a whole number of panels is refused.
TEST_P(FloatKernels, ActMulOnInterleavedPairs) {
  std::mt19937 rng(18);
  for (int64_t n : {int64_t{16}, int64_t{48}, int64_t{240}, int64_t{4864}}) {
    const auto g = activation_inputs(rng, n), u = randn(rng, n);
    std::vector<float> gu(static_cast<size_t>(2 * n));
    for (int64_t i = 0; i < n; ++i) {
      gu[static_cast<size_t>(32 * (i / 16) + i % 16)] = g[static_cast<size_t>(i)];
      gu[static_cast<size_t>(32 * (i / 16) + 16 + i % 16)] = u[static_cast<size_t>(i)];
    }
    std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n), -1.f);
    silu_mul_f32(g.data(), u.data(), want.data(), n);
    silu_mul_pairs_f32(gu.data(), got.data(), n);
    ASSERT_EQ(got, want) << "silu n=" << n;
    gelu_tanh_mul_f32(g.data(), u.data(), want.data(), n);
    gelu_tanh_mul_pairs_f32(gu.data(), got.data(), n);
    ASSERT_EQ(got, want) << "gelu n=" << n;
  }
  std::vector<float> gu(64), out(32);
  EXPECT_THROW(silu_mul_pairs_f32(gu.data(), out.data(), 20), std::invalid_argument);
  EXPECT_THROW(gelu_tanh_mul_pairs_f32(gu.data(), out.data(), -16), std::invalid_argument);
}

// The F16 KV store (vcvtps2ph on x86) rounds exactly as the scalar fp32_to_fp16: ties to
// even, subnormal halves, overflow to inf, NaN stays NaN.
TEST_P(FloatKernels, KvStoreF16MatchesScalar) {
  std::mt19937 rng(17);
  std::vector<float> x = randn(rng, 300, 50.f);
  const float specials[] = {0.f, -0.f, 65504.f, 65520.f, 65519.f, -70000.f, 1e-8f, -3e-6f,
                            5.96e-8f, 2.98e-8f, 6.1e-5f, 1.f + 0x1p-11f, 1.f + 0x1p-11f + 0x1p-12f,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN()};
  for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); ++i) x[i * 17] = specials[i];
  for (int i = 0; i < 40; ++i) x[260 + i] = std::ldexp(static_cast<float>(i), -24 - i % 3);
  for (int64_t n : {1, 15, 16, 17, 300}) {
    std::vector<uint16_t> h(static_cast<size_t>(n));
    kv_store_row(KvType::kF16, x.data() + 300 - n, n, h.data(), nullptr);
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[static_cast<size_t>(300 - n + i)];
      if (std::isnan(v))
        ASSERT_TRUE((h[i] & 0x7c00) == 0x7c00 && (h[i] & 0x3ff) != 0) << "NaN at " << i;
      else
        ASSERT_EQ(h[i], fp32_to_fp16(v)) << v;
    }
  }
}

TEST_P(FloatKernels, Rope) {
  std::mt19937 rng(7);
  for (RopeMode mode : {RopeMode::kNormal, RopeMode::kNeox}) {
    for (int64_t n_rot : {2, 6, 32, 34, 64, 128, 256}) {
      SCOPED_TRACE(std::to_string(n_rot) + (mode == RopeMode::kNeox ? " neox" : " normal"));
      std::vector<float> c(static_cast<size_t>(n_rot / 2)), s(c.size());
      rope_table(1234, n_rot, 10000.f, 1.f, c.data(), s.data());
      const auto x = randn(rng, n_rot + 5);  // dims past n_rot untouched
      auto a = x, b = x;
      rope_f32_table(a.data(), n_rot, c.data(), s.data(), mode);
      ref::rope_f32_table(b.data(), n_rot, c.data(), s.data(), mode);
      expect_close(a, b, 1e-6, 1e-6);
      for (size_t i = static_cast<size_t>(n_rot); i < x.size(); ++i) ASSERT_EQ(a[i], x[i]);
    }
  }
}

struct AttnCase {
  int64_t n_head, n_head_kv, head_dim, n_q, pos0, window;
  float softcap;
};

// A case's dims and dense float K/V caches with 3 positions of slack past pos0+n_q. Those
// positions are not written yet: NaN there catches any read of them.
struct AttnData {
  AttentionDims d;
  std::vector<float> kc, vc;
};
AttnData attn_data(std::mt19937& rng, const AttnCase& c) {
  const int64_t D = c.head_dim, n_ctx = c.pos0 + c.n_q + 3;
  AttnData a;
  a.d.n_head = c.n_head;
  a.d.n_head_kv = c.n_head_kv;
  a.d.head_dim = D;
  a.d.kv_head_stride = n_ctx * D;
  a.d.window = c.window;
  a.d.scale = 1.f / std::sqrt(static_cast<float>(D));
  a.d.softcap = c.softcap;
  a.kc = randn(rng, c.n_head_kv * n_ctx * D, 2.f);
  a.vc = randn(rng, c.n_head_kv * n_ctx * D);
  for (int64_t h = 0; h < c.n_head_kv; ++h)
    for (int64_t p = c.pos0 + c.n_q; p < n_ctx; ++p)
      for (int64_t t = 0; t < D; ++t)
        a.kc[(h * n_ctx + p) * D + t] = a.vc[(h * n_ctx + p) * D + t] =
            std::numeric_limits<float>::quiet_NaN();
  return a;
}

TEST_P(FloatKernels, AttentionMatchesReference) {
  std::mt19937 rng(8);
  ThreadPool pool(3);
  const AttnCase cases[] = {
      {1, 1, 16, 1, 0, 0, 0.f},     {4, 1, 64, 1, 37, 0, 0.f},     {4, 2, 40, 2, 10, 0, 0.f},
      {14, 2, 64, 70, 0, 0, 0.f},   {4, 1, 256, 67, 13, 0, 0.f},   {2, 2, 24, 33, 5, 7, 0.f},
      {8, 4, 64, 130, 50, 32, 0.f}, {4, 2, 32, 40, 3, 0, 50.f},    {3, 1, 20, 5, 0, 1, 0.f},
      {2, 1, 36, 3, 90, 4, 0.f},    {4, 1, 256, 1, 300, 64, 0.f},  {6, 3, 8, 19, 200, 100, 30.f},
      {2, 2, 128, 65, 0, 512, 0.f},
      {14, 2, 64, 40, 600, 0, 0.f}};  // keys over two super-tiles of the block path
  for (const AttnCase& c : cases) {
    const int64_t D = c.head_dim;
    auto [d, kc, vc] = attn_data(rng, c);
    const int64_t ldq = c.n_head * D + 5, ldo = c.n_head * D + 2;
    const auto q = randn(rng, c.n_q * ldq);
    std::vector<float> ref(static_cast<size_t>(c.n_q * ldo), 0.f);
    attention_f32_ref(q.data(), ldq, c.n_q, c.pos0, kc.data(), vc.data(), d, ref.data(), ldo);
    for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool}) {
      SCOPED_TRACE("heads=" + std::to_string(c.n_head) + "/" + std::to_string(c.n_head_kv) +
                   " D=" + std::to_string(D) + " n_q=" + std::to_string(c.n_q) + " pos0=" +
                   std::to_string(c.pos0) + " window=" + std::to_string(c.window) +
                   " softcap=" + std::to_string(c.softcap) + (tp ? " pool" : " serial"));
      std::vector<float> out(static_cast<size_t>(c.n_q * ldo), -9.f);
      attention_f32(q.data(), ldq, c.n_q, c.pos0, kc.data(), vc.data(), d, out.data(), ldo, tp);
      for (int64_t i = 0; i < c.n_q; ++i) {
        for (int64_t j = 0; j < c.n_head * D; ++j)
          ASSERT_NEAR(out[i * ldo + j], ref[i * ldo + j], 2e-5) << "row " << i << " col " << j;
        for (int64_t j = c.n_head * D; j < ldo; ++j) ASSERT_EQ(out[i * ldo + j], -9.f);
      }
    }
  }
}

// Attention over F16 / INT8 caches, with and without a ring (sliding-window layers keep
// only window + chunk slots): the kernels convert K/V tiles themselves; the reference
// converts rows with kv_load_row_ref into a dense float cache. Slots that no query of the
// call may read hold NaN-encoding garbage, so a wrong slot shows up.
TEST_P(FloatKernels, AttentionOverReducedKvMatchesReference) {
  std::mt19937 rng(21);
  ThreadPool pool(3);
  struct Case { int64_t n_head, n_head_kv, D, n_q, pos0, window, ring; };
  const Case cases[] = {
      {1, 1, 16, 1, 0, 0, 0},      {4, 1, 256, 1, 300, 0, 0},   {4, 2, 40, 37, 11, 0, 0},
      {3, 1, 20, 5, 0, 1, 0},      {4, 1, 256, 1, 900, 512, 520}, {2, 2, 36, 9, 40, 7, 16},
      {4, 1, 64, 70, 1000, 64, 140}, {6, 3, 24, 19, 200, 100, 118}, {4, 1, 256, 2, 37, 16, 17},
      {2, 1, 33, 65, 3, 0, 0},     {2, 1, 72, 33, 95, 50, 82},
      // GQA groups over several query blocks (a 2-query tail block takes the row path).
      {14, 2, 64, 130, 200, 0, 0}, {4, 1, 256, 100, 700, 512, 768}};
  for (KvType type : {KvType::kF32, KvType::kF16, KvType::kInt8}) {
    for (const Case& c : cases) {
      const int64_t D = c.D, slots = c.ring > 0 ? c.ring : c.pos0 + c.n_q + 2;
      const size_t eb = kv_elem_bytes(type);
      std::vector<uint8_t> kb(static_cast<size_t>(c.n_head_kv * slots * D) * eb, 0xff),
          vb(kb.size(), 0xff);
      std::vector<float> ks(static_cast<size_t>(c.n_head_kv * slots), NAN), vs(ks.size(), NAN);
      // Write every position in order (as a session does), so the ring holds the newest.
      for (int64_t p = 0; p < c.pos0 + c.n_q; ++p)
        for (int64_t h = 0; h < c.n_head_kv; ++h) {
          const int64_t slot = c.ring > 0 ? p % c.ring : p, e = h * slots + slot;
          const auto kr = randn(rng, D, 2.f), vr = randn(rng, D);
          kv_store_row(type, kr.data(), D, kb.data() + e * D * eb, &ks[e]);
          kv_store_row(type, vr.data(), D, vb.data() + e * D * eb, &vs[e]);
        }
      KvView k, v;
      k.type = v.type = type;
      k.data = kb.data();
      v.data = vb.data();
      k.scale = ks.data();
      v.scale = vs.data();
      k.head_stride = v.head_stride = slots * D;
      k.ring = v.ring = c.ring;
      AttentionDims d;
      d.n_head = c.n_head;
      d.n_head_kv = c.n_head_kv;
      d.head_dim = D;
      d.window = c.window;
      d.scale = 1.f / std::sqrt(static_cast<float>(D));
      const int64_t ldq = c.n_head * D + 3, ldo = c.n_head * D + 1;
      const auto q = randn(rng, c.n_q * ldq);
      std::vector<float> ref(static_cast<size_t>(c.n_q * ldo), 0.f);
      attention_ref(q.data(), ldq, c.n_q, c.pos0, k, v, d, ref.data(), ldo);
      for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool}) {
        SCOPED_TRACE(std::string(kv_type_name(type)) + " D=" + std::to_string(D) + " n_q=" +
                     std::to_string(c.n_q) + " pos0=" + std::to_string(c.pos0) + " window=" +
                     std::to_string(c.window) + " ring=" + std::to_string(c.ring));
        std::vector<float> out(static_cast<size_t>(c.n_q * ldo), -9.f);
        attention(q.data(), ldq, c.n_q, c.pos0, k, v, d, out.data(), ldo, tp);
        for (int64_t i = 0; i < c.n_q; ++i)
          for (int64_t j = 0; j < c.n_head * D; ++j)
            ASSERT_NEAR(out[i * ldo + j], ref[i * ldo + j], 3e-5) << "row " << i << " col " << j;
      }
    }
  }
  // A ring too small for the keys a call needs is an error, not a wrong answer.
  std::vector<float> buf(4096, 0.f);
  KvView k;
  k.data = buf.data();
  k.head_stride = 8 * 16;
  k.ring = 8;
  AttentionDims d;
  d.n_head = d.n_head_kv = 1;
  d.head_dim = 16;
  d.window = 6;
  EXPECT_THROW(attention(buf.data(), 16, 4, 20, k, k, d, buf.data(), 16, nullptr),
               std::invalid_argument);
  EXPECT_NO_THROW(attention(buf.data(), 16, 3, 20, k, k, d, buf.data(), 16, nullptr));
}

// Row storage: F16 rounds to nearest (within half an ulp of half precision), INT8 within
// half a step of max|x|/127 per row; both read back exactly by the reference loader.
TEST(KvStore, RowRoundTripBounds) {
  std::mt19937 rng(5);
  for (int64_t n : {1, 7, 64, 256, 257}) {
    auto x = randn(rng, n, 3.f);
    if (n > 3) x[2] = 0.f;
    std::vector<uint16_t> h(static_cast<size_t>(n));
    std::vector<int8_t> q(static_cast<size_t>(n));
    std::vector<float> back(static_cast<size_t>(n));
    float sc = -1.f;
    kv_store_row(KvType::kF16, x.data(), n, h.data(), nullptr);
    kv_load_row_ref(KvType::kF16, h.data(), 0.f, n, back.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(back[i], x[i], std::fabs(x[i]) * 4.9e-4 + 1e-7);
    kv_store_row(KvType::kInt8, x.data(), n, q.data(), &sc);
    float amax = 0.f;
    for (float v : x) amax = std::max(amax, std::fabs(v));
    ASSERT_FLOAT_EQ(sc, amax / 127.f);
    kv_load_row_ref(KvType::kInt8, q.data(), sc, n, back.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_LE(std::fabs(back[i] - x[i]), sc * 0.5001f);
  }
  std::vector<float> z(16, 0.f);
  std::vector<int8_t> q(16, 5);
  float sc = -1.f;
  kv_store_row(KvType::kInt8, z.data(), 16, q.data(), &sc);  // all-zero row: scale 0, codes 0
  EXPECT_EQ(sc, 0.f);
  for (int8_t c : q) EXPECT_EQ(c, 0);
  KvType t;
  EXPECT_TRUE(parse_kv_type("f16", &t));
  EXPECT_EQ(t, KvType::kF16);
  EXPECT_FALSE(parse_kv_type("fp8", &t));
}

TEST(FloatKernelsErrors, AttentionRejectsBadDims) {
  AttentionDims d;
  d.n_head = 3;
  d.n_head_kv = 2;
  d.head_dim = 8;
  d.kv_head_stride = 64;
  std::vector<float> buf(1024);
  EXPECT_THROW(attention_f32(buf.data(), 24, 1, 0, buf.data(), buf.data(), d, buf.data(), 24, nullptr),
               std::invalid_argument);
  d.n_head_kv = 1;
  d.head_dim = 0;
  EXPECT_THROW(attention_f32(buf.data(), 24, 1, 0, buf.data(), buf.data(), d, buf.data(), 24, nullptr),
               std::invalid_argument);
}

// bf16 operands on the block path (AttentionDims::bf16: P·V only, or Q·K too). Inputs that
// bf16 holds exactly (Q pre-scaled, scale 1; K and V rounded) leave the probabilities'
// rounding as the only difference from the double reference in both modes: each p·v term is off by at most 2^-9 relatively
// (and the normaliser by as much), so |Δo| <= 2^-8·max|v|. A pair mix-up or a lost key is
// off by O(max|v|). Keys past the written positions are NaN (an odd tail must not read its
// missing partner). Then the same K/V as F16 and INT8 caches: the kernel converts rows to
// float before bf16, so it must give what it gives on an F32 cache of the converted rows.
TEST(AttentionBf16, MatchesReferenceOnBf16Inputs) {
  if (!attention_bf16_available(64)) GTEST_SKIP() << "no AVX512-BF16 attention on this CPU";
  EXPECT_FALSE(attention_bf16_available(40));
  auto bf = [](float x) { return bf16_to_fp32(fp32_to_bf16(x)); };
  std::mt19937 rng(31);
  ThreadPool pool(3);
  const AttnCase cases[] = {
      {4, 1, 64, 37, 13, 0, 0.f},    {14, 2, 64, 70, 0, 0, 0.f},  {2, 2, 128, 65, 0, 512, 0.f},
      {4, 2, 32, 40, 3, 0, 50.f},    {8, 4, 64, 130, 50, 32, 0.f}, {4, 1, 256, 67, 13, 0, 0.f},
      {2, 1, 96, 33, 95, 50, 0.f},   {14, 2, 64, 40, 600, 0, 0.f}, {16, 16, 128, 19, 1, 0, 0.f},
      {4, 1, 256, 100, 700, 511, 0.f}};
  for (const AttnCase& c : cases) {
    const int64_t D = c.head_dim;
    auto [d, kc, vc] = attn_data(rng, c);
    d.scale = 1.f;
    float vmax = 0.f;  // NaN slack positions stay NaN and do not count
    for (auto& x : kc) x = bf(x);
    for (auto& x : vc) vmax = std::max(vmax, std::fabs(x = bf(x)));
    const int64_t ldq = c.n_head * D + 5, ldo = c.n_head * D + 2;
    auto q = randn(rng, c.n_q * ldq, 1.f / std::sqrt(static_cast<float>(D)));
    for (auto& x : q) x = bf(x);
    std::vector<float> ref(static_cast<size_t>(c.n_q * ldo), 0.f);
    attention_f32_ref(q.data(), ldq, c.n_q, c.pos0, kc.data(), vc.data(), d, ref.data(), ldo);
    for (AttnBf16 mode : {AttnBf16::kPV, AttnBf16::kAll}) {
      d.bf16 = mode;
      std::vector<float> first;
      for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool}) {
        SCOPED_TRACE("heads=" + std::to_string(c.n_head) + "/" + std::to_string(c.n_head_kv) +
                     " D=" + std::to_string(D) + " n_q=" + std::to_string(c.n_q) + " pos0=" +
                     std::to_string(c.pos0) + " window=" + std::to_string(c.window) +
                     (mode == AttnBf16::kPV ? " pv" : " all") + (tp ? " pool" : " serial"));
        std::vector<float> out(static_cast<size_t>(c.n_q * ldo), -9.f);
        attention_f32(q.data(), ldq, c.n_q, c.pos0, kc.data(), vc.data(), d, out.data(), ldo, tp);
        double worst = 0;
        for (int64_t i = 0; i < c.n_q; ++i) {
          for (int64_t j = 0; j < c.n_head * D; ++j)
            worst = std::max(worst, static_cast<double>(std::fabs(out[i * ldo + j] - ref[i * ldo + j])));
          for (int64_t j = c.n_head * D; j < ldo; ++j) ASSERT_EQ(out[i * ldo + j], -9.f);
        }
        EXPECT_LE(worst, vmax / 256.0);
        EXPECT_GT(worst, 0.0) << "bf16 probabilities should show (else the float path ran)";
        if (first.empty()) first = out;
        else EXPECT_EQ(out, first) << "threads change the result";
      }
    }
  }
}

// The probabilities' exp (x86/attn_bf16.cpp, exp_prob) by itself, at float resolution: the
// attention tests above see it only through bf16 rounding (a 1 % coefficient error passes
// them). Documented bound 2.9e-6 relative over the normal range; exp(0) = 1 exactly (a
// row's largest score keeps p = 1); −inf (masked keys) gives ~0, NaN stays NaN; the tail
// below exp's normal range only has to stay tiny and non-negative.
TEST(AttentionBf16, ProbabilityExpIsAccurateInFloat) {
  const fimpl::Bf16Attention* a = fimpl::attn_bf16(64);
  if (!a) GTEST_SKIP() << "no AVX512-BF16 attention on this CPU";
  std::vector<float> x;
  for (float v = 0.f; v >= -87.f; v -= 0.0037f) x.push_back(v);
  for (float v : {-1e-30f, -0.34657359f, -0.34657362f, -0.6931472f, -1.3862944f, -86.9f})
    x.push_back(v);
  const size_t normal = x.size();
  for (float v : {-87.5f, -95.f, -103.9f, -104.f, -200.f, -3.0e38f,
                  -std::numeric_limits<float>::infinity()})
    x.push_back(v);
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  x.push_back(0.f);  // an odd length: the masked tail of the vector loop
  std::vector<float> y(x.size(), -1.f);
  a->prob_exp(x.data(), y.data(), static_cast<int64_t>(x.size()));
  double worst = 0;
  for (size_t i = 0; i < normal; ++i) {
    const double e = std::exp(static_cast<double>(x[i]));
    worst = std::max(worst, std::fabs(y[i] - e) / e);
  }
  EXPECT_LE(worst, 3.5e-6);
  EXPECT_GT(worst, 1e-8) << "the polynomial's error should show (else a library exp ran)";
  EXPECT_EQ(y[0], 1.f);
  EXPECT_EQ(y.back(), 1.f);
  for (size_t i = normal; i + 2 < y.size(); ++i) {
    EXPECT_GE(y[i], 0.f) << x[i];
    EXPECT_LE(y[i], 1e-37f) << x[i];
  }
  EXPECT_TRUE(std::isnan(y[y.size() - 2]));
}

TEST(AttentionBf16, ReducedKvCachesConvertLikeFloatRows) {
  if (!attention_bf16_available(128)) GTEST_SKIP() << "no AVX512-BF16 attention on this CPU";
  std::mt19937 rng(32);
  struct Case { int64_t n_head, n_head_kv, D, n_q, pos0, window, ring; };
  const Case cases[] = {{16, 16, 128, 40, 100, 0, 0}, {14, 2, 64, 130, 200, 0, 0},
                        {4, 1, 256, 100, 700, 512, 768}, {2, 2, 64, 33, 40, 7, 48}};
  for (KvType type : {KvType::kF16, KvType::kInt8}) {
    for (const Case& c : cases) {
      const int64_t D = c.D, slots = c.ring > 0 ? c.ring : c.pos0 + c.n_q + 2;
      const size_t eb = kv_elem_bytes(type);
      std::vector<uint8_t> kb(static_cast<size_t>(c.n_head_kv * slots * D) * eb, 0xff), vb(kb.size(), 0xff);
      std::vector<float> ks(static_cast<size_t>(c.n_head_kv * slots), NAN), vs(ks.size(), NAN);
      std::vector<float> kf(static_cast<size_t>(c.n_head_kv * slots * D), NAN), vf(kf.size(), NAN);
      for (int64_t p = 0; p < c.pos0 + c.n_q; ++p)
        for (int64_t h = 0; h < c.n_head_kv; ++h) {
          const int64_t slot = c.ring > 0 ? p % c.ring : p, e = h * slots + slot;
          const auto kr = randn(rng, D, 2.f), vr = randn(rng, D);
          kv_store_row(type, kr.data(), D, kb.data() + e * D * eb, &ks[e]);
          kv_store_row(type, vr.data(), D, vb.data() + e * D * eb, &vs[e]);
          kv_load_row_ref(type, kb.data() + e * D * eb, ks[e], D, kf.data() + e * D);
          kv_load_row_ref(type, vb.data() + e * D * eb, vs[e], D, vf.data() + e * D);
        }
      KvView k, v, k32, v32;
      k.type = v.type = type;
      k.data = kb.data();
      v.data = vb.data();
      k.scale = ks.data();
      v.scale = vs.data();
      k32.data = kf.data();
      v32.data = vf.data();
      k.head_stride = v.head_stride = k32.head_stride = v32.head_stride = slots * D;
      k.ring = v.ring = k32.ring = v32.ring = c.ring;
      AttentionDims d;
      d.n_head = c.n_head;
      d.n_head_kv = c.n_head_kv;
      d.head_dim = D;
      d.window = c.window;
      d.scale = 1.f / std::sqrt(static_cast<float>(D));
      const int64_t ld = c.n_head * D;
      const auto q = randn(rng, c.n_q * ld);
      for (AttnBf16 mode : {AttnBf16::kPV, AttnBf16::kAll}) {
        d.bf16 = mode;
        std::vector<float> out(static_cast<size_t>(c.n_q * ld)), out32(out.size());
        attention(q.data(), ld, c.n_q, c.pos0, k, v, d, out.data(), ld, nullptr);
        attention(q.data(), ld, c.n_q, c.pos0, k32, v32, d, out32.data(), ld, nullptr);
        EXPECT_EQ(out, out32) << kv_type_name(type) << " D=" << D << " n_q=" << c.n_q
                              << (mode == AttnBf16::kPV ? " pv" : " all");
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, FloatKernels, ::testing::ValuesIn(isas()),
                         [](const ::testing::TestParamInfo<FloatIsa>& i) {
                           return std::string(float_isa_name(i.param));
                         });

}  // namespace
}  // namespace octet::kernels
