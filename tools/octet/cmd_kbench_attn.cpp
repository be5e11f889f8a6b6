// octet kbench-attn: attention micro-benchmark in the shapes chunked prefill runs. For each
// model shape and prompt length P, one "layer prefill" is the sequence of attention calls a
// Session makes for one layer: chunks of --chunk queries at pos0 = 0, chunk, 2·chunk, ..
// against all keys so far (causal; sliding-window layers over a ring of window + chunk slots),
// KV stored as --kv (f16 by default, as the engine). Prints ms per layer prefill (fastest of
// --reps; caches evicted before each call unless --warm), GFLOP/s (4 flops per visible
// query·key·dim: q·k and p·v) and, with --check, the largest |difference| to the scalar
// reference on the last chunk.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <time.h>

#include "commands.h"
#include "common.h"
#include "octet/kernels.h"
#include "octet/threads.h"

namespace {

using Clock = std::chrono::steady_clock;

struct AttnShape {
  const char* name;
  int64_t n_head, n_kv, d, window;
};

// Attention shapes of the models octet targets (heads, kv heads, head dim, sliding window).
const AttnShape kShapes[] = {
    {"qwen2.5-0.5b", 14, 2, 64, 0},
    {"qwen1.5-1.8b", 16, 16, 128, 0},
    {"gemma3-270m", 4, 1, 256, 0},        // global layers
    {"gemma3-270m-swa", 4, 1, 256, 512},  // sliding-window layers (5 of 6)
};

struct KbenchAttnArgs {
  std::vector<std::string> shapes = {"qwen2.5-0.5b", "qwen1.5-1.8b", "gemma3-270m",
                                     "gemma3-270m-swa"};
  std::vector<int64_t> prompts = {512, 1024, 2048};
  int64_t chunk = 256;
  std::string kv = "f16";
  std::string isa = "auto";
  int threads = 0;
  int reps = 5;
  bool check = false;
  bool warm = false;
  bool cpu_time = false;
  std::string bf16 = "off";
};

void run_kbench_attn(const KbenchAttnArgs& a) {
  using namespace octet::kernels;
  KvType kvt;
  if (!parse_kv_type(a.kv.c_str(), &kvt)) octet::cli::fail("--kv must be f32, f16 or int8");
  octet::cli::select_float_isa(a.isa);
  if (a.chunk < 1 || a.reps < 1) octet::cli::fail("--chunk and --reps must be >= 1");
  auto pool = std::make_unique<octet::ThreadPool>(a.threads);
  std::printf("isa %s, %d threads, kv %s, chunk %lld, fastest of %d reps%s\n",
              float_isa_name(float_isa()), pool->size(), kv_type_name(kvt),
              static_cast<long long>(a.chunk), a.reps, a.cpu_time ? " (CPU time)" : "");
  std::printf("%-16s %6s %12s %9s %12s\n", "shape", "prompt", "ms/layer", "GFLOP/s",
              a.check ? "max|d| ref" : "");
  // In the engine every other layer runs between two attention calls of one layer, so the
  // KV rows and the scratch are no longer in L1/L2: unless --warm, each thread writes over
  // 4 MiB (more than its L2) before each call, outside the timed region (then q is rewritten:
  // the QKV projection just made it).
  const int nt = pool->size();
  // Wall clock, or with --cpu-time the process's CPU time: on a shared machine that leaves
  // out the time other processes hold the cores (meant for --threads 1; with more threads
  // it also counts the workers' spinning).
  auto now = [&] {
    if (!a.cpu_time) return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  std::vector<std::vector<char>> junk(static_cast<size_t>(nt), std::vector<char>(4 << 20));
  auto flush = [&] {
    octet::parallel_for(pool.get(), nt, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        std::vector<char>& j = junk[static_cast<size_t>(t)];
        for (size_t i = 0; i < j.size(); i += 64) j[i] = static_cast<char>(j[i] + 1);
      }
    });
  };
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (const std::string& name : a.shapes) {
    const AttnShape* s = nullptr;
    for (const AttnShape& c : kShapes)
      if (name == c.name) s = &c;
    if (!s) octet::cli::fail("unknown --shape " + name);
    for (int64_t P : a.prompts) {
      if (P < 1) octet::cli::fail("--prompt must be >= 1");
      const int64_t D = s->d, ring = s->window > 0 ? s->window + a.chunk : 0;
      const int64_t slots = ring > 0 ? std::min(ring, P) : P;
      const size_t eb = kv_elem_bytes(kvt);
      std::vector<uint8_t> kb(static_cast<size_t>(s->n_kv * slots * D) * eb),
          vb(kb.size());
      std::vector<float> ks(static_cast<size_t>(s->n_kv * slots)), vs(ks.size()), row(D);
      for (int64_t e = 0; e < s->n_kv * slots; ++e) {
        for (auto& x : row) x = nd(rng);
        kv_store_row(kvt, row.data(), D, kb.data() + e * D * eb, &ks[e]);
        for (auto& x : row) x = nd(rng);
        kv_store_row(kvt, row.data(), D, vb.data() + e * D * eb, &vs[e]);
      }
      KvView k, v;
      k.type = v.type = kvt;
      k.data = kb.data();
      v.data = vb.data();
      k.scale = ks.data();
      v.scale = vs.data();
      k.head_stride = v.head_stride = slots * D;
      k.ring = v.ring = ring > 0 && ring < P ? ring : 0;
      AttentionDims d;
      d.n_head = s->n_head;
      d.n_head_kv = s->n_kv;
      d.head_dim = D;
      d.window = s->window;
      d.scale = 1.f / std::sqrt(static_cast<float>(D));
      d.bf16 = a.bf16 == "all" ? AttnBf16::kAll : a.bf16 == "pv" ? AttnBf16::kPV : AttnBf16::kOff;
      const int64_t ld = s->n_head * D;
      std::vector<float> q(static_cast<size_t>(a.chunk * ld)), o(q.size());
      for (auto& x : q) x = nd(rng);
      const std::vector<float> q0 = q;
      double keys = 0;  // visible (query, key) pairs over the whole prompt
      for (int64_t p = 0; p < P; ++p)
        keys += static_cast<double>(s->window > 0 ? std::min(p + 1, s->window) : p + 1);
      const double flops = 4.0 * keys * static_cast<double>(D * s->n_head);
      // Seconds of one layer prefill: the sum of its timed attention calls.
      auto layer = [&] {
        double t = 0;
        for (int64_t p0 = 0; p0 < P; p0 += a.chunk) {
          if (!a.warm) {
            flush();
            // q comes fresh from the QKV projection in the engine: in cache.
            std::copy(q0.begin(), q0.end(), q.begin());
          }
          const double t0 = now();
          attention(q.data(), ld, std::min(a.chunk, P - p0), p0, k, v, d, o.data(), ld,
                    pool.get());
          t += now() - t0;
        }
        return t;
      };
      layer();  // warm up
      double best = 1e30;
      for (int r = 0; r < a.reps; ++r) best = std::min(best, layer());
      std::printf("%-16s %6lld %12.3f %9.1f", s->name, static_cast<long long>(P), best * 1e3,
                  flops / best * 1e-9);
      if (a.check) {
        const int64_t p0 = (P - 1) / a.chunk * a.chunk, n = P - p0;
        std::vector<float> ref(static_cast<size_t>(n * ld));
        attention(q.data(), ld, n, p0, k, v, d, o.data(), ld, pool.get());
        attention_ref(q.data(), ld, n, p0, k, v, d, ref.data(), ld);
        double md = 0;
        for (int64_t i = 0; i < n * ld; ++i)
          md = std::max(md, static_cast<double>(std::fabs(o[i] - ref[i])));
        std::printf(" %12.2e", md);
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  set_float_isa(FloatIsa::kAuto);
}

void register_kbench_attn(CLI::App& app) {
  auto a = std::make_shared<KbenchAttnArgs>();
  auto* cmd = app.add_subcommand(
      "kbench-attn", "Attention micro-benchmark: one layer's chunked-prefill attention calls");
  cmd->add_option("--shape", a->shapes,
                  "qwen2.5-0.5b, qwen1.5-1.8b, gemma3-270m, gemma3-270m-swa (repeatable)");
  cmd->add_option("--prompt", a->prompts, "prompt lengths (repeatable)");
  cmd->add_option("--chunk", a->chunk, "queries per attention call (prefill chunk)");
  cmd->add_option("--kv", a->kv, "KV cache type: f32, f16 or int8");
  cmd->add_option("--isa", a->isa, "auto, scalar, avx2 or avx512");
  cmd->add_option("--threads", a->threads, "threads (0 = all cores)");
  cmd->add_option("--reps", a->reps, "timed layer prefills per point (fastest is reported)");
  cmd->add_flag("--warm", a->warm, "keep caches warm between calls (default: evict L1/L2)");
  cmd->add_flag("--cpu-time", a->cpu_time,
                "time with process CPU time instead of wall clock (robust to a busy machine; "
                "use with --threads 1)");
  cmd->add_option("--bf16", a->bf16,
                  "bf16 operands on the block path: off, pv (P·V only) or all (Q·K too); "
                  "where the CPU and head dim allow, else float")
      ->check(CLI::IsMember({"off", "pv", "all"}));
  cmd->add_flag("--check", a->check, "also compare the last chunk with the scalar reference");
  cmd->callback([a] { run_kbench_attn(*a); });
}

}  // namespace

OCTET_COMMAND("kbench-attn", register_kbench_attn);
