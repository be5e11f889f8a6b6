// Internal: dequantisers per instruction set. The scalar ones (dequant.cpp) are the reference;
// the SIMD ones (dequant_avx2.cpp, dequant_avx512.cpp) cover the hot weight types and must
// match them bit for bit (up to NaN payloads, which F16C quiets). Types a SIMD table leaves
// null fall back to the scalar code.
#pragma once
#include <cstdint>
#include <cstring>

#include "octet/gguf.h"
#include "octet/half.h"

namespace octet::gguf {

// Shared block-format helpers of the scalar and SIMD dequantisers.
inline float h2f(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

// 6-bit scale and min j (0..7) from the 12-byte packed K-quant scales.
inline void scale_min_k4(int j, const uint8_t* q, uint8_t& d, uint8_t& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = static_cast<uint8_t>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// `n` counts elements for F16/BF16, blocks for the block formats.
using DequantFn = void (*)(const uint8_t* src, float* dst, int64_t n);

struct DequantKernels {
  DequantFn f16 = nullptr;
  DequantFn bf16 = nullptr;
  DequantFn q4_0 = nullptr;
  DequantFn q8_0 = nullptr;
  DequantFn q4_k = nullptr;
  DequantFn q6_k = nullptr;
  DequantFn q5_0 = nullptr;
};

enum class DequantIsa { Ref, Avx2, Avx512 };
const char* dequant_isa_name(DequantIsa isa);

// The SIMD tables (defined in their ISA files; call only when cpu_features() allows).
const DequantKernels& dequant_kernels_avx2();
const DequantKernels& dequant_kernels_avx512();

// Whether this CPU can run an ISA's kernels (honours OCTET_ISA caps).
bool dequant_isa_available(DequantIsa isa);
// The best ISA this CPU allows: what dequantize() uses.
DequantIsa dequant_best_isa();

// dequantize() through one ISA's kernels; an error if the CPU cannot run them.
Status dequantize_with(DequantIsa isa, Type t, const void* src, float* dst, int64_t n);
// The scalar reference path.
inline Status dequantize_reference(Type t, const void* src, float* dst, int64_t n) {
  return dequantize_with(DequantIsa::Ref, t, src, dst, n);
}

}  // namespace octet::gguf
