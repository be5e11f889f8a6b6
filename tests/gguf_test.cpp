#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "octet/gguf.h"
#include "octet/memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace octet::gguf {
namespace {

const std::string kData = OCTET_SHARED_DATA;

// Test data lives outside the repo (../shared/data); without it these tests skip.
bool have(const std::string& path) {
  if (FILE* fp = std::fopen(path.c_str(), "rb")) {
    std::fclose(fp);
    return true;
  }
  return false;
}

TEST(GgufReal, Stories260K) {
  if (!have(kData + "/stories260K/stories260K.gguf")) GTEST_SKIP() << "no test data in " << kData;
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
  if (!have(kData + "/tokenizers/ggml-vocab-llama-spm.gguf")) GTEST_SKIP() << "no test data";
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

// Token embeddings are read with pread: the same floats as through the mapping, the same
// bounds checks, and none of the tensor's pages become resident in this process.
TEST(GgufReal, ReadRowsMatchesTheMappingWithoutTouchingIt) {
  const std::string path = kData + "/stories260K/stories260K.gguf";
  if (!have(path)) GTEST_SKIP() << "no test data in " << kData;
  auto f = File::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  const TensorInfo* t = (*f)->tensor("token_embd.weight");
  ASSERT_NE(t, nullptr);
  const size_t before = proc_memory(path).file_resident;
  const int64_t n = t->row_len();
  std::vector<float> a(static_cast<size_t>(n) * 3), b(a.size());
  for (int64_t r = 0; r + 3 <= t->n_rows(); r += 97) {
    ASSERT_TRUE((*f)->read_rows(*t, r, 3, a.data()).ok()) << r;
  }
  // The mapping was not touched (fault-around would map whole 64 KiB runs of the table).
  EXPECT_LE(proc_memory(path).file_resident, before + 4096);
  for (int64_t r : {int64_t{0}, t->n_rows() / 2, t->n_rows() - 3}) {
    ASSERT_TRUE((*f)->read_rows(*t, r, 3, a.data()).ok());
    ASSERT_TRUE((*f)->dequantize_rows(*t, r, 3, b.data()).ok());
    EXPECT_EQ(a, b) << "rows from " << r;
  }
  EXPECT_FALSE((*f)->read_rows(*t, t->n_rows() - 2, 3, a.data()).ok());
  EXPECT_FALSE((*f)->read_rows(*t, -1, 1, a.data()).ok());
}

}  // namespace
}  // namespace octet::gguf

// ---------------------------------------------------------------------------------------------
// SIMD dequantisers against the scalar reference, on every ISA path this CPU can run.

// populate_file_pages maps a read-only file mapping in at once (the in-place LM head at load):
// resident before any read. (The kernel may map more around it: whole large folios.)
TEST(FilePages, PopulateMakesTheRangeResident) {
  const std::string path = ::testing::TempDir() + "octet_populate.bin";
  const size_t n = size_t{4} << 20;
  {
    std::FILE* fp = std::fopen(path.c_str(), "wb");
    ASSERT_NE(fp, nullptr);
    std::vector<unsigned char> buf(n, 7);
    ASSERT_EQ(std::fwrite(buf.data(), 1, n, fp), n);
    std::fclose(fp);
  }
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void* p = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  ASSERT_NE(p, MAP_FAILED);
  EXPECT_LE(octet::proc_memory(path).file_resident, size_t{64} << 10);
  // The second MiB and the first half of the third (page-aligned start, unaligned end).
  octet::populate_file_pages(static_cast<const unsigned char*>(p) + (size_t{1} << 20), (size_t{3} << 19) - 100);
  const size_t got = octet::proc_memory(path).file_resident;
  EXPECT_GE(got, (size_t{3} << 19) - 4096);
  ::munmap(p, n);
  std::remove(path.c_str());
}

#include <cmath>
#include <cstring>
#include <random>

#include "gguf/dequant_impl.h"
#include "octet/gguf_writer.h"
#include "octet/half.h"

