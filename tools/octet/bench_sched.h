// `octet bench` options of the subgraph scheduler (docs/scheduler.md): --policy,
// --processors, --trace, --profile, and the cached per-machine default configuration.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "common.h"
#include "octet/runtime.h"

namespace octet::cli {

struct SchedBenchFlags {
  std::string policy;       // sequential | inorder | ooo; empty: the machine's default
  std::string processors;   // e.g. int8:1,float:1 or shared:2; empty: the default
  std::string trace;        // Chrome trace of the prefill (+ a PNG Gantt chart next to it)
  std::string profile_out;  // --profile FILE: measure per-subgraph costs, write a profile
  std::string sim_profile;  // also print the simulator's prediction from this profile
  int64_t arenas = 4;       // chunk arenas (chunks in flight)
  int64_t lag = 0;          // inorder stagger in subgraphs (0: tightest)
  bool no_pin = false;
  bool retune = false;      // re-measure the default configuration
  bool compare = false;     // --compare-sched: every configuration, interleaved, in-process
  int reps = 0;  // repetitions (fastest kept); 0: 2 per configuration for --compare-sched, 1 for bench
  int compare_reps() const { return reps > 0 ? reps : 2; }
  int bench_reps() const { return reps > 0 ? reps : 1; }
  void add_to(CLI::App* cmd);
  // The flags a bench child process needs (policy/processors already resolved).
  std::string child_args() const;
  bool scheduled() const { return !policy.empty() || !processors.empty(); }
};

// Prefill of ids in s per the flags: plain Session::eval for the sequential shared path,
// else Session::eval_scheduled. Adds a "sched" report (policy, processors, busy shares,
// integer bubbles, simulator prediction) to *row, and writes the trace if asked.
Status sched_prefill(const SchedBenchFlags& f, const Engine& eng, Session& s,
                     std::span<const Token> ids, std::vector<float>* logits, nlohmann::json* row);

// Resolves an empty policy/processors to this machine's measured default (cached in
// ~/.cache/octet/sched-default.json per model and thread count; measured on first use).
// Returns a one-line description for the bench header.
std::string resolve_sched_default(SchedBenchFlags* f, const EngineFlags& engine);

// octet bench --compare-sched: every configuration in one process, round robin, best of
// --reps (ratios within one run on a shared machine), with the simulator's prediction.
void run_sched_compare(const SchedBenchFlags& f, const EngineFlags& engine,
                       const std::vector<int64_t>& prompts, bool json);

// octet bench --profile FILE.
void run_sched_profile(const SchedBenchFlags& f, const EngineFlags& engine,
                       const std::vector<int64_t>& prompts);

// One line: policy, processors, busy shares, integer bubbles, predicted vs measured.
std::string sched_summary(const nlohmann::json& sched);

// Renders a Chrome trace to a PNG Gantt chart with scripts/sched_gantt.py (venv matplotlib).
bool render_gantt(const std::string& trace_json, const std::string& png);

}  // namespace octet::cli
