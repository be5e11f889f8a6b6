// One decode step of B sessions as one pass over the linears (include/octet/batch.h): the
// stages of Session::run_chunk (run_stage), except that row i belongs to session i: its own
// position (RoPE), its own KV cache (store + attention) and its own history.
#include "octet/batch.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

#include "octet/sched.h"

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
  const int64_t R = hp.n_rot, QKV = Q + 2 * KV, V = hp.n_vocab;
  const float eps = hp.norm_eps;
  const size_t n = static_cast<size_t>(B);
  x_.resize(n * E);
  xn_.resize(n * E);
  qkv_.resize(n * QKV);
  att_.resize(n * Q);
  o_.resize(n * E);
  gu_.resize(n * 2 * F);
  if (!w.ffn_act_fused()) h_.resize(n * F);
  rc_.resize(n * R / 2);
  rs_.resize(n * R / 2);
  rc_swa_.resize(n * R / 2);
  rs_swa_.resize(n * R / 2);
  // Session::run_chunk uses the GGUF decode linears for chunks of <= kMaxRows rows, so a
  // single-token eval does: use them here too, for any B (they split rows into groups of
  // kMaxRows, each row computed on its own).
  const bool dec = w.has_decode();
  const Session::StageBuffers all{x_.data(),  xn_.data(), qkv_.data(), att_.data(),
                                  o_.data(),  gu_.data(), h_.data(),   rc_.data(),
                                  rs_.data(), rc_swa_.data(), rs_swa_.data()};
  // The stages of Session::run_chunk: row i's own stages (embedding and RoPE at its session's
  // position; KV store and attention over its session's cache) run on session i over row i,
  // the others once over all B rows.
  using sched::Kind;
  auto own = [&](Kind k, int64_t il) {
    for (int64_t i = 0; i < B; ++i)
      ss[i]->run_stage(k, il, 1, ss[i]->n_past_, all.row(i, hp), &toks[i], false, nullptr,
                       pool_, &scratch_, dec);
  };
  auto shared = [&](Kind k, int64_t il) {
    s0.run_stage(k, il, B, 0, all, nullptr, false, nullptr, pool_, &scratch_, dec);
  };
  own(Kind::kPrologue, 0);
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    shared(Kind::kQkv, il);
    own(Kind::kAttn, il);
    for (Kind k : {Kind::kO, Kind::kMid, Kind::kGateUp, Kind::kAct, Kind::kDown, Kind::kResid})
      shared(k, il);
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
