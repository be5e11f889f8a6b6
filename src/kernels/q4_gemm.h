// W4A8 GEMM over Q4_0 blocks read in place (zero copy): the prefill kernel for CPUs without
// AVX-512 VNNI, where the int8 GEMM multiplies in int16 (vpmaddwd, 16 products per multiply
// µop). Q4_0's codes are 4 bits, so u8 activations × (code − 8) fit vpmaddubsw (32 products
// per µop) without saturation and sum in int16 over a whole 32-k block:
//   |pair| ≤ 2·255·8 = 4080, eight k-quads per block → |sum| ≤ 32640 < 2^15.
// Each block's int32 dot is then scaled by the block's d in float, as the file defines W.
//
// Definition (every kernel reproduces it bit for bit; the scalar one is the reference):
//   a_u[r, k] = q_x[r, k] + 128 (u8), c[n, k] = code − 8 ∈ [−8, 7], d[n, b] the block scale
//   dot[r, n, b] = Σ_{k in block b} a_u·c                  (exact integer)
//   acc[r, n]    = fma(float(dot_b), d_b, acc) over b in order, from 0
//   corr[n]      = fma(float(128·Σ_{k in b} c), d_b, corr) over b in order, from 0
//   y[r, n]      = fma(acc − corr[n], row_scale[r], base),  base = (accumulate ? y : 0) + bias[n]
// so y = row_scale·Σ_b d_b·Σ q_x·c: the file's weights exactly, times int8 activations.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/int8_kernels.h"

namespace octet::kernels::q4 {

inline constexpr int64_t kBlock = 32;       // weights per Q4_0 block
inline constexpr int64_t kBlockBytes = 18;  // fp16 d + 16 bytes of nibbles

// A Q4_0 matrix as the GGUF stores it, row by row: row n (output channel n) at rows[n], K/32
// blocks of {fp16 d, 16 bytes: byte j holds k = j (low nibble) and k = j + 16 (high)}. Rows
// by pointer: a fused linear's rows come from several tensors of the file (q, k, v; gate and
// up interleaved by panel) without a copy.
struct Q4View {
  const uint8_t* const* rows;
  int64_t n, k;
};
// Row pointers of n consecutive rows of row_bytes each from data.
std::vector<const uint8_t*> consecutive_rows(const uint8_t* data, int64_t n, int64_t row_bytes);

// Activations: u8 = q_x + 128, row r at data + r·ld (ld ≥ K), one scale per row.
struct Acts {
  const uint8_t* data;
  int64_t ld;
  const float* row_scale;
};

// corr[n] for n in [0, w.n) (the definition above; once per matrix, at load).
void column_offsets(const Q4View& w, float* corr);

// Rows [m0, m1) × 16-channel panels [p0, p1) of y (ep.y must be set; int32 output is not
// offered). K must be a multiple of 32 (every Q4_0 row is).
using GemmFn = void (*)(const Acts& a, const Q4View& w, const float* corr,
                        const int8::Epilogue& ep, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void gemm_ref(const Acts& a, const Q4View& w, const float* corr, const int8::Epilogue& ep,
              int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void gemm_avx2(const Acts& a, const Q4View& w, const float* corr, const int8::Epilogue& ep,
               int64_t m0, int64_t m1, int64_t p0, int64_t p1);

// The one for this CPU (AVX2 or the reference).
GemmFn best_gemm();

}  // namespace octet::kernels::q4
