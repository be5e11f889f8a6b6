// Subgraph scheduler: DAG dependencies, policies, the simulator against hand-computed
// schedules, the branch-and-bound optimum, and every policy/processor configuration giving
// the sequential path's outputs bit for bit on a real model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>

#include "default_model.h"
#include "octet/calibration.h"
#include "octet/runtime.h"
#include "octet/sched.h"

using namespace octet;
using namespace octet::sched;

namespace {

HParams tiny_hp(int64_t layers) {
  HParams hp;
  hp.n_vocab = 100;
  hp.n_embd = 64;
  hp.n_layer = layers;
  hp.n_head = 4;
  hp.n_head_kv = 2;
  hp.head_dim = 16;
  hp.n_ff = 128;
  hp.n_rot = 16;
  hp.layer_is_swa.assign(static_cast<size_t>(layers), false);
  return hp;
}

int32_t find(const Graph& g, int64_t chunk, int64_t layer, Kind k) {
  for (size_t i = 0; i < g.size(); ++i)
    if (g.nodes[i].chunk == chunk && g.nodes[i].layer == layer && g.nodes[i].kind == k)
      return int32_t(i);
  return -1;
}

bool has_pred(const Graph& g, int32_t n, int32_t p) {
  const auto& v = g.nodes[n].preds;
  return std::find(v.begin(), v.end(), p) != v.end();
}

// A profile where every int node costs `ti` and every float node `tf` (no overheads).
Profile flat(double ti, double tf) {
  Profile p;
  ProcessorCost ci, cf;
  for (int k = 0; k < kKinds; ++k) {
    ci.kind[k] = {ti, 0, 0};
    cf.kind[k] = {tf, 0, 0};
  }
  p.procs = {{"int8", ci}, {"float", cf}, {"shared", ci}};
  return p;
}

}  // namespace

TEST(Sched, GraphDependencies) {
  const HParams hp = tiny_hp(2);
  GraphOptions o;
  o.chunk = 16;
  o.arenas = 2;
  const Graph g = build_graph(hp, 50, 0, o);  // chunks of 16, 16, 16, 2
  ASSERT_TRUE(validate(g).ok());
  EXPECT_EQ(g.n_chunks, 4);
  EXPECT_EQ(g.size(), size_t(4 * (1 + 8 * 2) + 1));  // + one LM head on the last chunk
  EXPECT_EQ(g.nodes.back().kind, Kind::kHead);
  EXPECT_EQ(g.nodes.back().m, 2);
  EXPECT_EQ(g.nodes.back().pos0, 48);
  for (int c = 0; c < 4; ++c) {
    // Chain inside a chunk: each subgraph depends on the one before.
    const int32_t qkv = find(g, c, 1, Kind::kQkv), resid0 = find(g, c, 0, Kind::kResid);
    EXPECT_TRUE(has_pred(g, qkv, resid0));
    const int32_t attn = find(g, c, 1, Kind::kAttn);
    EXPECT_TRUE(has_pred(g, attn, qkv));
    // Attention needs the KV the previous chunk wrote at that layer.
    if (c > 0) {
      EXPECT_TRUE(has_pred(g, attn, find(g, c - 1, 1, Kind::kAttn)));
      EXPECT_EQ(g.nodes[attn].preds.size(), 2u);
    } else {
      EXPECT_EQ(g.nodes[attn].preds.size(), 1u);
    }
    EXPECT_EQ(g.nodes[qkv].unit, Unit::kInt);
    EXPECT_EQ(g.nodes[attn].unit, Unit::kFloat);
  }
  // Chunk 2 reuses chunk 0's arena: its prologue waits for chunk 0's last subgraph.
  EXPECT_TRUE(g.nodes[find(g, 0, 0, Kind::kPrologue)].preds.empty());
  EXPECT_TRUE(g.nodes[find(g, 1, 0, Kind::kPrologue)].preds.empty());
  EXPECT_TRUE(has_pred(g, find(g, 2, 0, Kind::kPrologue), find(g, 0, 1, Kind::kResid)));
  // Attention work grows with position: a later chunk's attention has more keys.
  EXPECT_GT(g.nodes[find(g, 2, 0, Kind::kAttn)].y, g.nodes[find(g, 1, 0, Kind::kAttn)].y);
}

