// Attention's block path with bf16 operands: vdpbf16ps multiplies pairs of bf16 and adds both
// products to a float lane, twice the multiply-adds of a float FMA per instruction. Q·scale,
// K, V and the softmax probabilities are rounded to bf16 (round to nearest even); scores,
// the online softmax (max, exp, sum, rescaling) and the output accumulate in float. Same
// tiles, masks and task split as the float block path (float_impl.h, attn_block), only the
// F32Ops policy is replaced:
//   Qt [D/2][kBQ'] words: word e of query q = (q[2e], q[2e+1])·scale, so a vector of 16 words
//     pairs with one broadcast word of a K row (a bf16 K row is already its pairs);
//   K tiles: bf16 rows [bk][D];
//   V tiles: pair rows [⌈bk/2⌉][D] words, word d of pair m = (V[2m][d], V[2m+1][d]);
//   probabilities: pair rows [⌈bk/2⌉][kBQ'] words, (P[2m][q], P[2m+1][q]); P·V broadcasts
//     a query's word and multiplies it into a V pair row.
// An odd tile end pads with a zero key (p = 0, V = 0). A row group's keys [jb, je) widen to
// whole pairs; the keys this adds are masked for every query of the group, so their p is 0.
// GCC 12's _mm512_undefined_* self-initialise and trip -W(maybe-)uninitialized (PR105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "kernels/float_isa.h"
#include "octet/cpu.h"

namespace octet::kernels::fimpl {
namespace {

#include "kernels/x86/avx512_traits.h"
#include "kernels/float_impl.h"

// 32 floats (lo: elements 0-15, hi: 16-31) as 32 bf16 in element order.
inline __m512i to_bf16(__m512 lo, __m512 hi) {
  return __builtin_bit_cast(__m512i, _mm512_cvtne2ps_pbh(hi, lo));
}
// Words (a[i], b[i]) for i = 0..15 from two 16-float vectors.
inline __m512i pairs_bf16(__m512 a, __m512 b) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                       24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                       16, 0);
  return _mm512_permutexvar_epi16(idx, to_bf16(a, b));
}
inline __m512 dot2(__m512 acc, __m512i a, __m512i b) {
  return _mm512_dpbf16_ps(acc, __builtin_bit_cast(__m512bh, a), __builtin_bit_cast(__m512bh, b));
}
inline __m512i bcast_word(const void* p) {
  int32_t w;
  __builtin_memcpy(&w, p, 4);
  return _mm512_set1_epi32(w);
}

// exp(x) for x <= 0 (a score minus its running max; -inf for masked keys) where the result
// only feeds a probability rounded to bf16 (relative step 2^-8): Cody–Waite reduction with a
// single ln2 constant (error n·2e-9 in r), a degree-4 polynomial with the least maximum
// relative error on |r| <= ln2/2 (2.9e-6 with float Horner steps, ~700× below bf16's half
// step), ·2^n by vscalefps. 9 vector operations against vexp's 14 (clamp at both ends, two
// reduction constants, degree 7): the softmax is ~30 % of this attention's instructions at
// head dim 64. exp(0) is exactly 1, so a row's largest score keeps p = 1.
inline __m512 exp_prob(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-104.f), x);  // -inf → ~2^-150; max(lo, NaN) = NaN
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693147180559945f), x);
  __m512 p = _mm512_set1_ps(4.151384532e-02f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.678747386e-01f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.000301600e-01f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.999668598e-01f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}

