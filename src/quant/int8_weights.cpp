// INT8 weights for prefill: every block linear becomes W8A8 with its calibrated static
// activation scale; entries beyond the clip range take the float shadow path
// y += (x − clip(x))·W[:, k], with float columns for hot channels and the int8 weights
// (dequantised on demand) for the rest. The LM head reads the file's blocks in place when
// they are block-quantised (per-block activation scales, as decode); else an int8 copy with
// dynamic per-row activation scales. On CPUs without VNNI, a linear whose tensors share one
// 4-5 bit format the W4A8 kernel reads (and whose input is not smoothed) has no int8 copy:
// gemm_q4 multiplies the file's blocks and adds every outlier's correction from them too.
#include <algorithm>
#include <atomic>
#include <fmt/format.h>
#include <numeric>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>
#include <cstdlib>
#include <cstring>

#include "octet/calibration.h"
#include "octet/kernels.h"
#include "octet/linear_gguf.h"
#include "octet/memory.h"
#include "octet/runtime.h"
#include "runtime/weights_util.h"

namespace octet {

namespace {

// The outliers of ol that `keep` selects, made into `make(o)`, by row: row r's are
// (*out)[row_begin[r] .. row_begin[r + 1]), in their order in ol (a stable counting sort; a
// row-major list, as quantisation emits, is copied in order).
template <class E, class Keep, class Make>
void outliers_by_row(const OutlierList& ol, int64_t m, const Keep& keep, const Make& make,
                     std::vector<E>* out, std::vector<int32_t>* row_begin) {
  std::vector<int32_t>& rb = *row_begin;
  rb.assign(static_cast<size_t>(m + 1), 0);
  bool sorted = true;
  int32_t prev = 0;
  for (const Outlier& o : ol)
    if (keep(o)) {
      ++rb[o.row + 1];
      sorted &= o.row >= prev;
      prev = o.row;
    }
  for (int64_t r = 0; r < m; ++r) rb[r + 1] += rb[r];
  out->resize(static_cast<size_t>(rb[m]));
  if (sorted) {
    size_t i = 0;
    for (const Outlier& o : ol)
      if (keep(o)) (*out)[i++] = make(o);
    return;
  }
  // rb[r] advances to row r's end, then shifts back.
  for (const Outlier& o : ol)
    if (keep(o)) (*out)[static_cast<size_t>(rb[o.row]++)] = make(o);
  for (int64_t r = m; r > 0; --r) rb[r] = rb[r - 1];
  rb[0] = 0;
}

// Row-disjoint runs of an outlier list: list[at, at + n) holds outliers of rows [r0, r1) only
// (in any order inside the run).
struct OutlierRun {
  size_t at, n;
  int64_t r0, r1;
};

// Runs of a whole input's outliers for the pool: cut at row boundaries when the list is in
// row order (as whole-row quantisation emits it), else one run.
void runs_of(const OutlierList& ol, int64_t m, int threads, std::vector<OutlierRun>* runs) {
  runs->clear();
  const bool by_row = std::is_sorted(ol.begin(), ol.end(), [](const Outlier& a, const Outlier& b) {
    return a.row < b.row;
  });
  const int64_t parts = by_row ? std::min<int64_t>(m, 4 * threads) : 1;
  size_t at = 0;
  for (int64_t j = 0; j < parts; ++j) {
    const int64_t r0 = m * j / parts, r1 = m * (j + 1) / parts;
    const auto below = [](const Outlier& o, int64_t r) { return o.row < r; };
    const size_t end =
        j == parts - 1
            ? ol.size()
            : static_cast<size_t>(std::lower_bound(ol.begin() + static_cast<std::ptrdiff_t>(at),
                                                   ol.end(), r1, below) -
                                  ol.begin());
    runs->push_back({at, end - at, r0, r1});
    at = end;
  }
}

// Outliers by row for the shadow kernel, made on the pool: row r's are
// (*ents)[row_begin[r] .. row_begin[r + 1]), first those without a float column (is_hot
// false), then the others, each kind in the order of the runs and of the list inside them
// (so the sums, one chain per kind, do not depend on the thread count). Runs sorted by r0;
// consecutive runs whose rows overlap are one unit of work, units go to the threads.
template <class IsHot, class Make>
void entries_by_row(const OutlierList& ol, const std::vector<OutlierRun>& runs, int64_t m,
                    const IsHot& is_hot, const Make& make, ThreadPool* pool,
                    std::vector<ShadowEntry>* ents, std::vector<int32_t>* row_begin,
                    std::vector<int32_t>* cold, std::vector<int32_t>* hot,
                    std::vector<size_t>* units) {
  std::vector<size_t>& u = *units;
  u.clear();
  int64_t hi = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (i == 0 || runs[i].r0 >= hi) u.push_back(i);
    if (i > 0 && runs[i].r0 < runs[i - 1].r0) {  // not sorted: one unit
      u.assign(1, 0);
      break;
    }
    hi = std::max(hi, runs[i].r1);
  }
  u.push_back(runs.size());
  const int64_t nu = static_cast<int64_t>(u.size()) - 1;
  cold->assign(static_cast<size_t>(m), 0);
  hot->assign(static_cast<size_t>(m), 0);
  int32_t* const nc = cold->data();
  int32_t* const nh = hot->data();
  // Below a few thousand outliers the pool's hand-off costs more than the passes.
  ThreadPool* const p = ol.size() >= 4096 ? pool : nullptr;
  parallel_for(p, nu, 1, [&](int64_t b, int64_t e, int) {
    for (size_t i = u[static_cast<size_t>(b)]; i < u[static_cast<size_t>(e)]; ++i)
      for (size_t j = runs[i].at; j < runs[i].at + runs[i].n; ++j) {
        const Outlier& o = ol[j];
        ++(is_hot(o) ? nh : nc)[o.row];
      }
  });
  std::vector<int32_t>& rb = *row_begin;
  rb.resize(static_cast<size_t>(m + 1));
  rb[0] = 0;
  for (int64_t r = 0; r < m; ++r) {  // counts → each kind's write position
    const int32_t c = nc[r];
    rb[r + 1] = rb[r] + c + nh[r];
    nc[r] = rb[r];
    nh[r] = rb[r] + c;
  }
  ents->resize(static_cast<size_t>(rb[m]));
  ShadowEntry* const out = ents->data();
  parallel_for(p, nu, 1, [&](int64_t b, int64_t e, int) {
    for (size_t i = u[static_cast<size_t>(b)]; i < u[static_cast<size_t>(e)]; ++i)
      for (size_t j = runs[i].at; j < runs[i].at + runs[i].n; ++j) {
        const Outlier& o = ol[j];
        out[(is_hot(o) ? nh : nc)[o.row]++] = make(o);
      }
  });
}

class Int8ShadowLinear final : public Linear {
  template <class T>
  static T& tl() {
    thread_local T v;
    return v;
  }

