// Tokenizers built from GGUF metadata: SentencePiece-style ("llama": Llama, Gemma) and
// byte-level BPE ("gpt2": Qwen2, Llama 3 pre-tokenizers). Plus chat templates.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "octet/gguf.h"
#include "octet/status.h"

namespace octet {

using Token = int32_t;

enum class TokenType : int32_t {
  UNDEFINED = 0, NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6,
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Reads tokenizer.ggml.* from a GGUF file.
  static Expected<std::unique_ptr<Tokenizer>> from_gguf(const gguf::File& f);

  // add_special: prepend BOS (and append EOS) as the model's add_bos/add_eos rules say.
  // parse_special: recognise control/user-defined token texts (e.g. "<start_of_turn>") in text.
  virtual std::vector<Token> encode(std::string_view text, bool add_special,
                                    bool parse_special) const = 0;
  // The bytes a token stands for (byte tokens give their byte; control tokens give "" unless
  // render_special). Not necessarily valid UTF-8 on its own: see TextStream.
  virtual std::string token_to_piece(Token t, bool render_special = false) const = 0;
  // Whole-sequence decode (SPM strips the leading space after BOS as llama.cpp does).
  std::string decode(const std::vector<Token>& toks, bool render_special = false) const;

  int32_t n_vocab() const { return static_cast<int32_t>(tokens_.size()); }
  const std::string& token_text(Token t) const { return tokens_.at(t); }
  TokenType token_type(Token t) const;
  Token bos() const { return bos_; }
  Token eos() const { return eos_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  // EOS, EOT and other end-of-generation tokens (e.g. Gemma's <end_of_turn>).
  bool is_eog(Token t) const;
  const std::vector<Token>& eog_tokens() const { return eog_; }
  // Id of a token text, or -1.
  Token find_token(std::string_view text) const;
  const std::string& model_name() const { return model_; }  // "llama", "gpt2", ...
  const std::string& pre() const { return pre_; }           // pre-tokenizer name
  // SPM: a space is put in front of raw text at the start and after special tokens.
  bool add_space_prefix() const { return add_space_prefix_; }

 protected:
  std::string model_, pre_;
  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::vector<int32_t> types_;
  Token bos_ = -1, eos_ = -1, unk_ = -1;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
  std::vector<Token> eog_;
};

// Streams detokenised text: feed tokens, get back only complete UTF-8 characters.
class TextStream {
 public:
  explicit TextStream(const Tokenizer& tok) : tok_(tok) {}
  std::string push(Token t);  // complete characters now available
  std::string flush();        // whatever is left (invalid tail bytes become U+FFFD)
 private:
  const Tokenizer& tok_;
  std::string pending_;
  bool first_ = true;
  bool strip_next_ = false;  // SPM: drop the prefix space of the piece after a leading BOS
};

struct ChatMessage {
  std::string role;  // system, user, assistant, tool
  std::string content;
};

enum class ChatTemplate { kNone, kGemma, kChatML, kLlama2, kLlama3, kPhi3, kZephyr };
// Detects the family from tokenizer.chat_template (kChatML for Qwen etc.); kNone when absent.
ChatTemplate detect_chat_template(const gguf::File& f);
// The same from the template text alone (kNone when no family matches).
ChatTemplate detect_chat_template_text(std::string_view tmpl);
// For files without a template: guess from the vocabulary (<start_of_turn> -> Gemma,
// <|im_start|> -> ChatML, <|start_header_id|> -> Llama 3, ...); kNone when nothing fits.
ChatTemplate guess_chat_template(const Tokenizer& tok);
const char* chat_template_name(ChatTemplate t);
// Renders messages; add_generation_prompt opens the assistant turn.
std::string apply_chat_template(ChatTemplate t, const std::vector<ChatMessage>& msgs,
                                bool add_generation_prompt);

}  // namespace octet
