// Scalar W4A8 / W5A8 GEMM over the file's blocks: the definition in kernels/q4_gemm.h, term by
// term, and the block decoding the SIMD kernels share for scales.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "gguf/dequant_impl.h"
#include "kernels/q4_gemm.h"
#include "octet/cpu.h"

namespace octet::kernels::q4 {

const char* name(Format f) {
  switch (f) {
    case Format::Q4_0: return "Q4_0";
    case Format::Q5_0: return "Q5_0";
    case Format::Q4_K: return "Q4_K";
    case Format::Q5_K: return "Q5_K";
  }
  return "?";
}

int64_t row_bytes(Format f, int64_t k) {
  const FormatInfo fi = info(f);
  return k / fi.group * fi.unit_bytes;
}

void decode_block(Format f, const uint8_t* row, int64_t b, float& s, float& e, int8_t* codes) {
  const uint8_t* u = unit_of(info(f), row, b);
  switch (f) {
    case Format::Q4_0:
      block_scales<Format::Q4_0>(u, b, s, e);
      if (codes)
        for (int j = 0; j < 16; ++j) {
          codes[j] = static_cast<int8_t>((u[2 + j] & 15) - 8);
          codes[j + 16] = static_cast<int8_t>((u[2 + j] >> 4) - 8);
        }
      return;
    case Format::Q5_0: {
      block_scales<Format::Q5_0>(u, b, s, e);
      uint32_t qh;
      std::memcpy(&qh, u + 2, 4);
      if (codes)
        for (int j = 0; j < 16; ++j) {
          codes[j] = static_cast<int8_t>(((u[6 + j] & 15) | (((qh >> j) & 1) << 4)) - 16);
          codes[j + 16] =
              static_cast<int8_t>(((u[6 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16);
        }
      return;
    }
    case Format::Q4_K:
    case Format::Q5_K: {
      const bool five = f == Format::Q5_K;
      if (five)
        block_scales<Format::Q5_K>(u, b, s, e);
      else
        block_scales<Format::Q4_K>(u, b, s, e);
      if (codes) {
        // Sub-block j's 32 codes: the low (even j) or high (odd j) nibbles of 32 bytes of qs,
        // and for Q5_K bit j of qh[l] as the fifth bit.
        const int j = static_cast<int>(b % 8);
        const uint8_t* ql = u + (five ? 48 : 16) + 32 * (j / 2);
        for (int l = 0; l < 32; ++l) {
          const int lo = j % 2 ? ql[l] >> 4 : ql[l] & 15;
          codes[l] = five ? static_cast<int8_t>((lo | (((u[16 + l] >> j) & 1) << 4)) - 16)
                          : static_cast<int8_t>(lo - 8);
        }
      }
      return;
    }
  }
}

std::vector<const uint8_t*> consecutive_rows(const uint8_t* data, int64_t n, int64_t row_bytes) {
  std::vector<const uint8_t*> rows(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) rows[static_cast<size_t>(i)] = data + i * row_bytes;
  return rows;
}

void column_offsets_ref(const Q4View& w, float* corr) {
  const int64_t nb = w.k / kBlock;
  int8_t c[kBlock];
  for (int64_t n = 0; n < w.n; ++n) {
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      float s, e;
      decode_block(w.format, w.rows[n], b, s, e, c);
      int32_t sum = 0;
      for (int8_t v : c) sum += v;
      acc = std::fma(static_cast<float>(128 * sum), s, acc);
    }
    corr[n] = acc;
  }
}

void gemm_ref(const Acts& a, const Q4View& w, const float* corr, const int8::Epilogue& ep,
              int64_t m0, int64_t m1, int64_t p0, int64_t p1, const Q4Shadow* shadow) {
  const FormatInfo fi = info(w.format);
  const int64_t nb = w.k / kBlock, n1 = std::min(w.n, 16 * p1), half = fi.five_bit ? 16 : 32;
  int8_t c[kBlock];
  for (int64_t r = m0; r < m1; ++r) {
    const uint8_t* x = a.data + r * a.ld;
    for (int64_t n = 16 * p0; n < n1; ++n) {
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        float s, e;
        decode_block(w.format, w.rows[n], b, s, e, c);
        int32_t xb = 0;
        for (int64_t h0 = 0; h0 < kBlock; h0 += half) {
          int32_t dot = 0;
          for (int64_t k = h0; k < h0 + half; ++k) {
            dot += int32_t{x[b * kBlock + k]} * c[k];
            xb += int32_t{x[b * kBlock + k]} - 128;
          }
          acc = std::fma(static_cast<float>(dot), s, acc);
        }
        if (fi.has_min) acc = std::fma(static_cast<float>(xb), e, acc);
      }
      float* y = ep.y + r * ep.ldy + n;
      float base = ep.accumulate ? *y : 0.0f;
      if (ep.bias) base += ep.bias[n];
      *y = std::fma(acc - corr[n], a.row_scale[r], base);
      if (!shadow) continue;
      for (int32_t t = shadow->row_begin[r]; t < shadow->row_begin[r + 1]; ++t) {
        const Q4Outlier& o = shadow->e[t];
        float s, e;
        decode_block(w.format, w.rows[n], o.col / kBlock, s, e, c);
        *y = std::fma(o.residual, std::fma(s, static_cast<float>(c[o.col % kBlock]), e), *y);
      }
    }
  }
}

void column_offsets(const Q4View& w, float* corr) {
  const CpuFeatures& f = cpu_features();
  (f.avx2 && f.fma && f.f16c ? &column_offsets_avx2 : &column_offsets_ref)(w, corr);
}

GemmFn best_gemm() {
  const CpuFeatures& f = cpu_features();
  return f.avx2 && f.fma && f.f16c ? &gemm_avx2 : &gemm_ref;
}

}  // namespace octet::kernels::q4
