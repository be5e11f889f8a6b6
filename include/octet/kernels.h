// Float kernels used by the full-precision path and by the float processor (norms, RoPE,
// attention, activations). Every optimised kernel has a scalar twin in kernels/ref and is
// chosen at run time from cpu_features().
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#include "octet/aligned.h"
#include "octet/threads.h"

namespace octet::kernels {

// ---- ISA selection. Every float kernel below dispatches on the process-wide choice, which
// defaults to the best the CPU has (cpu_features(), so OCTET_ISA=ref|avx2 caps it). Tests and
// benchmarks force a narrower one with set_float_isa; not meant to be flipped while kernels run.
enum class FloatIsa { kAuto, kScalar, kAvx2, kAvx512 };
const char* float_isa_name(FloatIsa isa);
// Returns false (and changes nothing) if the CPU lacks `isa`.
bool set_float_isa(FloatIsa isa);
FloatIsa float_isa();  // the concrete ISA now in use (never kAuto)

// Runs `iters` steps of a register-only FMA loop on the active ISA (independent chains,
// enough to cover the FMA latency) and returns the flops done: timing it gives the machine's
// FP32 peak for the efficiency figures of `octet kbench-f32`.
double fp32_fma_loop(int64_t iters);


// ---- GEMM: y[M, N] = x[M, K] · W[N, K]^T  (W row-major, one output channel per row, as a
// GGUF matrix with dims {K, N} is stored). Weights are packed once into the kernel's layout.
class PackedF32 {
 public:
  PackedF32() = default;
  // Packs W [N, K]; keeps no reference to w.
  PackedF32(const float* w, int64_t n, int64_t k);
  int64_t n() const { return n_; }
  int64_t k() const { return k_; }
  size_t bytes() const { return data_.size() * sizeof(float); }
  // Row j of W (unpacked), for tests and debugging.
  void unpack_row(int64_t j, float* out) const;
  const float* data() const { return data_.data(); }

