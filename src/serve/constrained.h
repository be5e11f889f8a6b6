// Constrained decoding for `octet serve` (docs/serve.md): sample only tokens whose bytes keep a
// JsonAcceptor alive, end only when the document is complete, and close the document in
// time for max_tokens where that is possible.
#pragma once
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "octet/json_schema.h"
#include "octet/runtime.h"
#include "octet/sampler.h"

namespace octet::serve {

// The bytes of every token, computed once per model.
struct TokenTable {
  explicit TokenTable(const Tokenizer& tok);
  std::vector<std::string> piece;  // "" for tokens never written under a constraint
  std::vector<uint8_t> eog;        // 1: end-of-generation token
  std::unordered_map<std::string, Token> by_piece;
  size_t max_len = 1;
  // Greedy longest-match tokens spelling text exactly; false if some byte has no token.
  bool tokenize(std::string_view text, std::vector<Token>* out) const;
};

struct ConstrainedResult {
  std::string text;
  std::vector<Token> tokens;
  std::string finish_reason;  // "stop" (document complete) or "length" / "cancelled"
  bool complete = false;      // text is a complete, valid document
  double decode_ms = 0;       // tokens after the first
  double select_ms = 0;       // of which choosing tokens under the constraint (not the model)
};

// Evaluates `last` (the prompt's last token; the rest is in the session) and writes at most
// max_tokens tokens. on_text gets the whole text after every token; false cancels.
Expected<ConstrainedResult> generate_constrained(
    Session& s, Token last, int64_t max_tokens, const SamplerParams& sp, JsonAcceptor acc,
    const TokenTable& table, const std::function<bool(const std::string&)>& on_text);

// Length of the longest prefix of text that ends on a complete UTF-8 character.
size_t utf8_complete_prefix(const std::string& text);

}  // namespace octet::serve
