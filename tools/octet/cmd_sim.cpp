// octet sim: the prefill scheduler's discrete-event simulator. Runs the same subgraph DAG and
// the same policy code as `octet bench --policy` against a device profile (JSON cost models
// per processor; docs/scheduler.md), e.g. a phone's NPU + CPU. Only the model's
// hyperparameters are needed: -m takes a GGUF path/name or a synthetic shape name.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "bench_sched.h"
#include "commands.h"
#include "common.h"
#include "octet/sched.h"
#include "octet/synth.h"

namespace {

struct SimArgs {
  std::string model, profile, policy = "ooo", processors = "int8:1,float:1", gantt = "octet-sim.png",
                                 trace;
  int64_t prompt = 1024, chunk = 256, arenas = 4, layers = 0, lag = 0, max_nodes = 20'000'000;
  bool json = false, no_gantt = false, optimum = false;
};

octet::HParams hparams_for(const std::string& arg, std::string* label) {
  using namespace octet;
  if (const synth::Shape* s = synth::find_shape(arg)) {
    HParams hp;
    hp.n_layer = s->n_layer;
    hp.n_embd = s->n_embd;
    hp.n_head = s->n_head;
    hp.n_head_kv = s->n_head_kv;
    hp.head_dim = s->head_dim;
    hp.n_ff = s->n_ff;
    hp.n_vocab = s->n_vocab;
    hp.n_ctx_train = s->n_ctx;
    hp.n_rot = s->n_rot ? s->n_rot : s->head_dim;
    hp.layer_is_swa.assign(static_cast<size_t>(hp.n_layer), false);
    *label = std::string(s->name) + " (synthetic shape)";
    return hp;
  }
  const std::string path = cli::resolve_model(arg);
  if (!std::filesystem::exists(path))
    cli::fail("-m: '" + arg + "' is neither a model file nor a synthetic shape name");
  auto m = Model::load(path);
  if (!m) cli::fail(m.error());
  *label = (*m)->name() + " (" + path + ")";
  return (*m)->hparams();
}

void run(const SimArgs& a) {
  using namespace octet;
  using namespace octet::sched;
  std::string label;
  HParams hp = hparams_for(a.model.empty() ? "default" : a.model, &label);
  if (a.layers > 0) {
    hp.n_layer = std::min(hp.n_layer, a.layers);
    hp.layer_is_swa.resize(static_cast<size_t>(hp.n_layer));
  }
  auto prof = Profile::load(a.profile);
  if (!prof) cli::fail(prof.error());
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto procs = parse_processors(a.processors, cores);
  if (!procs) cli::fail(procs.error());
  for (const auto& p : *procs)
    if (!prof->find(p))
      cli::fail(fmt::format("profile {} has no cost model for processor '{}' (has:{})", a.profile,
                            p.name + ":" + std::to_string(p.threads), [&] {
                              std::string s;
                              for (const auto& [k, v] : prof->procs) s += " " + k;
                              return s;
                            }()));
  std::vector<PolicyKind> pols;
  if (a.policy == "all") {
    pols = {PolicyKind::kSequential, PolicyKind::kInOrder, PolicyKind::kGreedy, PolicyKind::kOoo,
            PolicyKind::kCritical};
  } else {
    auto pk = parse_policy(a.policy);
    if (!pk) cli::fail(pk.error());
    pols = {*pk};
  }
  GraphOptions go;
  go.chunk = a.chunk;
  go.arenas = a.arenas;
  go.inorder_lag = a.lag;
  const Graph g = build_graph(hp, a.prompt, 0, go);
  if (!a.json) {
    std::printf("model %s: %lld layers; prompt %lld, chunk %lld: %lld chunks, %zu subgraphs, "
                "%lld arenas\n",
                label.c_str(), static_cast<long long>(hp.n_layer),
                static_cast<long long>(a.prompt), static_cast<long long>(a.chunk),
                static_cast<long long>(g.n_chunks), g.size(), static_cast<long long>(a.arenas));
    std::printf("profile %s: %s\n", a.profile.c_str(), prof->device.c_str());
    std::printf("%-17s %13s %11s %11s %13s\n", "policy", "predicted ms", "int busy", "float busy",
                "int bubbles");
  }
  int int_proc = -1, float_proc = -1;
  for (size_t p = 0; p < procs->size(); ++p) {
    if ((*procs)[p].runs_int && int_proc < 0) int_proc = static_cast<int>(p);
    if ((*procs)[p].runs_float && float_proc < 0) float_proc = static_cast<int>(p);
  }
  double inorder_ms = 0, ooo_ms = 0, greedy_ms = 0;
  // ooo's plan: which candidate it runs (the one with the shortest simulated makespan).
  const std::vector<int> where = assign(g, *procs);
  const PolicyKind plan = plan_ooo(g, where, node_costs(g, *procs, where, *prof),
                                   prof->dispatch_ms, prof->handoff_ms);
  for (PolicyKind pk : pols) {
    const SimResult r = simulate(g, *procs, *prof, pk);
    const Report rep = report(g, *procs, r.slices);
    if (pk == PolicyKind::kInOrder) inorder_ms = r.makespan_ms;
    if (pk == PolicyKind::kOoo) ooo_ms = r.makespan_ms;
    if (pk == PolicyKind::kGreedy) greedy_ms = r.makespan_ms;
    const double ib = rep.busy_share[int_proc], fb = rep.busy_share[float_proc];
    if (a.json) {
      nlohmann::json j = {{"policy", policy_name(pk)},
                          {"predicted_ms", r.makespan_ms},
                          {"integer_busy_share", ib},
                          {"integer_bubble_share", rep.int_bubble_share},
                          {"float_busy_share", fb},
                          {"processors", a.processors},
                          {"prompt", a.prompt},
                          {"chunk", a.chunk},
                          {"subgraphs", g.size()},
                          {"model", label},
                          {"profile", a.profile}};
      if (pk == PolicyKind::kOoo) j["ran"] = policy_name(plan);
      std::printf("%s\n", j.dump().c_str());
    } else {
      const std::string name = pk == PolicyKind::kOoo
                                   ? std::string("ooo>") + policy_name(plan)
                                   : std::string(policy_name(pk));
      std::printf("%-17s %13.1f %10.1f%% %10.1f%% %12.1f%%\n", name.c_str(), r.makespan_ms,
                  100 * ib, 100 * fb, 100 * rep.int_bubble_share);
    }
    if (!a.no_gantt || !a.trace.empty()) {
      const std::string suffix = pols.size() > 1 ? std::string("-") + policy_name(pk) : "";
      auto with_suffix = [&](const std::string& p, const char* ext) {
        std::filesystem::path fp(p);
        return (fp.parent_path() / (fp.stem().string() + suffix + ext)).string();
      };
      std::string tr = a.trace.empty()
                           ? (std::filesystem::temp_directory_path() /
                              ("octet-sim-" + std::to_string(getpid()) + ".json")).string()
                           : with_suffix(a.trace, ".json");
      const std::string title = fmt::format("simulated {} on {}: {} prompt {}, {}", policy_name(pk),
                                            a.processors, label, a.prompt, prof->device);
      if (Status st = write_trace(tr, g, *procs, r.slices, title); !st.ok()) cli::fail(st.message());
      if (!a.no_gantt) {
        const std::string png = with_suffix(a.gantt, ".png");
        if (cli::render_gantt(tr, png)) {
          if (!a.json) std::printf("  gantt: %s\n", png.c_str());
        } else {
          std::fprintf(stderr, "octet: could not render %s (needs the venv's matplotlib)\n",
                       png.c_str());
        }
      }
      if (a.trace.empty()) std::filesystem::remove(tr);
    }
  }
  if (!a.json && inorder_ms > 0 && ooo_ms > 0)
    std::printf("ooo vs inorder: %+.1f%% latency\n", 100 * (ooo_ms / inorder_ms - 1));
  if (!a.json && inorder_ms > 0 && greedy_ms > 0)
    std::printf("greedy vs inorder: %+.1f%% latency\n", 100 * (greedy_ms / inorder_ms - 1));
  if (a.optimum) {
    bool exact = false;
    const auto t0 = std::chrono::steady_clock::now();
    const SimResult best = optimum(g, *procs, *prof, a.max_nodes, &exact);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const SimResult ooo = simulate(g, *procs, *prof, PolicyKind::kOoo);
    const SimResult greedy = simulate(g, *procs, *prof, PolicyKind::kGreedy);
    // A lower bound no schedule beats: the busiest processor's total work.
    const double lb = *std::max_element(ooo.busy_ms.begin(), ooo.busy_ms.end());
    if (a.json) {
      std::printf("%s\n", nlohmann::json{{"policy", "optimum"},
                                         {"predicted_ms", best.makespan_ms},
                                         {"exact", exact},
                                         {"ooo_gap", ooo.makespan_ms / best.makespan_ms - 1},
                                         {"greedy_gap", greedy.makespan_ms / best.makespan_ms - 1},
                                         {"search_s", s},
                                         {"lower_bound_ms", lb}}
                              .dump()
                              .c_str());
    } else {
      std::printf("%-17s %13.1f   (%s, %.1f s); ooo is %+.2f%% above it, greedy %+.2f%%; "
                  "busiest processor's work (a lower bound) %.1f ms\n",
                  "optimum", best.makespan_ms,
                  exact ? "branch and bound, exact" : "search cut off: best found", s,
                  100 * (ooo.makespan_ms / best.makespan_ms - 1),
                  100 * (greedy.makespan_ms / best.makespan_ms - 1), lb);
    }
  }
}

}  // namespace

