// Scalar references for the float kernels: the ground truth the optimised ones are tested
// against, and the fallback on CPUs without AVX2.
#pragma once
#include <cstdint>

#include "octet/kernels.h"

namespace octet::kernels::ref {
float dot_f32(const float* a, const float* b, int64_t n);
void axpy_f32(float* y, float a, const float* x, int64_t n);
void add_f32(float* y, const float* x, int64_t n);
void scale_f32(float* y, float a, int64_t n);
void rmsnorm_f32(const float* x, const float* w, float* out, int64_t n, float eps);
void softmax_f32(float* x, int64_t n);
void silu_mul_f32(float* gate, const float* up, int64_t n);
void gelu_tanh_mul_f32(float* gate, const float* up, int64_t n);
void rope_f32_table(float* x, int64_t n_rot, const float* cos, const float* sin, RopeMode mode);
}  // namespace octet::kernels::ref
