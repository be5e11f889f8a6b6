// Run-time dispatch of the float vector ops. Optimised variants live in kernels/x86/ and are
// picked from cpu_features(); the scalar references are the fallback.
#include "kernels/ref/float_ref.h"
#include "octet/kernels.h"

namespace octet::kernels {

float dot_f32(const float* a, const float* b, int64_t n) { return ref::dot_f32(a, b, n); }
void axpy_f32(float* y, float a, const float* x, int64_t n) { ref::axpy_f32(y, a, x, n); }
void add_f32(float* y, const float* x, int64_t n) { ref::add_f32(y, x, n); }
void scale_f32(float* y, float a, int64_t n) { ref::scale_f32(y, a, n); }
void rmsnorm_f32(const float* x, const float* w, float* out, int64_t n, float eps) {
  ref::rmsnorm_f32(x, w, out, n, eps);
}
void softmax_f32(float* x, int64_t n) { ref::softmax_f32(x, n); }
void silu_mul_f32(float* gate, const float* up, int64_t n) { ref::silu_mul_f32(gate, up, n); }
void gelu_tanh_mul_f32(float* gate, const float* up, int64_t n) {
  ref::gelu_tanh_mul_f32(gate, up, n);
}
void rope_f32_table(float* x, int64_t n_rot, const float* cos, const float* sin, RopeMode mode) {
  ref::rope_f32_table(x, n_rot, cos, sin, mode);
}

}  // namespace octet::kernels
