// Internal: dequantisers per instruction set. The scalar ones (dequant.cpp) are the reference;
// the SIMD ones (dequant_avx2.cpp, dequant_avx512.cpp) cover the hot weight types and must
// match them bit for bit (up to NaN payloads, which F16C quiets). Types a SIMD table leaves
// null fall back to the scalar code.
#pragma once
#include <cstdint>

#include "octet/gguf.h"

namespace octet::gguf {

// `n` counts elements for F16/BF16, blocks for the block formats.
using DequantFn = void (*)(const uint8_t* src, float* dst, int64_t n);

struct DequantKernels {
  DequantFn f16 = nullptr;
  DequantFn bf16 = nullptr;
  DequantFn q4_0 = nullptr;
  DequantFn q8_0 = nullptr;
  DequantFn q4_k = nullptr;
  DequantFn q6_k = nullptr;
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
