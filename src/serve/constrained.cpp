#include "constrained.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

namespace octet::serve {

TokenTable::TokenTable(const Tokenizer& tok) {
  const Token V = tok.n_vocab();
  piece.resize(static_cast<size_t>(V));
  eog.assign(static_cast<size_t>(V), 0);
  for (Token t = 0; t < V; ++t) {
    if (tok.is_eog(t)) eog[static_cast<size_t>(t)] = 1;
    const TokenType ty = tok.token_type(t);
    // Control, unknown and unused tokens have no bytes of their own (or must not appear).
    if (ty != TokenType::NORMAL && ty != TokenType::BYTE && ty != TokenType::USER_DEFINED &&
        ty != TokenType::UNDEFINED)
      continue;
    if (t == tok.bos() || tok.is_eog(t)) continue;
    std::string p = tok.token_to_piece(t);
    if (p.empty()) continue;
    max_len = std::max(max_len, p.size());
    by_piece.emplace(p, t);  // the first token with these bytes wins
    piece[static_cast<size_t>(t)] = std::move(p);
  }
}

bool TokenTable::tokenize(std::string_view text, std::vector<Token>* out) const {
  out->clear();
  size_t i = 0;
  while (i < text.size()) {
    size_t n = std::min(max_len, text.size() - i);
    for (; n > 0; --n) {
      auto it = by_piece.find(std::string(text.substr(i, n)));
      if (it != by_piece.end()) {
        out->push_back(it->second);
        break;
      }
    }
    if (n == 0) return false;
    i += n;
  }
  return true;
}

size_t utf8_complete_prefix(const std::string& text) {
  // Walk back over at most 3 continuation bytes to the last lead byte.
  size_t n = text.size();
  size_t k = 0;
  while (k < 4 && k < n && (static_cast<uint8_t>(text[n - 1 - k]) & 0xC0) == 0x80) ++k;
  if (k == n) return n;
  const uint8_t lead = static_cast<uint8_t>(text[n - 1 - k]);
  size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return k + 1 >= need ? n : n - 1 - k;
}

namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

Expected<ConstrainedResult> generate_constrained(
    Session& s, Token last, int64_t max_tokens, const SamplerParams& sp, JsonAcceptor acc,
    const TokenTable& table, const std::function<bool(const std::string&)>& on_text) {
  ConstrainedResult r;
  const int64_t V = s.model().hparams().n_vocab;
  std::vector<float> logits;
  OCTET_RETURN_IF_ERROR(s.eval(std::span<const Token>(&last, 1), false, &logits));
  Sampler sampler(sp);
  std::vector<float> masked(static_cast<size_t>(V));
  std::vector<std::pair<float, Token>> order(static_cast<size_t>(V));
  std::vector<Token> ok, forced, scratch;
  // Greedy: the first valid token in probability order is the answer. Sampling: gather up
  // to top_k valid tokens (64 without a top_k), the sampler then applies its own cuts.
  const size_t want = sp.temperature <= 0 ? 1
                      : sp.top_k > 0     ? static_cast<size_t>(std::min(sp.top_k, 64))
                                         : 64;
  constexpr size_t kFirstPass = 256;

  // Can the document still be closed within `budget` tokens from state a?
  auto fits = [&](const JsonAcceptor& a, int64_t budget) {
    const std::string c = a.min_completion();
    if (static_cast<int64_t>(c.size()) <= budget) return true;  // single-byte tokens exist
    return table.tokenize(c, &scratch) && static_cast<int64_t>(scratch.size()) <= budget;
  };
  auto valid = [&](Token t, int64_t budget_after) {
    if (table.eog[static_cast<size_t>(t)]) return acc.complete();
    const std::string& p = table.piece[static_cast<size_t>(t)];
    if (p.empty()) return false;
    JsonAcceptor a = acc;
    if (!a.feed(p)) return false;
    // Keep room for the closing within the tokens that will be left.
    return fits(a, budget_after);
  };

  auto t1 = std::chrono::steady_clock::now();
  r.finish_reason = "length";
  bool cancelled = false;
  for (int64_t n = 0; n < max_tokens; ++n) {
    if (n == 1) t1 = std::chrono::steady_clock::now();
    if (acc.complete() && !acc.can_continue()) {
      r.finish_reason = "stop";
      break;
    }
    const auto ts = std::chrono::steady_clock::now();
    const int64_t remaining = max_tokens - n;
    // Forced closing: the shortest completion needs all the tokens that are left.
    forced.clear();
    if (!acc.complete()) {
      const std::string c = acc.min_completion();
      if (static_cast<int64_t>(c.size()) >= remaining && table.tokenize(c, &forced) &&
          static_cast<int64_t>(forced.size()) == remaining) {
        for (Token t : forced) {
          r.tokens.push_back(t);
          r.text += table.piece[static_cast<size_t>(t)];
        }
        acc.feed(c);
        if (on_text && !on_text(r.text)) cancelled = true;
        break;
      }
    }

    // Candidates in probability order, checked on a copy of the acceptor.
    ok.clear();
    for (int64_t i = 0; i < V; ++i) order[static_cast<size_t>(i)] = {logits[static_cast<size_t>(i)], static_cast<Token>(i)};
    const size_t first = std::min<size_t>(kFirstPass, order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(first), order.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t i = 0; i < first && ok.size() < want; ++i)
      if (valid(order[i].second, remaining - 1)) ok.push_back(order[i].second);
    if (ok.empty()) {
      // Nothing likely fits (e.g. only a quote or a digit may follow): scan the vocabulary,
      // skipping tokens whose first byte is already refused.
      bool first_ok[256];
      for (int b = 0; b < 256; ++b) first_ok[b] = acc.accepts(std::string(1, static_cast<char>(b)));
      for (Token t = 0; t < V; ++t) {
        const std::string& p = table.piece[static_cast<size_t>(t)];
        const bool cand = table.eog[static_cast<size_t>(t)] ||
                          (!p.empty() && first_ok[static_cast<uint8_t>(p[0])]);
        if (cand && valid(t, remaining - 1)) ok.push_back(t);
      }
    }
    if (ok.empty()) break;  // cannot close in time: "length" with a partial document

    std::fill(masked.begin(), masked.end(), -std::numeric_limits<float>::infinity());
    for (Token t : ok) masked[static_cast<size_t>(t)] = logits[static_cast<size_t>(t)];
    const Token t = sampler.sample(masked.data(), V, s.history());
    r.select_ms += ms_since(ts);
    if (table.eog[static_cast<size_t>(t)]) {
      r.finish_reason = "stop";
      break;
    }
    r.tokens.push_back(t);
    const std::string& p = table.piece[static_cast<size_t>(t)];
    r.text += p;
    acc.feed(p);
    if (on_text && !on_text(r.text)) {
      cancelled = true;
      break;
    }
    if (acc.complete() && !acc.can_continue()) {
      r.finish_reason = "stop";
      break;
    }
    if (n + 1 == max_tokens || s.n_past() >= s.n_ctx()) break;
    OCTET_RETURN_IF_ERROR(s.eval(std::span<const Token>(&t, 1), false, &logits));
  }
  r.complete = acc.complete();
  if (cancelled) r.finish_reason = "cancelled";
  else if (r.complete) r.finish_reason = "stop";
  else r.finish_reason = "length";
  r.decode_ms = r.tokens.size() > 1 ? ms_since(t1) : 0;
  return r;
}

}  // namespace octet::serve
