// Float kernels used by the full-precision path and by the float processor (norms, RoPE,
// attention, activations). Every optimised kernel has a scalar twin in kernels/ref and is
// chosen at run time from cpu_features().
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "octet/threads.h"

namespace octet::kernels {

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
  std::vector<float> data_;  // layout private to kernels/ (see gemm_f32.cpp)
};

// y has row stride ldy (>= N). Splits N across the pool.
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

// RoPE on one head vector of length head_dim, rotating the first n_rot dims.
// kNormal: adjacent pairs (x[2i], x[2i+1]) (llama); kNeox: halves (x[i], x[i+n_rot/2]).
// theta_i = pos · freq_base^(-2i/n_rot) / freq_scale.
enum class RopeMode { kNormal, kNeox };
void rope_f32(float* x, int64_t head_dim, int64_t n_rot, int64_t pos, float freq_base,
              float freq_scale, RopeMode mode);

}  // namespace octet::kernels

namespace octet::kernels {
// RoPE with precomputed cos/sin for one position (n_rot/2 entries each).
void rope_f32_table(float* x, int64_t n_rot, const float* cos, const float* sin, RopeMode mode);
// Fills cos/sin (n_rot/2 each) for a position.
void rope_table(int64_t pos, int64_t n_rot, float freq_base, float freq_scale, float* cos,
                float* sin);
}  // namespace octet::kernels
