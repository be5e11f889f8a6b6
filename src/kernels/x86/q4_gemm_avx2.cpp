// AVX2 W4A8 / W5A8 GEMM over Q4_0, Q5_0, Q4_K and Q5_K blocks read in place, with the shadow
// path's outliers taken from the same repacked blocks (definition: kernels/q4_gemm.h).
//
// Per row chunk and K step, each 16-channel panel's blocks are repacked from the file's
// layout (one channel's 32 k per block) into the microkernel's ([k-quad][16 channels][4 k]
// bytes, c = code − 8) in an L1 buffer, with the blocks' scales as floats, and meet every
// 3-row tile of the chunk. Microkernel: 3 rows × 16 channels; per k-quad two code vectors
// (channels 0-7, 8-15), one broadcast of 4 activation bytes per row, vpmaddubsw into int16
// sums; per block one vpmaddwd by 1, a conversion and an fma by the block scales into float
// accumulators: 6 int16 + 6 float accumulators, 2 codes, a broadcast and a product — 16 ymm.
// `octet kbench --q4` on Zen 3: 1.4-1.5× the int8 (int16) kernel on the model shapes, up to
// 101 GMAC/s per thread (docs/kernels-int8.md "W4A8").
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/q4_gemm.h"
#include "octet/aligned.h"

namespace octet::kernels::q4 {
namespace {

constexpr int kR = 3;          // rows per tile
constexpr int64_t kMc = 64 * kR;  // rows per chunk: each repacked panel step meets 64 tiles
constexpr int64_t kKb = 32;    // blocks per K step: a panel's step is 16 KiB of codes (L1)
constexpr int64_t kPg = 16;    // panels per group: partial sums 192 × 16 × 16 floats = 192 KiB

// 8 × 8 transpose of 32-bit lanes: r[i] lane j → r[j] lane i.
inline __attribute__((always_inline)) void transpose8(__m256i r[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x31);
  }
}

// Block bb's 32 codes c of one row in k order (lane q, 32 bits, = k-quad q), per format.
template <Format F>
inline __m256i block_codes(const uint8_t* u, int64_t bb) {
  const __m256i low = _mm256_set1_epi8(15);
  if constexpr (F == Format::Q4_0 || F == Format::Q5_0) {
    const uint8_t* qs = u + (F == Format::Q4_0 ? 2 : 6);
    // k 0-15 from the low nibbles, 16-31 from the high.
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low);
    if constexpr (F == Format::Q4_0) {
      return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
    } else {
      // Fifth bits: bit k of qh → 16 in byte k (byte k/8 of qh spread over 8 bytes, one bit
      // each).
      int32_t qh;
      std::memcpy(&qh, u + 2, 4);
      const __m256i spread = _mm256_shuffle_epi8(
          _mm256_set1_epi32(qh),
          _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
                           3, 3, 3, 3, 3, 3, 3, 3));
      const __m256i bits = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
      const __m256i hi = _mm256_and_si256(
          _mm256_cmpeq_epi8(_mm256_and_si256(spread, bits), bits), _mm256_set1_epi8(16));
      return _mm256_sub_epi8(_mm256_or_si256(v, hi), _mm256_set1_epi8(16));
    }
  } else {
    // Sub-block j: the low (even j) or high (odd j) nibbles of 32 bytes; Q5_K's fifth bit is
    // bit j of qh[l].
    const int j = static_cast<int>(bb % 8);
    const __m256i q = _mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(u + (F == Format::Q4_K ? 16 : 48) + 32 * (j / 2)));
    const __m256i v = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(q, 4) : q, low);
    if constexpr (F == Format::Q4_K) {
      return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
    } else {
      const __m256i bit = _mm256_set1_epi8(static_cast<char>(1 << j));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(u + 16));
      const __m256i hi = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit),
                                          _mm256_set1_epi8(16));
      return _mm256_sub_epi8(_mm256_or_si256(v, hi), _mm256_set1_epi8(16));
    }
  }
}