TEST(Sched, ParseProcessors) {
  auto a = parse_processors("int8:1,float:1", 2);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[0].cores, std::vector<int>{0});
  EXPECT_EQ((*a)[1].cores, std::vector<int>{1});
  auto s = parse_processors("shared:2", 2);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE((*s)[0].runs_int && (*s)[0].runs_float);
  EXPECT_FALSE(parse_processors("int8:1", 2).ok());         // nobody runs float subgraphs
  EXPECT_FALSE(parse_processors("gpu:1,float:1", 2).ok());
  EXPECT_FALSE(parse_processors("int8:x,float:1", 2).ok());
  EXPECT_FALSE(parse_processors("int8:0,float:1", 2).ok());
  EXPECT_FALSE(parse_policy("fifo").ok());
}

TEST(Sched, SingleProcessorScheduleIsSumOfCosts) {
  const HParams hp = tiny_hp(3);
  GraphOptions o;
  o.chunk = 8;
  const Graph g = build_graph(hp, 40, 0, o);
  auto procs = parse_processors("shared:1", 1).value();
  Profile prof = proxy_profile();
  prof.dispatch_ms = 0.01;
  const auto cost = node_costs(g, procs, assign(g, procs), prof);
  const double sum = std::accumulate(cost.begin(), cost.end(), 0.0) + 0.01 * double(g.size());
  for (PolicyKind pk : {PolicyKind::kSequential, PolicyKind::kInOrder, PolicyKind::kOoo,
                        PolicyKind::kCritical, PolicyKind::kGreedy}) {
    const SimResult r = simulate(g, procs, prof, pk);
    EXPECT_NEAR(r.makespan_ms, sum, 1e-9 * sum) << policy_name(pk);
    EXPECT_EQ(r.slices.size(), g.size());
  }
}

// Makespans worked out by hand (comments) on a synthetic profile, through the public simulate().
TEST(Sched, SimulatorMatchesHandComputedMakespans) {
  const HParams hp = tiny_hp(1);
  GraphOptions o;
  o.logits = false;
  auto procs = parse_processors("int8:1,float:1", 2).value();
  // One chunk: the chain P Q A O M G C D R alternates float (1 ms) and int (2 ms); every edge
  // crosses processors (+0.5 ms hand-off) and every node pays 0.1 ms dispatch:
  // 5·1.1 + 4·2.1 + 8·0.5 = 17.9 ms, whatever the policy.
  o.chunk = 16;
  Profile p = flat(2.0, 1.0);
  p.dispatch_ms = 0.1;
  p.handoff_ms = 0.5;
  const Graph one = build_graph(hp, 16, 0, o);
  ASSERT_EQ(one.size(), 9u);
  for (PolicyKind pk : {PolicyKind::kSequential, PolicyKind::kInOrder, PolicyKind::kOoo,
                        PolicyKind::kCritical, PolicyKind::kGreedy})
    EXPECT_NEAR(simulate(one, procs, p, pk).makespan_ms, 17.9, 1e-9) << policy_name(pk);
  // Two chunks, no overheads, int 2 ms / float 1 ms. Sequential: 10·1 + 8·2 = 26 ms.
  // In-order (lag 1): float P0[0,1] P1[1,2] A0[3,4] A1[5,6] M0[7,8] M1[9,10] C0[11,12]
  // C1[13,14] R0[15,16] R1[17,18]; int Q0[1,3] Q1[3,5] O0[5,7] O1[7,9] G0[9,11] G1[11,13]
  // D0[13,15] D1[15,17]: 18 ms, the int processor busy 16 of them.
  o.chunk = 8;
  const Graph two = build_graph(hp, 16, 0, o);
  ASSERT_EQ(two.size(), 18u);
  const Profile q = flat(2.0, 1.0);
  EXPECT_NEAR(simulate(two, procs, q, PolicyKind::kSequential).makespan_ms, 26.0, 1e-9);
  const SimResult io = simulate(two, procs, q, PolicyKind::kInOrder);
  EXPECT_NEAR(io.makespan_ms, 18.0, 1e-9);
  EXPECT_NEAR(io.busy_ms[0], 16.0, 1e-9);
  const int32_t a1 = find(two, 1, 0, Kind::kAttn), d1 = find(two, 1, 0, Kind::kDown);
  for (const Slice& s : io.slices) {
    if (s.node == a1) {
      EXPECT_NEAR(s.start_ms, 5.0, 1e-9);
    }
    if (s.node == d1) {
      EXPECT_NEAR(s.start_ms, 15.0, 1e-9);
    }
  }
}

