// AVX-512 VNNI int8 kernels. vpdpbusd multiplies u8 × s8, so activations are stored with +128
// (u8) and the GEMM subtracts 128·Σ_k q_w[n,k] (precomputed per channel) from each sum.
//
// Microkernel: MR rows × NB panels of 16 channels, MR·NB zmm accumulators. Per group of 4 k:
// NB zmm weight loads, MR 4-byte broadcasts of activations, MR·NB vpdpbusd. The weight panels
// (NB·16 channels × K) stay in L1/L2 while all row blocks stream past them.
// GCC 12's _mm512_undefined_* self-initialise and trip -Wmaybe-uninitialized (PR105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "kernels/int8_kernels.h"

namespace octet::kernels::int8 {
namespace {

constexpr int kMR = 8;  // rows per microkernel
constexpr int kNB = 3;  // 16-channel panels per microkernel

// GCC 12 compiles _mm512_dpbusd_epi32 with an untied destination and surrounds every call
// with register copies (half speed); the tied asm operand lets it keep accumulators in place.
inline __attribute__((always_inline)) void dpbusd(__m512i& acc, __m512i a_u8, __m512i b_s8) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a_u8), "v"(b_s8));
}

inline int32_t load32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <int MR, int NB>
void tile(const uint8_t* a, int64_t lda, const int8_t* w, int64_t wstride, int64_t k4,
          const AView& av, const WView& wv, const Epilogue& ep, int64_t row, int64_t panel) {
  __m512i acc[MR][NB];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) acc[i][j] = _mm512_setzero_si512();

  for (int64_t g = 0; g < k4; ++g) {
    __m512i b[NB];
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) b[j] = _mm512_load_si512(w + j * wstride + g * 64);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512i x = _mm512_set1_epi32(load32(a + i * lda + g * 4));
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) dpbusd(acc[i][j], x, b[j]);
    }
  }

#pragma GCC unroll 8
  for (int j = 0; j < NB; ++j) {
    const int64_t n0 = (panel + j) * 16;
    const int64_t valid = std::min<int64_t>(16, wv.n - n0);
    const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
    const __m512i corr = _mm512_loadu_si512(wv.corr + n0);
    if (ep.y) {
      const __m512 ws = _mm512_loadu_ps(wv.scale + n0);
      const __m512 bias = ep.bias ? _mm512_maskz_loadu_ps(mask, ep.bias + n0) : _mm512_setzero_ps();
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        float* y = ep.y + (row + i) * ep.ldy + n0;
        const __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][j], corr));
        const __m512 s = _mm512_mul_ps(_mm512_set1_ps(av.row_scale[row + i]), ws);
        __m512 base = ep.accumulate ? _mm512_maskz_loadu_ps(mask, y) : _mm512_setzero_ps();
        if (ep.bias) base = _mm512_add_ps(base, bias);
        _mm512_mask_storeu_ps(y, mask, _mm512_fmadd_ps(v, s, base));
      }
    } else {
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i)
        _mm512_mask_storeu_epi32(ep.y32 + (row + i) * ep.ldy + n0, mask,
                                 _mm512_sub_epi32(acc[i][j], corr));
    }
  }
}

using TileFn = void (*)(const uint8_t*, int64_t, const int8_t*, int64_t, int64_t, const AView&,
                        const WView&, const Epilogue&, int64_t, int64_t);

template <size_t... I>
constexpr std::array<TileFn, sizeof...(I)> make_tiles(std::index_sequence<I...>) {
  return {&tile<static_cast<int>(I / kNB) + 1, static_cast<int>(I % kNB) + 1>...};
}
// kTiles[(mr-1)·kNB + (nb-1)]: every edge shape has its own fully unrolled kernel.
constexpr auto kTiles = make_tiles(std::make_index_sequence<kMR * kNB>());

void gemm_vnni(const AView& a, const WView& w, const Epilogue& ep, int64_t m0, int64_t m1,
               int64_t p0, int64_t p1) {
  const int64_t wstride = w.k4 * 64;
  for (int64_t p = p0; p < p1; p += kNB) {
    const int64_t nb = std::min<int64_t>(kNB, p1 - p);
    for (int64_t i = m0; i < m1; i += kMR) {
      const int64_t mr = std::min<int64_t>(kMR, m1 - i);
      kTiles[(mr - 1) * kNB + (nb - 1)](a.data + i * a.ld, a.ld, w.data + p * wstride, wstride,
                                        w.k4, a, w, ep, i, p);
    }
  }
}

// One row: t = x·inv, clamp, round half to even, store q ^ 0x80 (= q + 128 as u8).
void quant_row(const float* x, int64_t k, float inv, float s, uint8_t* d, int64_t ld,
               int32_t row, OutlierList* out) {
  const __m512 vinv = _mm512_set1_ps(inv);
  const __m512 hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
  const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80));
  for (int64_t j = 0; j < k; j += 16) {
    const __mmask16 m = k - j >= 16 ? 0xffff : static_cast<__mmask16>((1u << (k - j)) - 1);
    const __m512 t = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + j), vinv);
    if (out) {
      unsigned o = _mm512_mask_cmp_ps_mask(m, _mm512_abs_ps(t), hi, _CMP_GT_OQ);
      while (o) {  // rare: scalar bookkeeping for the few clipped lanes
        const int l = __builtin_ctz(o);
        o &= o - 1;
        out->push_back({row, static_cast<int32_t>(j + l), outlier_residual(x[j + l], s)});
      }
    }
    const __m512 c = _mm512_max_ps(_mm512_min_ps(t, hi), lo);
    const __m512i q = _mm512_cvt_roundps_epi32(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_mask_storeu_epi8(d + j, m, _mm_xor_si128(_mm512_cvtepi32_epi8(q), flip));
  }
  for (int64_t j = k; j < ld; ++j) d[j] = 0x80;  // q = 0 (the weights there are 0 anyway)
}

void quant_vnni(const float* x, int64_t ldx, int64_t k, float inv, float s, uint8_t* dst,
                int64_t ld, int64_t r0, int64_t r1, OutlierList* out) {
  for (int64_t r = r0; r < r1; ++r)
    quant_row(x + r * ldx, k, inv, s, dst + r * ld, ld, static_cast<int32_t>(r), out);
}

void absmax_avx512(const float* x, int64_t ldx, int64_t k, int64_t r0, int64_t r1,
                   float* amax) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * ldx;
    __m512 m = _mm512_setzero_ps();
    for (int64_t j = 0; j < k; j += 16) {
      const __mmask16 mk = k - j >= 16 ? 0xffff : static_cast<__mmask16>((1u << (k - j)) - 1);
      // max(|x|, m) keeps m when x is NaN, as the scalar std::max(m, |x|) does.
      m = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(mk, xr + j)), m);
    }
    amax[r - r0] = _mm512_reduce_max_ps(m);
  }
}

}  // namespace

const Kernels& kernels_vnni() {
  static const Kernels k{gemm_vnni, quant_vnni, absmax_avx512, 0x80, kMR};
  return k;
}

}  // namespace octet::kernels::int8