 public:
  // Without the shadow path nothing may be clipped away: use the full measured range.
  static float act_scale(const SlotCalib& c, bool shadow) {
    return shadow || !(c.absmax > 0) ? c.scale() : c.absmax / 127.f;
  }
  // The prefill GEMM on the file's blocks, which also takes the shadow path's outliers
  // (Q4Shadow): no int8 copy. Hot channels (w_f32 given) keep float columns, as below: most
  // outliers are theirs, and a float column is cheaper per outlier than a staged block column.
  Int8ShadowLinear(Q4Weights q4, const SlotCalib& c, bool shadow, const float* w_f32,
                   ThreadPool* pool)
      : n_(q4.n()), k_(q4.k()), scale_(act_scale(c, shadow)), shadow_(shadow), q4_(std::move(q4)) {
    if (w_f32) keep_hot_columns(c, w_f32, pool);
  }
  // The int8 copy, with float columns of the hot channels for the shadow path.
  Int8ShadowLinear(Int8Linear lin, const SlotCalib& c, bool shadow, const float* w_f32,
                   bool hot_float, ThreadPool* pool)
      : n_(lin.n()), k_(lin.k()), lin_(std::move(lin)), scale_(act_scale(c, shadow)),
        shadow_(shadow) {
    if (hot_float) keep_hot_columns(c, w_f32, pool);
  }
  // Float columns of the calibration's hot channels from W [N, K] (float, row-major).
  void keep_hot_columns(const SlotCalib& c, const float* w_f32, ThreadPool* pool) {
    const int64_t N = n_, K = k_;
    if (shadow_ && !c.hot.empty()) {
      // Panel-major (see ShadowEntry): [panel][hot channel][16 lanes], lanes past N zero.
      hot_index_.assign(static_cast<size_t>(K), -1);
      hot_stride_ = static_cast<int64_t>(c.hot.size()) * 16;
      const int64_t panels = (N + 15) / 16;
      hot_cols_.assign(static_cast<size_t>(panels * hot_stride_), 0.0f);
      std::vector<std::pair<int64_t, int32_t>> valid;  // (slot h, channel k)
      for (size_t h = 0; h < c.hot.size(); ++h)
        if (c.hot[h] >= 0 && c.hot[h] < K) {
          hot_index_[c.hot[h]] = static_cast<int32_t>(h);
          valid.push_back({static_cast<int64_t>(h), c.hot[h]});
        }
      // Row by row (each row of W read once, in cache), not column by column (a cache miss
      // per element: ~600 hot channels × N rows on a down projection); panels on the pool.
      parallel_for(pool, panels, 4, [&](int64_t p0, int64_t p1, int) {
        for (int64_t n = p0 * 16; n < std::min(N, p1 * 16); ++n) {
          const float* row = w_f32 + n * K;
          float* dst = hot_cols_.data() + (n / 16) * hot_stride_ + n % 16;
          for (const auto& [h, k] : valid) dst[h * 16] = row[k];
        }
      });
    }
  }
  int64_t n() const override { return n_; }
  int64_t k() const override { return k_; }
  size_t bytes() const override {
    return (lin_ ? lin_->weights().bytes() : 0) + hot_cols_.size() * sizeof(float) +
           hot_index_.size() * sizeof(int32_t) + (q4_ ? q4_->bytes() : 0);
  }
  void account(WeightBytes* b) const override {
    if (lin_) b->int8 += lin_->weights().bytes();
    b->hot_float += hot_cols_.size() * sizeof(float) + hot_index_.size() * sizeof(int32_t);
    if (q4_) b->q4_index += q4_->bytes();
    const auto macs = static_cast<size_t>(n_ * k_);
    b->int8_macs += macs;
    if (q4_) b->q4_macs += macs;
  }
  void forward(const float* x, int64_t m, float* y, int64_t ldy, ThreadPool* pool,
               LinearScratch* s) const override {
    OutlierList* ol = shadow_ ? &s->outliers : nullptr;
    // Rows below the clip get a finer scale of their own (RowScale); the down projection's
    // input (forward_gated, and the fused FFN's segments: rows made block by block, their
    // maximum unknown until the last block) keeps the tensor's scale, so both paths agree.
    Status st = quantize_activations(x, m, k(), 0, scale_, &s->act, ol, pool, Int8Isa::kAuto,
                                     RowScale::kFitBelowClip);
    (void)st;  // shapes were fixed at build time
    if (!down_) return run(s->act, ol, m, y, ldy, pool, s);
    // Paired gate/up rows (see pair_with): the output is panel-interleaved; give the caller
    // the usual [gate | up] rows (only tests and tools call forward on such a linear).
    const int64_t N = n(), F = N / 2;
    std::vector<float>& t = s->tmp;
    t.resize(static_cast<size_t>(m * N));
    run(s->act, ol, m, t.data(), N, pool, s);
    for (int64_t r = 0; r < m; ++r)
      for (int64_t q = 0; q < F / 16; ++q)
        for (int h = 0; h < 2; ++h)
          std::memcpy(y + r * ldy + h * F + q * 16, t.data() + r * N + (2 * q + h) * 16,
                      16 * sizeof(float));
  }
  // The FFN activation goes row by row into the quantiser (each row in L1): the gate/up
  // product's float output (5 MB per 256-token chunk on the 0.5B shape) is never written and
  // read back, and the activation's own pass over the pool is gone.
  bool fuses_gated() const override { return true; }
  void forward_gated(const float* gu, int64_t ldgu, GatedAct act, int64_t m, float* y,
                     int64_t ldy, ThreadPool* pool, LinearScratch* s) const override {
    const int64_t K = k();
    const ActRowFn row = [&](int64_t r, float* buf) -> const float* {
      act(gu + r * ldgu, gu + r * ldgu + K, buf, K);
      return buf;
    };
    OutlierList* ol = shadow_ ? &s->outliers : nullptr;
    Status st = quantize_activations_rows(row, m, K, scale_, &s->act, ol, pool);
    (void)st;
    run(s->act, ol, m, y, ldy, pool, s);
  }

