// AVX-512 VNNI int8 kernels. vpdpbusd multiplies u8 × s8, so activations are stored with +128
// (u8) and the GEMM subtracts 128·Σ_k q_w[n,k] (precomputed per channel) from each sum.
//
// Microkernel: 8 rows × 3 panels of 16 channels = 24 zmm accumulators, enough to cover
// vpdpbusd's 5-cycle latency on both FMA ports. Per group of 4 k: 3 zmm weight loads (one
// contiguous 192-byte row of the column block), 8 4-byte broadcasts of activations (one
// contiguous 32-byte row of the packed row block; broadcasts from memory use only load ports),
// 24 vpdpbusd. The full 8×3 tile is hand-scheduled asm with fixed scratch registers
// (zmm24-31); GCC's intrinsics version spilled accumulators. Edge tiles use intrinsics.
//
// Blocking: for each 48-channel column block, K is cut into blocks of ≤ kKc4·4 (6144: one
// block for every linear up to 7B-class down projections) whose weight sliver (≤ 288 KiB)
// stays in L2 while every row block of a 64-row chunk streams past it. The tile needs only
// 224 bytes per 24 cycles of vpdpbusd, which L2 delivers with the hardware prefetchers: the
// former L1-sized blocks (512 k, 24 KiB) cost 1.5-2.5 % of peak on the 0.5B shape's linears
// (Zen 4, `bench --kernels`; docs/results.md, session 24) in partial-sum round trips and tile
// restarts. int32 partial sums of a tile go to a small per-thread buffer between K blocks,
// and the last K block applies the fused dequant epilogue on the way out of the registers.
// GCC 12's _mm512_undefined_* self-initialise and trip -Wmaybe-uninitialized (PR105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels/int8_kernels.h"

namespace octet::kernels::int8 {
namespace {

constexpr int kMR = 8;                           // rows per microkernel (= activation row block)
constexpr int kNB = int{kInt8PanelsPerBlock};    // 16-channel panels per microkernel
constexpr int64_t kKc4 = 1536;                   // K block in groups of 4 (6144 k)
constexpr int64_t kPartTile = kMR * kNB * 16;    // int32 partial sums per tile slot
constexpr int64_t kMc = 64;                      // row chunk (multiple of kMR)
constexpr int64_t kMcMaxWeightBytes = int64_t{12} << 20;

// GCC 12 compiles _mm512_dpbusd_epi32 with an untied destination and surrounds every call
// with register copies (half speed); the tied asm operand lets it keep accumulators in place.
inline __attribute__((always_inline)) void dpbusd(__m512i& acc, __m512i a_u8, __m512i b_s8) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a_u8), "v"(b_s8));
}

inline int32_t load32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

struct Tile {
  const uint8_t* a;  // packed row block at the first group: 32 bytes per group, row i at 4·i
  const int8_t* w;   // first panel at the first group; group g at w + g·step
  int64_t step;      // bytes per group in this column block
  int64_t n4;        // groups in this K block (≥ 1)
  int32_t* part;     // partial sums between K blocks (null: single K block)
  bool first, last;  // first / last K block
  int64_t row, panel;
};

template <int MR, int NB>
inline __attribute__((always_inline)) void start(__m512i (&acc)[MR][NB], const Tile& t) {
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 3
    for (int j = 0; j < NB; ++j)
      acc[i][j] = t.first ? _mm512_setzero_si512()
                          : _mm512_load_si512(t.part + (i * kNB + j) * 16);
}

// Partial sums out, or the epilogue: y = fma(float(acc − corr), s_x[row]·s_w[n], base).
template <int MR, int NB>
inline __attribute__((always_inline)) void finish(__m512i (&acc)[MR][NB], const Tile& t,
                                                  const AView& av, const WView& wv,
                                                  const Epilogue& ep) {
  if (!t.last) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 3
      for (int j = 0; j < NB; ++j) _mm512_store_si512(t.part + (i * kNB + j) * 16, acc[i][j]);
    return;
  }
