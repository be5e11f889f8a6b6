// The subgraph DAG of a chunked prefill, processor specs and the policies (shared by the real
// executor and the simulator).
#include <algorithm>
#include <fmt/format.h>
#include <limits>
#include <sstream>

#include "octet/sched.h"

namespace octet::sched {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kPrologue: return "prologue";
    case Kind::kQkv: return "qkv";
    case Kind::kAttn: return "attn";
    case Kind::kO: return "o";
    case Kind::kMid: return "mid";
    case Kind::kGateUp: return "gate_up";
    case Kind::kAct: return "act";
    case Kind::kDown: return "down";
    case Kind::kResid: return "resid";
    case Kind::kHead: return "head";
  }
  return "?";
}

Unit kind_unit(Kind k) {
  switch (k) {
    case Kind::kQkv: case Kind::kO: case Kind::kGateUp: case Kind::kDown: case Kind::kHead:
      return Unit::kInt;
    default:
      return Unit::kFloat;
  }
}

Graph build_graph(const HParams& hp, int64_t n_tokens, int64_t pos0, const GraphOptions& opt) {
  Graph g;
  const int64_t C = std::max<int64_t>(1, opt.chunk);
  g.n_chunks = (n_tokens + C - 1) / C;
  g.n_layers = hp.n_layer;
  g.arenas = std::max<int64_t>(1, opt.arenas);
  g.inorder_lag = std::max<int64_t>(0, opt.inorder_lag);
  const double E = double(hp.n_embd), Q = double(hp.q_dim()), KV = double(hp.kv_dim());
  const double F = double(hp.n_ff), QKV = Q + 2 * KV, V = double(hp.n_vocab);
  std::vector<int32_t> chunk_last(static_cast<size_t>(g.n_chunks), -1);
  std::vector<int32_t> prev_attn(static_cast<size_t>(hp.n_layer), -1);
  auto add = [&](Node n, int32_t pred) {
    n.unit = kind_unit(n.kind);
    const int32_t id = static_cast<int32_t>(g.nodes.size());
    if (pred >= 0) n.preds.push_back(pred);
    g.nodes.push_back(std::move(n));
    return id;
  };
  for (int64_t c = 0; c < g.n_chunks; ++c) {
    const int64_t m = std::min(C, n_tokens - c * C), p0 = pos0 + c * C;
    const double md = double(m);
    Node base;
    base.chunk = static_cast<int32_t>(c);
    base.m = m;
    base.pos0 = p0;
    auto mk = [&](Kind k, int64_t layer, double x, double y) {
      Node n = base;
      n.kind = k;
      n.layer = static_cast<int32_t>(layer);
      n.x = x;
      n.y = y;
      return n;
    };
    // Chunk c reuses the arena of chunk c - arenas: it starts after that chunk's last node.
    const int32_t arena_dep = c >= g.arenas ? chunk_last[c - g.arenas] : -1;
    int32_t last = add(mk(Kind::kPrologue, 0, md * E, 0), arena_dep);
    for (int64_t l = 0; l < hp.n_layer; ++l) {
      // Keys each row sees (sliding-window layers see at most `window`).
      const bool swa = hp.sliding_window > 0 && l < int64_t(hp.layer_is_swa.size()) &&
                       hp.layer_is_swa[l];
      double keys = 0;
      for (int64_t i = 0; i < m; ++i) {
        const int64_t k = p0 + i + 1;
        keys += double(swa ? std::min(k, hp.sliding_window) : k);
      }
      last = add(mk(Kind::kQkv, l, md * E * QKV, 0), last);
      const int32_t attn = add(mk(Kind::kAttn, l, md * QKV, keys * Q), last);
      // Attention reads the KV that earlier chunks wrote at this layer. The same chain also
      // keeps a sliding-window layer's ring (window + chunk slots) safe: chunk i+1 writes its
      // KV (in its attention node) only after chunk i's attention has read the slots it reuses.
      if (prev_attn[l] >= 0) g.nodes[attn].preds.push_back(prev_attn[l]);
      prev_attn[l] = attn;
      last = add(mk(Kind::kO, l, md * Q * E, 0), attn);
      last = add(mk(Kind::kMid, l, md * E, 0), last);
      last = add(mk(Kind::kGateUp, l, md * E * 2 * F, 0), last);
      last = add(mk(Kind::kAct, l, md * F, 0), last);
      last = add(mk(Kind::kDown, l, md * F * E, 0), last);
      last = add(mk(Kind::kResid, l, md * E, 0), last);
    }
    const bool is_last = c + 1 == g.n_chunks;
    if (opt.logits && (opt.all_logits || is_last)) {
      const double rows = opt.all_logits ? md : 1;
      last = add(mk(Kind::kHead, hp.n_layer, rows * E * V, 0), last);
    }
    chunk_last[c] = last;
  }
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int32_t p : g.nodes[i].preds) g.nodes[p].succs.push_back(static_cast<int32_t>(i));
  return g;
}

