// Scalar int8 kernels: the definition the SIMD kernels are tested against bit for bit, and the
// fallback on CPUs without AVX2. Activations are stored as plain s8 (offset 0).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/int8_kernels.h"

namespace octet::kernels::int8 {
namespace {

void gemm_ref(const AView& a, const WView& w, const Epilogue& ep, int64_t m0, int64_t m1,
              int64_t p0, int64_t p1) {
  const int64_t n1 = std::min(w.n, p1 * 16);
  for (int64_t i = m0; i < m1; ++i) {
    const auto* x = reinterpret_cast<const int8_t*>(a.data + i * a.ld);
    for (int64_t n = p0 * 16; n < n1; ++n) {
      const int8_t* panel = w.panel(n / 16) + (n % 16) * 4;
      const int64_t step = w.step(n / 16);
      int32_t acc = 0;
      for (int64_t g = 0; g < w.k4; ++g)
        for (int b = 0; b < 4; ++b) acc += int32_t{x[g * 4 + b]} * panel[g * step + b];
      if (ep.y) {
        float* y = ep.y + i * ep.ldy + n;
        *y = epilogue_one(acc, a.row_scale[i], w.scale[n], *y, ep.bias, n, ep.accumulate);
      } else {
        ep.y32[i * ep.ldy + n] = acc;
      }
    }
  }
}

void quant_ref(const float* x, int64_t ldx, int64_t k, float inv, float s, uint8_t* dst,
               int64_t ld, int64_t r0, int64_t r1, OutlierList* out) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + (r - r0) * ldx;
    uint8_t* d = dst + r * ld;
    for (int64_t j = 0; j < k; ++j) {
      d[j] = static_cast<uint8_t>(quantize_one(xr[j], inv));
      if (out && is_outlier(xr[j], inv))
        out->push_back({static_cast<int32_t>(r), static_cast<int32_t>(j),
                        outlier_residual(xr[j], s)});
    }
    std::memset(d + k, 0, ld - k);
  }
}

void absmax_ref(const float* x, int64_t ldx, int64_t k, int64_t r0, int64_t r1, float* amax) {
  for (int64_t r = r0; r < r1; ++r) {
    float m = 0;
    for (int64_t j = 0; j < k; ++j) m = std::max(m, std::fabs(x[r * ldx + j]));
    amax[r - r0] = m;
  }
}

}  // namespace

void dequant_column_ref(const WView& w, int64_t k, int64_t p0, int64_t p1, float* out) {
  for (int64_t p = p0; p < p1; ++p) {
    const int8_t* src = w.panel(p) + (k / 4) * w.step(p) + (k % 4);
    for (int64_t j = 0; j < 16; ++j) out[(p - p0) * 16 + j] = w.scale[p * 16 + j] * src[j * 4];
  }
}

void shadow_rows_ref(const WView& w, const ShadowEntry* e, const int32_t* row_begin, int64_t m0,
                     int64_t m1, int64_t p0, int64_t p1, const float*, int64_t hot_stride,
                     float* y, int64_t ldy) {
  const int64_t n1 = std::min(w.n, p1 * 16);
  for (int64_t r = m0; r < m1; ++r) {
    if (row_begin[r] == row_begin[r + 1]) continue;
    for (int64_t n = p0 * 16; n < n1; ++n) {
      const int64_t p = n / 16, lane = n % 16;
      float h = 0.0f, c = 0.0f;
      for (int32_t t = row_begin[r]; t < row_begin[r + 1]; ++t) {
        const ShadowEntry& en = e[t];
        if (en.hot) {
          h = std::fma(en.residual, en.hot[p * hot_stride + lane], h);
        } else {
          const int8_t q = (w.panel(p) + (en.col / 4) * w.step(p))[lane * 4 + en.col % 4];
          c = std::fma(en.residual, static_cast<float>(q) * kShadowQScale, c);
        }
      }
      float& out = y[(r - m0) * ldy + (n - p0 * 16)];
      out = w.data ? std::fma(c, w.scale[n] * (1.0f / kShadowQScale), out + h) : out + h;
    }
  }
}

int64_t weight_row_check_ref(const float* w, int64_t k, float* amax) {
  float m = 0;
  for (int64_t i = 0; i < k; ++i) {
    if (!std::isfinite(w[i])) return i;
    m = std::max(m, std::fabs(w[i]));
  }
  *amax = m;
  return -1;
}

void weight_row_quant_ref(const float* w, int64_t k, float inv, int8_t* dst, int64_t stride) {
  for (int64_t i = 0; i < k; ++i)
    dst[(i >> 2) * stride + (i & 3)] = static_cast<int8_t>(quantize_one(w[i], inv));
}

const Kernels& kernels_ref() {
  static const Kernels k{gemm_ref, quant_ref, absmax_ref, 0, 1, 0, 1};
  return k;
}

}  // namespace octet::kernels::int8
