#include <fmt/format.h>

#include <algorithm>

#include "octet/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace octet {

namespace tok {

Status VocabTokenizer::load_common(const gguf::File& f) {
  const auto* toks = f.get_strings("tokenizer.ggml.tokens");
  if (!toks || toks->empty()) return Status::Error("tokenizer: tokenizer.ggml.tokens is missing");
  tokens_ = *toks;
  const size_t n = tokens_.size();
  if (auto sc = f.get_f32_array("tokenizer.ggml.scores")) {
    if (sc->size() != n) return Status::Error("tokenizer: scores and tokens differ in length");
    scores_ = std::move(*sc);
  } else {
    scores_.assign(n, 0.0f);
  }
  if (auto ty = f.get_i32_array("tokenizer.ggml.token_type")) {
    if (ty->size() != n) return Status::Error("tokenizer: token_type and tokens differ in length");
    types_ = std::move(*ty);
  } else {
    types_.assign(n, static_cast<int32_t>(TokenType::NORMAL));
  }
  to_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) to_id_[tokens_[i]] = static_cast<Token>(i);  // last one wins

  auto id_key = [&](const char* key, Token* dst) -> Status {
    if (auto v = f.get_int(key)) {
      // 0xFFFFFFFF (or -1) means "none".
      if (*v < 0 || *v == 0xFFFFFFFFLL) { *dst = -1; return Status::Ok(); }
      if (*v >= static_cast<int64_t>(n))
        return Status::Error(fmt::format("tokenizer: {} = {} is out of range (vocab {})", key,
                                         *v, n));
      *dst = static_cast<Token>(*v);
    }
    return Status::Ok();
  };
  OCTET_RETURN_IF_ERROR(id_key("tokenizer.ggml.bos_token_id", &bos_));
  OCTET_RETURN_IF_ERROR(id_key("tokenizer.ggml.eos_token_id", &eos_));
  OCTET_RETURN_IF_ERROR(id_key("tokenizer.ggml.unknown_token_id", &unk_));
  Token eot = -1, eom = -1;
  OCTET_RETURN_IF_ERROR(id_key("tokenizer.ggml.eot_token_id", &eot));
  OCTET_RETURN_IF_ERROR(id_key("tokenizer.ggml.eom_token_id", &eom));
  if (auto b = f.get_bool("tokenizer.ggml.add_bos_token")) add_bos_ = *b;
  if (auto b = f.get_bool("tokenizer.ggml.add_eos_token")) add_eos_ = *b;
  if (add_bos_ && bos_ < 0) add_bos_ = false;
  if (add_eos_ && eos_ < 0) add_eos_ = false;

  // End-of-generation tokens: the ids above plus well-known texts (as llama.cpp does, since
  // GGUF files often lack eot ids); these are forced to CONTROL so they never leak as text.
  eog_.clear();
  auto add_eog = [&](Token t) {
    if (t >= 0 && std::find(eog_.begin(), eog_.end(), t) == eog_.end()) eog_.push_back(t);
  };
  add_eog(eos_);
  add_eog(eot);
  add_eog(eom);
  const bool normal_end_s = lookup("<|tool_response>") >= 0;  // Gemma 4: "</s>" is text
  for (const char* s : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>",
                        "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>",
                        "_<EOT>", "<|end_of_text|>", "<end_of_utterance>", "<eos>"}) {
    const Token t = lookup(s);
    if (t < 0 || (normal_end_s && std::string_view(s) == "</s>")) continue;
    add_eog(t);
    types_[t] = static_cast<int32_t>(TokenType::CONTROL);
  }

  // Special tokens, longest text first (ties: lower id first).
  specials_.clear();
  for (size_t i = 0; i < n; ++i) {
    const auto t = static_cast<TokenType>(types_[i]);
    if ((t == TokenType::CONTROL || t == TokenType::USER_DEFINED || t == TokenType::UNKNOWN) &&
        !tokens_[i].empty())
      specials_.push_back(static_cast<Token>(i));
  }
  std::stable_sort(specials_.begin(), specials_.end(), [&](Token a, Token b) {
    return tokens_[a].size() > tokens_[b].size();
  });
  special_rank_.assign(n, -1);
  trie_.assign(1, TrieNode{});
  for (size_t r = 0; r < specials_.size(); ++r) {
    const Token t = specials_[r];
    special_rank_[t] = static_cast<int32_t>(r);
    int32_t node = 0;
    for (char c : tokens_[t]) {
      auto it = trie_[node].next.find(static_cast<uint8_t>(c));
      if (it == trie_[node].next.end()) {
        trie_.push_back(TrieNode{});
        it = trie_[node].next.emplace(static_cast<uint8_t>(c),
                                      static_cast<int32_t>(trie_.size() - 1)).first;
      }
      node = it->second;
    }
    if (trie_[node].tok < 0) trie_[node].tok = t;
  }
  return Status::Ok();
}