  // Gate/up rows interleaved by 16-channel panel (gate 0-15, up 0-15, gate 16-31, ...), so
  // every GEMM block whose panels start and end on even panels holds both halves of the
  // activation for its channels. Build-time only (the weights were permuted to match).
  void pair_with(const Int8ShadowLinear* down) { down_ = down; }
  bool fuses_ffn() const override { return down_ != nullptr; }
  void forward_ffn(const float* x, int64_t m, GatedAct act, float* gu, int64_t ldgu, float* y,
                   int64_t ldy, ThreadPool* pool, LinearScratch* s) const override {
    OutlierList* ol = shadow_ ? &s->outliers : nullptr;
    Status st = quantize_activations(x, m, k(), 0, scale_, &s->act, ol, pool, Int8Isa::kAuto,
                                     RowScale::kFitBelowClip);
    const Int8ShadowLinear& down = *down_;
    Int8SegmentQuantizer quant;
    st = quant.begin(m, down.k(), down.scale_, &s->act2);
    (void)st;  // shapes were fixed at build time
    // Outliers of the down input, per block (a 64-row stripe of a column segment); sorted by
    // (first row, first panel) below, each row's come in the column-ascending order
    // whole-row quantisation gives.
    struct Piece {
      int64_t p0, m0, m1;
      size_t at, n;
    };
    std::vector<Piece>& pieces = tl<std::vector<Piece>>();
    pieces.clear();
    OutlierList& staged = s->outliers2;
    staged.clear();
    // A spin lock, not a mutex: blocks finish in bursts on both threads, and a contended
    // mutex puts the loser to sleep in the kernel (a futex wake-up costs more than the
    // copy it guards).
    std::atomic_flag busy = ATOMIC_FLAG_INIT;
    // The activations that read the interleaved halves in place (no copies apart per row).
    using Pairs = void (*)(const float*, float*, int64_t);
    Pairs pairs = nullptr;
    if (act == static_cast<GatedAct>(kernels::silu_mul_f32))
      pairs = kernels::silu_mul_pairs_f32;
    else if (act == static_cast<GatedAct>(kernels::gelu_tanh_mul_f32))
      pairs = kernels::gelu_tanh_mul_pairs_f32;
    const GemmAfter then = [&](int64_t m0, int64_t m1, int64_t p0, int64_t p1, float* t,
                               int64_t ldt) {
      OutlierList& mine = tl<OutlierList>();
      mine.clear();
      OutlierList* out = down.shadow_ ? &mine : nullptr;
      // Per row: one call of the activation for all the block's channels, reading the
      // interleaved gate/up halves in place (`pairs`; an activation without such a variant
      // gets them copied apart first); the quantiser takes 8 rows at a time (the VNNI row
      // block: whole-block stores).
      const int64_t q0 = p0 / 2, q1 = p1 / 2, c = 16 * (q1 - q0);
      if (c <= 0) return;
      constexpr int64_t kRows = 8;
      std::vector<float>& buf = tl<std::vector<float>>();
      if (static_cast<int64_t>(buf.size()) < (2 + kRows) * c)
        buf.resize(static_cast<size_t>((2 + kRows) * c));
      float *g = buf.data(), *u = g + c, *a = u + c;
      for (int64_t r0 = m0; r0 < m1; r0 += kRows) {
        const int64_t r1 = std::min(m1, r0 + kRows);
        for (int64_t r = r0; r < r1; ++r) {
          const float* row = t + (r - m0) * ldt;  // the block's row: channels from 16·p0
          if (pairs) {
            pairs(row, a + (r - r0) * c, c);
            continue;
          }
          for (int64_t q = 0; q < q1 - q0; ++q) {
            std::memcpy(g + 16 * q, row + 32 * q, 16 * sizeof(float));
            std::memcpy(u + 16 * q, row + 32 * q + 16, 16 * sizeof(float));
          }
          act(g, u, a + (r - r0) * c, c);
        }
        quant.segment_rows(a, c, r0, r1, 16 * q0, c, out);
      }
      if (mine.empty()) return;
      while (busy.test_and_set(std::memory_order_acquire)) __builtin_ia32_pause();
      pieces.push_back({p0, m0, m1, staged.size(), mine.size()});
      staged.insert(staged.end(), mine.begin(), mine.end());
      busy.clear(std::memory_order_release);
    };
    run(s->act, ol, m, gu, ldgu, pool, s, &then, 2);
    if (!down.shadow_) return down.run(s->act2, nullptr, m, y, ldy, pool, s);
    // Each row's outliers in column order: its stripe's pieces by first panel.
    std::sort(pieces.begin(), pieces.end(), [](const Piece& a, const Piece& b) {
      return a.m0 != b.m0 ? a.m0 < b.m0 : a.p0 < b.p0;
    });
    if (down.q4_) {  // run_q4 takes one list
      OutlierList& dol = s->outliers;  // this GEMM's own are done with
      dol.clear();
      for (const Piece& p : pieces)
        dol.insert(dol.end(), staged.begin() + static_cast<std::ptrdiff_t>(p.at),
                   staged.begin() + static_cast<std::ptrdiff_t>(p.at + p.n));
      return down.run(s->act2, &dol, m, y, ldy, pool, s);
    }
    std::vector<OutlierRun>& runs = tl<std::vector<OutlierRun>>();
    runs.clear();
    for (const Piece& p : pieces) runs.push_back({p.at, p.n, p.m0, p.m1});
    down.run(s->act2, &staged, m, y, ldy, pool, s, nullptr, 1, &runs);
  }