#pragma GCC unroll 3
  for (int j = 0; j < NB; ++j) {
    const int64_t n0 = (t.panel + j) * 16;
    const int64_t valid = std::min<int64_t>(16, wv.n - n0);
    const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
    const __m512i corr = _mm512_loadu_si512(wv.corr + n0);
    if (ep.y && !ep.accumulate) {
      // base = 0 + bias as in the scalar definition (turns a −0 bias into +0), once per panel.
      const __m512 ws = _mm512_loadu_ps(wv.scale + n0);
      const __m512 base =
          ep.bias ? _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(mask, ep.bias + n0))
                  : _mm512_setzero_ps();
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        float* y = ep.y + (t.row + i) * ep.ldy + n0;
        const __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][j], corr));
        const __m512 s = _mm512_mul_ps(_mm512_set1_ps(av.row_scale[t.row + i]), ws);
        _mm512_mask_storeu_ps(y, mask, _mm512_fmadd_ps(v, s, base));
      }
    } else if (ep.y) {
      const __m512 ws = _mm512_loadu_ps(wv.scale + n0);
      const __m512 bias = ep.bias ? _mm512_maskz_loadu_ps(mask, ep.bias + n0) : _mm512_setzero_ps();
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        float* y = ep.y + (t.row + i) * ep.ldy + n0;
        const __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][j], corr));
        const __m512 s = _mm512_mul_ps(_mm512_set1_ps(av.row_scale[t.row + i]), ws);
        __m512 base = _mm512_maskz_loadu_ps(mask, y);
        if (ep.bias) base = _mm512_add_ps(base, bias);
        _mm512_mask_storeu_ps(y, mask, _mm512_fmadd_ps(v, s, base));
      }
    } else {
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i)
        _mm512_mask_storeu_epi32(ep.y32 + (t.row + i) * ep.ldy + n0, mask,
                                 _mm512_sub_epi32(acc[i][j], corr));
    }
  }
}

// Edge tiles (fewer rows or panels, or a narrower column block).
template <int MR, int NB>
void tile(const Tile& t, const AView& av, const WView& wv, const Epilogue& ep) {
  __m512i acc[MR][NB];
  start(acc, t);
  for (int64_t g = 0; g < t.n4; ++g) {
    __m512i b[NB];
#pragma GCC unroll 3
    for (int j = 0; j < NB; ++j) b[j] = _mm512_load_si512(t.w + g * t.step + j * 64);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512i x = _mm512_set1_epi32(load32(t.a + g * 32 + i * 4));
#pragma GCC unroll 3
      for (int j = 0; j < NB; ++j) dpbusd(acc[i][j], x, b[j]);
    }
  }
  finish(acc, t, av, wv, ep);
}

// The full 8×3 tile of a 3-panel block (step 192): the hot loop in asm, accumulators pinned
// to zmm0-23 (GCC's allocation of the intrinsics version added 6 register copies per group).
// asm operands cannot carry 24 vectors (30-operand limit), so the tile enters from and leaves
// to memory: partial sums, or a stack tile the epilogue reads (L1, ~2 % of a 512-k block).
#define OCTET_DP(b, x, c) "vpdpbusd %%zmm" #b ", %%zmm" #x ", %%zmm" #c "\n\t"
#define OCTET_ROW(x, off, c0, c1, c2) \
  "vpbroadcastd " #off "(%[a]), %%zmm" #x "\n\t" OCTET_DP(24, x, c0) OCTET_DP(25, x, c1) OCTET_DP(26, x, c2)
#define OCTET_ALL(op)                                                                          \
  op(0, 0) op(1, 64) op(2, 128) op(3, 192) op(4, 256) op(5, 320) op(6, 384) op(7, 448)         \
  op(8, 512) op(9, 576) op(10, 640) op(11, 704) op(12, 768) op(13, 832) op(14, 896)            \
  op(15, 960) op(16, 1024) op(17, 1088) op(18, 1152) op(19, 1216) op(20, 1280) op(21, 1344)    \
  op(22, 1408) op(23, 1472)
