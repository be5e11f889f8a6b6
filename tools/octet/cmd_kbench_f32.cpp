// octet kbench-f32: FP32 kernel micro-benchmark. Measures the FMA peak of the active ISA
// (register-only loop), then GFLOP/s and % of that peak for the GEMM shapes of real models
// (Gemma 3 270M, Qwen2.5-0.5B linears, fused as the Session runs them) at decode and prefill
// M, single- and multi-threaded, plus attention at a prefill chunk and a decode step.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "commands.h"
#include "common.h"
#include "octet/kernels.h"
#include "octet/threads.h"

namespace {

using Clock = std::chrono::steady_clock;

// Seconds per call: repeats fn until min_s has passed (at least 2 calls), best of 3 rounds.
template <class F>
double time_call(F&& fn, double min_s) {
  fn();  // warm up (page faults, caches)
  double best = 1e30;
  for (int round = 0; round < 3; ++round) {
    int64_t calls = 0;
    const auto t0 = Clock::now();
    double el = 0;
    do {
      fn();
      ++calls;
      el = std::chrono::duration<double>(Clock::now() - t0).count();
    } while (el < min_s / 3 || calls < 2);
    best = std::min(best, el / static_cast<double>(calls));
  }
  return best;
}

// Peak GFLOP/s with `threads` threads all running the FMA loop.
double peak_gflops(octet::ThreadPool* pool, int threads) {
  const int64_t iters = 2'000'000;
  double flops = 0;
  auto run = [&] {
    octet::parallel_for(threads > 1 ? pool : nullptr, threads, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) octet::kernels::fp32_fma_loop(iters);
    });
  };
  flops = octet::kernels::fp32_fma_loop(iters) * threads;
  return flops / time_call(run, 0.3) * 1e-9;
}

struct Shape {
  const char* name;
  int64_t n, k;
};

struct KbenchArgs {
  std::string isa = "auto";
  int threads = 0;
  double min_ms = 150;
  std::vector<int64_t> ms = {1, 64, 256, 512};
};

