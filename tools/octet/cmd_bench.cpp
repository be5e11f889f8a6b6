// octet bench: prefill tok/s at several prompt lengths, time to first token, decode tok/s and
// peak RSS. Each measurement runs in a fresh child process (peak RSS is per configuration);
// --compare llama.cpp runs llama-cpp-python on the same file and token ids in the same run.
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench_ab.h"
#include "bench_kernels.h"
#include "bench_sched.h"
#include "commands.h"
#include "common.h"
#include "octet/calibration.h"
#include "octet/memory.h"
#include "octet/sampler.h"

namespace {

struct BenchArgs {
  octet::cli::EngineFlags engine;
  std::vector<int64_t> prompts = {64, 256, 512, 1024, 2048};
  int64_t gen = 32;
  int64_t single = 0;  // internal: measure one prompt length in this process
  std::string tokens_file;
  std::string text_file;  // prompts cut from this text instead of random tokens
  std::string compare;
  std::string ab;      // --ab SPEC: A/B of two configurations in one process (bench_ab.cpp)
  int64_t rounds = 1;  // alternating (octet, peer) measurements per prompt length
  bool json = false;
  bool kernels = false;  // run the int8 GEMM kernel bench (kbench) on this model's shapes
  std::vector<int64_t> kernel_m;
  bool ctx_set = false;  // -c given on the command line
  octet::cli::SchedBenchFlags sched;  // --policy/--processors/--trace/--profile (bench_sched.cpp)
};

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

double process_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return 1e3 * static_cast<double>(ts.tv_sec) + 1e-6 * static_cast<double>(ts.tv_nsec);
}

void measure_one(const BenchArgs& a) {
  using namespace octet;
  auto eng = cli::load_engine(a.engine);
  std::vector<Token> ids;
  {
    std::ifstream in(a.tokens_file);
    std::string item;
    while (std::getline(in, item, ',')) ids.push_back(static_cast<Token>(std::stol(item)));
  }
  SessionOptions so = eng->session_opts;
  // -c given: that context (as llama.cpp's n_ctx); else just what the run needs.
  so.n_ctx = std::max<int64_t>(a.ctx_set ? a.engine.ctx : 0,
                               static_cast<int64_t>(ids.size()) + a.gen + 8);
  const int64_t V = eng->model->hparams().n_vocab;
  std::vector<float> logits;
  // Rep 0 is the cold first request of a fresh process (its TTFT is reported); later reps run
  // the same prompt in a fresh session and the fastest prefill is reported (noisy machines).
  std::vector<double> pre_ms;
  double ttft = 0, prefill_cpu_ms = 0;
  nlohmann::json sched;
  std::unique_ptr<Session> sp;
  Token t = 0;
  for (int64_t rep = 0; rep < a.sched.bench_reps(); ++rep) {
    sp.reset();  // one session at a time: peak RSS is that of one request
    sp = std::make_unique<Session>(eng->model, eng->weights, so, eng->pool.get());
    const double c0 = process_cpu_ms();
    auto t0 = std::chrono::steady_clock::now();
    if (Status st = cli::sched_prefill(a.sched, *eng, *sp, ids, &logits, &sched); !st.ok())
      cli::fail(st.message());
    auto t1 = std::chrono::steady_clock::now();
    const double cpu = process_cpu_ms() - c0;
    t = argmax(logits.data(), V);
    const double ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    if (rep == 0)
      ttft = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                 .count();
    if (pre_ms.empty() || ms < *std::min_element(pre_ms.begin(), pre_ms.end()))
      prefill_cpu_ms = cpu;
    pre_ms.push_back(ms);
  }
  Session& s = *sp;
  auto t2 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < a.gen; ++i) {
    if (Status st = s.eval(std::span<const Token>(&t, 1), false, &logits); !st.ok())
      cli::fail(st.message());
    t = argmax(logits.data(), V);
  }
  auto t3 = std::chrono::steady_clock::now();
  const double pre_s = *std::min_element(pre_ms.begin(), pre_ms.end()) / 1e3;
  std::vector<double> sorted = pre_ms;
  std::sort(sorted.begin(), sorted.end());
  const double median_s = sorted[sorted.size() / 2] / 1e3;
  const ProcMemory pm = proc_memory(eng->model_path);
  const WeightBytes wb = eng->weights->breakdown();
  constexpr double MiB = 1048576.0;
  const double dec_s = std::chrono::duration<double>(t3 - t2).count();
  nlohmann::json j = {
      {"engine", "octet"},
      {"model", cli::resolve_model(a.engine.model)},
      {"mode", compute_mode_name(eng->weights->mode())},
      {"decode", eng->weights->has_decode() ? "gguf" : "same"},
      {"prompt_tokens", ids.size()},
      {"prefill_tok_s", ids.size() / pre_s},
      {"prefill_tok_s_median", ids.size() / median_s},
      {"prefill_tok_s_cold", ids.size() / (pre_ms[0] / 1e3)},
      {"reps", pre_ms.size()},
      {"ttft_ms", ttft},
      // CPU time of all threads during prefill: on a shared machine a steadier figure than
      // wall time for comparing builds (it leaves out time spent preempted).
      {"prefill_cpu_ms", prefill_cpu_ms},
      {"decode_tok_s", a.gen ? a.gen / dec_s : 0.0},
      {"peak_rss_mb", peak_rss_mb()},
      {"threads", eng->pool->size()},
      {"chunk", so.chunk},
      {"shadow_keep", a.engine.shadow_keep},
      {"head", a.engine.head},
      {"hot_float", a.engine.hot_float},
      {"q4_gemm", a.engine.q4_gemm},
      {"weights_mb", eng->weights->bytes() / 1048576.0},
      {"kv_mb", s.kv_bytes() / MiB},
      {"kv_type", kernels::kv_type_name(s.kv_type())},
      {"attn", s.attn_bf16() == kernels::AttnBf16::kAll  ? "bf16"
               : s.attn_bf16() == kernels::AttnBf16::kPV ? "bf16-pv"
                                                          : "f32"},
      {"n_ctx", s.n_ctx()},
      {"window_slots", s.window_slots()},
      {"arena_mb", s.arena_bytes() / MiB},
      {"rss_mb", pm.rss / MiB},
      {"rss_anon_mb", pm.rss_anon / MiB},
      {"gguf_resident_mb", pm.file_resident / MiB},
      {"w_int8_mb", wb.int8 / MiB},
      {"w_int8_lm_head_mb", wb.int8_lm_head / MiB},
      {"w_hot_float_mb", wb.hot_float / MiB},
      {"w_f32_mb", wb.f32 / MiB},
      {"w_small_mb", wb.small / MiB},
      {"w_q4_index_mb", wb.q4_index / MiB},
      {"q4_mac_share", wb.int8_macs ? static_cast<double>(wb.q4_macs) / wb.int8_macs : 0.0},
      {"w_gguf_mapped_mb", wb.gguf_mapped / MiB},
      {"sched", sched},
  };
  std::printf("%s\n", j.dump().c_str());
}