// ooo plans with the simulator: on any DAG and profile its simulated makespan is the best of
// the paper's greedy, longest-path list scheduling and the in-order pipeline, so never above
// in-order; and it is exactly the chosen candidate's schedule.
TEST(Sched, OooIsNeverPredictedSlowerThanInOrderOrGreedy) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(0.05, 3.0);
  int greedy_lost = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const HParams hp = tiny_hp(1 + trial % 3);
    GraphOptions o;
    o.chunk = 8;
    o.arenas = 2 + trial % 3;
    const Graph g = build_graph(hp, 8 * (1 + trial % 5) + trial % 7, 0, o);
    auto procs = parse_processors("int8:1,float:1", 2).value();
    Profile prof = flat(1, 1);
    for (auto& [name, pc] : prof.procs)
      for (auto& k : pc.kind) k = {u(rng), u(rng) * 1e-5, 0};
    prof.handoff_ms = u(rng) * 0.2;
    prof.dispatch_ms = u(rng) * 0.02;
    const double ooo = simulate(g, procs, prof, PolicyKind::kOoo).makespan_ms;
    const double io = simulate(g, procs, prof, PolicyKind::kInOrder).makespan_ms;
    const double gr = simulate(g, procs, prof, PolicyKind::kGreedy).makespan_ms;
    const double cr = simulate(g, procs, prof, PolicyKind::kCritical).makespan_ms;
    EXPECT_LE(ooo, io + 1e-9) << trial;
    EXPECT_LE(ooo, gr + 1e-9) << trial;
    EXPECT_DOUBLE_EQ(ooo, std::min({io, gr, cr})) << trial;
    const auto where = assign(g, procs);
    std::vector<std::pair<PolicyKind, double>> pred;
    const PolicyKind plan = plan_ooo(g, where, node_costs(g, procs, where, prof),
                                     prof.dispatch_ms, prof.handoff_ms, &pred);
    ASSERT_EQ(pred.size(), 3u);
    EXPECT_DOUBLE_EQ(simulate(g, procs, prof, plan).makespan_ms, ooo) << trial;
    greedy_lost += gr > io + 1e-9;
  }
  // The reason ooo plans at all: the greedy alone loses to in-order on some of these.
  EXPECT_GT(greedy_lost, 0);
}

TEST(Sched, SimulatedSchedulesRespectDependenciesAndBounds) {
  const HParams hp = tiny_hp(2);
  GraphOptions o;
  o.chunk = 8;
  o.arenas = 3;
  const Graph g = build_graph(hp, 32, 0, o);
  auto procs = parse_processors("int8:1,float:1", 2).value();
  Profile prof = flat(1.0, 1.5);
  prof.handoff_ms = 0.1;
  double seq = 0;
  for (PolicyKind pk : {PolicyKind::kSequential, PolicyKind::kInOrder, PolicyKind::kOoo,
                        PolicyKind::kCritical, PolicyKind::kGreedy}) {
    const SimResult r = simulate(g, procs, prof, pk);
    ASSERT_EQ(r.slices.size(), g.size());
    std::vector<double> st(g.size()), en(g.size());
    for (const Slice& s : r.slices) {
      st[s.node] = s.start_ms;
      en[s.node] = s.end_ms;
    }
    for (size_t i = 0; i < g.size(); ++i)
      for (int32_t p : g.nodes[i].preds) EXPECT_GE(st[i], en[p] - 1e-12);
    // No processor runs two subgraphs at once.
    for (int p = 0; p < 2; ++p) {
      std::vector<std::pair<double, double>> iv;
      for (const Slice& s : r.slices)
        if (s.proc == p) iv.push_back({s.start_ms, s.end_ms});
      std::sort(iv.begin(), iv.end());
      for (size_t k = 1; k < iv.size(); ++k) EXPECT_GE(iv[k].first, iv[k - 1].second - 1e-12);
    }
    if (pk == PolicyKind::kSequential) {
      seq = r.makespan_ms;
    } else {
      EXPECT_LT(r.makespan_ms, seq) << "overlap must beat one-at-a-time here";
    }
    // Work-conserving bound: at least the busier processor's total.
    EXPECT_GE(r.makespan_ms, *std::max_element(r.busy_ms.begin(), r.busy_ms.end()) - 1e-9);
  }
}

