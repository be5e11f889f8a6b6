// --mode gguf (Weights::build_gguf): every linear reads the file's quantised blocks in place.
// Prefill and decode must track the FP32 reference closely (activations are quantised to
// 8 bits per block, as llama.cpp does), and the weights must hold no copy of the linears.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "default_model.h"
#include "octet/calibration.h"
#include "octet/memory.h"
#include "octet/runtime.h"
#include "octet/synth.h"

using namespace octet;

namespace {

double kl(const float* p_logits, const float* q_logits, int64_t n) {
  auto softmax = [n](const float* x) {
    std::vector<double> p(static_cast<size_t>(n));
    const float mx = *std::max_element(x, x + n);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += p[i] = std::exp(double(x[i]) - mx);
    for (double& v : p) v /= s;
    return p;
  };
  const auto p = softmax(p_logits), q = softmax(q_logits);
  double d = 0;
  for (int64_t i = 0; i < n; ++i)
    if (p[i] > 0) d += p[i] * std::log(p[i] / std::max(q[i], 1e-300));
  return d;
}

// Mean KL(p‖q) over `rows` rows of V logits each.
double mean_kl(const std::vector<float>& p, const std::vector<float>& q, size_t rows, int64_t V) {
  double sum = 0;
  for (size_t r = 0; r < rows; ++r) sum += kl(p.data() + r * V, q.data() + r * V, V);
  return sum / static_cast<double>(rows);
}

TEST(GgufMode, GemmaTracksFp32WithoutWeightCopies) {
  const std::string path = std::string(OCTET_SOURCE_DIR) + "/models/gemma-3-270m-q4_k_m.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no model at " << path;
  auto model = Model::load(path);
  ASSERT_TRUE(model.ok()) << model.error();
  ThreadPool pool(2);
  auto wg = Weights::build_gguf(**model);
  ASSERT_TRUE(wg.ok()) << wg.error();
  EXPECT_EQ((*wg)->mode(), ComputeMode::kGguf);
  const WeightBytes b = (*wg)->breakdown();
  EXPECT_EQ(b.int8 + b.int8_lm_head + b.hot_float + b.f32, 0u) << "no heap copy of linears";
  EXPECT_GT(b.gguf_mapped, 100u << 20);
  EXPECT_LT(b.gguf_mapped, (*model)->file().size());  // decode linears share the tensors
  auto wf = Weights::build_fp32(**model, &pool);
  ASSERT_TRUE(wf.ok()) << wf.error();

  const std::vector<Token> prompt = (*model)->tokenizer().encode(
      "The capital of France is Paris. The capital of Germany is Berlin. The capital of", true,
      false);
  SessionOptions so;
  so.n_ctx = 128;
  so.chunk = 8;  // several prefill chunks, each > 4 rows: the GEMV kernels take 4 at a time
  so.kv_type = kernels::KvType::kF32;
  Session sg(*model, *wg, so, &pool), sf(*model, *wf, so, &pool);
  std::vector<float> lg, lf;
  ASSERT_TRUE(sg.eval(prompt, true, &lg).ok());
  ASSERT_TRUE(sf.eval(prompt, true, &lf).ok());
  const int64_t V = (*model)->hparams().n_vocab, n = static_cast<int64_t>(prompt.size());
  double kl_sum = 0;
  int agree = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* g = lg.data() + i * V;
    const float* f = lf.data() + i * V;
    kl_sum += kl(f, g, V);
    agree += std::max_element(g, g + V) - g == std::max_element(f, f + V) - f;
  }
  EXPECT_LT(kl_sum / n, 0.02) << "mean KL vs fp32 over " << n << " positions";
  EXPECT_GE(agree, n * 8 / 10) << agree << " of " << n << " argmax agree";
  // Greedy decode steps (1 row) go through the same blocks.
  Token next = static_cast<Token>(std::max_element(lg.end() - V, lg.end()) - (lg.end() - V));
  for (int step = 0; step < 4; ++step) {
    ASSERT_TRUE(sg.eval(std::vector<Token>{next}, false, &lg).ok());
    ASSERT_TRUE(sf.eval(std::vector<Token>{next}, false, &lf).ok());
    EXPECT_LT(kl(lf.data(), lg.data(), V), 0.05) << "decode step " << step;
    next = static_cast<Token>(std::max_element(lf.begin(), lf.end()) - lf.begin());
  }
}

}  // namespace