 private:
  int64_t n_ = 0, k_ = 0;
  // Panel layout (docs/kernels-f32.md): W split into ceil(N/16) panels of 16 output
  // channels; panel p is K rows of 16 floats, [p][k][16], channels past N zero.
  octet::detail::AlignedVector<float> data_;
};

// y has row stride ldy (>= N), x is dense [M, K]. Splits N (and M when N is small) across
// the pool.
void gemm_f32(const float* x, int64_t m, const PackedF32& w, float* y, int64_t ldy,
              ThreadPool* pool);
// Scalar reference on an unpacked W [N, K] (double accumulation).
void gemm_f32_ref(const float* x, int64_t m, const float* w, int64_t n, int64_t k, float* y,
                  int64_t ldy);

// ---- Vector ops (n elements, in place where out == x is allowed).
float dot_f32(const float* a, const float* b, int64_t n);
void axpy_f32(float* y, float a, const float* x, int64_t n);  // y += a·x
void add_f32(float* y, const float* x, int64_t n);           // y += x
void scale_f32(float* y, float a, int64_t n);
// out = x / sqrt(mean(x²) + eps) * w   (w may be null: no weight)
void rmsnorm_f32(const float* x, const float* w, float* out, int64_t n, float eps);
void softmax_f32(float* x, int64_t n);  // in place, max-subtracted
void silu_mul_f32(float* gate, const float* up, int64_t n);      // gate = silu(gate)·up
void gelu_tanh_mul_f32(float* gate, const float* up, int64_t n); // gate = gelu_tanh(gate)·up
// out = silu(gate)·up, out = gelu_tanh(gate)·up (out may be gate).
void silu_mul_f32(const float* gate, const float* up, float* out, int64_t n);
void gelu_tanh_mul_f32(const float* gate, const float* up, float* out, int64_t n);
// The same on panel-interleaved rows: gu = 16 gate values, their 16 up values, the next 16
// gate values, ... (n a multiple of 16); bit for bit the two above on the halves.
void silu_mul_pairs_f32(const float* gu, float* out, int64_t n);
void gelu_tanh_mul_pairs_f32(const float* gu, float* out, int64_t n);

// RoPE on one head vector of length head_dim, rotating the first n_rot dims.
// kNormal: adjacent pairs (x[2i], x[2i+1]) (llama); kNeox: halves (x[i], x[i+n_rot/2]).
// theta_i = pos · freq_base^(-2i/n_rot) / freq_scale.
enum class RopeMode { kNormal, kNeox };
void rope_f32(float* x, int64_t head_dim, int64_t n_rot, int64_t pos, float freq_base,
              float freq_scale, RopeMode mode);

// ---- Attention over a KV cache (chunked prefill and decode).
enum class AttnBf16 : uint8_t { kOff, kPV, kAll };
struct AttentionDims {
  int64_t n_head = 0, n_head_kv = 0, head_dim = 0;
  int64_t kv_head_stride = 0;  // floats between kv heads in the cache (= n_ctx·head_dim)
  int64_t window = 0;          // 0: full causal; else a query at p sees keys in (p-window, p]
  float scale = 1.f;           // applied to q·k
  float softcap = 0.f;         // 0: none; else s = softcap·tanh(s/softcap) after scaling
  // Calls of more than kAttnRowQueries queries (prefill): products on bf16 operands, at
  // twice the float rate (vdpbf16ps; scores, softmax and sums stay float). kPV: only P·V
  // (probabilities and V rounded to bf16); kAll: Q·K too (Q·scale and K rounded). Only where
  // attention_bf16_available(head_dim); else the float path runs. Calls of up to
  // kAttnRowQueries queries always run in float.
  AttnBf16 bf16 = AttnBf16::kOff;
};
// Whether AttentionDims::bf16 takes effect here: AVX512-BF16, AVX-512 float kernels active,
// head_dim a multiple of 32.
bool attention_bf16_available(int64_t head_dim);
// q row i (the query at position pos0+i, row stride ldq) holds n_head heads of head_dim.
// k/v cache of one layer: [kv_head][pos][head_dim], positions 0..pos0+n_q-1 written.
// GQA: head h reads kv head h / (n_head/n_head_kv). out row i (stride ldo) gets n_head heads.
// Flash-style online softmax over key tiles, parallel over (head, query block).
// Throws std::invalid_argument on inconsistent dims.
void attention_f32(const float* q, int64_t ldq, int64_t n_q, int64_t pos0, const float* k_cache,
                   const float* v_cache, const AttentionDims& d, float* out, int64_t ldo,
                   ThreadPool* pool);
// Scalar reference (two-pass softmax, double accumulation).
void attention_f32_ref(const float* q, int64_t ldq, int64_t n_q, int64_t pos0,
                       const float* k_cache, const float* v_cache, const AttentionDims& d,
                       float* out, int64_t ldo);

// ---- KV cache in reduced precision (docs/decode.md, "KV cache").
// F16: IEEE half per element. INT8: per row (one token of one kv head, head_dim values) a
// float scale max|x|/127 and round-to-nearest int8 codes.
enum class KvType : uint8_t { kF32 = 0, kF16 = 1, kInt8 = 2 };
const char* kv_type_name(KvType t);
// "f32" | "f16" | "int8"; false if unknown.
bool parse_kv_type(const char* s, KvType* t);
inline size_t kv_elem_bytes(KvType t) { return t == KvType::kF32 ? 4 : t == KvType::kF16 ? 2 : 1; }
// Stores one row of n floats as `t` at dst (n elements); int8 writes the row's scale.
void kv_store_row(KvType t, const float* x, int64_t n, void* dst, float* scale);
// Scalar: row back to floats (what attention reads).
void kv_load_row_ref(KvType t, const void* src, float scale, int64_t n, float* out);

// One layer's K or V cache as attention reads it: [kv_head][slot][head_dim] elements of
// `type` (+ for INT8 a [kv_head][slot] float scale). Position p lives in slot p, or in slot
// p % ring when ring > 0 (a sliding-window layer keeping only its last `ring` positions).
struct KvView {
  KvType type = KvType::kF32;
  const void* data = nullptr;
  const float* scale = nullptr;  // INT8 only
  int64_t head_stride = 0;       // elements (and scales: head_stride / head_dim) per kv head
  int64_t ring = 0;
};
// Calls with at most this many queries compute every query row exactly as a call with that
// query alone would (row path): batched verification of draft tokens == one-by-one decode.
inline constexpr int64_t kAttnRowQueries = 16;
// attention_f32 over a KvView (d.kv_head_stride is ignored; the view's is used). With a ring,
// every key a query of this call sees must still be there: min(pos0 + n_q, window + n_q - 1)
// <= ring (throws std::invalid_argument otherwise). K/V tiles are converted to float in the
// kernel (F16C / AVX-512 vcvtph2ps, int8 widen · scale) just before use.
void attention(const float* q, int64_t ldq, int64_t n_q, int64_t pos0, const KvView& k,
               const KvView& v, const AttentionDims& d, float* out, int64_t ldo, ThreadPool* pool);
// Reference: rows converted with kv_load_row_ref into a dense float cache, then
// attention_f32_ref.
void attention_ref(const float* q, int64_t ldq, int64_t n_q, int64_t pos0, const KvView& k,
                   const KvView& v, const AttentionDims& d, float* out, int64_t ldo);

}  // namespace octet::kernels

namespace octet::kernels {
// RoPE with precomputed cos/sin for one position (n_rot/2 entries each).
void rope_f32_table(float* x, int64_t n_rot, const float* cos, const float* sin, RopeMode mode);
// Fills cos/sin (n_rot/2 each) for a position.
void rope_table(int64_t pos, int64_t n_rot, float freq_base, float freq_scale, float* cos,
                float* sin);
}  // namespace octet::kernels
