// The real executor: Session::eval_scheduled runs the prompt's subgraph DAG on processor
// threads (pinned with sched_setaffinity), each asking the shared Policy for its next subgraph
// whenever it is free. Every subgraph is Session::run_stage, the same code run_chunk runs in
// order, on the chunk's own arena, so outputs equal eval()'s bit for bit
// (int8 GEMMs accumulate in int32; attention and norms keep their per-row order whatever the
// thread count).
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fmt/format.h>
#include <mutex>
#include <thread>

#include "octet/runtime.h"
#include "octet/sched.h"

namespace octet {

namespace sched {

// Activation buffers of one chunk in flight.
struct ChunkArena {
  std::vector<float> x, xn, qkv, att, o, gu, h, rc, rs, rc_swa, rs_swa;
};

struct ChunkArenas {
  std::vector<ChunkArena> arenas;
  int64_t chunk = 0;
  // Per processor: its pool (null for one thread) and the scratch of its linears.
  std::string procs_key;
  std::vector<std::unique_ptr<ThreadPool>> pools;
  std::vector<LinearScratch> scratch;
};

namespace {
void pin_to(int core) {
  if (core < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  sched_setaffinity(0, sizeof set, &set);  // best effort: a failure only loses the pinning
}
}  // namespace

}  // namespace sched

void Session::run_node(const sched::Node& n, sched::ChunkArenas& A, int arena, int proc,
                       const Token* toks, bool all_logits, std::vector<float>* logits,
                       int64_t keep) {
  sched::ChunkArena& a = A.arenas[static_cast<size_t>(arena)];
  const StageBuffers b{a.x.data(),  a.xn.data(), a.qkv.data(), a.att.data(),
                       a.o.data(),  a.gu.data(), a.h.data(),   a.rc.data(),
                       a.rs.data(), a.rc_swa.data(), a.rs_swa.data()};
  float* out = nullptr;
  if (n.kind == sched::Kind::kHead) {
    const size_t row0 = all_logits ? static_cast<size_t>(n.pos0 - n_past_) : 0;
    out = logits->data() + row0 * hp_.n_vocab;
  }
  run_chunk_stage(n.kind, n.layer, n.m, n.pos0, b, toks, all_logits, out,
                  A.pools[static_cast<size_t>(proc)].get(), &A.scratch[static_cast<size_t>(proc)],
                  keep);
}

Status Session::eval_scheduled(std::span<const Token> toks, bool all_logits,
                               std::vector<float>* logits, const sched::RunOptions& opt) {
  using namespace sched;
  OCTET_RETURN_IF_ERROR(check_eval(toks));
  if (opt.procs.empty()) return Status::Error("eval_scheduled: no processors");
  if (opt.arenas < 1) return Status::Error("eval_scheduled: need at least one chunk arena");

  // Arenas and processor pools: made once, reused while the configuration stays the same.
  if (!sched_) sched_ = std::make_shared<ChunkArenas>();
  ChunkArenas& A = *sched_;
  if (int64_t(A.arenas.size()) < opt.arenas || A.chunk != chunk_) {
    const size_t C = static_cast<size_t>(chunk_);
    A.arenas.resize(static_cast<size_t>(opt.arenas));
    A.chunk = chunk_;
    for (ChunkArena& a : A.arenas) {
      a.x.resize(C * hp_.n_embd);
      a.xn.resize(C * hp_.n_embd);
      a.qkv.resize(C * (hp_.q_dim() + 2 * hp_.kv_dim()));
      a.att.resize(C * hp_.q_dim());
      a.o.resize(C * hp_.n_embd);
      a.gu.resize(C * 2 * hp_.n_ff);
      if (!w_->ffn_act_fused()) a.h.resize(C * hp_.n_ff);
      for (auto* v : {&a.rc, &a.rs, &a.rc_swa, &a.rs_swa}) v->resize(C * hp_.n_rot / 2);
    }
  }
  const std::string key = processors_string(opt.procs) + (opt.pin ? "+pin" : "");
  if (A.procs_key != key) {
    A.pools.clear();
    A.scratch.clear();
    A.scratch.resize(opt.procs.size());
    for (const ProcessorSpec& p : opt.procs) {
      if (p.threads <= 1) {
        A.pools.emplace_back();
        continue;
      }
      auto pool = std::make_unique<ThreadPool>(p.threads);
      if (opt.pin) {
        // With n items and grain 1 every thread gets exactly its own index: pin it there.
        pool->parallel_for(p.threads, 1, [&](int64_t b, int64_t, int) {
          pin_to(p.cores[static_cast<size_t>(b)]);
        });
      }
      A.pools.push_back(std::move(pool));
    }
    A.procs_key = key;
  }

  const int64_t n_tok = static_cast<int64_t>(toks.size());
  GraphOptions go;
  go.chunk = chunk_;
  go.arenas = opt.arenas;
  go.inorder_lag = opt.inorder_lag;
  go.all_logits = all_logits;
  go.logits = logits != nullptr;
  Graph g = build_graph(hp_, n_tok, n_past_, go);
  const std::vector<int> where = assign(g, opt.procs);
  const Profile proxy = proxy_profile();
  const Profile& prof = opt.profile ? *opt.profile : proxy;
  const std::vector<double> costs = node_costs(g, opt.procs, where, prof);
  // ooo plans here, before any thread starts (three simulations of the DAG: ~1 ms at most).
  const PolicyKind ran = opt.policy == PolicyKind::kOoo
                             ? plan_ooo(g, where, costs, prof.dispatch_ms, prof.handoff_ms)
                             : opt.policy;
  if (opt.ran) *opt.ran = ran;
  auto policy = make_policy(ran, g, where, costs);
  if (logits) logits->assign(static_cast<size_t>((all_logits ? n_tok : 1) * hp_.n_vocab), 0.f);

  const size_t P = opt.procs.size(), N = g.size();
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<uint64_t> version{0};
  std::vector<int32_t> remaining(N);
  std::vector<std::vector<int32_t>> ready(P);
  for (size_t i = 0; i < N; ++i) {
    remaining[i] = static_cast<int32_t>(g.nodes[i].preds.size());
    if (!remaining[i]) ready[where[i]].push_back(static_cast<int32_t>(i));
  }
  size_t done = 0;
  std::vector<Slice> slices;
  slices.reserve(N);
  const auto t0 = std::chrono::steady_clock::now();
  auto ms_since = [&](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(t - t0).count();
  };

  auto worker = [&](int p) {
    if (opt.pin) pin_to(opt.procs[static_cast<size_t>(p)].cores.front());
    std::unique_lock<std::mutex> lk(mu);
    while (done < N) {
      const int32_t n = ready[p].empty() ? -1 : policy->pick(p, ready[p]);
      if (n < 0) {
        // Spin briefly (subgraphs are often well under a millisecond), then sleep.
        const uint64_t v = version.load(std::memory_order_acquire);
        lk.unlock();
        for (int i = 0; i < 20000 && version.load(std::memory_order_acquire) == v; ++i) {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
        }
        lk.lock();
        cv.wait(lk, [&] { return version.load() != v || done >= N; });
        continue;
      }
      ready[p].erase(std::find(ready[p].begin(), ready[p].end(), n));
      policy->started(n);
      lk.unlock();
      const Node& node = g.nodes[n];
      const auto s = std::chrono::steady_clock::now();
      // As in run_chunk: the last layer past its K/V only for the rows that get logits.
      const bool final_chunk = node.pos0 + node.m == n_past_ + n_tok;
      run_node(node, A, static_cast<int>(node.chunk % opt.arenas), p,
               toks.data() + node.chunk * chunk_, all_logits, logits,
               keep_rows(node.m, all_logits, logits && (all_logits || final_chunk)));
      const auto e = std::chrono::steady_clock::now();
      lk.lock();
      slices.push_back({n, p, ms_since(s), ms_since(e)});
      ++done;
      policy->finished(n);
      for (int32_t sc : node.succs) {
        if (--remaining[sc] == 0) {
          auto& q = ready[where[sc]];
          q.insert(std::upper_bound(q.begin(), q.end(), sc), sc);
        }
      }
      version.fetch_add(1, std::memory_order_acq_rel);
      cv.notify_all();
    }
  };
  std::vector<std::thread> threads;
  for (size_t p = 1; p < P; ++p) threads.emplace_back(worker, static_cast<int>(p));
  // The caller is processor 0's lead thread; its affinity is restored afterwards.
  cpu_set_t saved;
  const bool have_saved = sched_getaffinity(0, sizeof saved, &saved) == 0;
  worker(0);
  for (auto& t : threads) t.join();
  if (opt.pin && have_saved) sched_setaffinity(0, sizeof saved, &saved);

  for (const LinearScratch& s : A.scratch) {
    scratch_.entries += s.entries;
    scratch_.outlier_entries += s.outlier_entries;
  }
  for (LinearScratch& s : A.scratch) s.entries = s.outlier_entries = 0;
  n_past_ += n_tok;
  written_hi_ = std::max(written_hi_, n_past_);
  history_.insert(history_.end(), toks.begin(), toks.end());
  if (opt.trace) *opt.trace = std::move(slices);
  if (opt.graph_out) *opt.graph_out = std::move(g);
  return Status::Ok();
}

}  // namespace octet
