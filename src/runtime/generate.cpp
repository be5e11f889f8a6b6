#include "octet/generate.h"

#include <algorithm>
#include <chrono>
#include <fmt/format.h>

namespace octet {

namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Length of the longest suffix of text that is a proper prefix of some stop string.
size_t held_back(const std::string& text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const auto& s : stops)
    for (size_t k = std::min(s.size() - 1, text.size()); k > hold; --k)
      if (text.compare(text.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
  return hold;
}
}  // namespace

std::vector<Token> lookup_draft(std::span<const Token> seq, int64_t max_ngram, int64_t max_len) {
  const int64_t L = static_cast<int64_t>(seq.size());
  for (int64_t n = std::min(max_ngram, L - 1); n >= 1 && max_len > 0; --n) {
    const Token* tail = seq.data() + L - n;
    // Most recent earlier match seq[j, j+n) == tail (j + n < L: not the tail itself).
    for (int64_t j = L - n - 1; j >= 0; --j) {
      if (!std::equal(tail, tail + n, seq.data() + j)) continue;
      const int64_t from = j + n, len = std::min(max_len, L - from);
      return std::vector<Token>(seq.begin() + from, seq.begin() + from + len);
    }
  }
  return {};
}

Expected<GenerateResult> generate(Session& s, const std::vector<Token>& prompt,
                                  const GenerateOptions& opt,
                                  const std::function<bool(const std::string&)>& on_text) {
  GenerateResult r;
  r.prompt_tokens = static_cast<int64_t>(prompt.size());
  if (prompt.empty()) return Status::Error("generate: empty prompt");
  if (opt.max_tokens < 0) return Status::Error("generate: max_tokens must be >= 0");
  const Tokenizer& tok = s.model().tokenizer();
  const int64_t V = s.model().hparams().n_vocab;
  std::vector<std::string> stops;
  for (const auto& st : opt.stop)
    if (!st.empty()) stops.push_back(st);

  std::vector<float> logits;
  auto t0 = std::chrono::steady_clock::now();
  OCTET_RETURN_IF_ERROR(s.eval(prompt, false, &logits));
  r.prefill_ms = ms_since(t0);
  if (opt.on_prefilled) opt.on_prefilled();

  Sampler sampler(opt.sampling);
  TextStream stream(tok);
  std::string pending;  // final text not yet handed to on_text
  size_t emitted = 0;   // bytes of r.text already handed out
  r.finish_reason = "length";
  auto t1 = std::chrono::steady_clock::now();
  bool cancelled = false, stop_string_hit = false;
  // Takes one sampled token; false when generation ends with it (or before it).
  auto accept = [&](Token t) -> bool {
    if (opt.stop_at_eog && tok.is_eog(t)) {
      r.finish_reason = "stop";
      return false;
    }
    r.tokens.push_back(t);
    r.text += stream.push(t);
    // Stop strings: cut at the first occurrence.
    bool stopped = false;
    for (const auto& st : stops) {
      size_t at = r.text.find(st, emitted > st.size() ? emitted - st.size() : 0);
      if (at != std::string::npos) {
        r.text.resize(at);
        stopped = true;
      }
    }
    const size_t safe = stopped ? r.text.size() : r.text.size() - held_back(r.text, stops);
    if (on_text && safe > emitted) {
      if (!on_text(r.text.substr(emitted, safe - emitted))) cancelled = true;
      emitted = safe;
    } else if (!on_text) {
      emitted = safe;
    }
    if (stopped) {
      r.finish_reason = "stop";
      stop_string_hit = true;
      return false;
    }
    if (cancelled) {
      r.finish_reason = "cancelled";
      return false;
    }
    return static_cast<int64_t>(r.tokens.size()) < opt.max_tokens;
  };
  const bool spec = opt.spec_draft > 0;
  if (spec && opt.sampling.temperature > 0.f)
    return Status::Error("speculative decoding needs greedy sampling (--temp 0)");
  std::vector<Token> batch;
  std::vector<float> all;
  while (opt.max_tokens > 0) {
    const Token t = sampler.sample(logits.data(), V, s.history());
    if (!accept(t)) break;
    if (r.tokens.size() == 1) t1 = std::chrono::steady_clock::now();  // decode time from here
    if (s.n_past() >= s.n_ctx()) {
      r.finish_reason = "length";
      break;
    }
    // Draft: at most what the context, the token budget and an exact batch (rows computed
    // exactly as one-token decode steps; below one chunk, so truncating stays cheap) allow.
    std::vector<Token> draft;
    if (spec) {
      const int64_t room = std::min({opt.spec_draft, s.n_ctx() - s.n_past() - 1,
                                     opt.max_tokens - static_cast<int64_t>(r.tokens.size()),
                                     s.exact_batch() - 1});
      if (room > 0) {
        std::vector<Token> seq(s.history());
        seq.push_back(t);
        draft = lookup_draft(seq, opt.spec_ngram, room);
      }
    }
    ++r.decode_evals;
    if (draft.empty()) {
      OCTET_RETURN_IF_ERROR(s.eval(std::span<const Token>(&t, 1), false, &logits));
      continue;
    }
    batch.assign(1, t);
    batch.insert(batch.end(), draft.begin(), draft.end());
    const int64_t n0 = s.n_past(), k = static_cast<int64_t>(draft.size());
    OCTET_RETURN_IF_ERROR(s.eval(batch, true, &all));
    r.spec_drafted += k;
    // Row i predicts the token after batch[i]: keep drafts while they equal that prediction
    // (the same greedy choice plain decoding would make, with the same history).
    int64_t a = 0;
    bool done = false;
    for (; a < k; ++a) {
      const std::span<const Token> hist(s.history().data(), static_cast<size_t>(n0 + 1 + a));
      if (sampler.sample(all.data() + a * V, V, hist) != draft[a]) break;
      if (!accept(draft[a])) {
        done = true;
        ++a;  // consumed (or ended generation)
        break;
      }
    }
    r.spec_accepted += a;
    s.truncate(n0 + 1 + a);  // drop the rejected drafts' KV
    if (done) break;
    logits.assign(all.begin() + a * V, all.begin() + (a + 1) * V);
  }
  // Bytes still inside the stream (an incomplete character) belong to the text unless a
  // stop string already cut it.
  std::string tail = stream.flush();
  if (!stop_string_hit) r.text += tail;
  if (on_text && r.text.size() > emitted && r.finish_reason != "cancelled")
    on_text(r.text.substr(emitted));
  r.decode_ms = r.tokens.size() > 1 ? ms_since(t1) : 0;
  return r;
}

}  // namespace octet
