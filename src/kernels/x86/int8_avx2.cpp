// AVX2 int8 kernels (no VNNI). The GEMM multiplies in int16: vpmaddwd takes pairs of int16
// (two k of one channel per 32-bit lane), multiplies and adds each pair into an int32 lane,
// exactly (|x·w| ≤ 127·127, K ≤ 65536 keeps the sums in int32). The int8 route, vpmaddubsw
// (u8 × s8 → saturating int16 pairs), needs the sign trick (|x| and sign(x)·w, one more op per
// product vector) to stay exact and then a vpmaddwd by 1 to widen: measured on Zen 3 (L1-
// resident loop, 1 core) 68 GMAC/s against 77 for int16 vpmaddwd + vpaddd.
//
// Operands are widened per row chunk and K block into thread-local int16 buffers (see the
// blocking below); calls of fewer than 6 rows keep the int8 sign-trick tile.
//
// Microkernel: 6 rows × one 16-channel panel (2 ymm of 8 channels × 1 k-pair) = 12 ymm
// accumulators, 2 weight registers, a broadcast and a product: all 16 ymm, hence asm.
// Per k-pair: 2 weight loads, 6 broadcasts (load ports only), 12 vpmaddwd (2 ports) and
// 12 vpaddd.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>

#include "kernels/int8_kernels.h"
#include "octet/aligned.h"

namespace octet::kernels::int8 {
namespace {

constexpr int kMR = 6;

// Rows [m0, m1), groups [g0, g0 + n4) of the row-major int8 activations as int16, row
// stride 4·n4 (the padding past K is 0 in both).
void widen_rows(const AView& a, int64_t m0, int64_t m1, int64_t g0, int64_t n4, int16_t* dst) {
  const int64_t n = 4 * n4;
  for (int64_t r = m0; r < m1; ++r) {
    const int8_t* s = reinterpret_cast<const int8_t*>(a.data + r * a.ld + 4 * g0);
    int16_t* d = dst + (r - m0) * n;
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + j),
                          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + j))));
    for (; j < n; ++j) d[j] = s[j];
  }
}

// Panel p's weights as int16, per k-pair two ymm: channels 0-7 then 8-15, each lane one
// channel's (k, k+1). From the packed group (16 channels × 4 k, 64 bytes): per 16-byte lane
// (4 channels) the (k0,k1) bytes to the low half and (k2,k3) to the high half, qwords
// regrouped across lanes, then sign-extended.
void widen_panel(const WView& w, int64_t p, int64_t g0, int64_t n4, int16_t* dst) {
  const __m256i pairs = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                                         0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
  const int64_t step = w.step(p);
  const int8_t* src = w.panel(p) + g0 * step;
  for (int64_t g = 0; g < n4; ++g, src += step, dst += 64) {
    for (int h = 0; h < 2; ++h) {  // channels 8h .. 8h+7
      const __m256i v = _mm256_shuffle_epi8(
          _mm256_load_si256(reinterpret_cast<const __m256i*>(src + 32 * h)), pairs);
      // qwords: [c0-3 k01, c0-3 k23, c4-7 k01, c4-7 k23] -> [k01 c0-7 | k23 c0-7]
      const __m256i q = _mm256_permute4x64_epi64(v, 0xD8);
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 8 * 2 * h),
                         _mm256_cvtepi8_epi16(_mm256_castsi256_si128(q)));
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 32 + 8 * 2 * h),
                         _mm256_cvtepi8_epi16(_mm256_extracti128_si256(q, 1)));
    }
  }
}

// Finished sums of mr rows × 16 channels (row i at acc + 16·i) out through the epilogue.
void store_tile(const int32_t* acc, int mr, const AView& av, const WView& wv,
                const Epilogue& ep, int64_t row, int64_t panel) {
  const int64_t n0 = panel * 16;
  const int64_t valid = std::min<int64_t>(16, wv.n - n0);
  for (int i = 0; i < mr; ++i) {
    const int32_t* t = acc + 16 * i;
    if (valid == 16 && ep.y) {
      float* y = ep.y + (row + i) * ep.ldy + n0;
      const __m256 rs = _mm256_set1_ps(av.row_scale[row + i]);
      for (int h = 0; h < 2; ++h) {
        const __m256 v = _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(t + 8 * h)));
        const __m256 s = _mm256_mul_ps(rs, _mm256_loadu_ps(wv.scale + n0 + 8 * h));
        __m256 base = ep.accumulate ? _mm256_loadu_ps(y + 8 * h) : _mm256_setzero_ps();
        if (ep.bias) base = _mm256_add_ps(base, _mm256_loadu_ps(ep.bias + n0 + 8 * h));
        _mm256_storeu_ps(y + 8 * h, _mm256_fmadd_ps(v, s, base));
      }
    } else {  // int32 output or a partial panel: in scalar (same formula)
      for (int64_t l = 0; l < valid; ++l) {
        if (ep.y) {
          float* y = ep.y + (row + i) * ep.ldy + n0 + l;
          *y = epilogue_one(t[l], av.row_scale[row + i], wv.scale[n0 + l], *y, ep.bias, n0 + l,
                            ep.accumulate);
        } else {
          ep.y32[(row + i) * ep.ldy + n0 + l] = t[l];
        }
      }
    }
  }
}

