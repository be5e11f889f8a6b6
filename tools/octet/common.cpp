#include "common.h"

#include "octet/calibration.h"
#include "octet/kernels.h"
#include "octet/qgemv.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <fstream>
#include <sstream>

namespace octet::cli {

std::string default_model_path() {
  if (const char* e = std::getenv("OCTET_MODEL"); e && *e) return e;
  return std::string(OCTET_SOURCE_DIR) + "/models/gemma-3-270m-q4_k_m.gguf";
}

std::string resolve_model(const std::string& arg) {
  if (arg.empty() || arg == "default" || arg == "gemma3-270m" || arg == "gemma-3-270m")
    return default_model_path();
  return arg;
}

void EngineFlags::add_to(CLI::App* cmd) {
  cmd->add_option("-m,--model", model, "GGUF file, or 'default' (Gemma 3 270M Q4_K_M)");
  cmd->add_option("-t,--threads", threads, "worker threads (0: all cores)");
  cmd->add_option("-c,--ctx", ctx, "context size in tokens")->check(CLI::Range(16, 1 << 20));
  cmd->add_option("--chunk", chunk, "prefill chunk size (tokens)")->check(CLI::Range(1, 8192));
  cmd->add_option("--mode", mode,
                  "int8: W8A8 with shadow outliers (calibrated on first use); fp32: reference; "
                  "gguf: the file's own quantised weights in place, no copy (least memory, "
                  "slower prefill)")
      ->check(CLI::IsMember({"fp32", "int8", "gguf"}));
  cmd->add_option("--calib", calib, "INT8 calibration file (default: MODEL.octet-calib.json)");
  cmd->add_option("--shadow-keep", shadow_keep,
                  "share of linear inputs keeping the shadow-outlier path (0..1)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--decode", decode,
                  "decode steps (<= 4 tokens): gguf reads the file's own quantised weights "
                  "when every type has a kernel; same uses the --mode weights; auto (default): "
                  "gguf when every linear is block-quantised (then the file's blocks are no "
                  "more bytes than an int8 copy, fewer for 4-6 bit types), else same")
      ->check(CLI::IsMember({"auto", "gguf", "same"}));
  cmd->add_option("--head", head,
                  "int8 mode's LM head: file reads the file's own quantised blocks in place "
                  "(as decode does: per-block activation scales, no copy) when the head is "
                  "block-quantised; int8 always makes an int8 copy (per-row activation scales, "
                  "less accurate, faster for many rows of logits)")
      ->check(CLI::IsMember({"file", "int8"}));
  cmd->add_option("--hot-float", hot_float,
                  "int8 mode: keep float weight columns of the hot (frequent-outlier) input "
                  "channels for the shadow path (else it reads the int8 columns, or the file's "
                  "blocks on the --q4-gemm path)");
  cmd->add_option("--q4-gemm", q4_gemm,
                  "int8 mode on CPUs without AVX-512 VNNI: linears whose tensors share one of "
                  "Q4_0, Q5_0, Q4_K, Q5_K and whose input is not smoothed run their prefill GEMM "
                  "and shadow path on the file's blocks (4-5 bit codes x int8 activations, faster "
                  "than the int16 int8 GEMM there) and keep no int8 copy; 0: the int8 copy");
  cmd->add_option("--kv-type", kv_type,
                  "KV cache storage: f16 (default), int8 (per-row scale) or f32")
      ->check(CLI::IsMember({"f32", "f16", "int8"}));
  cmd->add_option("--attn", attn,
                  "prefill attention's products: bf16 (Q·K and P·V on bf16 operands, float "
                  "accumulation and softmax, 2x the float rate; needs AVX512-BF16 and a head "
                  "dim divisible by 32), bf16-pv (P·V only), f32, or auto (bf16 unless "
                  "--mode fp32)")
      ->check(CLI::IsMember({"auto", "f32", "bf16-pv", "bf16"}));
  cmd->add_flag("-v,--verbose", verbose, "print model details and timings");
}

void fail(const std::string& msg) {
  std::fprintf(stderr, "octet: %s\n", msg.c_str());
  std::exit(1);
}

std::unique_ptr<Engine> load_engine(const EngineFlags& f) {
  auto e = std::make_unique<Engine>();
  const std::string path = resolve_model(f.model);
  if (!std::filesystem::exists(path)) {
    if (path == default_model_path())
      fail("default model not found at " + path + " (run ./scripts/setup.sh to install it)");
    fail("model file not found: " + path);
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto m = Model::load(path);
  if (!m) fail(m.error());
  e->model = std::move(m).value();
  e->pool = std::make_shared<ThreadPool>(f.threads);
  e->model_path = path;
  build_engine(f, e.get());
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (f.verbose) {
    const WeightBytes wb = e->weights->breakdown();
    std::fprintf(stderr,
                 "octet: loaded %s (%s) in %.0f ms: %s; %s weights %.1f MiB (+ %.1f MiB read in "
                 "place from the file), decode %s, %d threads\n",
                 path.c_str(), e->model->name().c_str(), ms,
                 e->model->hparams().describe().c_str(), compute_mode_name(e->weights->mode()),
                 wb.heap() / 1048576.0, wb.gguf_mapped / 1048576.0,
                 e->weights->has_decode() ? "gguf (in place)" : "same", e->pool->size());
  }
  return e;
}

bool linears_block_quantised(const Model& m) {
  // Decode streams every weight once per token: the file's blocks beat the int8 copy when they
  // are no larger (Q8_0 ≈ 1.06 B/weight, the 4-6 bit types 0.56-0.82); F16/F32 rows are not.
  auto blocks = [](const gguf::TensorInfo* t) { return t && qgemv::act_block(t->type) != 0; };
  for (int64_t il = 0; il < m.hparams().n_layer; ++il) {
    const LayerTensors& T = m.layer(il);
    for (const gguf::TensorInfo* t : {T.wq, T.wk, T.wv, T.wo, T.ffn_gate, T.ffn_up, T.ffn_down})
      if (!blocks(t)) return false;
  }
  return blocks(m.output());
}

void build_engine(const EngineFlags& f, Engine* e) {
  const std::string& path = e->model_path;
  if (f.mode == "fp32") {
    auto w = Weights::build_fp32(*e->model, e->pool.get());
    if (!w) fail(w.error());
    e->weights = std::move(w).value();
  } else if (f.mode == "gguf") {
    auto w = Weights::build_gguf(*e->model);
    if (!w) fail(w.error());
    e->weights = std::move(w).value();
  } else {
    auto say = [](const std::string& s) { std::fprintf(stderr, "octet: %s\n", s.c_str()); };
    auto calib = load_or_calibrate(e->model, path, f.calib, e->pool.get(), say);
    if (!calib) fail(calib.error());
    Int8Options io;
    io.shadow_keep = f.shadow_keep;
    io.file_head = f.head == "file";
    io.pair_ffn = f.pair_ffn;
    io.hot_float = f.hot_float;
    io.q4_gemm = f.q4_gemm;
    auto w = Weights::build_int8(*e->model, *calib, io, e->pool.get());
    if (!w) fail(w.error());
    e->weights = std::move(w).value();
  }
  // fp32 is the reference path: decode stays in float there too.
  // Decode steps then use the file's own norm gains too (LayerWeights::dec_attn_norm).
  if (f.mode == "int8" && (f.decode == "gguf" || (f.decode == "auto" && linears_block_quantised(*e->model)))) {
    // The weights were just made by make_shared<Weights> and nothing else holds them yet, so
    // finishing them here through a non-const pointer is sound.
    auto w = std::const_pointer_cast<Weights>(e->weights);
    if (Status st = w->attach_gguf_decode(*e->model); !st.ok() && f.verbose)
      std::fprintf(stderr, "octet: decode stays on %s weights (%s)\n",
                   compute_mode_name(w->mode()), st.message().c_str());
  }
  e->session_opts = session_options(f);
}

std::vector<Token> bench_prompt(const Tokenizer& tok, int64_t n) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> d(0, tok.n_vocab() - 1);
  std::vector<Token> ids;
  if (tok.bos() >= 0) ids.push_back(tok.bos());
  while (static_cast<int64_t>(ids.size()) < n) {
    const Token t = d(rng);
    if (tok.token_type(t) == TokenType::NORMAL) ids.push_back(t);
  }
  return ids;
}

SessionOptions session_options(const EngineFlags& f) {
  SessionOptions so;
  so.n_ctx = f.ctx;
  so.chunk = f.chunk;
  if (!kernels::parse_kv_type(f.kv_type.c_str(), &so.kv_type)) fail("unknown --kv-type " + f.kv_type);
  if (!parse_attn_operands(f.attn, &so.attn)) fail("unknown --attn " + f.attn);
  return so;
}

void SamplingFlags::add_to(CLI::App* cmd) {
  cmd->add_option("--temp", p.temperature, "temperature (0: greedy)");
  cmd->add_option("--top-k", p.top_k, "top-k (0: off)");
  cmd->add_option("--top-p", p.top_p, "top-p (1: off)");
  cmd->add_option("--min-p", p.min_p, "min-p (0: off)");
  cmd->add_option("--repeat-penalty", p.repeat_penalty, "repetition penalty (1: off)");
  cmd->add_option("--repeat-last-n", p.repeat_last_n, "tokens the penalty looks back on");
  cmd->add_option("--seed", p.seed, "random seed (same seed, same text)");
}

std::string read_file(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  *ok = static_cast<bool>(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void select_float_isa(const std::string& isa) {
  using namespace octet::kernels;
  FloatIsa want = FloatIsa::kAuto;
  if (isa == "scalar") want = FloatIsa::kScalar;
  else if (isa == "avx2") want = FloatIsa::kAvx2;
  else if (isa == "avx512") want = FloatIsa::kAvx512;
  else if (isa != "auto") fail("--isa must be auto, scalar, avx2 or avx512");
  if (!set_float_isa(want)) fail("this CPU lacks " + isa);
}

}  // namespace octet::cli