 private:
  // GEMM (and shadow path) on a quantised input and its outliers (null: no shadow path);
  // `then` (if set) runs on each output block after its shadow correction, on blocks aligned
  // to `align` panels. `runs` (optional): ol as row-disjoint runs (else made here from ol).
  void run(const Int8Activations& act, const OutlierList* ol, int64_t m, float* y, int64_t ldy,
           ThreadPool* pool, LinearScratch* s, const GemmAfter* then = nullptr,
           int64_t align = 1, const std::vector<OutlierRun>* runs = nullptr) const {
    Status st;
    s->entries += static_cast<uint64_t>(m * k());
    if (q4_) return run_q4(act, ol, m, y, ldy, pool, s, then, align);
    if (!ol || ol->empty()) {
      st = gemm(act, y, ldy, pool, then, align, then != nullptr);
      (void)st;  // shapes were fixed at build time
      return;
    }
    s->outlier_entries += ol->size();
    // Each outlier as the kernel reads it (with its float column when the channel is hot),
    // indexed by row; the corrections run on each block of the GEMM's output as it is
    // finished, while that block is still in cache. Per-thread scratch, no allocation once warm.
    // Per row: the int8-column entries first, then the float-column (hot) ones, each in its
    // own order. The kernel branches on the kind per entry; in random order (~17 % hot on
    // ffn_mid) that branch was mispredicted often (isolated kernel, 1.8B down projection's
    // shape: 5.7 → 4.8 cycles per entry and panel). Made on the pool: on the main thread
    // alone it was ~1 % of a 0.5B-shape prefill with the other thread waiting.
    struct Stage {  // a type of its own: tl<> keys its scratch by type
      std::vector<ShadowEntry> ents;
      std::vector<int32_t> row_begin, cold, hot;
      std::vector<size_t> units;
      std::vector<OutlierRun> runs;
    };
    Stage& st8 = tl<Stage>();
    if (!runs) {
      runs_of(*ol, m, pool ? pool->size() : 1, &st8.runs);
      runs = &st8.runs;
    }
    const auto is_hot = [this](const Outlier& o) {
      return !hot_index_.empty() && hot_index_[o.col] >= 0;
    };
    entries_by_row(*ol, *runs, m, is_hot, [this](const Outlier& o) { return entry_of(o); }, pool,
                   &st8.ents, &st8.row_begin, &st8.cold, &st8.hot, &st8.units);
    const std::vector<ShadowEntry>& ents = st8.ents;
    const std::vector<int32_t>& row_begin = st8.row_begin;
    const Int8Weights& w = lin_->weights();
    const GemmAfter shadow = [&](int64_t m0, int64_t m1, int64_t p0, int64_t p1, float* t,
                                 int64_t ldt) {
      w.shadow_rows(ents.data(), row_begin.data(), m0, m1, p0, p1,
                    hot_cols_.empty() ? nullptr : hot_cols_.data(), hot_stride_, t, ldt);
      if (then) (*then)(m0, m1, p0, p1, t, ldt);
    };
    st = gemm(act, y, ldy, pool, &shadow, align, then != nullptr);
    (void)st;
  }
  // An outlier as the shadow kernel reads it: with its float column when the channel is hot.
  ShadowEntry entry_of(const Outlier& o) const {
    const int32_t h = hot_index_.empty() ? -1 : hot_index_[o.col];
    return {h >= 0 ? hot_cols_.data() + static_cast<size_t>(h) * 16 : nullptr, o.col, o.residual};
  }
  // With a `then` hook (the fused FFN) the output is wanted only block by block in the hook:
  // the GEMM may keep each block in a per-thread tile instead of writing y (y_transient).
  Status gemm(const Int8Activations& act, float* y, int64_t ldy, ThreadPool* pool,
              const GemmAfter* after, int64_t align, bool transient) const {
    return gemm_int8(act, lin_->weights(), y, ldy, lin_->bias(), false, pool, after, align,
                     transient);
  }
  // The file's blocks: the kernel adds the correction of every outlier without a float column
  // itself, from the blocks it decodes (row by row, each row's in ascending column, as
  // Q4Shadow wants); the hot ones' float columns are added on each finished block, as on the
  // int8 path.
  void run_q4(const Int8Activations& act, const OutlierList* ol, int64_t m, float* y,
              int64_t ldy, ThreadPool* pool, LinearScratch* s, const GemmAfter* then,
              int64_t align) const {
    if (!ol || ol->empty()) {
      Status st = gemm_q4(act, *q4_, y, ldy, nullptr, pool, then, align);
      (void)st;  // shapes were fixed at build time
      return;
    }
    s->outlier_entries += ol->size();
    struct Cold {  // types of their own: tl<> keys its scratch by type
      std::vector<Q4Outlier> e;
      std::vector<int32_t> row_begin;
    };
    struct Hot {
      std::vector<ShadowEntry> e;
      std::vector<int32_t> row_begin;
    };
    Cold& cold = tl<Cold>();
    Hot& hot = tl<Hot>();
    // Each kind by row (the fused FFN's lists are column-segment-major), then each row's cold
    // ones in column order.
    const auto is_hot = [&](const Outlier& o) { return !hot_index_.empty() && hot_index_[o.col] >= 0; };
    outliers_by_row(*ol, m, is_hot, [this](const Outlier& o) { return entry_of(o); }, &hot.e,
                    &hot.row_begin);
    outliers_by_row(*ol, m, [&](const Outlier& o) { return !is_hot(o); },
                    [](const Outlier& o) { return Q4Outlier{o.col, o.residual}; }, &cold.e,
                    &cold.row_begin);
    const auto by_col = [](const Q4Outlier& a, const Q4Outlier& b) { return a.col < b.col; };
    for (int64_t r = 0; r < m; ++r) {
      Q4Outlier* const b = cold.e.data() + cold.row_begin[r];
      Q4Outlier* const x = cold.e.data() + cold.row_begin[r + 1];
      if (!std::is_sorted(b, x, by_col)) std::sort(b, x, by_col);
    }
    const Q4Shadow sh{cold.e.data(), cold.row_begin.data()};
    const GemmAfter with_hot = [&](int64_t m0, int64_t m1, int64_t p0, int64_t p1, float* t,
                                   int64_t ldt) {
      shadow_rows_hot(n_, hot.e.data(), hot.row_begin.data(), m0, m1, p0, p1, hot_cols_.data(),
                      hot_stride_, t, ldt);
      if (then) (*then)(m0, m1, p0, p1, t, ldt);
    };
    Status st = gemm_q4(act, *q4_, y, ldy, nullptr, pool, hot.e.empty() ? then : &with_hot,
                        align, cold.e.empty() ? nullptr : &sh);
    (void)st;
  }