// A tile's run over one K block: kp k-pairs of rows at a + i·ld16 against the widened panel
// w, starting from zero or from the partial sums `in` ([row][16] int32), the sums left in
// `out` (the partial-sum slot again, or the caller's tile for the epilogue).
struct Run {
  const int16_t* a;
  int64_t ld16;
  const int16_t* w;
  int64_t kp;
  const int32_t* in;  // null: start from zero
  int32_t* out;
};

// Edge tiles (fewer than 6 rows).
template <int MR>
void tile(const Run& t) {
  __m256i acc[MR][2];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
    for (int h = 0; h < 2; ++h)
      acc[i][h] = t.in ? _mm256_load_si256(reinterpret_cast<const __m256i*>(t.in + i * 16 + 8 * h))
                       : _mm256_setzero_si256();
  const int16_t* a = t.a;
  const int16_t* w = t.w;
  const int64_t ld16 = t.ld16, kp = t.kp;
  for (int64_t j = 0; j < kp; ++j) {
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 32 * j));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 32 * j + 16));
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      int32_t v;
      std::memcpy(&v, a + i * ld16 + 2 * j, 4);
      const __m256i x = _mm256_set1_epi32(v);
      acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(x, b0));
      acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(x, b1));
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
    for (int h = 0; h < 2; ++h)
      _mm256_store_si256(reinterpret_cast<__m256i*>(t.out + i * 16 + 8 * h), acc[i][h]);
}

// The full 6-row tile: accumulators pinned to ymm0-11 (GCC's allocation of the intrinsics
// version spilled them), rows addressed from two bases (r, r + 3 rows) and the row stride.
void tile_6(const Run& t) {
  const int16_t* a = t.a;
  const int16_t* b = a + 3 * t.ld16;
  const int16_t* w = t.w;
  int64_t n = t.kp;
  const int64_t s = t.ld16 * 2;  // bytes
  const int32_t* in = t.in;
  int32_t* out = t.out;
#define OCTET_R(base, idx, a0, a1)                                         \
  "vpbroadcastd " base idx ", %%ymm14\n\t"                                 \
  "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n\t"                                \
  "vpaddd %%ymm15, %%ymm" #a0 ", %%ymm" #a0 "\n\t"                        \
  "vpmaddwd %%ymm13, %%ymm14, %%ymm15\n\t"                                \
  "vpaddd %%ymm15, %%ymm" #a1 ", %%ymm" #a1 "\n\t"
#define OCTET_ALL(op)                                                                   \
  op(0, 0) op(1, 32) op(2, 64) op(3, 96) op(4, 128) op(5, 160) op(6, 192) op(7, 224)     \
  op(8, 256) op(9, 288) op(10, 320) op(11, 352)
#define OCTET_Z(r, off) "vpxor %%xmm" #r ", %%xmm" #r ", %%xmm" #r "\n\t"
#define OCTET_L(r, off) "vmovdqa " #off "(%[in]), %%ymm" #r "\n\t"
#define OCTET_S(r, off) "vmovdqa %%ymm" #r ", " #off "(%[out])\n\t"
  __asm__ volatile(
      "test %[in], %[in]\n\t"
      "jnz 2f\n\t"
      OCTET_ALL(OCTET_Z)
      "jmp 3f\n\t"
      "2:\n\t"
      OCTET_ALL(OCTET_L)
      "3:\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa (%[w]), %%ymm12\n\t"
      "vmovdqa 32(%[w]), %%ymm13\n\t"
      OCTET_R("(%[a]", ")", 0, 1) OCTET_R("(%[a]", ",%[s])", 2, 3) OCTET_R("(%[a]", ",%[s],2)", 4, 5)
      OCTET_R("(%[b]", ")", 6, 7) OCTET_R("(%[b]", ",%[s])", 8, 9) OCTET_R("(%[b]", ",%[s],2)", 10, 11)
      "add $4, %[a]\n\t"
      "add $4, %[b]\n\t"
      "add $64, %[w]\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      OCTET_ALL(OCTET_S)
      "vzeroupper\n\t"
      : [a] "+r"(a), [b] "+r"(b), [w] "+r"(w), [n] "+r"(n)
      : [s] "r"(s), [in] "r"(in), [out] "r"(out)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
#undef OCTET_S
#undef OCTET_L
#undef OCTET_Z
#undef OCTET_ALL
#undef OCTET_R
}

using TileFn = void (*)(const Run&);
template <size_t... I>
constexpr std::array<TileFn, sizeof...(I)> make_tiles(std::index_sequence<I...>) {
  return {&tile<static_cast<int>(I) + 1>...};
}
constexpr auto kTiles = make_tiles(std::make_index_sequence<kMR - 1>());

// Calls of 1-5 rows (decode steps, small batches): widening a panel costs more than the few
// rows gain from int16, so these read the int8 operands in place with vpmaddubsw and the
// sign trick (|x| and sign(x)·w: each pair ≤ 2·127·127 < 2^15, exact), widened by vpmaddwd
// with 1. Weights never hold −128, which the trick needs.
template <int MR, int NB>
void tile_i8(const uint8_t* a, int64_t lda, const int8_t* w, int64_t step, int64_t k4,
             int32_t* out) {
  __m256i acc[MR][2 * NB];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 6
    for (int j = 0; j < 2 * NB; ++j) acc[i][j] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t g = 0; g < k4; ++g) {
    __m256i b[2 * NB];
#pragma GCC unroll 6
    for (int j = 0; j < 2 * NB; ++j)
      b[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + g * step + 32 * j));
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      int32_t v;
      std::memcpy(&v, a + i * lda + g * 4, 4);
      const __m256i x = _mm256_set1_epi32(v);
      const __m256i ax = _mm256_sign_epi8(x, x);
#pragma GCC unroll 6
      for (int j = 0; j < 2 * NB; ++j)
        acc[i][j] = _mm256_add_epi32(
            acc[i][j], _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(b[j], x)), ones));
    }
  }
  // Panel j of row i at out + (j·MR + i)·16 (store_tile's layout per panel).
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 6
    for (int j = 0; j < 2 * NB; ++j)
      _mm256_store_si256(reinterpret_cast<__m256i*>(out + ((j / 2) * MR + i) * 16 + 8 * (j % 2)),
                         acc[i][j]);
}

