// octet kbench: measures the int8 GEMM (quantised activations × packed weights, float output
// through the fused epilogue) on every linear of a few real models at chunk sizes M, and
// reports GMAC/s and the fraction of the measured peak of the kernel's ISA (VNNI: 24
// independent vpdpbusd per round; AVX2: 12 vpmaddwd + vpaddd; timed on 1 and on N threads).
// Each figure is the fastest call seen.
#include "bench_kernels.h"

#include <algorithm>
#include <time.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "commands.h"
#include "kernels/int8_kernels.h"
#include "kernels/q4_gemm.h"
#include "octet/gguf_writer.h"
#include "octet/cpu.h"
#include "octet/half.h"
#include "octet/int8.h"
#include "octet/kernels.h"

namespace octet::cli {

namespace {

struct Shape {
  const char* model;
  const char* linear;
  int64_t n, k;
};

// q/k/v fused into one linear (N = q + 2·kv), gate/up fused (N = 2·ffn), as octet runs them.
std::vector<Shape> model_shapes(const std::string& which,
                                const std::vector<KernelModelShape>& custom) {
  static const KernelModelShape known[] = {{"gemma3-270m", 640, 1024, 256, 2048},
                                           {"qwen2.5-0.5b", 896, 896, 128, 4864},
                                           {"qwen1.5-1.8b", 2048, 2048, 2048, 5504}};
  std::vector<Shape> out;
  auto add = [&](const KernelModelShape& m) {
    out.push_back({m.name.c_str(), "qkv", m.q + 2 * m.kv, m.embd});
    out.push_back({m.name.c_str(), "o", m.embd, m.q});
    out.push_back({m.name.c_str(), "gate_up", 2 * m.ffn, m.embd});
    out.push_back({m.name.c_str(), "down", m.embd, m.ffn});
  };
  if (!custom.empty()) {
    for (const auto& m : custom) add(m);
    return out;
  }
  for (const auto& m : known)
    if (which == "all" || ("," + which + ",").find("," + m.name + ",") != std::string::npos)
      add(m);
  return out;
}

using Clock = std::chrono::steady_clock;

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Timing {
  double wall = 1e30;  // fastest call, wall clock
  double cpu = 1e30;   // fastest call, process CPU time / threads (excludes time preempted)
};

// Fastest single call over `reps` runs of ≥ min_time each. On a shared machine the fastest
// call is the least disturbed one; CPU time also leaves out time the threads sat preempted
// (calls longer than a scheduler slice are rarely undisturbed under load).
template <class F>
Timing time_call(F&& fn, int nt, double min_time, int reps) {
  fn();  // warm caches, page in buffers, wake the pool
  Timing best;
  for (int r = 0; r < std::max(1, reps); ++r) {
    const auto t0 = Clock::now();
    double el = 0;
    do {
      const double c0 = process_cpu_seconds();
      const auto w0 = Clock::now();
      fn();
      const auto w1 = Clock::now();
      const double c1 = process_cpu_seconds();
      best.wall = std::min(best.wall, std::chrono::duration<double>(w1 - w0).count());
      best.cpu = std::min(best.cpu, (c1 - c0) / nt);  // exact for nt = 1 only (see below)
      el = std::chrono::duration<double>(w1 - t0).count();
    } while (el < min_time);
  }
  return best;
}

// Peak int8 multiply-adds per second per thread with `nt` threads each running the probe
// loop of the measured ISA's kernel (CPU-time based, as the GEMM timings), and the wall-clock
// total.
Timing isa_peak(Int8Isa isa, int nt, int reps) {
  // VNNI: 1.5 M vpdpbusd, ~0.3 ms at 2/cycle and 2.5 GHz; AVX2: 0.8 M vpmaddwd + vpaddd.
  constexpr int64_t kIters = 1 << 16;
  uint64_t (*probe)(int64_t) =
      isa == Int8Isa::kVnni ? kernels::int8::vnni_peak_loop : kernels::int8::avx2_peak_loop;
  ThreadPool pool(nt);
  uint64_t macs[64] = {};
  auto run = [&] {
    pool.parallel_for(nt, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) macs[i] = probe(kIters);
    });
  };
  const Timing t = time_call(run, nt, 0.02, 5 * std::max(1, reps));
  uint64_t total = 0;
  for (int i = 0; i < nt; ++i) total += macs[i];
  // As rates: per-thread (cpu) and total (wall).
  return {static_cast<double>(total) / t.wall, static_cast<double>(total) / nt / t.cpu};
}

