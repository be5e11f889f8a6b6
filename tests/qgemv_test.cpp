// Decode GEMV over GGUF blocks: every ISA against the scalar reference (same int math, float
// order may differ), the reference against dequantise + fp32 dot (bounded by the activation
// rounding error), the float path, errors, and decode-step logits of a real model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "octet/half.h"
#include "octet/linear_gguf.h"
#include "octet/qgemv.h"
#include "octet/runtime.h"

namespace octet {
namespace {

using gguf::Type;

// Random blocks: random bytes, with the fp16 scales replaced by sane values (random bits
// would give inf/NaN scales that say nothing about the kernels).
std::vector<uint8_t> random_rows(Type t, int64_t n, int64_t k, std::mt19937& rng) {
  const auto* ti = gguf::type_info(static_cast<uint32_t>(t));
  const size_t stride = gguf::row_bytes(t, k);
  std::vector<uint8_t> w(stride * n);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> sc(0.002f, 0.05f);
  for (auto& b : w) b = static_cast<uint8_t>(byte(rng));
  auto put = [&](uint8_t* p, float f) {
    const uint16_t h = fp32_to_fp16(f);
    std::memcpy(p, &h, 2);
  };
  for (size_t off = 0; off < w.size(); off += ti->type_size) {
    uint8_t* b = w.data() + off;
    switch (t) {
      case Type::Q4_0: case Type::Q5_0: case Type::Q8_0: put(b, sc(rng)); break;
      case Type::Q4_K: case Type::Q5_K: put(b, sc(rng)); put(b + 2, sc(rng)); break;
      case Type::Q6_K: put(b + 208, sc(rng)); break;
      case Type::F16:
        for (int j = 0; j < ti->block_size; ++j) put(b + 2 * j, sc(rng) * 10 - 0.25f);
        break;
      case Type::BF16:
        for (int j = 0; j < ti->block_size; ++j) {
          float f = sc(rng) * 10 - 0.25f;
          uint32_t u;
          std::memcpy(&u, &f, 4);
          const uint16_t h = static_cast<uint16_t>(u >> 16);
          std::memcpy(b + 2 * j, &h, 2);
        }
        break;
      case Type::F32:
        for (int j = 0; j < ti->block_size; ++j) {
          const float f = sc(rng) * 10 - 0.25f;
          std::memcpy(b + 4 * j, &f, 4);
        }
        break;
      default: break;
    }
  }
  return w;
}

std::vector<float> random_x(int64_t m, int64_t k, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(m * k);
  for (auto& v : x) v = nd(rng);
  x[3] = 9.f;  // an outlier, as real activations have
  return x;
}

struct Case {
  Type t;
  int64_t k;
};

class QgemvTest : public ::testing::TestWithParam<Case> {};

TEST_P(QgemvTest, IsasMatchReferenceAndReferenceMatchesFloat) {
  const Case c = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(c.t) * 7919u + static_cast<uint32_t>(c.k));
  const int64_t n = 37, k = c.k;  // odd n: uneven thread ranges
  const std::vector<uint8_t> w = random_rows(c.t, n, k, rng);
  std::vector<float> wd(n * k);
  ASSERT_TRUE(gguf::dequantize(c.t, w.data(), wd.data(), n * k).ok());
  ThreadPool pool(3);
  const int ab = qgemv::act_block(c.t);
  for (int64_t m = 1; m <= 4; ++m) {
    const std::vector<float> x = random_x(m, k, rng);
    qgemv::Acts acts;
    std::vector<float> yref(m * n, -1.f);
    ASSERT_TRUE(qgemv::gemv(c.t, w.data(), n, k, x.data(), m, yref.data(), n, &pool, &acts,
                            qgemv::Isa::Ref).ok());
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t r = 0; r < n; ++r) {
        double exact = 0, mag = 0, bound = 0;
        for (int64_t j = 0; j < k; ++j) {
          exact += double(wd[r * k + j]) * x[i * k + j];
          mag += std::fabs(double(wd[r * k + j]) * x[i * k + j]);
          if (ab) {  // |round error| <= d/2 = max|x in block| / 254 per element
            double amax = 0;
            const int64_t b0 = j / ab * ab;
            for (int64_t q = b0; q < b0 + ab; ++q) amax = std::max(amax, double(std::fabs(x[i * k + q])));
            bound += std::fabs(wd[r * k + j]) * amax / 254.0;
          }
        }
        EXPECT_NEAR(yref[i * n + r], exact, bound * 1.001 + 1e-5 * mag + 1e-6)
            << gguf::type_name(uint32_t(c.t)) << " m=" << m << " i=" << i << " r=" << r;
      }
    }
    for (qgemv::Isa isa : {qgemv::Isa::Avx2, qgemv::Isa::Vnni}) {
      if (!qgemv::isa_available(isa)) continue;
      std::vector<float> y(m * n, -1.f);
      ASSERT_TRUE(qgemv::gemv(c.t, w.data(), n, k, x.data(), m, y.data(), n, &pool, &acts, isa).ok());
      for (int64_t i = 0; i < m; ++i)
        for (int64_t r = 0; r < n; ++r) {
          double mag = 0;
          for (int64_t j = 0; j < k; ++j) mag += std::fabs(double(wd[r * k + j]) * x[i * k + j]);
          // Same integers; only the order of the fp32 block sums differs.
          EXPECT_NEAR(y[i * n + r], yref[i * n + r], 2e-6 * mag + 1e-7)
              << qgemv::isa_name(isa) << " " << gguf::type_name(uint32_t(c.t)) << " m=" << m
              << " r=" << r;
        }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Types, QgemvTest,
    ::testing::Values(Case{Type::Q4_0, 96}, Case{Type::Q4_0, 640}, Case{Type::Q5_0, 96},
                      Case{Type::Q5_0, 640}, Case{Type::Q8_0, 96}, Case{Type::Q8_0, 640},
                      Case{Type::Q4_K, 256}, Case{Type::Q4_K, 768}, Case{Type::Q5_K, 256},
                      Case{Type::Q5_K, 768}, Case{Type::Q6_K, 256}, Case{Type::Q6_K, 768},
                      Case{Type::F16, 40}, Case{Type::BF16, 40}, Case{Type::F32, 40}),
    [](const auto& info) {
      return gguf::type_name(uint32_t(info.param.t)) + "_k" + std::to_string(info.param.k);
    });

TEST(Qgemv, QuantizeActsSumsAndScales) {
  std::mt19937 rng(5);
  const std::vector<float> x = random_x(2, 512, rng);
  qgemv::Acts a;
  qgemv::quantize_acts(x.data(), 2, 512, 256, &a);
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t g = 0; g < 32; ++g) {
      int s = 0;
      for (int j = 0; j < 16; ++j) s += a.row(i)[g * 16 + j];
      EXPECT_EQ(a.sums(i)[g], s);
    }
    for (int64_t j = 0; j < 512; ++j)
      EXPECT_NEAR(a.row(i)[j] * a.scales(i)[j / 256], x[i * 512 + j], a.scales(i)[j / 256] * 0.5001f);
  }
}