// Panel p's blocks [b0, b0 + nb): codes[b][quad][16 channels][4 k] and sc[b][32] (16 scales
// s, then 16 minimum terms e); channels past N are 0 with scale 0.
template <Format F>
void repack(const Q4View& w, int64_t p, int64_t b0, int64_t nb, int8_t* codes, float* sc) {
  const FormatInfo fi = info(F);
  for (int64_t b = 0; b < nb; ++b) {
    __m256i r[16];
    for (int c = 0; c < 16; ++c) {
      const int64_t n = 16 * p + c;
      if (n >= w.n) {
        r[c] = _mm256_setzero_si256();
        sc[32 * b + c] = sc[32 * b + 16 + c] = 0.0f;
        continue;
      }
      const uint8_t* u = unit_of(fi, w.rows[n], b0 + b);
      block_scales<F>(u, b0 + b, sc[32 * b + c], sc[32 * b + 16 + c]);
      r[c] = block_codes<F>(u, b0 + b);
    }
    transpose8(r);
    transpose8(r + 8);
    int8_t* dst = codes + b * 512;
    for (int q = 0; q < 8; ++q) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 64 * q), r[q]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 64 * q + 32), r[8 + q]);
    }
  }
}

// R rows (row i at a + i·lda, at the step's first k; its block sums x_b at x + i·ldx) × one
// panel over nb repacked blocks, continuing from `in` ([R][16] floats; null: from 0), sums to
// `out`. kFive: int16 sums flushed per 16-k half; kMin: the K-quants' e_b·x_b. Edge tiles.
template <int R, bool kFive, bool kMin>
void tile(const uint8_t* a, int64_t lda, const int8_t* codes, const float* sc, int64_t nb,
          const float* x, int64_t ldx, const float* in, float* out) {
  constexpr int kHalves = kFive ? 2 : 1, kQuads = 8 / kHalves;
  __m256 f[R][2];
#pragma GCC unroll 3
  for (int i = 0; i < R; ++i)
    for (int h = 0; h < 2; ++h) f[i][h] = in ? _mm256_loadu_ps(in + 16 * i + 8 * h) : _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < nb; ++b) {
    const int8_t* wb = codes + b * 512;
    const uint8_t* ab = a + b * kBlock;
    for (int half = 0; half < kHalves; ++half) {
      __m256i s[R][2];
#pragma GCC unroll 3
      for (int i = 0; i < R; ++i) s[i][0] = s[i][1] = _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int q = half * kQuads; q < (half + 1) * kQuads; ++q) {
        const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + 64 * q));
        const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + 64 * q + 32));
#pragma GCC unroll 3
        for (int i = 0; i < R; ++i) {
          int32_t v;
          std::memcpy(&v, ab + i * lda + 4 * q, 4);
          const __m256i xv = _mm256_set1_epi32(v);
          s[i][0] = _mm256_add_epi16(s[i][0], _mm256_maddubs_epi16(xv, w0));
          s[i][1] = _mm256_add_epi16(s[i][1], _mm256_maddubs_epi16(xv, w1));
        }
      }
#pragma GCC unroll 3
      for (int i = 0; i < R; ++i)
        for (int h = 0; h < 2; ++h)
          f[i][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(s[i][h], ones)),
                                    _mm256_load_ps(sc + 32 * b + 8 * h), f[i][h]);
    }
    if constexpr (kMin) {
#pragma GCC unroll 3
      for (int i = 0; i < R; ++i) {
        const __m256 xb = _mm256_broadcast_ss(x + i * ldx + b);
        for (int h = 0; h < 2; ++h)
          f[i][h] = _mm256_fmadd_ps(xb, _mm256_load_ps(sc + 32 * b + 16 + 8 * h), f[i][h]);
      }
    }
  }
#pragma GCC unroll 3
  for (int i = 0; i < R; ++i)
    for (int h = 0; h < 2; ++h) _mm256_storeu_ps(out + 16 * i + 8 * h, f[i][h]);
}

// The full 3-row tile in asm: GCC's allocation of the intrinsics version above reassociated
// the int16 sums into a tree of products and spilled 26 ymm per block (the kernel ran at
// 1.3× the int16 one instead of 1.66×). Registers: sums ymm0-5, float accumulators ymm6-11,
// codes ymm12-13, broadcast ymm14, product ymm15.
#define OCTET_Q(q)                                            \
  "vmovdqa " #q "*64(%[w]), %%ymm12\n\t"                      \
  "vmovdqa " #q "*64+32(%[w]), %%ymm13\n\t"                   \
  OCTET_ROW(q, "(%[a])", 0, 1)                                \
  OCTET_ROW(q, "(%[a],%[lda])", 2, 3)                         \
  OCTET_ROW(q, "(%[a],%[lda],2)", 4, 5)
