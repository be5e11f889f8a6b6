// AVX2 int8 kernels (no VNNI). vpmaddubsw multiplies u8 × s8 and adds pairs into int16 with
// saturation, which (q+128)·w pairs would overflow. The sign trick keeps it exact: with s8
// activations, |x| is a u8 ≤ 127 and sign(x)·w an s8 in [-127, 127] (weights never hold -128),
// so each pair is at most 2·127·127 = 32258 < 32767. vpmaddwd by 1 widens to int32.
//
// Microkernel: MR rows × one 16-channel panel (2 ymm), MR·2 ymm accumulators.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>

#include "kernels/int8_kernels.h"

namespace octet::kernels::int8 {
namespace {

constexpr int kMR = 4;

inline int32_t load32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <int MR>
void tile(const uint8_t* a, int64_t lda, const int8_t* w, int64_t step, int64_t k4, const AView& av,
          const WView& wv, const Epilogue& ep, int64_t row, int64_t panel) {
  __m256i acc[MR][2];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t g = 0; g < k4; ++g) {
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + g * step));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + g * step + 32));
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256i x = _mm256_set1_epi32(load32(a + i * lda + g * 4));
      const __m256i ax = _mm256_sign_epi8(x, x);
      const __m256i p0 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(b0, x));
      const __m256i p1 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(b1, x));
      acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(p0, ones));
      acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(p1, ones));
    }
  }

  const int64_t n0 = panel * 16;
  const int64_t valid = std::min<int64_t>(16, wv.n - n0);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    if (valid == 16 && ep.y) {
      float* y = ep.y + (row + i) * ep.ldy + n0;
      const __m256 rs = _mm256_set1_ps(av.row_scale[row + i]);
      for (int h = 0; h < 2; ++h) {
        const __m256 v = _mm256_cvtepi32_ps(acc[i][h]);
        const __m256 s = _mm256_mul_ps(rs, _mm256_loadu_ps(wv.scale + n0 + 8 * h));
        __m256 base = ep.accumulate ? _mm256_loadu_ps(y + 8 * h) : _mm256_setzero_ps();
        if (ep.bias) base = _mm256_add_ps(base, _mm256_loadu_ps(ep.bias + n0 + 8 * h));
        _mm256_storeu_ps(y + 8 * h, _mm256_fmadd_ps(v, s, base));
      }
    } else {  // int32 output or a partial panel: spill and finish in scalar (same formula)
      alignas(32) int32_t t[16];
      _mm256_store_si256(reinterpret_cast<__m256i*>(t), acc[i][0]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(t + 8), acc[i][1]);
      for (int64_t l = 0; l < valid; ++l) {
        if (ep.y) {
          float* y = ep.y + (row + i) * ep.ldy + n0 + l;
          *y = epilogue_one(t[l], av.row_scale[row + i], wv.scale[n0 + l], *y, ep.bias, n0 + l,
                            ep.accumulate);
        } else {
          ep.y32[(row + i) * ep.ldy + n0 + l] = t[l];
        }
      }
    }
  }
}

using TileFn = void (*)(const uint8_t*, int64_t, const int8_t*, int64_t, int64_t, const AView&,
                        const WView&, const Epilogue&, int64_t, int64_t);
template <size_t... I>
constexpr std::array<TileFn, sizeof...(I)> make_tiles(std::index_sequence<I...>) {
  return {&tile<static_cast<int>(I) + 1>...};
}
constexpr auto kTiles = make_tiles(std::make_index_sequence<kMR>());

void gemm_avx2(const AView& a, const WView& w, const Epilogue& ep, int64_t m0, int64_t m1,
               int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t i = m0; i < m1; i += kMR) {
      const int64_t mr = std::min<int64_t>(kMR, m1 - i);
      kTiles[mr - 1](a.data + i * a.ld, a.ld, w.panel(p), w.step(p), w.k4, a, w, ep, i, p);
    }
}

void quant_avx2(const float* x, int64_t ldx, int64_t k, float inv, float s, uint8_t* dst,
                int64_t ld, int64_t r0, int64_t r1, OutlierList* out) {
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + (r - r0) * ldx;
    uint8_t* d = dst + r * ld;
    int64_t j = 0;
    for (; j + 8 <= k; j += 8) {
      const __m256 t = _mm256_mul_ps(_mm256_loadu_ps(xr + j), vinv);
      if (out) {
        unsigned o = static_cast<unsigned>(
            _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(t, absmask), hi, _CMP_GT_OQ)));
        while (o) {
          const int l = __builtin_ctz(o);
          o &= o - 1;
          out->push_back({static_cast<int32_t>(r), static_cast<int32_t>(j + l),
                          outlier_residual(xr[j + l], s)});
        }
      }
      // min/max argument order = the scalar definition (NaN → 127); cvtps rounds half to even.
      const __m256i q = _mm256_cvtps_epi32(_mm256_max_ps(_mm256_min_ps(t, hi), lo));
      const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d + j), _mm_packs_epi16(q16, q16));
    }
    for (; j < k; ++j) {
      d[j] = static_cast<uint8_t>(quantize_one(xr[j], inv));
      if (out && is_outlier(xr[j], inv))
        out->push_back({static_cast<int32_t>(r), static_cast<int32_t>(j),
                        outlier_residual(xr[j], s)});
    }
    std::memset(d + k, 0, ld - k);
  }
}

