// Portable float kernels: the templates of kernels/float_impl.h with a one-lane "vector", so
// the scalar fallback runs exactly the same blocking and online-softmax code as the SIMD ones.
#include <cstring>

#include "kernels/float_isa.h"
#include "octet/half.h"

namespace octet::kernels::fimpl {
namespace {

struct Scalar {
  using V = float;
  static constexpr int W = 1;
  static constexpr int64_t kNP = 1, kMR = 4, kKC = 256;
  static constexpr int64_t kBQ = 4, kNQ = 4, kSMR = 4, kPVR = 2, kPVC = 8;
  static V zero() { return 0.f; }
  static V set1(float f) { return f; }
  static V load(const float* p) { return *p; }
  static V load_u(const float* p) { return *p; }
  static V load_h(const uint16_t* p) { return fp16_to_fp32(*p); }
  static void store(float* p, V v) { *p = v; }
  static void store_u(float* p, V v) { *p = v; }
  static V loadn(const float*, int) { return 0.f; }  // n < W = 1: nothing to load
  static void storen(float*, V, int) {}
  static V fmadd(V a, V b, V c) { return a * b + c; }
  static V add(V a, V b) { return a + b; }
  static V sub(V a, V b) { return a - b; }
  static V mul(V a, V b) { return a * b; }
  static V div(V a, V b) { return a / b; }
  static V max(V a, V b) { return a > b ? a : b; }  // maxps semantics: NaN → b
  static V min(V a, V b) { return a < b ? a : b; }
  static V round(V a) { return __builtin_rintf(a); }
  static V floor(V a) { return __builtin_floorf(a); }
  static V pow2i(V n) {
    if (!(n == n)) return n;  // NaN (float→int of NaN is undefined)
    const int32_t e = (static_cast<int32_t>(n) + 127) << 23;
    float f;
    std::memcpy(&f, &e, sizeof f);
    return f;
  }
  static float hsum(V v) { return v; }
  static float hmax(V v) { return v; }
  static V iota() { return 0.f; }
  static V sel_le(V a, V b, V x, V y) { return a <= b ? x : y; }
  static void cvt_f16(const uint16_t* s, float* d, int64_t n) {
    for (int64_t i = 0; i < n; ++i) d[i] = fp16_to_fp32(s[i]);
  }
  static void to_f16(const float* s, uint16_t* d, int64_t n) {
    for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_fp16(s[i]);
  }
  static void cvt_i8(const int8_t* s, float scale, float* d, int64_t n) {
    for (int64_t i = 0; i < n; ++i) d[i] = scale * static_cast<float>(s[i]);
  }
};

#include "kernels/float_impl.h"

}  // namespace

const FloatKernels& kernels_scalar() {
  static const FloatKernels t = make_table<Scalar>(FloatIsa::kScalar);
  return t;
}

}  // namespace octet::kernels::fimpl
