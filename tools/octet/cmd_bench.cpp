// octet bench: prefill tok/s at several prompt lengths, time to first token, decode tok/s and
// peak RSS. Each measurement runs in a fresh child process (peak RSS is per configuration);
// --compare llama.cpp runs llama-cpp-python on the same file and token ids in the same run.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "bench_sched.h"
#include "commands.h"
#include "common.h"
#include "octet/sampler.h"

namespace {

struct BenchArgs {
  octet::cli::EngineFlags engine;
  std::vector<int64_t> prompts = {64, 256, 512, 1024, 2048};
  int64_t gen = 32;
  int64_t single = 0;  // internal: measure one prompt length in this process
  std::string tokens_file;
  std::string compare;
  bool json = false;
  octet::cli::SchedBenchFlags sched;  // --policy/--processors/--trace/--profile (bench_sched.cpp)
};

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

// Deterministic prompt ids: ordinary (non-special) tokens drawn with a fixed seed.
std::vector<octet::Token> bench_tokens(const octet::Tokenizer& tok, int64_t n) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> d(0, tok.n_vocab() - 1);
  std::vector<octet::Token> ids;
  if (tok.bos() >= 0) ids.push_back(tok.bos());
  while (static_cast<int64_t>(ids.size()) < n) {
    const octet::Token t = d(rng);
    if (tok.token_type(t) == octet::TokenType::NORMAL) ids.push_back(t);
  }
  return ids;
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
  so.n_ctx = static_cast<int64_t>(ids.size()) + a.gen + 8;
  Session s(eng->model, eng->weights, so, eng->pool.get());
  const int64_t V = eng->model->hparams().n_vocab;
  std::vector<float> logits;
  auto t0 = std::chrono::steady_clock::now();
  nlohmann::json sched;
  if (Status st = cli::sched_prefill(a.sched, *eng, s, ids, &logits, &sched); !st.ok())
    cli::fail(st.message());
  auto t1 = std::chrono::steady_clock::now();
  Token t = argmax(logits.data(), V);
  const double ttft = std::chrono::duration<double, std::milli>(
                          std::chrono::steady_clock::now() - t0).count();
  auto t2 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < a.gen; ++i) {
    if (Status st = s.eval(std::span<const Token>(&t, 1), false, &logits); !st.ok())
      cli::fail(st.message());
    t = argmax(logits.data(), V);
  }
  auto t3 = std::chrono::steady_clock::now();
  const double pre_s = std::chrono::duration<double>(t1 - t0).count();
  const double dec_s = std::chrono::duration<double>(t3 - t2).count();
  nlohmann::json j = {
      {"engine", "octet"},
      {"model", cli::resolve_model(a.engine.model)},
      {"mode", compute_mode_name(eng->weights->mode())},
      {"decode", eng->weights->has_decode() ? "gguf" : "same"},
      {"prompt_tokens", ids.size()},
      {"prefill_tok_s", ids.size() / pre_s},
      {"ttft_ms", ttft},
      {"decode_tok_s", a.gen ? a.gen / dec_s : 0.0},
      {"peak_rss_mb", peak_rss_mb()},
      {"threads", eng->pool->size()},
      {"chunk", so.chunk},
      {"shadow_keep", a.engine.shadow_keep},
      {"weights_mb", eng->weights->bytes() / 1048576.0},
      {"kv_mb", s.kv_bytes() / 1048576.0},
      {"arena_mb", s.arena_bytes() / 1048576.0},
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

void run(const BenchArgs& args) {
  using namespace octet;
  if (args.single > 0) return measure_one(args);
  if (!args.sched.profile_out.empty())
    return cli::run_sched_profile(args.sched, args.engine, args.prompts);
  if (args.sched.compare)
    return cli::run_sched_compare(args.sched, args.engine, args.prompts, args.json);
  BenchArgs a = args;
  const std::string sched_how = cli::resolve_sched_default(&a.sched, a.engine);
  const std::string model = cli::resolve_model(a.engine.model);
  auto m = Model::load(model);
  if (!m) cli::fail(m.error());
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string tmp = (std::filesystem::temp_directory_path() /
                           ("octet-bench-" + std::to_string(getpid()) + ".tok")).string();
  const int threads = a.engine.threads > 0 ? a.engine.threads
                                           : static_cast<int>(std::thread::hardware_concurrency());
  std::fprintf(a.json ? stderr : stdout, "# prefill scheduler: %s\n", sched_how.c_str());
  if (!a.json)
    std::printf("%-10s %7s %12s %10s %12s %10s\n", "engine", "prompt", "prefill t/s", "ttft ms",
                "decode t/s", "rss MiB");
  for (int64_t n : a.prompts) {
    const auto ids = bench_tokens((*m)->tokenizer(), n);
    {
      std::ofstream out(tmp);
      for (size_t i = 0; i < ids.size(); ++i) out << (i ? "," : "") << ids[i];
    }
    std::vector<nlohmann::json> rows;
    std::ostringstream cmd;
    cmd << "'" << self << "' bench --single " << n << " --tokens-file '" << tmp << "' -m '"
        << model << "' -t " << threads << " --chunk " << a.engine.chunk << " --mode "
        << a.engine.mode << " --decode " << a.engine.decode << " --gen " << a.gen
        << " --shadow-keep " << a.engine.shadow_keep;
    if (!a.engine.calib.empty()) cmd << " --calib '" << a.engine.calib << "'";
    cli::SchedBenchFlags sf = a.sched;
    if (!sf.trace.empty() && a.prompts.size() > 1)
      sf.trace = std::filesystem::path(sf.trace).replace_extension("").string() + "-" +
                 std::to_string(n) + ".json";
    cmd << sf.child_args();
    std::string line = last_json_line(run_capture(cmd.str()));
    if (line.empty()) cli::fail("bench child failed for prompt " + std::to_string(n));
    rows.push_back(nlohmann::json::parse(line));
    if (a.compare == "llama.cpp") {
      std::ostringstream py;
      py << "'" << OCTET_SOURCE_DIR << "/.venv/bin/python' '" << OCTET_SOURCE_DIR
         << "/scripts/llamacpp_bench.py' --model '" << model << "' --tokens-file '" << tmp
         << "' --threads " << threads << " --n-gen " << a.gen;
      std::string l2 = last_json_line(run_capture(py.str()));
      if (l2.empty()) cli::fail("llama.cpp peer failed (is the venv installed? scripts/setup.sh)");
      rows.push_back(nlohmann::json::parse(l2));
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
    if (rows.size() == 2 && !a.json)
      std::printf("%-10s %7s %11.2fx %10s %11.2fx\n", "ratio", "",
                  rows[0]["prefill_tok_s"].get<double>() / rows[1]["prefill_tok_s"].get<double>(),
                  "", rows[0]["decode_tok_s"].get<double>() / rows[1]["decode_tok_s"].get<double>());
    std::fflush(stdout);
  }
  std::filesystem::remove(tmp);
}

}  // namespace

static void register_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand("bench", "Measure prefill, time to first token, decode, RSS");
  a->engine.add_to(cmd);
  cmd->add_option("--prompts", a->prompts, "prompt lengths")->delimiter(',');
  cmd->add_option("--gen", a->gen, "tokens to decode");
  cmd->add_option("--compare", a->compare, "peer engine to run side by side")
      ->check(CLI::IsMember({"llama.cpp"}));
  cmd->add_flag("--json", a->json, "one JSON object per line");
  cmd->add_option("--single", a->single, "internal: measure one length")->group("");
  cmd->add_option("--tokens-file", a->tokens_file, "internal")->group("");
  a->sched.add_to(cmd);
  cmd->callback([a] { run(*a); });
}
OCTET_COMMAND("bench", register_bench);