void run_kbench(const KbenchArgs& a) {
  using namespace octet::kernels;
  octet::cli::select_float_isa(a.isa);
  auto pool = std::make_unique<octet::ThreadPool>(a.threads);
  const int nt = pool->size();
  const double min_s = a.min_ms * 1e-3;
  std::printf("isa %s, threads 1 and %d (timings on a shared machine are noisy: best of 3)\n",
              float_isa_name(float_isa()), nt);
  const double peak1 = peak_gflops(pool.get(), 1);
  const double peakn = nt > 1 ? peak_gflops(pool.get(), nt) : peak1;
  std::printf("measured FMA peak: %.1f GFLOP/s (1 thread), %.1f GFLOP/s (%d threads)\n\n", peak1,
              peakn, nt);

  const Shape shapes[] = {
      {"gemma3-270m qkv", 1536, 640},  {"gemma3-270m o", 640, 1024},
      {"gemma3-270m gate+up", 4096, 640}, {"gemma3-270m down", 640, 2048},
      {"qwen2.5-0.5b qkv", 1152, 896}, {"qwen2.5-0.5b o", 896, 896},
      {"qwen2.5-0.5b gate+up", 9728, 896}, {"qwen2.5-0.5b down", 896, 4864},
  };
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::printf("%-22s %6s %6s %5s %10s %9s %7s %10s %9s %7s\n", "gemm y=x·W^T", "N", "K", "M",
              "ms(1t)", "GFLOP/s", "%peak", "ms(nt)", "GFLOP/s", "%peak");
  for (const Shape& s : shapes) {
    std::vector<float> w(static_cast<size_t>(s.n * s.k));
    for (auto& v : w) v = nd(rng);
    const PackedF32 p(w.data(), s.n, s.k);
    for (int64_t m : a.ms) {
      std::vector<float> x(static_cast<size_t>(m * s.k)), y(static_cast<size_t>(m * s.n));
      for (auto& v : x) v = nd(rng);
      const double flops = 2.0 * static_cast<double>(m * s.n * s.k);
      const double t1 = time_call([&] { gemm_f32(x.data(), m, p, y.data(), s.n, nullptr); }, min_s);
      const double tn = time_call([&] { gemm_f32(x.data(), m, p, y.data(), s.n, pool.get()); }, min_s);
      const double g1 = flops / t1 * 1e-9, gn = flops / tn * 1e-9;
      std::printf("%-22s %6lld %6lld %5lld %10.3f %9.1f %6.1f%% %10.3f %9.1f %6.1f%%", s.name,
                  static_cast<long long>(s.n), static_cast<long long>(s.k),
                  static_cast<long long>(m), t1 * 1e3, g1, 100 * g1 / peak1, tn * 1e3, gn,
                  100 * gn / peakn);
      if (m == 1)  // GEMV streams W once: report bandwidth too
        std::printf("  (W %.1f GB/s 1t, %.1f GB/s nt)", p.bytes() / t1 * 1e-9, p.bytes() / tn * 1e-9);
      std::printf("\n");
    }
  }

  // Attention: Gemma 3 270M heads (4 q / 1 kv, head_dim 256) and Qwen2.5-0.5B (14 / 2, 64).
  struct AttnShape {
    const char* name;
    int64_t n_head, n_kv, d, n_q, pos0;
  };
  const AttnShape as[] = {{"gemma3 prefill 512", 4, 1, 256, 512, 0},
                          {"gemma3 prefill 512@1536", 4, 1, 256, 512, 1536},
                          {"gemma3 decode @2048", 4, 1, 256, 1, 2047},
                          {"qwen2.5 prefill 512", 14, 2, 64, 512, 0},
                          {"qwen2.5 decode @2048", 14, 2, 64, 1, 2047}};
  std::printf("\n%-24s %10s %9s %7s %10s %9s %7s\n", "attention", "ms(1t)", "GFLOP/s", "%peak",
              "ms(nt)", "GFLOP/s", "%peak");
  for (const AttnShape& s : as) {
    const int64_t n_ctx = s.pos0 + s.n_q;
    std::vector<float> kc(static_cast<size_t>(s.n_kv * n_ctx * s.d)), vc(kc.size());
    std::vector<float> q(static_cast<size_t>(s.n_q * s.n_head * s.d)), o(q.size());
    for (auto& v : kc) v = nd(rng);
    for (auto& v : vc) v = nd(rng);
    for (auto& v : q) v = nd(rng);
    AttentionDims d;
    d.n_head = s.n_head;
    d.n_head_kv = s.n_kv;
    d.head_dim = s.d;
    d.kv_head_stride = n_ctx * s.d;
    d.scale = 0.0625f;
    // Keys seen: Σ_i (pos0 + i + 1); 4 flops per key·dim (q·k and p·v).
    double keys = 0;
    for (int64_t i = 0; i < s.n_q; ++i) keys += static_cast<double>(s.pos0 + i + 1);
    const double flops = 4.0 * keys * static_cast<double>(s.d * s.n_head);
    const int64_t ld = s.n_head * s.d;
    const double t1 = time_call([&] {
      attention_f32(q.data(), ld, s.n_q, s.pos0, kc.data(), vc.data(), d, o.data(), ld, nullptr);
    }, min_s);
    const double tn = time_call([&] {
      attention_f32(q.data(), ld, s.n_q, s.pos0, kc.data(), vc.data(), d, o.data(), ld, pool.get());
    }, min_s);
    const double g1 = flops / t1 * 1e-9, gn = flops / tn * 1e-9;
    std::printf("%-24s %10.3f %9.1f %6.1f%% %10.3f %9.1f %6.1f%%\n", s.name, t1 * 1e3, g1,
                100 * g1 / peak1, tn * 1e3, gn, 100 * gn / peakn);
  }
  set_float_isa(FloatIsa::kAuto);
}

void register_kbench_f32(CLI::App& app) {
  auto a = std::make_shared<KbenchArgs>();
  auto* cmd = app.add_subcommand("kbench-f32",
                                 "FP32 kernel micro-benchmark: GEMM / attention GFLOP/s vs measured FMA peak");
  cmd->add_option("--isa", a->isa, "auto, scalar, avx2 or avx512");
  cmd->add_option("--threads", a->threads, "threads for the multi-threaded column (0 = all cores)");
  cmd->add_option("--min-ms", a->min_ms, "minimum timing per measurement, ms");
  cmd->add_option("--m", a->ms, "rows (tokens) per GEMM");
  cmd->callback([a] { run_kbench(*a); });
}

}  // namespace

OCTET_COMMAND("kbench-f32", register_kbench_f32);
