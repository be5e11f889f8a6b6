// The AVX-512 traits of the float kernel templates (kernels/float_impl.h): 16-lane zmm
// vectors. Shared by the TUs that instantiate those templates for AVX-512 (float_avx512.cpp,
// attn_bf16.cpp); include it inside their anonymous namespace, after <immintrin.h>, like
// float_impl.h itself (internal linkage: each TU keeps its own copy).
#pragma once

struct Avx512 {
  using V = __m512;
  static constexpr int W = 16;
  static constexpr int64_t kNP = 3, kMR = 8, kKC = 256;
  static constexpr int64_t kBQ = 64, kNQ = 4, kSMR = 6, kPVR = 4, kPVC = 4;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float f) { return _mm512_set1_ps(f); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load_u(const float* p) { return _mm512_loadu_ps(p); }
  static V load_h(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static void store_u(float* p, V v) { _mm512_storeu_ps(p, v); }
  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static V loadn(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void storen(float* p, V v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  // 1/a for normal a: vrcp14ps (relative error < 2^-14) and one Newton step y + y·(1 − a·y).
  static V recip(V a) {
    const V y = _mm512_rcp14_ps(a);
    return _mm512_fmadd_ps(y, _mm512_fnmadd_ps(a, y, _mm512_set1_ps(1.f)), y);
  }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V round(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V floor(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static V pow2i(V n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
  }
  // p·2^n for integer-valued n (vexp's final scaling; exact except in the denormal range,
  // where it rounds once like the generic two-factor product).
  static V scalef(V p, V n) { return _mm512_scalef_ps(p, n); }
  static float hsum(V v) { return _mm512_reduce_add_ps(v); }
  static float hmax(V v) { return _mm512_reduce_max_ps(v); }
  static V iota() { return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
  static V sel_le(V a, V b, V x, V y) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LE_OQ), y, x);
  }
  static V dup_pairs(const float* p) {
    const __m512i idx = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    return _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(_mm256_loadu_ps(p)));
  }
  static V swap_pairs(V v) { return _mm512_permute_ps(v, 0xB1); }
  static V sign_pairs() { return _mm512_setr_ps(-1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1); }
  // dst[c·ldd + r] = src[r·lds + c] for a 16×16 block (attention's Q transpose): unpack
  // pairs, then 64-bit pairs, then 128-bit lanes twice — 64 shuffles instead of 256 scalar
  // loads and stores.
  static void transpose(const float* src, int64_t lds, float* dst, int64_t ldd) {
    __m512 r[16], t[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * lds);
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 16; i += 4) {
      r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
      r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
      r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
      r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
#pragma GCC unroll 2
    for (int i = 0; i < 16; i += 8) {
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
        t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xDD);
      }
    }
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
      r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xDD);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) _mm512_storeu_ps(dst + i * ldd, r[i]);
  }
  // KV rows to float: 16 halves per vcvtph2ps; int8 widened 16 at a time.
  static void cvt_f16(const uint16_t* s, float* d, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(d + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i))));
    if (i < n) {  // tail through a zeroed copy (masked 16-bit loads would need AVX512BW)
      alignas(32) uint16_t t[16] = {};
      for (int64_t j = i; j < n; ++j) t[j - i] = s[j];
      _mm512_mask_storeu_ps(d + i, mask(static_cast<int>(n - i)),
                            _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(t))));
    }
  }
  // Float to half, round to nearest even (the KV cache's stores): 16 per vcvtps2ph.
  static void to_f16(const float* s, uint16_t* d, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i),
                          _mm512_cvtps_ph(_mm512_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) d[i] = static_cast<uint16_t>(_cvtss_sh(s[i], _MM_FROUND_TO_NEAREST_INT));
  }
  static void cvt_i8(const int8_t* s, float scale, float* d, int64_t n) {
    const __m512 sv = _mm512_set1_ps(scale);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(d + i, _mm512_mul_ps(sv, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))))));
    for (; i < n; ++i) d[i] = scale * static_cast<float>(s[i]);
  }
};
