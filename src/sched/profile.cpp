// Device profiles (per-kind cost models per processor class), fitting them from measured
// slices, reports and Chrome traces.
#include <algorithm>
#include <array>
#include <cmath>
#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>

#include "octet/sched.h"

namespace octet::sched {

const ProcessorCost* Profile::find(const ProcessorSpec& p) const {
  const std::string full = p.name + ":" + std::to_string(p.threads);
  for (const auto& [k, v] : procs)
    if (k == full) return &v;
  for (const auto& [k, v] : procs)
    if (k == p.name) return &v;
  return nullptr;
}

Status Profile::save(const std::string& path) const {
  nlohmann::ordered_json j;
  j["device"] = device;
  j["source"] = source;
  j["notes"] = notes;
  j["dispatch_ms"] = dispatch_ms;
  j["handoff_ms"] = handoff_ms;
  j["cost_model"] = "ms = a + b*x + c*y; GEMMs x=M*K*N; attn x=m*(q+2kv) dims, y=sum(keys)*q_dim; "
                    "other float x=m*width";
  for (const auto& [k, v] : procs) {
    nlohmann::ordered_json pj;
    for (int i = 0; i < kKinds; ++i) {
      const KindCost& c = v.kind[i];
      pj[kind_name(Kind(i))] = {{"a", c.a}, {"b", c.b}, {"c", c.c}};
    }
    j["processors"][k] = pj;
  }
  std::ofstream out(path);
  if (!out) return Status::Error("cannot write profile " + path);
  out << j.dump(2) << "\n";
  return out ? Status::Ok() : Status::Error("write failed: " + path);
}

Expected<Profile> Profile::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::Error("cannot open profile " + path);
  Profile p;
  try {
    const auto j = nlohmann::json::parse(in);
    p.device = j.value("device", "");
    p.source = j.value("source", "");
    p.notes = j.value("notes", "");
    p.dispatch_ms = j.value("dispatch_ms", 0.0);
    p.handoff_ms = j.value("handoff_ms", 0.0);
    if (!j.contains("processors") || !j["processors"].is_object())
      return Status::Error("profile " + path + ": no \"processors\" object");
    for (const auto& [name, pj] : j["processors"].items()) {
      ProcessorCost pc;
      for (int i = 0; i < kKinds; ++i) {
        const char* kn = kind_name(Kind(i));
        if (!pj.contains(kn))
          return Status::Error(fmt::format("profile {}: processor {} lacks kind {}", path, name, kn));
        const auto& c = pj[kn];
        pc.kind[i] = {c.value("a", 0.0), c.value("b", 0.0), c.value("c", 0.0)};
      }
      p.procs.emplace_back(name, pc);
    }
  } catch (const std::exception& e) {
    return Status::Error("profile " + path + ": " + e.what());
  }
  if (p.procs.empty()) return Status::Error("profile " + path + ": no processors");
  return p;
}

Profile proxy_profile() {
  Profile p;
  p.device = "proxy";
  p.source = "built-in: cost proportional to multiply-adds";
  ProcessorCost pc;
  for (int i = 0; i < kKinds; ++i) {
    const bool gemm = kind_unit(Kind(i)) == Unit::kInt;
    pc.kind[i] = {0.002, gemm ? 1.0 / 40e6 : 1.0 / 2e6, 1.0 / 10e6};
  }
  p.procs = {{"int8", pc}, {"float", pc}, {"shared", pc}};
  return p;
}

std::vector<double> node_costs(const Graph& g, const std::vector<ProcessorSpec>& procs,
                               const std::vector<int>& where, const Profile& prof) {
  std::vector<double> c(g.size(), 0.0);
  for (size_t i = 0; i < g.size(); ++i) {
    const Node& n = g.nodes[i];
    const ProcessorCost* pc = prof.find(procs[where[i]]);
    if (!pc) pc = prof.procs.empty() ? nullptr : &prof.procs.front().second;
    c[i] = pc ? std::max(0.0, pc->kind[int(n.kind)].ms(n.x, n.y)) : 1.0;
  }
  return c;
}