namespace octet::gguf {
namespace {

// Equal bits, or both NaN (F16C quiets signalling NaNs; the scalar path keeps the payload).
bool same_float(float a, float b) {
  return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b) || (std::isnan(a) && std::isnan(b));
}

// Random blocks of a type; `finite_scales` rewrites each block's fp16 scale fields with finite
// values (what real files hold), otherwise they stay random bits (NaN/inf included).
std::vector<uint8_t> random_blocks(Type t, int64_t nb, std::mt19937& rng, bool finite_scales) {
  const TypeInfo* ti = type_info(static_cast<uint32_t>(t));
  std::vector<uint8_t> b(static_cast<size_t>(nb * ti->type_size));
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  if (!finite_scales) return b;
  std::vector<int> scale_at;
  switch (t) {
    case Type::Q4_0:
    case Type::Q5_0:
    case Type::Q8_0: scale_at = {0}; break;
    case Type::Q4_K: scale_at = {0, 2}; break;
    case Type::Q6_K: scale_at = {208}; break;
    case Type::F16: scale_at = {}; break;
    default: break;
  }
  std::normal_distribution<float> nd(0.0f, 0.05f);
  for (int64_t i = 0; i < nb; ++i) {
    for (int off : scale_at) {
      const uint16_t h = fp32_to_fp16(nd(rng));
      std::memcpy(&b[static_cast<size_t>(i * ti->type_size + off)], &h, 2);
    }
  }
  return b;
}

std::vector<DequantIsa> simd_isas() {
  std::vector<DequantIsa> v;
  for (DequantIsa isa : {DequantIsa::Avx2, DequantIsa::Avx512}) {
    if (dequant_isa_available(isa)) v.push_back(isa);
  }
  return v;
}

TEST(GgufDequantSimd, MatchesScalarOnEveryIsa) {
  const auto isas = simd_isas();
  if (isas.empty()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(42);
  for (Type t : {Type::F16, Type::BF16, Type::Q4_0, Type::Q5_0, Type::Q8_0, Type::Q4_K, Type::Q6_K}) {
    const TypeInfo* ti = type_info(static_cast<uint32_t>(t));
    // Element-wise types: odd lengths exercise the scalar tails.
    const std::vector<int64_t> counts = ti->block_size == 1 ? std::vector<int64_t>{1, 7, 8, 15, 16, 17, 33, 1000}
                                                             : std::vector<int64_t>{1, 2, 3, 17};
    for (bool finite : {true, false}) {
      for (int64_t units : counts) {
        const int64_t n = units * ti->block_size;
        auto src = random_blocks(t, units, rng, finite);
        std::vector<float> ref(static_cast<size_t>(n)), out(static_cast<size_t>(n));
        ASSERT_TRUE(dequantize_reference(t, src.data(), ref.data(), n).ok());
        for (DequantIsa isa : isas) {
          std::fill(out.begin(), out.end(), -1.0f);
          ASSERT_TRUE(dequantize_with(isa, t, src.data(), out.data(), n).ok());
          for (int64_t i = 0; i < n; ++i) {
            ASSERT_TRUE(same_float(ref[i], out[i]))
                << ti->name << " " << dequant_isa_name(isa) << " n=" << n << " i=" << i << ": " << ref[i]
                << " vs " << out[i];
          }
        }
        // And the dispatcher (best ISA) agrees too.
        ASSERT_TRUE(dequantize(t, src.data(), out.data(), n).ok());
        for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(same_float(ref[i], out[i])) << ti->name << " dispatch i=" << i;
      }
    }
  }
}

TEST(GgufDequant, Errors) {
  std::vector<uint8_t> src(1024);
  std::vector<float> dst(1024);
  EXPECT_FALSE(dequantize(Type::Q4_K, src.data(), dst.data(), 100).ok());        // not whole blocks
  EXPECT_FALSE(dequantize(Type::Q4_0, src.data(), dst.data(), -32).ok());        // negative
  EXPECT_FALSE(dequantize(Type::IQ2_XXS, src.data(), dst.data(), 256).ok());     // no dequantiser
  EXPECT_FALSE(dequantize(static_cast<Type>(5), src.data(), dst.data(), 1).ok());  // retired id
  EXPECT_FALSE(dequantize(Type::F32, nullptr, dst.data(), 4).ok());
  EXPECT_TRUE(dequantize(Type::F32, nullptr, nullptr, 0).ok());
}

// ---------------------------------------------------------------------------------------------
// Hostile files: each must be rejected with a Status whose message says what is wrong.

// Little-endian GGUF bytes built by hand.
struct Raw {
  std::vector<uint8_t> b;
  template <class T>
  Raw& put(T v) {
    uint8_t x[sizeof(T)];
    std::memcpy(x, &v, sizeof(T));
    b.insert(b.end(), x, x + sizeof(T));
    return *this;
  }
  Raw& u32(uint32_t v) { return put(v); }
  Raw& u64(uint64_t v) { return put(v); }
  Raw& str(std::string_view s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Raw& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    b.insert(b.end(), {'G', 'G', 'U', 'F'});
    return u32(version).u64(n_tensors).u64(n_kv);
  }
  // Tensor info: name, dims, type, offset.
  Raw& tensor(std::string_view name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type).u64(offset);
  }
  Raw& pad_to(size_t align) {
    while (b.size() % align) b.push_back(0);
    return *this;
  }
  Raw& zeros(size_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
};

// Parses bytes; returns the error message ("" when the file was accepted).
std::string parse_error(const std::vector<uint8_t>& bytes) {
  auto f = File::from_memory(bytes.data(), bytes.size());
  return f.ok() ? "" : f.error();
}

#define EXPECT_REJECTED(bytes, needle)                              \
  do {                                                              \
    const std::string e_ = parse_error(bytes);                      \
    EXPECT_NE(e_, "") << "accepted a bad file (" << needle << ")";  \
    EXPECT_NE(e_.find(needle), std::string::npos) << e_;            \
  } while (0)

std::vector<uint8_t> valid_file() {
  Writer w;
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.block_count", 2);
  const std::vector<std::string> toks = {"a", "b", "c"};
  w.add_string_array("tokenizer.ggml.tokens", toks);
  std::vector<float> x(64 * 2);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.01f - 0.5f;
  w.add_tensor_f32("a", Type::Q8_0, {64, 2}, x.data());
  w.add_tensor_f32("b", Type::F16, {64}, x.data());
  auto bytes = w.to_bytes();
  EXPECT_TRUE(bytes.ok());
  return *bytes;
}

TEST(GgufHostile, ValidFileParses) {
  auto bytes = valid_file();
  auto f = File::from_memory(bytes.data(), bytes.size());
  ASSERT_TRUE(f.ok()) << f.error();
  ASSERT_EQ((*f)->tensors().size(), 2u);
  auto a = (*f)->to_float(*(*f)->tensor("a"));
  ASSERT_TRUE(a.ok());
  EXPECT_NEAR((*a)[10], 10 * 0.01f - 0.5f, 0.01f);
}

TEST(GgufHostile, EveryTruncationIsAnError) {
  const auto bytes = valid_file();
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(n));
    auto f = File::from_memory(cut.data(), cut.size());
    EXPECT_FALSE(f.ok()) << "prefix of " << n << " bytes accepted";
  }
}

