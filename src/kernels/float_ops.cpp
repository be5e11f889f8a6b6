// ISA selection and run-time dispatch of the float vector ops. The per-ISA tables come from
// kernels/float_impl.h; the scalar references stay in kernels/ref as the tests' ground truth.
#include <atomic>
#include <stdexcept>
#include <string>

#include "kernels/float_isa.h"
#include "octet/cpu.h"
#include "octet/kernels.h"

namespace octet::kernels {

namespace {
bool isa_available(FloatIsa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case FloatIsa::kAuto:
    case FloatIsa::kScalar: return true;
    case FloatIsa::kAvx2: return f.avx2 && f.fma && f.f16c;
    case FloatIsa::kAvx512: return f.avx512f && f.avx2 && f.fma && f.f16c;
  }
  return false;
}

FloatIsa best_isa() {
  if (isa_available(FloatIsa::kAvx512)) return FloatIsa::kAvx512;
  if (isa_available(FloatIsa::kAvx2)) return FloatIsa::kAvx2;
  return FloatIsa::kScalar;
}

std::atomic<const fimpl::FloatKernels*> g_active{nullptr};

const fimpl::FloatKernels& table_for(FloatIsa isa) {
  switch (isa) {
    case FloatIsa::kAvx512: return fimpl::kernels_avx512();
    case FloatIsa::kAvx2: return fimpl::kernels_avx2();
    default: return fimpl::kernels_scalar();
  }
}
}  // namespace

const char* float_isa_name(FloatIsa isa) {
  switch (isa) {
    case FloatIsa::kAuto: return "auto";
    case FloatIsa::kScalar: return "scalar";
    case FloatIsa::kAvx2: return "avx2";
    case FloatIsa::kAvx512: return "avx512";
  }
  return "?";
}

bool set_float_isa(FloatIsa isa) {
  if (!isa_available(isa)) return false;
  g_active.store(&table_for(isa == FloatIsa::kAuto ? best_isa() : isa), std::memory_order_release);
  return true;
}

FloatIsa float_isa() { return fimpl::active().isa; }

double fp32_fma_loop(int64_t iters) { return fimpl::active().fma_loop(iters); }

namespace fimpl {
const FloatKernels& active() {
  const FloatKernels* t = g_active.load(std::memory_order_acquire);
  if (!t) {
    t = &table_for(best_isa());
    g_active.store(t, std::memory_order_release);
  }
  return *t;
}
}  // namespace fimpl

float dot_f32(const float* a, const float* b, int64_t n) { return fimpl::active().dot(a, b, n); }
void axpy_f32(float* y, float a, const float* x, int64_t n) { fimpl::active().axpy(y, a, x, n); }
void add_f32(float* y, const float* x, int64_t n) { fimpl::active().add(y, x, n); }
void scale_f32(float* y, float a, int64_t n) { fimpl::active().scale(y, a, n); }
void rmsnorm_f32(const float* x, const float* w, float* out, int64_t n, float eps) {
  fimpl::active().rmsnorm(x, w, out, n, eps);
}
void softmax_f32(float* x, int64_t n) { fimpl::active().softmax(x, n); }
void silu_mul_f32(float* gate, const float* up, int64_t n) {
  fimpl::active().silu_mul(gate, up, gate, n);
}
void gelu_tanh_mul_f32(float* gate, const float* up, int64_t n) {
  fimpl::active().gelu_tanh_mul(gate, up, gate, n);
}
void silu_mul_f32(const float* gate, const float* up, float* out, int64_t n) {
  fimpl::active().silu_mul(gate, up, out, n);
}
void gelu_tanh_mul_f32(const float* gate, const float* up, float* out, int64_t n) {
  fimpl::active().gelu_tanh_mul(gate, up, out, n);
}
namespace {
void check_pairs(int64_t n) {
  if (n < 0 || n % 16 != 0)
    throw std::invalid_argument("gated activation on interleaved rows: n = " +
                                std::to_string(n) + " is not a multiple of 16");
}
}  // namespace
void silu_mul_pairs_f32(const float* gu, float* out, int64_t n) {
  check_pairs(n);
  fimpl::active().silu_mul_pairs(gu, out, n);
}
void gelu_tanh_mul_pairs_f32(const float* gu, float* out, int64_t n) {
  check_pairs(n);
  fimpl::active().gelu_tanh_mul_pairs(gu, out, n);
}
void rope_f32_table(float* x, int64_t n_rot, const float* cos, const float* sin, RopeMode mode) {
  fimpl::active().rope_table(x, n_rot, cos, sin, mode);
}

}  // namespace octet::kernels
