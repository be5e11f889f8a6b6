// The generation loop shared by `octet run`, `octet chat` and the server: prefill the
// prompt, then sample until a stop condition, streaming complete UTF-8 text.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "octet/runtime.h"
#include "octet/sampler.h"

namespace octet {

struct GenerateOptions {
  int64_t max_tokens = 128;
  std::vector<std::string> stop;  // stop strings (not included in the output)
  bool stop_at_eog = true;
  SamplerParams sampling;
  // Called once the prompt is in the KV cache, before the first token is sampled (e.g. to
  // save a session file).
  std::function<void()> on_prefilled;
  // Speculative decoding by prompt lookup (greedy only): up to spec_draft tokens drafted
  // from the last n-gram's previous occurrence in prompt + output, verified in one eval;
  // the output is the same as without it. 0: off.
  int64_t spec_draft = 0;
  int64_t spec_ngram = 3;  // longest n-gram tried (then shorter, down to 1)
};

struct GenerateResult {
  std::string text;
  std::vector<Token> tokens;         // generated tokens
  std::string finish_reason;         // "stop" (EOG or stop string) or "length"
  int64_t prompt_tokens = 0;
  double prefill_ms = 0, decode_ms = 0;  // decode_ms covers tokens after the first
  // Speculative decoding: eval calls after the prompt, drafted and accepted draft tokens.
  int64_t decode_evals = 0, spec_drafted = 0, spec_accepted = 0;
  double prefill_tok_s() const { return prompt_tokens / (prefill_ms / 1e3); }
  double decode_tok_s() const {
    return tokens.size() > 1 ? (tokens.size() - 1) / (decode_ms / 1e3) : 0;
  }
};

// on_text receives text as it becomes final (held back while it could start a stop string);
// returning false cancels generation (finish_reason "cancelled").
// Prompt lookup: the continuation (up to max_len tokens) of the most recent earlier
// occurrence of the last n tokens of seq, trying n = max_ngram .. 1; empty if none.
std::vector<Token> lookup_draft(std::span<const Token> seq, int64_t max_ngram, int64_t max_len);

Expected<GenerateResult> generate(Session& s, const std::vector<Token>& prompt,
                                  const GenerateOptions& opt,
                                  const std::function<bool(const std::string&)>& on_text = {});

}  // namespace octet
