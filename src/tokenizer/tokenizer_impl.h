// Internals shared by the SPM and BPE tokenizers: vocabulary tables and the special-token
// partition that runs before either algorithm.
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "octet/tokenizer.h"

namespace octet::tok {

// Lets an unordered_map<std::string, ...> be searched with a string_view (no allocation).
struct SvHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// A piece of the input: raw text to run the model's algorithm on, or one special token.
struct Fragment {
  Token token;  // -1 for raw text
  size_t off, len;
};

class VocabTokenizer : public Tokenizer {
 public:
  Status load_common(const gguf::File& f);
  // Splits text around special tokens as llama.cpp does: special tokens are taken longest
  // first over the whole text (ties by id); control and unknown tokens only when
  // parse_special, user-defined tokens always.
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  Token lookup(std::string_view text) const;

 protected:
  std::unordered_map<std::string, Token, SvHash, std::equal_to<>> to_id_;
  std::vector<Token> specials_;  // control/user-defined/unknown, longest text first
  // Byte trie over special token texts to find which of them occur in a text quickly.
  struct TrieNode {
    std::unordered_map<uint8_t, int32_t> next;
    Token tok = -1;
  };
  std::vector<TrieNode> trie_;
  std::vector<int32_t> special_rank_;  // token -> position in specials_, or -1
};

Expected<std::unique_ptr<Tokenizer>> make_spm(const gguf::File& f);
Expected<std::unique_ptr<Tokenizer>> make_bpe(const gguf::File& f);

}  // namespace octet::tok
