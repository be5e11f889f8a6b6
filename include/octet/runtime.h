// Executable weights and sessions. A Weights object holds each linear layer in the form one
// compute path wants (FP32 packed now; INT8 with shadow outliers in quant/), plus the small
// float tensors (norms, biases). A Session owns a KV cache and runs tokens through the model
// in chunks of a fixed size, reusing one set of activation buffers for every chunk.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "octet/aligned.h"
#include "octet/int8.h"
#include "octet/kernels.h"
#include "octet/memory.h"
#include "octet/model.h"
#include "octet/qgemv.h"
#include "octet/status.h"
#include "octet/threads.h"

namespace octet {

namespace sched {
enum class Kind : uint8_t;
struct Node;
struct RunOptions;
struct ChunkArenas;
}  // namespace sched

// Per-session working memory of the linear layers (linears themselves are shared and
// immutable): the quantised activations and outlier list of the INT8 path, reused by every
// call so no chunk allocates.
struct LinearScratch {
  Int8Activations act;
  OutlierList outliers;
  // The down projection's input while the gate/up GEMM makes it (Linear::forward_ffn).
  Int8Activations act2;
  OutlierList outliers2;
  std::vector<float> tmp;
  // Quantised activations of the GGUF decode linears (linear_gguf.h): 32- and 256-blocks,
  // one entry per group of ≤ 4 rows.
  std::vector<qgemv::Acts> dec_act32, dec_act256;
  // Counters for reports: activation entries seen and how many were outliers.
  uint64_t entries = 0, outlier_entries = 0;
};

// y[m, n] = x[m, k] · Wᵀ (+ bias). Implementations: FP32 (here), INT8 (quant/).
class Linear {
 public:
  virtual ~Linear() = default;
  virtual int64_t n() const = 0;
  virtual int64_t k() const = 0;
  virtual void forward(const float* x, int64_t m, float* y, int64_t ldy, ThreadPool* pool,
                       LinearScratch* scratch) const = 0;
  // A gated FFN's down projection taking the gate/up product itself: input row r is
  // act(gu + r·ldgu, gu + r·ldgu + k(), ·, k()). Linears that quantise their input a row at a
  // time (int8) make each row in L1 and never write the activation's output (fuses_gated());
  // the default makes it in full and calls forward.
  using GatedAct = void (*)(const float* gate, const float* up, float* out, int64_t n);
  virtual bool fuses_gated() const { return false; }
  virtual void forward_gated(const float* gu, int64_t ldgu, GatedAct act, int64_t m, float* y,
                             int64_t ldy, ThreadPool* pool, LinearScratch* scratch) const;
  // A gate/up projection that runs its whole gated FFN: y = down(act(gate, up)) for input x,
  // with the activation and the down projection's input quantisation done on each block of
  // the gate/up output as its GEMM finishes it (the output never makes a round trip through
  // memory). gu [m, ldgu >= n()] is its working space. Only when fuses_ffn() (int8 weights
  // paired at load, quant/int8_weights.cpp); the session then skips the down stage.
  virtual bool fuses_ffn() const { return false; }
  virtual void forward_ffn(const float* x, int64_t m, GatedAct act, float* gu, int64_t ldgu,
                           float* y, int64_t ldy, ThreadPool* pool, LinearScratch* s) const;
  virtual size_t bytes() const = 0;
  // Adds its bytes to the right kinds of a breakdown (default: FP32 heap).
  virtual void account(WeightBytes* b) const { b->f32 += bytes(); }
};

class LinearF32 final : public Linear {
 public:
  LinearF32(const float* w, int64_t n, int64_t k) : w_(w, n, k) {}
  int64_t n() const override { return w_.n(); }
  int64_t k() const override { return w_.k(); }
  void forward(const float* x, int64_t m, float* y, int64_t ldy, ThreadPool* pool,
               LinearScratch*) const override {
    kernels::gemm_f32(x, m, w_, y, ldy, pool);
  }
  size_t bytes() const override { return w_.bytes(); }

