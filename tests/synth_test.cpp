// octet::synth: shape table, options and outlier channels (cheap checks; the file-level ones,
// against llama.cpp, are in tests/python/test_synth.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "octet/synth.h"

namespace {

using octet::synth::find_shape;

TEST(Synth, ShapesHaveConsistentDims) {
  ASSERT_EQ(octet::synth::shapes().size(), 5u);
  for (const auto& s : octet::synth::shapes()) {
    SCOPED_TRACE(s.name);
    EXPECT_EQ(find_shape(s.name), &s);
    EXPECT_EQ(s.n_head % s.n_head_kv, 0);
    EXPECT_EQ(s.n_embd % 32, 0);
    EXPECT_EQ(s.n_ff % 32, 0);
    EXPECT_EQ((s.n_head * s.head_dim) % 32, 0);
    EXPECT_LE(s.n_rot, s.head_dim);
  }
  const auto* q = find_shape("qwen2.5-0.5b");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->n_embd / q->n_head, q->head_dim);
  EXPECT_TRUE(q->tied_output);
  EXPECT_EQ(find_shape("gemma-2b")->head_dim, 256);  // not n_embd / n_head
  EXPECT_EQ(find_shape("nope"), nullptr);
}

TEST(Synth, ParseType) {
  EXPECT_EQ(octet::synth::parse_type("Q8_0").value(), octet::gguf::Type::Q8_0);
  EXPECT_EQ(octet::synth::parse_type("f16").value(), octet::gguf::Type::F16);
  EXPECT_EQ(octet::synth::parse_type("q4_0").value(), octet::gguf::Type::Q4_0);
  EXPECT_FALSE(octet::synth::parse_type("q4_k").ok());
  EXPECT_FALSE(octet::synth::parse_type("").ok());
}

TEST(Synth, OutlierChannelsAreDistinctSortedAndSeeded) {
  const auto& s = *find_shape("llama-2-7b");
  const auto a = octet::synth::outlier_channels(s, 1, 6);
  ASSERT_EQ(a.size(), 6u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::set<int64_t>(a.begin(), a.end()).size(), a.size());
  for (int64_t c : a) EXPECT_TRUE(c >= 0 && c < s.n_embd);
  EXPECT_EQ(a, octet::synth::outlier_channels(s, 1, 6));
  EXPECT_NE(a, octet::synth::outlier_channels(s, 2, 6));
  EXPECT_TRUE(octet::synth::outlier_channels(s, 1, 0).empty());
}

TEST(Synth, BadOptionsAreErrorsAndWriteNothing) {
  const std::string path = ::testing::TempDir() + "octet_synth_bad.gguf";
  octet::synth::Options o;
  o.progress = false;
  o.shape = "no-such-model";
  EXPECT_FALSE(octet::synth::write_model(o, path).ok());
  o.shape = "phi-2";
  o.n_layer = -1;
  EXPECT_FALSE(octet::synth::write_model(o, path).ok());
  o.n_layer = 1;
  o.type = octet::gguf::Type::Q4_K;
  EXPECT_FALSE(octet::synth::write_model(o, path).ok());
  o.type = octet::gguf::Type::Q8_0;
  o.n_outliers = 100000;
  EXPECT_FALSE(octet::synth::write_model(o, path).ok());
  std::FILE* f = std::fopen(path.c_str(), "rb");
  EXPECT_EQ(f, nullptr);
  if (f) std::fclose(f);
  o.n_outliers = 6;
  EXPECT_FALSE(octet::synth::write_model(o, "/nonexistent-dir/x.gguf").ok());
}

}  // namespace
