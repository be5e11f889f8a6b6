// Out-of-order subgraph scheduling of chunked prefill across an integer and a float processor
// (DESIGN.md idea 3; llm.npu, arXiv 2407.05858 §3.4). A prompt's chunks are split, layer by
// layer, into integer subgraphs (the int8 linears with their activation quantisation and
// shadow-outlier path) and float subgraphs (norms, RoPE, KV write, attention, activations,
// residuals). The DAG, the policies and the cost model here are shared by the real executor
// (src/sched/exec.cpp, Session::eval_scheduled) and the discrete-event simulator (sim.cpp), so
// a policy is the same code whether it drives threads or simulated processors.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "octet/model.h"
#include "octet/status.h"

namespace octet::sched {

enum class Unit : uint8_t { kInt, kFloat };

// Per chunk: kPrologue (embeddings, RoPE tables, layer 0's attn norm), then per layer the
// eight subgraphs below (kResid also holds the next layer's attn norm), then kHead (output
// norm + LM head) when the chunk needs logits.
enum class Kind : uint8_t { kPrologue, kQkv, kAttn, kO, kMid, kGateUp, kAct, kDown, kResid, kHead };
constexpr int kKinds = 10;
const char* kind_name(Kind k);
Unit kind_unit(Kind k);

struct Node {
  int32_t chunk = 0, layer = 0;
  Kind kind = Kind::kPrologue;
  Unit unit = Unit::kFloat;
  int64_t m = 0, pos0 = 0;        // rows of the chunk and its first position
  double x = 0, y = 0;            // cost features (see CostModel)
  std::vector<int32_t> preds, succs;
};

struct GraphOptions {
  int64_t chunk = 512;  // = SessionOptions::chunk
  int64_t arenas = 4;        // chunks in flight (each has its own activation buffers)
  bool all_logits = false;   // kHead on every chunk, else only on the last
  bool logits = true;        // false: no kHead at all
  int64_t inorder_lag = 0;   // subgraphs chunk i+1 trails chunk i under `inorder` (0: tightest)
};

// Node ids are in chunk-major topological order (the sequential order).
struct Graph {
  std::vector<Node> nodes;
  int64_t n_chunks = 0, n_layers = 0, arenas = 0, inorder_lag = 0;
  size_t size() const { return nodes.size(); }
};

// Builds the DAG for n_tokens prompt tokens starting at position pos0.
Graph build_graph(const HParams& hp, int64_t n_tokens, int64_t pos0, const GraphOptions& opt);
// Checks the structural invariants (acyclic, ids topological, preds/succs mirrored).
Status validate(const Graph& g);

// ---- Processors ---------------------------------------------------------------------------
struct ProcessorSpec {
  std::string name;     // "int8", "float" or "shared"
  bool runs_int = false, runs_float = false;
  int threads = 1;
  std::vector<int> cores;  // pinned cores (empty: not pinned)
};
// "int8:1,float:1" or "shared:2" (threads per processor); cores are given out in order.
Expected<std::vector<ProcessorSpec>> parse_processors(const std::string& s, int n_cores);
std::string processors_string(const std::vector<ProcessorSpec>& p);
// Processor index that runs node n (the first processor whose units include n's unit).
std::vector<int> assign(const Graph& g, const std::vector<ProcessorSpec>& procs);

// ---- Cost model / device profile ----------------------------------------------------------
// ms = a + b·x + c·y per kind per processor class. Features x, y per kind:
//   GEMMs (kQkv, kO, kGateUp, kDown, kHead): x = M·K·N, y = 0.
//   kAttn: x = m·(q_dim + 2·kv_dim) (bias, q/k norm, RoPE, KV write), y = Σ_rows keys·q_dim.
//   other float kinds: x = m·width (n_embd or n_ff), y = 0.
struct KindCost {
  double a = 0, b = 0, c = 0;
  double ms(double x, double y) const { return a + b * x + c * y; }
};
struct ProcessorCost {
  KindCost kind[kKinds];
};
struct Profile {
  std::string device, source;
  // Keyed by processor class: "int8", "float", or "shared:N" for the shared configuration.
  std::vector<std::pair<std::string, ProcessorCost>> procs;
  double dispatch_ms = 0;   // per subgraph (scheduler overhead)
  double handoff_ms = 0;    // latency of a result crossing processors (delays, not occupies)
  std::string notes;        // provenance (numbers and where they come from)
  const ProcessorCost* find(const ProcessorSpec& p) const;
  Status save(const std::string& path) const;
  static Expected<Profile> load(const std::string& path);
};
// Estimated ms of every node on the processor `assign` gives it (for the policies).
std::vector<double> node_costs(const Graph& g, const std::vector<ProcessorSpec>& procs,
                               const std::vector<int>& where, const Profile& prof);
// A rough model when no profile exists: cost proportional to multiply-adds (int at 4x the
// float rate). Only the policies' relative estimates depend on it.
Profile proxy_profile();

// One measured subgraph, for fitting profiles and traces.
struct Slice {
  int32_t node = 0, proc = 0;
  double start_ms = 0, end_ms = 0;
};
// Least-squares fit of each kind's (a, b, c) from measured slices of one processor class.
ProcessorCost fit_costs(const Graph& g, const std::vector<Slice>& s, int proc);

// ---- Policies ----------------------------------------------------------------------------
// kGreedy is the paper's C(g) greedy as the issue states it. kOoo, the default out-of-order
// policy, plans with the simulator: it simulates kGreedy, kCritical and kInOrder on the same
// DAG with the profiled costs and runs whichever predicts the shortest makespan, so it is
// never predicted slower than the in-order pipeline (the greedy alone can be: docs/scheduler.md).
// kCritical is not from the paper: classic list scheduling by longest remaining path (the
// "upward rank" of HEFT) with the same profiled costs.
enum class PolicyKind { kSequential, kInOrder, kOoo, kCritical, kGreedy };
Expected<PolicyKind> parse_policy(const std::string& s);
const char* policy_name(PolicyKind p);

// Called under the scheduler's lock by whichever processor is free; picks one of `ready`
// (nodes whose predecessors are done and that processor `proc` runs) or returns -1 to wait.
class Policy {
 public:
  virtual ~Policy() = default;
  virtual int32_t pick(int proc, std::span<const int32_t> ready) = 0;
  virtual void started(int32_t) {}
  virtual void finished(int32_t) {}
};
// costs: node_costs(); dispatch_ms / handoff_ms: the profile's overheads (kOoo's planning
// simulations use them).
std::unique_ptr<Policy> make_policy(PolicyKind k, const Graph& g, const std::vector<int>& where,
                                    const std::vector<double>& costs, double dispatch_ms = 0,
                                    double handoff_ms = 0);
// kOoo's plan: the candidate policy (kInOrder, kGreedy or kCritical, ties in that order) with
// the smallest simulated makespan; `predicted` (optional) gets each candidate's makespan.
PolicyKind plan_ooo(const Graph& g, const std::vector<int>& where,
                    const std::vector<double>& costs, double dispatch_ms, double handoff_ms,
                    std::vector<std::pair<PolicyKind, double>>* predicted = nullptr);

// ---- Simulator ----------------------------------------------------------------------------
struct SimResult {
  double makespan_ms = 0;
  std::vector<Slice> slices;
  std::vector<double> busy_ms;   // per processor
};
// Discrete-event run of the DAG with the same Policy objects the executor uses. A node
// occupies its processor for dispatch + its cost, and may start handoff_ms after a
// predecessor on another processor ends (a latency, hidden when the processor is busy).
SimResult simulate(const Graph& g, const std::vector<ProcessorSpec>& procs, const Profile& prof,
                   PolicyKind pk);
// The same simulation with explicit node durations (cost + dispatch), processor assignment,
// hand-off latency and a policy object (used by kOoo's planner).
SimResult simulate_policy(const Graph& g, const std::vector<int>& where, size_t n_procs,
                          const std::vector<double>& dur, double handoff_ms, Policy& policy);
// Branch and bound over active schedules (optimal makespan for these durations); gives up
// after max_nodes search nodes and returns the best found (*exact = false).
SimResult optimum(const Graph& g, const std::vector<ProcessorSpec>& procs, const Profile& prof,
                  int64_t max_nodes, bool* exact);

// ---- Reports ------------------------------------------------------------------------------
struct Report {
  double makespan_ms = 0;
  std::vector<double> busy_share;    // per processor
  double int_bubble_ms = 0, int_bubble_share = 0;  // idle time of the integer processor
};
Report report(const Graph& g, const std::vector<ProcessorSpec>& procs,
              const std::vector<Slice>& s);
// Chrome / Perfetto trace: one track per processor, one slice per subgraph.
Status write_trace(const std::string& path, const Graph& g,
                   const std::vector<ProcessorSpec>& procs, const std::vector<Slice>& s,
                   const std::string& title);

// Options of a scheduled prefill (Session::eval_scheduled).
struct RunOptions {
  std::vector<ProcessorSpec> procs;
  PolicyKind policy = PolicyKind::kOoo;
  int64_t arenas = 4;
  int64_t inorder_lag = 0;            // 0: the tightest the arenas allow
  const Profile* profile = nullptr;   // null: proxy_profile()
  bool pin = true;
  std::vector<Slice>* trace = nullptr;  // filled with every node's processor and times
  Graph* graph_out = nullptr;           // the DAG that ran (for reports)
  PolicyKind* ran = nullptr;            // the policy that ran (for kOoo: its plan)
};

}  // namespace octet::sched
