// Scalar W4A8 GEMM over Q4_0 blocks: the definition in kernels/q4_gemm.h, term by term.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/q4_gemm.h"
#include "octet/cpu.h"
#include "octet/half.h"

namespace octet::kernels::q4 {
namespace {

const uint8_t* block(const Q4View& w, int64_t n, int64_t b) {
  return w.rows[n] + b * kBlockBytes;
}
float block_scale(const uint8_t* blk) {
  uint16_t h;
  std::memcpy(&h, blk, 2);
  return fp16_to_fp32(h);
}
int32_t code(const uint8_t* blk, int64_t k) {  // c = code − 8 of k in [0, 32)
  const uint8_t byte = blk[2 + (k & 15)];
  return static_cast<int32_t>(k < 16 ? byte & 15 : byte >> 4) - 8;
}

}  // namespace

std::vector<const uint8_t*> consecutive_rows(const uint8_t* data, int64_t n, int64_t row_bytes) {
  std::vector<const uint8_t*> rows(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) rows[static_cast<size_t>(i)] = data + i * row_bytes;
  return rows;
}

void column_offsets(const Q4View& w, float* corr) {
  const int64_t nb = w.k / kBlock;
  for (int64_t n = 0; n < w.n; ++n) {
    float c = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = block(w, n, b);
      int32_t s = -8 * kBlock;  // Σ (code − 8), both nibbles of each byte
      for (int j = 0; j < 16; ++j) s += (blk[2 + j] & 15) + (blk[2 + j] >> 4);
      c = std::fma(static_cast<float>(128 * s), block_scale(blk), c);
    }
    corr[n] = c;
  }
}

void gemm_ref(const Acts& a, const Q4View& w, const float* corr, const int8::Epilogue& ep,
              int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  const int64_t nb = w.k / kBlock, n1 = std::min(w.n, 16 * p1);
  for (int64_t r = m0; r < m1; ++r) {
    const uint8_t* x = a.data + r * a.ld;
    for (int64_t n = 16 * p0; n < n1; ++n) {
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = block(w, n, b);
        int32_t dot = 0;
        for (int64_t k = 0; k < kBlock; ++k) dot += int32_t{x[b * kBlock + k]} * code(blk, k);
        acc = std::fma(static_cast<float>(dot), block_scale(blk), acc);
      }
      float* y = ep.y + r * ep.ldy + n;
      float base = ep.accumulate ? *y : 0.0f;
      if (ep.bias) base += ep.bias[n];
      *y = std::fma(acc - corr[n], a.row_scale[r], base);
    }
  }
}

GemmFn best_gemm() {
  const CpuFeatures& f = cpu_features();
  return f.avx2 && f.fma && f.f16c ? &gemm_avx2 : &gemm_ref;
}

}  // namespace octet::kernels::q4