#define OCTET_ZERO(r, off) "vpxord %%zmm" #r ", %%zmm" #r ", %%zmm" #r "\n\t"
#define OCTET_LOAD(r, off) "vmovdqa64 " #off "(%[in]), %%zmm" #r "\n\t"
#define OCTET_STORE(r, off) "vmovdqa64 %%zmm" #r ", " #off "(%[out])\n\t"

void tile_8x3(const Tile& t, const AView& av, const WView& wv, const Epilogue& ep) {
  alignas(64) int32_t tmp[kPartTile];
  const uint8_t* a = t.a;
  const int8_t* w = t.w;
  int64_t n = t.n4;
  const int32_t* in = t.part;
  int32_t* out = t.last ? tmp : t.part;
  const int64_t first = t.first;
  __asm__ volatile(
      "test %[first], %[first]\n\t"
      "jz 2f\n\t"
      OCTET_ALL(OCTET_ZERO)
      "jmp 3f\n\t"
      "2:\n\t"
      OCTET_ALL(OCTET_LOAD)
      "3:\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vmovdqa64 (%[w]), %%zmm24\n\t"
      "vmovdqa64 64(%[w]), %%zmm25\n\t"
      "vmovdqa64 128(%[w]), %%zmm26\n\t"
      OCTET_ROW(27, 0, 0, 1, 2) OCTET_ROW(28, 4, 3, 4, 5) OCTET_ROW(29, 8, 6, 7, 8)
      OCTET_ROW(30, 12, 9, 10, 11) OCTET_ROW(31, 16, 12, 13, 14) OCTET_ROW(27, 20, 15, 16, 17)
      OCTET_ROW(28, 24, 18, 19, 20) OCTET_ROW(29, 28, 21, 22, 23)
      "add $32, %[a]\n\t"
      "add $192, %[w]\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      OCTET_ALL(OCTET_STORE)
      : [a] "+r"(a), [w] "+r"(w), [n] "+r"(n)
      : [in] "r"(in), [out] "r"(out), [first] "r"(first)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18",
        "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27",
        "xmm28", "xmm29", "xmm30", "xmm31", "cc", "memory");
  if (!t.last) return;
  __m512i acc[8][3];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i)
#pragma GCC unroll 3
    for (int j = 0; j < 3; ++j) acc[i][j] = _mm512_load_si512(tmp + (i * 3 + j) * 16);
  Tile last = t;
  last.last = true;
  finish(acc, last, av, wv, ep);
}
#undef OCTET_STORE
#undef OCTET_LOAD
#undef OCTET_ZERO
#undef OCTET_ALL
#undef OCTET_ROW
#undef OCTET_DP

using TileFn = void (*)(const Tile&, const AView&, const WView&, const Epilogue&);

template <size_t... I>
constexpr std::array<TileFn, sizeof...(I)> make_tiles(std::index_sequence<I...>) {
  return {&tile<static_cast<int>(I / kNB) + 1, static_cast<int>(I % kNB) + 1>...};
}
// kTiles[(mr-1)·kNB + (nb-1)]: every edge shape has its own fully unrolled kernel.
constexpr auto kTiles = make_tiles(std::make_index_sequence<kMR * kNB>());