  int64_t n_, k_;
  std::optional<Int8Linear> lin_;  // the int8 copy (unset: the file's blocks, q4_)
  float scale_;
  bool shadow_;
  const Int8ShadowLinear* down_ = nullptr;  // set: paired gate/up rows (pair_with)
  std::vector<int32_t> hot_index_;  // K entries: index into hot_cols_, or -1
  detail::AlignedVector<float> hot_cols_;  // [panels][n_hot][16] (see ShadowEntry)
  int64_t hot_stride_ = 0;          // n_hot·16
  std::optional<Q4Weights> q4_;     // set: the GEMM and the shadow path read the file's rows
};

// The LM head: int8 weights, activations quantised per row (no calibration needed).
class Int8DynamicLinear final : public Linear {
 public:
  explicit Int8DynamicLinear(Int8Linear lin) : lin_(std::move(lin)) {}
  int64_t n() const override { return lin_.n(); }
  int64_t k() const override { return lin_.k(); }
  size_t bytes() const override { return lin_.weights().bytes(); }
  void account(WeightBytes* b) const override { b->int8_lm_head += bytes(); }
  void forward(const float* x, int64_t m, float* y, int64_t ldy, ThreadPool* pool,
               LinearScratch* s) const override {
    Int8ForwardOptions o;
    o.scratch = &s->act;
    Status st = lin_.forward_dynamic(x, m, y, ldy, pool, o);
    (void)st;
  }

