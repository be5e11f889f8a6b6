// AVX2+FMA float kernels: the templates of kernels/float_impl.h on 8-lane ymm vectors.
// GEMM microkernel 6 rows × 16 columns (12 ymm accumulators, the classic 6×16 shape that
// fits the 16 ymm registers with the two panel loads and a broadcast).
#include <immintrin.h>

#include "kernels/float_isa.h"

namespace octet::kernels::fimpl {
namespace {

struct Avx2 {
  using V = __m256;
  static constexpr int W = 8;
  static constexpr int64_t kNP = 1, kMR = 6, kKC = 256;
  static constexpr int64_t kBQ = 32, kNQ = 4, kSMR = 3, kPVR = 4, kPVC = 2;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float f) { return _mm256_set1_ps(f); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load_u(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static void store_u(float* p, V v) { _mm256_storeu_ps(p, v); }
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V loadn(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void storen(float* p, V v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V round(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V floor(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static V pow2i(V n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  }
  static float hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(V v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static V iota() { return _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7); }
  static V sel_le(V a, V b, V x, V y) { return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_LE_OQ)); }
  static V dup_pairs(const float* p) {
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(p)),
                                    _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
  }
  static V swap_pairs(V v) { return _mm256_permute_ps(v, 0xB1); }
  static V sign_pairs() { return _mm256_setr_ps(-1, 1, -1, 1, -1, 1, -1, 1); }
  static V load_h(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  // KV rows to float: 8 halves per vcvtph2ps (F16C); int8 widened 8 at a time.
  static void cvt_f16(const uint16_t* s, float* d, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
    for (; i < n; ++i) d[i] = _cvtsh_ss(s[i]);
  }
  static void to_f16(const float* s, uint16_t* d, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                       _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) d[i] = static_cast<uint16_t>(_cvtss_sh(s[i], _MM_FROUND_TO_NEAREST_INT));
  }
  static void cvt_i8(const int8_t* s, float scale, float* d, int64_t n) {
    const __m256 sv = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(d + i, _mm256_mul_ps(sv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                                                    _mm_loadl_epi64(reinterpret_cast<const __m128i*>(s + i))))));
    for (; i < n; ++i) d[i] = scale * static_cast<float>(s[i]);
  }
};

#include "kernels/float_impl.h"

}  // namespace

const FloatKernels& kernels_avx2() {
  static const FloatKernels t = make_table<Avx2>(FloatIsa::kAvx2);
  return t;
}

}  // namespace octet::kernels::fimpl
