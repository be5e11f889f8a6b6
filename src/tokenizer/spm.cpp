// SentencePiece-style tokenizer (tokenizer.ggml.model = "llama": Llama 1/2, Gemma): the
// llama.cpp variant of SPM BPE - repeatedly merge the adjacent pair whose concatenation is the
// highest-scoring vocabulary entry, over UTF-8 characters, with byte fallback <0xXX>.
#include <fmt/format.h>

#include <queue>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace octet::tok {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

class SpmTokenizer final : public VocabTokenizer {
 public:
  Status load(const gguf::File& f) {
    model_ = "llama";
    pre_ = f.get_string("tokenizer.ggml.pre").value_or("default");
    bos_ = 1;
    eos_ = 2;
    unk_ = 0;
    add_bos_ = true;
    add_eos_ = false;
    add_space_prefix_ = f.get_bool("tokenizer.ggml.add_space_prefix").value_or(true);
    const auto* toks = f.get_strings("tokenizer.ggml.tokens");
    const int64_t n = toks ? static_cast<int64_t>(toks->size()) : 0;
    // Defaults only count when the vocabulary is big enough for them.
    if (bos_ >= n) bos_ = -1;
    if (eos_ >= n) eos_ = -1;
    if (unk_ >= n) unk_ = -1;
    OCTET_RETURN_IF_ERROR(load_common(f));
    for (int b = 0; b < 256; ++b) byte_tok_[b] = lookup(fmt::format("<0x{:02X}>", b));
    return Status::Ok();
  }

  std::vector<Token> encode(std::string_view text, bool add_special,
                            bool parse_special) const override {
    std::vector<Token> out;
    if (add_special && add_bos_) out.push_back(bos_);
    bool prev_special = true;  // a space goes in front of the first raw text
    for (const Fragment& fr : partition(text, parse_special)) {
      if (fr.token >= 0) {
        out.push_back(fr.token);
        prev_special = true;
        continue;
      }
      std::string s;
      if (add_space_prefix_ && prev_special) s = " ";
      s.append(text.substr(fr.off, fr.len));
      std::string esc;
      esc.reserve(s.size() + 8);
      for (char c : s) {
        if (c == ' ') esc.append(kSpace);
        else esc.push_back(c);
      }
      tokenize(esc, &out);
      prev_special = false;
    }
    if (add_special && add_eos_) out.push_back(eos_);
    return out;
  }

  std::string token_to_piece(Token t, bool render_special) const override {
    if (t < 0 || t >= n_vocab()) return "";
    const std::string& s = tokens_[t];
    switch (static_cast<TokenType>(types_[t])) {
      case TokenType::CONTROL:
      case TokenType::UNKNOWN: return render_special ? s : "";
      case TokenType::USER_DEFINED: return s;
      case TokenType::NORMAL: {
        std::string r;
        r.reserve(s.size());
        for (size_t i = 0; i < s.size();) {
          if (s.compare(i, kSpace.size(), kSpace) == 0) {
            r.push_back(' ');
            i += kSpace.size();
          } else {
            r.push_back(s[i++]);
          }
        }
        return r;
      }
      case TokenType::BYTE: {
        // "<0xAB>"
        if (s.size() == 6 && s.compare(0, 3, "<0x") == 0) {
          unsigned v = 0;
          for (size_t i = 3; i < 5; ++i) {
            const char c = s[i];
            v = v * 16 + static_cast<unsigned>(c >= 'A' ? (c & ~0x20) - 'A' + 10 : c - '0');
          }
          return std::string(1, static_cast<char>(v & 0xFF));
        }
        return s;
      }
      default: return "";
    }
  }

 private:
  struct Symbol {
    int prev, next;
    size_t off, n;
  };
  struct Bigram {
    int left, right;
    float score;
    size_t size;
  };
  struct BigramLess {
    // Highest score first; on ties the leftmost pair.
    bool operator()(const Bigram& l, const Bigram& r) const {
      return l.score < r.score || (l.score == r.score && l.left > r.left);
    }
  };

  void tokenize(const std::string& text, std::vector<Token>* out) const {
    std::vector<Symbol> sym;
    for (size_t off = 0; off < text.size();) {
      const size_t n =
          std::min(unicode::utf8_len(static_cast<uint8_t>(text[off])), text.size() - off);
      const int idx = static_cast<int>(sym.size());
      sym.push_back({idx - 1, off + n == text.size() ? -1 : idx + 1, off, n});
      off += n;
    }
    if (sym.empty()) return;
    std::priority_queue<Bigram, std::vector<Bigram>, BigramLess> q;
    auto try_add = [&](int l, int r) {
      if (l < 0 || r < 0) return;
      const std::string_view cat(text.data() + sym[l].off, sym[l].n + sym[r].n);
      const Token t = lookup(cat);
      if (t < 0) return;
      q.push({l, r, scores_[t], cat.size()});
    };
    for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);
    while (!q.empty()) {
      const Bigram b = q.top();
      q.pop();
      Symbol& L = sym[b.left];
      Symbol& R = sym[b.right];
      if (L.n == 0 || R.n == 0 || L.n + R.n != b.size) continue;  // stale
      L.n += R.n;
      R.n = 0;
      L.next = R.next;
      if (R.next >= 0) sym[R.next].prev = b.left;
      try_add(L.prev, b.left);
      try_add(b.left, L.next);
    }
    for (int i = 0; i != -1; i = sym[i].next) {
      const std::string_view piece(text.data() + sym[i].off, sym[i].n);
      const Token t = lookup(piece);
      if (t >= 0) {
        out->push_back(t);
        continue;
      }
      // Not in the vocabulary (only single characters get here): byte fallback.
      for (char c : piece) {
        Token bt = byte_tok_[static_cast<uint8_t>(c)];
        if (bt < 0) bt = lookup(std::string_view(&c, 1));
        if (bt < 0) bt = unk_;
        if (bt >= 0) out->push_back(bt);
      }
    }
  }

  Token byte_tok_[256];
};

}  // namespace

Expected<std::unique_ptr<Tokenizer>> make_spm(const gguf::File& f) {
  auto t = std::make_unique<SpmTokenizer>();
  OCTET_RETURN_IF_ERROR(t->load(f));
  return std::unique_ptr<Tokenizer>(std::move(t));
}

}  // namespace octet::tok
