// AVX2 (+F16C) dequantisers for the hot weight types. They compute exactly the scalar
// reference's float operations (one rounding per multiply and per subtract, scales formed in
// scalar code the same way), so the results are bit-identical to dequant.cpp; the product in
// d*q - m is fenced (no_contract) because an FMA would round it differently.
#include <immintrin.h>

#include <cstring>

#include "gguf/dequant_impl.h"
#include "octet/half.h"

namespace octet::gguf {

namespace {

// An empty asm the compiler cannot see through: keeps a product rounded on its own, so
// GCC (-ffp-contract=fast by default) cannot fuse it with the following subtraction. For
// Q4_K the product (11-bit half x 6-bit scale x 4-bit code) is exact, so fusing would not
// change results today; the fence keeps the kernel equal to the reference by construction.
inline __m256 no_contract(__m256 x) {
  __asm__("" : "+x"(x));
  return x;
}

// 8 signed bytes -> 8 floats.
inline __m256 i8x8_to_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

// Stores 32 int8 values (as one __m256i) times `d` into y[0..32).
inline void store_i8x32_scaled(__m256i q, __m256 d, float* y) {
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  _mm256_storeu_ps(y + 0, _mm256_mul_ps(i8x8_to_ps(lo), d));
  _mm256_storeu_ps(y + 8, _mm256_mul_ps(i8x8_to_ps(_mm_srli_si128(lo, 8)), d));
  _mm256_storeu_ps(y + 16, _mm256_mul_ps(i8x8_to_ps(hi), d));
  _mm256_storeu_ps(y + 24, _mm256_mul_ps(i8x8_to_ps(_mm_srli_si128(hi, 8)), d));
}

void f16_avx2(const uint8_t* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2 * i));
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) y[i] = h2f(b + 2 * i);
}

void bf16_avx2(const uint8_t* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2 * i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, b + 2 * i, 2);
    y[i] = bf16_to_fp32(h);
  }
}

void q8_0_avx2(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 34, y += 32) {
    const __m256 d = _mm256_set1_ps(h2f(b));
    store_i8x32_scaled(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2)), d, y);
  }
}

void q4_0_avx2(const uint8_t* b, float* y, int64_t nb) {
  const __m128i m4 = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
  for (int64_t i = 0; i < nb; ++i, b += 18, y += 32) {
    const __m256 d = _mm256_set1_ps(h2f(b));
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m4), eight);                       // y[0..16)
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), eight);  // y[16..32)
    store_i8x32_scaled(_mm256_set_m128i(hi, lo), d, y);
  }
}

// Q5_0: the Q4_0 nibbles plus a fifth bit per weight from the 32-bit qh (bit k → weight k).
void q5_0_avx2(const uint8_t* b, float* y, int64_t nb) {
  const __m128i m4 = _mm_set1_epi8(0x0f);
  const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
                                          2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bits = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  const __m256i sixteen = _mm256_set1_epi8(16);
  for (int64_t i = 0; i < nb; ++i, b += 22, y += 32) {
    const __m256 d = _mm256_set1_ps(h2f(b));
    int32_t qh;
    std::memcpy(&qh, b + 2, 4);
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 6));
    const __m256i lo = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
    const __m256i h = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32(qh), spread), bits);
    const __m256i hi = _mm256_and_si256(_mm256_cmpeq_epi8(h, bits), sixteen);
    store_i8x32_scaled(_mm256_sub_epi8(_mm256_or_si256(lo, hi), sixteen), d, y);
  }
}

// y[0..32) = d * q - m for 32 unsigned 4-bit codes held in the bytes of q.
inline void store_u8x32_affine(__m256i q, float d, float m, float* y) {
  const __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
  for (int k = 0; k < 4; ++k) {
    const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[k]));
    _mm256_storeu_ps(y + 8 * k, _mm256_sub_ps(no_contract(_mm256_mul_ps(vd, f)), vm));
  }
}

void q4_k_avx2(const uint8_t* b, float* y, int64_t nb) {
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

// y[0..32) = (d * sc[k/16]) * q for 32 signed 6-bit codes; two scales per 32 values.
inline void store_q6_group(__m256i q, float d, const int8_t* sc, float* y) {
  const __m256 s0 = _mm256_set1_ps(d * static_cast<float>(sc[0]));
  const __m256 s1 = _mm256_set1_ps(d * static_cast<float>(sc[1]));
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  _mm256_storeu_ps(y + 0, _mm256_mul_ps(s0, i8x8_to_ps(lo)));
  _mm256_storeu_ps(y + 8, _mm256_mul_ps(s0, i8x8_to_ps(_mm_srli_si128(lo, 8))));
  _mm256_storeu_ps(y + 16, _mm256_mul_ps(s1, i8x8_to_ps(hi)));
  _mm256_storeu_ps(y + 24, _mm256_mul_ps(s1, i8x8_to_ps(_mm_srli_si128(hi, 8))));
}

void q6_k_avx2(const uint8_t* b, float* y, int64_t nb) {
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
      // High 2 bits moved to bit 4..5 of each byte (16-bit shifts; the masks drop the spill).
      const __m256i h0 = _mm256_and_si256(_mm256_slli_epi16(h, 4), m2);
      const __m256i h1 = _mm256_and_si256(_mm256_slli_epi16(h, 2), m2);
      const __m256i h2 = _mm256_and_si256(h, m2);
      const __m256i h3 = _mm256_and_si256(_mm256_srli_epi16(h, 2), m2);
      const __m256i q1 = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(l0, m4), h0), k32);
      const __m256i q2 = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(l1, m4), h1), k32);
      const __m256i q3 = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), h2), k32);
      const __m256i q4 = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), h3), k32);
      store_q6_group(q1, d, sc + 0, y + 0);
      store_q6_group(q2, d, sc + 2, y + 32);
      store_q6_group(q3, d, sc + 4, y + 64);
      store_q6_group(q4, d, sc + 6, y + 96);
    }
  }
}

}  // namespace

const DequantKernels& dequant_kernels_avx2() {
  static const DequantKernels k = {f16_avx2,  bf16_avx2, q4_0_avx2, q8_0_avx2,
                                   q4_k_avx2, q6_k_avx2, q5_0_avx2};
  return k;
}

}  // namespace octet::gguf