TEST(Sched, OptimumIsExactOnTinyDagsAndNoWorseThanGreedy) {
  const HParams hp = tiny_hp(1);
  GraphOptions o;
  o.chunk = 4;
  o.arenas = 3;
  o.logits = false;
  const Graph g = build_graph(hp, 12, 0, o);  // 3 chunks x 9 nodes
  auto procs = parse_processors("int8:1,float:1", 2).value();
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0.2, 2.0);
  Profile prof = flat(1, 1);
  for (auto& [name, pc] : prof.procs)
    for (auto& k : pc.kind) k.a = u(rng);
  bool exact = false;
  const SimResult best = optimum(g, procs, prof, 5'000'000, &exact);
  EXPECT_TRUE(exact);
  for (PolicyKind pk : {PolicyKind::kSequential, PolicyKind::kInOrder, PolicyKind::kOoo,
                        PolicyKind::kCritical, PolicyKind::kGreedy})
    EXPECT_LE(best.makespan_ms, simulate(g, procs, prof, pk).makespan_ms + 1e-9);
  // A lower bound it cannot beat: each processor's total work.
  const SimResult any = simulate(g, procs, prof, PolicyKind::kOoo);
  EXPECT_GE(best.makespan_ms, *std::max_element(any.busy_ms.begin(), any.busy_ms.end()) - 1e-9);
  ASSERT_EQ(best.slices.size(), g.size());
}

TEST(Sched, ProfileRoundTripAndFit) {
  const HParams hp = tiny_hp(2);
  GraphOptions o;
  o.chunk = 8;
  const Graph g = build_graph(hp, 60, 0, o);  // a short last chunk varies the GEMMs' M
  // Slices whose durations follow a known model: fit must recover it.
  std::vector<Slice> s;
  double t = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const Node& n = g.nodes[i];
    const double d = 0.05 + 2e-6 * n.x + (n.kind == Kind::kAttn ? 3e-7 * n.y : 0.0);
    s.push_back({int32_t(i), 0, t, t + d});
    t += d;
  }
  const ProcessorCost pc = fit_costs(g, s, 0);
  EXPECT_NEAR(pc.kind[int(Kind::kQkv)].b, 2e-6, 1e-9);
  EXPECT_NEAR(pc.kind[int(Kind::kAttn)].c, 3e-7, 1e-10);
  EXPECT_NEAR(pc.kind[int(Kind::kAttn)].a, 0.05, 1e-6);
  Profile p;
  p.device = "test";
  p.dispatch_ms = 0.003;
  p.procs = {{"int8", pc}, {"float", pc}};
  const std::string path = ::testing::TempDir() + "octet_sched_profile.json";
  ASSERT_TRUE(p.save(path).ok());
  auto q = Profile::load(path);
  ASSERT_TRUE(q.ok()) << q.error();
  EXPECT_DOUBLE_EQ(q->dispatch_ms, 0.003);
  EXPECT_DOUBLE_EQ(q->procs[0].second.kind[int(Kind::kQkv)].b, pc.kind[int(Kind::kQkv)].b);
  EXPECT_FALSE(Profile::load(::testing::TempDir() + "no-such-profile.json").ok());
}

// Gemma 3 270M as INT8 weights with shadow outliers and sessions of 256 tokens in chunks
// of 32: the setup of the two tests below (model null where the default model is missing).
struct Int8Gemma {
  std::shared_ptr<const Model> model;
  std::shared_ptr<const Weights> w;
  SessionOptions so;
};
void int8_gemma(ThreadPool* pool, Int8Gemma* g) {
  Calibration calib;
  ASSERT_NO_FATAL_FAILURE(test::load_default_model(pool, &g->model, &calib));
  if (!g->model) return;
  auto w = Weights::build_int8(*g->model, calib, Int8Options{}, pool);
  ASSERT_TRUE(w.ok()) << w.error();
  g->w = *w;
  g->so.n_ctx = 256;
  g->so.chunk = 32;
}
std::vector<Token> random_tokens(uint32_t seed, size_t n) {
  std::mt19937 rng(seed);
  std::vector<Token> toks(n);
  for (auto& t : toks) t = Token(rng() % 20000 + 100);
  return toks;
}

