// W4A8 / W5A8 GEMM over the file's 4- and 5-bit blocks read in place (zero copy): the prefill
// kernel for CPUs without AVX-512 VNNI, where the int8 GEMM multiplies in int16 (vpmaddwd, 16
// products per multiply µop). These formats' codes are 4-5 bits, so u8 activations × codes
// fit vpmaddubsw (32 products per µop) without saturation and sum exactly in int16 over
//   a whole 32-k block for 4-bit codes c ∈ [−8, 7]:  |lane| ≤ 16·255·8  = 32640 < 2^15,
//   each 16-k half of it for 5-bit codes c ∈ [−16, 15]: |lane| ≤ 8·255·16 = 32640.
// Each block's (or half's) int32 dot is then scaled by the block's scale in float, as the
// file defines W. Formats (every one has 32-weight blocks, or 32-weight sub-blocks of 256):
//   Q4_0: c = code − 8,       s = d
//   Q5_0: c = code5 − 16,     s = d                  (two 16-k halves per block)
//   Q4_K: c = code − 8,       s = d·sc_j, e = 8·s − dmin·m_j
//   Q5_K: c = code5 − 16,     s = d·sc_j, e = 16·s − dmin·m_j   (two halves)
// so that the file's weight is s·c (+ e for the K-quants, whose minimum term is
// w = d·sc·code − dmin·m = s·c + e).
//
// Definition (every kernel reproduces it bit for bit; the scalar one is the reference):
//   a_u[r, k] = q_x[r, k] + 128 (u8), x_b[r] = Σ_{k in b} q_x (exact integer)
//   dot[r, n, b, h] = Σ_{k in half h of b} a_u·c          (exact integer; one half: all of b)
//   acc[r, n]  = over b in order from 0: fma(float(dot_h), s_b, acc) for each half h, then
//                (K-quants) fma(float(x_b), e_b, acc)
//   corr[n]    = fma(float(128·Σ_{k in b} c), s_b, corr) over b in order, from 0
//   y[r, n]    = fma(acc − corr[n], row_scale[r], base),  base = (accumulate ? y : 0) + bias[n]
// so y = row_scale·Σ_b (s_b·Σ q_x·c + e_b·Σ q_x): the file's weights (e_b rounded once to
// float) times int8 activations.
//
// Shadow outliers (optional, octet::Q4Shadow): then, in order over row r's outliers,
//   y[r, n] = fma(residual, w(n, col), y[r, n]),   w(n, col) = s_b·c + e_b of col's block
// in the reference. The SIMD kernel adds (residual / row_scale)·w to the float sums instead,
// at the K step that holds col's block (the codes and scales are in L1 then), so it agrees
// with the reference up to float rounding, not bit for bit.
#pragma once
#include <cstdint>
#include <vector>

#include "gguf/dequant_impl.h"
#include "kernels/int8_kernels.h"

namespace octet::kernels::q4 {

inline constexpr int64_t kBlock = 32;  // weights per block (a K-quant's sub-block)

enum class Format : uint8_t { Q4_0, Q5_0, Q4_K, Q5_K };
struct FormatInfo {
  int64_t group;       // weights per stored unit: 32 (Q4_0, Q5_0) or a 256-weight super-block
  int64_t unit_bytes;  // bytes per stored unit
  bool five_bit;       // codes in [−16, 15]: int16 sums per 16-k half
  bool has_min;        // K-quant minimum term e_b·x_b
};
constexpr FormatInfo info(Format f) {
  switch (f) {
    case Format::Q4_0: return {32, 18, false, false};
    case Format::Q5_0: return {32, 22, true, false};
    case Format::Q4_K: return {256, 144, false, true};
    case Format::Q5_K: return {256, 176, true, true};
  }
  return {32, 18, false, false};
}
const char* name(Format f);

// A matrix as the GGUF stores it, row by row: row n (output channel n) at rows[n], K/group
// stored units of the format. Rows by pointer: a fused linear's rows come from several
// tensors of the file (q, k, v; gate and up interleaved by panel) without a copy.
struct Q4View {
  const uint8_t* const* rows;
  int64_t n, k;
  Format format = Format::Q4_0;
};
// Row pointers of n consecutive rows of row_bytes each from data.
std::vector<const uint8_t*> consecutive_rows(const uint8_t* data, int64_t n, int64_t row_bytes);
// Bytes of one row of k weights.
int64_t row_bytes(Format f, int64_t k);

// Block b (weights [32·b, 32·b + 32)) of a row: its scale s and minimum term e (0 where the
// format has none) as the definition above; codes (if not null) the 32 c values in k order.
void decode_block(Format f, const uint8_t* row, int64_t b, float& s, float& e, int8_t* codes);

// The stored unit holding block b of a row, and block b's scale and minimum term (inline: the
// SIMD repack calls it per channel and block).
inline const uint8_t* unit_of(const FormatInfo& fi, const uint8_t* row, int64_t b) {
  return row + (b * kBlock / fi.group) * fi.unit_bytes;
}
template <Format F>
inline void block_scales(const uint8_t* unit, int64_t b, float& s, float& e) {
  if constexpr (F == Format::Q4_0 || F == Format::Q5_0) {
    s = gguf::h2f(unit);
    e = 0.0f;
  } else {
    uint8_t sc, m;
    gguf::scale_min_k4(static_cast<int>(b % 8), unit + 4, sc, m);
    s = gguf::h2f(unit) * static_cast<float>(sc);  // as ggml: d·sc, exact in float
    const float mn = gguf::h2f(unit + 2) * static_cast<float>(m);
    e = (F == Format::Q5_K ? 16.0f : 8.0f) * s - mn;  // the one rounding of the definition
  }
}

// Activations: u8 = q_x + 128, row r at data + r·ld (ld ≥ K), one scale per row.
struct Acts {
  const uint8_t* data;
  int64_t ld;
  const float* row_scale;
};

// corr[n] for n in [0, w.n) (the definition above; once per matrix, at load): the CPU's
// best, and the scalar reference and AVX2 version it picks from (equal bit for bit).
void column_offsets(const Q4View& w, float* corr);
void column_offsets_ref(const Q4View& w, float* corr);
void column_offsets_avx2(const Q4View& w, float* corr);

// Rows [m0, m1) × 16-channel panels [p0, p1) of y (ep.y must be set; int32 output is not
// offered). K must be a multiple of the format's group.
// shadow: null, or the outliers to add (above).
using GemmFn = void (*)(const Acts& a, const Q4View& w, const float* corr,
                        const int8::Epilogue& ep, int64_t m0, int64_t m1, int64_t p0, int64_t p1,
                        const Q4Shadow* shadow);
void gemm_ref(const Acts& a, const Q4View& w, const float* corr, const int8::Epilogue& ep,
              int64_t m0, int64_t m1, int64_t p0, int64_t p1, const Q4Shadow* shadow = nullptr);
void gemm_avx2(const Acts& a, const Q4View& w, const float* corr, const int8::Epilogue& ep,
               int64_t m0, int64_t m1, int64_t p0, int64_t p1, const Q4Shadow* shadow = nullptr);

// The one for this CPU (AVX2 or the reference).
GemmFn best_gemm();

}  // namespace octet::kernels::q4
