// Decode GEMV, AVX2: int8 dots through vpmaddubsw (u8·s8 pairs to int16, no saturation for
// these code ranges: |q| <= 128, |a| <= 127, or q <= 63 for k-quants) then vpmaddwd.
#include <immintrin.h>

#include <cstring>

#include "kernels/qgemv_impl.h"

namespace octet::qgemv::avx2_impl {
inline __m256i dot_s8(__m256i aw, __m256i sa) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sa), _mm256_set1_epi16(1));
}
inline __m256i dot_u8_scaled(__m256i acc, __m256i q, __m256i a, __m256i sc16) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), sc16));
}
// Two rows per pass (see offset32_pass): measured on Zen 3.
constexpr int kOffsetRowsPerPass = 2;
#include "kernels/qgemv_simd.inc"
}  // namespace octet::qgemv::avx2_impl

namespace octet::qgemv {
bool gemv_rows_avx2(gguf::Type t, const uint8_t* w, size_t row_stride, int64_t k, int64_t n0,
                    int64_t n1, const Acts& a, float* y, int64_t ldy) {
  return avx2_impl::rows_any(t, w, row_stride, k, n0, n1, a, y, ldy);
}

void quantize_acts_avx2(const float* x, int64_t m, int64_t k, int block, int8_t* q, float* d,
                        int16_t* s16) {
  const __m256 sign = _mm256_set1_ps(-0.f);
  const __m256 hi = _mm256_set1_ps(127.f), lo = _mm256_set1_ps(-127.f);
  const __m256i ones8 = _mm256_set1_epi8(1);
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // undo the packs' lanes
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * k;
    int8_t* qi = q + i * k;
    for (int64_t b = 0; b < k / block; ++b) {
      const float* xb = xi + b * block;
      // max(|x|, acc) in this order keeps acc where |x| is NaN, as std::max(acc, |x|) does.
      __m256 mx = _mm256_setzero_ps();
      for (int j = 0; j < block; j += 8) mx = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(xb + j)), mx);
      __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
      h = _mm_max_ps(h, _mm_movehl_ps(h, h));
      h = _mm_max_ss(h, _mm_movehdup_ps(h));
      const float amax = _mm_cvtss_f32(h);
      const float dd = amax / 127.f, id = dd > 0.f ? 1.f / dd : 0.f;
      d[i * (k / block) + b] = dd;
      const __m256 vid = _mm256_set1_ps(id);
      for (int j = 0; j < block; j += 32) {
        __m256i v[4];
        for (int u = 0; u < 4; ++u) {
          const __m256 r = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(xb + j + 8 * u), vid),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
          v[u] = _mm256_cvtps_epi32(_mm256_max_ps(_mm256_min_ps(r, hi), lo));
        }
        const __m256i w = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
        const __m256i qv = _mm256_permutevar8x32_epi32(w, order);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(qi + b * block + j), qv);
        // Sums of 16: byte quads (exact in int16, then int32), then two horizontal adds.
        __m256i s4 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, qv), ones16);
        s4 = _mm256_hadd_epi32(s4, s4);
        s4 = _mm256_hadd_epi32(s4, s4);
        int16_t* so = s16 + i * (k / 16) + (b * block + j) / 16;
        so[0] = static_cast<int16_t>(_mm256_extract_epi32(s4, 0));
        so[1] = static_cast<int16_t>(_mm256_extract_epi32(s4, 4));
      }
    }
  }
}

}  // namespace octet::qgemv