Expected<Int8Isa> parse_isa(const std::string& s) {
  if (s == "auto") return int8_isa_resolve(Int8Isa::kAuto);
  if (s == "ref") return int8_isa_resolve(Int8Isa::kRef);
  if (s == "avx2") return int8_isa_resolve(Int8Isa::kAvx2);
  if (s == "vnni" || s == "avx512vnni") return int8_isa_resolve(Int8Isa::kVnni);
  return Status::Error("kbench: unknown --isa '" + s + "' (auto, ref, avx2, vnni)");
}

}  // namespace

int run_kernel_bench(const KernelBenchArgs& args) {
  auto isa = parse_isa(args.isa);
  if (!isa.ok()) {
    std::fprintf(stderr, "error: %s\n", isa.error().c_str());
    return 2;
  }
  const std::vector<Shape> shapes = model_shapes(args.models, args.custom);
  kernels::q4::Format q4_format = kernels::q4::Format::Q4_0;
  for (const kernels::q4::Format f : {kernels::q4::Format::Q5_0, kernels::q4::Format::Q4_K,
                                      kernels::q4::Format::Q5_K}) {
    std::string n = kernels::q4::name(f);
    for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (args.q4_format == n) q4_format = f;
  }
  if (shapes.empty() || args.m.empty() || args.threads.empty()) {
    std::fprintf(stderr, "error: kbench: nothing to measure (check --models/--m/--threads)\n");
    return 2;
  }
  for (int t : args.threads)
    if (t < 1 || t > 64) {
      std::fprintf(stderr, "error: kbench: --threads must be in [1, 64]\n");
      return 2;
    }
  for (int64_t m : args.m)
    if (m < 1 || m > 65536) {
      std::fprintf(stderr, "error: kbench: --m must be in [1, 65536]\n");
      return 2;
    }

  const CpuFeatures& cpu = cpu_features();
  // The roof is the measured ISA's own multiply-add instruction (the scalar path has none).
  const bool has_probe = *isa == Int8Isa::kVnni || *isa == Int8Isa::kAvx2;
  const char* probe_name = *isa == Int8Isa::kVnni ? "vnni" : "avx2";
  const char* probe_what = *isa == Int8Isa::kVnni ? "24 independent vpdpbusd zmm"
                                                  : "12 independent vpmaddwd + vpaddd ymm";
  std::vector<int> nts = args.threads;
  std::sort(nts.begin(), nts.end());
  nts.erase(std::unique(nts.begin(), nts.end()), nts.end());

  // peak[i].cpu: per-thread MAC/s; peak[i].wall: all threads together (wall clock).
  std::vector<Timing> peak(nts.size(), Timing{0, 0});
  if (has_probe)
    for (size_t i = 0; i < nts.size(); ++i) peak[i] = isa_peak(*isa, nts[i], args.reps);

  if (args.json) {
    for (size_t i = 0; i < nts.size(); ++i)
      if (has_probe)
        std::printf("%s\n", nlohmann::json{{"kind", std::string(probe_name) + "_peak"},
                                           {"threads", nts[i]},
                                           {"gmacs_per_thread", peak[i].cpu * 1e-9},
                                           {"gmacs_wall", peak[i].wall * 1e-9}}
                                .dump()
                                .c_str());
  } else {
    std::printf("int8 GEMM kernels (%s), cpu: %s\n", int8_isa_name(*isa), cpu.describe().c_str());
    for (size_t i = 0; i < nts.size(); ++i)
      if (has_probe)
        std::printf("%s peak, %d thread%s: %.1f GMAC/s per thread (CPU time), %.1f GMAC/s "
                    "total (wall); %s\n",
                    *isa == Int8Isa::kVnni ? "VNNI" : "AVX2", nts[i], nts[i] > 1 ? "s" : "",
                    peak[i].cpu * 1e-9, peak[i].wall * 1e-9, probe_what);
    std::printf("gemm = gemm_int8 on prequantised activations (float output, bias, fused "
                "epilogue), fwd = quantise + gemm; fastest call of %d x %.2fs.\n"
                "per thr: M·N·K / time / threads (1 thread: CPU time, excludes preemption; more: "
                "wall);\n%%peak: 1 thread vs the 1-thread peak, n threads: wall vs the n-thread probe's "
                "wall total; wall: M·N·K / wall time (pool wake-ups included).\n",
                args.reps, args.min_time);
    std::printf("%-20s %-8s %5s %6s %5s %3s %11s %6s %9s %9s", "model", "linear", "M", "N", "K",
                "thr", "per thr", "%peak", "wall", "fwd wall");
    if (args.f32) std::printf(" %9s %8s", "f32 wall", "int8/f32");
    if (args.q4) std::printf(" %9s %8s", "q4 wall", "q4/int8");
    std::printf("\n");
  }

  std::mt19937 rng(42);
  std::uniform_real_distribution<float> du(-1.0f, 1.0f);
  std::vector<std::unique_ptr<ThreadPool>> pools;
  for (int t : nts) pools.push_back(t > 1 ? std::make_unique<ThreadPool>(t) : nullptr);
  const int64_t max_m = *std::max_element(args.m.begin(), args.m.end());

  // Per thread count: the worst and the MAC-weighted mean %peak over all shapes and M.
  std::vector<double> worst(nts.size(), 1e9), pct_macs(nts.size(), 0), all_macs(nts.size(), 0);
  for (const Shape& s : shapes) {
    std::vector<float> w(static_cast<size_t>(s.n * s.k)), bias(static_cast<size_t>(s.n));
    for (auto& v : w) v = du(rng) * 0.05f;
    for (auto& v : bias) v = du(rng);
    auto lin = Int8Linear::from_float(w.data(), s.n, s.k, bias.data());
    if (!lin.ok()) {
      std::fprintf(stderr, "error: %s\n", lin.error().c_str());
      return 1;
    }
    std::unique_ptr<kernels::PackedF32> wf;
    if (args.f32) wf = std::make_unique<kernels::PackedF32>(w.data(), s.n, s.k);
    // --q4: the same weights as the file's Q4_0 blocks, for the W4A8 kernel; for the other
    // formats (no quantiser here) random codes and scales, which time the same.
    std::vector<uint8_t> wq;
    std::vector<float> corr;
    const kernels::q4::FormatInfo fi = kernels::q4::info(q4_format);
    const int64_t q4_row_bytes = kernels::q4::row_bytes(q4_format, s.k);
    std::vector<const uint8_t*> q4_rows;
    // A K-quant needs K a multiple of its 256-weight super-block (files keep such linears in
    // another type): those rows show no q4 column.
    const bool q4 = args.q4 && s.k % fi.group == 0;
    if (q4) {
      wq.resize(static_cast<size_t>(s.n * q4_row_bytes));
      if (q4_format == kernels::q4::Format::Q4_0) {
        for (int64_t r = 0; r < s.n; ++r)
          if (Status st = gguf::quantize(gguf::Type::Q4_0, w.data() + r * s.k,
                                         wq.data() + r * q4_row_bytes, s.k);
              !st.ok()) {
            std::fprintf(stderr, "error: %s\n", st.message().c_str());
            return 1;
          }
      } else {
        for (auto& v : wq) v = static_cast<uint8_t>(rng());
        const uint16_t d = fp32_to_fp16(0.01f);
        for (int64_t u = 0; u < s.n * (s.k / fi.group); ++u) {
          std::memcpy(wq.data() + u * fi.unit_bytes, &d, 2);
          if (fi.has_min) std::memcpy(wq.data() + u * fi.unit_bytes + 2, &d, 2);
        }
      }
      corr.resize(static_cast<size_t>(s.n));
      q4_rows = kernels::q4::consecutive_rows(wq.data(), s.n, q4_row_bytes);
      kernels::q4::column_offsets({q4_rows.data(), s.n, s.k, q4_format}, corr.data());
    }
    std::vector<float> x(static_cast<size_t>(max_m * s.k)), y(static_cast<size_t>(max_m * s.n));
    for (auto& v : x) v = du(rng);

    for (int64_t m : args.m) {
      for (size_t ti = 0; ti < nts.size(); ++ti) {
        ThreadPool* pool = pools[ti].get();
        Int8Activations act;
        Status st = quantize_activations(x.data(), m, s.k, 0, 1.0f / 127, &act, nullptr, pool, *isa);
        if (!st.ok()) {
          std::fprintf(stderr, "error: %s\n", st.message().c_str());
          return 1;
        }
        const double macs = static_cast<double>(m) * s.n * s.k;
        const int nt = nts[ti];
        const Timing t_gemm = time_call(
            [&] { (void)gemm_int8(act, lin->weights(), y.data(), s.n, lin->bias(), false, pool); },
            nt, args.min_time, args.reps);
        Int8ForwardOptions fo;
        fo.scratch = &act;
        fo.isa = *isa;
        const Timing t_fwd = time_call(
            [&] { (void)lin->forward(x.data(), m, 1.0f / 127, y.data(), s.n, pool, fo); }, nt,
            args.min_time, args.reps);
        Timing t_q4;
        if (q4) {
          // The int8 activations plus 128 (the W4A8 kernel's u8 operand), rows of K bytes;
          // each thread an equal share of the panels.
          std::vector<uint8_t> au(static_cast<size_t>(m * s.k));
          std::vector<float> rs(static_cast<size_t>(m), 1.0f / 127);
          for (auto& v : au) v = static_cast<uint8_t>(rng());
          const kernels::q4::Acts qa{au.data(), s.k, rs.data()};
          const kernels::q4::Q4View wv{q4_rows.data(), s.n, s.k, q4_format};
          kernels::int8::Epilogue ep;
          ep.y = y.data();
          ep.ldy = s.n;
          const kernels::q4::GemmFn q4gemm = kernels::q4::best_gemm();
          const int64_t panels = (s.n + 15) / 16;
          const auto q4_run = [&] {
            if (!pool) return q4gemm(qa, wv, corr.data(), ep, 0, m, 0, panels, nullptr);
            pool->parallel_for(panels, (panels + nt - 1) / nt,
                               [&](int64_t p0, int64_t p1, int) {
                                 q4gemm(qa, wv, corr.data(), ep, 0, m, p0, p1, nullptr);
                               });
          };
          t_q4 = time_call(q4_run, nt, args.min_time, args.reps);
        }
        Timing t_f32;
        if (args.f32)
          t_f32 = time_call([&] { kernels::gemm_f32(x.data(), m, *wf, y.data(), s.n, pool); }, nt,
                            args.min_time, 1);
        // The process CPU clock folds other threads' time in only at scheduler ticks, so with
        // several threads a short call's CPU time is unreliable: use wall time there, against
        // nt × the 1-thread peak.
        const double g_cpu = nt == 1 ? macs / t_gemm.cpu * 1e-9 : macs / t_gemm.wall / nt * 1e-9;
        const double g_wall = macs / t_gemm.wall * 1e-9, gf = macs / t_fwd.wall * 1e-9;
        // 1 thread: against the 1-thread peak (CPU time); more: against the probe's wall-clock
        // total with as many threads (same conditions: on a loaded machine that probe also
        // cannot get every core).
        const double pct = nt == 1 ? (peak[ti].cpu > 0 ? 100.0 * macs / t_gemm.cpu / peak[ti].cpu : 0.0)
                                   : (peak[ti].wall > 0 ? 100.0 * macs / t_gemm.wall / peak[ti].wall : 0.0);
        if (pct > 0) {
          worst[ti] = std::min(worst[ti], pct);
          pct_macs[ti] += pct * macs;
          all_macs[ti] += macs;
        }
        if (args.json) {
          nlohmann::json j{{"kind", "int8_gemm"},
                           {"isa", int8_isa_name(*isa)},
                           {"model", s.model},
                           {"linear", s.linear},
                           {"m", m},
                           {"n", s.n},
                           {"k", s.k},
                           {"threads", nt},
                           {"gmacs_per_thread_cpu", g_cpu},
                           {"gmacs_wall", g_wall},
                           {"fwd_gmacs_wall", gf}};
          if (pct > 0) j["pct_peak"] = pct;
          if (args.f32) {
            j["f32_gmacs_wall"] = macs / t_f32.wall * 1e-9;
            j["int8_over_f32"] = t_f32.wall / t_gemm.wall;
          }
          if (q4) {
            j["q4_format"] = args.q4_format;
            j["q4_gmacs_wall"] = macs / t_q4.wall * 1e-9;
            j["q4_over_int8"] = t_gemm.wall / t_q4.wall;
          }
          std::printf("%s\n", j.dump().c_str());
        } else {
          std::printf("%-20s %-8s %5lld %6lld %5lld %3d %11.1f %5.1f%% %9.1f %9.1f", s.model,
                      s.linear, static_cast<long long>(m), static_cast<long long>(s.n),
                      static_cast<long long>(s.k), nt, g_cpu, pct, g_wall, gf);
          if (args.f32)
            std::printf(" %9.1f %7.1fx", macs / t_f32.wall * 1e-9, t_f32.wall / t_gemm.wall);
          if (q4)
            std::printf(" %9.1f %7.2fx", macs / t_q4.wall * 1e-9, t_gemm.wall / t_q4.wall);
          else if (args.q4)
            std::printf(" %9s %8s", "-", "-");
          std::printf("\n");
        }
        std::fflush(stdout);
      }
    }
  }
  for (size_t ti = 0; ti < nts.size(); ++ti) {
    if (!(all_macs[ti] > 0)) continue;
    const double mean = pct_macs[ti] / all_macs[ti];
    if (args.json)
      std::printf("%s\n", nlohmann::json{{"kind", "int8_gemm_summary"},
                                         {"threads", nts[ti]},
                                         {"pct_peak_worst", worst[ti]},
                                         {"pct_peak_mean", mean}}
                              .dump()
                              .c_str());
    else
      std::printf("%d thread%s: %%peak worst %.1f %%, MAC-weighted mean %.1f %% (target >= 75 %%)\n",
                  nts[ti], nts[ti] > 1 ? "s" : "", worst[ti], mean);
  }
  return 0;
}

