// Batched decode (include/octet/batch.h): one step of several sessions at different positions
// must give each session exactly what its own eval() of that token gives.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <filesystem>
#include <random>

#include "default_model.h"
#include "octet/batch.h"
#include "octet/calibration.h"
#include "octet/runtime.h"
#include "octet/synth.h"

using namespace octet;

namespace {

std::vector<Token> random_tokens(std::mt19937& rng, int64_t n, int64_t lo, int64_t hi) {
  std::vector<Token> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<Token>(lo + rng() % (hi - lo));
  return t;
}

// Sessions prefilled to the given lengths; a twin set gets the same KV through snapshots.
// Then `steps` decode steps: the reference twins one eval() each, the others one batched
// step; logits must match bit for bit (tol 0), and so must the sessions' state afterwards.
// tol > 0: max |difference| <= tol · max |logit| and the same argmax.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, double tol,
                  const std::string& where) {
  ASSERT_EQ(got.size(), want.size()) << where;
  if (tol == 0) {
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << where;
    return;
  }
  double diff = 0, mag = 0;
  for (size_t j = 0; j < got.size(); ++j) {
    diff = std::max(diff, std::abs(double(got[j]) - want[j]));
    mag = std::max(mag, std::abs(double(want[j])));
  }
  EXPECT_LE(diff, tol * mag) << where;
  EXPECT_EQ(std::max_element(got.begin(), got.end()) - got.begin(),
            std::max_element(want.begin(), want.end()) - want.begin()) << where;
}

void check_batch(std::shared_ptr<const Model> model, std::shared_ptr<const Weights> w,
                 const SessionOptions& so, ThreadPool* pool, const std::vector<int64_t>& lens,
                 int steps, const char* what, double tol = 0) {
  SCOPED_TRACE(what);
  const int64_t V = model->hparams().n_vocab;
  std::mt19937 rng(11);
  std::vector<std::unique_ptr<Session>> ref, bat;
  for (int64_t len : lens) {
    ref.push_back(std::make_unique<Session>(model, w, so, pool));
    bat.push_back(std::make_unique<Session>(model, w, so, pool));
    ASSERT_TRUE(ref.back()->eval(random_tokens(rng, len, 3, std::min<int64_t>(V, 20000)), false,
                                 nullptr).ok());
    ASSERT_TRUE(bat.back()->load_kv(ref.back()->save_kv(len), len).ok());
  }
  BatchDecoder dec(pool);
  const size_t B = lens.size();
  for (int step = 0; step < steps; ++step) {
    const std::vector<Token> toks = random_tokens(rng, static_cast<int64_t>(B), 3,
                                                  std::min<int64_t>(V, 20000));
    std::vector<std::vector<float>> want(B), got(B);
    std::vector<Session*> ss;
    std::vector<std::vector<float>*> lg;
    for (size_t i = 0; i < B; ++i) {
      ASSERT_TRUE(ref[i]->eval(std::span<const Token>(&toks[i], 1), false, &want[i]).ok());
      ss.push_back(bat[i].get());
      // One session skips the LM head on the first step (the others still get theirs).
      lg.push_back(step == 0 && i == 1 ? nullptr : &got[i]);
    }
    ASSERT_TRUE(dec.step(ss, toks, lg).ok());
    for (size_t i = 0; i < B; ++i) {
      EXPECT_EQ(bat[i]->n_past(), ref[i]->n_past());
      EXPECT_EQ(bat[i]->history(), ref[i]->history());
      if (!lg[i]) continue;
      ASSERT_EQ(got[i].size(), static_cast<size_t>(V));
      expect_close(got[i], want[i], tol,
                   "session " + std::to_string(i) + " (position " +
                       std::to_string(lens[i] + step) + ") step " + std::to_string(step));
    }
  }
  // The caches hold the same rows: a plain eval after the batched steps agrees too.
  for (size_t i = 0; i < B; ++i) {
    const Token t = 42;
    std::vector<float> a, b;
    ASSERT_TRUE(ref[i]->eval(std::span<const Token>(&t, 1), false, &a).ok());
    ASSERT_TRUE(bat[i]->eval(std::span<const Token>(&t, 1), false, &b).ok());
    expect_close(b, a, tol, "session " + std::to_string(i) + " after the batched steps");
  }
}

}  // namespace

// A small random-weight model in the Qwen2.5-0.5B shape (Q4_0), written to the test temp dir.
Expected<std::shared_ptr<const Model>> synth_qwen(const std::string& name, int64_t layers) {
  const std::string path = ::testing::TempDir() + name;
  synth::Options o;
  o.shape = "qwen2.5-0.5b";
  o.type = gguf::Type::Q4_0;
  o.n_layer = layers;
  o.threads = 2;
  o.progress = false;
  if (auto w = synth::write_model(o, path); !w.ok()) return Status::Error(w.error());
  auto m = Model::load(path);  // the file is mapped: removing its name keeps the data
  std::filesystem::remove(path);
  return m;
}