// The AVX2 quantiser must give the scalar definition's bytes: scales, codes (ties to even,
// clamping) and the sums of 16.
TEST(Qgemv, QuantizeActsIsasGiveTheSameBytes) {
  if (!qgemv::isa_available(qgemv::Isa::Avx2)) GTEST_SKIP() << "no AVX2";
  std::mt19937 rng(11);
  for (int block : {32, 256}) {
    for (int64_t m = 1; m <= 4; ++m) {
      const int64_t k = 3 * 256;
      std::vector<float> x = random_x(m, k, rng);
      for (int j = 0; j < block; ++j) x[block + j] = 0.f;  // an all-zero block: d = 0
      // A block whose scale is exactly 1 (max 127): halves must round to even.
      for (int j = 0; j < block; ++j) x[2 * block + j] = static_cast<float>(j % 7) - 3.5f;
      x[2 * block] = 127.f;
      x[2 * block + 1] = -126.5f;
      qgemv::Acts ref, vec;
      qgemv::quantize_acts(x.data(), m, k, block, &ref, qgemv::Isa::Ref);
      qgemv::quantize_acts(x.data(), m, k, block, &vec, qgemv::Isa::Avx2);
      EXPECT_EQ(ref.q, vec.q) << "block " << block << " m " << m;
      EXPECT_EQ(ref.d, vec.d) << "block " << block << " m " << m;
      EXPECT_EQ(ref.s16, vec.s16) << "block " << block << " m " << m;
      EXPECT_EQ(ref.q[2 * block + 1], -126);  // -126.5 -> -126 (even)
      EXPECT_EQ(ref.q[2 * block + 2], -2);    // -1.5 -> -2
      EXPECT_EQ(ref.q[2 * block + 6], 2);     // 2.5 -> 2
    }
  }
}

