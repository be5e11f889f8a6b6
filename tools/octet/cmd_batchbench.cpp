// `octet batchbench`: decode throughput of B sessions stepped together (BatchDecoder, one
// pass over the linears) vs the same B sessions each running its own eval(), interleaved
// step by step in one process so load from other work hits both alike (docs/serve.md).
#include <chrono>
#include <cstdio>
#include <random>

#include "commands.h"
#include "common.h"
#include "octet/batch.h"

namespace {

struct Args {
  octet::cli::EngineFlags engine;
  int64_t max_batch = 4;
  int64_t steps = 32;
  int64_t prompt = 64;
};

void run(const Args& a) {
  using namespace octet;
  using Clock = std::chrono::steady_clock;
  auto eng = cli::load_engine(a.engine);
  std::mt19937 rng(5);
  std::printf("%-3s %14s %14s %7s\n", "B", "separate tok/s", "batched tok/s", "ratio");
  for (int64_t B = 1; B <= a.max_batch; B *= 2) {
    // Two identical sets of B sessions at different positions: one steps separately, the
    // other batched.
    std::vector<std::unique_ptr<Session>> sep, bat;
    for (int64_t i = 0; i < B; ++i) {
      std::vector<Token> p(static_cast<size_t>(a.prompt + 7 * i));
      for (auto& t : p) t = static_cast<Token>(100 + rng() % 10000);
      for (auto* set : {&sep, &bat}) {
        set->push_back(std::make_unique<Session>(eng->model, eng->weights, eng->session_opts,
                                                 eng->pool.get()));
        if (!set->back()->eval(p, false, nullptr).ok()) cli::fail("prefill failed");
      }
    }
    BatchDecoder dec(eng->pool.get());
    std::vector<std::vector<float>> lg(static_cast<size_t>(B));
    std::vector<Session*> ss;
    std::vector<std::vector<float>*> lp;
    for (int64_t i = 0; i < B; ++i) {
      ss.push_back(bat[i].get());
      lp.push_back(&lg[i]);
    }
    double t_sep = 0, t_bat = 0;
    for (int64_t s = 0; s < a.steps; ++s) {
      std::vector<Token> toks(static_cast<size_t>(B));
      for (auto& t : toks) t = static_cast<Token>(100 + rng() % 10000);
      auto t0 = Clock::now();
      for (int64_t i = 0; i < B; ++i)
        if (!sep[i]->eval(std::span<const Token>(&toks[i], 1), false, &lg[i]).ok())
          cli::fail("eval failed");
      auto t1 = Clock::now();
      if (!dec.step(ss, toks, lp).ok()) cli::fail("batched step failed");
      auto t2 = Clock::now();
      t_sep += std::chrono::duration<double>(t1 - t0).count();
      t_bat += std::chrono::duration<double>(t2 - t1).count();
    }
    const double n = static_cast<double>(B * a.steps);
    std::printf("%-3lld %14.1f %14.1f %6.2fx\n", static_cast<long long>(B), n / t_sep,
                n / t_bat, t_sep / t_bat);
  }
}

}  // namespace

static void register_batchbench(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "batchbench", "decode tok/s of B sessions batched vs separate (docs/serve.md)");
  a->engine.add_to(cmd);
  cmd->add_option("--max-batch", a->max_batch, "largest B (1, 2, 4, ... up to it)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--steps", a->steps, "decode steps per B")->check(CLI::Range(1, 100000));
  cmd->add_option("--prompt", a->prompt, "prefill tokens per session")->check(CLI::Range(1, 4096));
  cmd->callback([a] { run(*a); });
}
OCTET_COMMAND("batchbench", register_batchbench);