#define OCTET_ROW(q, addr, s0, s1)                             \
  "vpbroadcastd " #q "*4" addr ", %%ymm14\n\t"                \
  "vpmaddubsw %%ymm12, %%ymm14, %%ymm15\n\t"                  \
  "vpaddw %%ymm15, %%ymm" #s0 ", %%ymm" #s0 "\n\t"             \
  "vpmaddubsw %%ymm13, %%ymm14, %%ymm15\n\t"                  \
  "vpaddw %%ymm15, %%ymm" #s1 ", %%ymm" #s1 "\n\t"
#define OCTET_ZERO                                            \
  "vpxor %%xmm0, %%xmm0, %%xmm0\n\t"                          \
  "vpxor %%xmm1, %%xmm1, %%xmm1\n\t"                          \
  "vpxor %%xmm2, %%xmm2, %%xmm2\n\t"                          \
  "vpxor %%xmm3, %%xmm3, %%xmm3\n\t"                          \
  "vpxor %%xmm4, %%xmm4, %%xmm4\n\t"                          \
  "vpxor %%xmm5, %%xmm5, %%xmm5\n\t"
// Sum s → int32 → float, times the block's scales (h: channels 0-7 or 8-15) into f.
#define OCTET_F(s_, f_, h)                                     \
  "vpmaddwd (%[ones]), %%ymm" #s_ ", %%ymm15\n\t"             \
  "vcvtdq2ps %%ymm15, %%ymm15\n\t"                            \
  "vfmadd231ps " #h "*32(%[s]), %%ymm15, %%ymm" #f_ "\n\t"
#define OCTET_FLUSH                                           \
  OCTET_F(0, 6, 0) OCTET_F(1, 7, 1) OCTET_F(2, 8, 0) OCTET_F(3, 9, 1) \
  OCTET_F(4, 10, 0) OCTET_F(5, 11, 1)
// The K-quants' minimum term: the row's block sum x_b times the channels' e_b.
#define OCTET_M(addr, f0, f1)                                 \
  "vbroadcastss " addr ", %%ymm14\n\t"                        \
  "vfmadd231ps 64(%[s]), %%ymm14, %%ymm" #f0 "\n\t"            \
  "vfmadd231ps 96(%[s]), %%ymm14, %%ymm" #f1 "\n\t"
#define OCTET_MIN                                             \
  OCTET_M("(%[x])", 6, 7) OCTET_M("(%[x],%[ldx])", 8, 9) OCTET_M("(%[x],%[ldx],2)", 10, 11)
#define OCTET_BLOCK4 OCTET_ZERO OCTET_Q(0) OCTET_Q(1) OCTET_Q(2) OCTET_Q(3) \
  OCTET_Q(4) OCTET_Q(5) OCTET_Q(6) OCTET_Q(7) OCTET_FLUSH
#define OCTET_BLOCK5 OCTET_ZERO OCTET_Q(0) OCTET_Q(1) OCTET_Q(2) OCTET_Q(3) OCTET_FLUSH \
  OCTET_ZERO OCTET_Q(4) OCTET_Q(5) OCTET_Q(6) OCTET_Q(7) OCTET_FLUSH