using TileI8Fn = void (*)(const uint8_t*, int64_t, const int8_t*, int64_t, int64_t, int32_t*);
// kTilesI8[mr - 1][nb - 1]: one or two rows take a whole column block of up to 3 panels (6
// accumulators per row: the broadcast and |x| serve 6 products, the block's groups stream as
// one array); 3-5 rows one panel at a time.
template <int MR>
constexpr std::array<TileI8Fn, 3> tiles_i8_for() {
  if constexpr (MR <= 2)
    return {&tile_i8<MR, 1>, &tile_i8<MR, 2>, &tile_i8<MR, 3>};
  else
    return {&tile_i8<MR, 1>, nullptr, nullptr};
}
constexpr std::array<std::array<TileI8Fn, 3>, 5> kTilesI8 = {
    tiles_i8_for<1>(), tiles_i8_for<2>(), tiles_i8_for<3>(), tiles_i8_for<4>(), tiles_i8_for<5>()};

// Blocking: rows in chunks of kMc, panels in groups of ≤ kPg; for each (chunk, group), K in
// blocks of ≤ kKc4 groups: the chunk's activations of that block (kMc × 512 int16 = 48 KiB)
// are widened once and meet every panel of the group; each panel's block is widened (16 KiB,
// L1) and meets the chunk's 8 row blocks. int32 partial sums wait in a per-thread buffer
// between K blocks (kMc × kPg × 16 int32 = 192 KiB at most, whatever N).
constexpr int64_t kMc = 8 * kMR;
constexpr int64_t kKc4 = 128;
constexpr int64_t kPg = 64;