// Rows [m0, m1) (m0 a multiple of 8) × panels [p0, p1).
void gemm_vnni(const AView& a, const WView& w, const Epilogue& ep, int64_t m0, int64_t m1,
               int64_t p0, int64_t p1) {
  const int64_t nkb = (w.k4 + kKc4 - 1) / kKc4;  // K blocks of equal size (± 1 group)
  const int64_t kc4 = (w.k4 + nkb - 1) / nkb;
  int32_t* part = nullptr;
  if (nkb > 1) {
    thread_local octet::detail::AlignedVector<int32_t> buf;
    const size_t need = static_cast<size_t>((m1 - m0 + kMR - 1) / kMR * kPartTile);
    if (buf.size() < need) buf.resize(need);
    part = buf.data();
  }
  const int64_t block_bytes = a.ld * kMR;  // one packed row block
  // Row chunks of kMc: the epilogue's output stripes stay short (fewer pages, fewer cold
  // lines per column block), at the cost of re-reading this range's weights once per chunk;
  // worth it while those weights are L2/L3-friendly (measured: +10-40 % on gate_up-like
  // shapes with N·K ≤ 9 MB, −20 % at N·K = 22 MB).
  const bool chunk_m = (p1 - p0) * 16 * w.k4 * 4 <= kMcMaxWeightBytes;
  const int64_t mc = chunk_m ? kMc : m1 - m0;
  // Column blocks lie back to back, each K block's sliver after the previous one, so the
  // weights this call reads next are the bytes after the current sliver. The first row chunk
  // meets every sliver cold (inside a prefill the layer's weights come from DRAM); each of
  // its row blocks prefetches a share of the next sliver into L2 so that the sliver after
  // this one does not stall on DRAM latency (the hardware streamer runs too short a
  // distance ahead at ~8 cycles of compute per weight line).
  const int8_t* const w_end = w.data + p1 * w.k4 * 64;
  for (int64_t mc0 = m0; mc0 < m1; mc0 += mc) {
    const int64_t mc1 = std::min(m1, mc0 + mc);
    for (int64_t p = p0; p < p1;) {
      const int64_t nb = std::min<int64_t>(kNB - p % kNB, p1 - p);  // inside a column block
      const int8_t* wp = w.panel(p);
      const int64_t step = w.step(p);
      for (int64_t kb = 0; kb < nkb; ++kb) {
        const int64_t g0 = kb * kc4, n4 = std::min(w.k4, g0 + kc4) - g0;
        const int8_t* const next = wp + (g0 + n4) * step;
        const int64_t next_bytes = mc0 == 0 ? std::min<int64_t>(n4 * step, w_end - next) : 0;
        const int64_t nrb = (mc1 - mc0 + kMR - 1) / kMR;
        for (int64_t i = mc0; i < mc1; i += kMR) {
          const int64_t mr = std::min<int64_t>(kMR, mc1 - i);
          if (next_bytes > 0) {
            const int64_t bi = (i - mc0) / kMR;
            const int64_t hi = next_bytes * (bi + 1) / nrb;
            for (int64_t off = next_bytes * bi / nrb / 64 * 64; off < hi; off += 64)
              _mm_prefetch(reinterpret_cast<const char*>(next + off), _MM_HINT_T1);
          }
          // The output lines of the next row block, for writing: inside a prefill they have
          // usually left the caches (the layers' weights stream through L3 in between), and
          // the epilogue's stores would wait for each line's read-for-ownership.
          if (kb == nkb - 1 && ep.y && i + kMR < mc1)
            for (int64_t r = i + kMR; r < std::min(mc1, i + 2 * kMR); ++r)
              for (int64_t j = 0; j < nb; ++j)
                __builtin_prefetch(ep.y + r * ep.ldy + (p + j) * 16, 1, 3);
          const Tile t{a.data + (i / kMR) * block_bytes + g0 * 32,
                       wp + g0 * step,
                       step,
                       n4,
                       part ? part + (i - m0) / kMR * kPartTile : nullptr,
                       kb == 0,
                       kb == nkb - 1,
                       i,
                       p};
          if (mr == kMR && nb == kNB && step == kNB * 64)
            tile_8x3(t, a, w, ep);
          else
            kTiles[(mr - 1) * kNB + (nb - 1)](t, a, w, ep);
        }
      }
      p += nb;
    }
  }
}