Status validate(const Graph& g) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    for (int32_t p : n.preds) {
      if (p < 0 || size_t(p) >= i)
        return Status::Error(fmt::format("node {} has predecessor {} (not topological)", i, p));
      const auto& s = g.nodes[p].succs;
      if (std::count(s.begin(), s.end(), int32_t(i)) != 1)
        return Status::Error(fmt::format("edge {}->{} not mirrored", p, i));
    }
    if (n.unit != kind_unit(n.kind)) return Status::Error("unit does not match kind");
  }
  return Status::Ok();
}

// ---- Processors ---------------------------------------------------------------------------

Expected<std::vector<ProcessorSpec>> parse_processors(const std::string& s, int n_cores) {
  std::vector<ProcessorSpec> out;
  std::stringstream ss(s);
  std::string item;
  int next_core = 0;
  bool has_int = false, has_float = false;
  while (std::getline(ss, item, ',')) {
    const auto colon = item.find(':');
    ProcessorSpec p;
    p.name = item.substr(0, colon);
    p.threads = 1;
    if (colon != std::string::npos) {
      try {
        size_t used = 0;
        p.threads = std::stoi(item.substr(colon + 1), &used);
        if (used != item.size() - colon - 1) throw std::invalid_argument("trailing");
      } catch (...) {
        return Status::Error("--processors: bad thread count in '" + item + "'");
      }
    }
    if (p.threads < 1 || p.threads > 256)
      return Status::Error("--processors: thread count must be 1..256 in '" + item + "'");
    if (p.name == "int8") p.runs_int = true;
    else if (p.name == "float") p.runs_float = true;
    else if (p.name == "shared") p.runs_int = p.runs_float = true;
    else
      return Status::Error("--processors: unknown processor '" + p.name +
                           "' (use int8:N,float:N or shared:N)");
    for (int t = 0; t < p.threads; ++t) p.cores.push_back(n_cores > 0 ? next_core++ % n_cores : -1);
    has_int = has_int || p.runs_int;
    has_float = has_float || p.runs_float;
    out.push_back(std::move(p));
  }
  if (out.empty()) return Status::Error("--processors: empty");
  if (!has_int || !has_float)
    return Status::Error("--processors '" + s + "': need a processor for integer and for float "
                         "subgraphs");
  return out;
}

std::string processors_string(const std::vector<ProcessorSpec>& p) {
  std::string s;
  for (const auto& x : p) s += (s.empty() ? "" : ",") + x.name + ":" + std::to_string(x.threads);
  return s;
}

std::vector<int> assign(const Graph& g, const std::vector<ProcessorSpec>& procs) {
  std::vector<int> w(g.size(), 0);
  for (size_t i = 0; i < g.size(); ++i)
    for (size_t p = 0; p < procs.size(); ++p)
      if (g.nodes[i].unit == Unit::kInt ? procs[p].runs_int : procs[p].runs_float) {
        w[i] = static_cast<int>(p);
        break;
      }
  return w;
}

// ---- Policies ----------------------------------------------------------------------------

Expected<PolicyKind> parse_policy(const std::string& s) {
  if (s == "sequential") return PolicyKind::kSequential;
  if (s == "inorder") return PolicyKind::kInOrder;
  if (s == "ooo") return PolicyKind::kOoo;
  if (s == "critical") return PolicyKind::kCritical;
  if (s == "greedy") return PolicyKind::kGreedy;
  return Status::Error("unknown policy '" + s +
                       "' (sequential, inorder, ooo, greedy or critical)");
}