// S^T rows (keys) [0, MR) × NQ query vectors: D/2 pair steps.
template <int MR, int NQ>
void scores_k(const uint16_t* k, int64_t D, const float* qt, int64_t bqp, float* st) {
  __m512 acc[MR][NQ];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NQ; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t e = 0; e < D / 2; ++e) {
    __m512i qv[NQ];
#pragma GCC unroll 16
    for (int v = 0; v < NQ; ++v) qv[v] = _mm512_castps_si512(_mm512_loadu_ps(qt + e * bqp + v * 16));
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512i b = bcast_word(k + r * D + 2 * e);
#pragma GCC unroll 16
      for (int v = 0; v < NQ; ++v) acc[r][v] = dot2(acc[r][v], b, qv[v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NQ; ++v) _mm512_storeu_ps(st + r * bqp + v * 16, acc[r][v]);
}

template <int MR, int NQ>
void scores_rows(int rows, const uint16_t* k, int64_t D, const float* qt, int64_t bqp, float* st) {
  if constexpr (MR > 1) {
    if (rows < MR) return scores_rows<MR - 1, NQ>(rows, k, D, qt, bqp, st);
  }
  scores_k<MR, NQ>(k, D, qt, bqp, st);
}

template <int NQ>
void scores_tile(int64_t bk, int nq, const uint16_t* k, int64_t D, const float* qt, int64_t bqp,
                 float* st) {
  if constexpr (NQ > 1) {
    if (nq < NQ) return scores_tile<NQ - 1>(bk, nq, k, D, qt, bqp, st);
  }
  for (int64_t r = 0; r < bk; r += Avx512::kSMR) {
    const int rows = static_cast<int>(imin(Avx512::kSMR, bk - r));
    scores_rows<Avx512::kSMR, NQ>(rows, k + r * D, D, qt, bqp, st + r * bqp);
  }
}

// O rows [q0, q0+RM), CV vectors from column c0: += Σ over pairs [mb, me) of P pair · V pair.
template <int RM, int CV>
void pv_k(const float* pb, int64_t bqp, int64_t q0, const uint16_t* v, int64_t D, int64_t mb,
          int64_t me, int64_t c0, float* o, int64_t dp_) {
  __m512 acc[RM][CV];
#pragma GCC unroll 16
  for (int r = 0; r < RM; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < CV; ++c) acc[r][c] = _mm512_loadu_ps(o + (q0 + r) * dp_ + c0 + c * 16);
  for (int64_t m = mb; m < me; ++m) {
    __m512i vv[CV];
#pragma GCC unroll 16
    for (int c = 0; c < CV; ++c) vv[c] = _mm512_loadu_si512(v + m * 2 * D + 2 * (c0 + c * 16));
#pragma GCC unroll 16
    for (int r = 0; r < RM; ++r) {
      const __m512i p = bcast_word(pb + m * bqp + q0 + r);
#pragma GCC unroll 16
      for (int c = 0; c < CV; ++c) acc[r][c] = dot2(acc[r][c], p, vv[c]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < RM; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < CV; ++c) _mm512_storeu_ps(o + (q0 + r) * dp_ + c0 + c * 16, acc[r][c]);
}

template <int RM>
void pv_rows(int rm, const float* pb, int64_t bqp, int64_t q0, const uint16_t* v, int64_t D,
             int64_t mb, int64_t me, float* o, int64_t dp_) {
  if constexpr (RM > 1) {
    if (rm < RM) return pv_rows<RM - 1>(rm, pb, bqp, q0, v, D, mb, me, o, dp_);
  }
  constexpr int CV = Avx512::kPVC;
  int64_t c0 = 0;
  for (; c0 + CV * 16 <= D; c0 += CV * 16) pv_k<RM, CV>(pb, bqp, q0, v, D, mb, me, c0, o, dp_);
  for (; c0 < D; c0 += 16) pv_k<RM, 1>(pb, bqp, q0, v, D, mb, me, c0, o, dp_);
}

struct Bf16Ops {
  static __m512 prob_exp(__m512 x) { return exp_prob(x); }
  static int64_t q_rows(int64_t D) { return D / 2; }
  // 16 queries × 32 dims at a time: each query's 32 scaled values become its 16 words, then a
  // 16×16 word transpose puts queries along the lanes.
  static void load_q(const float* qh, int64_t ldq, int64_t nq, int64_t D, float scale_q,
                     float* qt, int64_t bqp) {
    const __m512 sv = _mm512_set1_ps(scale_q);
    alignas(64) float blk[16 * 16];
    for (int64_t i0 = 0; i0 < bqp; i0 += 16)
      for (int64_t d0 = 0; d0 < D; d0 += 32) {
        for (int64_t r = 0; r < 16; ++r) {
          __m512i w = _mm512_setzero_si512();
          if (i0 + r < nq) {
            const float* x = qh + (i0 + r) * ldq + d0;
            w = to_bf16(_mm512_mul_ps(_mm512_loadu_ps(x), sv), _mm512_mul_ps(_mm512_loadu_ps(x + 16), sv));
          }
          _mm512_store_si512(blk + r * 16, w);
        }
        Avx512::transpose(blk, 16, qt + d0 / 2 * bqp + i0, bqp);
      }
  }
  // A tile of n (even) keys holds n·D bf16 = n·D/2 floats, K rows or V pair rows alike.
  static int64_t kv_floats(int64_t D, int64_t n) { return n * D / 2; }
  static int64_t stage_floats(int64_t D) { return kBK * D; }
  // F16 caches (the default) convert straight to bf16 in registers; other types go through
  // kv_rows' float rows (a staging pass that was ~1/8 of the bf16 attention's time with F16).
  // `row(r)` is key r's first element, as half or float: load16 reads 16 of either as floats.
  static const uint16_t* f16_row(const KvHead& kv, int64_t D, int64_t pos) {
    const int64_t slot = kv.ring > 0 ? pos % kv.ring : pos;
    return static_cast<const uint16_t*>(kv.p) + slot * D;
  }
  static __m512 load16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
  template <class Row>
  static void k_rows(const Row& row, int64_t D, int64_t bk, uint16_t* out) {
    for (int64_t r = 0; r < bk; ++r) {
      const auto* x = row(r);
      for (int64_t d0 = 0; d0 < D; d0 += 32)
        _mm512_storeu_si512(out + r * D + d0, to_bf16(load16(x + d0), load16(x + d0 + 16)));
    }
  }
  template <class Row>
  static void v_pairs(const Row& row, int64_t D, int64_t bk, uint16_t* out) {
    for (int64_t m = 0; m < (bk + 1) / 2; ++m) {
      const auto* r0 = row(2 * m);
      const bool odd = 2 * m + 1 == bk;  // no row 2m+1 (it may not even be readable)
      const auto* r1 = odd ? r0 : row(2 * m + 1);
      for (int64_t d0 = 0; d0 < D; d0 += 16)
        _mm512_storeu_si512(out + m * 2 * D + 2 * d0,
                            pairs_bf16(load16(r0 + d0), odd ? _mm512_setzero_ps() : load16(r1 + d0)));
    }
  }
  static const uint16_t* k_tile(const KvHead& kv, int64_t D, int64_t j0, int64_t bk, float* buf,
                                float* stage) {
    auto* out = reinterpret_cast<uint16_t*>(buf);
    if (kv.type == KvType::kF16) {
      k_rows([&](int64_t r) { return f16_row(kv, D, j0 + r); }, D, bk, out);
    } else {
      const float* x = kv_rows<Avx512>(kv, D, j0, bk, stage);
      k_rows([&](int64_t r) { return x + r * D; }, D, bk, out);
    }
    return out;
  }
  static const uint16_t* v_tile(const KvHead& kv, int64_t D, int64_t j0, int64_t bk, float* buf,
                                float* stage) {
    auto* out = reinterpret_cast<uint16_t*>(buf);
    if (kv.type == KvType::kF16) {
      v_pairs([&](int64_t r) { return f16_row(kv, D, j0 + r); }, D, bk, out);
    } else {
      const float* x = kv_rows<Avx512>(kv, D, j0, bk, stage);
      v_pairs([&](int64_t r) { return x + r * D; }, D, bk, out);
    }
    return out;
  }
  static void scores(int64_t bk, int nv, const uint16_t* kt, int64_t D, const float* qt,
                     int64_t bqp, float* st) {
    scores_tile<Avx512::kNQ>(bk, nv, kt, D, qt, bqp, st);
  }
  static int64_t probs_floats() { return kBK / 2; }
  static void probs(const float* st, int64_t bqp, int64_t bk, int v_lo, int v_hi, float* pb) {
    for (int64_t m = 0; m < (bk + 1) / 2; ++m)
      for (int v = v_lo; v < v_hi; ++v) {
        const float* s = st + 2 * m * bqp + v * 16;
        const __m512 b = 2 * m + 1 < bk ? _mm512_loadu_ps(s + bqp) : _mm512_setzero_ps();
        _mm512_storeu_si512(pb + m * bqp + v * 16, pairs_bf16(_mm512_loadu_ps(s), b));
      }
  }
  static void pv(int rm, const float*, const float* pb, int64_t bqp, int64_t jb, int64_t je,
                 int64_t i, const uint16_t* vt, int64_t D, float* o, int64_t dp_) {
    pv_rows<Avx512::kPVR>(rm, pb, bqp, i, vt, D, jb / 2, (je + 1) / 2, o, dp_);
  }
};

// Scores in float (F32Ops: Qt and K rows as floats), only P·V on bf16 operands.
struct PvOps {
  using F = F32Ops<Avx512>;
  static __m512 prob_exp(__m512 x) { return exp_prob(x); }  // p is rounded to bf16 too
  static int64_t q_rows(int64_t D) { return F::q_rows(D); }
  static void load_q(const float* qh, int64_t ldq, int64_t nq, int64_t D, float scale_q,
                     float* qt, int64_t bqp) {
    F::load_q(qh, ldq, nq, D, scale_q, qt, bqp);
  }
  // K's float rows; V's pair rows take half of their share.
  static int64_t kv_floats(int64_t D, int64_t n) { return F::kv_floats(D, n); }
  static int64_t stage_floats(int64_t D) { return Bf16Ops::stage_floats(D); }
  static const float* k_tile(const KvHead& kv, int64_t D, int64_t j0, int64_t bk, float* buf,
                             float* stage) {
    return F::k_tile(kv, D, j0, bk, buf, stage);
  }
  static const uint16_t* v_tile(const KvHead& kv, int64_t D, int64_t j0, int64_t bk, float* buf,
                                float* stage) {
    return Bf16Ops::v_tile(kv, D, j0, bk, buf, stage);
  }
  static void scores(int64_t bk, int nv, const float* kt, int64_t D, const float* qt, int64_t bqp,
                     float* st) {
    F::scores(bk, nv, kt, D, qt, bqp, st);
  }
  static int64_t probs_floats() { return Bf16Ops::probs_floats(); }
  static void probs(const float* st, int64_t bqp, int64_t bk, int v_lo, int v_hi, float* pb) {
    Bf16Ops::probs(st, bqp, bk, v_lo, v_hi, pb);
  }
  static void pv(int rm, const float* st, const float* pb, int64_t bqp, int64_t jb, int64_t je,
                 int64_t i, const uint16_t* vt, int64_t D, float* o, int64_t dp_) {
    Bf16Ops::pv(rm, st, pb, bqp, jb, je, i, vt, D, o, dp_);
  }
};

// Tasks of fewer than 3 queries take the float row path, as in attn().
void attn_bf16_task(const AttnTask& t, const AttnScratch& sc) {
  if (t.i1 - t.i0 < 3) return kernels_avx512().attn(t, sc);
  if (t.d->bf16 == AttnBf16::kPV) return attn_block<Avx512, PvOps>(t, sc);
  attn_block<Avx512, Bf16Ops>(t, sc);
}

int64_t attn_bf16_scratch(int64_t D, int64_t n_keys, int64_t heads) {
  return imax(imax(attn_block_floats<Avx512, Bf16Ops>(D, heads),
                   attn_block_floats<Avx512, PvOps>(D, heads)),
              kernels_avx512().attn_scratch_floats(D, n_keys, heads));
}

void prob_exp_n(const float* x, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, exp_prob(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(out + i, m, exp_prob(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

}  // namespace

const Bf16Attention* attn_bf16(int64_t head_dim) {
  static const Bf16Attention table{attn_bf16_task, attn_bf16_scratch, prob_exp_n};
  if (head_dim <= 0 || head_dim % 32 != 0 || !cpu_features().avx512bf16 ||
      active().isa != FloatIsa::kAvx512)
    return nullptr;
  return &table;
}

}  // namespace octet::kernels::fimpl
