// Shared pieces of the subcommands: model lookup, loading with messages, common flags.
#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "octet/runtime.h"
#include "octet/sampler.h"

namespace octet::cli {

// Where the default model lives: $OCTET_MODEL, else models/gemma-3-270m-q4_k_m.gguf in the
// source tree (scripts/setup.sh puts it there).
std::string default_model_path();
// -m takes a path, or a model name ("default", "gemma3-270m").
std::string resolve_model(const std::string& arg);

struct EngineFlags {
  std::string model;
  int threads = 0;
  int64_t ctx = 4096;
  int64_t chunk = 512;  // = SessionOptions::chunk
  std::string mode = "int8";
  std::string calib;          // calibration sidecar (default: next to the model)
  double shadow_keep = 1.0;   // share of linear inputs that keep the shadow-outlier path
  std::string decode = "auto";  // gguf: decode steps read the file's quantised blocks; same:
                                // the --mode weights; auto: gguf for block-quantised linears
  std::string kv_type = "f16";  // KV cache storage: f32 | f16 | int8
  std::string attn = "auto";    // prefill attention operands: auto | f32 | bf16
  std::string head = "file";    // int8 LM head: file (its blocks in place, as decode) | int8
  bool verbose = false;
  bool pair_ffn = true;  // Int8Options::pair_ffn (bench --ab ffn-pair=0)
  bool hot_float = true;  // Int8Options::hot_float (bench --ab hot-float=0)
  bool q4_gemm = true;    // Int8Options::q4_gemm (bench --ab q4-gemm=0)
  void add_to(CLI::App* cmd);
};

struct Engine {
  std::shared_ptr<ThreadPool> pool;  // shared by engines over one model (bench --ab)
  std::shared_ptr<const Model> model;
  std::shared_ptr<const Weights> weights;
  SessionOptions session_opts;
  std::string model_path;
  std::unique_ptr<Session> new_session() const {
    return std::make_unique<Session>(model, weights, session_opts, pool.get());
  }
};

// Loads model and weights; prints a clear error and returns nullptr on failure.
std::unique_ptr<Engine> load_engine(const EngineFlags& f);
// The weights and session options of f on e's model and pool (fills e->weights,
// e->session_opts); exits with a clear error on failure.
void build_engine(const EngineFlags& f, Engine* e);
// Every layer linear and the LM head in a block-quantised type (what --decode auto asks).
bool linears_block_quantised(const Model& m);
// f's context, chunk, KV type and attention operands (exits on a bad value).
SessionOptions session_options(const EngineFlags& f);

// The benchmarks' prompt: BOS (where the model has one), then ordinary (non-special) token
// ids drawn with a fixed seed, n in all; the same ids in every run and process.
std::vector<Token> bench_prompt(const Tokenizer& tok, int64_t n);

struct SamplingFlags {
  SamplerParams p;
  void add_to(CLI::App* cmd);
};

std::string read_file(const std::string& path, bool* ok);
[[noreturn]] void fail(const std::string& msg);

// `--isa auto|scalar|avx2|avx512` of the float kernel benchmarks: selects the float kernels'
// ISA for this process, or fails with a clear message.
void select_float_isa(const std::string& isa);

}  // namespace octet::cli
