// Internal: per-format dequantisers with run-time ISA dispatch. `n` counts elements,
// `nb` counts blocks. The *_ref versions are the scalar references the SIMD ones must match.
#pragma once
#include <cstdint>

namespace octet::gguf {

void dequantize_f16_ref(const uint8_t* src, float* dst, int64_t n);
void dequantize_q4_k_ref(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q6_k_ref(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q8_0_ref(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q5_0_ref(const uint8_t* src, float* dst, int64_t nb);

// Dispatchers: the best implementation cpu_features() allows.
void dequantize_f16(const uint8_t* src, float* dst, int64_t n);
void dequantize_q4_k(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q6_k(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q8_0(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q5_0(const uint8_t* src, float* dst, int64_t nb);

}  // namespace octet::gguf
