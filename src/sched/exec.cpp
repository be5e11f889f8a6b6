// The real executor: Session::eval_scheduled runs the prompt's subgraph DAG on processor
// threads (pinned with sched_setaffinity), each asking the shared Policy for its next subgraph
// whenever it is free. Every subgraph is exactly the code of Session::run_chunk for that
// stretch of the layer, on the chunk's own arena, so outputs equal eval()'s bit for bit
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
                       const Token* toks, bool all_logits, std::vector<float>* logits) {
  using sched::Kind;
  sched::ChunkArena& a = A.arenas[static_cast<size_t>(arena)];
  ThreadPool* pool = A.pools[static_cast<size_t>(proc)].get();
  LinearScratch* scratch = &A.scratch[static_cast<size_t>(proc)];
  const int64_t E = hp_.n_embd, Q = hp_.q_dim(), KV = hp_.kv_dim(), F = hp_.n_ff;
  const int64_t D = hp_.head_dim, R = hp_.n_rot, QKV = Q + 2 * KV;
  const float eps = hp_.norm_eps;
  const int64_t m = n.m, pos0 = n.pos0, il = n.layer;
  const bool dec = m <= qgemv::kMaxRows && w_->has_decode();
  auto pick = [dec](const std::unique_ptr<Linear>& full, const std::unique_ptr<Linear>& d)
      -> const Linear& { return dec ? *d : *full; };
  auto attn_norm = [&](int64_t layer) {
    const LayerWeights& L = w_->layer(layer);
    for (int64_t i = 0; i < m; ++i)
      kernels::rmsnorm_f32(a.x.data() + i * E, L.attn_norm.data(), a.xn.data() + i * E, E, eps);
  };
  switch (n.kind) {
    case Kind::kPrologue: {
      for (int64_t i = 0; i < m; ++i) {
        Status st = model_->embed(toks[i], a.x.data() + i * E);
        (void)st;  // ids were validated
      }
      for (int64_t i = 0; i < m; ++i) {
        kernels::rope_table(pos0 + i, R, hp_.rope_base, hp_.rope_scale, a.rc.data() + i * R / 2,
                            a.rs.data() + i * R / 2);
        if (hp_.sliding_window)
          kernels::rope_table(pos0 + i, R, hp_.rope_base_swa, 1.f, a.rc_swa.data() + i * R / 2,
                              a.rs_swa.data() + i * R / 2);
      }
      attn_norm(0);
      return;
    }
    case Kind::kQkv: {
      const LayerWeights& L = w_->layer(il);
      pick(L.wqkv, L.dec_wqkv).forward(a.xn.data(), m, a.qkv.data(), QKV, pool, scratch);
      return;
    }
    case Kind::kAttn: {
      const LayerWeights& L = w_->layer(il);
      const bool swa = hp_.layer_is_swa[il];
      const float* rc = (swa ? a.rc_swa : a.rc).data();
      const float* rs = (swa ? a.rs_swa : a.rs).data();
      parallel_for(pool, m, 1, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) {
          float* row = a.qkv.data() + i * QKV;
          if (!L.bqkv.empty()) kernels::add_f32(row, L.bqkv.data(), QKV);
          for (int64_t h = 0; h < hp_.n_head + hp_.n_head_kv; ++h) {
            float* v = row + h * D;
            const bool is_q = h < hp_.n_head;
            if (hp_.qk_norm)
              kernels::rmsnorm_f32(v, (is_q ? L.q_norm : L.k_norm).data(), v, D, eps);
            kernels::rope_f32_table(v, R, rc + i * R / 2, rs + i * R / 2, hp_.rope_mode);
          }
          for (int64_t h = 0; h < hp_.n_head_kv; ++h) {
            store_kv(il, h, pos0 + i, row + Q + h * D, row + Q + KV + h * D);
          }
        }
      });
      attention(il, m, pos0, a.qkv.data(), a.att.data(), pool);
      return;
    }
    case Kind::kO: {
      const LayerWeights& L = w_->layer(il);
      pick(L.wo, L.dec_wo).forward(a.att.data(), m, a.o.data(), E, pool, scratch);
      return;
    }
    case Kind::kMid: {
      const LayerWeights& L = w_->layer(il);
      for (int64_t i = 0; i < m; ++i) {
        float* o = a.o.data() + i * E;
        if (!L.attn_post_norm.empty()) kernels::rmsnorm_f32(o, L.attn_post_norm.data(), o, E, eps);
        kernels::add_f32(a.x.data() + i * E, o, E);
        kernels::rmsnorm_f32(a.x.data() + i * E, L.ffn_norm.data(), a.xn.data() + i * E, E, eps);
      }
      return;
    }
    case Kind::kGateUp: {
      const LayerWeights& L = w_->layer(il);
      pick(L.w_gate_up, L.dec_gate_up).forward(a.xn.data(), m, a.gu.data(), 2 * F, pool, scratch);
      return;
    }
    case Kind::kAct: {
      parallel_for(pool, m, 1, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) {
          float* h = a.h.data() + i * F;
          std::memcpy(h, a.gu.data() + i * 2 * F, sizeof(float) * F);
          if (hp_.act == Activation::kGeluTanh)
            kernels::gelu_tanh_mul_f32(h, a.gu.data() + i * 2 * F + F, F);
          else
            kernels::silu_mul_f32(h, a.gu.data() + i * 2 * F + F, F);
        }
      });
      return;
    }
    case Kind::kDown: {
      const LayerWeights& L = w_->layer(il);
      pick(L.w_down, L.dec_down).forward(a.h.data(), m, a.o.data(), E, pool, scratch);
      return;
    }
    case Kind::kResid: {
      const LayerWeights& L = w_->layer(il);
      for (int64_t i = 0; i < m; ++i) {
        float* o = a.o.data() + i * E;
        if (!L.ffn_post_norm.empty()) kernels::rmsnorm_f32(o, L.ffn_post_norm.data(), o, E, eps);
        kernels::add_f32(a.x.data() + i * E, o, E);
      }
      if (il + 1 < hp_.n_layer) attn_norm(il + 1);
      return;
    }
    case Kind::kHead: {
      const int64_t first = all_logits ? 0 : m - 1, rows = m - first;
      for (int64_t i = first; i < m; ++i)
        kernels::rmsnorm_f32(a.x.data() + i * E, w_->output_norm().data(),
                             a.xn.data() + (i - first) * E, E, eps);
      const size_t row0 = all_logits ? static_cast<size_t>(pos0 - n_past_) : 0;
      float* out = logits->data() + row0 * hp_.n_vocab;
      const Linear& head = rows <= qgemv::kMaxRows && w_->has_decode() ? *w_->decode_lm_head()
                                                                        : w_->lm_head();
      head.forward(a.xn.data(), rows, out, hp_.n_vocab, pool, scratch);
      return;
    }
  }
}

Status Session::eval_scheduled(std::span<const Token> toks, bool all_logits,
                               std::vector<float>* logits, const sched::RunOptions& opt) {
  using namespace sched;
  if (toks.empty()) return Status::Error("eval: no tokens");
  if (n_past_ + static_cast<int64_t>(toks.size()) > n_ctx_)
    return Status::Error(fmt::format("eval: {} + {} tokens exceed the context of {}", n_past_,
                                     toks.size(), n_ctx_));
  for (Token t : toks)
    if (t < 0 || t >= hp_.n_vocab)
      return Status::Error(fmt::format("eval: token id {} out of range [0, {})", t, hp_.n_vocab));
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
      a.h.resize(C * hp_.n_ff);
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
  const std::vector<double> costs =
      node_costs(g, opt.procs, where, opt.profile ? *opt.profile : proxy);
  auto policy = make_policy(opt.policy, g, where, costs);
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
      run_node(node, A, static_cast<int>(node.chunk % opt.arenas), p,
               toks.data() + node.chunk * chunk_, all_logits, logits);
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