// One row: t = x·inv, clamp, round half to even, store q ^ 0x80 (= q + 128 as u8) into the
// packed row block: group g of this row at d + 32·g. Lanes past k quantise 0 (0x80).
// Outliers of a row are gathered with compress (column index, residual) into these staging
// arrays (16 lanes of slack for the full-width stores), then appended to the list once per
// row: a push_back per outlier, behind a data-dependent branch, cost ~85 cycles each.
struct OutlierStage {
  std::vector<int32_t> col;
  std::vector<float> res;
  int64_t n = 0;
  void start(int64_t k) {
    n = 0;
    if (static_cast<int64_t>(col.size()) < k + 16) {
      col.resize(static_cast<size_t>(k + 16));
      res.resize(static_cast<size_t>(k + 16));
    }
  }
  // Lanes o of columns j..j+15: column index and outlier_residual (x − 127·s for x > 0, else
  // x + 127·s; clip = 127·s).
  __attribute__((always_inline)) void add(__mmask16 o, __m512 xv, __m512 clip, int64_t j) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __mmask16 pos = _mm512_cmp_ps_mask(xv, _mm512_setzero_ps(), _CMP_GT_OQ);
    const __m512 r = _mm512_mask_sub_ps(_mm512_add_ps(xv, clip), pos, xv, clip);
    const __m512i c = _mm512_add_epi32(lane, _mm512_set1_epi32(static_cast<int32_t>(j)));
    _mm512_storeu_si512(col.data() + n, _mm512_maskz_compress_epi32(o, c));
    _mm512_storeu_ps(res.data() + n, _mm512_maskz_compress_ps(o, r));
    n += __builtin_popcount(o);
  }
  void flush(int32_t row, OutlierList* out) const {
    if (n == 0) return;
    const size_t base = out->size();
    out->resize(base + static_cast<size_t>(n));  // no zero fill (Outlier's constructor)
    Outlier* o = out->data() + base;
    for (int64_t i = 0; i < n; ++i) o[i] = {row, col[i], res[i]};
  }
};

// The four 4-byte groups of b to d, d + stride, d + 2·stride, d + 3·stride, straight from the
// register (vmovd / vpextrd to memory), not through a stack copy and a scalar loop.
inline void store_groups4(__m128i b, void* d, int64_t stride) {
  const int32_t w[4] = {_mm_cvtsi128_si32(b), _mm_extract_epi32(b, 1), _mm_extract_epi32(b, 2),
                        _mm_extract_epi32(b, 3)};
  for (int l = 0; l < 4; ++l) std::memcpy(static_cast<uint8_t*>(d) + l * stride, &w[l], 4);
}

void quant_row(const float* x, int64_t k, float inv, float s, uint8_t* d, int64_t k4,
               int32_t row, OutlierList* out) {
  const __m512 vinv = _mm512_set1_ps(inv);
  const __m512 hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
  const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80));
  const __m512 clip = _mm512_set1_ps(127.0f * s);
  thread_local OutlierStage st;
  if (out) st.start(k);
  for (int64_t j = 0; j < k; j += 16) {
    const __mmask16 m = k - j >= 16 ? 0xffff : static_cast<__mmask16>((1u << (k - j)) - 1);
    const __m512 xv = _mm512_maskz_loadu_ps(m, x + j);
    const __m512 t = _mm512_mul_ps(xv, vinv);
    if (out) {
      // Branch-free: whether a group of 16 holds an outlier is a coin toss on ffn_mid.
      st.add(_mm512_mask_cmp_ps_mask(m, _mm512_abs_ps(t), hi, _CMP_GT_OQ), xv, clip, j);
    }
    const __m512 c = _mm512_max_ps(_mm512_min_ps(t, hi), lo);
    const __m512i q = _mm512_cvt_roundps_epi32(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m128i b = _mm_xor_si128(_mm512_cvtepi32_epi8(q), flip);
    const int64_t g = j / 4;
    if (k4 - g >= 4) {
      // Four groups of 4 bytes, 32 bytes apart (the row-block layout): straight from the
      // register (vmovd / vpextrd to memory); a copy through the stack and a scalar loop was
      // ~40 % of this kernel (a store-forwarded reload per group).
      store_groups4(b, d + g * 32, 32);
    } else {
      alignas(16) int32_t g4[4];
      _mm_store_si128(reinterpret_cast<__m128i*>(g4), b);
      for (int64_t l = 0; l < k4 - g; ++l) std::memcpy(d + (g + l) * 32, &g4[l], 4);
    }
  }
  if (out) st.flush(row, out);
}