namespace {

// INT8 prefill weights with smoothing (the default calibration folds 1/s into the norm gains
// and s into the int8 weights) plus the GGUF decode linears: decode-sized evals use the
// file's own gains, so they are exactly what --mode gguf computes for the same rows.
TEST(GgufMode, DecodeLinearsOnSmoothedInt8WeightsUseTheFilesNorms) {
  ThreadPool pool(2);
  std::shared_ptr<const Model> model;
  Calibration calib;
  ASSERT_NO_FATAL_FAILURE(test::load_default_model(&pool, &model, &calib));
  if (!model) GTEST_SKIP() << "no model at " << test::default_model_path();
  // A smoothed calibration: the default one where smoothing is the default (VNNI CPUs), else
  // (most linears on the file's blocks: no smoothing by default) one made with α 0.25.
  if (default_calib_options(*model).smooth_alpha == 0) {
    auto c = calibrate_text(model, "", "builtin", CalibOptions{}, 256, &pool, {});
    ASSERT_TRUE(c.ok()) << c.error();
    calib = std::move(c).value();
  }
  bool smoothed = false;
  for (const auto& l : calib.layers)
    for (const auto& sl : l) smoothed = smoothed || !sl.smooth.empty();
  ASSERT_TRUE(smoothed) << "the calibration is expected to smooth";
  auto w8 = Weights::build_int8(*model, calib, Int8Options{}, &pool);
  ASSERT_TRUE(w8.ok()) << w8.error();
  ASSERT_TRUE(std::const_pointer_cast<Weights>(*w8)->attach_gguf_decode(*model).ok());
  EXPECT_FALSE((*w8)->layer(0).dec_attn_norm.empty());
  auto wg = Weights::build_gguf(*model);
  ASSERT_TRUE(wg.ok()) << wg.error();
  SessionOptions so;
  so.n_ctx = 64;
  Session s8(model, *w8, so, &pool), sg(model, *wg, so, &pool);
  const int64_t V = model->hparams().n_vocab;
  std::vector<float> l8, lg;
  for (const std::vector<Token>& step : {std::vector<Token>{2, 651, 6037}, {529}, {4504, 563}}) {
    ASSERT_TRUE(s8.eval(step, true, &l8).ok());
    ASSERT_TRUE(sg.eval(step, true, &lg).ok());
    ASSERT_EQ(l8.size(), static_cast<size_t>(V) * step.size());
    for (size_t i = 0; i < l8.size(); ++i) ASSERT_EQ(l8[i], lg[i]) << i;
  }
}

// The int8 mode's LM head reads the file's own blocks in place whenever they are block-quantised
// (Int8Options::file_head): Q4_0 and Q8_0 heads are, an F16 head gets an int8 copy. Either
// head must track the FP32 logits; the file head without any heap copy.
// Two layers of the Qwen2.5-0.5B shape with Q4_0 linears.
synth::Options small_qwen_q4_0() {
  synth::Options o;
  o.shape = "qwen2.5-0.5b";
  o.type = gguf::Type::Q4_0;
  o.n_layer = 2;
  o.threads = 2;
  o.progress = false;
  return o;
}

// Writes o to a temporary file, maps it and unlinks it (the mapping keeps the data).
std::shared_ptr<const Model> write_and_load(const synth::Options& o, const std::string& name) {
  const std::string path = ::testing::TempDir() + name;
  if (auto w = synth::write_model(o, path); !w.ok()) {
    ADD_FAILURE() << w.error();
    return nullptr;
  }
  auto m = Model::load(path);
  std::filesystem::remove(path);
  if (!m.ok()) {
    ADD_FAILURE() << m.error();
    return nullptr;
  }
  return std::move(m).value();
}

TEST(GgufMode, Int8HeadReadsTheFileBlocks) {
  ThreadPool pool(2);
  synth::Options o = small_qwen_q4_0();
  o.head_type = gguf::Type::Q4_0;
  std::shared_ptr<const Model> model = write_and_load(o, "octet_file_head_qwen.bin");
  ASSERT_TRUE(model);
  ASSERT_EQ(model->output()->type, gguf::Type::Q4_0);
  auto calib = calibrate_text(model, "", "builtin", CalibOptions{}, 256, &pool, {});
  ASSERT_TRUE(calib.ok()) << calib.error();
  Int8Options copy;
  copy.file_head = false;
  auto wfile = Weights::build_int8(*model, *calib, Int8Options{}, &pool);
  auto wcopy = Weights::build_int8(*model, *calib, copy, &pool);
  auto wf = Weights::build_fp32(*model, &pool);
  ASSERT_TRUE(wfile.ok() && wcopy.ok() && wf.ok());
  const WeightBytes bf = (*wfile)->breakdown(), bc = (*wcopy)->breakdown();
  EXPECT_EQ(bf.int8_lm_head, 0u);
  EXPECT_EQ(bf.gguf_mapped, model->output()->nbytes);
  EXPECT_GT(bc.int8_lm_head, bf.gguf_mapped);
  EXPECT_EQ(bc.gguf_mapped, 0u);
  EXPECT_EQ(bf.int8, bc.int8);  // only the head differs
  // With GGUF decode linears too, the head's mapped bytes count once (same tensor).
  auto wdec = Weights::build_int8(*model, *calib, Int8Options{}, &pool);
  ASSERT_TRUE(wdec.ok());
  ASSERT_TRUE(std::const_pointer_cast<Weights>(*wdec)->attach_gguf_decode(*model).ok());
  EXPECT_EQ((*wdec)->breakdown().gguf_mapped, (*wdec)->decode_bytes());

  const int64_t V = model->hparams().n_vocab;
  SessionOptions so;
  so.n_ctx = 64;
  so.chunk = 16;
  Session sfile(model, *wfile, so, &pool), scopy(model, *wcopy, so, &pool), sf(model, *wf, so, &pool);
  std::vector<Token> prompt;
  for (int i = 0; i < 21; ++i) prompt.push_back(static_cast<Token>(1000 + 37 * i));
  // Prefill (logits of the last row only) then decode steps of one token.
  for (const std::vector<Token>& step : {prompt, {77}, {4242}}) {
    std::vector<float> lfile, lcopy, lf;
    ASSERT_TRUE(sfile.eval(step, false, &lfile).ok());
    ASSERT_TRUE(scopy.eval(step, false, &lcopy).ok());
    ASSERT_TRUE(sf.eval(step, false, &lf).ok());
    ASSERT_EQ(lfile.size(), static_cast<size_t>(V));
    const double kfile = kl(lf.data(), lfile.data(), V), kcopy = kl(lf.data(), lcopy.data(), V);
    std::printf("KL vs fp32: file head %.5f, int8 head %.5f\n", kfile, kcopy);
    EXPECT_LT(kfile, 0.05) << "file head vs fp32";
    EXPECT_LT(kcopy, 0.05) << "int8 head vs fp32";
    // The two heads differ (a different quantisation of the same logits)...
    EXPECT_NE(lfile, lcopy);
    // ...but the file head is the file's own arithmetic, never much worse than the copy.
    EXPECT_LT(kfile, 2 * kcopy + 1e-3);
  }

  // A Q8_0 head (8.5 bits per weight, more than an int8 copy: what llama.cpp and synth write
  // for these rows) is read in place too, for its per-block activation scales; a float head
  // (F16) has none to gain and is twice an int8 copy's bytes: the copy is made.
  for (const gguf::Type ht : {gguf::Type::Q8_0, gguf::Type::F16}) {
    o.head_type = ht;
    std::shared_ptr<const Model> mh = write_and_load(o, "octet_head_type_qwen.bin");
    ASSERT_TRUE(mh);
    ASSERT_EQ(mh->output()->type, ht);
    auto wh = Weights::build_int8(*mh, *calib, Int8Options{}, &pool);  // same shapes
    ASSERT_TRUE(wh.ok()) << wh.error();
    const WeightBytes bh = (*wh)->breakdown();
    if (ht == gguf::Type::Q8_0) {
      EXPECT_EQ(bh.int8_lm_head, 0u);
      EXPECT_EQ(bh.gguf_mapped, mh->output()->nbytes);
    } else {
      EXPECT_GT(bh.int8_lm_head, 0u);
      EXPECT_EQ(bh.gguf_mapped, 0u);
    }
  }

  // Gemma 3's head is Q8_0 too: read in place (no 168 MB copy).
  std::shared_ptr<const Model> gemma;
  Calibration gcal;
  ASSERT_NO_FATAL_FAILURE(test::load_default_model(&pool, &gemma, &gcal));
  if (!gemma) GTEST_SKIP() << "no model at " << test::default_model_path();
  auto wg = Weights::build_int8(*gemma, gcal, Int8Options{}, &pool);
  ASSERT_TRUE(wg.ok());
  EXPECT_EQ((*wg)->breakdown().int8_lm_head, 0u);
  EXPECT_EQ((*wg)->breakdown().gguf_mapped, gemma->output()->nbytes);
}

// INT8 prefill whose GEMM reads the file's Q4_0 blocks (Int8Options::q4_gemm, CPUs without
// VNNI): with an unsmoothed calibration every block linear takes it; its logits track FP32
// at least as closely as the int8 copy's (they multiply the file's exact weights), differ
// from the copy's (the path really ran), and a smoothed input keeps the int8 copy.
TEST(GgufMode, Int8PrefillOnQ4BlocksTracksFp32) {
  ThreadPool pool(2);
  std::shared_ptr<const Model> model = write_and_load(small_qwen_q4_0(), "octet_q4_prefill_qwen.bin");
  ASSERT_TRUE(model);
  // A first-use calibration leaves such a model unsmoothed exactly where the path applies.
  EXPECT_EQ(q4_gemm_applies(*model), q4_gemm_preferred());
  EXPECT_EQ(default_calib_options(*model).smooth_alpha, q4_gemm_preferred() ? 0.0 : 0.25);
  if (!q4_gemm_preferred()) GTEST_SKIP() << "the int8 GEMM is the faster one on this CPU";
  CalibOptions co;
  co.smooth_alpha = 0;
  auto calib = calibrate_text(model, "", "builtin", co, 256, &pool, {});
  auto smoothed = calibrate_text(model, "", "builtin", CalibOptions{}, 256, &pool, {});
  ASSERT_TRUE(calib.ok() && smoothed.ok());
  Int8Options off;
  off.q4_gemm = false;
  auto wq = Weights::build_int8(*model, *calib, Int8Options{}, &pool);
  auto w8 = Weights::build_int8(*model, *calib, off, &pool);
  auto ws = Weights::build_int8(*model, *smoothed, Int8Options{}, &pool);
  auto wf = Weights::build_fp32(*model, &pool);
  ASSERT_TRUE(wq.ok() && w8.ok() && ws.ok() && wf.ok());
  // Row pointers + column offsets of all 4 linears of both layers; none when off. With the
  // smoothed calibration only o (attn_out is never smoothed) can read the blocks.
  const HParams& hp = model->hparams();
  const size_t rows = static_cast<size_t>(
      2 * (hp.q_dim() + 2 * hp.kv_dim() + hp.n_embd + 2 * hp.n_ff + hp.n_embd));
  EXPECT_EQ((*wq)->breakdown().q4_index, rows * (sizeof(void*) + sizeof(float)));
  EXPECT_EQ((*w8)->breakdown().q4_index, 0u);
  EXPECT_EQ((*ws)->breakdown().q4_index,
            static_cast<size_t>(2 * hp.n_embd) * (sizeof(void*) + sizeof(float)));

  const int64_t V = hp.n_vocab;
  SessionOptions so;
  so.n_ctx = 96;
  so.chunk = 32;
  Session sq(model, *wq, so, &pool), s8(model, *w8, so, &pool), sf(model, *wf, so, &pool);
  std::vector<Token> prompt;
  for (int i = 0; i < 70; ++i) prompt.push_back(static_cast<Token>(500 + 53 * i));
  std::vector<float> lq, l8, lf;
  ASSERT_TRUE(sq.eval(prompt, true, &lq).ok());
  ASSERT_TRUE(s8.eval(prompt, true, &l8).ok());
  ASSERT_TRUE(sf.eval(prompt, true, &lf).ok());
  const double kq = mean_kl(lf, lq, prompt.size(), V), k8 = mean_kl(lf, l8, prompt.size(), V);
  std::printf("mean KL vs fp32 over %zu rows: q4 blocks %.5f, int8 copy %.5f\n", prompt.size(),
              kq, k8);
  EXPECT_NE(lq, l8);
  EXPECT_LT(kq, 0.05);
  EXPECT_LT(kq, 1.5 * k8 + 1e-4);
}

// The default model (Gemma 3 270M Q4_K_M) mixes types: q/k/gate/up Q5_0, o Q4_K, v Q5_0 or
// Q8_0, down Q4_K or Q6_K. Every fused linear whose tensors share one type the W4A8 kernel
// reads (and whose K fits the K-quants' 256 super-blocks) runs on the file's blocks — counted
// here from the file's tensor types — and the logits track FP32 as the int8 copy's do.
TEST(GgufMode, Int8PrefillOnTheDefaultModelsMixedBlocks) {
  ThreadPool pool(2);
  const std::string path = test::default_model_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no model at " << path;
  auto loaded = Model::load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  std::shared_ptr<const Model> model = *loaded;
  const HParams& hp = model->hparams();
  // Expected rows on the blocks and share of MACs, from the tensor types alone.
  const auto reads = [](const gguf::TensorInfo* t, int64_t k) {
    switch (t->type) {
      case gguf::Type::Q4_0:
      case gguf::Type::Q5_0: return k % 32 == 0;
      case gguf::Type::Q4_K:
      case gguf::Type::Q5_K: return k % 256 == 0;
      default: return false;
    }
  };
  int64_t rows = 0;
  double on = 0, all = 0;
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    const LayerTensors& T = model->layer(il);
    const auto linear = [&](std::vector<const gguf::TensorInfo*> ts, int64_t k) {
      int64_t n = 0;
      bool same = true;
      for (const gguf::TensorInfo* t : ts) {
        n += t->n_rows();
        same = same && reads(t, k) && t->type == ts[0]->type;
      }
      all += static_cast<double>(n * k);
      if (same) rows += n, on += static_cast<double>(n * k);
    };
    linear({T.wq, T.wk, T.wv}, hp.n_embd);
    linear({T.wo}, hp.q_dim());
    linear({T.ffn_gate, T.ffn_up}, hp.n_embd);
    linear({T.ffn_down}, hp.n_ff);
  }
  if (!q4_gemm_preferred()) {
    EXPECT_EQ(q4_gemm_share(*model), 0.0);
    GTEST_SKIP() << "the int8 GEMM is the faster one on this CPU";
  }
  EXPECT_NEAR(q4_gemm_share(*model), on / all, 1e-12);
  EXPECT_GT(on / all, 0.75);  // all but the Q8_0-v layers' qkv and the Q6_K downs: 79 %
  EXPECT_TRUE(q4_gemm_applies(*model));
  EXPECT_EQ(default_calib_options(*model).smooth_alpha, 0.0);