const char* policy_name(PolicyKind p) {
  switch (p) {
    case PolicyKind::kSequential: return "sequential";
    case PolicyKind::kInOrder: return "inorder";
    case PolicyKind::kOoo: return "ooo";
    case PolicyKind::kCritical: return "critical";
    case PolicyKind::kGreedy: return "greedy";
  }
  return "?";
}

namespace {

// One subgraph at a time, in chunk-major order: today's execution, split into nodes.
class Sequential final : public Policy {
 public:
  int32_t pick(int, std::span<const int32_t> ready) override {
    if (running_) return -1;
    for (int32_t r : ready)
      if (r == next_) return r;
    return -1;
  }
  void started(int32_t) override {
    running_ = true;
    ++next_;
  }
  void finished(int32_t) override { running_ = false; }

 private:
  int32_t next_ = 0;
  bool running_ = false;
};

// In-order overlap (llm.npu's baseline): every processor runs its subgraphs in one fixed
// order in which chunk i+1 trails chunk i by `lag` subgraphs, waiting for the next one in that
// order even when others are ready. key = index in chunk + lag·chunk. lag = ceil(J / arenas)
// (J subgraphs per chunk) is the smallest that keeps the order topological when chunk
// i+arenas must wait for chunk i's arena; one topological order shared by all processors
// cannot deadlock. With arenas >= chunks there are no arena edges and lag is 1: the
// tightest pipeline. GraphOptions::inorder_lag asks for a coarser stagger (lag >= J:
// chunk-major, i.e. each processor finishes chunk i's subgraphs before chunk i+1's).
class InOrder final : public Policy {
 public:
  InOrder(const Graph& g, const std::vector<int>& where) {
    int np = 0;
    for (int w : where) np = std::max(np, w + 1);
    std::vector<int64_t> first(static_cast<size_t>(g.n_chunks), -1), len(first.size(), 0);
    for (size_t i = 0; i < g.size(); ++i) {
      const auto c = static_cast<size_t>(g.nodes[i].chunk);
      if (first[c] < 0) first[c] = int64_t(i);
      ++len[c];
    }
    const int64_t J = len.empty() ? 1 : *std::max_element(len.begin(), len.end());
    const int64_t min_lag =
        g.n_chunks <= g.arenas ? 1 : std::max<int64_t>(1, (J + g.arenas - 1) / g.arenas);
    const int64_t lag = std::max(min_lag, g.inorder_lag);  // a larger lag stays topological
    std::vector<std::pair<int64_t, int32_t>> keyed;
    for (size_t i = 0; i < g.size(); ++i) {
      const int64_t c = g.nodes[i].chunk;
      keyed.push_back({(int64_t(i) - first[c] + lag * c) * (g.n_chunks + 1) + c, int32_t(i)});
    }
    std::sort(keyed.begin(), keyed.end());
    queue_.resize(static_cast<size_t>(np));
    for (const auto& [k, i] : keyed) queue_[where[i]].push_back(i);
    head_.assign(queue_.size(), 0);
  }
  int32_t pick(int proc, std::span<const int32_t> ready) override {
    const auto& q = queue_[proc];
    if (head_[proc] >= q.size()) return -1;
    const int32_t want = q[head_[proc]];
    for (int32_t r : ready)
      if (r == want) return r;
    return -1;
  }
  void started(int32_t n) override {
    for (size_t p = 0; p < queue_.size(); ++p)
      if (head_[p] < queue_[p].size() && queue_[p][head_[p]] == n) ++head_[p];
  }

