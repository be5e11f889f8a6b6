// Calibration: runs the FP32 model with every linear wrapped by a recorder that watches its
// input. Pass 1 finds each tensor's |x| distribution (log histogram) and so its clip range;
// pass 2, with the ranges fixed, counts per-channel outliers and measures how much output
// error dropping the shadow correction would add.
#include "octet/calibration.h"

#include <cmath>
#include <cstring>
#include <algorithm>
#include <fmt/format.h>

#include "runtime/weights_util.h"

namespace octet {

const char* slot_name(Slot s) {
  switch (s) {
    case Slot::kAttnIn: return "attn_in";
    case Slot::kAttnOut: return "attn_out";
    case Slot::kFfnIn: return "ffn_in";
    case Slot::kFfnMid: return "ffn_mid";
  }
  return "?";
}

namespace {

// |x| histogram over log2 space: 64 bins per octave from 2^-24 to 2^24.
constexpr int kSub = 64, kMinExp = -24, kMaxExp = 24;
constexpr int kBins = (kMaxExp - kMinExp) * kSub + 1;

int bin_of(float a) {
  if (!(a > 0)) return 0;
  const double b = (std::log2(static_cast<double>(a)) - kMinExp) * kSub;
  return b < 0 ? 0 : b >= kBins - 1 ? kBins - 1 : static_cast<int>(b) + 1;
}
float bin_upper(int b) {
  return b == 0 ? 0.f : static_cast<float>(std::exp2(kMinExp + static_cast<double>(b) / kSub));
}

// Representative |x| of bin b (geometric middle).
double bin_mid(int b) { return b == 0 ? 0.0 : std::exp2(kMinExp + (b - 0.5) / kSub); }

// int8 rounding noise of the entries within `clip` (step Δ = clip/127: entries below Δ/2
// round to zero, the others carry Δ²/12; entries beyond it go to the exact shadow path),
// relative to the RMS of the entries in bins [0, pct_bin] (the bulk the clip must resolve).
double clip_noise(const std::vector<uint64_t>& hist, int pct_bin, float clip) {
  const double d = clip / 127.0, half = d / 2;
  double noise = 0, bulk = 0;
  for (int b = 1; b < kBins; ++b) {
    if (!hist[b]) continue;
    const double v = bin_mid(b), n = static_cast<double>(hist[b]);
    if (b <= pct_bin) bulk += n * v * v;
    if (v > clip) break;
    noise += n * (v < half ? v * v : d * d / 12);
  }
  return bulk > 0 ? std::sqrt(noise / bulk) : 0.0;
}

struct SlotStats {
  // pass 0 (smoothing): per-channel max |x|
  std::vector<float> chan_absmax;
  // pass 1
  std::vector<uint64_t> hist = std::vector<uint64_t>(kBins, 0);
  float absmax = 0;
  uint64_t entries = 0;
  // pass 2
  std::vector<uint32_t> chan_outlier_rows;  // per input channel: rows where it was an outlier
  uint64_t rows = 0, outliers = 0;
  double err2 = 0, out2 = 0;
};

// Passes everything to the wrapped FP32 linear, recording its input first.
class Recorder final : public Linear {
 public:
  Recorder(const Linear* inner, SlotStats* st, const int* pass, const float* clip,
           const std::vector<float>* smooth)
      : inner_(inner), st_(st), pass_(pass), clip_(clip), smooth_(smooth) {}
  int64_t n() const override { return inner_->n(); }
  int64_t k() const override { return inner_->k(); }
  size_t bytes() const override { return 0; }
  void forward(const float* x, int64_t m, float* y, int64_t ldy, ThreadPool* pool,
               LinearScratch* scratch) const override {
    inner_->forward(x, m, y, ldy, pool, scratch);
    if (!st_) return;
    const int64_t K = k(), N = n();
    if (*pass_ == 0) {
      if (st_->chan_absmax.empty()) st_->chan_absmax.assign(static_cast<size_t>(K), 0.f);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < K; ++j)
          st_->chan_absmax[j] = std::max(st_->chan_absmax[j], std::fabs(x[i * K + j]));
      return;
    }
    // Statistics describe what the int8 path will see: the smoothed x/s.
    const std::vector<float>& sm = *smooth_;
    std::vector<float> xs;
    if (!sm.empty()) {
      xs.resize(static_cast<size_t>(m * K));
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < K; ++j) xs[i * K + j] = x[i * K + j] / sm[j];
      x = xs.data();
    }
    if (*pass_ == 1) {
      for (int64_t i = 0; i < m * K; ++i) {
        const float a = std::fabs(x[i]);
        st_->absmax = std::max(st_->absmax, a);
        st_->hist[bin_of(a)]++;
      }
      st_->entries += static_cast<uint64_t>(m * K);
      return;
    }
    const float c = *clip_;
    if (st_->chan_outlier_rows.empty()) st_->chan_outlier_rows.assign(K, 0);
    std::vector<float> r(static_cast<size_t>(m * K), 0.f);
    bool any = false;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < K; ++j) {
        const float v = x[i * K + j];
        if (std::fabs(v) > c) {
          // back to the unsmoothed space of the FP32 linear: r·s
          r[i * K + j] = (v - std::copysign(c, v)) * (sm.empty() ? 1.f : sm[j]);
          st_->chan_outlier_rows[j]++;
          st_->outliers++;
          any = true;
        }
      }
    st_->rows += static_cast<uint64_t>(m);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < N; ++j) st_->out2 += double(y[i * ldy + j]) * y[i * ldy + j];
    if (!any) return;
    std::vector<float> e(static_cast<size_t>(m * N));
    inner_->forward(r.data(), m, e.data(), N, pool, scratch);
    for (float v : e) st_->err2 += double(v) * v;
  }

 private:
  const Linear* inner_;
  SlotStats* st_;
  const int* pass_;
  const float* clip_;
  const std::vector<float>* smooth_;
};