void gemm_avx2(const AView& a, const WView& w, const Epilogue& ep, int64_t m0, int64_t m1,
               int64_t p0, int64_t p1) {
  if (m1 <= m0 || p1 <= p0) return;
  alignas(32) int32_t done[kMR * 16 * kInt8PanelsPerBlock];
  if (m1 - m0 < kMR) {
    const int mr = static_cast<int>(m1 - m0);
    for (int64_t p = p0; p < p1;) {
      // Panels of p's column block inside [p0, p1): all of them where the tile takes them.
      const int64_t in_block = std::min<int64_t>(kInt8PanelsPerBlock - p % kInt8PanelsPerBlock, p1 - p);
      const int64_t nb = mr <= 2 ? in_block : 1;
      kTilesI8[mr - 1][nb - 1](a.data + m0 * a.ld, a.ld, w.panel(p), w.step(p), w.k4, done);
      for (int64_t j = 0; j < nb; ++j) store_tile(done + j * mr * 16, mr, a, w, ep, m0, p + j);
      p += nb;
    }
    return;
  }
  const int64_t nkb = (w.k4 + kKc4 - 1) / kKc4;  // K blocks of equal size (± 1 group)
  const int64_t kc4 = (w.k4 + nkb - 1) / nkb;
  thread_local octet::detail::AlignedVector<int16_t> act, wt;
  thread_local octet::detail::AlignedVector<int32_t> part;
  const auto grow = [](auto& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  };
  grow(act, kMc * kc4 * 4);
  grow(wt, kc4 * 64);
  if (nkb > 1) grow(part, kMc * std::min(kPg, p1 - p0) * 16);
  for (int64_t mc0 = m0; mc0 < m1; mc0 += kMc) {
    const int64_t mc1 = std::min(m1, mc0 + kMc);
    for (int64_t pg0 = p0; pg0 < p1; pg0 += kPg) {
      const int64_t pg1 = std::min(p1, pg0 + kPg), np = pg1 - pg0;
      for (int64_t kb = 0; kb < nkb; ++kb) {
        const int64_t g0 = kb * kc4, n4 = std::min(w.k4, g0 + kc4) - g0;
        const bool first = kb == 0, last = kb == nkb - 1;
        widen_rows(a, mc0, mc1, g0, n4, act.data());
        for (int64_t p = pg0; p < pg1; ++p) {
          widen_panel(w, p, g0, n4, wt.data());
          for (int64_t i = mc0; i < mc1; i += kMR) {
            const int64_t mr = std::min<int64_t>(kMR, mc1 - i);
            int32_t* slot =
                nkb > 1 ? part.data() + ((i - mc0) * np + (p - pg0) * kMR) * 16 : nullptr;
            const Run t{act.data() + (i - mc0) * n4 * 4, n4 * 4, wt.data(), n4 * 2,
                        first ? nullptr : slot, last ? done : slot};
            if (mr == kMR)
              tile_6(t);
            else
              kTiles[mr - 1](t);
            if (last) store_tile(done, static_cast<int>(mr), a, w, ep, i, p);
          }
        }
      }
    }
  }
}

void quant_avx2(const float* x, int64_t ldx, int64_t k, float inv, float s, uint8_t* dst,
                int64_t ld, int64_t r0, int64_t r1, OutlierList* out) {
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + (r - r0) * ldx;
    uint8_t* d = dst + r * ld;
    int64_t j = 0;
    for (; j + 8 <= k; j += 8) {
      const __m256 t = _mm256_mul_ps(_mm256_loadu_ps(xr + j), vinv);
      if (out) {
        unsigned o = static_cast<unsigned>(
            _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(t, absmask), hi, _CMP_GT_OQ)));
        while (o) {
          const int l = __builtin_ctz(o);
          o &= o - 1;
          out->push_back({static_cast<int32_t>(r), static_cast<int32_t>(j + l),
                          outlier_residual(xr[j + l], s)});
        }
      }
      // min/max argument order = the scalar definition (NaN → 127); cvtps rounds half to even.
      const __m256i q = _mm256_cvtps_epi32(_mm256_max_ps(_mm256_min_ps(t, hi), lo));
      const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d + j), _mm_packs_epi16(q16, q16));
    }
    for (; j < k; ++j) {
      d[j] = static_cast<uint8_t>(quantize_one(xr[j], inv));
      if (out && is_outlier(xr[j], inv))
        out->push_back({static_cast<int32_t>(r), static_cast<int32_t>(j),
                        outlier_residual(xr[j], s)});
    }
    std::memset(d + k, 0, ld - k);
  }
}

void absmax_avx2(const float* x, int64_t ldx, int64_t k, int64_t r0, int64_t r1, float* amax) {
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * ldx;
    __m256 m = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= k; j += 8) m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(xr + j), absmask), m);
    alignas(32) float t[8];
    _mm256_store_ps(t, m);
    float mx = 0;
    for (float v : t) mx = std::max(mx, v);
    for (; j < k; ++j) mx = std::max(mx, std::fabs(xr[j]));
    amax[r - r0] = mx;
  }
}