TEST(GgufHostile, RandomCorruptionNeverCrashes) {
  // Not a fuzzer (see fuzz/gguf_fuzz.cpp), but every build runs it: single and multi-byte
  // corruptions of a valid file either parse (and then dequantise) or fail cleanly.
  const auto bytes = valid_file();
  std::mt19937 rng(7);
  for (int iter = 0; iter < 3000; ++iter) {
    auto m = bytes;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % m.size();
      m[at] = (rng() % 2) ? static_cast<uint8_t>(rng()) : static_cast<uint8_t>(0xff);
    }
    auto f = File::from_memory(m.data(), m.size());
    if (!f.ok()) continue;
    for (const auto& t : (*f)->tensors()) (void)(*f)->to_float(t);
  }
}

TEST(GgufHostile, BadMagicAndVersion) {
  EXPECT_REJECTED(std::vector<uint8_t>{}, "too small");
  EXPECT_REJECTED(std::vector<uint8_t>({'G', 'G'}), "too small");
  auto b = Raw().header(0, 0).b;
  b[0] = 'X';
  EXPECT_REJECTED(b, "bad magic");
  EXPECT_REJECTED(Raw().header(0, 0, 1).b, "version 1");
  EXPECT_REJECTED(Raw().header(0, 0, 4).b, "unsupported version 4");
  EXPECT_REJECTED(Raw().header(0, 0, 0x03000000).b, "big-endian");
  std::vector<uint8_t> short_hdr = {'G', 'G', 'U', 'F', 3, 0, 0, 0, 0};
  EXPECT_REJECTED(short_hdr, "truncated");
  EXPECT_EQ(parse_error(Raw().header(0, 0).b), "");  // the smallest valid file
  EXPECT_EQ(parse_error(Raw().header(0, 0, 2).b), "");
}

