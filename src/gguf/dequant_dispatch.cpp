// Run-time choice between the scalar dequantisers and their SIMD versions.
#include "gguf/dequant_impl.h"
#include "octet/cpu.h"

namespace octet::gguf {

const char* dequant_isa_name(DequantIsa isa) {
  switch (isa) {
    case DequantIsa::Ref: return "ref";
    case DequantIsa::Avx2: return "avx2";
    case DequantIsa::Avx512: return "avx512";
  }
  return "?";
}

bool dequant_isa_available(DequantIsa isa) {
  const CpuFeatures& c = cpu_features();
  switch (isa) {
    case DequantIsa::Ref: return true;
    case DequantIsa::Avx2: return c.avx2 && c.fma && c.f16c;
    case DequantIsa::Avx512: return c.avx2 && c.fma && c.f16c && c.has_avx512();
  }
  return false;
}

DequantIsa dequant_best_isa() {
  static const DequantIsa best = dequant_isa_available(DequantIsa::Avx512) ? DequantIsa::Avx512
                                 : dequant_isa_available(DequantIsa::Avx2) ? DequantIsa::Avx2
                                                                           : DequantIsa::Ref;
  return best;
}

Status dequantize(Type t, const void* src, float* dst, int64_t n) {
  return dequantize_with(dequant_best_isa(), t, src, dst, n);
}

}  // namespace octet::gguf