#define OCTET_ACC(op) op(6, 0) op(7, 32) op(8, 64) op(9, 96) op(10, 128) op(11, 160)
#define OCTET_Z(r, off) "vxorps %%xmm" #r ", %%xmm" #r ", %%xmm" #r "\n\t"
#define OCTET_L(r, off) "vmovups " #off "(%[in]), %%ymm" #r "\n\t"
#define OCTET_S(r, off) "vmovups %%ymm" #r ", " #off "(%[out])\n\t"
#define OCTET_TILE3(BODY, NEXT_X)                                                         \
  __asm__ volatile(                                                                       \
      "test %[in], %[in]\n\t"                                                             \
      "jnz 2f\n\t"                                                                        \
      OCTET_ACC(OCTET_Z)                                                                  \
      "jmp 3f\n\t"                                                                        \
      "2:\n\t"                                                                            \
      OCTET_ACC(OCTET_L)                                                                  \
      "3:\n\t"                                                                            \
      "test %[nb], %[nb]\n\t"                                                             \
      "jz 4f\n\t"                                                                         \
      ".p2align 5\n\t"                                                                    \
      "1:\n\t"                                                                            \
      BODY                                                                                \
      "add $512, %[w]\n\t"                                                                \
      "add $32, %[a]\n\t"                                                                 \
      "add $128, %[s]\n\t"                                                                \
      NEXT_X                                                                              \
      "dec %[nb]\n\t"                                                                     \
      "jnz 1b\n\t"                                                                        \
      "4:\n\t"                                                                            \
      OCTET_ACC(OCTET_S)                                                                  \
      "vzeroupper\n\t"                                                                    \
      : [a] "+r"(a), [w] "+r"(w), [s] "+r"(s), [x] "+r"(x), [nb] "+r"(nb)                 \
      : [lda] "r"(lda), [ldx] "r"(ldx_bytes), [in] "r"(in), [out] "r"(out),              \
        [ones] "r"(ones)                                                                  \
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",   \
        "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory")

template <bool kFive, bool kMin>
void tile_3(const uint8_t* a, int64_t lda, const int8_t* codes, const float* sc, int64_t nb,
            const float* x, int64_t ldx, const float* in, float* out) {
  static const int16_t ones[16] __attribute__((aligned(32))) = {1, 1, 1, 1, 1, 1, 1, 1,
                                                                 1, 1, 1, 1, 1, 1, 1, 1};
  const int8_t* w = codes;
  const float* s = sc;
  const int64_t ldx_bytes = ldx * 4;
  if constexpr (!kFive && !kMin) OCTET_TILE3(OCTET_BLOCK4, "");
  else if constexpr (kFive && !kMin) OCTET_TILE3(OCTET_BLOCK5, "");
  else if constexpr (!kFive && kMin) OCTET_TILE3(OCTET_BLOCK4 OCTET_MIN, "add $4, %[x]\n\t");
  else OCTET_TILE3(OCTET_BLOCK5 OCTET_MIN, "add $4, %[x]\n\t");
}
#undef OCTET_TILE3
#undef OCTET_S
#undef OCTET_L
#undef OCTET_Z
#undef OCTET_ACC
#undef OCTET_BLOCK5
#undef OCTET_BLOCK4
#undef OCTET_MIN
#undef OCTET_M
#undef OCTET_FLUSH
#undef OCTET_F
#undef OCTET_ZERO
#undef OCTET_ROW
#undef OCTET_Q

using TileFn = void (*)(const uint8_t*, int64_t, const int8_t*, const float*, int64_t,
                        const float*, int64_t, const float*, float*);
template <bool kFive, bool kMin>
constexpr std::array<TileFn, kR> kTiles = {&tile<1, kFive, kMin>, &tile<2, kFive, kMin>,
                                           &tile_3<kFive, kMin>};

// Finished sums of `rows` rows × panel p (row i at acc + 16·i) through the epilogue.
void store(const float* acc, int64_t rows, const Acts& a, const Q4View& w, const float* corr,
           const int8::Epilogue& ep, int64_t r0, int64_t p) {
  const int64_t n0 = 16 * p, valid = std::min<int64_t>(16, w.n - n0);
  for (int64_t i = 0; i < rows; ++i) {
    float* y = ep.y + (r0 + i) * ep.ldy + n0;
    const float rs = a.row_scale[r0 + i];
    if (valid == 16) {
      const __m256 vrs = _mm256_set1_ps(rs);
      for (int h = 0; h < 2; ++h) {
        __m256 base = ep.accumulate ? _mm256_loadu_ps(y + 8 * h) : _mm256_setzero_ps();
        if (ep.bias) base = _mm256_add_ps(base, _mm256_loadu_ps(ep.bias + n0 + 8 * h));
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(acc + 16 * i + 8 * h),
                                       _mm256_loadu_ps(corr + n0 + 8 * h));
        _mm256_storeu_ps(y + 8 * h, _mm256_fmadd_ps(d, vrs, base));
      }
    } else {
      for (int64_t l = 0; l < valid; ++l) {
        float base = ep.accumulate ? y[l] : 0.0f;
        if (ep.bias) base += ep.bias[n0 + l];
        y[l] = std::fma(acc[16 * i + l] - corr[n0 + l], rs, base);
      }
    }
  }
}

