// Batched decode: one step of several sessions (same model and weights), each with its own
// next token, position and KV cache. The linears run once over the B stacked rows (weights
// are read once per step instead of B times, which is what makes decode cheaper per token);
// norms, RoPE at each session's own position, KV stores and attention stay per session.
// Results equal each session's own eval() of its token bit for bit (the linears compute each
// row independently of the others; tests/batch_test.cpp checks it). docs/serve.md.
#pragma once
#include <span>
#include <vector>

#include "octet/runtime.h"

namespace octet {

class BatchDecoder {
 public:
  explicit BatchDecoder(ThreadPool* pool) : pool_(pool) {}
  // Runs toks[i] through sessions[i] at its n_past(); logits[i] (may be null: no LM head for
  // that session) gets [n_vocab]. Sessions must be distinct and share one Weights object.
  // Checks everything before changing any session: on error none has advanced.
  Status step(std::span<Session* const> sessions, std::span<const Token> toks,
              std::span<std::vector<float>* const> logits);

 private:
  ThreadPool* pool_;
  // Arena for B rows, grown on demand and reused.
  std::vector<float> x_, xn_, qkv_, att_, o_, gu_, h_, rc_, rs_, rc_swa_, rs_swa_, out_;
  LinearScratch scratch_;
};

}  // namespace octet
