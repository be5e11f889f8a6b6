// Chunked forward pass. Every chunk of up to `chunk` tokens runs the same plan over the same
// arena; only attention looks at a growing range (the KV of all earlier positions).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <fmt/format.h>

#include "octet/runtime.h"
#include "octet/sched.h"

namespace octet {

bool parse_attn_operands(const std::string& s, AttnOperands* a) {
  if (s == "auto") *a = AttnOperands::kAuto;
  else if (s == "f32") *a = AttnOperands::kF32;
  else if (s == "bf16-pv") *a = AttnOperands::kBF16PV;
  else if (s == "bf16") *a = AttnOperands::kBF16;
  else return false;
  return true;
}

Session::Session(std::shared_ptr<const Model> model, std::shared_ptr<const Weights> weights,
                 const SessionOptions& opt, ThreadPool* pool)
    : model_(std::move(model)), w_(std::move(weights)), hp_(model_->hparams()), pool_(pool) {
  n_ctx_ = std::max<int64_t>(1, std::min(opt.n_ctx, hp_.n_ctx_train));
  chunk_ = std::max<int64_t>(1, std::min(opt.chunk, n_ctx_));
  kv_type_ = opt.kv_type;
  full_last_layer_ = opt.full_last_layer;
  // auto: both products in bf16 unless the weights are the fp32 reference. With fp32 weights
  // bf16 attention moves Gemma's perplexity by +0.003 %; with int8 weights KL to fp32 is
  // unchanged within the int8 path's own run-to-run spread (docs/results.md, session 9).
  AttnOperands a = opt.attn;
  if (a == AttnOperands::kAuto)
    a = w_->mode() == ComputeMode::kFp32 ? AttnOperands::kF32 : AttnOperands::kBF16;
  if (kernels::attention_bf16_available(hp_.head_dim))
    attn_bf16_ = a == AttnOperands::kBF16   ? kernels::AttnBf16::kAll
                 : a == AttnOperands::kBF16PV ? kernels::AttnBf16::kPV
                                              : kernels::AttnBf16::kOff;
  // Sliding-window layers: a ring of window + chunk slots holds every key a chunk's queries
  // see (window + m - 1 <= ring) and leaves `chunk` positions of slack for a cheap truncate().
  if (hp_.sliding_window > 0 && n_ctx_ > hp_.sliding_window + chunk_)
    ring_ = hp_.sliding_window + chunk_;
  int64_t elems = 0;
  for (int64_t il = 0; il < hp_.n_layer; ++il) {
    const int64_t slots = ring_ > 0 && hp_.layer_is_swa[il] ? ring_ : n_ctx_;
    layer_off_.push_back(elems);
    layer_slots_.push_back(slots);
    elems += hp_.n_head_kv * slots * hp_.head_dim;
  }
  const size_t kv = static_cast<size_t>(elems) * kernels::kv_elem_bytes(kv_type_);
  k_.assign(kv, 0);
  v_.assign(kv, 0);
  if (kv_type_ == kernels::KvType::kInt8) {
    ks_.assign(static_cast<size_t>(elems / hp_.head_dim), 0.f);
    vs_.assign(ks_.size(), 0.f);
  }
  const size_t C = static_cast<size_t>(chunk_);
  x_.resize(C * hp_.n_embd);
  xn_.resize(C * hp_.n_embd);
  qkv_.resize(C * (hp_.q_dim() + 2 * hp_.kv_dim()));
  att_.resize(C * hp_.q_dim());
  o_.resize(C * hp_.n_embd);
  gu_.resize(C * 2 * hp_.n_ff);
  if (!w_->ffn_act_fused()) h_.resize(C * hp_.n_ff);
  rope_cos_.resize(C * hp_.n_rot / 2);
  rope_sin_.resize(C * hp_.n_rot / 2);
  rope_cos_swa_.resize(C * hp_.n_rot / 2);
  rope_sin_swa_.resize(C * hp_.n_rot / 2);
}

size_t Session::arena_bytes() const {
  size_t n = 0;
  for (const auto* v : {&x_, &xn_, &qkv_, &att_, &o_, &gu_, &h_}) n += v->size();
  for (const auto* v : {&rope_cos_, &rope_sin_, &rope_cos_swa_, &rope_sin_swa_}) n += v->size();
  return n * sizeof(float);
}

bool Session::truncate_is_cheap(int64_t n) const {
  n = std::clamp<int64_t>(n, 0, n_past_);
  // The next query (at n) sees window keys back to n - window + 1.
  return ring_ == 0 || n == 0 || std::max<int64_t>(0, n - hp_.sliding_window + 1) >= window_lo();
}

void Session::truncate(int64_t n) {
  n = std::clamp<int64_t>(n, 0, n_past_);
  if (n == 0) window_floor_ = 0;
  if (!truncate_is_cheap(n)) {
    // The window layers already overwrote rows position n still needs: rebuild from the
    // tokens (positions < n of the full layers are intact, but every layer's rows depend on
    // the window layers below it, so all of them are recomputed).
    const std::vector<Token> keep(history_.begin(), history_.begin() + n);
    n_past_ = 0;
    history_.clear();
    written_hi_ = 0;
    window_floor_ = 0;
    Status st = eval(keep, false, nullptr);
    (void)st;  // these tokens were evaluated before: valid ids, within the context
    return;
  }
  n_past_ = n;
  history_.resize(static_cast<size_t>(n_past_));
  if (n == 0) written_hi_ = 0;
}

kernels::KvView Session::kv_view(int64_t il, bool v) const {
  kernels::KvView kv;
  kv.type = kv_type_;
  const size_t eb = kernels::kv_elem_bytes(kv_type_);
  kv.data = (v ? v_ : k_).data() + static_cast<size_t>(layer_off_[il]) * eb;
  if (kv_type_ == kernels::KvType::kInt8)
    kv.scale = (v ? vs_ : ks_).data() + layer_off_[il] / hp_.head_dim;
  kv.head_stride = layer_slots_[il] * hp_.head_dim;
  kv.ring = layer_slots_[il] == n_ctx_ ? 0 : layer_slots_[il];
  return kv;
}

void Session::store_kv(int64_t il, int64_t h, int64_t pos, const float* k, const float* v) {
  const int64_t D = hp_.head_dim;
  const int64_t e = layer_off_[il] + (h * layer_slots_[il] + slot(il, pos)) * D;
  const size_t eb = kernels::kv_elem_bytes(kv_type_);
  const bool q8 = kv_type_ == kernels::KvType::kInt8;
  kernels::kv_store_row(kv_type_, k, D, k_.data() + e * eb, q8 ? &ks_[e / D] : nullptr);
  kernels::kv_store_row(kv_type_, v, D, v_.data() + e * eb, q8 ? &vs_[e / D] : nullptr);
}

KvSnapshot Session::save_kv(int64_t n) const {
  n = std::clamp<int64_t>(n, 0, n_past_);
  KvSnapshot s;
  s.tokens.assign(history_.begin(), history_.begin() + n);
  s.type = kv_type_;
  s.window_first = ring_ > 0 ? std::min(n, std::max(window_lo(), n - ring_)) : 0;
  const int64_t D = hp_.head_dim;
  const size_t eb = kernels::kv_elem_bytes(kv_type_);
  const bool f32 = kv_type_ == kernels::KvType::kF32, q8 = kv_type_ == kernels::KvType::kInt8;
  int64_t rows = 0;
  for (int64_t il = 0; il < hp_.n_layer; ++il)
    rows += hp_.n_head_kv * (n - (layer_slots_[il] == n_ctx_ ? 0 : s.window_first));
  if (f32) {
    s.k.resize(static_cast<size_t>(rows * D));
    s.v.resize(s.k.size());
  } else {
    s.kq.resize(static_cast<size_t>(rows * D) * eb);
    s.vq.resize(s.kq.size());
  }
  if (q8) {
    s.k_scale.resize(static_cast<size_t>(rows));
    s.v_scale.resize(s.k_scale.size());
  }
  auto* kd = f32 ? reinterpret_cast<uint8_t*>(s.k.data()) : s.kq.data();
  auto* vd = f32 ? reinterpret_cast<uint8_t*>(s.v.data()) : s.vq.data();
  int64_t r = 0;
  for (int64_t il = 0; il < hp_.n_layer; ++il) {
    const int64_t first = layer_slots_[il] == n_ctx_ ? 0 : s.window_first;
    for (int64_t h = 0; h < hp_.n_head_kv; ++h)
      for (int64_t p = first; p < n; ++p, ++r) {
        const int64_t e = layer_off_[il] + (h * layer_slots_[il] + slot(il, p)) * D;
        std::memcpy(kd + r * D * eb, k_.data() + e * eb, D * eb);
        std::memcpy(vd + r * D * eb, v_.data() + e * eb, D * eb);
        if (q8) {
          s.k_scale[r] = ks_[e / D];
          s.v_scale[r] = vs_[e / D];
        }
      }
  }
  return s;
}

Status Session::load_kv(const KvSnapshot& snap, int64_t n) {
  const int64_t len = static_cast<int64_t>(snap.tokens.size());
  if (n < 0 || n > len || n > n_ctx_)
    return Status::Error(fmt::format("load_kv: {} positions of a {}-token snapshot in a "
                                     "{}-token context", n, len, n_ctx_));
  if (snap.type != kv_type_)
    return Status::Error(fmt::format("load_kv: snapshot KV type {} but this session uses {}",
                                     kernels::kv_type_name(snap.type),
                                     kernels::kv_type_name(kv_type_)));
  if (snap.window_first < 0 || snap.window_first > len)
    return Status::Error("load_kv: snapshot window range out of bounds");
  const bool f32 = kv_type_ == kernels::KvType::kF32, q8 = kv_type_ == kernels::KvType::kInt8;
  const int64_t D = hp_.head_dim;
  const size_t eb = kernels::kv_elem_bytes(kv_type_);
  int64_t rows = 0;
  bool has_window = false;
  for (int64_t il = 0; il < hp_.n_layer; ++il) {
    const bool w = hp_.sliding_window > 0 && hp_.layer_is_swa[il];
    has_window = has_window || w;
    rows += hp_.n_head_kv * (len - (w ? snap.window_first : 0));
  }
  const size_t want = static_cast<size_t>(rows * D);
  const bool sizes_ok =
      f32 ? snap.k.size() == want && snap.v.size() == want && snap.kq.empty() && snap.vq.empty()
          : snap.kq.size() == want * eb && snap.vq.size() == want * eb && snap.k.empty() &&
                snap.v.empty();
  const bool scales_ok = q8 ? snap.k_scale.size() == static_cast<size_t>(rows) &&
                                  snap.v_scale.size() == static_cast<size_t>(rows)
                            : snap.k_scale.empty() && snap.v_scale.empty();
  if (!sizes_ok || !scales_ok || (!has_window && snap.window_first != 0))
    return Status::Error("load_kv: snapshot does not match this model's KV shape");
  if (n > 0 && snap.window_first > std::max<int64_t>(0, n - hp_.sliding_window + 1))
    return Status::Error(fmt::format(
        "load_kv: the snapshot's window layers start at position {}, too late to continue at "
        "{} (window {}): prefill instead", snap.window_first, n, hp_.sliding_window));
  const auto* kd = f32 ? reinterpret_cast<const uint8_t*>(snap.k.data()) : snap.kq.data();
  const auto* vd = f32 ? reinterpret_cast<const uint8_t*>(snap.v.data()) : snap.vq.data();
  int64_t r = 0;
  for (int64_t il = 0; il < hp_.n_layer; ++il) {
    const bool w = hp_.sliding_window > 0 && hp_.layer_is_swa[il];
    const int64_t first = w ? snap.window_first : 0;
    // A ring keeps the newest ring_ of them.
    const int64_t lo = layer_slots_[il] == n_ctx_ ? first : std::max(first, n - layer_slots_[il]);
    for (int64_t h = 0; h < hp_.n_head_kv; ++h) {
      for (int64_t p = lo; p < n; ++p) {
        const int64_t src = r + (p - first);
        const int64_t e = layer_off_[il] + (h * layer_slots_[il] + slot(il, p)) * D;
        std::memcpy(k_.data() + e * eb, kd + src * D * eb, D * eb);
        std::memcpy(v_.data() + e * eb, vd + src * D * eb, D * eb);
        if (q8) {
          ks_[e / D] = snap.k_scale[src];
          vs_[e / D] = snap.v_scale[src];
        }
      }
      r += len - first;
    }
  }
  history_.assign(snap.tokens.begin(), snap.tokens.begin() + n);
  n_past_ = n;
  written_hi_ = n;
  window_floor_ = has_window ? std::min(snap.window_first, n) : 0;
  return Status::Ok();
}

Status Session::check_eval(std::span<const Token> toks) const {
  if (toks.empty()) return Status::Error("eval: no tokens");
  if (n_past_ + static_cast<int64_t>(toks.size()) > n_ctx_)
    return Status::Error(fmt::format("eval: {} + {} tokens exceed the context of {}", n_past_,
                                     toks.size(), n_ctx_));
  for (Token t : toks)
    if (t < 0 || t >= hp_.n_vocab)
      return Status::Error(fmt::format("eval: token id {} out of range [0, {})", t, hp_.n_vocab));
  return Status::Ok();
}

Status Session::eval(std::span<const Token> toks, bool all_logits, std::vector<float>* logits) {
  if (hook_) {
    EvalHook* h = std::exchange(hook_, nullptr);
    Status st = h->eval(*this, toks, all_logits, logits);
    hook_ = h;
    return st;
  }
  OCTET_RETURN_IF_ERROR(check_eval(toks));
  const int64_t V = hp_.n_vocab;
  if (logits) logits->assign(static_cast<size_t>((all_logits ? toks.size() : 1) * V), 0.f);
  for (size_t i = 0; i < toks.size(); i += static_cast<size_t>(chunk_)) {
    const int64_t m = std::min<int64_t>(chunk_, static_cast<int64_t>(toks.size() - i));
    const bool last = i + static_cast<size_t>(m) == toks.size();
    std::vector<float>* lg = logits && (all_logits || last) ? logits : nullptr;
    run_chunk(toks.data() + i, m, all_logits, lg, all_logits ? i : 0);
    history_.insert(history_.end(), toks.begin() + i, toks.begin() + i + m);
  }
  return Status::Ok();
}

void Session::run_chunk(const Token* toks, int64_t m, bool all_logits,
                        std::vector<float>* logits, size_t logits_row0) {
  using sched::Kind;
  const StageBuffers b{x_.data(),        xn_.data(),       qkv_.data(),      att_.data(),
                       o_.data(),        gu_.data(),       h_.data(),        rope_cos_.data(),
                       rope_sin_.data(), rope_cos_swa_.data(), rope_sin_swa_.data()};
  const int64_t pos0 = n_past_;
  auto stage = [&](Kind k, int64_t il, float* out = nullptr) {
    run_stage(k, il, m, pos0, b, toks, all_logits, out, pool_, &scratch_, use_decode_linears(m));
  };
  stage(Kind::kPrologue, 0);
  // The last layer runs past its K/V only for the rows that get logits: a prompt of m tokens
  // skips ~1/n_layer of its work (llama.cpp does the same).
  const int64_t keep = keep_rows(m, all_logits, logits != nullptr);
  for (int64_t il = 0; il < hp_.n_layer; ++il)
    for (Kind k : {Kind::kQkv, Kind::kAttn, Kind::kO, Kind::kMid, Kind::kGateUp, Kind::kAct,
                   Kind::kDown, Kind::kResid})
      run_chunk_stage(k, il, m, pos0, b, toks, all_logits, nullptr, pool_, &scratch_, keep);
  n_past_ += m;
  written_hi_ = std::max(written_hi_, n_past_);
  if (logits) stage(Kind::kHead, hp_.n_layer, logits->data() + logits_row0 * hp_.n_vocab);
}

void Session::run_chunk_stage(sched::Kind kind, int64_t il, int64_t m, int64_t pos0,
                              const StageBuffers& b, const Token* toks, bool all_logits,
                              float* out, ThreadPool* pool, LinearScratch* scratch,
                              int64_t keep) {
  using sched::Kind;
  const bool cut = il == hp_.n_layer - 1 && keep < m && kind != Kind::kPrologue &&
                   kind != Kind::kQkv && kind != Kind::kHead;
  if (!cut)
    return run_stage(kind, il, m, pos0, b, toks, all_logits, out, pool, scratch,
                     use_decode_linears(m));
  if (kind == Kind::kAttn)  // K/V for every row, attention for the kept ones
    return run_stage(kind, il, m, pos0, b, toks, all_logits, out, pool, scratch,
                     use_decode_linears(m), keep);
  if (keep == 0) return;
  // The kept rows are the chunk's last: their own buffers, positions and linears.
  run_stage(kind, il, keep, pos0 + m - keep, b.row(m - keep, hp_), toks, all_logits, out, pool,
            scratch, use_decode_linears(keep));
}

Session::StageBuffers Session::StageBuffers::row(int64_t i, const HParams& hp) const {
  const int64_t E = hp.n_embd, Q = hp.q_dim(), QKV = Q + 2 * hp.kv_dim(), F = hp.n_ff;
  const int64_t R2 = hp.n_rot / 2;
  return {x + i * E,    xn + i * E,   qkv + i * QKV, att + i * Q,    o + i * E,     gu + i * 2 * F,
          h + i * F,    rc + i * R2,  rs + i * R2,   rc_swa + i * R2, rs_swa + i * R2};
}

void Session::run_stage(sched::Kind kind, int64_t il, int64_t m, int64_t pos0,
                        const StageBuffers& b, const Token* toks, bool all_logits, float* out,
                        ThreadPool* pool, LinearScratch* scratch, bool dec, int64_t attn_rows) {
  using sched::Kind;
  const int64_t E = hp_.n_embd, Q = hp_.q_dim(), KV = hp_.kv_dim(), F = hp_.n_ff;
  const int64_t D = hp_.head_dim, R = hp_.n_rot, QKV = Q + 2 * KV;
  const float eps = hp_.norm_eps;
  auto pick = [dec](const std::unique_ptr<Linear>& full, const std::unique_ptr<Linear>& d)
      -> const Linear& { return dec ? *d : *full; };
  // Row-wise float stages run on the pool too: done on the calling thread alone they left
  // the other core spinning (~2 % of a prefill on the 0.5B shape).
  auto each_row = [&](const std::function<void(int64_t)>& row) {
    parallel_for(pool, m, 16, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; ++i) row(i);
    });
  };
  auto attn_norm_row = [&](const LayerWeights& L, int64_t i) {
    kernels::rmsnorm_f32(b.x + i * E, L.attn_norm_for(dec).data(), b.xn + i * E, E, eps);
  };
  auto gated_act = [&]() -> Linear::GatedAct {
    return hp_.act == Activation::kGeluTanh
               ? static_cast<Linear::GatedAct>(kernels::gelu_tanh_mul_f32)
               : static_cast<Linear::GatedAct>(kernels::silu_mul_f32);
  };
  // The head stage is numbered after the last layer (sched::build_graph) and uses no L.
  const LayerWeights& L = w_->layer(std::min(il, hp_.n_layer - 1));
  switch (kind) {
    case Kind::kPrologue: {
      // Row by row on the pool (a pread and a dequantisation per token, a sin/cos table per
      // position, the first norm): ~1.5 ms of a 512-token prefill, on the caller alone before.
      const LayerWeights& L0 = w_->layer(0);
      each_row([&](int64_t i) {
        Status st = model_->embed(toks[i], b.x + i * E);
        (void)st;  // ids were validated in eval()
        kernels::rope_table(pos0 + i, R, hp_.rope_base, hp_.rope_scale, b.rc + i * R / 2,
                            b.rs + i * R / 2);
        if (hp_.sliding_window)
          kernels::rope_table(pos0 + i, R, hp_.rope_base_swa, 1.f, b.rc_swa + i * R / 2,
                              b.rs_swa + i * R / 2);
        attn_norm_row(L0, i);
      });
      return;
    }
    case Kind::kQkv:
      pick(L.wqkv, L.dec_wqkv).forward(b.xn, m, b.qkv, QKV, pool, scratch);
      return;
    case Kind::kAttn: {
      // Biases, q/k norms, RoPE, K/V into the cache, then attention.
      const bool swa = hp_.layer_is_swa[il];
      const float* rc = swa ? b.rc_swa : b.rc;
      const float* rs = swa ? b.rs_swa : b.rs;
      parallel_for(pool, m, 1, [&](int64_t i0, int64_t i1, int) {
        for (int64_t i = i0; i < i1; ++i) {
          float* row = b.qkv + i * QKV;
          if (!L.bqkv.empty()) kernels::add_f32(row, L.bqkv.data(), QKV);
          for (int64_t h = 0; h < hp_.n_head + hp_.n_head_kv; ++h) {
            float* v = row + h * D;
            const bool is_q = h < hp_.n_head;
            if (hp_.qk_norm)
              kernels::rmsnorm_f32(v, (is_q ? L.q_norm : L.k_norm).data(), v, D, eps);
            kernels::rope_f32_table(v, R, rc + i * R / 2, rs + i * R / 2, hp_.rope_mode);
          }
          for (int64_t h = 0; h < hp_.n_head_kv; ++h)
            store_kv(il, h, pos0 + i, row + Q + h * D, row + Q + KV + h * D);
        }
      });
      const int64_t n = attn_rows < 0 ? m : std::min(m, attn_rows);
      if (n > 0)
        attention(il, n, pos0 + m - n, b.qkv + (m - n) * QKV, b.att + (m - n) * Q, pool);
      return;
    }
    case Kind::kO:
      pick(L.wo, L.dec_wo).forward(b.att, m, b.o, E, pool, scratch);
      return;
    case Kind::kMid:
      each_row([&](int64_t i) {
        float* o = b.o + i * E;
        if (!L.attn_post_norm.empty()) kernels::rmsnorm_f32(o, L.attn_post_norm.data(), o, E, eps);
        kernels::add_f32(b.x + i * E, o, E);
        kernels::rmsnorm_f32(b.x + i * E, L.ffn_norm_for(dec).data(), b.xn + i * E, E, eps);
      });
      return;
    case Kind::kGateUp: {
      const Linear& gate_up = pick(L.w_gate_up, L.dec_gate_up);
      // A paired int8 gate/up runs the whole FFN (activation, down projection) itself.
      if (gate_up.fuses_ffn())
        return gate_up.forward_ffn(b.xn, m, gated_act(), b.gu, 2 * F, b.o, E, pool, scratch);
      gate_up.forward(b.xn, m, b.gu, 2 * F, pool, scratch);
      return;
    }
    case Kind::kAct:
      // An int8 down projection makes the activation's rows itself (Linear::fuses_gated).
      if (pick(L.w_down, L.dec_down).fuses_gated() || pick(L.w_gate_up, L.dec_gate_up).fuses_ffn())
        return;
      parallel_for(pool, m, 1, [&](int64_t i0, int64_t i1, int) {
        for (int64_t i = i0; i < i1; ++i) {
          const float* g = b.gu + i * 2 * F;
          if (hp_.act == Activation::kGeluTanh)
            kernels::gelu_tanh_mul_f32(g, g + F, b.h + i * F, F);
          else
            kernels::silu_mul_f32(g, g + F, b.h + i * F, F);
        }
      });
      return;
    case Kind::kDown: {
      if (pick(L.w_gate_up, L.dec_gate_up).fuses_ffn()) return;  // done in kGateUp
      const Linear& down = pick(L.w_down, L.dec_down);
      if (down.fuses_gated()) {
        down.forward_gated(b.gu, 2 * F, gated_act(), m, b.o, E, pool, scratch);
      } else {
        down.forward(b.h, m, b.o, E, pool, scratch);
      }
      return;
    }
    case Kind::kResid: {
      const LayerWeights* next = il + 1 < hp_.n_layer ? &w_->layer(il + 1) : nullptr;
      each_row([&](int64_t i) {
        float* o = b.o + i * E;
        if (!L.ffn_post_norm.empty()) kernels::rmsnorm_f32(o, L.ffn_post_norm.data(), o, E, eps);
        kernels::add_f32(b.x + i * E, o, E);
        if (next) attn_norm_row(*next, i);
      });
      return;
    }
    case Kind::kHead: {
      // LM head only for the rows that need logits.
      const int64_t first = all_logits ? 0 : m - 1, rows = m - first;
      for (int64_t i = first; i < m; ++i)
        kernels::rmsnorm_f32(b.x + i * E, w_->output_norm().data(), b.xn + (i - first) * E, E,
                             eps);
      const Linear& head = use_decode_linears(rows) ? *w_->decode_lm_head() : w_->lm_head();
      head.forward(b.xn, rows, out, hp_.n_vocab, pool, scratch);
      return;
    }
  }
}

void Session::attention(int64_t il, int64_t m, int64_t pos0) {
  attention(il, m, pos0, qkv_.data(), att_.data(), pool_);
}

void Session::attention(int64_t il, int64_t m, int64_t pos0, const float* qkv, float* att,
                        ThreadPool* pool) {
  kernels::AttentionDims d;
  d.n_head = hp_.n_head;
  d.n_head_kv = hp_.n_head_kv;
  d.head_dim = hp_.head_dim;
  // A query at p sees keys in (p - window, p] (llama.cpp: masked when p - p0 >= window).
  d.window = hp_.layer_is_swa[il] ? hp_.sliding_window : 0;
  d.scale = hp_.attn_scale;
  d.bf16 = attn_bf16_;
  const int64_t QKV = hp_.q_dim() + 2 * hp_.kv_dim();
  kernels::attention(qkv, QKV, m, pos0, kv_view(il, false), kv_view(il, true), d, att,
                     hp_.q_dim(), pool);
}

}  // namespace octet