  CalibOptions co;
  co.smooth_alpha = 0;
  auto calib = calibrate_text(model, "", "builtin", co, 256, &pool, {});
  ASSERT_TRUE(calib.ok()) << calib.error();
  Int8Options off;
  off.q4_gemm = false;
  auto wq = Weights::build_int8(*model, *calib, Int8Options{}, &pool);
  auto w8 = Weights::build_int8(*model, *calib, off, &pool);
  auto wf = Weights::build_fp32(*model, &pool);
  ASSERT_TRUE(wq.ok() && w8.ok() && wf.ok());
  EXPECT_EQ((*wq)->breakdown().q4_index, static_cast<size_t>(rows) * (sizeof(void*) + sizeof(float)));
  EXPECT_EQ((*w8)->breakdown().q4_index, 0u);
  // The breakdown's MAC counts (what `run -v` and bench report) agree with the file's types.
  EXPECT_EQ((*wq)->breakdown().q4_macs, static_cast<size_t>(on));
  EXPECT_EQ((*wq)->breakdown().int8_macs, static_cast<size_t>(all));
  EXPECT_EQ((*w8)->breakdown().q4_macs, 0u);
  // The linears on the blocks keep no int8 copy (their shadow path reads the blocks too): the
  // int8 bytes left are the other linears' share (padding aside).
  EXPECT_NEAR(static_cast<double>((*wq)->breakdown().int8) /
                  static_cast<double>((*w8)->breakdown().int8),
              1.0 - on / all, 0.01);

