#include "octet/generate.h"

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

  Sampler sampler(opt.sampling);
  TextStream stream(tok);
  std::string pending;  // final text not yet handed to on_text
  size_t emitted = 0;   // bytes of r.text already handed out
  r.finish_reason = "length";
  auto t1 = std::chrono::steady_clock::now();
  bool cancelled = false, stop_string_hit = false;
  for (int64_t n = 0; n < opt.max_tokens; ++n) {
    if (n == 1) t1 = std::chrono::steady_clock::now();
    const Token t = sampler.sample(logits.data(), V, s.history());
    if (opt.stop_at_eog && tok.is_eog(t)) {
      r.finish_reason = "stop";
      break;
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
      break;
    }
    if (cancelled) {
      r.finish_reason = "cancelled";
      break;
    }
    if (n + 1 == opt.max_tokens) break;
    if (s.n_past() >= s.n_ctx()) {
      r.finish_reason = "length";
      break;
    }
    OCTET_RETURN_IF_ERROR(s.eval(std::span<const Token>(&t, 1), false, &logits));
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
