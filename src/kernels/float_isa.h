// Internal interface of the float kernels: one table of entry points per ISA (scalar, AVX2+FMA,
// AVX-512), all generated from the same templates in kernels/x86/float_impl.h. Threading,
// scratch allocation and argument checks live in the generic TUs (gemm_f32.cpp,
// float_ops.cpp, attention_f32.cpp), so ISA TUs never instantiate std containers.
#pragma once
#include <cstdint>
#include <type_traits>  // float_impl.h: dot over floats or halves

#include "octet/kernels.h"

namespace octet::kernels::fimpl {

// Packed W: panel p of 16 channels at w + p·k·16, [k][16].
inline constexpr int64_t kPanel = 16;

// One kv head of a K or V cache: rows [slot][head_dim] of `type` (KvView, kernels.h).
struct KvHead {
  const void* p;
  const float* scale;  // INT8: per-slot scales
  KvType type;
  int64_t ring;        // 0: position = slot; else slot = position % ring
};

// One attention work item: queries [i0, i1) of heads [h0, h1), which all read the same kv
// head (a GQA group or part of one).
struct AttnTask {
  const float* q;
  int64_t ldq;
  int64_t pos0;  // position of query row 0
  KvHead k, v;
  const AttentionDims* d;
  float* out;
  int64_t ldo;
  int64_t h0, h1, i0, i1;
};
// Per-thread scratch for attention, sized by attn_scratch_floats().
struct AttnScratch {
  float* buf;
  int64_t n;
};

struct FloatKernels {
  FloatIsa isa;
  // y[rows m0..m1, panels p0..p1] of x[M,K]·W^T, x row stride ldx.
  void (*gemm)(const float* x, int64_t ldx, int64_t m0, int64_t m1, const float* w, int64_t n,
               int64_t k, int64_t p0, int64_t p1, float* y, int64_t ldy);
  int64_t gemm_np;  // panels per microkernel tile (N split granularity)
  int64_t gemm_mr;  // rows per microkernel tile (M split granularity)
  float (*dot)(const float*, const float*, int64_t);
  void (*axpy)(float*, float, const float*, int64_t);
  void (*add)(float*, const float*, int64_t);
  void (*scale)(float*, float, int64_t);
  void (*rmsnorm)(const float*, const float*, float*, int64_t, float);
  void (*softmax)(float*, int64_t);
  void (*silu_mul)(const float* g, const float* u, float* out, int64_t);  // out may be g
  void (*to_f16)(const float* src, uint16_t* dst, int64_t n);  // round to nearest even
  void (*gelu_tanh_mul)(const float* g, const float* u, float* out, int64_t);
  // The same two on panel-interleaved gate/up rows (16 gate values, their 16 up values, ...).
  void (*silu_mul_pairs)(const float* gu, float* out, int64_t n);
  void (*gelu_tanh_mul_pairs)(const float* gu, float* out, int64_t n);
  void (*rope_table)(float*, int64_t, const float*, const float*, RopeMode);
  void (*attn)(const AttnTask&, const AttnScratch&);
  int64_t attn_bq;  // queries per attention block
  // Floats of scratch one attention task needs (head_dim, keys it may see, heads per task).
  int64_t (*attn_scratch_floats)(int64_t head_dim, int64_t n_keys, int64_t heads);
  double (*fma_loop)(int64_t iters);  // returns flops done
};

// Attention's block path with bf16 operands (x86/attn_bf16.cpp): the task function (tasks of
// fewer than 3 queries go to the float row path) and its scratch size, like FloatKernels'.
struct Bf16Attention {
  void (*attn)(const AttnTask&, const AttnScratch&);
  int64_t (*attn_scratch_floats)(int64_t head_dim, int64_t n_keys, int64_t heads);
  // The probabilities' exp (x <= 0) over n values: exposed for its own accuracy test, which
  // the attention tests cannot give at bf16 resolution.
  void (*prob_exp)(const float* x, float* out, int64_t n);
};
// Null unless the CPU has AVX512-BF16, the active float ISA is AVX-512 and head_dim is a
// multiple of 32.
const Bf16Attention* attn_bf16(int64_t head_dim);

const FloatKernels& kernels_scalar();
const FloatKernels& kernels_avx2();
const FloatKernels& kernels_avx512();
// The table of the active ISA (float_isa()).
const FloatKernels& active();

}  // namespace octet::kernels::fimpl
