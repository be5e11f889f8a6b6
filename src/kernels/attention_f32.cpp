// attention / attention_f32: argument checks, work split and scratch for the per-ISA attention
// tiles; KV row storage (F32/F16/INT8).
// (kernels/float_impl.h, attn_block / attn_row).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/float_isa.h"
#include "octet/half.h"
#include "octet/kernels.h"

namespace octet::kernels {

namespace {
void check_dims(const AttentionDims& d, int64_t n_q, int64_t pos0, const KvView& k,
                const KvView& v) {
  auto bad = [](const std::string& what) {
    throw std::invalid_argument("attention: " + what);
  };
  if (d.n_head <= 0 || d.n_head_kv <= 0 || d.head_dim <= 0) bad("non-positive head counts/dim");
  if (d.n_head % d.n_head_kv != 0) bad("n_head not a multiple of n_head_kv");
  if (n_q < 0 || pos0 < 0 || d.window < 0) bad("negative n_q, pos0 or window");
  if (!(d.softcap >= 0.f)) bad("softcap must be >= 0");
  for (const KvView* kv : {&k, &v}) {
    if (!kv->data) bad("no cache data");
    if (kv->type == KvType::kInt8 && !kv->scale) bad("int8 cache without scales");
    if (kv->ring < 0) bad("negative ring");
    const int64_t slots = kv->ring > 0 ? kv->ring : pos0 + n_q;
    if (d.n_head_kv > 1 && kv->head_stride < slots * d.head_dim)
      bad("kv head stride smaller than the positions used");
    if (kv->ring > 0 && kv->head_stride < kv->ring * d.head_dim) bad("head stride < ring");
    // Every key some query of this call sees must still be in the ring.
    const int64_t span = d.window > 0 ? std::min(pos0 + n_q, d.window + n_q - 1) : pos0 + n_q;
    if (kv->ring > 0 && span > kv->ring)
      bad("ring of " + std::to_string(kv->ring) + " slots cannot hold the " +
          std::to_string(span) + " keys this call needs");
  }
}

fimpl::KvHead head_of(const KvView& kv, int64_t hk, int64_t D) {
  const int64_t off = hk * kv.head_stride;
  const void* p = static_cast<const uint8_t*>(kv.data) + off * static_cast<int64_t>(kv_elem_bytes(kv.type));
  const float* sc = kv.scale ? kv.scale + off / D : nullptr;
  return fimpl::KvHead{p, sc, kv.type, kv.ring};
}
}  // namespace

bool attention_bf16_available(int64_t head_dim) { return fimpl::attn_bf16(head_dim) != nullptr; }

const char* kv_type_name(KvType t) {
  switch (t) {
    case KvType::kF32: return "f32";
    case KvType::kF16: return "f16";
    case KvType::kInt8: return "int8";
  }
  return "?";
}

bool parse_kv_type(const char* s, KvType* t) {
  const std::string v = s ? s : "";
  if (v == "f32") *t = KvType::kF32;
  else if (v == "f16") *t = KvType::kF16;
  else if (v == "int8" || v == "q8") *t = KvType::kInt8;
  else return false;
  return true;
}

void kv_store_row(KvType t, const float* x, int64_t n, void* dst, float* scale) {
  switch (t) {
    case KvType::kF32:
      std::memcpy(dst, x, sizeof(float) * static_cast<size_t>(n));
      return;
    case KvType::kF16: {
      fimpl::active().to_f16(x, static_cast<uint16_t*>(dst), n);
      return;
    }
    case KvType::kInt8: {
      float amax = 0.f;
      for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
      const float d = amax / 127.f, inv = d > 0.f ? 1.f / d : 0.f;
      auto* q = static_cast<int8_t*>(dst);
      for (int64_t i = 0; i < n; ++i)
        q[i] = static_cast<int8_t>(std::clamp(std::nearbyint(x[i] * inv), -127.f, 127.f));
      *scale = d;
      return;
    }
  }
}

void attention(const float* q, int64_t ldq, int64_t n_q, int64_t pos0, const KvView& k,
               const KvView& v, const AttentionDims& d, float* out, int64_t ldo, ThreadPool* pool) {
  check_dims(d, n_q, pos0, k, v);
  if (n_q == 0) return;
  const fimpl::FloatKernels& fk = fimpl::active();
  const int64_t group = d.n_head / d.n_head_kv;
  // Calls of up to kAttnRowQueries queries go row by row (each row bit-identical to the same
  // query evaluated alone: speculative verification relies on it), one task per (query,
  // head); else blocks of attn_bq queries, one task per (block, kv head, share of its heads).
  const bool rows = n_q <= kAttnRowQueries;
  const fimpl::Bf16Attention* bf =
      d.bf16 != AttnBf16::kOff && !rows ? fimpl::attn_bf16(d.head_dim) : nullptr;
  auto* const task_fn = bf ? bf->attn : fk.attn;
  auto* const scratch_fn = bf ? bf->attn_scratch_floats : fk.attn_scratch_floats;
  const int64_t bq = rows ? 1 : fk.attn_bq;
  const int64_t nb = (n_q + bq - 1) / bq;
  const int64_t threads = pool ? pool->size() : 1;
  // Heads per task: the whole GQA group, so each K/V tile is converted once for all the
  // heads that read it, unless that leaves fewer than two tasks per thread; then the group is
  // split (into a divisor of it) until there are.
  int64_t hpt = rows ? 1 : group;
  while (hpt > 1 && nb * d.n_head_kv * (group / hpt) < 2 * threads) {
    int64_t next = hpt - 1;
    while (group % next != 0) --next;
    hpt = next;
  }
  const int64_t splits = group / hpt, units = d.n_head_kv * splits;
  const int64_t max_keys = d.window > 0 ? std::min(d.window, pos0 + n_q) : pos0 + n_q;
  const int64_t per = (scratch_fn(d.head_dim, max_keys, hpt) + 15) / 16 * 16;
  // Scratch kept per calling thread and only grown: a fresh vector per call (one per layer
  // and chunk) zero-filled up to a few MiB each time.
  thread_local octet::detail::AlignedVector<float> scratch;
  if (scratch.size() < static_cast<size_t>(per * threads)) scratch.resize(static_cast<size_t>(per * threads));
  float* const sbuf = scratch.data();  // the workers must use the caller's buffer, not theirs
  // Causal blocks get costlier with position. When the head units divide evenly among the
  // threads, each thread takes whole units with all their blocks (equal work), so a head's
  // K/V stays in L2 from one block to the next (MHA at 1024 positions: 512 KiB per head,
  // re-read from L3 per block otherwise). Else a zig-zag block order (0, nb-1, 1, nb-2, ..)
  // gives each thread's contiguous range a balanced mix, head units innermost.
  const bool unit_major = units % threads == 0;
  parallel_for(pool, nb * units, 1, [&](int64_t b, int64_t e, int tid) {
    const fimpl::AttnScratch sc{sbuf + tid * per, per};
    for (int64_t t = b; t < e; ++t) {
      const int64_t s = unit_major ? t % nb : t / units, u = unit_major ? t / nb : t % units;
      const int64_t blk = s % 2 == 0 ? s / 2 : nb - 1 - s / 2;
      const int64_t hk = u / splits, h0 = hk * group + (u % splits) * hpt;
      const fimpl::AttnTask task{q, ldq, pos0, head_of(k, hk, d.head_dim),
                                 head_of(v, hk, d.head_dim), &d, out, ldo, h0, h0 + hpt,
                                 blk * bq, std::min(n_q, (blk + 1) * bq)};
      task_fn(task, sc);
    }
  });
}

void attention_f32(const float* q, int64_t ldq, int64_t n_q, int64_t pos0, const float* k_cache,
                   const float* v_cache, const AttentionDims& d, float* out, int64_t ldo,
                   ThreadPool* pool) {
  KvView k, v;
  k.data = k_cache;
  v.data = v_cache;
  // A single kv head needs no stride; keep the old contract (stride checked only for > 1).
  k.head_stride = v.head_stride = d.n_head_kv > 1 ? d.kv_head_stride : 0;
  attention(q, ldq, n_q, pos0, k, v, d, out, ldo, pool);
}

}  // namespace octet::kernels