std::string run_capture(const std::string& cmd) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  if (!p) return "";
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p.get())) out.append(buf, n);
  return out;
}

std::string last_json_line(const std::string& out) {
  std::stringstream ss(out);
  std::string line, last;
  while (std::getline(ss, line))
    if (!line.empty() && line[0] == '{') last = line;
  return last;
}

int run_kernels(const BenchArgs& a, const octet::HParams& hp, const std::string& model) {
  octet::cli::KernelBenchArgs k;
  k.json = a.json;
  if (a.engine.threads > 0) k.threads = {1, a.engine.threads};
  k.m = a.kernel_m.empty() ? std::vector<int64_t>{a.engine.chunk} : a.kernel_m;
  k.custom.push_back({std::filesystem::path(model).stem().string(), hp.n_embd, hp.q_dim(),
                      hp.kv_dim(), hp.n_ff});
  return octet::cli::run_kernel_bench(k);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

// One engine's rounds as one row: the round with the fastest prefill, with the fastest
// decode and the largest peak RSS of all rounds, and every round's prefill and decode.
nlohmann::json merge_rounds(const std::vector<nlohmann::json>& rs) {
  auto pre = [](const nlohmann::json& r) { return r["prefill_tok_s"].get<double>(); };
  nlohmann::json out = *std::max_element(
      rs.begin(), rs.end(), [&](const auto& x, const auto& y) { return pre(x) < pre(y); });
  if (rs.size() < 2) return out;
  std::vector<double> p, d;
  double rss = 0;
  for (const auto& r : rs) {
    p.push_back(pre(r));
    d.push_back(r["decode_tok_s"].get<double>());
    rss = std::max(rss, r["peak_rss_mb"].get<double>());
  }
  out["rounds"] = rs.size();
  out["prefill_tok_s_rounds"] = p;
  out["decode_tok_s_rounds"] = d;
  out["prefill_tok_s_round_median"] = median(p);
  out["decode_tok_s"] = *std::max_element(d.begin(), d.end());
  out["peak_rss_mb"] = rss;
  return out;
}

// Per-round octet/peer ratios (measured next to each other in time) and their median.
void add_paired_ratios(const std::vector<nlohmann::json>& mine,
                       const std::vector<nlohmann::json>& peer, nlohmann::json* out) {
  std::vector<double> p, d;
  for (size_t i = 0; i < mine.size() && i < peer.size(); ++i) {
    p.push_back(mine[i]["prefill_tok_s"].get<double>() / peer[i]["prefill_tok_s"].get<double>());
    const double pd = peer[i]["decode_tok_s"].get<double>();
    if (pd > 0) d.push_back(mine[i]["decode_tok_s"].get<double>() / pd);
  }
  (*out)["paired_prefill_ratios"] = p;
  (*out)["paired_prefill_ratio_median"] = median(p);
  (*out)["paired_prefill_ratio_min"] = *std::min_element(p.begin(), p.end());
  (*out)["paired_prefill_ratio_max"] = *std::max_element(p.begin(), p.end());
  (*out)["paired_decode_ratio_median"] = d.empty() ? 0.0 : median(d);
}

void run(const BenchArgs& args) {
  using namespace octet;
  if (args.single > 0) return measure_one(args);
  if (!args.sched.profile_out.empty())
    return cli::run_sched_profile(args.sched, args.engine, args.prompts);
  if (args.sched.compare)
    return cli::run_sched_compare(args.sched, args.engine, args.prompts, args.json);
  if (!args.ab.empty())
    return cli::run_ab(args.engine, args.ab, args.prompts, args.rounds > 1 ? args.rounds : 6,
                       args.sched.bench_reps(), args.json);
  BenchArgs a = args;
  const std::string sched_how = cli::resolve_sched_default(&a.sched, a.engine);
  const std::string model = cli::resolve_model(a.engine.model);
  auto m = Model::load(model);
  if (!m) cli::fail(m.error());
  // Every length must fit before the first child runs (a child's failure would come after
  // minutes of earlier lengths): the context is -c when given, else the model's own.
  const int64_t ctx_max = a.ctx_set ? a.engine.ctx : (*m)->hparams().n_ctx_train;
  for (int64_t n : a.kernels ? std::vector<int64_t>{} : a.prompts)
    if (ctx_max > 0 && n + a.gen > ctx_max)
      cli::fail("--prompts " + std::to_string(n) + " with --gen " + std::to_string(a.gen) +
                " exceeds the " + (a.ctx_set ? "context -c " : "model's context of ") +
                std::to_string(ctx_max) + " tokens");
  if (a.kernels) {
    if (int rc = run_kernels(a, (*m)->hparams(), model); rc != 0) std::exit(rc);
    return;
  }
  // Calibrate here, before any child runs: a first-use calibration builds an FP32 model and
  // would pollute the measured child's peak RSS (and time). The child then finds the sidecar
  // (or, when the model directory is read-only, the file written here).
  std::string calib = a.engine.calib;
  std::string tmp_calib;
  if (a.engine.mode == "int8") {
    ThreadPool pool(a.engine.threads);
    auto say = [](const std::string& s) { std::fprintf(stderr, "octet: %s\n", s.c_str()); };
    auto c = load_or_calibrate(*m, model, calib, &pool, say);
    if (!c) cli::fail(c.error());
    if (calib.empty() && !Calibration::load(calibration_path(model)).ok()) {
      tmp_calib = (std::filesystem::temp_directory_path() /
                   ("octet-bench-" + std::to_string(getpid()) + ".calib.json")).string();
      if (Status st = c->save(tmp_calib); !st.ok()) cli::fail(st.message());
      calib = tmp_calib;
    }
  }
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string tmp = (std::filesystem::temp_directory_path() /
                           ("octet-bench-" + std::to_string(getpid()) + ".tok")).string();
  std::vector<Token> text_ids;
  if (!a.text_file.empty()) {
    bool ok;
    const std::string text = cli::read_file(a.text_file, &ok);
    if (!ok) cli::fail("cannot read " + a.text_file);
    text_ids = (*m)->tokenizer().encode(text, true, false);
  }
  const int threads = a.engine.threads > 0 ? a.engine.threads
                                           : static_cast<int>(std::thread::hardware_concurrency());
  std::fprintf(a.json ? stderr : stdout, "# prefill scheduler: %s\n", sched_how.c_str());
  if (!a.json)
    std::printf("%-10s %7s %12s %10s %12s %10s\n", "engine", "prompt", "prefill t/s", "ttft ms",
                "decode t/s", "rss MiB");
  for (int64_t n : a.prompts) {
    auto ids = cli::bench_prompt((*m)->tokenizer(), n);
    if (!text_ids.empty()) {
      if (static_cast<int64_t>(text_ids.size()) < n)
        cli::fail("--text has only " + std::to_string(text_ids.size()) + " tokens");
      ids.assign(text_ids.begin(), text_ids.begin() + n);
    }
    {
      std::ofstream out(tmp);
      for (size_t i = 0; i < ids.size(); ++i) out << (i ? "," : "") << ids[i];
    }
    std::ostringstream cmd;
    cmd << "'" << self << "' bench --single " << n << " --tokens-file '" << tmp << "' -m '"
        << model << "' -t " << threads << " --chunk " << a.engine.chunk << " --mode "
        << a.engine.mode << " --decode " << a.engine.decode << " --gen " << a.gen
        << " --shadow-keep " << a.engine.shadow_keep << " --kv-type " << a.engine.kv_type
        << " --attn " << a.engine.attn << " --head " << a.engine.head << " --hot-float "
        << a.engine.hot_float << " --q4-gemm " << a.engine.q4_gemm << " --reps "
        << a.sched.bench_reps();
    if (a.ctx_set) cmd << " -c " << a.engine.ctx;
    if (!calib.empty()) cmd << " --calib '" << calib << "'";
    cli::SchedBenchFlags sf = a.sched;
    if (!sf.trace.empty() && a.prompts.size() > 1)
      sf.trace = std::filesystem::path(sf.trace).replace_extension("").string() + "-" +
                 std::to_string(n) + ".json";
    cmd << sf.child_args();
    std::ostringstream py;
    py << "'" << OCTET_SOURCE_DIR << "/.venv/bin/python' '" << OCTET_SOURCE_DIR
       << "/scripts/llamacpp_bench.py' --model '" << model << "' --tokens-file '" << tmp
       << "' --threads " << threads << " --n-gen " << a.gen << " --reps " << a.sched.bench_reps();
    if (a.ctx_set) py << " --ctx " << a.engine.ctx;
    // Rounds alternate the engines, so that each peer measurement has an octet one taken
    // next to it in time: this machine's speed drifts by tens of per cent within minutes, and
    // the paired ratios (their median) are what such drift leaves comparable.
    std::vector<nlohmann::json> mine, peer;
    for (int64_t r = 0; r < a.rounds; ++r) {
      std::string line = last_json_line(run_capture(cmd.str()));
      if (line.empty()) cli::fail("bench child failed for prompt " + std::to_string(n));
      mine.push_back(nlohmann::json::parse(line));
      if (a.compare == "llama.cpp") {
        std::string l2 = last_json_line(run_capture(py.str()));
        if (l2.empty()) cli::fail("llama.cpp peer failed (is the venv installed? scripts/setup.sh)");
        peer.push_back(nlohmann::json::parse(l2));
      }
      if (a.rounds > 1 && !a.json) {
        std::printf("  round %lld: octet %.1f", static_cast<long long>(r + 1),
                    mine.back()["prefill_tok_s"].get<double>());
        if (!peer.empty())
          std::printf(", %s %.1f, ratio %.2fx", peer.back()["engine"].get<std::string>().c_str(),
                      peer.back()["prefill_tok_s"].get<double>(),
                      mine.back()["prefill_tok_s"].get<double>() /
                          peer.back()["prefill_tok_s"].get<double>());
        std::printf(" prefill tok/s\n");
        std::fflush(stdout);
      }
    }
    std::vector<nlohmann::json> rows{merge_rounds(mine)};
    if (!peer.empty()) {
      rows.push_back(merge_rounds(peer));
      if (a.rounds > 1) add_paired_ratios(mine, peer, &rows[0]);
    }
    if (!sf.trace.empty())
      cli::render_gantt(sf.trace, std::filesystem::path(sf.trace).replace_extension(".png"));
    for (auto& r : rows) {
      if (a.json) {
        std::printf("%s\n", r.dump().c_str());
      } else {
        std::printf("%-10s %7lld %12.1f %10.1f %12.1f %10.1f\n",
                    r["engine"].get<std::string>().c_str(),
                    static_cast<long long>(r["prompt_tokens"].get<int64_t>()),
                    r["prefill_tok_s"].get<double>(), r["ttft_ms"].get<double>(),
                    r["decode_tok_s"].get<double>(), r["peak_rss_mb"].get<double>());
      }
      if (!a.json && r.contains("sched") && r["sched"].contains("busy_share"))
        std::printf("%s\n", cli::sched_summary(r["sched"]).c_str());
    }
    if (!a.json) {
      const auto& r = rows[0];
      std::printf("  octet memory (MiB): peak RSS %.1f = anon %.1f + GGUF file pages %.1f (+ "
                  "other files); weights: int8 %.1f, int8 LM head %.1f, hot float %.1f, fp32 "
                  "%.1f, small (+ Q4 row index) %.1f, read in place from the file %.1f; KV %.1f (%s, ctx %lld, window "
                  "slots %lld), arena %.1f\n",
                  r["peak_rss_mb"].get<double>(), r["rss_anon_mb"].get<double>(),
                  r["gguf_resident_mb"].get<double>(), r["w_int8_mb"].get<double>(),
                  r["w_int8_lm_head_mb"].get<double>(), r["w_hot_float_mb"].get<double>(),
                  r["w_f32_mb"].get<double>(),
                  r["w_small_mb"].get<double>() + r.value("w_q4_index_mb", 0.0),
                  r["w_gguf_mapped_mb"].get<double>(), r["kv_mb"].get<double>(),
                  r["kv_type"].get<std::string>().c_str(),
                  static_cast<long long>(r["n_ctx"].get<int64_t>()),
                  static_cast<long long>(r["window_slots"].get<int64_t>()),
                  r["arena_mb"].get<double>());
    }
    if (rows.size() == 2 && !a.json) {
      std::printf("%-10s %7s %11.2fx %10s %11.2fx\n", "ratio", "",
                  rows[0]["prefill_tok_s"].get<double>() / rows[1]["prefill_tok_s"].get<double>(),
                  "", rows[0]["decode_tok_s"].get<double>() / rows[1]["decode_tok_s"].get<double>());
      if (rows[0].contains("paired_prefill_ratio_median"))
        std::printf("%-10s %7s %11.2fx %10s %11.2fx   (median of %lld rounds; prefill %.2f-%.2fx)\n",
                    "paired", "", rows[0]["paired_prefill_ratio_median"].get<double>(), "",
                    rows[0]["paired_decode_ratio_median"].get<double>(),
                    static_cast<long long>(a.rounds),
                    rows[0]["paired_prefill_ratio_min"].get<double>(),
                    rows[0]["paired_prefill_ratio_max"].get<double>());
    }
    std::fflush(stdout);
  }
  std::filesystem::remove(tmp);
  if (!tmp_calib.empty()) std::filesystem::remove(tmp_calib);
}

}  // namespace

