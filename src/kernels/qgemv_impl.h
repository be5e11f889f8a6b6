// Internal: per-ISA entry points of the decode GEMV (qgemv.h). The SIMD ones return false for
// a type they do not cover (the float path), which then runs the scalar code.
#pragma once
#include <cstdint>
#include <cstring>

#include "gguf/dequant_impl.h"
#include "octet/qgemv.h"

namespace octet::qgemv {

using RowsFn = bool (*)(gguf::Type t, const uint8_t* w, size_t row_stride, int64_t k, int64_t n0,
                        int64_t n1, const Acts& a, float* y, int64_t ldy);
bool gemv_rows_avx2(gguf::Type t, const uint8_t* w, size_t row_stride, int64_t k, int64_t n0,
                    int64_t n1, const Acts& a, float* y, int64_t ldy);
bool gemv_rows_vnni(gguf::Type t, const uint8_t* w, size_t row_stride, int64_t k, int64_t n0,
                    int64_t n1, const Acts& a, float* y, int64_t ldy);
// quantize_acts' body in AVX2: q [m][k], d [m][k / block], s16 [m][k / 16].
void quantize_acts_avx2(const float* x, int64_t m, int64_t k, int block, int8_t* q, float* d,
                        int16_t* s16);

// 6-bit scale and min j (0..7) of a Q4_K/Q5_K super-block: the dequantiser's decoding.
inline void kquant_scale_min(int j, const uint8_t* q, int& d, int& m) {
  uint8_t d8, m8;
  gguf::scale_min_k4(j, q, d8, m8);
  d = d8;
  m = m8;
}

}  // namespace octet::qgemv