TEST(Qgemv, RejectsBadInput) {
  std::vector<uint8_t> w(34 * 4);
  std::vector<float> x(4 * 32 * 5), y(64);
  qgemv::Acts a;
  EXPECT_FALSE(qgemv::gemv(Type::Q8_0, w.data(), 4, 32, x.data(), 5, y.data(), 4, nullptr, &a).ok());
  EXPECT_FALSE(qgemv::gemv(Type::Q8_0, w.data(), 4, 33, x.data(), 1, y.data(), 4, nullptr, &a).ok());
  EXPECT_FALSE(qgemv::gemv(Type::Q2_K, w.data(), 1, 256, x.data(), 1, y.data(), 4, nullptr, &a).ok());
  EXPECT_FALSE(qgemv::gemv(Type::Q8_0, w.data(), 4, 32, x.data(), 1, y.data(), 2, nullptr, &a).ok());
  EXPECT_FALSE(LinearGguf::create({nullptr}).ok());
}

// Fused LinearGguf over parts of different types equals the parts run one by one, 4 rows
// at a time, bit for bit.
void expect_fused_matches_parts(int64_t k, const Type (&types)[3], const int64_t (&ns)[3],
                                std::initializer_list<int64_t> ms) {
  std::mt19937 rng(11);
  std::vector<gguf::TensorInfo> ts(3);
  std::vector<std::vector<uint8_t>> data;
  for (int p = 0; p < 3; ++p) {
    data.push_back(random_rows(types[p], ns[p], k, rng));
    ts[p].name = "t" + std::to_string(p);
    ts[p].type = types[p];
    ts[p].dims = {k, ns[p]};
    ts[p].data = data.back().data();
    ts[p].nbytes = data.back().size();
  }
  auto lin = LinearGguf::create({&ts[0], &ts[1], &ts[2]});
  ASSERT_TRUE(lin.ok()) << lin.error();
  const int64_t n = ns[0] + ns[1] + ns[2], ld = n + 8;
  EXPECT_EQ((*lin)->n(), n);
  ThreadPool pool(2);
  LinearScratch scratch;  // reused across calls of different m, as sessions do
  for (int64_t m : ms) {
    const std::vector<float> x = random_x(m, k, rng);
    std::vector<float> y(m * ld, 0.f), ys(m * ld, 0.f);
    (*lin)->forward(x.data(), m, y.data(), ld, &pool, &scratch);
    int64_t row0 = 0;
    for (int p = 0; p < 3; ++p) {
      for (int64_t i0 = 0; i0 < m; i0 += 4) {
        const int64_t mr = std::min<int64_t>(4, m - i0);
        qgemv::Acts a;
        ASSERT_TRUE(qgemv::gemv(types[p], data[p].data(), ns[p], k, x.data() + i0 * k, mr,
                                ys.data() + i0 * ld + row0, ld, nullptr, &a).ok());
      }
      row0 += ns[p];
    }
    for (int64_t i = 0; i < m; ++i)
      for (int64_t r = 0; r < ld; ++r)  // past n: the padding stays untouched (0)
        ASSERT_EQ(y[i * ld + r], ys[i * ld + r]) << m << " " << r;
  }
}