static void register_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand("bench", "Measure prefill, time to first token, decode, RSS");
  a->engine.add_to(cmd);
  cmd->add_option("--prompts", a->prompts, "prompt lengths")
      ->delimiter(',')
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--gen", a->gen, "tokens to decode")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));

  cmd->add_option("--compare", a->compare, "peer engine to run side by side")
      ->check(CLI::IsMember({"llama.cpp"}));
  cmd->add_option("--rounds", a->rounds,
                  "measurements per prompt length, alternating with the --compare peer: the "
                  "table keeps each engine's best, and the median of the paired ratios")
      ->check(CLI::Range(1, 50));
  cmd->add_option("--ab", a->ab,
                  "A/B in one process: B = these key=value changes to the flags given (chunk, "
                  "attn, kv-type, mode, shadow-keep, head, ffn-pair, hot-float, q4-gemm), prefill timed "
                  "alternately on the same token ids (--rounds pairs, default 6; --reps each)");
  cmd->add_flag("--json", a->json, "one JSON object per line");
  cmd->add_flag("--kernels", a->kernels,
                "int8 GEMM efficiency on this model's linear shapes vs the measured peak of its ISA "
                "(M = --chunk, or --kernel-m; same as `octet kbench`)");
  cmd->add_option("--kernel-m", a->kernel_m, "GEMM rows for --kernels")->delimiter(',');
  cmd->add_option("--text", a->text_file,
                  "take each prompt from the start of this text file (else random tokens)");
  cmd->add_option("--single", a->single, "internal: measure one length")->group("");
  cmd->add_option("--tokens-file", a->tokens_file, "internal")->group("");
  a->sched.add_to(cmd);
  cmd->callback([a, cmd] {
    a->ctx_set = cmd->count("--ctx") > 0;
    run(*a);
  });
}
OCTET_COMMAND("bench", register_bench);
