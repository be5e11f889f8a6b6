// `octet kbench`: int8 GEMM kernel throughput on the linear shapes of real models, against the
// machine's measured VNNI peak (and the fp32 GEMM). `octet bench --kernels` forwards here.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace octet::cli {

// A model's block linear dimensions (q/k/v and gate/up run fused, as octet runs them).
struct KernelModelShape {
  std::string name;
  int64_t embd, q, kv, ffn;
};

struct KernelBenchArgs {
  std::vector<int64_t> m = {64, 128, 256, 512};  // chunk sizes (GEMM rows)
  std::vector<int> threads = {1, 2};
  std::string models = "all";  // comma list of gemma3-270m, qwen2.5-0.5b, qwen1.5-1.8b
  std::string isa = "auto";    // auto | ref | avx2 | vnni
  double min_time = 0.05;      // seconds of calls per timing
  int reps = 3;                // timings per point; the best is reported (shared machines)
  bool f32 = false;            // also time kernels::gemm_f32 for the int8/fp32 ratio
  bool q4 = false;             // also time the W4A8 GEMM over the file's blocks (kernels/q4_gemm.h)
  std::string q4_format = "q4_0";  // their format: q4_0, q5_0, q4_k, q5_k
  bool json = false;           // one JSON object per line instead of the table
  std::vector<KernelModelShape> custom;  // measured instead of `models` when not empty
};

// Prints the table (or JSON lines) to stdout; returns a process exit code.
int run_kernel_bench(const KernelBenchArgs& args);

}  // namespace octet::cli
