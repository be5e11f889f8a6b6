#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "octet/gguf.h"

namespace octet::gguf {
namespace {

const std::string kData = OCTET_SHARED_DATA;

TEST(GgufReal, Stories260K) {
  auto f = File::open(kData + "/stories260K/stories260K.gguf");
  ASSERT_TRUE(f.ok()) << f.error();
  const File& g = **f;
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.kvs().size(), 19u);
  EXPECT_EQ(g.tensors().size(), 48u);
  EXPECT_EQ(g.alignment(), 32u);
  EXPECT_EQ(g.data_offset(), 14176u);
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  EXPECT_EQ(g.get_int("llama.context_length"), 2048);
  EXPECT_EQ(g.get_int("llama.embedding_length"), 64);
  EXPECT_EQ(g.get_int("llama.feed_forward_length"), 172);
  EXPECT_EQ(g.get_int("llama.attention.head_count"), 8);
  EXPECT_EQ(g.get_int("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(g.get_int("llama.block_count"), 5);
  EXPECT_EQ(g.get_int("llama.rope.dimension_count"), 8);
  EXPECT_FLOAT_EQ(*g.get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  EXPECT_FALSE(g.find("llama.rope.freq_base"));
  const auto* toks = g.get_strings("tokenizer.ggml.tokens");
  ASSERT_TRUE(toks);
  ASSERT_EQ(toks->size(), 512u);
  EXPECT_EQ((*toks)[1], "<s>");
  EXPECT_EQ((*toks)[2], "</s>");
  auto types = g.get_i32_array("tokenizer.ggml.token_type");
  ASSERT_TRUE(types);
  ASSERT_EQ(types->size(), 512u);
  EXPECT_EQ((*types)[0], 2);
  EXPECT_EQ((*types)[1], 3);
  EXPECT_EQ((*types)[3], 6);
  EXPECT_EQ((*types)[300], 1);
  auto scores = g.get_f32_array("tokenizer.ggml.scores");
  ASSERT_TRUE(scores);
  EXPECT_EQ(scores->size(), 512u);
  EXPECT_EQ(g.get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(g.get_int("tokenizer.ggml.seperator_token_id"), 0xFFFFFFFFll);
  const TensorInfo* t = g.tensor("blk.0.ffn_down.weight");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->type, Type::F32);
  EXPECT_EQ(t->dims, (std::vector<int64_t>{172, 64}));
  EXPECT_EQ(t->n_rows(), 64);
  int64_t params = 0;
  for (const auto& ti : g.tensors()) params += ti.n_elements();
  EXPECT_EQ(params, 260032 + 512 * 64);  // output.weight stores a copy of token_embd
  auto w = g.to_float(*g.tensor("output_norm.weight"));
  ASSERT_TRUE(w.ok()) << w.error();
  EXPECT_EQ(w->size(), 64u);
}

TEST(GgufReal, VocabOnly) {
  auto f = File::open(kData + "/tokenizers/ggml-vocab-llama-spm.gguf");
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ((*f)->tensors().size(), 0u);
  const auto* toks = (*f)->get_strings("tokenizer.ggml.tokens");
  ASSERT_TRUE(toks);
  EXPECT_EQ(toks->size(), 32000u);
  EXPECT_EQ((*f)->get_bool("tokenizer.ggml.add_bos_token"), true);
}

TEST(GgufReal, Gemma3) {
  const std::string path = std::string(OCTET_SOURCE_DIR) + "/models/gemma-3-270m-q4_k_m.gguf";
  if (FILE* fp = std::fopen(path.c_str(), "rb")) {
    std::fclose(fp);
  } else {
    GTEST_SKIP() << "no " << path;
  }
  auto f = File::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ((*f)->get_string("general.architecture"), "gemma3");
  EXPECT_GT((*f)->tensors().size(), 100u);
  for (const auto& t : (*f)->tensors()) {
    std::vector<float> row(static_cast<size_t>(t.row_len()));
    ASSERT_TRUE((*f)->dequantize_rows(t, t.n_rows() - 1, 1, row.data()).ok()) << t.name;
  }
}

}  // namespace
}  // namespace octet::gguf
