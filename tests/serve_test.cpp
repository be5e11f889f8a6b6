// Unit tests of the serve library pieces that need no model: the apps file parser and the
// per-app prefix cache (isolation, longest-prefix lookup, LRU eviction under a budget).
#include <gtest/gtest.h>

#include "octet/serve.h"

using namespace octet;
using namespace octet::serve;

namespace {

// A snapshot of the given tokens with `floats_per_token` KV values each (bytes scale with it).
std::shared_ptr<const KvSnapshot> snap(std::vector<Token> toks, size_t floats_per_token = 64) {
  auto s = std::make_shared<KvSnapshot>();
  s->k.assign(toks.size() * floats_per_token / 2, 1.f);
  s->v.assign(toks.size() * floats_per_token / 2, 2.f);
  s->tokens = std::move(toks);
  return s;
}

std::vector<Token> seq(Token from, Token n) {
  std::vector<Token> v;
  for (Token i = 0; i < n; ++i) v.push_back(from + i);
  return v;
}

}  // namespace

TEST(PrefixCache, LongestPrefixOfOwnAppOnly) {
  PrefixCache c(1 << 20);
  auto a = seq(0, 40);
  c.insert("A", snap(a));
  int64_t reuse = -1;
  // Same prompt from app B: a miss, whatever A holds.
  EXPECT_EQ(c.lookup("B", a, 39, 16, &reuse), nullptr);
  EXPECT_EQ(reuse, 0);
  EXPECT_EQ(c.stats("B").misses, 1u);
  EXPECT_EQ(c.stats("B").hits, 0u);
  // App A with a prompt sharing 30 tokens.
  auto p = seq(0, 30);
  p.push_back(999);
  auto got = c.lookup("A", p, static_cast<int64_t>(p.size()) - 1, 16, &reuse);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(reuse, 30);
  // max_reuse caps the reuse even when the entry holds the whole prompt.
  got = c.lookup("A", a, 39, 16, &reuse);
  EXPECT_EQ(reuse, 39);
  // Under min_reuse: a miss.
  auto q = seq(0, 10);
  q.push_back(777);
  EXPECT_EQ(c.lookup("A", q, 10, 16, &reuse), nullptr);
  EXPECT_EQ(c.stats("A").hits, 2u);
  EXPECT_EQ(c.stats("A").misses, 1u);
  EXPECT_EQ(c.stats("A").hit_tokens, 69u);
}

TEST(PrefixCache, ExtendingEntryReplacesItsPrefix) {
  PrefixCache c(1 << 20);
  c.insert("A", snap(seq(0, 20)));
  c.insert("A", snap(seq(0, 30)));
  EXPECT_EQ(c.stats("A").entries, 1u);
  c.insert("A", snap(seq(100, 30)));
  EXPECT_EQ(c.stats("A").entries, 2u);
}

TEST(PrefixCache, EvictionStaysInsideTheApp) {
  const size_t per = snap(seq(0, 20))->bytes();
  PrefixCache c(per * 2 + per / 2);  // room for two entries per app
  c.insert("B", snap(seq(500, 20)));
  c.insert("A", snap(seq(0, 20)));
  c.insert("A", snap(seq(100, 20)));
  int64_t reuse = 0;
  ASSERT_NE(c.lookup("A", seq(0, 21), 20, 16, &reuse), nullptr);  // seq(0) now most recent
  c.insert("A", snap(seq(200, 20)));                               // evicts seq(100)
  EXPECT_EQ(c.stats("A").evictions, 1u);
  EXPECT_EQ(c.stats("A").entries, 2u);
  EXPECT_NE(c.lookup("A", seq(0, 21), 20, 16, &reuse), nullptr);
  EXPECT_EQ(c.lookup("A", seq(100, 21), 20, 16, &reuse), nullptr);
  // B's entry survived all of A's inserts.
  EXPECT_EQ(c.stats("B").evictions, 0u);
  EXPECT_NE(c.lookup("B", seq(500, 21), 20, 16, &reuse), nullptr);
  // A snapshot over the whole budget is not kept.
  c.insert("A", snap(seq(0, 200)));
  EXPECT_EQ(c.stats("A").entries, 2u);
  EXPECT_LE(c.stats("A").bytes, c.budget());
}