// Every policy and processor configuration yields the sequential path's logits bit for bit
// (Gemma 3 270M, INT8 with shadow outliers; 3 chunks of 32 plus a 2-row tail that takes the
// decode-sized path, sliding-window layers, all logits).
TEST(Sched, PoliciesMatchSequentialBitForBit) {
  ThreadPool pool(2);
  Int8Gemma g;
  ASSERT_NO_FATAL_FAILURE(int8_gemma(&pool, &g));
  if (!g.model) GTEST_SKIP() << "no model at " << test::default_model_path();
  const auto& [model, w, so] = g;
  const std::vector<Token> toks = random_tokens(3, 98);
  Session ref(model, w, so, &pool);
  std::vector<float> want, got;
  ASSERT_TRUE(ref.eval(toks, true, &want).ok());
  const Token next = 777;
  std::vector<float> next_want;
  ASSERT_TRUE(ref.eval(std::span<const Token>(&next, 1), false, &next_want).ok());
  for (const char* procs : {"shared:2", "int8:1,float:1", "shared:1"}) {
    for (PolicyKind pk : {PolicyKind::kSequential, PolicyKind::kInOrder, PolicyKind::kOoo,
                        PolicyKind::kCritical, PolicyKind::kGreedy}) {
      RunOptions ro;
      ro.procs = parse_processors(procs, 2).value();
      ro.policy = pk;
      ro.arenas = 2;
      std::vector<Slice> trace;
      ro.trace = &trace;
      Session s(model, w, so, &pool);
      ASSERT_TRUE(s.eval_scheduled(toks, true, &got, ro).ok());
      ASSERT_EQ(got.size(), want.size());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0)
          << procs << " " << policy_name(pk);
      EXPECT_EQ(s.n_past(), int64_t(toks.size()));
      // A decode step after the scheduled prefill sees the same KV.
      std::vector<float> a;
      ASSERT_TRUE(s.eval(std::span<const Token>(&next, 1), false, &a).ok());
      EXPECT_EQ(a, next_want) << procs << " " << policy_name(pk);
      EXPECT_EQ(trace.size(), size_t(4 * (1 + 8 * 18) + 4));
    }
  }
}

// Without all_logits the last layer runs past its K/V for the logits' row only (run_chunk):
// the last token's logits stay those of the full computation up to the last layer's own
// arithmetic for that row (its decode-sized linears), and the KV cache is complete: a decode
// step afterwards matches the full run's bit for bit. 3 chunks of 32 and a final one of 20
// (whose rows take the int8 prefill linears, while the kept row alone takes the decode ones).
// The scheduled path (eval_scheduled) gives the same logits.
TEST(Sched, LastLayerRunsOnlyForTheLogitRows) {
  ThreadPool pool(2);
  Int8Gemma g;
  ASSERT_NO_FATAL_FAILURE(int8_gemma(&pool, &g));
  if (!g.model) GTEST_SKIP() << "no model at " << test::default_model_path();
  const auto& [model, w, so] = g;
  const std::vector<Token> toks = random_tokens(5, 116);
  Session full(model, w, so, &pool), skip(model, w, so, &pool);
  std::vector<float> all, last;
  ASSERT_TRUE(full.eval(toks, true, &all).ok());
  ASSERT_TRUE(skip.eval(toks, false, &last).ok());
  const int64_t V = model->hparams().n_vocab;
  ASSERT_EQ(int64_t(last.size()), V);
  const float* ref = all.data() + (toks.size() - 1) * static_cast<size_t>(V);
  int64_t am = 0;
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < V; ++i) {
    if (ref[i] > ref[am]) am = i;
    diff += (last[i] - ref[i]) * double(last[i] - ref[i]);
    norm += double(ref[i]) * ref[i];
  }
  // ~0.4 % here: one layer of int8 vs the file's blocks for that row. Random tokens leave
  // the top logits close together, so the full run's best token need only be in the top 5.
  EXPECT_LT(std::sqrt(diff / norm), 0.02) << "relative logit difference";
  EXPECT_LT(std::count_if(last.begin(), last.end(), [&](float v) { return v > last[am]; }), 5);
  EXPECT_EQ(skip.n_past(), full.n_past());
  const Token next = 777;
  std::vector<float> a, b;
  ASSERT_TRUE(full.eval(std::span<const Token>(&next, 1), false, &a).ok());
  ASSERT_TRUE(skip.eval(std::span<const Token>(&next, 1), false, &b).ok());
  EXPECT_EQ(a, b);
  // The scheduled path takes the same cut: its logits and the decode step after it equal
  // the sequential path's bit for bit.
  for (const char* procs : {"shared:2", "int8:1,float:1"}) {
    for (PolicyKind pk : {PolicyKind::kInOrder, PolicyKind::kOoo}) {
      RunOptions ro;
      ro.procs = parse_processors(procs, 2).value();
      ro.policy = pk;
      ro.arenas = 2;
      Session s(model, w, so, &pool);
      std::vector<float> got, c;
      ASSERT_TRUE(s.eval_scheduled(toks, false, &got, ro).ok());
      EXPECT_EQ(got, last) << procs << " " << policy_name(pk);
      ASSERT_TRUE(s.eval(std::span<const Token>(&next, 1), false, &c).ok());
      EXPECT_EQ(c, b) << procs << " " << policy_name(pk);
    }
  }
}