TEST(GgufHostile, AbsurdCounts) {
  EXPECT_REJECTED(Raw().header(0, ~0ull).b, "KV count");
  EXPECT_REJECTED(Raw().header(~0ull, 0).b, "tensor count");
  EXPECT_REJECTED(Raw().header(1ull << 40, 1ull << 40).zeros(64).b, "count");
  // Counts that each fit, but not together.
  EXPECT_REJECTED(Raw().header(3, 4).zeros(24 * 3 + 13 * 4 - 1).b, "cannot fit");
}

TEST(GgufHostile, StringLengths) {
  EXPECT_REJECTED(Raw().header(0, 1).u64(1000).zeros(16).b, "exceeds");                   // key beyond the file
  EXPECT_REJECTED(Raw().header(0, 1).u64(~0ull).zeros(8).b, "exceeds");         // 2^64-1 key length
  EXPECT_REJECTED(Raw().header(0, 1).str("k").u32(8).u64(~0ull >> 1).b, "exceeds");  // string value
  EXPECT_REJECTED(Raw().header(1, 0).u64(1ull << 62).zeros(32).b, "exceeds");   // tensor name
  // Array of strings: the count is bounded by the bytes left, then each length is checked.
  EXPECT_REJECTED(Raw().header(0, 1).str("k").u32(9).u32(8).u64(~0ull).b, "array of");
  EXPECT_REJECTED(Raw().header(0, 1).str("k").u32(9).u32(8).u64(2).str("ok").u64(99).b, "exceeds");
  // Numeric array longer than the file.
  EXPECT_REJECTED(Raw().header(0, 1).str("k").u32(9).u32(10).u64(1ull << 61).zeros(16).b, "array of");
}

TEST(GgufHostile, UnknownTypes) {
  EXPECT_REJECTED(Raw().header(0, 1).str("k").u32(13).u32(0).b, "unknown value type 13");
  EXPECT_REJECTED(Raw().header(0, 1).str("k").u32(9).u32(77).u64(0).b, "unknown array element type 77");
  EXPECT_REJECTED(Raw().header(1, 0).tensor("t", {32}, 5, 0).pad_to(32).zeros(64).b, "unknown type 5");
  EXPECT_REJECTED(Raw().header(1, 0).tensor("t", {32}, 1000, 0).pad_to(32).zeros(64).b, "unknown type 1000");
  // A known type octet cannot dequantise parses (info can list it) but converting it fails.
  auto b = Raw().header(1, 0).tensor("t", {256}, static_cast<uint32_t>(Type::IQ2_XXS), 0).pad_to(32).zeros(66).b;
  auto f = File::from_memory(b.data(), b.size());
  ASSERT_TRUE(f.ok()) << f.error();
  auto v = (*f)->to_float((*f)->tensors()[0]);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().find("no dequantizer for type IQ2_XXS"), std::string::npos) << v.error();
}

TEST(GgufHostile, DuplicateNames) {
  EXPECT_REJECTED(Raw().header(0, 2).str("k").u32(4).u32(1).str("k").u32(4).u32(2).b, "duplicate metadata key");
  EXPECT_REJECTED(Raw().header(2, 0).tensor("t", {4}, 0, 0).tensor("t", {4}, 0, 32).pad_to(32).zeros(64).b,
                  "duplicate tensor name");
}

TEST(GgufHostile, NestedArrays) {
  // [[u8 x 2], [u8 x 0]] is valid GGUF: accepted, kept as a count.
  auto ok = Raw().header(0, 1).str("k").u32(9).u32(9).u64(2).u32(0).u64(2).put<uint16_t>(0x0201).u32(0).u64(0).b;
  auto f = File::from_memory(ok.data(), ok.size());
  ASSERT_TRUE(f.ok()) << f.error();
  const Value* v = (*f)->find("k");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->elem_type, ValueType::ARRAY);
  EXPECT_EQ(v->count, 2u);
  EXPECT_FALSE((*f)->get_f32_array("k"));
  EXPECT_EQ(v->to_string(), "[arr x 2]");
  // Nesting deeper than the limit: an error, not unbounded recursion.
  Raw deep;
  deep.header(0, 1).str("k").u32(9);
  for (int i = 0; i < 100; ++i) deep.u32(9).u64(1);
  deep.u32(0).u64(0);
  EXPECT_REJECTED(deep.b, "nested deeper");
  // A nested array whose inner count runs past the file.
  EXPECT_REJECTED(Raw().header(0, 1).str("k").u32(9).u32(9).u64(1).u32(6).u64(1000).b, "array of");
}

