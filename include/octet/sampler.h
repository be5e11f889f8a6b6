// Token sampling: greedy, temperature, top-k, top-p, min-p, repetition penalty, seeded.
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "octet/tokenizer.h"

namespace octet {

struct SamplerParams {
  float temperature = 0.8f;   // <= 0: greedy (argmax)
  int32_t top_k = 40;         // <= 0: off
  float top_p = 0.95f;        // >= 1: off
  float min_p = 0.05f;        // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off (llama.cpp semantics: divide positive, multiply negative)
  int32_t repeat_last_n = 64;
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);
  // history: tokens seen so far (prompt + generated) for the repetition penalty.
  Token sample(const float* logits, int64_t n_vocab, std::span<const Token> history);
  const SamplerParams& params() const { return p_; }

 private:
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, Token>> cand_;
};

Token argmax(const float* logits, int64_t n);

}  // namespace octet