static void register_sim(CLI::App& app) {
  auto a = std::make_shared<SimArgs>();
  auto* cmd = app.add_subcommand("sim", "Simulate scheduled prefill on a device profile");
  cmd->add_option("-m,--model", a->model, "model file/name, or a synthetic shape name");
  cmd->add_option("--profile", a->profile, "device profile JSON")->required();
  cmd->add_option("--prompt", a->prompt, "prompt tokens")->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--chunk", a->chunk, "chunk size")->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  cmd->add_option("--arenas", a->arenas, "chunk arenas (chunks in flight)")->check(CLI::Range(1, 64));
  cmd->add_option("--policy", a->policy, "sequential, inorder, greedy, ooo, critical or all")
      ->check(CLI::IsMember({"sequential", "inorder", "greedy", "ooo", "critical", "all"}));
  cmd->add_option("--processors", a->processors, "e.g. int8:1,float:1 or shared:2");
  cmd->add_option("--lag", a->lag, "inorder: subgraphs chunk i+1 trails chunk i (0: tightest)");
  cmd->add_option("--layers", a->layers, "use only the first N layers (small DAGs for --optimum)");
  cmd->add_option("--gantt", a->gantt, "Gantt chart PNG (-POLICY appended for --policy all)");
  cmd->add_flag("--no-gantt", a->no_gantt, "no PNG");
  cmd->add_option("--trace", a->trace, "also write the simulated Chrome trace");
  cmd->add_flag("--optimum", a->optimum, "branch-and-bound optimum (small DAGs) and ooo's / greedy's gap");
  cmd->add_option("--max-nodes", a->max_nodes, "search limit of --optimum");
  cmd->add_flag("--json", a->json, "one JSON object per policy");
  cmd->callback([a] { run(*a); });
}
OCTET_COMMAND("sim", register_sim);