TEST(Apps, ParsesAndRejects) {
  auto ok = parse_apps(R"({"apps": [
      {"name": "a", "key": "k1"},
      {"name": "b", "key": "k2", "priority": "background", "max_context": 512,
       "max_tokens": 64, "requests_per_minute": 10}]})");
  ASSERT_TRUE(ok.ok()) << ok.error();
  ASSERT_EQ(ok->size(), 2u);
  EXPECT_EQ((*ok)[0].priority, Priority::kForeground);
  EXPECT_EQ((*ok)[1].priority, Priority::kBackground);
  EXPECT_EQ((*ok)[1].max_context, 512);
  EXPECT_EQ((*ok)[1].max_tokens, 64);
  EXPECT_EQ((*ok)[1].requests_per_minute, 10);
  for (const char* bad : {
           "", "[]", "{\"apps\": []}", "{\"apps\": [1]}",
           R"({"apps": [{"name": "a"}]})",                                   // no key
           R"({"apps": [{"key": "k"}]})",                                    // no name
           R"({"apps": [{"name": "a", "key": "k", "priority": "urgent"}]})",
           R"({"apps": [{"name": "a", "key": "k", "max_tokens": -1}]})",
           R"({"apps": [{"name": "a", "key": "k", "max_tokens": "9"}]})",
           R"({"apps": [{"name": "a", "key": "k", "rpm": 9}]})",             // unknown field
           R"({"apps": [{"name": "a", "key": "k"}, {"name": "a", "key": "k2"}]})",
           R"({"apps": [{"name": "a", "key": "k"}, {"name": "b", "key": "k"}]})"}) {
    auto r = parse_apps(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.error().find("apps file"), std::string::npos);
    }
  }
}

// Session::save_kv / load_kv: restoring a prefix and evaluating the rest gives the same
// logits as evaluating everything in one session (stories260K, FP32).
TEST(KvSnapshot, RestoredPrefixContinuesExactly) {
  const std::string path = std::string(OCTET_SHARED_DATA) + "/stories260K/stories260K.gguf";
  auto m = Model::load(path);
  if (!m.ok()) GTEST_SKIP() << "no stories260K: " << m.error();
  ThreadPool pool(1);
  auto w = Weights::build_fp32(**m, &pool);
  ASSERT_TRUE(w.ok()) << w.error();
  SessionOptions so;
  so.n_ctx = 128;
  so.chunk = 8;
  std::vector<Token> toks;
  for (Token i = 0; i < 30; ++i) toks.push_back(1 + (i * 37) % 400);
  Session full(*m, *w, so, &pool);
  std::vector<float> want, got;
  ASSERT_TRUE(full.eval(toks, false, &want).ok());

  Session a(*m, *w, so, &pool);
  ASSERT_TRUE(a.eval(std::span<const Token>(toks.data(), 24), false, nullptr).ok());
  const KvSnapshot s = a.save_kv(24);
  EXPECT_EQ(s.tokens.size(), 24u);
  Session b(*m, *w, so, &pool);
  ASSERT_TRUE(b.eval(std::span<const Token>(toks.data(), 5), false, nullptr).ok());  // junk
  ASSERT_TRUE(b.load_kv(s, 16).ok());  // only the first 16 positions
  EXPECT_EQ(b.n_past(), 16);
  EXPECT_EQ(b.history(), std::vector<Token>(toks.begin(), toks.begin() + 16));
  ASSERT_TRUE(b.eval(std::span<const Token>(toks.data() + 16, 14), false, &got).ok());
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_FLOAT_EQ(got[i], want[i]) << i;
  // Bad restores are errors, not crashes.
  EXPECT_FALSE(b.load_kv(s, 25).ok());
  KvSnapshot broken = s;  // default KV type F16: raw rows in kq
  ASSERT_FALSE(broken.kq.empty());
  broken.kq.pop_back();
  EXPECT_FALSE(b.load_kv(broken, 4).ok());
  KvSnapshot foreign = s;  // another KV type
  foreign.type = kernels::KvType::kInt8;
  EXPECT_FALSE(b.load_kv(foreign, 4).ok());
}
