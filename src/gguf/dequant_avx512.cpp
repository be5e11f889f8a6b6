// AVX-512 dequantisers for the hot weight types: byte unpacking as in the AVX2 versions,
// widening and scaling 16 lanes at a time. Same float operations as the scalar reference
// (bit-identical results); d*q - m is fenced against FMA contraction.
// GCC 12's _mm512_undefined_* self-initialise and trip -Wmaybe-uninitialized (GCC PR105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <cstring>

#include "gguf/dequant_impl.h"
#include "octet/half.h"

namespace octet::gguf {

namespace {

// An empty asm the compiler cannot see through: keeps a product rounded on its own, so
// GCC (-ffp-contract=fast by default) cannot fuse it with the following subtraction. For
// Q4_K the product (11-bit half x 6-bit scale x 4-bit code) is exact, so fusing would not
// change results today; the fence keeps the kernel equal to the reference by construction.
inline __m512 no_contract(__m512 x) {
  __asm__("" : "+v"(x));
  return x;
}

inline __m512 i8x16_to_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)); }
inline __m512 u8x16_to_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v)); }

void f16_avx512(const uint8_t* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2 * i));
    _mm512_storeu_ps(y + i, _mm512_cvtph_ps(h));
  }
  for (; i < n; ++i) y[i] = h2f(b + 2 * i);
}

void bf16_avx512(const uint8_t* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2 * i));
    _mm512_storeu_si512(y + i, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, b + 2 * i, 2);
    y[i] = bf16_to_fp32(h);
  }
}

// y[0..32) = q * d for 32 int8 values (d may differ per 16).
inline void store_i8x32(__m256i q, __m512 d0, __m512 d1, float* y) {
  _mm512_storeu_ps(y, _mm512_mul_ps(i8x16_to_ps(_mm256_castsi256_si128(q)), d0));
  _mm512_storeu_ps(y + 16, _mm512_mul_ps(i8x16_to_ps(_mm256_extracti128_si256(q, 1)), d1));
}

void q8_0_avx512(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 34, y += 32) {
    const __m512 d = _mm512_set1_ps(h2f(b));
    store_i8x32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2)), d, d, y);
  }
}

void q4_0_avx512(const uint8_t* b, float* y, int64_t nb) {
  const __m128i m4 = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
  for (int64_t i = 0; i < nb; ++i, b += 18, y += 32) {
    const __m512 d = _mm512_set1_ps(h2f(b));
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
    _mm512_storeu_ps(y, _mm512_mul_ps(i8x16_to_ps(_mm_sub_epi8(_mm_and_si128(q, m4), eight)), d));
    _mm512_storeu_ps(y + 16,
                     _mm512_mul_ps(i8x16_to_ps(_mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), eight)), d));
  }
}

inline void store_u8x32_affine(__m256i q, float d, float m, float* y) {
  const __m512 vd = _mm512_set1_ps(d), vm = _mm512_set1_ps(m);
  _mm512_storeu_ps(y, _mm512_sub_ps(no_contract(_mm512_mul_ps(vd, u8x16_to_ps(_mm256_castsi256_si128(q)))), vm));
  _mm512_storeu_ps(y + 16, _mm512_sub_ps(no_contract(_mm512_mul_ps(vd, u8x16_to_ps(_mm256_extracti128_si256(q, 1)))), vm));
}

void q4_k_avx512(const uint8_t* b, float* y, int64_t nb) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  for (int64_t i = 0; i < nb; ++i, b += 144) {
    const float d = h2f(b), dmin = h2f(b + 2);
    const uint8_t* sc = b + 4;
    const uint8_t* q = b + 16;
    for (int is = 0; is < 8; is += 2, q += 32, y += 64) {
      uint8_t s, m;
      scale_min_k4(is, sc, s, m);
      const float d1 = d * static_cast<float>(s), m1 = dmin * static_cast<float>(m);
      scale_min_k4(is + 1, sc, s, m);
      const float d2 = d * static_cast<float>(s), m2 = dmin * static_cast<float>(m);
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
      store_u8x32_affine(_mm256_and_si256(v, m4), d1, m1, y);
      store_u8x32_affine(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), d2, m2, y + 32);
    }
  }
}

void q6_k_avx512(const uint8_t* b, float* y, int64_t nb) {
  const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x30), k32 = _mm256_set1_epi8(32);
  for (int64_t i = 0; i < nb; ++i, b += 210) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = h2f(b + 208);
    for (int n = 0; n < 2; ++n, ql += 64, qh += 32, sc += 8, y += 128) {
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
      const __m256i q[4] = {
          _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m2)), k32),
          _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m2)), k32),
          _mm256_sub_epi8(
              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, m2)), k32),
          _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                          _mm256_and_si256(_mm256_srli_epi16(h, 2), m2)),
                          k32),
      };
      for (int g = 0; g < 4; ++g) {
        const __m512 s0 = _mm512_set1_ps(d * static_cast<float>(sc[2 * g]));
        const __m512 s1 = _mm512_set1_ps(d * static_cast<float>(sc[2 * g + 1]));
        // (d * sc) * q, as the reference evaluates d * sc * q.
        _mm512_storeu_ps(y + 32 * g, _mm512_mul_ps(s0, i8x16_to_ps(_mm256_castsi256_si128(q[g]))));
        _mm512_storeu_ps(y + 32 * g + 16, _mm512_mul_ps(s1, i8x16_to_ps(_mm256_extracti128_si256(q[g], 1))));
      }
    }
  }
}

}  // namespace

const DequantKernels& dequant_kernels_avx512() {
  // Q5_0: the AVX2 version (AVX-512 CPUs run it; no wider one written).
  static const DequantKernels k = {f16_avx512,  bf16_avx512, q4_0_avx512, q8_0_avx512,
                                   q4_k_avx512, q6_k_avx512, dequant_kernels_avx2().q5_0};
  return k;
}

}  // namespace octet::gguf
