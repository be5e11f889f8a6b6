// Writes a seed corpus of small valid GGUF files (every metadata value type, every tensor type
// the reader knows, v2 and v3, custom alignment, nested arrays) into the directory argv[1].
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "octet/gguf_writer.h"

using namespace octet::gguf;

namespace {

// Random bytes for a tensor of any type, with the fp16 scales kept finite for realism
// (the fuzzer will mutate them anyway).
std::vector<uint8_t> random_bytes(std::mt19937& rng, uint64_t n) {
  std::vector<uint8_t> b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng() & 0x3f);
  return b;
}

bool save(const std::string& dir, const std::string& name, const Writer& w) {
  auto st = w.write(dir + "/" + name + ".gguf");
  if (!st.ok()) std::fprintf(stderr, "%s: %s\n", name.c_str(), st.message().c_str());
  return st.ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gguf_seeds DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::mt19937 rng(1234);
  bool ok = true;

  {  // metadata of every type, no tensors
    Writer w;
    w.add_u8("a.u8", 7);
    w.add_i8("a.i8", -7);
    w.add_u16("a.u16", 700);
    w.add_i16("a.i16", -700);
    w.add_u32("a.u32", 70000);
    w.add_i32("a.i32", -70000);
    w.add_u64("a.u64", 1ull << 40);
    w.add_i64("a.i64", -(1ll << 40));
    w.add_f32("a.f32", 1.5f);
    w.add_f64("a.f64", -2.25);
    w.add_bool("a.bool", true);
    w.add_string("general.architecture", "llama");
    const std::vector<int32_t> ints = {1, -2, 3};
    w.add_array("a.ints", std::span<const int32_t>(ints));
    const std::vector<float> fl = {0.5f, -1.0f};
    w.add_array("a.floats", std::span<const float>(fl));
    const std::vector<std::string> strs = {"<s>", "</s>", "hello"};
    w.add_string_array("tokenizer.ggml.tokens", strs);
    // nested array: [[u8 x 2], [u8 x 0]]
    std::vector<uint8_t> nested = {9, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,   // elem ARRAY, count 2
                                   0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 2,  // [u8 x 2]
                                   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};       // [u8 x 0]
    w.add_raw("a.nested", ValueType::ARRAY, nested);
    ok &= save(dir, "meta", w);
  }
  // One file per tensor type, with two small tensors each.
  for (uint32_t id = 0; id < 64; ++id) {
    const TypeInfo* ti = type_info(id);
    if (!ti) continue;
    Writer w(id % 2 ? 2 : 3);
    w.add_string("general.architecture", "test");
    if (id % 3 == 0) w.set_alignment(64);
    const int64_t k = ti->block_size * 2;
    w.add_tensor("t0", static_cast<Type>(id), {k, 2}, random_bytes(rng, row_bytes(static_cast<Type>(id), k) * 2));
    w.add_tensor("t1", static_cast<Type>(id), {ti->block_size}, random_bytes(rng, row_bytes(static_cast<Type>(id), ti->block_size)));
    ok &= save(dir, std::string("type_") + ti->name, w);
  }
  {  // a float model-like file
    Writer w;
    w.add_string("general.architecture", "llama");
    w.add_u32("llama.block_count", 1);
    std::vector<float> x(64 * 4);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 17) * 0.25f - 2.0f;
    w.add_tensor_f32("token_embd.weight", Type::Q8_0, {64, 4}, x.data());
    w.add_tensor_f32("output_norm.weight", Type::F32, {64}, x.data());
    w.add_tensor_f32("blk.0.attn_q.weight", Type::Q4_0, {64, 4}, x.data());
    w.add_tensor_f32("blk.0.ffn_up.weight", Type::F16, {64, 2, 2}, x.data());
    w.add_tensor_f32("blk.0.ffn_down.weight", Type::BF16, {64, 2, 1, 2}, x.data());
    ok &= save(dir, "model", w);
  }
  return ok ? 0 : 1;
}