 private:
  kernels::PackedF32 w_;
};

struct LayerWeights {
  std::unique_ptr<Linear> wqkv;      // q, k, v fused: n = q_dim + 2·kv_dim
  std::unique_ptr<Linear> wo;
  std::unique_ptr<Linear> w_gate_up; // gate, up fused: n = 2·n_ff
  std::unique_ptr<Linear> w_down;
  // Decode linears (same shapes) over the GGUF's own blocks, used for chunks of <= 4 rows;
  // null unless Weights::attach_gguf_decode ran.
  std::unique_ptr<Linear> dec_wqkv, dec_wo, dec_gate_up, dec_down;
  std::vector<float> bqkv;           // empty when no biases
  std::vector<float> attn_norm, q_norm, k_norm, attn_post_norm, ffn_norm, ffn_post_norm;
  // The file's own attn_norm / ffn_norm gains when the int8 ones carry a smoothing factor 1/s
  // (its s is in the int8 weights only): what the decode linears' inputs need. Empty: same.
  std::vector<float> dec_attn_norm, dec_ffn_norm;
  const std::vector<float>& attn_norm_for(bool dec) const {
    return dec && !dec_attn_norm.empty() ? dec_attn_norm : attn_norm;
  }
  const std::vector<float>& ffn_norm_for(bool dec) const {
    return dec && !dec_ffn_norm.empty() ? dec_ffn_norm : ffn_norm;
  }
};

// kGguf: every linear (prefill too) reads the file's own quantised blocks in place — no int8
// or float copy of the weights, for tight memory; prefill is slower (decode GEMV kernels).
enum class ComputeMode { kFp32, kInt8, kGguf };
struct Calibration;

// Share of the block linears' multiply-adds per token that Int8Options::q4_gemm can put on
// the file's blocks: 0 unless this CPU prefers gemm_q4 (q4_gemm_preferred) and the file is
// mapped; else the linears (fused q/k/v, o, fused gate/up, down) whose tensors share one type
// gemm_q4 reads (q4_gemm_reads: Q4_0, Q5_0, Q4_K, Q5_K). Gemma 3 270M Q4_K_M: 0.79.
double q4_gemm_share(const Model& m);
// q4_gemm_share(m) ≥ 0.5: most of the prefill GEMM can run on the file's blocks (the
// calibration default then skips smoothing, which those blocks cannot carry).
bool q4_gemm_applies(const Model& m);

struct Int8Options {
  // Share of linear inputs (ranked by calibrated importance) that keep the shadow-outlier
  // path; the rest only see clipped activations. 1 = all, 0 = none.
  double shadow_keep = 1.0;
  // Keep float columns of W for hot channels (else every outlier reads int8 weights).
  bool hot_float = true;
  // Run each gated FFN as one call (Linear::forward_ffn) where it can: gate/up rows paired
  // by 16-channel panel. OCTET_NO_FFN_PAIR=1 in the environment turns it off too.
  bool pair_ffn = true;
  // The LM head reads the file's own quantised blocks in place (the decode GEMV kernels) when
  // the head is block-quantised (float heads get the int8 copy): the logits are those of
  // the decode steps (which read the same blocks), activations are quantised per 32 or 256
  // values instead of per row (Gemma 3: the int8 copy's per-row scales were half of the INT8
  // path's KL against FP32), and no copy is made at load (Gemma 3: 168 MB).
  // False: always the int8 copy (its GEMM is faster for many rows of logits at once).
  bool file_head = true;
  // On CPUs without AVX-512 VNNI (q4_gemm_preferred()), a linear whose tensors share one type
  // gemm_q4 reads (Q4_0, Q5_0, Q4_K, Q5_K) runs its prefill GEMM on the file's blocks (4-5
  // bit codes × int8 activations, 1.1-1.5× the int16 int8 GEMM there) when its input is not
  // smoothed (the file's weights cannot carry the smoothing factors: calibrate with
  // --smooth 0, the default where q4_gemm_applies). The int8 copy stays for the shadow
  // path's columns.
  bool q4_gemm = true;
};
const char* compute_mode_name(ComputeMode m);

class Weights {
 public:
  // Dequantises the model's linears to FP32 and packs them (progress to stderr if verbose).
  static Expected<std::shared_ptr<const Weights>> build_fp32(const Model& m, ThreadPool* pool);
  // W8A8 linears with static activation scales from a calibration (quant/int8_weights.cpp).
  static Expected<std::shared_ptr<const Weights>> build_int8(const Model& m,
                                                             const Calibration& calib,
                                                             const Int8Options& opt,
                                                             ThreadPool* pool);

