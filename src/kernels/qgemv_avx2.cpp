// Decode GEMV, AVX2: int8 dots through vpmaddubsw (u8·s8 pairs to int16, no saturation for
// these code ranges: |q| <= 128, |a| <= 127, or q <= 63 for k-quants) then vpmaddwd.
#include <immintrin.h>

#include <cstring>

#include "kernels/qgemv_impl.h"

namespace octet::qgemv::avx2_impl {
inline __m256i dot_s8(__m256i aw, __m256i sa) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sa), _mm256_set1_epi16(1));
}
inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
inline __m256i dot_u8_scaled(__m256i acc, __m256i q, __m256i a, __m256i sc16) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), sc16));
}
#include "kernels/qgemv_simd.inc"
}  // namespace octet::qgemv::avx2_impl

namespace octet::qgemv {
bool gemv_rows_avx2(gguf::Type t, const uint8_t* w, size_t row_stride, int64_t k, int64_t n0,
                    int64_t n1, const Acts& a, float* y, int64_t ldy) {
  return avx2_impl::rows_any(t, w, row_stride, k, n0, n1, a, y, ldy);
}
}  // namespace octet::qgemv
