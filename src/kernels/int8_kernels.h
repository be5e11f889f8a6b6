// Internal interface of the int8 kernels (ref, AVX2, AVX-512 VNNI): plain views of the packed
// operands (layouts documented in octet/int8.h) and the per-ISA entry points. The public API
// and the threading live in quant/int8.cpp.
#pragma once
#include <cmath>
#include <cstdint>

#include "octet/int8.h"

namespace octet::kernels::int8 {

struct AView {
  const uint8_t* data;  // value + offset; [M][ld] bytes, or row blocks (Int8Activations)
  int64_t m, ld;
  const float* row_scale;  // [M]
};

struct WView {
  const int8_t* data;  // column blocks of up to 3 panels: [block][k4][panels in block][16][4]
  int64_t n, k4, panels;
  const float* scale;    // [panels·16], zero padded
  const int32_t* corr;   // [panels·16] 128·Σ_k q_w
  // Panel p's first group; group g is at panel(p) + g·step(p).
  const int8_t* panel(int64_t p) const {
    return data + (p / kInt8PanelsPerBlock) * kInt8PanelsPerBlock * k4 * 64 +
           (p % kInt8PanelsPerBlock) * 64;
  }
  int64_t step(int64_t p) const {
    const int64_t first = p / kInt8PanelsPerBlock * kInt8PanelsPerBlock;
    return (panels - first < kInt8PanelsPerBlock ? panels - first : kInt8PanelsPerBlock) * 64;
  }
};

// What to do with the finished int32 tile.
struct Epilogue {
  float* y = nullptr;  // float output (null: int32 output)
  int32_t* y32 = nullptr;
  int64_t ldy = 0;
  const float* bias = nullptr;
  bool accumulate = false;
};

// Computes rows [m0, m1) × panels [p0, p1) of the output.
using GemmFn = void (*)(const AView& a, const WView& w, const Epilogue& ep, int64_t m0,
                        int64_t m1, int64_t p0, int64_t p1);
// Quantises rows [r0, r1) of x (x is row r0; row stride ldx) into dst (the kernel's
// activation layout, K padded to ld = 4·k4 with the offset) using inv = 1/s; appends
// outliers (if out != null) in row-major order.
using QuantFn = void (*)(const float* x, int64_t ldx, int64_t k, float inv, float s,
                         uint8_t* dst, int64_t ld, int64_t r0, int64_t r1, OutlierList* out);
// Rows [r0, r0 + row_block) (a whole row block of the kernel's layout, r0 a multiple of it),
// row i quantised with its own inverse inv[i], each mapping its row within ±127 (no
// outliers): the codes QuantFn gives each row alone with that inverse.
using QuantFitFn = void (*)(const float* x, int64_t ldx, int64_t k, const float* inv,
                            uint8_t* dst, int64_t ld, int64_t r0);
// max_k |x[row, k]| for rows [r0, r1) into amax[row - r0].
using AbsMaxFn = void (*)(const float* x, int64_t ldx, int64_t k, int64_t r0, int64_t r1,
                          float* amax);

struct Kernels {
  GemmFn gemm;
  QuantFn quant;
  AbsMaxFn absmax;
  uint8_t offset;      // added to q_x when stored
  int64_t mr;          // rows per microkernel (M split granularity)
  int64_t row_block;   // activation layout (Int8Activations::row_block)
  int64_t panel_grain; // N split granularity in panels (whole microkernel blocks)
  QuantFitFn quant_fit = nullptr;  // row blocks (row_block > 0) of rows with their own scales
};

const Kernels& kernels_ref();
const Kernels& kernels_avx2();
const Kernels& kernels_vnni();

// Shadow path: out[j] = s_w[n]·q_w[n,k] for n = 16·p0 + j, panels [p0, p1) (padding lanes give
// 0). AVX-512: one 64-byte load per panel (its 16 lanes hold column k at byte k % 4).
void dequant_column_ref(const WView& w, int64_t k, int64_t p0, int64_t p1, float* out);
void dequant_column_avx2(const WView& w, int64_t k, int64_t p0, int64_t p1, float* out);
void dequant_column_avx512(const WView& w, int64_t k, int64_t p0, int64_t p1, float* out);
// Shadow path for activation rows [m0, m1), row r's outliers being e[row_begin[r] ..
// row_begin[r+1]) in order, and each output n in [16·p0, min(16·p1, N)):
//   h = Σ a·hot[(n/16)·hot_stride + n%16]  over entries with float weights (fma chain from 0)
//   c = Σ a·(q_w[n, col]·2^24)  over the others, int8 weights read in place (fma chain
//       from 0; q·2^24 is the weight byte moved to the top of a 32-bit lane, converted
//       without the arithmetic shift back: one vector op less per entry and panel)
//   y[r, n] = fma(c, s_w[n]·2^-24, y[r, n] + h)
// (The powers of two cancel exactly: the same as Σ a·q and s_w while no product leaves the
// normal float range.)
// The sums stay in registers across a row's outliers: y is read and written once per row.
// Hot weights: panel p of every hot channel in [hot_base + p·hot_stride, + hot_stride).
// A WView with data null (only n and panels set) has no int8 weights: every entry is hot,
// and y[r, n] += h. The y argument is the output's element (m0, 16·p0): y[r, n] lies at
// y + (r − m0)·ldy + n − 16·p0 (a block of the output, in place or in a per-thread tile).
inline constexpr float kShadowQScale = 16777216.0f;  // 2^24
// vpshufb controls for it: byte b of each 32-bit lane to the lane's top byte, the rest zero.
// vpshufb indexes inside 16-byte lanes, so a ymm uses the first 32 bytes of the same row.
alignas(64) inline constexpr struct ByteToTop {
  int8_t m[4][64];
  constexpr ByteToTop() : m{} {
    for (int b = 0; b < 4; ++b)
      for (int i = 0; i < 64; ++i) m[b][i] = i % 4 == 3 ? static_cast<int8_t>(i % 16 - 3 + b) : -128;
  }
} kByteToTopTable;
inline constexpr const int8_t (&kByteToTop)[4][64] = kByteToTopTable.m;
void shadow_rows_ref(const WView& w, const ShadowEntry* e, const int32_t* row_begin, int64_t m0,
                     int64_t m1, int64_t p0, int64_t p1, const float* hot_base,
                     int64_t hot_stride, float* y, int64_t ldy);
void shadow_rows_avx2(const WView& w, const ShadowEntry* e, const int32_t* row_begin, int64_t m0,
                      int64_t m1, int64_t p0, int64_t p1, const float* hot_base,
                      int64_t hot_stride, float* y, int64_t ldy);
void shadow_rows_avx512(const WView& w, const ShadowEntry* e, const int32_t* row_begin,
                        int64_t m0, int64_t m1, int64_t p0, int64_t p1, const float* hot_base,
                        int64_t hot_stride, float* y, int64_t ldy);

// Weight quantisation at load, one row of W (k floats): the first index whose value is not
// finite, or -1, and max_k |w[k]| (weight_row_check); then q = quantize_one(w[i], inv) stored
// at dst[(i / 4)·stride + i % 4] (the packed layout of one channel, weight_row_quant).
int64_t weight_row_check_ref(const float* w, int64_t k, float* amax);
int64_t weight_row_check_avx2(const float* w, int64_t k, float* amax);
int64_t weight_row_check_avx512(const float* w, int64_t k, float* amax);
void weight_row_quant_ref(const float* w, int64_t k, float inv, int8_t* dst, int64_t stride);
void weight_row_quant_avx2(const float* w, int64_t k, float inv, int8_t* dst, int64_t stride);
void weight_row_quant_avx512(const float* w, int64_t k, float inv, int8_t* dst, int64_t stride);

// Peak-throughput probe (AVX-512 VNNI CPUs only): `iters` rounds of 24 independent vpdpbusd
// (enough to cover 5-cycle latency × 2 ports), returns the multiply-adds done (64 each).
// Benchmarks time it to get the machine's int8 roof.
uint64_t vnni_peak_loop(int64_t iters);
// The AVX2 kernel's probe: `iters` rounds of 12 independent vpmaddwd + vpaddd (16 int16
// multiply-adds each); returns the multiply-adds done.
uint64_t avx2_peak_loop(int64_t iters);

// ---- Scalar definitions every kernel reproduces bit for bit.

// Clamp then round half to even; minps/maxps semantics, so NaN becomes 127.
inline int32_t quantize_one(float x, float inv) {
  float t = x * inv;
  t = t < 127.0f ? t : 127.0f;
  t = t > -127.0f ? t : -127.0f;
  return static_cast<int32_t>(std::nearbyint(t));
}
inline bool is_outlier(float x, float inv) { return std::fabs(x * inv) > 127.0f; }
inline float outlier_residual(float x, float s) {
  const float clip = 127.0f * s;
  return x > 0 ? x - clip : x + clip;
}
inline float epilogue_one(int32_t acc, float row_scale, float w_scale, float prev,
                          const float* bias, int64_t n, bool accumulate) {
  float base = accumulate ? prev : 0.0f;
  if (bias) base = base + bias[n];
  return std::fma(static_cast<float>(acc), row_scale * w_scale, base);
}

}  // namespace octet::kernels::int8