  const LayerWeights& layer(int64_t i) const { return layers_[i]; }
  // Every down projection (decode ones too) makes its own activation rows (fuses_gated):
  // the arena then needs no buffer for the activation's output.
  bool ffn_act_fused() const {
    for (const auto& L : layers_)
      if (!L.w_down || !L.w_down->fuses_gated() || (L.dec_down && !L.dec_down->fuses_gated()))
        return false;
    return true;
  }
  const Linear& lm_head() const { return *lm_head_; }
  const std::vector<float>& output_norm() const { return out_norm_; }
  ComputeMode mode() const { return mode_; }
  size_t bytes() const;
  // bytes() by kind, plus the mapped GGUF bytes of the decode linears.
  WeightBytes breakdown() const;
  // Every linear over the mapped file (ComputeMode::kGguf, linear_gguf.cpp): errors when a
  // tensor's type has no GGUF kernel.
  static Expected<std::shared_ptr<const Weights>> build_gguf(const Model& m);
  // Decode linears (linear_gguf.cpp): all of them or none. Reading the file's quantised
  // blocks in place, they add no heap; decode_bytes() counts the mapped bytes they read.
  Status attach_gguf_decode(const Model& m);
  const Linear* decode_lm_head() const { return dec_lm_head_.get(); }
  bool has_decode() const { return dec_lm_head_ != nullptr; }
  size_t decode_bytes() const;

  // For other builders (INT8): fills norms/biases, leaving linears to the caller.
  static Status fill_small_tensors(const Model& m, std::vector<LayerWeights>* layers,
                                   std::vector<float>* out_norm);
  Weights(ComputeMode mode, std::vector<LayerWeights> layers, std::unique_ptr<Linear> lm_head,
          std::vector<float> out_norm)
      : mode_(mode), layers_(std::move(layers)), lm_head_(std::move(lm_head)),
        out_norm_(std::move(out_norm)) {}

 private:
  ComputeMode mode_;
  std::vector<LayerWeights> layers_;
  std::unique_ptr<Linear> lm_head_;
  std::vector<float> out_norm_;
  std::unique_ptr<Linear> dec_lm_head_;
};

// The KV rows of a session's first positions, copied out for a prefix cache (serve/) or a
// session file: a snapshot costs only its own length, not the session's whole context. Rows
// are kept in the session's KV type: F32 in k/v, F16 / INT8 as raw rows in kq/vq (INT8 with
// per-row scales). Sliding-window layers only hold positions [window_first, tokens.size()).
// Layout: [layer][kv_head][position][head_dim].
struct KvSnapshot {
  std::vector<Token> tokens;
  kernels::KvType type = kernels::KvType::kF32;
  int64_t window_first = 0;
  std::vector<float> k, v;                // F32
  std::vector<uint8_t> kq, vq;            // F16 / INT8 rows
  std::vector<float> k_scale, v_scale;    // INT8: one per row
  size_t bytes() const {
    return (k.size() + v.size() + k_scale.size() + v_scale.size()) * sizeof(float) +
           kq.size() + vq.size() + tokens.size() * sizeof(Token);
  }
};

// Operands of prefill attention (kernels::AttentionDims::bf16): auto is bf16 unless the
// weights are the fp32 reference (docs/results.md, "bf16 attention operands").
enum class AttnOperands : uint8_t { kAuto, kF32, kBF16PV, kBF16 };
// "auto" | "f32" | "bf16-pv" (P·V only) | "bf16" (Q·K and P·V)
bool parse_attn_operands(const std::string& s, AttnOperands* a);

struct SessionOptions {
  int64_t n_ctx = 4096;   // KV capacity in tokens (capped at the model's training context)
  int64_t chunk = 512;    // prefill chunk size C: one static plan for every chunk
                          // (512: measured faster than 256, docs/results.md "Session 10")
  kernels::KvType kv_type = kernels::KvType::kF16;  // KV cache storage (docs/decode.md)
  AttnOperands attn = AttnOperands::kAuto;
  // Every row through the whole last layer even where no logits are read (else it runs past
  // its K/V only for the logits' rows): for callers that observe the linears' inputs, such
  // as calibration.
  bool full_last_layer = false;
};

class Session;
class BatchDecoder;

// Lets a caller route a session's eval() elsewhere (serve/: concurrent decode steps of
// several sessions run as one batch). The hook is unset while it runs, so calling s.eval()
// from inside it evaluates directly.
class EvalHook {
 public:
  virtual ~EvalHook() = default;
  virtual Status eval(Session& s, std::span<const Token> toks, bool all_logits,
                      std::vector<float>* logits) = 0;
};

class Session {
 public:
  Session(std::shared_ptr<const Model> model, std::shared_ptr<const Weights> weights,
          const SessionOptions& opt, ThreadPool* pool);