// The 8 rows' int32 codes q of columns j..j+15 into the packed row block d: saturating packs
// (per 128-bit lane, i.e. per group of 4 columns: rows 0-3 of that group in one lane, rows
// 4-7 in the other vector) and two qword permutes put them in the block's layout, 128
// contiguous bytes for 4 groups: two stores instead of 32 four-byte stores of quant_row
// (which made the row kernel store-bound).
inline __attribute__((always_inline)) void store_block8(const __m512i (&q)[kMR], uint8_t* d,
                                                        int64_t j, int64_t k4) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i lo_groups = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
  const __m512i hi_groups = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
  // Lane L of a (b): rows 0-3 (4-7) of group j/4 + L, 4 bytes each.
  const __m512i a = _mm512_packs_epi16(_mm512_packs_epi32(q[0], q[1]),
                                       _mm512_packs_epi32(q[2], q[3]));
  const __m512i b = _mm512_packs_epi16(_mm512_packs_epi32(q[4], q[5]),
                                       _mm512_packs_epi32(q[6], q[7]));
  const __m512i g01 = _mm512_xor_si512(_mm512_permutex2var_epi64(a, lo_groups, b), flip);
  const __m512i g23 = _mm512_xor_si512(_mm512_permutex2var_epi64(a, hi_groups, b), flip);
  const int64_t g = j / 4, left = k4 - g;  // groups of this step inside the row (1..4+)
  uint8_t* p = d + g * 32;
  if (left >= 4) {
    _mm512_storeu_si512(p, g01);
    _mm512_storeu_si512(p + 64, g23);
  } else {  // 4 qwords per group
    const __mmask8 m01 = left >= 2 ? 0xff : 0x0f;
    _mm512_mask_storeu_epi64(p, m01, g01);
    if (left == 3) _mm512_mask_storeu_epi64(p + 64, 0x0f, g23);
  }
}

// One code: t = x·inv, clamp to ±127, round half to even (as quant_row).
inline __attribute__((always_inline)) __m512i code16(__m512 t) {
  const __m512 c = _mm512_max_ps(_mm512_min_ps(t, _mm512_set1_ps(127.0f)), _mm512_set1_ps(-127.0f));
  return _mm512_cvt_roundps_epi32(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

// A whole row block (8 rows, r0 a multiple of 8) at once (store_block8). Same float
// operations per value as quant_row, so the codes and outliers are identical.
void quant_block8(const float* x, int64_t ldx, int64_t k, float inv, float s, uint8_t* d,
                  int64_t k4, int32_t row0, OutlierList* out) {
  const __m512 vinv = _mm512_set1_ps(inv);
  const __m512 hi = _mm512_set1_ps(127.0f);
  const __m512 clip = _mm512_set1_ps(127.0f * s);
  thread_local OutlierStage st[kMR];
  if (out)
    for (auto& r : st) r.start(k);
  for (int64_t j = 0; j < k; j += 16) {
    const __mmask16 m = k - j >= 16 ? 0xffff : static_cast<__mmask16>((1u << (k - j)) - 1);
    __m512i q[kMR];
#pragma GCC unroll 8
    for (int i = 0; i < kMR; ++i) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + i * ldx + j);
      const __m512 t = _mm512_mul_ps(xv, vinv);
      // Unlike quant_row this branches on "the vector holds an outlier": isolated, the branch
      // won at ~0.1 % outliers and tied at 2 % (quant_row keeps its branch-free form).
      const __mmask16 o =
          out ? _mm512_mask_cmp_ps_mask(m, _mm512_abs_ps(t), hi, _CMP_GT_OQ) : __mmask16{0};
      if (o) st[i].add(o, xv, clip, j);
      q[i] = code16(t);
    }
    store_block8(q, d, j, k4);
  }
  if (out)
    for (int i = 0; i < kMR; ++i) st[i].flush(row0 + i, out);
}