// Non-owning pass-through (the LM head during calibration).
class Ref final : public Linear {
 public:
  explicit Ref(const Linear* inner) : inner_(inner) {}
  int64_t n() const override { return inner_->n(); }
  int64_t k() const override { return inner_->k(); }
  size_t bytes() const override { return 0; }
  void forward(const float* x, int64_t m, float* y, int64_t ldy, ThreadPool* pool,
               LinearScratch* scratch) const override {
    inner_->forward(x, m, y, ldy, pool, scratch);
  }

 private:
  const Linear* inner_;
};

// s_k = max|x_k|^α / max_n|W[n,k]|^(1−α), for the slots whose producer can absorb 1/s.
Status compute_smoothing(const Model& m,
                         const std::vector<std::array<SlotStats, kSlots>>& stats, double alpha,
                         std::vector<std::array<std::vector<float>, kSlots>>* smooth) {
  std::vector<float> w;
  int64_t n = 0;
  for (size_t il = 0; il < stats.size(); ++il) {
    const LayerTensors& T = m.layer(static_cast<int64_t>(il));
    for (Slot slot : {Slot::kAttnIn, Slot::kFfnIn, Slot::kFfnMid}) {
      const auto& ax = stats[il][int(slot)].chan_absmax;
      if (ax.empty()) continue;
      if (slot == Slot::kAttnIn) OCTET_RETURN_IF_ERROR(stack_rows(m, {T.wq, T.wk, T.wv}, &w, &n));
      if (slot == Slot::kFfnIn) OCTET_RETURN_IF_ERROR(stack_rows(m, {T.ffn_gate, T.ffn_up}, &w, &n));
      if (slot == Slot::kFfnMid) OCTET_RETURN_IF_ERROR(stack_rows(m, {T.ffn_down}, &w, &n));
      const size_t K = ax.size();
      if (w.size() != static_cast<size_t>(n) * K) return Status::Error("calibrate: shape mismatch");
      std::vector<float> aw(K, 0.f);
      for (int64_t r = 0; r < n; ++r)
        for (size_t k = 0; k < K; ++k) aw[k] = std::max(aw[k], std::fabs(w[r * K + k]));
      auto& s = (*smooth)[il][int(slot)];
      s.assign(K, 1.f);
      for (size_t k = 0; k < K; ++k)
        if (ax[k] > 0 && aw[k] > 0)
          s[k] = std::clamp(static_cast<float>(std::pow(ax[k], alpha) / std::pow(aw[k], 1 - alpha)),
                            1e-4f, 1e4f);
    }
  }
  return Status::Ok();
}

}  // namespace