// The shadow path (kernels/q4_gemm.h) of one row chunk. Its outliers' distinct columns are
// few (a 192-row chunk of Gemma 3 270M: ~80-480 of K = 640-2048) and each is hit by several
// rows, so per panel and K step the weights of those columns are decoded once from the
// repacked blocks into float (`stage`, like the int8 path's hot columns), and each outlier is
// then two FMAs into its row's sums. Sums are in the kernel's units: residual / row_scale.
struct ChunkShadow {
  struct Entry {
    int32_t u;  // index of its column in cols
    float a;    // residual / row_scale
  };
  std::vector<int32_t> cols, colmap, step_u;  // colmap[col]: index in cols (-1 between chunks)
  std::vector<Entry> e;                       // the chunk's outliers, in Q4Shadow order
  std::vector<int32_t> range;                 // [chunk row][K step + 1]: its entries by step
  octet::detail::AlignedVector<float> stage;  // [column of the step][16 channels]
  int64_t steps = 0;

  // Rows [mc0, mc1); K steps of kb blocks.
  void prepare(const Q4Shadow& sh, const Acts& a, int64_t k, int64_t mc0, int64_t mc1,
               int64_t nks, int64_t kb) {
    const int32_t base = sh.row_begin[mc0], end = sh.row_begin[mc1];
    // Distinct columns in order by marking them and scanning K (sorting the chunk's ~1000
    // column numbers was a quarter of this path's time; every kernel call prepares its rows).
    if (static_cast<int64_t>(colmap.size()) < k) colmap.assign(static_cast<size_t>(k), -1);
    for (int32_t t = base; t < end; ++t) colmap[static_cast<size_t>(sh.e[t].col)] = 0;
    cols.clear();
    for (int64_t c = 0; c < k; ++c)
      if (colmap[static_cast<size_t>(c)] == 0) {
        colmap[static_cast<size_t>(c)] = static_cast<int32_t>(cols.size());
        cols.push_back(static_cast<int32_t>(c));
      }
    e.resize(static_cast<size_t>(end - base));
    for (int64_t r = mc0; r < mc1; ++r) {
      const float inv = 1.0f / a.row_scale[r];
      for (int32_t t = sh.row_begin[r]; t < sh.row_begin[r + 1]; ++t)
        e[static_cast<size_t>(t - base)] = {colmap[static_cast<size_t>(sh.e[t].col)], sh.e[t].residual * inv};
    }
    for (const int32_t c : cols) colmap[static_cast<size_t>(c)] = -1;  // unmarked for the next
    step_u.resize(static_cast<size_t>(nks + 1));
    for (int64_t ks = 0; ks <= nks; ++ks)
      step_u[static_cast<size_t>(ks)] = static_cast<int32_t>(
          std::lower_bound(cols.begin(), cols.end(), std::min(ks * kb, k / kBlock) * kBlock) -
          cols.begin());
    // Each row's entries of each K step (in column order: the steps' ranges follow).
    steps = nks;
    range.resize(static_cast<size_t>((mc1 - mc0) * (nks + 1)));
    for (int64_t r = mc0; r < mc1; ++r) {
      int32_t* rr = range.data() + (r - mc0) * (nks + 1);
      int32_t t = sh.row_begin[r] - base;
      const int32_t x = sh.row_begin[r + 1] - base;
      for (int64_t ks = 0; ks < nks; ++ks) {
        rr[ks] = t;
        while (t < x && e[static_cast<size_t>(t)].u < step_u[static_cast<size_t>(ks + 1)]) ++t;
      }
      rr[nks] = t;
    }
    if (stage.size() < cols.size() * 16) stage.resize(cols.size() * 16);
  }