void absmax_avx2(const float* x, int64_t ldx, int64_t k, int64_t r0, int64_t r1, float* amax) {
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * ldx;
    __m256 m = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= k; j += 8) m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(xr + j), absmask), m);
    alignas(32) float t[8];
    _mm256_store_ps(t, m);
    float mx = 0;
    for (float v : t) mx = std::max(mx, v);
    for (; j < k; ++j) mx = std::max(mx, std::fabs(xr[j]));
    amax[r - r0] = mx;
  }
}

// The shadow-path kernel's traits (kernels/x86/shadow_impl.h): 8-lane ymm, so a 16-output
// panel is two vectors and a block of 2 panels already takes 8 accumulators of the 16 ymm.
struct ShadowYmm {
  using F = __m256;
  using I = __m256i;
  static constexpr int W = 8;
  static constexpr int kMaxNP = 2, kPairMaxNP = 1;
  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float f) { return _mm256_set1_ps(f); }
  static F loadf(const float* p) { return _mm256_loadu_ps(p); }
  static I loadi(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F top(I v, I ctrl) { return _mm256_cvtepi32_ps(_mm256_shuffle_epi8(v, ctrl)); }
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static F loadn(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void storef(float* p, F v) { _mm256_storeu_ps(p, v); }
  static void storen(float* p, F v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static void prefetch_l1(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
  static void prefetch_l2(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1); }
};

#include "kernels/x86/shadow_impl.h"

}  // namespace

void dequant_column_avx2(const WView& w, int64_t k, int64_t p0, int64_t p1, float* out) {
  dequant_column_impl<ShadowYmm>(w, k, p0, p1, out);
}

void shadow_rows_avx2(const WView& w, const ShadowEntry* e, const int32_t* row_begin, int64_t m0,
                      int64_t m1, int64_t p0, int64_t p1, const float* hot_base,
                      int64_t hot_stride, float* y, int64_t ldy) {
  shadow_rows_impl<ShadowYmm>(w, e, row_begin, m0, m1, p0, p1, hot_base, hot_stride, y, ldy);
}

int64_t weight_row_check_avx2(const float* w, int64_t k, float* amax) {
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 m = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= k; j += 8) {
    const __m256 v = _mm256_loadu_ps(w + j);
    // x − x is NaN exactly for NaN and ±Inf.
    if (const int bad = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_sub_ps(v, v), _mm256_setzero_ps(),
                                                         _CMP_NEQ_UQ)))
      return j + __builtin_ctz(static_cast<unsigned>(bad));
    m = _mm256_max_ps(_mm256_and_ps(v, absmask), m);
  }
  alignas(32) float t[8];
  _mm256_store_ps(t, m);
  float mx = 0;
  for (float v : t) mx = std::max(mx, v);
  float tail = 0;
  const int64_t bad = weight_row_check_ref(w + j, k - j, &tail);
  if (bad >= 0) return j + bad;
  *amax = std::max(mx, tail);
  return -1;
}

void weight_row_quant_avx2(const float* w, int64_t k, float inv, int8_t* dst, int64_t stride) {
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
  int64_t j = 0;
  for (; j + 8 <= k; j += 8) {
    // As quantize_one: scale, clamp, round half to even; two groups of 4 bytes.
    const __m256 t = _mm256_max_ps(_mm256_min_ps(_mm256_mul_ps(_mm256_loadu_ps(w + j), vinv), hi), lo);
    const __m256i q = _mm256_cvtps_epi32(t);
    const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    const __m128i b = _mm_packs_epi16(q16, q16);
    const int32_t g0 = _mm_cvtsi128_si32(b), g1 = _mm_extract_epi32(b, 1);
    std::memcpy(dst + (j / 4) * stride, &g0, 4);
    std::memcpy(dst + (j / 4 + 1) * stride, &g1, 4);
  }
  // The tail starts at a group boundary (j is a multiple of 8).
  weight_row_quant_ref(w + j, k - j, inv, dst + (j / 4) * stride, stride);
}

const Kernels& kernels_avx2() {
  static const Kernels k{gemm_avx2, quant_avx2, absmax_avx2, 0, kMR, 0, 1};
  return k;
}

}  // namespace octet::kernels::int8