  // Runs toks at positions n_past()...; logits: [toks.size(), n_vocab] when all_logits, else
  // just the last row. An empty logits pointer skips the LM head entirely.
  Status eval(std::span<const Token> toks, bool all_logits, std::vector<float>* logits);
  // The same, run as a DAG of integer and float subgraphs over a small pool of chunk arenas
  // on the processors and with the policy of opt (src/sched/exec.cpp, docs/scheduler.md).
  // Outputs equal eval()'s bit for bit.
  Status eval_scheduled(std::span<const Token> toks, bool all_logits, std::vector<float>* logits,
                        const sched::RunOptions& opt);
  int64_t n_past() const { return n_past_; }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t chunk() const { return chunk_; }
  // Largest eval whose every row's logits are bit-identical to evaluating its tokens one at
  // a time (same linears as a decode step, attention row path): speculative verification.
  int64_t exact_batch() const {
    return std::min({chunk_, kernels::kAttnRowQueries, w_->has_decode() ? qgemv::kMaxRows : chunk_});
  }
  // Forget everything after the first n tokens (n <= n_past). Sliding-window layers keep
  // window + chunk slots, so going back up to `chunk` positions (minus what the window layers
  // already overwrote, see truncate_is_cheap) is free; further back the session re-prefills
  // its own history[0, n) (correct, costs a prefill of n tokens).
  void truncate(int64_t n);
  // True when truncate(n) needs no re-prefill.
  bool truncate_is_cheap(int64_t n) const;
  // Copy out the KV of the first n positions (n <= n_past), and put the first n positions of
  // a snapshot back (replacing everything; the snapshot must come from the same model and
  // KV type; a window layer's rows must reach back to n - window + 1).
  KvSnapshot save_kv(int64_t n) const;
  Status load_kv(const KvSnapshot& snap, int64_t n);
  const Model& model() const { return *model_; }
  const std::vector<Token>& history() const { return history_; }
  size_t kv_bytes() const {
    return k_.size() + v_.size() + (ks_.size() + vs_.size()) * sizeof(float);
  }
  kernels::KvType kv_type() const { return kv_type_; }
  // Which of prefill attention's products run on bf16 operands (the option resolved for
  // these weights and this CPU).
  kernels::AttnBf16 attn_bf16() const { return attn_bf16_; }
  // Slots of the sliding-window layers (0: they keep every position like the others).
  int64_t window_slots() const { return ring_; }
  size_t arena_bytes() const;
  const LinearScratch& scratch() const { return scratch_; }
  // Route eval() through hook (null: evaluate directly). Not owned.
  void set_eval_hook(EvalHook* hook) { hook_ = hook; }

