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
};

struct GenerateResult {
  std::string text;
  std::vector<Token> tokens;         // generated tokens
  std::string finish_reason;         // "stop" (EOG or stop string) or "length"
  int64_t prompt_tokens = 0;
  double prefill_ms = 0, decode_ms = 0;  // decode_ms covers tokens after the first
  double prefill_tok_s() const { return prompt_tokens / (prefill_ms / 1e3); }
  double decode_tok_s() const {
    return tokens.size() > 1 ? (tokens.size() - 1) / (decode_ms / 1e3) : 0;
  }
};

// on_text receives text as it becomes final (held back while it could start a stop string);
// returning false cancels generation (finish_reason "cancelled").
Expected<GenerateResult> generate(Session& s, const std::vector<Token>& prompt,
                                  const GenerateOptions& opt,
                                  const std::function<bool(const std::string&)>& on_text = {});

}  // namespace octet