 private:
  Int8Linear lin_;
};

// The file's head serves prefill when its kernel quantises activations per block (any
// block-quantised type). Float heads (F16/BF16/F32) are larger than an int8 copy: copied.
bool file_head_serves(gguf::Type t) { return qgemv::supported(t) && qgemv::act_block(t) > 0; }

// The one type of a fused linear's tensors, if they share one the W4A8 kernel reads.
std::optional<gguf::Type> q4_type_of(std::initializer_list<const gguf::TensorInfo*> ts,
                                     int64_t k) {
  std::optional<gguf::Type> type;
  for (const gguf::TensorInfo* t : ts) {
    if (!t || !q4_gemm_reads(t->type, k) || (type && *type != t->type)) return std::nullopt;
    type = t->type;
  }
  return type;
}

}  // namespace

double q4_gemm_share(const Model& m) {
  if (!q4_gemm_preferred() || !m.file().is_mapped()) return 0.0;
  const HParams& hp = m.hparams();
  double on = 0, all = 0;
  // The fused linears of build_int8, each with its K.
  const auto add = [&](std::initializer_list<const gguf::TensorInfo*> ts, int64_t k) {
    double macs = 0;
    for (const gguf::TensorInfo* t : ts)
      if (t) macs += static_cast<double>(t->n_rows()) * static_cast<double>(k);
    all += macs;
    if (q4_type_of(ts, k)) on += macs;
  };
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    const LayerTensors& T = m.layer(il);
    add({T.wq, T.wk, T.wv}, hp.n_embd);
    add({T.wo}, hp.q_dim());
    add({T.ffn_gate, T.ffn_up}, hp.n_embd);
    add({T.ffn_down}, hp.n_ff);
  }
  return all > 0 ? on / all : 0.0;
}

bool q4_gemm_applies(const Model& m) { return q4_gemm_share(m) >= 0.5; }

