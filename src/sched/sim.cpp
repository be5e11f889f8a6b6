// Discrete-event simulator (the same Policy objects as the executor) and a branch-and-bound
// optimum over active schedules, to measure the greedy's gap on small DAGs.
#include <algorithm>
#include <functional>
#include <limits>
#include <queue>
#include <tuple>

#include "octet/sched.h"

namespace octet::sched {

namespace {
// Processor time of every node: its cost plus the per-subgraph dispatch overhead.
std::vector<double> durations(const Graph& g, const std::vector<double>& cost,
                              const Profile& prof) {
  std::vector<double> d(g.size());
  for (size_t i = 0; i < g.size(); ++i) d[i] = cost[i] + prof.dispatch_ms;
  return d;
}
// Hand-off latency of edge p -> n: a result crossing processors is visible handoff_ms after
// it is produced (a wake-up / sync). It delays the consumer's start but occupies no
// processor, so it is hidden whenever the consumer's processor is busy anyway.
inline double edge_delay(const std::vector<int>& where, int32_t p, int32_t n, double handoff) {
  return where[p] != where[n] ? handoff : 0.0;
}
}  // namespace

SimResult simulate(const Graph& g, const std::vector<ProcessorSpec>& procs, const Profile& prof,
                   PolicyKind pk) {
  const std::vector<int> where = assign(g, procs);
  const std::vector<double> cost = node_costs(g, procs, where, prof);
  const std::vector<double> dur = durations(g, cost, prof);
  auto policy = make_policy(pk, g, where, cost, prof.dispatch_ms, prof.handoff_ms);
  return simulate_policy(g, where, procs.size(), dur, prof.handoff_ms, *policy);
}

SimResult simulate_policy(const Graph& g, const std::vector<int>& where, size_t n_procs,
                          const std::vector<double>& dur, double handoff_ms, Policy& pol) {
  Policy* policy = &pol;
  const size_t P = n_procs;
  std::vector<int32_t> remaining(g.size());
  std::vector<double> avail(g.size(), 0.0);  // when all inputs are visible
  std::vector<std::vector<int32_t>> ready(P);
  for (size_t i = 0; i < g.size(); ++i) {
    remaining[i] = int32_t(g.nodes[i].preds.size());
    if (!remaining[i]) ready[where[i]].push_back(int32_t(i));
  }
  std::vector<int32_t> running(P, -1);
  // Events: (time, kind, node); kind 0 = a node ends, 1 = a node's inputs become visible.
  // Ends first at equal times, so a processor is free before anyone is offered work.
  using Ev = std::tuple<double, int, int32_t>;
  std::priority_queue<Ev, std::vector<Ev>, std::greater<Ev>> events;
  SimResult r;
  r.busy_ms.assign(P, 0.0);
  std::vector<double> start(g.size(), 0.0);
  double t = 0;
  size_t done = 0;
  while (true) {
    for (bool progress = true; progress;) {
      progress = false;
      for (size_t p = 0; p < P; ++p) {
        if (running[p] >= 0) continue;
        const int32_t n = policy->pick(int(p), ready[p]);
        if (n < 0) continue;
        ready[p].erase(std::find(ready[p].begin(), ready[p].end(), n));
        policy->started(n);
        running[p] = n;
        start[n] = t;
        events.push({t + dur[n], 0, n});
        progress = true;
      }
    }
    if (events.empty()) break;
    const auto [te, kind, n] = events.top();
    events.pop();
    t = te;
    if (kind == 1) {
      auto& q = ready[where[n]];
      q.insert(std::upper_bound(q.begin(), q.end(), n), n);
      continue;
    }
    const int p = where[n];
    running[p] = -1;
    r.busy_ms[p] += dur[n];
    r.slices.push_back({n, p, start[n], te});
    ++done;
    policy->finished(n);
    for (int32_t s : g.nodes[n].succs) {
      avail[s] = std::max(avail[s], te + edge_delay(where, n, s, handoff_ms));
      if (--remaining[s] == 0) events.push({avail[s], 1, s});
    }
  }
  r.makespan_ms = t;
  if (done != g.size()) r.makespan_ms = std::numeric_limits<double>::infinity();  // stuck
  return r;
}

SimResult optimum(const Graph& g, const std::vector<ProcessorSpec>& procs, const Profile& prof,
                  int64_t max_nodes, bool* exact) {
  const std::vector<int> where = assign(g, procs);
  const std::vector<double> cost = node_costs(g, procs, where, prof);
  const std::vector<double> dur = durations(g, cost, prof);
  const size_t N = g.size(), P = procs.size();
  // tail[n]: longest path from n's start to the end (its own duration included).
  std::vector<double> tail(N, 0.0);
  for (size_t i = N; i-- > 0;) {
    double t = 0;
    for (int32_t s : g.nodes[i].succs)
      t = std::max(t, tail[s] + edge_delay(where, int32_t(i), s, prof.handoff_ms));
    tail[i] = dur[i] + t;
  }
  // Upper bound: the best policy schedule.
  SimResult best;
  best.makespan_ms = std::numeric_limits<double>::infinity();
  for (PolicyKind pk : {PolicyKind::kSequential, PolicyKind::kInOrder, PolicyKind::kOoo,
                        PolicyKind::kCritical, PolicyKind::kGreedy}) {
    SimResult r = simulate(g, procs, prof, pk);
    if (r.makespan_ms < best.makespan_ms) best = r;
  }
  std::vector<double> end(N, -1.0), st(N, 0.0), free_at(P, 0.0), left(P, 0.0);
  for (size_t i = 0; i < N; ++i) left[where[i]] += dur[i];
  std::vector<int32_t> order;
  int64_t visited = 0;
  bool complete = true;
  std::function<void(size_t)> dfs = [&](size_t n_done) {
    if (++visited > max_nodes) {
      complete = false;
      return;
    }
    if (n_done == N) {
      double ms = 0;
      for (double e : end) ms = std::max(ms, e);
      if (ms < best.makespan_ms - 1e-12) {
        best.makespan_ms = ms;
        best.slices.clear();
        best.busy_ms.assign(P, 0.0);
        for (int32_t n : order) {
          best.slices.push_back({n, where[n], st[n], end[n]});
          best.busy_ms[where[n]] += dur[n];
        }
      }
      return;
    }
    // Schedulable nodes, their earliest start; and the bound.
    double lb = 0;
    for (size_t p = 0; p < P; ++p) lb = std::max(lb, free_at[p] + left[p]);
    int32_t star = -1;
    double star_ec = std::numeric_limits<double>::infinity();
    std::vector<std::pair<int32_t, double>> cand;
    for (size_t i = 0; i < N; ++i) {
      if (end[i] >= 0) continue;
      double es = free_at[where[i]];
      bool ok = true;
      for (int32_t p : g.nodes[i].preds) {
        if (end[p] < 0) {
          ok = false;
          break;
        }
        es = std::max(es, end[p] + edge_delay(where, p, int32_t(i), prof.handoff_ms));
      }
      if (!ok) continue;
      lb = std::max(lb, es + tail[i]);
      cand.push_back({int32_t(i), es});
      if (es + dur[i] < star_ec) {
        star_ec = es + dur[i];
        star = int32_t(i);
      }
    }
    if (lb >= best.makespan_ms - 1e-12) return;
    // Giffler-Thompson: branch on the nodes of star's processor that could start before star
    // completes (every active schedule, hence an optimal one, is reachable).
    const int ps = where[star];
    std::vector<std::pair<int32_t, double>> conflict;
    for (const auto& [i, es] : cand)
      if (where[i] == ps && es < star_ec - 1e-12) conflict.push_back({i, es});
    std::sort(conflict.begin(), conflict.end(),
              [](const auto& a, const auto& b) { return a.second < b.second; });
    for (const auto& [i, es] : conflict) {
      const double old_free = free_at[ps];
      st[i] = es;
      end[i] = es + dur[i];
      free_at[ps] = end[i];
      left[ps] -= dur[i];
      order.push_back(i);
      dfs(n_done + 1);
      order.pop_back();
      left[ps] += dur[i];
      free_at[ps] = old_free;
      end[i] = -1.0;
      if (!complete) return;
    }
  };
  dfs(0);
  if (exact) *exact = complete;
  std::sort(best.slices.begin(), best.slices.end(),
            [](const Slice& a, const Slice& b) { return a.end_ms < b.end_ms; });
  return best;
}

}  // namespace octet::sched