namespace {
// Solves the k×k system A·x = b (k <= 3) by Gaussian elimination; false when singular.
bool solve(double A[3][3], double b[3], int k, double x[3]) {
  for (int c = 0; c < k; ++c) {
    int piv = c;
    for (int r = c + 1; r < k; ++r)
      if (std::fabs(A[r][c]) > std::fabs(A[piv][c])) piv = r;
    if (std::fabs(A[piv][c]) < 1e-12) return false;
    std::swap(A[c], A[piv]);
    std::swap(b[c], b[piv]);
    for (int r = 0; r < k; ++r) {
      if (r == c) continue;
      const double f = A[r][c] / A[c][c];
      for (int q = c; q < k; ++q) A[r][q] -= f * A[c][q];
      b[r] -= f * b[c];
    }
  }
  for (int c = 0; c < k; ++c) x[c] = b[c] / A[c][c];
  return true;
}

// Least squares of t ≈ a + b·x + c·y with features scaled to O(1); falls back to fewer
// terms (then to the mean) when the samples do not determine them (e.g. every chunk the
// same size), and never returns a negative slope.
KindCost fit(const std::vector<std::array<double, 3>>& s) {
  KindCost kc;
  if (s.empty()) return kc;
  double sx = 0, sy = 0, mean = 0;
  for (const auto& v : s) {
    sx = std::max(sx, v[0]);
    sy = std::max(sy, v[1]);
    mean += v[2];
  }
  mean /= double(s.size());
  // Column sets tried in order: both features, then each alone, then the mean.
  std::vector<std::vector<int>> sets;
  if (sx > 0 && sy > 0) sets.push_back({0, 1, 2});
  if (sy > 0) sets.push_back({0, 2});
  if (sx > 0) sets.push_back({0, 1});
  for (const auto& cols : sets) {
    const int k = int(cols.size());
    double A[3][3] = {}, b[3] = {}, x[3] = {};
    for (const auto& v : s) {
      const double f[3] = {1.0, sx > 0 ? v[0] / sx : 0, sy > 0 ? v[1] / sy : 0};
      for (int r = 0; r < k; ++r) {
        for (int q = 0; q < k; ++q) A[r][q] += f[cols[r]] * f[cols[q]];
        b[r] += f[cols[r]] * v[2];
      }
    }
    bool ok = solve(A, b, k, x);
    for (int r = 1; ok && r < k; ++r) ok = x[r] >= 0;
    if (ok) {
      kc = {};
      for (int r = 0; r < k; ++r) {
        if (cols[r] == 0) kc.a = x[r];
        if (cols[r] == 1) kc.b = x[r] / sx;
        if (cols[r] == 2) kc.c = x[r] / sy;
      }
      return kc;
    }
  }
  kc.a = mean;
  return kc;
}
}  // namespace

ProcessorCost fit_costs(const Graph& g, const std::vector<Slice>& s, int proc) {
  std::vector<std::array<double, 3>> by_kind[kKinds];
  for (const Slice& sl : s) {
    if (sl.proc != proc) continue;
    const Node& n = g.nodes[sl.node];
    by_kind[int(n.kind)].push_back({n.x, n.y, sl.end_ms - sl.start_ms});
  }
  ProcessorCost pc;
  for (int k = 0; k < kKinds; ++k) pc.kind[k] = fit(by_kind[k]);
  return pc;
}

Report report(const Graph& g, const std::vector<ProcessorSpec>& procs,
              const std::vector<Slice>& s) {
  Report r;
  r.busy_share.assign(procs.size(), 0.0);
  if (s.empty()) return r;
  double t0 = s.front().start_ms, t1 = s.front().end_ms;
  for (const Slice& x : s) {
    t0 = std::min(t0, x.start_ms);
    t1 = std::max(t1, x.end_ms);
  }
  r.makespan_ms = t1 - t0;
  std::vector<double> busy(procs.size(), 0.0);
  for (const Slice& x : s) busy[x.proc] += x.end_ms - x.start_ms;
  for (size_t p = 0; p < procs.size(); ++p)
    r.busy_share[p] = r.makespan_ms > 0 ? busy[p] / r.makespan_ms : 0;
  // The integer processor: the first processor that runs integer subgraphs and not float.
  for (size_t p = 0; p < procs.size(); ++p)
    if (procs[p].runs_int && !procs[p].runs_float) {
      r.int_bubble_ms = r.makespan_ms - busy[p];
      r.int_bubble_share = r.makespan_ms > 0 ? r.int_bubble_ms / r.makespan_ms : 0;
      break;
    }
  return r;
}

Status write_trace(const std::string& path, const Graph& g,
                   const std::vector<ProcessorSpec>& procs, const std::vector<Slice>& s,
                   const std::string& title) {
  nlohmann::json ev = nlohmann::json::array();
  ev.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", 0}, {"args", {{"name", title}}}});
  for (size_t p = 0; p < procs.size(); ++p)
    ev.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", 0}, {"tid", p},
                  {"args", {{"name", procs[p].name + ":" + std::to_string(procs[p].threads)}}}});
  for (const Slice& x : s) {
    const Node& n = g.nodes[x.node];
    ev.push_back({{"name", fmt::format("{} c{} L{}", kind_name(n.kind), n.chunk, n.layer)},
                  {"cat", n.unit == Unit::kInt ? "int" : "float"},
                  {"ph", "X"}, {"pid", 0}, {"tid", x.proc},
                  {"ts", x.start_ms * 1000.0}, {"dur", (x.end_ms - x.start_ms) * 1000.0},
                  {"args", {{"node", x.node}, {"chunk", n.chunk}, {"layer", n.layer},
                            {"kind", kind_name(n.kind)}}}});
  }
  nlohmann::json j = {{"traceEvents", ev}, {"displayTimeUnit", "ms"}};
  std::ofstream out(path);
  if (!out) return Status::Error("cannot write trace " + path);
  out << j.dump() << "\n";
  return out ? Status::Ok() : Status::Error("write failed: " + path);
}

}  // namespace octet::sched