  const std::vector<Token> prompt = model->tokenizer().encode(
      "The tower is 324 metres tall, about the same height as an 81-storey building, and the "
      "tallest structure in Paris. Its base is square, measuring 125 metres on each side. "
      "During its construction, the Eiffel Tower surpassed the Washington Monument to become "
      "the tallest man-made structure in the world.",
      true, false);
  SessionOptions so;
  so.n_ctx = 128;
  so.chunk = 32;
  Session sq(model, *wq, so, &pool), s8(model, *w8, so, &pool), sf(model, *wf, so, &pool);
  std::vector<float> lq, l8, lf;
  ASSERT_TRUE(sq.eval(prompt, true, &lq).ok());
  ASSERT_TRUE(s8.eval(prompt, true, &l8).ok());
  ASSERT_TRUE(sf.eval(prompt, true, &lf).ok());
  const int64_t V = hp.n_vocab;
  const double kq = mean_kl(lf, lq, prompt.size(), V), k8 = mean_kl(lf, l8, prompt.size(), V);
  std::printf("Gemma 3 270M Q4_K_M, %.1f %% of linear MACs on the blocks; mean KL vs fp32 over "
              "%zu rows: blocks %.5f, int8 copy %.5f\n",
              100 * on / all, prompt.size(), kq, k8);
  EXPECT_NE(lq, l8);
  EXPECT_LT(kq, 0.02);
  EXPECT_LT(kq, 1.5 * k8 + 1e-4);
}

}  // namespace