  // The step's columns' weights s·c + e for the panel, from the repacked blocks
  // (codes, sc as repack left them: block b0 first).
  template <bool kMin>
  void stage_step(int64_t ks, int64_t b0, const int8_t* codes, const float* sc) {
    const int32_t u0 = step_u[static_cast<size_t>(ks)], u1 = step_u[static_cast<size_t>(ks + 1)];
    const __m256 unscale = _mm256_set1_ps(1.0f / int8::kShadowQScale);  // exact: 2^-24
    for (int32_t u = u0; u < u1; ++u) {
      const int64_t col = cols[static_cast<size_t>(u)] - b0 * kBlock, b = col / kBlock;
      const int8_t* q = codes + b * 512 + (col % kBlock) / 4 * 64;
      const __m256i top =
          _mm256_load_si256(reinterpret_cast<const __m256i*>(int8::kByteToTop[col & 3]));
      const float* s = sc + 32 * b;
      float* dst = stage.data() + static_cast<size_t>(u - u0) * 16;
      for (int h = 0; h < 2; ++h) {
        // The code byte moved to the top of its 32-bit lane converts to c·2^24.
        const __m256 c = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(
            _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 32 * h)), top));
        const __m256 s24 = _mm256_mul_ps(_mm256_load_ps(s + 8 * h), unscale);
        _mm256_store_ps(dst + 8 * h, kMin ? _mm256_fmadd_ps(s24, c, _mm256_load_ps(s + 16 + 8 * h))
                                          : _mm256_mul_ps(s24, c));
      }
    }
  }

  // Chunk row i's outliers of step ks into its 16 sums `out`.
  __attribute__((always_inline)) void add_row(int64_t i, int64_t ks, float* out) const {
    const int32_t* rr = range.data() + i * (steps + 1) + ks;
    int32_t t = rr[0];
    const int32_t t1 = rr[1];
    if (t == t1) return;
    const int32_t u0 = step_u[static_cast<size_t>(ks)];
    // Two entries per pass into two pairs of sums: the FMA chains' latency, not their
    // throughput, bounded a single pair.
    __m256 f0 = _mm256_loadu_ps(out), f1 = _mm256_loadu_ps(out + 8);
    __m256 g0 = _mm256_setzero_ps(), g1 = _mm256_setzero_ps();
    const auto add = [&](const Entry& x, __m256& s0, __m256& s1) {
      const float* w = stage.data() + static_cast<size_t>(x.u - u0) * 16;
      const __m256 av = _mm256_set1_ps(x.a);
      s0 = _mm256_fmadd_ps(av, _mm256_load_ps(w), s0);
      s1 = _mm256_fmadd_ps(av, _mm256_load_ps(w + 8), s1);
    };
    for (; t + 2 <= t1; t += 2) {
      add(e[static_cast<size_t>(t)], f0, f1);
      add(e[static_cast<size_t>(t + 1)], g0, g1);
    }
    if (t < t1) add(e[static_cast<size_t>(t)], f0, f1);
    _mm256_storeu_ps(out, _mm256_add_ps(f0, g0));
    _mm256_storeu_ps(out + 8, _mm256_add_ps(f1, g1));
  }
};

template <Format F>
void column_offsets_format(const Q4View& w, float* corr) {
  constexpr FormatInfo kInfo = info(F);
  const int64_t blocks = w.k / kBlock;
  const __m256i bias = _mm256_set1_epi8(16);
  for (int64_t n = 0; n < w.n; ++n) {
    float acc = 0.0f;
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* u = unit_of(kInfo, w.rows[n], b);
      float s, e;
      block_scales<F>(u, b, s, e);
      // Σ c = Σ (c + 16) − 512, the biased codes unsigned for vpsadbw.
      const __m256i v = _mm256_sad_epu8(_mm256_add_epi8(block_codes<F>(u, b), bias),
                                        _mm256_setzero_si256());
      const __m128i t = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
      const int64_t sum = _mm_cvtsi128_si64(_mm_add_epi64(t, _mm_unpackhi_epi64(t, t))) - 512;
      acc = std::fma(static_cast<float>(128 * sum), s, acc);
    }
    corr[n] = acc;
  }
}

