// Byte-level BPE (tokenizer.ggml.model = "gpt2": GPT-2, Llama 3, Qwen2): pre-tokenise with the
// model's regex, map bytes to printable code points (GPT-2 mapping), then apply merges in rank
// order (lowest rank first, leftmost on ties) inside each word.
#include <fmt/format.h>

#include <queue>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace octet::tok {
namespace {

enum class Pre { kGpt2, kLlama3, kQwen2 };

class BpeTokenizer final : public VocabTokenizer {
 public:
  Status load(const gguf::File& f) {
    model_ = "gpt2";
    pre_ = f.get_string("tokenizer.ggml.pre").value_or("default");
    if (pre_ == "default" || pre_ == "gpt2" || pre_ == "gpt-2") {
      kind_ = Pre::kGpt2;
    } else if (pre_ == "llama-bpe" || pre_ == "llama3" || pre_ == "llama-v3") {
      kind_ = Pre::kLlama3;
      ignore_merges_ = true;  // a word that is already a token is taken whole
      add_bos_ = true;
    } else if (pre_ == "qwen2") {
      kind_ = Pre::kQwen2;
    } else {
      return Status::Error(fmt::format(
          "tokenizer: BPE pre-tokenizer '{}' is not supported (supported: gpt2/default, "
          "llama-bpe, qwen2)", pre_));
    }
    const auto* toks = f.get_strings("tokenizer.ggml.tokens");
    const int64_t n = toks ? static_cast<int64_t>(toks->size()) : 0;
    bos_ = eos_ = n > 11 ? 11 : -1;  // GPT-2's defaults when the file names none
    unk_ = -1;
    OCTET_RETURN_IF_ERROR(load_common(f));
    const auto* merges = f.get_strings("tokenizer.ggml.merges");
    if (!merges) return Status::Error("tokenizer: BPE model without tokenizer.ggml.merges");
    ranks_.reserve(merges->size());
    for (size_t i = 0; i < merges->size(); ++i) {
      const std::string& m = (*merges)[i];
      const size_t sp = m.find(' ', 1);
      if (sp == std::string::npos)
        return Status::Error(fmt::format("tokenizer: merge #{} '{}' has no space", i, m));
      ranks_.emplace(m, static_cast<int32_t>(i));  // the first of duplicate merges wins
    }
    return Status::Ok();
  }

  std::vector<Token> encode(std::string_view text, bool add_special,
                            bool parse_special) const override {
    std::vector<Token> out;
    if (add_special && add_bos_) out.push_back(bos_);
    for (const Fragment& fr : partition(text, parse_special)) {
      if (fr.token >= 0) out.push_back(fr.token);
      else tokenize(text.substr(fr.off, fr.len), &out);
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
      case TokenType::NORMAL: return unicode::byte_decode(s);
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
    int32_t rank;
    size_t size;
  };
  struct BigramGreater {
    // Lowest rank first; on ties the leftmost pair.
    bool operator()(const Bigram& l, const Bigram& r) const {
      return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
    }
  };

  int32_t rank(std::string_view l, std::string_view r, std::string* key) const {
    key->assign(l);
    key->push_back(' ');
    key->append(r);
    auto it = ranks_.find(std::string_view(*key));
    return it == ranks_.end() ? -1 : it->second;
  }

  void tokenize(std::string_view raw, std::vector<Token>* out) const {
    const std::vector<uint32_t> cps = unicode::decode_utf8(raw);
    const std::vector<unicode::Span> spans =
        kind_ == Pre::kGpt2 ? unicode::split_gpt2(cps)
                            : unicode::split_llama3(cps, kind_ == Pre::kLlama3 ? 3 : 1);
    std::string bytes;
    for (const unicode::Span& sp : spans) {
      bytes.clear();
      for (size_t i = sp.b; i < sp.e; ++i) unicode::append_utf8(cps[i], &bytes);
      merge_word(unicode::byte_encode(bytes), out);
    }
  }

  void merge_word(const std::string& w, std::vector<Token>* out) const {
    if (ignore_merges_) {
      const Token t = lookup(w);
      if (t >= 0) {
        out->push_back(t);
        return;
      }
    }
    std::vector<Symbol> sym;
    for (size_t off = 0; off < w.size();) {
      const size_t n = std::min(unicode::utf8_len(static_cast<uint8_t>(w[off])), w.size() - off);
      const int idx = static_cast<int>(sym.size());
      sym.push_back({idx - 1, off + n == w.size() ? -1 : idx + 1, off, n});
      off += n;
    }
    if (sym.empty()) return;
    auto view = [&](const Symbol& s) { return std::string_view(w.data() + s.off, s.n); };
    std::priority_queue<Bigram, std::vector<Bigram>, BigramGreater> q;
    std::string key;
    auto try_add = [&](int l, int r) {
      if (l < 0 || r < 0) return;
      const int32_t rk = rank(view(sym[l]), view(sym[r]), &key);
      if (rk < 0) return;
      q.push({l, r, rk, sym[l].n + sym[r].n});
    };
    for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);
    while (!q.empty()) {
      const Bigram b = q.top();
      q.pop();
      Symbol& L = sym[b.left];
      Symbol& R = sym[b.right];
      // Stale entries: a side was merged away, or the pair's text changed. Symbols are
      // contiguous, so same left start + same total size means the same text.
      if (L.n == 0 || R.n == 0 || L.next != b.right || L.n + R.n != b.size) continue;
      L.n += R.n;
      R.n = 0;
      L.next = R.next;
      if (R.next >= 0) sym[R.next].prev = b.left;
      try_add(L.prev, b.left);
      try_add(b.left, L.next);
    }
    for (int i = 0; i != -1; i = sym[i].next) {
      const std::string_view piece = view(sym[i]);
      const Token t = lookup(piece);
      if (t >= 0) {
        out->push_back(t);
        continue;
      }
      for (char c : piece) {  // as llama.cpp: single bytes that are tokens, others dropped
        const Token bt = lookup(std::string_view(&c, 1));
        if (bt >= 0) out->push_back(bt);
      }
    }
  }

  Pre kind_ = Pre::kGpt2;
  bool ignore_merges_ = false;
  std::unordered_map<std::string, int32_t, SvHash, std::equal_to<>> ranks_;
};

}  // namespace

Expected<std::unique_ptr<Tokenizer>> make_bpe(const gguf::File& f) {
  auto t = std::make_unique<BpeTokenizer>();
  OCTET_RETURN_IF_ERROR(t->load(f));
  return std::unique_ptr<Tokenizer>(std::move(t));
}

}  // namespace octet::tok
