// FP32 GEMM. Placeholder layout: W kept row-major [N, K]; the optimised packed kernels
// replace this (see kernels/x86/).
#include <cstring>

#include "kernels/ref/float_ref.h"
#include "octet/kernels.h"

namespace octet::kernels {

PackedF32::PackedF32(const float* w, int64_t n, int64_t k) : n_(n), k_(k), data_(w, w + n * k) {}

void PackedF32::unpack_row(int64_t j, float* out) const {
  std::memcpy(out, data_.data() + j * k_, sizeof(float) * k_);
}

void gemm_f32(const float* x, int64_t m, const PackedF32& w, float* y, int64_t ldy,
              ThreadPool* pool) {
  const int64_t k = w.k();
  parallel_for(pool, w.n(), 16, [&](int64_t b, int64_t e, int) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = b; j < e; ++j)
        y[i * ldy + j] = ref::dot_f32(x + i * k, w.data() + j * k, k);
  });
}

}  // namespace octet::kernels