 private:
  std::vector<std::vector<int32_t>> queue_;
  std::vector<size_t> head_;
};

// llm.npu §3.4: among the ready subgraphs, pick the largest C(g) = ±Σ_{s∈S} T(s), S being the
// subgraphs that g's completion makes ready (successors whose only unfinished predecessor is
// g); + for a float candidate, − for an integer one. Ties go to the earliest node.
// (PolicyKind::kGreedy; kOoo runs it only when the simulator predicts it wins.)
class Greedy final : public Policy {
 public:
  Greedy(const Graph& g, const std::vector<double>& costs) : g_(g), cost_(costs) {
    remaining_.resize(g.size());
    for (size_t i = 0; i < g.size(); ++i) remaining_[i] = int32_t(g.nodes[i].preds.size());
  }
  int32_t pick(int, std::span<const int32_t> ready) override {
    int32_t best = -1;
    double best_c = -std::numeric_limits<double>::infinity();
    for (int32_t r : ready) {
      double t = 0;
      for (int32_t s : g_.nodes[r].succs)
        if (remaining_[s] == 1) t += cost_[s];
      const double c = g_.nodes[r].unit == Unit::kFloat ? t : -t;
      if (c > best_c || (c == best_c && r < best)) {
        best_c = c;
        best = r;
      }
    }
    return best;
  }
  void finished(int32_t n) override {
    for (int32_t s : g_.nodes[n].succs) --remaining_[s];
  }

 private:
  const Graph& g_;
  const std::vector<double>& cost_;
  std::vector<int32_t> remaining_;
};

// Longest remaining path first: rank(n) = T(n) + max over successors of rank(s). A chunk's
// attention leads, through the next chunk's attention, to every later chunk, so early chunks
// are not starved and later ones not left to run alone at the end.
class Critical final : public Policy {
 public:
  Critical(const Graph& g, const std::vector<double>& costs) : rank_(g.size(), 0.0) {
    for (size_t i = g.size(); i-- > 0;) {
      double r = 0;
      for (int32_t s : g.nodes[i].succs) r = std::max(r, rank_[s]);
      rank_[i] = costs[i] + r;
    }
  }
  int32_t pick(int, std::span<const int32_t> ready) override {
    int32_t best = -1;
    for (int32_t r : ready)
      if (best < 0 || rank_[r] > rank_[best]) best = r;
    return best;
  }

 private:
  std::vector<double> rank_;
};

}  // namespace

std::unique_ptr<Policy> make_policy(PolicyKind k, const Graph& g, const std::vector<int>& where,
                                    const std::vector<double>& costs, double dispatch_ms,
                                    double handoff_ms) {
  switch (k) {
    case PolicyKind::kSequential: return std::make_unique<Sequential>();
    case PolicyKind::kInOrder: return std::make_unique<InOrder>(g, where);
    case PolicyKind::kGreedy: return std::make_unique<Greedy>(g, costs);
    case PolicyKind::kCritical: return std::make_unique<Critical>(g, costs);
    case PolicyKind::kOoo:
      return make_policy(plan_ooo(g, where, costs, dispatch_ms, handoff_ms), g, where, costs);
  }
  return nullptr;
}

// Plan-then-run: the greedy's one-step rule can starve the last chunk (docs/scheduler.md), so
// simulate it against list scheduling by longest path and the in-order pipeline with the same
// costs, and run the fastest. Deterministic, so simulate(kOoo) equals the chosen one's run.
PolicyKind plan_ooo(const Graph& g, const std::vector<int>& where,
                    const std::vector<double>& costs, double dispatch_ms, double handoff_ms,
                    std::vector<std::pair<PolicyKind, double>>* predicted) {
  size_t np = 0;
  for (int w : where) np = std::max(np, size_t(w) + 1);
  std::vector<double> dur(costs);
  for (double& d : dur) d += dispatch_ms;
  PolicyKind best = PolicyKind::kInOrder;
  double best_ms = std::numeric_limits<double>::infinity();
  if (predicted) predicted->clear();
  // In-order first: an out-of-order candidate must be predicted strictly faster to replace it
  // (with one chunk, or two, they often tie: then the plain pipeline runs).
  for (PolicyKind c : {PolicyKind::kInOrder, PolicyKind::kGreedy, PolicyKind::kCritical}) {
    auto pol = make_policy(c, g, where, costs);
    const double ms = simulate_policy(g, where, np, dur, handoff_ms, *pol).makespan_ms;
    if (predicted) predicted->push_back({c, ms});
    if (ms < best_ms) {
      best_ms = ms;
      best = c;
    }
  }
  return best;
}

}  // namespace octet::sched