// Rows [m0, m1) × panels [p0, p1) of one format.
template <Format F>
void gemm_format(const Acts& a, const Q4View& w, const float* corr, const int8::Epilogue& ep,
                 int64_t m0, int64_t m1, int64_t p0, int64_t p1, const Q4Shadow* shadow) {
  constexpr FormatInfo kInfo = info(F);
  constexpr auto& tiles = kTiles<kInfo.five_bit, kInfo.has_min>;
  const int64_t blocks = w.k / kBlock;
  const int64_t nks = (blocks + kKb - 1) / kKb;  // K steps of equal size (± 1 block)
  const int64_t kb = (blocks + nks - 1) / nks;
  thread_local octet::detail::AlignedVector<int8_t> codes;
  thread_local octet::detail::AlignedVector<float> sc, part, xsum;
  thread_local ChunkShadow chunk_shadow;
  const auto grow = [](auto& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  };
  grow(codes, kb * 512);
  grow(sc, kb * 32);
  if (nks > 1) grow(part, kMc * std::min(kPg, p1 - p0) * 16);
  if (kInfo.has_min) grow(xsum, kMc * blocks);
  alignas(32) float done[kR * 16];
  for (int64_t mc0 = m0; mc0 < m1; mc0 += kMc) {
    const int64_t mc1 = std::min(m1, mc0 + kMc);
    const bool shade = shadow && shadow->row_begin[mc0] < shadow->row_begin[mc1];
    if (shade) chunk_shadow.prepare(*shadow, a, w.k, mc0, mc1, nks, kb);
    if constexpr (kInfo.has_min) {
      // x_b = Σ_{k in b} q_x = Σ a_u − 4096 per row and block, for the chunk's rows.
      for (int64_t r = mc0; r < mc1; ++r)
        for (int64_t b = 0; b < blocks; ++b) {
          const __m256i v = _mm256_sad_epu8(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.data + r * a.ld + 32 * b)),
              _mm256_setzero_si256());
          const __m128i t = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
          xsum[(r - mc0) * blocks + b] =
              static_cast<float>(_mm_cvtsi128_si64(_mm_add_epi64(t, _mm_unpackhi_epi64(t, t))) - 4096);
        }
    }
    for (int64_t pg0 = p0; pg0 < p1; pg0 += kPg) {
      const int64_t pg1 = std::min(p1, pg0 + kPg), np = pg1 - pg0;
      for (int64_t ks = 0; ks < nks; ++ks) {
        const int64_t b0 = ks * kb, nb = std::min(blocks, b0 + kb) - b0;
        const bool first = ks == 0, last = ks == nks - 1;
        for (int64_t p = pg0; p < pg1; ++p) {
          repack<F>(w, p, b0, nb, codes.data(), sc.data());
          if (shade) chunk_shadow.stage_step<kInfo.has_min>(ks, b0, codes.data(), sc.data());
          for (int64_t i = mc0; i < mc1; i += kR) {
            const int64_t rows = std::min<int64_t>(kR, mc1 - i);
            float* slot = nks > 1 ? part.data() + (((i - mc0) / kR) * np + (p - pg0)) * kR * 16
                                  : nullptr;
            float* out = last ? done : slot;
            tiles[rows - 1](a.data + i * a.ld + b0 * kBlock, a.ld, codes.data(), sc.data(), nb,
                            kInfo.has_min ? xsum.data() + (i - mc0) * blocks + b0 : nullptr,
                            blocks,
                            first ? nullptr : slot, out);
            if (shade)
              for (int64_t r = i; r < i + rows; ++r)
                chunk_shadow.add_row(r - mc0, ks, out + 16 * (r - i));
            if (last) store(done, rows, a, w, corr, ep, i, p);
          }
        }
      }
    }
  }
}

}  // namespace

void column_offsets_avx2(const Q4View& w, float* corr) {
  switch (w.format) {
    case Format::Q4_0: return column_offsets_format<Format::Q4_0>(w, corr);
    case Format::Q5_0: return column_offsets_format<Format::Q5_0>(w, corr);
    case Format::Q4_K: return column_offsets_format<Format::Q4_K>(w, corr);
    case Format::Q5_K: return column_offsets_format<Format::Q5_K>(w, corr);
  }
}

void gemm_avx2(const Acts& a, const Q4View& w, const float* corr, const int8::Epilogue& ep,
               int64_t m0, int64_t m1, int64_t p0, int64_t p1, const Q4Shadow* shadow) {
  if (m1 <= m0 || p1 <= p0) return;
  switch (w.format) {
    case Format::Q4_0: return gemm_format<Format::Q4_0>(a, w, corr, ep, m0, m1, p0, p1, shadow);
    case Format::Q5_0: return gemm_format<Format::Q5_0>(a, w, corr, ep, m0, m1, p0, p1, shadow);
    case Format::Q4_K: return gemm_format<Format::Q4_K>(a, w, corr, ep, m0, m1, p0, p1, shadow);
    case Format::Q5_K: return gemm_format<Format::Q5_K>(a, w, corr, ep, m0, m1, p0, p1, shadow);
  }
}

}  // namespace octet::kernels::q4