// The shadow-path kernel's traits (kernels/x86/shadow_impl.h): 8-lane ymm, so a 16-output
// panel is two vectors and a block of 2 panels already takes 8 accumulators of the 16 ymm.
struct ShadowYmm {
  using F = __m256;
  using I = __m256i;
  static constexpr int W = 8;
  static constexpr int kMaxNP = 2, kPairMaxNP = 1;
  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float f) { return _mm256_set1_ps(f); }
  static F loadf(const float* p) { return _mm256_loadu_ps(p); }
  static I loadi(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F top(I v, I ctrl) { return _mm256_cvtepi32_ps(_mm256_shuffle_epi8(v, ctrl)); }
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static F loadn(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void storef(float* p, F v) { _mm256_storeu_ps(p, v); }
  static void storen(float* p, F v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static void prefetch_l1(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
  static void prefetch_l2(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1); }
};

#include "kernels/x86/shadow_impl.h"

}  // namespace

void dequant_column_avx2(const WView& w, int64_t k, int64_t p0, int64_t p1, float* out) {
  dequant_column_impl<ShadowYmm>(w, k, p0, p1, out);
}

void shadow_rows_avx2(const WView& w, const ShadowEntry* e, const int32_t* row_begin, int64_t m0,
                      int64_t m1, int64_t p0, int64_t p1, const float* hot_base,
                      int64_t hot_stride, float* y, int64_t ldy) {
  shadow_rows_impl<ShadowYmm>(w, e, row_begin, m0, m1, p0, p1, hot_base, hot_stride, y, ldy);
}

int64_t weight_row_check_avx2(const float* w, int64_t k, float* amax) {
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 m = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= k; j += 8) {
    const __m256 v = _mm256_loadu_ps(w + j);
    // x − x is NaN exactly for NaN and ±Inf.
    if (const int bad = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_sub_ps(v, v), _mm256_setzero_ps(),
                                                         _CMP_NEQ_UQ)))
      return j + __builtin_ctz(static_cast<unsigned>(bad));
    m = _mm256_max_ps(_mm256_and_ps(v, absmask), m);
  }
  alignas(32) float t[8];
  _mm256_store_ps(t, m);
  float mx = 0;
  for (float v : t) mx = std::max(mx, v);
  float tail = 0;
  const int64_t bad = weight_row_check_ref(w + j, k - j, &tail);
  if (bad >= 0) return j + bad;
  *amax = std::max(mx, tail);
  return -1;
}

void weight_row_quant_avx2(const float* w, int64_t k, float inv, int8_t* dst, int64_t stride) {
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
  int64_t j = 0;
  for (; j + 8 <= k; j += 8) {
    // As quantize_one: scale, clamp, round half to even; two groups of 4 bytes.
    const __m256 t = _mm256_max_ps(_mm256_min_ps(_mm256_mul_ps(_mm256_loadu_ps(w + j), vinv), hi), lo);
    const __m256i q = _mm256_cvtps_epi32(t);
    const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    const __m128i b = _mm_packs_epi16(q16, q16);
    const int32_t g0 = _mm_cvtsi128_si32(b), g1 = _mm_extract_epi32(b, 1);
    std::memcpy(dst + (j / 4) * stride, &g0, 4);
    std::memcpy(dst + (j / 4 + 1) * stride, &g1, 4);
  }
  // The tail starts at a group boundary (j is a multiple of 8).
  weight_row_quant_ref(w + j, k - j, inv, dst + (j / 4) * stride, stride);
}

uint64_t avx2_peak_loop(int64_t iters) {
  // 12 accumulators, each vpmaddwd + vpaddd as in the microkernel (the product needs a
  // register of its own: AVX2 has no multiply-accumulate for int16).
  int64_t n = std::max<int64_t>(1, iters);
#define OCTET_P(i) "vpmaddwd %%ymm13, %%ymm14, %%ymm15\n\tvpaddd %%ymm15, %%ymm" #i ", %%ymm" #i "\n\t"
  __asm__ volatile(
      "vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n\t"
      "vpabsw %%ymm14, %%ymm13\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      OCTET_P(0) OCTET_P(1) OCTET_P(2) OCTET_P(3) OCTET_P(4) OCTET_P(5) OCTET_P(6) OCTET_P(7)
      OCTET_P(8) OCTET_P(9) OCTET_P(10) OCTET_P(11)
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vzeroupper\n\t"
      : [n] "+r"(n)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm13", "xmm14", "xmm15", "cc");
#undef OCTET_P
  return static_cast<uint64_t>(std::max<int64_t>(1, iters)) * 12 * 16;
}

const Kernels& kernels_avx2() {
  static const Kernels k{gemm_avx2, quant_avx2, absmax_avx2, 0, kMR, 0, 1};
  return k;
}

}  // namespace octet::kernels::int8
