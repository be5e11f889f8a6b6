// libFuzzer target: parse arbitrary bytes as GGUF, then touch everything a caller could touch
// (metadata accessors and rendering, every tensor dequantised), and run every dequantiser,
// scalar and SIMD, over the raw input bytes. Any crash, sanitizer report, or SIMD/scalar
// mismatch is a bug.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "gguf/dequant_impl.h"
#include "octet/gguf.h"

using namespace octet::gguf;

namespace {

void touch_metadata(const File& f) {
  for (const KV& kv : f.kvs()) {
    (void)kv.value.to_string(8);
    (void)f.get_string(kv.key);
    (void)f.get_int(kv.key);
    (void)f.get_float(kv.key);
    (void)f.get_bool(kv.key);
    (void)f.get_strings(kv.key);
    (void)f.get_f32_array(kv.key);
    (void)f.get_i32_array(kv.key);
  }
}

void touch_tensors(const File& f) {
  for (const TensorInfo& t : f.tensors()) {
    auto v = f.to_float(t);
    (void)v;
    if (t.n_rows() > 0) {
      std::vector<float> row(static_cast<size_t>(t.row_len()));
      (void)f.dequantize_rows(t, t.n_rows() - 1, 1, row.data());
      (void)f.dequantize_rows(t, t.n_rows(), 1, row.data());  // out of range: must be an error
    }
  }
}

// Equal bits, or both NaN (F16C quiets signalling NaNs, the scalar path keeps the payload).
bool same(float a, float b) {
  uint32_t x, y;
  std::memcpy(&x, &a, 4);
  std::memcpy(&y, &b, 4);
  return x == y || (a != a && b != b);
}

// Every dequantiser over the input taken as blocks; each SIMD path this CPU has must equal the
// scalar one.
void check_kernels(const uint8_t* data, size_t size) {
  for (uint32_t id = 0; id < 64; ++id) {
    const TypeInfo* ti = type_info(id);
    if (!ti || !ti->can_dequantize) continue;
    const int64_t nb = static_cast<int64_t>(size) / ti->type_size;
    if (nb == 0) continue;
    const int64_t n = nb * ti->block_size;
    std::vector<float> ref(static_cast<size_t>(n)), out(static_cast<size_t>(n));
    if (!dequantize_reference(static_cast<Type>(id), data, ref.data(), n).ok()) std::abort();
    for (DequantIsa isa : {DequantIsa::Avx2, DequantIsa::Avx512}) {
      if (!dequant_isa_available(isa)) continue;
      if (!dequantize_with(isa, static_cast<Type>(id), data, out.data(), n).ok()) std::abort();
      for (int64_t i = 0; i < n; ++i) {
        if (!same(ref[i], out[i])) {
          std::fprintf(stderr, "%s %s mismatch at %lld: %a vs %a\n", ti->name, dequant_isa_name(isa),
                       static_cast<long long>(i), static_cast<double>(ref[i]), static_cast<double>(out[i]));
          std::abort();
        }
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = File::from_memory(data, size);
  if (f.ok()) {
    touch_metadata(**f);
    touch_tensors(**f);
  }
  if (size <= 8192) check_kernels(data, size);
  return 0;
}