TEST(Batch, SynthQwenMatchesEvalBitForBit) {
  auto model = synth_qwen("octet_batch_qwen.bin", 2);
  ASSERT_TRUE(model.ok()) << model.error();
  ThreadPool pool(2);
  auto wf = Weights::build_fp32(**model, &pool);
  ASSERT_TRUE(wf.ok()) << wf.error();
  SessionOptions so;
  so.n_ctx = 128;
  so.chunk = 16;
  // FP32 linears (B rows through one GEMM) and F16 / F32 / INT8 KV caches. The FP32 GEMM
  // sums a 1-row product in another order than a B-row tile (different micro-kernels), so
  // logits agree to float rounding, not bit for bit (and the KV rows differ in the last bits,
  // so it grows a little over steps): 1e-4 of the largest logit, same argmax.
  for (auto kv : {kernels::KvType::kF16, kernels::KvType::kF32, kernels::KvType::kInt8}) {
    so.kv_type = kv;
    check_batch(*model, *wf, so, &pool, {5, 17, 40}, 3, kernels::kv_type_name(kv), 1e-4);
  }
  so.kv_type = kernels::KvType::kF16;
  // The GGUF decode linears (what a single-token eval uses when they are attached), with
  // more sessions than one qgemv pass takes (kMaxRows = 4).
  auto wd = Weights::build_fp32(**model, &pool);
  ASSERT_TRUE(wd.ok());
  ASSERT_TRUE(std::const_pointer_cast<Weights>(*wd)->attach_gguf_decode(**model).ok());
  check_batch(*model, *wd, so, &pool, {1, 9, 33, 2, 60, 20}, 3, "gguf decode, 6 sessions");
}

TEST(Batch, RejectsBadInputWithoutAdvancing) {
  auto model = synth_qwen("octet_batch_qwen_bad.bin", 1);
  ASSERT_TRUE(model.ok()) << model.error();
  ThreadPool pool(2);
  auto w = Weights::build_fp32(**model, &pool);
  ASSERT_TRUE(w.ok());
  SessionOptions so;
  so.n_ctx = 8;
  so.chunk = 4;
  Session a(*model, *w, so, &pool), b(*model, *w, so, &pool);
  const Token t0 = 5;
  ASSERT_TRUE(a.eval(std::vector<Token>(7, t0), false, nullptr).ok());  // one slot left
  BatchDecoder dec(&pool);
  std::vector<float> la, lb;
  std::vector<Session*> ss = {&a, &b};
  std::vector<std::vector<float>*> lg = {&la, &lb};
  EXPECT_FALSE(dec.step(ss, std::vector<Token>{5, -1}, lg).ok());          // bad id
  EXPECT_FALSE(dec.step(ss, std::vector<Token>{5, 1 << 30}, lg).ok());     // bad id
  std::vector<Session*> twice = {&a, &a};
  EXPECT_FALSE(dec.step(twice, std::vector<Token>{5, 5}, lg).ok());        // same session
  EXPECT_FALSE(dec.step(ss, std::vector<Token>{5}, lg).ok());              // count mismatch
  EXPECT_EQ(a.n_past(), 7);
  EXPECT_EQ(b.n_past(), 0);
  ASSERT_TRUE(dec.step(ss, std::vector<Token>{5, 6}, lg).ok());
  EXPECT_EQ(a.n_past(), 8);
  EXPECT_FALSE(dec.step(ss, std::vector<Token>{5, 6}, lg).ok());           // a is full
  EXPECT_EQ(b.n_past(), 1);
}