// A row block whose rows each have their own inverse inv[i] (RowScale::kFitBelowClip: rows
// below the clip, each at max|x|/127; the inverses keep every entry within ±127, so there are
// no outliers): the codes quant_row gives each row with its inverse, 8 rows per store as
// quant_block8 (such rows went through quant_row one at a time: the O projection's input, whose
// clip is its whole range, is nearly all of them).
void quant_fit_vnni(const float* x, int64_t ldx, int64_t k, const float* inv, uint8_t* dst,
                    int64_t ld, int64_t r0) {
  __m512 vinv[kMR];
#pragma GCC unroll 8
  for (int i = 0; i < kMR; ++i) vinv[i] = _mm512_set1_ps(inv[i]);
  uint8_t* d = dst + r0 * ld;
  for (int64_t j = 0; j < k; j += 16) {
    const __mmask16 m = k - j >= 16 ? 0xffff : static_cast<__mmask16>((1u << (k - j)) - 1);
    __m512i q[kMR];
#pragma GCC unroll 8
    for (int i = 0; i < kMR; ++i)
      q[i] = code16(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i * ldx + j), vinv[i]));
    store_block8(q, d, j, ld / 4);
  }
}

void quant_vnni(const float* x, int64_t ldx, int64_t k, float inv, float s, uint8_t* dst,
                int64_t ld, int64_t r0, int64_t r1, OutlierList* out) {
  auto one = [&](int64_t r) {
    quant_row(x + (r - r0) * ldx, k, inv, s, dst + ((r / kMR) * ld * kMR) + (r % kMR) * 4, ld / 4,
              static_cast<int32_t>(r), out);
  };
  int64_t r = r0;
  // ldx = 0: one row handed in at a time (rows made on the fly, segments).
  if (ldx != 0) {
    for (; r < r1 && r % kMR != 0; ++r) one(r);
    for (; r + kMR <= r1; r += kMR)
      quant_block8(x + (r - r0) * ldx, ldx, k, inv, s, dst + r * ld, ld / 4, static_cast<int32_t>(r),
                   out);
  }
  for (; r < r1; ++r) one(r);
}

void absmax_avx512(const float* x, int64_t ldx, int64_t k, int64_t r0, int64_t r1,
                   float* amax) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * ldx;
    __m512 m = _mm512_setzero_ps();
    for (int64_t j = 0; j < k; j += 16) {
      const __mmask16 mk = k - j >= 16 ? 0xffff : static_cast<__mmask16>((1u << (k - j)) - 1);
      // max(|x|, m) keeps m when x is NaN, as the scalar std::max(m, |x|) does.
      m = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(mk, xr + j)), m);
    }
    amax[r - r0] = _mm512_reduce_max_ps(m);
  }
}

// The shadow-path kernel's traits (kernels/x86/shadow_impl.h): 16-lane zmm.
struct ShadowZmm {
  using F = __m512;
  using I = __m512i;
  static constexpr int W = 16;
  static constexpr int kMaxNP = 8, kPairMaxNP = 4;  // 16 accumulators (2 rows: 16)
  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float f) { return _mm512_set1_ps(f); }
  static F loadf(const float* p) { return _mm512_loadu_ps(p); }
  static I loadi(const void* p) { return _mm512_loadu_si512(p); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F top(I v, I ctrl) { return _mm512_cvtepi32_ps(_mm512_shuffle_epi8(v, ctrl)); }
  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1); }
  static F loadn(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void storef(float* p, F v) { _mm512_storeu_ps(p, v); }
  static void storen(float* p, F v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static void prefetch_l1(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
  static void prefetch_l2(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1); }
};

#include "kernels/x86/shadow_impl.h"

}  // namespace

void dequant_column_avx512(const WView& w, int64_t k, int64_t p0, int64_t p1, float* out) {
  dequant_column_impl<ShadowZmm>(w, k, p0, p1, out);
}

