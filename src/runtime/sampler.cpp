#include "octet/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace octet {

Token argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<Token>(best);
}

Sampler::Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) {}

Token Sampler::sample(const float* logits, int64_t n_vocab, std::span<const Token> history) {
  cand_.resize(static_cast<size_t>(n_vocab));
  for (int64_t i = 0; i < n_vocab; ++i) cand_[i] = {logits[i], static_cast<Token>(i)};
  if (p_.repeat_penalty != 1.0f && p_.repeat_last_n != 0) {
    const size_t n = p_.repeat_last_n < 0 ? history.size()
                                          : std::min(history.size(), size_t(p_.repeat_last_n));
    std::unordered_set<Token> seen(history.end() - n, history.end());
    for (Token t : seen) {
      if (t < 0 || t >= n_vocab) continue;
      float& l = cand_[t].first;
      l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }
  }
  auto best = [&] {
    return std::max_element(cand_.begin(), cand_.end(), [](auto& a, auto& b) {
             return a.first < b.first || (a.first == b.first && a.second > b.second);
           })->second;
  };
  if (p_.temperature <= 0.f) return best();

  // Sort descending, keep top-k.
  size_t keep = cand_.size();
  if (p_.top_k > 0 && size_t(p_.top_k) < keep) keep = size_t(p_.top_k);
  std::partial_sort(cand_.begin(), cand_.begin() + keep, cand_.end(),
                    [](auto& a, auto& b) { return a.first > b.first; });
  cand_.resize(keep);
  // Softmax at temperature.
  const float mx = cand_[0].first;
  std::vector<double> prob(keep);
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += prob[i] = std::exp((cand_[i].first - mx) / p_.temperature);
  for (auto& q : prob) q /= sum;
  // min-p: drop tokens below min_p × the best probability.
  size_t n = keep;
  if (p_.min_p > 0.f)
    while (n > 1 && prob[n - 1] < p_.min_p * prob[0]) --n;
  // top-p: smallest prefix whose mass reaches top_p.
  if (p_.top_p < 1.f) {
    double acc = 0;
    for (size_t i = 0; i < n; ++i) {
      acc += prob[i];
      if (acc >= p_.top_p) {
        n = i + 1;
        break;
      }
    }
  }
  double mass = 0;
  for (size_t i = 0; i < n; ++i) mass += prob[i];
  std::uniform_real_distribution<double> u(0.0, mass);
  double r = u(rng_);
  for (size_t i = 0; i < n; ++i) {
    r -= prob[i];
    if (r <= 0) return cand_[i].second;
  }
  return cand_[n - 1].second;
}

}  // namespace octet