// The int8 down projection makes its activation rows itself (Linear::fuses_gated): the same
// output, bit for bit, as the activation written out in full and then projected.
void check_gated_down(const Weights& w, ThreadPool* pool) {
  EXPECT_TRUE(w.ffn_act_fused());
  const Linear& down = *w.layer(3).w_down;
  ASSERT_TRUE(down.fuses_gated());
  // 45 rows: one unit of outliers, made on the caller; 300: several 64-row stripes, their
  // outliers sorted into rows on the pool (entries_by_row in quant/int8_weights.cpp).
  for (const int64_t m : {int64_t{45}, int64_t{300}}) {
  const int64_t F = down.k(), E = down.n();
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 1.5f);
  std::vector<float> gu(static_cast<size_t>(m * 2 * F));
  for (auto& v : gu) v = nd(rng);
  for (auto act : {static_cast<Linear::GatedAct>(kernels::gelu_tanh_mul_f32),
                   static_cast<Linear::GatedAct>(kernels::silu_mul_f32)}) {
    std::vector<float> y0(static_cast<size_t>(m * E)), y1(y0.size());
    LinearScratch s0, s1;
    down.Linear::forward_gated(gu.data(), 2 * F, act, m, y0.data(), E, pool, &s0);
    down.forward_gated(gu.data(), 2 * F, act, m, y1.data(), E, pool, &s1);
    EXPECT_GT(s1.outlier_entries, 0u);  // the shadow path ran
    EXPECT_EQ(s0.outlier_entries, s1.outlier_entries);
    for (size_t i = 0; i < y0.size(); ++i) ASSERT_EQ(y0[i], y1[i]) << i;
  }
  // The paired gate/up runs the whole FFN in one call (Linear::forward_ffn): the same, bit
  // for bit, as gate/up (its forward() hands back [gate | up] rows) then the gated down; with
  // both activations (the fused path reads the interleaved halves in place).
  const Linear& gate_up = *w.layer(3).w_gate_up;
  ASSERT_TRUE(gate_up.fuses_ffn());
  std::vector<float> x(static_cast<size_t>(m * E));
  for (auto& v : x) v = nd(rng);
  for (ThreadPool* p : {pool, static_cast<ThreadPool*>(nullptr)})
  for (auto act : {static_cast<Linear::GatedAct>(kernels::gelu_tanh_mul_f32),
                   static_cast<Linear::GatedAct>(kernels::silu_mul_f32)}) {
    std::vector<float> y0(static_cast<size_t>(m * E)), y1(y0.size());
    std::vector<float> g0(static_cast<size_t>(m * 2 * F)), g1(g0.size());
    LinearScratch s0, s1;
    gate_up.forward(x.data(), m, g0.data(), 2 * F, p, &s0);
    down.forward_gated(g0.data(), 2 * F, act, m, y0.data(), E, p, &s0);
    gate_up.forward_ffn(x.data(), m, act, g1.data(), 2 * F, y1.data(), E, p, &s1);
    EXPECT_GT(s1.outlier_entries, 0u);
    EXPECT_EQ(s0.outlier_entries, s1.outlier_entries);
    for (size_t i = 0; i < y0.size(); ++i) ASSERT_EQ(y0[i], y1[i]) << "m=" << m << " at " << i;
  }
  }
}

TEST(Batch, GemmaMatchesEvalBitForBit) {
  ThreadPool pool(2);
  std::shared_ptr<const Model> model;
  Calibration calib;
  ASSERT_NO_FATAL_FAILURE(test::load_default_model(&pool, &model, &calib));
  if (!model) GTEST_SKIP() << "no model at " << test::default_model_path();
  // The server's engine: INT8 prefill, GGUF decode linears.
  auto w = Weights::build_int8(*model, calib, Int8Options{}, &pool);
  ASSERT_TRUE(w.ok()) << w.error();
  ASSERT_TRUE(std::const_pointer_cast<Weights>(*w)->attach_gguf_decode(*model).ok());
  SessionOptions so;
  so.n_ctx = 256;
  so.chunk = 32;
  check_batch(model, *w, so, &pool, {3, 50, 130, 17}, 3, "gemma int8 + gguf decode");
  // Sliding-window rings (n_ctx > window + chunk): one session past the window, wrapping.
  so.n_ctx = 1024;
  so.chunk = 64;
  check_batch(model, *w, so, &pool, {700, 12}, 2, "gemma ring");
  // INT8 linears (no decode linears attached): the int8 path with B rows.
  auto w8 = Weights::build_int8(*model, calib, Int8Options{}, &pool);
  ASSERT_TRUE(w8.ok());
  so.n_ctx = 256;
  so.chunk = 32;
  check_batch(model, *w8, so, &pool, {20, 7}, 2, "gemma int8 linears");
  check_gated_down(**w8, &pool);
  // The pairing's row interleave, checked against weights built without it: gate/up's
  // forward() hands back the same [gate | up] rows, bit for bit (a wrong interleave would
  // pass check_gated_down, whose reference de-interleaves the same way).
  Int8Options unpaired;
  unpaired.pair_ffn = false;
  auto wu = Weights::build_int8(*model, calib, unpaired, &pool);
  ASSERT_TRUE(wu.ok());
  for (int64_t il : {0, 3}) {
    const Linear& a = *(*w8)->layer(il).w_gate_up;
    const Linear& b = *(*wu)->layer(il).w_gate_up;
    ASSERT_TRUE(a.fuses_ffn());
    ASSERT_FALSE(b.fuses_ffn());
    ASSERT_EQ(a.n(), b.n());
    const int64_t m = 37, E = a.k(), N = a.n();
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.f, 2.f);
    std::vector<float> x(static_cast<size_t>(m * E)), ya(static_cast<size_t>(m * N)), yb(ya.size());
    for (auto& v : x) v = nd(rng);
    LinearScratch sa, sb;
    a.forward(x.data(), m, ya.data(), N, &pool, &sa);
    b.forward(x.data(), m, yb.data(), N, &pool, &sb);
    EXPECT_GT(sb.outlier_entries, 0u);
    EXPECT_EQ(sa.outlier_entries, sb.outlier_entries);
    for (size_t i = 0; i < ya.size(); ++i) ASSERT_EQ(ya[i], yb[i]) << "layer " << il << " at " << i;
  }
  // With GGUF decode linears attached the down projections of decode steps do not fuse.
  EXPECT_FALSE((*w)->ffn_act_fused());
}

