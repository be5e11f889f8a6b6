// One decode step of B sessions as one pass over the linears (include/octet/batch.h). The
// float work mirrors Session::run_chunk row by row, except that row i belongs to session i:
// its own position (RoPE), its own KV cache (store + attention) and its own history.
#include "octet/batch.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

namespace octet {

Status BatchDecoder::step(std::span<Session* const> ss, std::span<const Token> toks,
                          std::span<std::vector<float>* const> logits) {
  const int64_t B = static_cast<int64_t>(ss.size());
  if (B == 0) return Status::Error("batch: no sessions");
  if (toks.size() != ss.size() || logits.size() != ss.size())
    return Status::Error("batch: sessions, tokens and logits differ in count");
  Session& s0 = *ss[0];
  const HParams& hp = s0.hp_;
  for (int64_t b = 0; b < B; ++b) {
    const Session& s = *ss[b];
    if (s.w_ != s0.w_) return Status::Error("batch: sessions use different weights");
    for (int64_t c = 0; c < b; ++c)
      if (ss[c] == ss[b]) return Status::Error("batch: a session appears twice");
    if (s.n_past_ + 1 > s.n_ctx_)
      return Status::Error(fmt::format("eval: {} + 1 tokens exceed the context of {}", s.n_past_,
                                       s.n_ctx_));
    if (toks[b] < 0 || toks[b] >= hp.n_vocab)
      return Status::Error(
          fmt::format("eval: token id {} out of range [0, {})", toks[b], hp.n_vocab));
  }
  const Weights& w = *s0.w_;
  const int64_t E = hp.n_embd, Q = hp.q_dim(), KV = hp.kv_dim(), F = hp.n_ff;
  const int64_t D = hp.head_dim, R = hp.n_rot, QKV = Q + 2 * KV, V = hp.n_vocab;
  const float eps = hp.norm_eps;
  const size_t n = static_cast<size_t>(B);
  x_.resize(n * E);
  xn_.resize(n * E);
  qkv_.resize(n * QKV);
  att_.resize(n * Q);
  o_.resize(n * E);
  gu_.resize(n * 2 * F);
  h_.resize(n * F);
  rc_.resize(n * R / 2);
  rs_.resize(n * R / 2);
  rc_swa_.resize(n * R / 2);
  rs_swa_.resize(n * R / 2);
  // Session::run_chunk uses the GGUF decode linears for chunks of <= kMaxRows rows, so a
  // single-token eval does: use them here too, for any B (they split rows into groups of
  // kMaxRows, each row computed on its own).
  const bool dec = w.has_decode();
  auto pick = [dec](const std::unique_ptr<Linear>& full, const std::unique_ptr<Linear>& d)
      -> const Linear& { return dec ? *d : *full; };

  for (int64_t i = 0; i < B; ++i) {
    const int64_t pos = ss[i]->n_past_;
    Status st = s0.model_->embed(toks[i], x_.data() + i * E);
    (void)st;  // ids checked above
    kernels::rope_table(pos, R, hp.rope_base, hp.rope_scale, rc_.data() + i * R / 2,
                        rs_.data() + i * R / 2);
    if (hp.sliding_window)
      kernels::rope_table(pos, R, hp.rope_base_swa, 1.f, rc_swa_.data() + i * R / 2,
                          rs_swa_.data() + i * R / 2);
  }

  for (int64_t il = 0; il < hp.n_layer; ++il) {
    const LayerWeights& L = w.layer(il);
    const bool swa = hp.layer_is_swa[il];
    for (int64_t i = 0; i < B; ++i)
      kernels::rmsnorm_f32(x_.data() + i * E, L.attn_norm.data(), xn_.data() + i * E, E, eps);
    pick(L.wqkv, L.dec_wqkv).forward(xn_.data(), B, qkv_.data(), QKV, pool_, &scratch_);

    const float* rc = (swa ? rc_swa_ : rc_).data();
    const float* rs = (swa ? rs_swa_ : rs_).data();
    for (int64_t i = 0; i < B; ++i) {
      Session& s = *ss[i];
      float* row = qkv_.data() + i * QKV;
      if (!L.bqkv.empty()) kernels::add_f32(row, L.bqkv.data(), QKV);
      for (int64_t h = 0; h < hp.n_head + hp.n_head_kv; ++h) {
        float* v = row + h * D;
        const bool is_q = h < hp.n_head;
        if (hp.qk_norm) kernels::rmsnorm_f32(v, (is_q ? L.q_norm : L.k_norm).data(), v, D, eps);
        kernels::rope_f32_table(v, R, rc + i * R / 2, rs + i * R / 2, hp.rope_mode);
      }
      for (int64_t h = 0; h < hp.n_head_kv; ++h)
        s.store_kv(il, h, s.n_past_, row + Q + h * D, row + Q + KV + h * D);
      // Each query attends over its own session's cache (one query row, like a decode step).
      s.attention(il, 1, s.n_past_, row, att_.data() + i * Q, pool_);
    }
    pick(L.wo, L.dec_wo).forward(att_.data(), B, o_.data(), E, pool_, &scratch_);
    for (int64_t i = 0; i < B; ++i) {
      float* o = o_.data() + i * E;
      if (!L.attn_post_norm.empty()) kernels::rmsnorm_f32(o, L.attn_post_norm.data(), o, E, eps);
      kernels::add_f32(x_.data() + i * E, o, E);
      kernels::rmsnorm_f32(x_.data() + i * E, L.ffn_norm.data(), xn_.data() + i * E, E, eps);
    }
    pick(L.w_gate_up, L.dec_gate_up).forward(xn_.data(), B, gu_.data(), 2 * F, pool_, &scratch_);
    parallel_for(pool_, B, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) {
        float* h = h_.data() + i * F;
        std::memcpy(h, gu_.data() + i * 2 * F, sizeof(float) * F);
        if (hp.act == Activation::kGeluTanh)
          kernels::gelu_tanh_mul_f32(h, gu_.data() + i * 2 * F + F, F);
        else
          kernels::silu_mul_f32(h, gu_.data() + i * 2 * F + F, F);
      }
    });
    pick(L.w_down, L.dec_down).forward(h_.data(), B, o_.data(), E, pool_, &scratch_);
    for (int64_t i = 0; i < B; ++i) {
      float* o = o_.data() + i * E;
      if (!L.ffn_post_norm.empty()) kernels::rmsnorm_f32(o, L.ffn_post_norm.data(), o, E, eps);
      kernels::add_f32(x_.data() + i * E, o, E);
    }
  }
  for (int64_t i = 0; i < B; ++i) {
    Session& s = *ss[i];
    s.n_past_ += 1;
    s.written_hi_ = std::max(s.written_hi_, s.n_past_);
    s.history_.push_back(toks[i]);
  }

  // LM head over the rows that want logits, stacked.
  int64_t rows = 0;
  for (int64_t i = 0; i < B; ++i)
    if (logits[i])
      kernels::rmsnorm_f32(x_.data() + i * E, w.output_norm().data(), xn_.data() + rows++ * E,
                           E, eps);
  if (rows == 0) return Status::Ok();
  out_.resize(static_cast<size_t>(rows * V));
  const Linear& head = dec ? *w.decode_lm_head() : w.lm_head();
  head.forward(xn_.data(), rows, out_.data(), V, pool_, &scratch_);
  int64_t r = 0;
  for (int64_t i = 0; i < B; ++i)
    if (logits[i]) {
      logits[i]->assign(out_.begin() + r * V, out_.begin() + (r + 1) * V);
      ++r;
    }
  return Status::Ok();
}

}  // namespace octet
