// FP32 GEMM: weight packing and the threading around the per-ISA blocked kernels
// (kernels/float_impl.h; layout and blocking in docs/kernels-f32.md).
#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "kernels/float_isa.h"
#include "octet/kernels.h"

namespace octet::kernels {

using fimpl::kPanel;

PackedF32::PackedF32(const float* w, int64_t n, int64_t k) : n_(n), k_(k) {
  if (n < 0 || k < 0) throw std::invalid_argument("PackedF32: negative shape");
  const int64_t panels = (n + kPanel - 1) / kPanel;
  data_.assign(static_cast<size_t>(panels * k * kPanel), 0.f);
  for (int64_t p = 0; p < panels; ++p) {
    float* dst = data_.data() + p * k * kPanel;
    const int64_t cols = std::min(kPanel, n - p * kPanel);
    for (int64_t c = 0; c < cols; ++c) {
      const float* src = w + (p * kPanel + c) * k;
      for (int64_t kk = 0; kk < k; ++kk) dst[kk * kPanel + c] = src[kk];
    }
  }
}

void PackedF32::unpack_row(int64_t j, float* out) const {
  const float* src = data_.data() + (j / kPanel) * k_ * kPanel + j % kPanel;
  for (int64_t kk = 0; kk < k_; ++kk) out[kk] = src[kk * kPanel];
}

void gemm_f32(const float* x, int64_t m, const PackedF32& w, float* y, int64_t ldy,
              ThreadPool* pool) {
  const int64_t n = w.n(), k = w.k();
  if (m <= 0 || n <= 0) return;
  if (ldy < n) throw std::invalid_argument("gemm_f32: ldy < N");
  const fimpl::FloatKernels& fk = fimpl::active();
  const int64_t panels = (n + kPanel - 1) / kPanel;
  const int64_t groups = (panels + fk.gemm_np - 1) / fk.gemm_np;
  const int64_t threads = pool ? pool->size() : 1;
  if (threads <= 1) {
    fk.gemm(x, k, 0, m, w.data(), n, k, 0, panels, y, ldy);
    return;
  }
  // Enough tasks for ~4 per thread: split N by microkernel groups, and M too when N alone
  // gives too few (small N with a big prefill chunk).
  const int64_t want = 4 * threads;
  const int64_t row_tiles = (m + fk.gemm_mr - 1) / fk.gemm_mr;
  const int64_t m_chunks = groups >= want ? 1 : std::min(row_tiles, (want + groups - 1) / groups);
  const int64_t m_step = (row_tiles + m_chunks - 1) / m_chunks * fk.gemm_mr;
  if (m_chunks == 1) {
    parallel_for(pool, groups, 1, [&](int64_t b, int64_t e, int) {
      fk.gemm(x, k, 0, m, w.data(), n, k, b * fk.gemm_np, std::min(panels, e * fk.gemm_np), y, ldy);
    });
    return;
  }
  parallel_for(pool, groups * m_chunks, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t g = t / m_chunks, mc = t % m_chunks;
      const int64_t m0 = mc * m_step, m1 = std::min(m, m0 + m_step);
      if (m0 >= m1) continue;
      fk.gemm(x, k, m0, m1, w.data(), n, k, g * fk.gemm_np, std::min(panels, (g + 1) * fk.gemm_np),
              y, ldy);
    }
  });
}

}  // namespace octet::kernels
