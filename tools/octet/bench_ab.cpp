// octet bench --ab SPEC: A/B of two engine configurations in one process. This machine's
// speed drifts by tens of per cent within minutes, and separate processes also differ in
// where their memory landed; two engines over one model and one thread pool, timed in
// alternation on the same token ids, leave only the configurations' difference in the
// paired ratios (docs/results.md, session 11: a fused-FFN A/B read 0.91 across processes and
// 1.01 in one).
#include "bench_ab.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

namespace octet::cli {

namespace {

// Applies "key=value,key=value" to f; returns whether the weights change (else B can share
// A's). Exits with a clear error on an unknown key or a bad value.
bool apply_spec(const std::string& spec, EngineFlags* f) {
  if (spec.empty()) fail("--ab needs key=value pairs, e.g. --ab ffn-pair=0 or --ab chunk=256");
  auto as_bool = [](const std::string& k, const std::string& v) {
    if (v == "1" || v == "on" || v == "true") return true;
    if (v == "0" || v == "off" || v == "false") return false;
    fail("--ab " + k + ": expected 0 or 1, got '" + v + "'");
    return false;
  };
  auto as_num = [](const std::string& k, const std::string& v, double lo, double hi) {
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !(x >= lo && x <= hi))
      fail(fmt::format("--ab {}: expected a number in [{}, {}], got '{}'", k, lo, hi, v));
    return x;
  };
  auto one_of = [](const std::string& k, const std::string& v, std::initializer_list<const char*> ok) {
    for (const char* o : ok)
      if (v == o) return v;
    fail("--ab " + k + ": '" + v + "' is not a valid value");
    return v;
  };
  bool weights = false;
  std::stringstream ss(spec);
  for (std::string item; std::getline(ss, item, ',');) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) fail("--ab: '" + item + "' is not key=value");
    const std::string k = item.substr(0, eq), v = item.substr(eq + 1);
    if (k == "chunk") f->chunk = static_cast<int64_t>(as_num(k, v, 1, 8192));
    else if (k == "attn") f->attn = one_of(k, v, {"auto", "f32", "bf16-pv", "bf16"});
    else if (k == "kv-type") f->kv_type = one_of(k, v, {"f32", "f16", "int8"});
    else if (k == "mode") weights = true, f->mode = one_of(k, v, {"fp32", "int8", "gguf"});
    else if (k == "shadow-keep") weights = true, f->shadow_keep = as_num(k, v, 0, 1);
    else if (k == "head") weights = true, f->head = one_of(k, v, {"file", "int8"});
    else if (k == "ffn-pair") weights = true, f->pair_ffn = as_bool(k, v);
    else if (k == "hot-float") weights = true, f->hot_float = as_bool(k, v);
    else if (k == "q4-gemm") weights = true, f->q4_gemm = as_bool(k, v);
    else
      fail("--ab: unknown key '" + k +
           "' (chunk, attn, kv-type, mode, shadow-keep, head, ffn-pair, hot-float, q4-gemm)");
  }
  return weights;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

void run_ab(const EngineFlags& fa, const std::string& spec, const std::vector<int64_t>& prompts,
            int64_t rounds, int reps, bool json) {
  EngineFlags fb = fa;
  const bool own_weights = apply_spec(spec, &fb);
  auto ea = load_engine(fa);
  Engine eb;
  eb.model = ea->model;
  eb.pool = ea->pool;  // one pool: an idle second one would spin beside the measured engine
  eb.model_path = ea->model_path;
  if (own_weights) {
    build_engine(fb, &eb);
  } else {
    eb.weights = ea->weights;
    eb.session_opts = session_options(fb);
  }
  const Tokenizer& tok = ea->model->tokenizer();
  if (!json)
    std::printf("octet bench --ab: A = the flags given, B = A with %s (%s); one process, pool and "
                "token ids; prefill only, alternating A/B, best of %d per measurement\n"
                "%-7s %10s %10s   %s\n",
                spec.c_str(), own_weights ? "own weights" : "A's weights", reps, "prompt",
                "A tok/s", "B tok/s", "B/A paired: median [min-max] of the rounds");
  for (const int64_t n : prompts) {
    const std::vector<Token> ids = bench_prompt(tok, n);
    auto make = [&](const Engine& e) {
      SessionOptions so = e.session_opts;
      so.n_ctx = n + 8;
      return std::make_unique<Session>(e.model, e.weights, so, e.pool.get());
    };
    auto sa = make(*ea), sb = make(eb);
    auto time_one = [&](Session& s) {
      double best = 1e30;
      for (int r = 0; r < reps; ++r) {
        s.truncate(0);
        std::vector<float> logits;
        const auto t0 = std::chrono::steady_clock::now();
        if (Status st = s.eval(ids, false, &logits); !st.ok()) fail(st.message());
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      return static_cast<double>(n) / best;
    };
    time_one(*sa);  // warm-up: first touches of arenas, KV and weights
    time_one(*sb);
    std::vector<double> ta, tb, ratio;
    for (int64_t r = 0; r < rounds; ++r) {
      double a = 0, b = 0;
      if (r % 2 == 0) {
        a = time_one(*sa);
        b = time_one(*sb);
      } else {
        b = time_one(*sb);
        a = time_one(*sa);
      }
      ta.push_back(a);
      tb.push_back(b);
      ratio.push_back(b / a);
    }
    const double best_a = *std::max_element(ta.begin(), ta.end());
    const double best_b = *std::max_element(tb.begin(), tb.end());
    const double lo = *std::min_element(ratio.begin(), ratio.end());
    const double hi = *std::max_element(ratio.begin(), ratio.end());
    if (json) {
      nlohmann::json j = {{"engine", "octet"},         {"model", ea->model_path},
                          {"ab", spec},                {"prompt_tokens", n},
                          {"rounds", rounds},          {"reps", reps},
                          {"a_prefill_tok_s", best_a}, {"b_prefill_tok_s", best_b},
                          {"b_over_a_median", median(ratio)},
                          {"b_over_a_min", lo},        {"b_over_a_max", hi},
                          {"a_prefill_tok_s_all", ta}, {"b_prefill_tok_s_all", tb}};
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("%-7lld %10.1f %10.1f   %.3f [%.3f-%.3f] of %lld\n", static_cast<long long>(n),
                  best_a, best_b, median(ratio), lo, hi, static_cast<long long>(rounds));
    }
    std::fflush(stdout);
  }
}

}  // namespace octet::cli