Expected<Calibration> calibrate(std::shared_ptr<const Model> model,
                                std::shared_ptr<const Weights> fp32,
                                const std::vector<Token>& tokens, const CalibOptions& opt,
                                ThreadPool* pool,
                                const std::function<void(const std::string&)>& progress) {
  const HParams& hp = model->hparams();
  if (tokens.size() < 16) return Status::Error("calibrate: need at least 16 tokens of text");
  if (fp32->mode() != ComputeMode::kFp32) return Status::Error("calibrate: needs FP32 weights");
  const int64_t L = hp.n_layer;
  std::vector<std::array<SlotStats, kSlots>> stats(static_cast<size_t>(L));
  std::vector<std::array<float, kSlots>> clips(static_cast<size_t>(L));
  std::vector<std::array<std::vector<float>, kSlots>> smooth(static_cast<size_t>(L));
  int pass = opt.smooth_alpha > 0 ? 0 : 1;

  std::vector<LayerWeights> layers;
  std::vector<float> out_norm;
  OCTET_RETURN_IF_ERROR(Weights::fill_small_tensors(*model, &layers, &out_norm));
  for (int64_t il = 0; il < L; ++il) {
    const LayerWeights& F = fp32->layer(il);
    LayerWeights& W = layers[il];
    auto rec = [&](const Linear* lin, Slot s) {
      return std::make_unique<Recorder>(lin, &stats[il][int(s)], &pass, &clips[il][int(s)],
                                        &smooth[il][int(s)]);
    };
    W.wqkv = rec(F.wqkv.get(), Slot::kAttnIn);
    W.wo = rec(F.wo.get(), Slot::kAttnOut);
    W.w_gate_up = rec(F.w_gate_up.get(), Slot::kFfnIn);
    W.w_down = rec(F.w_down.get(), Slot::kFfnMid);
  }
  auto rec_weights = std::make_shared<Weights>(ComputeMode::kFp32, std::move(layers),
                                               std::make_unique<Ref>(&fp32->lm_head()),
                                               std::move(out_norm));
  SessionOptions so;
  so.n_ctx = opt.segment + 1;
  so.chunk = std::min<int64_t>(256, opt.segment + 1);
  so.full_last_layer = true;  // every row's inputs of the last layer's linears are recorded
  Session s(model, rec_weights, so, pool);
  const Token bos = model->tokenizer().bos();

  auto run_pass = [&]() -> Status {
    for (size_t i = 0; i < tokens.size(); i += static_cast<size_t>(opt.segment)) {
      std::vector<Token> seg;
      if (bos >= 0 && tokens[i] != bos) seg.push_back(bos);
      const size_t e = std::min(tokens.size(), i + static_cast<size_t>(opt.segment));
      seg.insert(seg.end(), tokens.begin() + i, tokens.begin() + e);
      s.truncate(0);
      OCTET_RETURN_IF_ERROR(s.eval(seg, false, nullptr));
      if (progress)
        progress(fmt::format("calibration pass {}/{}: {}/{} tokens", pass + (opt.smooth_alpha > 0),
                             opt.smooth_alpha > 0 ? 3 : 2, e, tokens.size()));
    }
    return Status::Ok();
  };

  if (pass == 0) {
    OCTET_RETURN_IF_ERROR(run_pass());
    OCTET_RETURN_IF_ERROR(compute_smoothing(*model, stats, opt.smooth_alpha, &smooth));
    pass = 1;
  }
  OCTET_RETURN_IF_ERROR(run_pass());
  Calibration c;
  c.opts = opt;
  c.tokens = static_cast<int64_t>(tokens.size());
  c.layers.resize(static_cast<size_t>(L));
  for (int64_t il = 0; il < L; ++il)
    for (int sl = 0; sl < kSlots; ++sl) {
      SlotStats& st = stats[il][sl];
      SlotCalib& sc = c.layers[il][sl];
      sc.absmax = st.absmax;
      sc.smooth = smooth[il][sl];
      const double want = opt.percentile / 100.0 * static_cast<double>(st.entries);
      double acc = 0;
      int b = 0;
      for (; b < kBins - 1; ++b) {
        acc += static_cast<double>(st.hist[b]);
        if (acc >= want) break;
      }
      sc.pct = std::min(bin_upper(b), st.absmax);
      sc.clip = sc.pct > 0 && st.absmax / sc.pct > opt.ratio ? sc.pct : st.absmax;
      if (sc.clip < st.absmax && opt.qerr_target > 0) {
        // Relax the clip while the bulk keeps its resolution: a clip this high sends fewer
        // entries down the float shadow path (Gaussian-like tensors need none at all).
        for (int c = b + 1; c < kBins && bin_upper(c - 1) < st.absmax; ++c) {
          const float cand = std::min(bin_upper(c), st.absmax);
          if (clip_noise(st.hist, b, cand) > opt.qerr_target) break;
          sc.clip = cand;
        }
      }
      if (!(sc.clip > 0)) sc.clip = 1e-6f;
      sc.qerr = clip_noise(st.hist, b, sc.clip);
      clips[il][sl] = sc.clip;
    }
  pass = 2;
  OCTET_RETURN_IF_ERROR(run_pass());
  for (int64_t il = 0; il < L; ++il)
    for (int sl = 0; sl < kSlots; ++sl) {
      SlotStats& st = stats[il][sl];
      SlotCalib& sc = c.layers[il][sl];
      for (size_t j = 0; j < st.chan_outlier_rows.size(); ++j)
        if (st.rows && st.chan_outlier_rows[j] >= opt.hot_freq * static_cast<double>(st.rows))
          sc.hot.push_back(static_cast<int32_t>(j));
      const double entries = static_cast<double>(st.rows) * static_cast<double>(
                                 st.chan_outlier_rows.size());
      sc.outlier_rate = entries > 0 ? static_cast<double>(st.outliers) / entries : 0;
      sc.importance = st.out2 > 0 ? std::sqrt(st.err2 / st.out2) : 0;
    }
  c.model_fingerprint = model_fingerprint(model->file());
  return c;
}

}  // namespace octet