namespace {

void register_kbench(CLI::App& app) {
  auto a = std::make_shared<KernelBenchArgs>();
  auto* cmd = app.add_subcommand(
      "kbench", "Int8 GEMM kernel GMAC/s on real model shapes vs the measured peak of its ISA");
  cmd->add_option("--m", a->m, "GEMM rows (chunk sizes)")->delimiter(',')->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "Thread counts")->delimiter(',')->capture_default_str();
  cmd->add_option("--models", a->models, "all, or a comma list of gemma3-270m, qwen2.5-0.5b, qwen1.5-1.8b")
      ->capture_default_str();
  cmd->add_option("--isa", a->isa, "auto, ref, avx2, vnni")->capture_default_str();
  cmd->add_option("--min-time", a->min_time, "Seconds of calls per timing")->capture_default_str();
  cmd->add_option("--reps", a->reps, "Timings per point (best reported)")->capture_default_str();
  cmd->add_flag("--f32", a->f32, "Also time kernels::gemm_f32 for the int8/fp32 ratio (slow while that kernel is scalar)");
  cmd->add_flag("--q4", a->q4,
                "Also time the W4A8 GEMM over the same weights as Q4_0 blocks read in place "
                "(kernels/q4_gemm.h; AVX2) and its speed-up over the int8 GEMM");
  cmd->add_option("--q4-format", a->q4_format, "Block format for --q4: q4_0, q5_0, q4_k, q5_k")
      ->check(CLI::IsMember({"q4_0", "q5_0", "q4_k", "q5_k"}))
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "One JSON object per line");
  cmd->callback([a] {
    if (int rc = run_kernel_bench(*a); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace

OCTET_COMMAND("kbench", register_kbench);

}  // namespace octet::cli