void shadow_rows_avx512(const WView& w, const ShadowEntry* e, const int32_t* row_begin,
                        int64_t m0, int64_t m1, int64_t p0, int64_t p1, const float* hot_base,
                        int64_t hot_stride, float* y, int64_t ldy) {
  shadow_rows_impl<ShadowZmm>(w, e, row_begin, m0, m1, p0, p1, hot_base, hot_stride, y, ldy);
}

int64_t weight_row_check_avx512(const float* w, int64_t k, float* amax) {
  __m512 m = _mm512_setzero_ps();
  for (int64_t j = 0; j < k; j += 16) {
    const __mmask16 mk = k - j >= 16 ? 0xffff : static_cast<__mmask16>((1u << (k - j)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(mk, w + j);
    // QNaN 0x01, +Inf 0x08, -Inf 0x10, SNaN 0x80.
    if (const __mmask16 bad = _mm512_mask_fpclass_ps_mask(mk, v, 0x99))
      return j + __builtin_ctz(bad);
    m = _mm512_max_ps(_mm512_abs_ps(v), m);
  }
  *amax = _mm512_reduce_max_ps(m);
  return -1;
}

void weight_row_quant_avx512(const float* w, int64_t k, float inv, int8_t* dst, int64_t stride) {
  const __m512 vinv = _mm512_set1_ps(inv);
  const __m512 hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
  for (int64_t j = 0; j < k; j += 16) {
    const __mmask16 m = k - j >= 16 ? 0xffff : static_cast<__mmask16>((1u << (k - j)) - 1);
    // As quantize_one: scale, clamp, round half to even.
    const __m512 t = _mm512_max_ps(_mm512_min_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, w + j), vinv), hi), lo);
    const __m512i q = _mm512_cvt_roundps_epi32(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m128i b = _mm512_cvtepi32_epi8(q);
    const int64_t g = j / 4;
    if (k - j >= 16) {  // four whole groups, straight from the register (as quant_row)
      store_groups4(b, dst + g * stride, stride);
      continue;
    }
    alignas(16) int32_t g4[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(g4), b);
    const int64_t ng = (k - j + 3) / 4;
    for (int64_t l = 0; l < ng; ++l) {
      const int64_t valid = std::min<int64_t>(4, k - j - 4 * l);
      std::memcpy(dst + (g + l) * stride, &g4[l], static_cast<size_t>(valid));
    }
  }
}

uint64_t vnni_peak_loop(int64_t iters) {
  // 24 accumulators (zmm0-23) in fixed registers: the compiler cannot spill or merge them.
  int64_t n = std::max<int64_t>(1, iters);
  __asm__ volatile(
      "vpternlogd $0xff, %%zmm24, %%zmm24, %%zmm24\n\t"  // all ones: u8 255, s8 -1
      "vmovdqa64 %%zmm24, %%zmm25\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
#define OCTET_P(i) "vpdpbusd %%zmm25, %%zmm24, %%zmm" #i "\n\t"
      OCTET_P(0) OCTET_P(1) OCTET_P(2) OCTET_P(3) OCTET_P(4) OCTET_P(5) OCTET_P(6) OCTET_P(7)
      OCTET_P(8) OCTET_P(9) OCTET_P(10) OCTET_P(11) OCTET_P(12) OCTET_P(13) OCTET_P(14)
      OCTET_P(15) OCTET_P(16) OCTET_P(17) OCTET_P(18) OCTET_P(19) OCTET_P(20) OCTET_P(21)
      OCTET_P(22) OCTET_P(23)
#undef OCTET_P
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      : [n] "+r"(n)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18",
        "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "cc");
  return static_cast<uint64_t>(std::max<int64_t>(1, iters)) * 24 * 64;
}

const Kernels& kernels_vnni() {
  static const Kernels k{gemm_vnni, quant_vnni, absmax_avx512, 0x80, kMR, kMR, kNB, quant_fit_vnni};
  return k;
}

}  // namespace octet::kernels::int8
