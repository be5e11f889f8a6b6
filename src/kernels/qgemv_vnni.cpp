// Decode GEMV, AVX-512 VNNI on 256-bit vectors (AVX512VL): vpdpbusd for the 32-element
// formats, vpmaddubsw + vpdpwssd (scale multiply fused with the accumulate) for k-quants.
#include <immintrin.h>

#include <cstring>

#include "kernels/qgemv_impl.h"

namespace octet::qgemv::vnni_impl {
inline __m256i dot_s8(__m256i aw, __m256i sa) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), aw, sa);
}
inline __m256i dot_u8_scaled(__m256i acc, __m256i q, __m256i a, __m256i sc16) {
  return _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(q, a), sc16);
}
// One row per pass (see offset32_pass): on Zen 4, 1.8B shape Q4_0 decode alternating,
// 1 thread 12.6-12.7 -> 15.2-15.6 tok/s, 2 threads 23.1-23.4 -> 25.7-28.7 against two rows.
constexpr int kOffsetRowsPerPass = 1;
#include "kernels/qgemv_simd.inc"
}  // namespace octet::qgemv::vnni_impl

namespace octet::qgemv {
bool gemv_rows_vnni(gguf::Type t, const uint8_t* w, size_t row_stride, int64_t k, int64_t n0,
                    int64_t n1, const Acts& a, float* y, int64_t ldy) {
  return vnni_impl::rows_any(t, w, row_stride, k, n0, n1, a, y, ldy);
}
}  // namespace octet::qgemv