TEST(GgufHostile, BadAlignmentKey) {
  EXPECT_REJECTED(Raw().header(0, 1).str("general.alignment").u32(4).u32(0).b, "not a power of two");
  EXPECT_REJECTED(Raw().header(0, 1).str("general.alignment").u32(4).u32(48).b, "not a power of two");
  EXPECT_REJECTED(Raw().header(0, 1).str("general.alignment").u32(5).put<int32_t>(-32).b, "not a power of two");
  EXPECT_REJECTED(Raw().header(0, 1).str("general.alignment").u32(8).str("32").b, "must be an integer");
  EXPECT_REJECTED(Raw().header(0, 1).str("general.alignment").u32(7).put<uint8_t>(1).b, "must be an integer");
}

TEST(GgufHostile, Dimensions) {
  auto one = [](std::vector<uint64_t> dims, uint32_t type = 0) {
    return Raw().header(1, 0).tensor("t", std::move(dims), type, 0).pad_to(32).zeros(256).b;
  };
  EXPECT_REJECTED(one({4, 4, 4, 4, 4}), "5 dimensions");
  EXPECT_REJECTED(Raw().header(1, 0).str("t").u32(~0u).zeros(32).b, "dimensions");
  EXPECT_REJECTED(one({0}), "zero dimension");
  EXPECT_REJECTED(one({~0ull}), "negative dimension");
  EXPECT_REJECTED(one({1ull << 32, 1ull << 32}), "overflows int64");
  EXPECT_REJECTED(one({1ull << 40, 1ull << 22}), "byte size overflows");  // 2^62 F32 = 2^64 bytes
  EXPECT_REJECTED(one({1ull << 30, 4}), "beyond end of file");
  EXPECT_REJECTED(one({33}, static_cast<uint32_t>(Type::Q4_0)), "not a multiple of the Q4_0 block size");
  EXPECT_REJECTED(one({16, 16}, static_cast<uint32_t>(Type::Q4_K)), "not a multiple of the Q4_K block size");
  EXPECT_EQ(parse_error(one({4, 4})), "");
}

TEST(GgufHostile, DataOffsets) {
  auto with_offset = [](uint64_t off, size_t data_bytes = 64) {
    return Raw().header(1, 0).tensor("t", {4}, 0, off).pad_to(32).zeros(data_bytes).b;
  };
  EXPECT_EQ(parse_error(with_offset(32)), "");
  EXPECT_REJECTED(with_offset(8), "not a multiple of the alignment");
  EXPECT_REJECTED(with_offset(64), "beyond end of file");
  EXPECT_REJECTED(with_offset(~0ull - 31), "overflows");
  EXPECT_REJECTED(with_offset(0, 15), "beyond end of file");  // data cut short
  // Tensor table not followed by padding + data at all.
  EXPECT_REJECTED(Raw().header(1, 0).tensor("t", {4}, 0, 0).b, "beyond end of file");
  // Overlapping byte ranges.
  EXPECT_REJECTED(Raw().header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {16}, 0, 32).pad_to(32).zeros(128).b,
                  "overlap");
}

TEST(GgufHostile, RowAccessBounds) {
  const auto bytes = valid_file();
  auto f = File::from_memory(bytes.data(), bytes.size());
  ASSERT_TRUE(f.ok());
  const TensorInfo& a = *(*f)->tensor("a");
  std::vector<float> row(64);
  EXPECT_TRUE((*f)->dequantize_rows(a, 1, 1, row.data()).ok());
  EXPECT_FALSE((*f)->dequantize_rows(a, 2, 1, row.data()).ok());
  EXPECT_FALSE((*f)->dequantize_rows(a, -1, 1, row.data()).ok());
  EXPECT_FALSE((*f)->dequantize_rows(a, 1, -1, row.data()).ok());
  // A TensorInfo that claims more bytes than it has, or belongs to another buffer.
  TensorInfo forged = a;
  forged.dims = {64, 1000000};
  forged.nbytes = 34ull * 2 * 1000000;
  EXPECT_FALSE((*f)->dequantize_rows(forged, 0, 1, row.data()).ok());
  std::vector<uint8_t> other(bytes.size());
  forged = a;
  forged.data = other.data();
  EXPECT_FALSE((*f)->dequantize_rows(forged, 0, 1, row.data()).ok());
}

TEST(GgufHostile, OpenMissingOrNotAFile) {
  auto f = File::open("/nonexistent/x.gguf");
  ASSERT_FALSE(f.ok());
  auto d = File::open("/tmp");
  ASSERT_FALSE(d.ok());
}

}  // namespace
}  // namespace octet::gguf