Expected<std::shared_ptr<const Weights>> Weights::build_int8(const Model& m,
                                                             const Calibration& calib,
                                                             const Int8Options& opt,
                                                             ThreadPool* pool) {
  const HParams& hp = m.hparams();
  if (static_cast<int64_t>(calib.layers.size()) != hp.n_layer)
    return Status::Error(fmt::format("int8: calibration has {} layers, model {}",
                                     calib.layers.size(), hp.n_layer));
  // Pruning: keep the shadow path on the most important share of slots.
  std::vector<std::pair<double, int64_t>> rank;
  for (int64_t il = 0; il < hp.n_layer; ++il)
    for (int sl = 0; sl < kSlots; ++sl)
      rank.push_back({calib.layers[il][sl].importance, il * kSlots + sl});
  std::sort(rank.begin(), rank.end(), [](auto& a, auto& b) { return a.first > b.first; });
  const size_t keep = static_cast<size_t>(std::llround(
      std::clamp(opt.shadow_keep, 0.0, 1.0) * static_cast<double>(rank.size())));
  std::vector<bool> shadow(rank.size(), false);
  for (size_t i = 0; i < keep; ++i) shadow[static_cast<size_t>(rank[i].second)] = true;

  std::vector<LayerWeights> layers;
  std::vector<float> out_norm;
  OCTET_RETURN_IF_ERROR(fill_small_tensors(m, &layers, &out_norm));
  std::vector<float> buf;
  int64_t n = 0;
  // Gated FFNs run as one call (Linear::forward_ffn) when the gate/up rows can be paired by
  // 16-channel panel and both linears are int8.
  const char* float_slots = std::getenv("OCTET_INT8_FLOAT_SLOTS");
  const bool pair_ffn = opt.pair_ffn && !std::getenv("OCTET_NO_FFN_PAIR") && hp.n_ff % 16 == 0 &&
                        !(float_slots && (std::strstr(float_slots, slot_name(Slot::kFfnIn)) ||
                                          std::strstr(float_slots, slot_name(Slot::kFfnMid))));
  // The smoothing's passes over every weight (1.2 G on the 1.8B shape) were scalar loops on
  // one thread, ~10 % of a load's samples: rows on the pool, whole 16-wide steps the -O2
  // vectoriser takes. The same IEEE multiplies and divisions, so bit for bit the same weights.
  auto rows_on_pool = [&](int64_t rows, const auto& row) {
    parallel_for(pool, rows, 64, [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; ++r) row(r);
    });
  };
  auto mul_rows = [](float* __restrict y, const float* __restrict s, int64_t k) {
    int64_t c = 0;
    for (; c + 16 <= k; c += 16)
      for (int i = 0; i < 16; ++i) y[c + i] *= s[c + i];
    for (; c < k; ++c) y[c] *= s[c];
  };
  auto div_row = [](float* __restrict y, float d, int64_t k) {
    int64_t c = 0;
    for (; c + 16 <= k; c += 16)
      for (int i = 0; i < 16; ++i) y[c + i] /= d;
    for (; c < k; ++c) y[c] /= d;
  };
  // The file's blocks for the prefill GEMM (Int8Options::q4_gemm): only where the kernel is
  // preferred, the file is mapped, the linear's tensors share one format the kernel reads,
  // and its input (and, for gate/up, the up rows' ffn_mid factor) carries no smoothing.
  const bool use_q4 = opt.q4_gemm && q4_gemm_preferred() && m.file().is_mapped();
  const auto q4_input_unsmoothed = [&](int64_t il, Slot slot) {
    if (!calib.at(il, slot).smooth.empty()) return false;
    return slot != Slot::kFfnIn || calib.at(il, Slot::kFfnMid).smooth.empty();
  };
  // Rows in stack_rows' order: the tensors one after another, or (interleave 16) 16-row
  // blocks of the first and second tensor alternating.
  const auto q4_rows = [&](std::initializer_list<const gguf::TensorInfo*> ts, int64_t k,
                           int64_t interleave, gguf::Type type) -> Expected<Q4Weights> {
    std::vector<const gguf::TensorInfo*> tv(ts);
    const size_t rb = gguf::row_bytes(type, k);
    const auto row = [&](const gguf::TensorInfo* t, int64_t r) { return t->data + r * rb; };
    std::vector<const uint8_t*> rows;
    if (interleave > 0) {
      if (tv.size() != 2 || tv[0]->n_rows() != tv[1]->n_rows() || tv[0]->n_rows() % interleave)
        return Status::Error("int8: q4 rows: unpaired gate/up");
      for (int64_t b = 0; b < tv[0]->n_rows() / interleave; ++b)
        for (const gguf::TensorInfo* t : tv)
          for (int64_t r = 0; r < interleave; ++r) rows.push_back(row(t, b * interleave + r));
    } else {
      for (const gguf::TensorInfo* t : tv)
        for (int64_t r = 0; r < t->n_rows(); ++r) rows.push_back(row(t, r));
    }
    return Q4Weights::create(std::move(rows), k, type);
  };
  auto make = [&](std::initializer_list<const gguf::TensorInfo*> ts, int64_t k, int64_t il,
                  Slot slot) -> Expected<std::unique_ptr<Linear>> {
    // Paired gate/up rows: 16-row blocks of gate and up alternate (see pair_with).
    const bool paired = slot == Slot::kFfnIn && pair_ffn;
    const bool as_float = float_slots && std::strstr(float_slots, slot_name(slot));
    const size_t idx = static_cast<size_t>(il * kSlots + static_cast<int>(slot));
    if (const auto type = q4_type_of(ts, k);
        type && use_q4 && q4_input_unsmoothed(il, slot) && !as_float) {
      // The file's blocks serve the GEMM and the shadow path; the float weights are made
      // only for the hot channels' columns.
      OCTET_ASSIGN_OR_RETURN(Q4Weights q4, q4_rows(ts, k, paired ? 16 : 0, *type));
      const SlotCalib& c = calib.at(il, slot);
      const bool hot = shadow[idx] && opt.hot_float && !c.hot.empty();
      if (hot) OCTET_RETURN_IF_ERROR(stack_rows(m, ts, &buf, &n, paired ? 16 : 0, pool));
      return std::unique_ptr<Linear>(std::make_unique<Int8ShadowLinear>(
          std::move(q4), c, shadow[idx], hot ? buf.data() : nullptr, pool));
    }
    OCTET_RETURN_IF_ERROR(stack_rows(m, ts, &buf, &n, paired ? 16 : 0, pool));
    // Smoothing: the int8 path sees x/s, so W's columns take s (see calibration.h).
    if (const auto& s = calib.at(il, slot).smooth; !s.empty()) {
      if (static_cast<int64_t>(s.size()) != k) return Status::Error("int8: smoothing size");
      float* const w = buf.data();
      rows_on_pool(n, [&](int64_t r) { mul_rows(w + r * k, s.data(), k); });
    }
    // gate/up: the up rows produce ffn_mid, so they absorb ffn_mid's 1/s.
    if (slot == Slot::kFfnIn) {
      const auto& s = calib.at(il, Slot::kFfnMid).smooth;
      if (!s.empty()) {
        if (static_cast<int64_t>(s.size()) * 2 != n) return Status::Error("int8: smoothing size");
        float* const w = buf.data();
        rows_on_pool(hp.n_ff, [&](int64_t j) {
          const int64_t row = paired ? (2 * (j / 16) + 1) * 16 + j % 16 : hp.n_ff + j;
          div_row(w + row * k, s[j], k);
        });
      }
    }
    if (as_float) return std::unique_ptr<Linear>(std::make_unique<LinearF32>(buf.data(), n, k));
    OCTET_ASSIGN_OR_RETURN(Int8Linear lin, Int8Linear::from_float(buf.data(), n, k, nullptr, pool));
    return std::unique_ptr<Linear>(std::make_unique<Int8ShadowLinear>(
        std::move(lin), calib.at(il, slot), shadow[idx], buf.data(), opt.hot_float, pool));
  };
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    const LayerTensors& T = m.layer(il);
    LayerWeights& L = layers[il];
    // The RMSNorm gains produce attn_in / ffn_in: fold 1/s into them.
    // The file's gains stay for decode linears over the file's own (unsmoothed) weights.
    for (auto [slot, gain, orig] : {std::tuple{Slot::kAttnIn, &L.attn_norm, &L.dec_attn_norm},
                                    {Slot::kFfnIn, &L.ffn_norm, &L.dec_ffn_norm}}) {
      const auto& s = calib.at(il, slot).smooth;
      if (s.empty()) continue;
      if (s.size() != gain->size()) return Status::Error("int8: smoothing size vs norm");
      *orig = *gain;
      for (size_t c = 0; c < s.size(); ++c) (*gain)[c] /= s[c];
    }
    OCTET_ASSIGN_OR_RETURN(L.wqkv, make({T.wq, T.wk, T.wv}, hp.n_embd, il, Slot::kAttnIn));
    OCTET_ASSIGN_OR_RETURN(L.wo, make({T.wo}, hp.q_dim(), il, Slot::kAttnOut));
    OCTET_ASSIGN_OR_RETURN(L.w_gate_up, make({T.ffn_gate, T.ffn_up}, hp.n_embd, il, Slot::kFfnIn));
    OCTET_ASSIGN_OR_RETURN(L.w_down, make({T.ffn_down}, hp.n_ff, il, Slot::kFfnMid));
    if (pair_ffn)
      static_cast<Int8ShadowLinear&>(*L.w_gate_up)
          .pair_with(static_cast<const Int8ShadowLinear*>(L.w_down.get()));
  }
  // The LM head is the largest matrix (Gemma: 262144 × 640): quantise it in row blocks.
  std::vector<float>().swap(buf);
  const gguf::TensorInfo* out_t = m.output();
  if (out_t->row_len() != hp.n_embd) return Status::Error("int8: LM head width mismatch");
  if (float_slots && std::strstr(float_slots, "head")) {
    OCTET_RETURN_IF_ERROR(stack_rows(m, {out_t}, &buf, &n, 0, pool));
    return std::shared_ptr<const Weights>(std::make_shared<Weights>(
        ComputeMode::kInt8, std::move(layers), std::make_unique<LinearF32>(buf.data(), n, hp.n_embd),
        std::move(out_norm)));
  }
  if (opt.file_head && m.file().is_mapped() && file_head_serves(out_t->type)) {
    auto head = LinearGguf::create({out_t});
    if (head.ok()) {
      // Every prefill reads the whole head: mapped in at load, not by ~2 K page faults in
      // the first request's last stage (0.5B shape: that head 10-12 → 6.5 ms). Resident
      // from then on either way.
      populate_file_pages(out_t->data, static_cast<size_t>(out_t->nbytes));
      return std::shared_ptr<const Weights>(std::make_shared<Weights>(
          ComputeMode::kInt8, std::move(layers), std::move(head).value(), std::move(out_norm)));
    }
  }
  OCTET_ASSIGN_OR_RETURN(
      Int8Weights hq,
      Int8Weights::quantize_rows(out_t->n_rows(), hp.n_embd, [&](int64_t r0, int64_t rows, float* d) {
        Status st = m.file().dequantize_rows(*out_t, r0, rows, d);
        // Drop each block's file pages once copied, so the file's head (Gemma: 178 MB of
        // Q8_0) and its int8 copy are never resident together (peak RSS, docs/memory.md).
        const size_t rb = gguf::row_bytes(out_t->type, hp.n_embd);
        if (st.ok() && m.file().is_mapped())
          release_file_pages(out_t->data + static_cast<size_t>(r0) * rb, static_cast<size_t>(rows) * rb);
        return st;
      }, pool));
  OCTET_ASSIGN_OR_RETURN(Int8Linear head, Int8Linear::from_weights(std::move(hq), {}));
  return std::shared_ptr<const Weights>(std::make_shared<Weights>(
      ComputeMode::kInt8, std::move(layers), std::make_unique<Int8DynamicLinear>(std::move(head)),
      std::move(out_norm)));
}

}  // namespace octet
