// Tokenizer tests: llama.cpp's SPM test vectors, UTF-8 streaming, chat template rendering,
// and BPE on a small in-memory vocabulary.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "octet/gguf.h"
#include "octet/gguf_writer.h"
#include "octet/tokenizer.h"

namespace {

using octet::Token;
using octet::Tokenizer;

std::string shared_data() {
  for (std::string d : {std::string(OCTET_SHARED_DATA), std::string(OCTET_SOURCE_DIR) + "/../shared/data"})
    if (std::filesystem::exists(d)) return d;
  return "";
}

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct SpmVocab {
  std::unique_ptr<octet::gguf::File> file;
  std::unique_ptr<Tokenizer> tok;
};

SpmVocab load_spm() {
  SpmVocab v;
  const std::string d = shared_data();
  if (d.empty()) return v;
  auto f = octet::gguf::File::open(d + "/tokenizers/ggml-vocab-llama-spm.gguf");
  if (!f) return v;
  v.file = std::move(f).value();
  auto t = Tokenizer::from_gguf(*v.file);
  EXPECT_TRUE(t.ok()) << t.error();
  if (t) v.tok = std::move(t).value();
  return v;
}

// llama.cpp's test-tokenizer-0 vectors: .inp holds strings separated by
// "\n__ggml_vocab_test__\n", .out one line of space-separated ids per string (no BOS).
TEST(Tokenizer, LlamaSpmVectors) {
  SpmVocab v = load_spm();
  if (!v.tok) GTEST_SKIP() << "shared data (tokenizers/ggml-vocab-llama-spm.gguf) not found";
  const std::string d = shared_data() + "/tokenizers/ggml-vocab-llama-spm.gguf";
  const std::string inp = slurp(d + ".inp"), outp = slurp(d + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0;;) {
    const size_t at = inp.find(sep, pos);
    if (at == std::string::npos) break;
    texts.push_back(inp.substr(pos, at - pos));
    pos = at + sep.size();
  }
  std::vector<std::vector<Token>> want;
  std::istringstream os(outp);
  for (std::string line; std::getline(os, line);) {
    std::istringstream ls(line);
    std::vector<Token> ids;
    for (Token t; ls >> t;) ids.push_back(t);
    want.push_back(ids);
  }
  ASSERT_GT(texts.size(), 20u);
  ASSERT_EQ(texts.size(), want.size());
  int ok = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto got = v.tok->encode(texts[i], false, false);
    EXPECT_EQ(got, want[i]) << "text #" << i << ": '" << texts[i] << "'";
    ok += got == want[i];
  }
  std::printf("llama-spm vectors: %d / %zu match\n", ok, texts.size());
}

TEST(Tokenizer, SpmBosDecodeAndSpecial) {
  SpmVocab v = load_spm();
  if (!v.tok) GTEST_SKIP() << "shared data not found";
  const Tokenizer& t = *v.tok;
  EXPECT_EQ(t.model_name(), "llama");
  EXPECT_TRUE(t.add_bos());
  const auto ids = t.encode("Hello world", true, false);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], t.bos());
  EXPECT_EQ(t.decode(ids), "Hello world");  // the prefix space goes away after BOS
  EXPECT_TRUE(t.encode("", false, false).empty());
  EXPECT_EQ(t.encode("", true, false), std::vector<Token>{t.bos()});
  // "</s>" is a control token: one token only when parse_special.
  const auto sp = t.encode("a</s>", false, true);
  ASSERT_FALSE(sp.empty());
  EXPECT_EQ(sp.back(), t.eos());
  const auto plain = t.encode("a</s>", false, false);
  EXPECT_GT(plain.size(), sp.size());
  EXPECT_TRUE(t.is_eog(t.eos()));
  EXPECT_EQ(t.find_token("</s>"), t.eos());
  EXPECT_EQ(t.find_token("no such token text"), -1);
  // Byte fallback: a character missing from the 32k vocabulary comes back byte for byte.
  const std::string rare = "\xF0\x9F\xA6\x99";  // U+1F999
  EXPECT_EQ(t.decode(t.encode(rare, false, false)), " " + rare);
  EXPECT_EQ(t.token_to_piece(t.eos()), "");
  EXPECT_EQ(t.token_to_piece(t.eos(), true), "</s>");
}