 private:
  friend class BatchDecoder;  // batch.cpp: one decode step of several sessions
  // The checks every eval path makes before touching anything (ids, context room).
  Status check_eval(std::span<const Token> toks) const;
  void run_chunk(const Token* toks, int64_t m, bool all_logits, std::vector<float>* logits,
                 size_t logits_row0);
  void attention(int64_t il, int64_t m, int64_t pos0);
  void attention(int64_t il, int64_t m, int64_t pos0, const float* qkv, float* att,
                 ThreadPool* pool);
  // keep: the node's chunk's keep_rows (its last layer's cut).
  void run_node(const sched::Node& n, sched::ChunkArenas& a, int arena, int proc,
                const Token* toks, bool all_logits, std::vector<float>* logits, int64_t keep);
  // One chunk's activation buffers: the session's own arena (eval) or a scheduler arena.
  struct StageBuffers {
    float *x, *xn, *qkv, *att, *o, *gu, *h, *rc, *rs, *rc_swa, *rs_swa;
    // Rows offset by i (one row of a batch: its own position and KV, see batch.cpp).
    StageBuffers row(int64_t i, const HParams& hp) const;
  };
  // One stretch of a chunk's layer (a subgraph of sched::build_graph): the only code of the
  // forward pass, run in order by run_chunk and as DAG nodes by eval_scheduled. kHead writes
  // the logits rows to `out`.
  // `decode` picks the GGUF decode linears (when the weights have them); callers pass
  // use_decode_linears(m) so that a chunk's rows are computed like the same rows alone.
  // kAttn with attn_rows >= 0: every row's K/V go into the cache, but only the last
  // attn_rows rows get their attention output (run_chunk_stage's last layer).
  void run_stage(sched::Kind kind, int64_t il, int64_t m, int64_t pos0, const StageBuffers& b,
                 const Token* toks, bool all_logits, float* out, ThreadPool* pool,
                 LinearScratch* scratch, bool decode, int64_t attn_rows = -1);
  // run_stage for a prefill chunk of m rows (run_chunk and eval_scheduled's nodes): in the
  // last layer every row's K/V go into the cache, but the stages after them run only for the
  // chunk's last `keep` rows (keep_rows), computed like those rows alone.
  void run_chunk_stage(sched::Kind kind, int64_t il, int64_t m, int64_t pos0,
                       const StageBuffers& b, const Token* toks, bool all_logits, float* out,
                       ThreadPool* pool, LinearScratch* scratch, int64_t keep);
  // The rows of a chunk of m that run the last layer past its K/V: the rows that get logits
  // (all of them with all_logits or SessionOptions::full_last_layer, else the final chunk's
  // last one), since the LM head alone reads that layer's outputs.
  int64_t keep_rows(int64_t m, bool all_logits, bool gets_logits) const {
    return all_logits || full_last_layer_ ? m : (gets_logits ? 1 : 0);
  }
  bool use_decode_linears(int64_t m) const { return m <= qgemv::kMaxRows && w_->has_decode(); }
  // KV cache accessors (the only code that knows the storage layout).
  kernels::KvView kv_view(int64_t il, bool v) const;
  void store_kv(int64_t il, int64_t h, int64_t pos, const float* k, const float* v);
  int64_t slot(int64_t il, int64_t pos) const {
    return layer_slots_[il] == n_ctx_ ? pos : pos % layer_slots_[il];
  }
  // Lowest position whose rows the window layers still hold.
  int64_t window_lo() const {
    return std::max(window_floor_, ring_ > 0 ? std::max<int64_t>(0, written_hi_ - ring_) : 0);
  }

  std::shared_ptr<const Model> model_;
  std::shared_ptr<const Weights> w_;
  HParams hp_;
  ThreadPool* pool_;
  int64_t n_ctx_, chunk_;
  bool full_last_layer_ = false;  // SessionOptions::full_last_layer
  int64_t n_past_ = 0;
  std::vector<Token> history_;
  // KV cache: layer il at element layer_off_[il], [kv_head][layer_slots_[il]][head_dim] of
  // kv_type_ (bytes in k_/v_); INT8 scales [layer][kv_head][slot] at layer_off_[il] / head_dim.
  kernels::KvType kv_type_;
  kernels::AttnBf16 attn_bf16_ = kernels::AttnBf16::kOff;
  detail::HugeVector<uint8_t> k_, v_;
  std::vector<float> ks_, vs_;
  std::vector<int64_t> layer_off_, layer_slots_;
  int64_t ring_ = 0;        // slots of window layers when they use a ring, else 0
  int64_t written_hi_ = 0;  // 1 + highest position written (window rows below - ring_ are gone)
  int64_t window_floor_ = 0;  // window rows below this were never there (from load_kv)
  // Chunk arena: sized for `chunk` rows once, reused by every chunk.
  detail::HugeVector<float> x_, xn_, qkv_, att_, o_, gu_, h_;
  LinearScratch scratch_;
  std::vector<float> rope_cos_, rope_sin_, rope_cos_swa_, rope_sin_swa_;  // [n_ctx][n_rot/2]
  // Chunk arenas and processor pools of eval_scheduled, made on its first call and reused.
  std::shared_ptr<sched::ChunkArenas> sched_;
  EvalHook* hook_ = nullptr;
};

}  // namespace octet