Token VocabTokenizer::lookup(std::string_view text) const {
  auto it = to_id_.find(text);
  return it == to_id_.end() ? -1 : it->second;
}

std::vector<Fragment> VocabTokenizer::partition(std::string_view text, bool parse_special) const {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({-1, 0, text.size()});
  // Which special tokens occur anywhere in the text (one trie walk per position), in
  // priority order; only those need the (quadratic-looking) split passes below.
  std::vector<int32_t> present;
  for (size_t i = 0; i < text.size(); ++i) {
    int32_t node = 0;
    for (size_t j = i; j < text.size(); ++j) {
      auto it = trie_[node].next.find(static_cast<uint8_t>(text[j]));
      if (it == trie_[node].next.end()) break;
      node = it->second;
      const Token t = trie_[node].tok;
      if (t < 0) continue;
      const auto ty = static_cast<TokenType>(types_[t]);
      if (!parse_special && ty != TokenType::USER_DEFINED) continue;
      present.push_back(special_rank_[t]);
    }
  }
  std::sort(present.begin(), present.end());
  present.erase(std::unique(present.begin(), present.end()), present.end());
  for (int32_t r : present) {
    const Token t = specials_[r];
    const std::string& s = tokens_[t];
    std::vector<Fragment> next;
    next.reserve(frags.size() + 4);
    for (const Fragment& fr : frags) {
      if (fr.token >= 0) {
        next.push_back(fr);
        continue;
      }
      const std::string_view raw = text.substr(fr.off, fr.len);
      size_t pos = 0;
      while (true) {
        const size_t at = raw.find(s, pos);
        if (at == std::string_view::npos) break;
        if (at > pos) next.push_back({-1, fr.off + pos, at - pos});
        next.push_back({t, fr.off + at, s.size()});
        pos = at + s.size();
      }
      if (pos < raw.size()) next.push_back({-1, fr.off + pos, raw.size() - pos});
    }
    frags.swap(next);
  }
  return frags;
}

}  // namespace tok

Expected<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const gguf::File& f) {
  const auto model = f.get_string("tokenizer.ggml.model");
  if (!model) return Status::Error("tokenizer: tokenizer.ggml.model is missing");
  if (*model == "llama") return tok::make_spm(f);
  if (*model == "gpt2") return tok::make_bpe(f);
  return Status::Error(fmt::format(
      "tokenizer: model '{}' is not supported (supported: llama (SentencePiece), gpt2 (BPE))",
      *model));
}

TokenType Tokenizer::token_type(Token t) const {
  if (t < 0 || t >= n_vocab()) return TokenType::UNDEFINED;
  return static_cast<TokenType>(types_[t]);
}

bool Tokenizer::is_eog(Token t) const {
  return t >= 0 && std::find(eog_.begin(), eog_.end(), t) != eog_.end();
}

Token Tokenizer::find_token(std::string_view text) const {
  for (size_t i = 0; i < tokens_.size(); ++i)
    if (tokens_[i] == text) return static_cast<Token>(i);
  return -1;
}

std::string Tokenizer::decode(const std::vector<Token>& toks, bool render_special) const {
  std::string out;
  bool strip = false;
  for (size_t i = 0; i < toks.size(); ++i) {
    std::string p = token_to_piece(toks[i], render_special);
    // SentencePiece put a space in front of the text; drop it after a leading BOS.
    if (i == 0 && toks[i] == bos_ && add_space_prefix_) strip = true;
    else if (strip && i == 1 && !p.empty() && p[0] == ' ') p.erase(0, 1);
    out += p;
  }
  return out;
}

std::string TextStream::push(Token t) {
  std::string p = tok_.token_to_piece(t);
  if (first_ && t == tok_.bos() && tok_.add_space_prefix()) {
    strip_next_ = true;
  } else if (strip_next_) {
    if (!p.empty() && p[0] == ' ') p.erase(0, 1);
    strip_next_ = false;
  }
  first_ = false;
  pending_ += p;
  // Hand out every complete character; bytes that can never become valid turn into U+FFFD
  // right away, a valid-but-incomplete tail waits for the next token.
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    bool incomplete;
    const size_t n = unicode::valid_char_len(pending_, i, &incomplete);
    if (n) {
      out.append(pending_, i, n);
      i += n;
    } else if (incomplete) {
      break;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  pending_.erase(0, i);
  return out;
}

std::string TextStream::flush() {
  std::string out = pending_.empty() ? "" : "\xEF\xBF\xBD";
  pending_.clear();
  return out;
}

}  // namespace octet