TEST(Tokenizer, TextStreamUtf8) {
  SpmVocab v = load_spm();
  if (!v.tok) GTEST_SKIP() << "shared data not found";
  const Tokenizer& t = *v.tok;
  const std::string text = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\xA6\x99 \xE4\xBD\xA0\xE5\xA5\xBD";
  const auto ids = t.encode(text, true, false);
  octet::TextStream s(t);
  std::string all;
  for (Token id : ids) {
    const std::string part = s.push(id);
    // Every chunk is valid UTF-8 on its own: never ends inside a character.
    for (size_t i = 0; i < part.size();) {
      const unsigned char c = static_cast<unsigned char>(part[i]);
      const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      ASSERT_LE(i + n, part.size()) << "split character";
      i += n;
    }
    all += part;
  }
  all += s.flush();
  EXPECT_EQ(all, text);

  // A cut-off character at the end becomes U+FFFD on flush; a bad byte right away.
  const Token b_e2 = t.find_token("<0xE2>"), b_82 = t.find_token("<0x82>");
  const Token b_ff = t.find_token("<0xFF>");
  ASSERT_GE(b_e2, 0);
  octet::TextStream s2(t);
  EXPECT_EQ(s2.push(b_e2), "");
  EXPECT_EQ(s2.push(b_82), "");
  EXPECT_EQ(s2.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(s2.flush(), "");
  octet::TextStream s3(t);
  EXPECT_EQ(s3.push(b_ff), "\xEF\xBF\xBD");
}

TEST(ChatTemplate, DetectFromText) {
  using octet::ChatTemplate;
  using octet::detect_chat_template_text;
  EXPECT_EQ(detect_chat_template_text("{{ '<start_of_turn>' + role }}"), ChatTemplate::kGemma);
  EXPECT_EQ(detect_chat_template_text("{{'<|im_start|>' + m.role}}"), ChatTemplate::kChatML);
  EXPECT_EQ(detect_chat_template_text("<|start_header_id|>x<|end_header_id|>"),
            ChatTemplate::kLlama3);
  EXPECT_EQ(detect_chat_template_text("[INST] <<SYS>>"), ChatTemplate::kLlama2);
  EXPECT_EQ(detect_chat_template_text("<|user|>\n{{c}}<|end|>\n<|assistant|>"),
            ChatTemplate::kPhi3);
  EXPECT_EQ(detect_chat_template_text("<|user|>\n{{c}}</s>"), ChatTemplate::kZephyr);
  EXPECT_EQ(detect_chat_template_text(""), ChatTemplate::kNone);
  EXPECT_EQ(detect_chat_template_text("plain {{x}}"), ChatTemplate::kNone);
}

TEST(ChatTemplate, Render) {
  using octet::ChatTemplate;
  using octet::apply_chat_template;
  const std::vector<octet::ChatMessage> m = {
      {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Bye"}};
  EXPECT_EQ(apply_chat_template(ChatTemplate::kGemma, m, true),
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
            "<start_of_turn>model\nHello!<end_of_turn>\n"
            "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(apply_chat_template(ChatTemplate::kChatML, m, true),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(apply_chat_template(ChatTemplate::kChatML, {{"user", "Hi"}}, false),
            "<|im_start|>user\nHi<|im_end|>\n");
  EXPECT_EQ(apply_chat_template(ChatTemplate::kLlama3, {{"user", " Hi "}}, true),
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(apply_chat_template(ChatTemplate::kLlama2, m, false),
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]Hello!</s><s>[INST] Bye [/INST]");
  EXPECT_EQ(apply_chat_template(ChatTemplate::kPhi3, {{"user", "Hi"}}, true),
            "<|user|>\nHi<|end|>\n<|assistant|>\n");
  EXPECT_EQ(apply_chat_template(ChatTemplate::kZephyr, {{"user", "Hi"}}, true),
            "<|user|>\nHi</s>\n<|assistant|>\n");
  EXPECT_STREQ(octet::chat_template_name(ChatTemplate::kGemma), "gemma");
}

}  // namespace

#include "tokenizer/unicode.h"

namespace {

std::vector<std::string> split_words(const std::string& s, int mode) {
  const auto cps = octet::unicode::decode_utf8(s);
  const auto spans = mode == 0 ? octet::unicode::split_gpt2(cps)
                               : octet::unicode::split_llama3(cps, mode);
  std::vector<std::string> out;
  for (const auto& sp : spans) {
    std::string w;
    for (size_t i = sp.b; i < sp.e; ++i) octet::unicode::append_utf8(cps[i], &w);
    out.push_back(w);
  }
  return out;
}

TEST(Unicode, Categories) {
  using namespace octet::unicode;
  EXPECT_EQ(category('a'), kLetter);
  EXPECT_EQ(category(0x4E2D), kLetter);   // 中
  EXPECT_EQ(category('7'), kNumber);
  EXPECT_EQ(category(0x0663), kNumber);   // Arabic-Indic 3
  EXPECT_EQ(category('!'), kPunct);
  EXPECT_EQ(category(0x1F600), kSymbol);  // emoji
  EXPECT_EQ(category(0x0301), kMark);
  EXPECT_EQ(category(0x0378), kNone);     // unassigned
  EXPECT_TRUE(is_whitespace(0x3000));
  EXPECT_FALSE(is_whitespace(0x200B));
  EXPECT_EQ(byte_decode(byte_encode(std::string("\x00 \xff\n", 4))), std::string("\x00 \xff\n", 4));
  EXPECT_EQ(byte_encode(" "), "\xC4\xA0");  // Ġ
}

TEST(Unicode, PreTokenizerSplits) {
  using V = std::vector<std::string>;
  const std::string s = "Hello  world's\n\n 12345 ok!!\n";
  EXPECT_EQ(split_words(s, 0),
            (V{"Hello", " ", " world", "'s", "\n\n", " 12345", " ok", "!!", "\n"}));
  EXPECT_EQ(split_words(s, 3),
            (V{"Hello", " ", " world", "'s", "\n\n", " ", "123", "45", " ok", "!!\n"}));
  EXPECT_EQ(split_words(s, 1),
            (V{"Hello", " ", " world", "'s", "\n\n", " ", "1", "2", "3", "4", "5", " ok", "!!\n"}));
  EXPECT_EQ(split_words("I'LL go", 3), (V{"I", "'LL", " go"}));
  EXPECT_EQ(split_words("I'LL go", 0), (V{"I", "'", "LL", " go"}));
  EXPECT_EQ(split_words("a \t\nb   ", 3), (V{"a", " \t\n", "b", "   "}));
}

// A tiny byte-level BPE vocabulary written to memory: 256 byte tokens, three merges.
std::unique_ptr<Tokenizer> tiny_bpe(const char* pre, std::vector<uint8_t>* keep,
                                    std::unique_ptr<octet::gguf::File>* file) {
  octet::gguf::Writer w;
  std::vector<std::string> toks;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    toks.push_back(octet::unicode::byte_encode(std::string(1, static_cast<char>(b))));
    types.push_back(1);
  }
  for (const char* t : {"\xC4\xA0t", "he", "\xC4\xA0the", "<|im_end|>"}) {
    toks.push_back(t);
    types.push_back(1);
  }
  types.back() = 3;
  const std::vector<std::string> merges = {"\xC4\xA0 t", "h e", "\xC4\xA0t he"};
  w.add_string("general.architecture", "qwen2");
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", pre);
  w.add_string_array("tokenizer.ggml.tokens", toks);
  w.add_array("tokenizer.ggml.token_type", std::span<const int32_t>(types));
  w.add_string_array("tokenizer.ggml.merges", merges);
  w.add_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(toks.size() - 1));
  w.add_bool("tokenizer.ggml.add_bos_token", false);
  auto bytes = w.to_bytes();
  EXPECT_TRUE(bytes.ok()) << bytes.error();
  *keep = std::move(bytes).value();
  auto f = octet::gguf::File::from_memory(keep->data(), keep->size());
  EXPECT_TRUE(f.ok()) << f.error();
  *file = std::move(f).value();
  auto t = Tokenizer::from_gguf(**file);
  EXPECT_TRUE(t.ok()) << t.error();
  return std::move(t).value();
}

TEST(Tokenizer, TinyBpe) {
  std::vector<uint8_t> keep;
  std::unique_ptr<octet::gguf::File> f;
  auto t = tiny_bpe("qwen2", &keep, &f);
  ASSERT_TRUE(t);
  const Token Gt = 256, he = 257, Gthe = 258, im_end = 259;
  const Token tb = static_cast<Token>('t');  // printable ASCII maps to itself, id = byte
  EXPECT_EQ(t->encode("the the", false, false), (std::vector<Token>{tb, he, Gthe}));
  EXPECT_EQ(t->encode(" t", false, false), (std::vector<Token>{Gt}));
  EXPECT_EQ(t->encode("x<|im_end|>", false, true), (std::vector<Token>{'x', im_end}));
  EXPECT_GT(t->encode("x<|im_end|>", false, false).size(), 2u);
  EXPECT_TRUE(t->is_eog(im_end));
  EXPECT_EQ(t->decode(t->encode("the \xE4\xBD\xA0 the\n", true, false)), "the \xE4\xBD\xA0 the\n");
}

TEST(Tokenizer, RejectsUnknownModel) {
  octet::gguf::Writer w;
  w.add_string("tokenizer.ggml.model", "t5-ish");
  std::vector<std::string> toks = {"a"};
  w.add_string_array("tokenizer.ggml.tokens", toks);
  auto bytes = w.to_bytes();
  ASSERT_TRUE(bytes.ok());
  auto f = octet::gguf::File::from_memory(bytes->data(), bytes->size());
  ASSERT_TRUE(f.ok());
  auto t = Tokenizer::from_gguf(**f);
  EXPECT_FALSE(t.ok());
  EXPECT_NE(t.error().find("t5-ish"), std::string::npos);
}

}  // namespace

namespace {

// The default model's vocabulary (262k SentencePiece tokens, no prefix space, no template).
TEST(Tokenizer, Gemma3Vocab) {
  const std::string path = std::string(OCTET_SOURCE_DIR) + "/models/gemma-3-270m-q4_k_m.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "default model not found at " << path;
  auto f = octet::gguf::File::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  auto tr = Tokenizer::from_gguf(**f);
  ASSERT_TRUE(tr.ok()) << tr.error();
  const Tokenizer& t = **tr;
  EXPECT_FALSE(t.add_space_prefix());
  EXPECT_EQ(octet::detect_chat_template(**f), octet::ChatTemplate::kNone);
  EXPECT_EQ(octet::guess_chat_template(t), octet::ChatTemplate::kGemma);
  const Token sot = t.find_token("<start_of_turn>"), eot = t.find_token("<end_of_turn>");
  ASSERT_GE(sot, 0);
  ASSERT_GE(eot, 0);
  EXPECT_TRUE(t.is_eog(eot));
  EXPECT_TRUE(t.is_eog(t.eos()));
  EXPECT_FALSE(t.is_eog(sot));
  const std::string chat = octet::apply_chat_template(octet::ChatTemplate::kGemma,
                                                      {{"user", "Hi"}}, true);
  const auto ids = t.encode(chat, true, true);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids[0], t.bos());
  EXPECT_EQ(ids[1], sot);
  EXPECT_EQ(t.decode(ids, true), "<bos>" + chat);
  EXPECT_EQ(t.decode(ids), "user\nHi\nmodel\n");  // control tokens vanish
  // Without special parsing the marker is ordinary text.
  EXPECT_GT(t.encode(chat, true, false).size(), ids.size());
}

}  // namespace