TEST(LinearGguf, FusedPartsMatchSeparateGemvs) {
  expect_fused_matches_parts(512, {Type::Q5_0, Type::Q6_K, Type::Q8_0}, {19, 8, 5},
                             {1, 3, 6});  // 6: taken 4 + 2 rows
}

// Many rows (ppl's logits): blocks of ~30 weight rows at this width (256 KiB of Q8_0), so
// blocks straddle parts and threads' ranges, each block meeting every group of 4 rows.
TEST(LinearGguf, ManyRowsMatchFourRowPasses) {
  expect_fused_matches_parts(8192, {Type::Q5_0, Type::Q6_K, Type::Q8_0}, {70, 40, 25},
                             {13, 5, 1, 6});
  // A float part (F16: x read unquantised, the row count taken from the 32-block scratch).
  expect_fused_matches_parts(8192, {Type::Q6_K, Type::F16, Type::Q4_K}, {30, 20, 11}, {9, 2});
}

// Decode steps through the GGUF linears against the fp32 path on the same tokens: the
// reference session runs all tokens in one chunk (m > 4: fp32 linears), the other prefills
// with fp32 then decodes one token at a time (m = 1: GGUF linears and LM head).
TEST(LinearGguf, DecodeLogitsCloseToFp32) {
  const std::string path = std::string(OCTET_SOURCE_DIR) + "/models/gemma-3-270m-q4_k_m.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path;
  auto model = Model::load(path);
  ASSERT_TRUE(model.ok()) << model.error();
  ThreadPool pool(2);
  auto built = Weights::build_fp32(**model, &pool);
  ASSERT_TRUE(built.ok()) << built.error();
  auto w = std::const_pointer_cast<Weights>(*built);
  ASSERT_TRUE(w->attach_gguf_decode(**model).ok());
  ASSERT_TRUE(w->has_decode());
  const std::vector<Token> toks = (*model)->tokenizer().encode(
      "The capital of France is Paris, and the capital of Italy is", true, false);
  ASSERT_GT(toks.size(), 12u);
  const int64_t T = static_cast<int64_t>(toks.size()), P = T - 5, V = (*model)->hparams().n_vocab;
  SessionOptions so;
  so.n_ctx = 128;
  Session ref(*model, w, so, &pool);
  std::vector<float> all;
  ASSERT_TRUE(ref.eval(toks, true, &all).ok());
  Session dec(*model, w, so, &pool);
  std::vector<float> lg;
  ASSERT_TRUE(dec.eval(std::span(toks).first(P), false, nullptr).ok());
  double worst = 0;
  for (int64_t t = P; t < T; ++t) {
    ASSERT_TRUE(dec.eval(std::span(toks).subspan(t, 1), false, &lg).ok());
    const float* a = all.data() + t * V;
    auto logsoftmax = [V](const float* z, std::vector<double>* o) {
      double mx = z[0];
      for (int64_t i = 0; i < V; ++i) mx = std::max<double>(mx, z[i]);
      double s = 0;
      for (int64_t i = 0; i < V; ++i) s += std::exp(z[i] - mx);
      o->resize(V);
      for (int64_t i = 0; i < V; ++i) (*o)[i] = z[i] - mx - std::log(s);
    };
    std::vector<double> p, q;
    logsoftmax(a, &p);
    logsoftmax(lg.data(), &q);
    double kl = 0;
    for (int64_t i = 0; i < V; ++i) kl += std::exp(p[i]) * (p[i] - q[i]);
    worst = std::max(worst, kl);
    const auto am = [V](const float* z) { return std::max_element(z, z + V) - z; };
    EXPECT_EQ(am(a), am(lg.data())) << "position " << t;
  }
  // int8 activations (per 32/256 block) cost little: the fp32 path's next-token
  // distribution should be nearly unchanged.
  EXPECT_LT(worst, 0.02) << "worst KL(fp32 || gguf decode)";
  std::printf("worst decode-step KL vs fp32: %.2e\n", worst);
}

}  // namespace
}  // namespace octet
