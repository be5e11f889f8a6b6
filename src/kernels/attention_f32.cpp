// attention_f32: argument checks, work split and scratch for the per-ISA attention tiles
// (kernels/float_impl.h, attn_block / attn_row).
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/float_isa.h"
#include "octet/kernels.h"

namespace octet::kernels {

namespace {
void check_dims(const AttentionDims& d, int64_t n_q, int64_t pos0) {
  auto bad = [](const std::string& what) {
    throw std::invalid_argument("attention_f32: " + what);
  };
  if (d.n_head <= 0 || d.n_head_kv <= 0 || d.head_dim <= 0) bad("non-positive head counts/dim");
  if (d.n_head % d.n_head_kv != 0) bad("n_head not a multiple of n_head_kv");
  if (n_q < 0 || pos0 < 0 || d.window < 0) bad("negative n_q, pos0 or window");
  if (d.n_head_kv > 1 && d.kv_head_stride < (pos0 + n_q) * d.head_dim)
    bad("kv_head_stride smaller than the positions used");
  if (!(d.softcap >= 0.f)) bad("softcap must be >= 0");
}
}  // namespace

void attention_f32(const float* q, int64_t ldq, int64_t n_q, int64_t pos0, const float* k_cache,
                   const float* v_cache, const AttentionDims& d, float* out, int64_t ldo,
                   ThreadPool* pool) {
  check_dims(d, n_q, pos0);
  if (n_q == 0) return;
  const fimpl::FloatKernels& fk = fimpl::active();
  const int64_t group = d.n_head / d.n_head_kv;
  // Decode-like calls (< 3 queries) go row by row; otherwise blocks of attn_bq queries.
  const int64_t bq = n_q < 3 ? 1 : fk.attn_bq;
  const int64_t nb = (n_q + bq - 1) / bq;
  const int64_t max_keys = d.window > 0 ? std::min(d.window, pos0 + n_q) : pos0 + n_q;
  const int64_t per = (fk.attn_scratch_floats(d.head_dim, max_keys) + 15) / 16 * 16;
  const int64_t threads = pool ? pool->size() : 1;
  octet::detail::AlignedVector<float> scratch(static_cast<size_t>(per * threads));
  // Causal blocks get costlier with position: a zig-zag order (0, nb-1, 1, nb-2, ..) gives
  // each thread's contiguous range a balanced mix. Heads are innermost so the heads sharing a
  // kv head (GQA) tend to run back to back on one thread, K/V still in cache.
  parallel_for(pool, nb * d.n_head, 1, [&](int64_t b, int64_t e, int tid) {
    const fimpl::AttnScratch sc{scratch.data() + tid * per, per};
    for (int64_t t = b; t < e; ++t) {
      const int64_t s = t / d.n_head, h = t % d.n_head;
      const int64_t blk = s % 2 == 0 ? s / 2 : nb - 1 - s / 2;
      const int64_t hk = h / group;
      const fimpl::AttnTask task{q, ldq, pos0, k_cache + hk * d.kv_head_stride,
                                 v_cache + hk * d.kv_head_stride, &d, out, ldo, h,
                                 blk * bq, std::min(n_q, (blk + 1) * bq)};
      fk.attn(task, sc);
    }
  });
}

}  // namespace octet::kernels
