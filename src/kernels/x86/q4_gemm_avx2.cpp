// AVX2 W4A8 GEMM over Q4_0 blocks read in place (definition: kernels/q4_gemm.h).
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
#include <cstring>

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

// Panel p's blocks [b0, b0 + nb): codes[b][quad][16 channels][4 k] (c = code − 8; channels past
// N are 0 with scale 0) and sc[b][16].
void repack(const Q4View& w, int64_t p, int64_t b0, int64_t nb, int8_t* codes, float* sc) {
  const __m256i low = _mm256_set1_epi8(15), eight = _mm256_set1_epi8(8);
  for (int64_t b = 0; b < nb; ++b) {
    __m256i r[16];
    for (int c = 0; c < 16; ++c) {
      const int64_t n = 16 * p + c;
      if (n >= w.n) {
        r[c] = _mm256_setzero_si256();
        sc[16 * b + c] = 0.0f;
        continue;
      }
      const uint8_t* blk = w.rows[n] + (b0 + b) * kBlockBytes;
      uint16_t h;
      std::memcpy(&h, blk, 2);
      sc[16 * b + c] = _cvtsh_ss(h);
      const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      // k 0-15 from the low nibbles, 16-31 from the high: lane q (32 bits) = k-quad q.
      const __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(qs, 4), qs), low);
      r[c] = _mm256_sub_epi8(v, eight);
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

// R rows (row i at a + i·lda, at the step's first k) × one panel over nb repacked blocks,
// continuing from `in` ([R][16] floats; null: from 0), sums to `out`. Edge tiles (1-2 rows).
template <int R>
void tile(const uint8_t* a, int64_t lda, const int8_t* codes, const float* sc, int64_t nb,
          const float* in, float* out) {
  __m256 f[R][2];
#pragma GCC unroll 3
  for (int i = 0; i < R; ++i)
    for (int h = 0; h < 2; ++h) f[i][h] = in ? _mm256_loadu_ps(in + 16 * i + 8 * h) : _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < nb; ++b) {
    __m256i s[R][2];
#pragma GCC unroll 3
    for (int i = 0; i < R; ++i) s[i][0] = s[i][1] = _mm256_setzero_si256();
    const int8_t* wb = codes + b * 512;
    const uint8_t* ab = a + b * kBlock;
#pragma GCC unroll 8
    for (int q = 0; q < 8; ++q) {
      const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + 64 * q));
      const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + 64 * q + 32));
#pragma GCC unroll 3
      for (int i = 0; i < R; ++i) {
        int32_t v;
        std::memcpy(&v, ab + i * lda + 4 * q, 4);
        const __m256i x = _mm256_set1_epi32(v);
        s[i][0] = _mm256_add_epi16(s[i][0], _mm256_maddubs_epi16(x, w0));
        s[i][1] = _mm256_add_epi16(s[i][1], _mm256_maddubs_epi16(x, w1));
      }
    }
#pragma GCC unroll 3
    for (int i = 0; i < R; ++i)
      for (int h = 0; h < 2; ++h)
        f[i][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(s[i][h], ones)),
                                  _mm256_load_ps(sc + 16 * b + 8 * h), f[i][h]);
  }
#pragma GCC unroll 3
  for (int i = 0; i < R; ++i)
    for (int h = 0; h < 2; ++h) _mm256_storeu_ps(out + 16 * i + 8 * h, f[i][h]);
}

// The full 3-row tile in asm: GCC's allocation of the intrinsics version above reassociated
// the int16 sums into a tree of products and spilled 26 ymm per block (the kernel ran at
// 1.3× the int16 one instead of 1.66×). Registers: sums ymm0-5, float accumulators ymm6-11,
// codes ymm12-13, broadcast ymm14, product ymm15.
void tile_3(const uint8_t* a, int64_t lda, const int8_t* codes, const float* sc, int64_t nb,
            const float* in, float* out) {
  static const int16_t ones[16] __attribute__((aligned(32))) = {1, 1, 1, 1, 1, 1, 1, 1,
                                                                 1, 1, 1, 1, 1, 1, 1, 1};
  const int8_t* w = codes;
  const float* s = sc;
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
// Sum s → int32 → float, times the block's scales (h: channels 0-7 or 8-15) into f.
#define OCTET_F(s_, f_, h)                                     \
  "vpmaddwd (%[ones]), %%ymm" #s_ ", %%ymm15\n\t"             \
  "vcvtdq2ps %%ymm15, %%ymm15\n\t"                            \
  "vfmadd231ps " #h "*32(%[s]), %%ymm15, %%ymm" #f_ "\n\t"
#define OCTET_ACC(op) op(6, 0) op(7, 32) op(8, 64) op(9, 96) op(10, 128) op(11, 160)
#define OCTET_Z(r, off) "vxorps %%xmm" #r ", %%xmm" #r ", %%xmm" #r "\n\t"
#define OCTET_L(r, off) "vmovups " #off "(%[in]), %%ymm" #r "\n\t"
#define OCTET_S(r, off) "vmovups %%ymm" #r ", " #off "(%[out])\n\t"
  __asm__ volatile(
      "test %[in], %[in]\n\t"
      "jnz 2f\n\t"
      OCTET_ACC(OCTET_Z)
      "jmp 3f\n\t"
      "2:\n\t"
      OCTET_ACC(OCTET_L)
      "3:\n\t"
      "test %[nb], %[nb]\n\t"
      "jz 4f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      "vpxor %%xmm0, %%xmm0, %%xmm0\n\t"
      "vpxor %%xmm1, %%xmm1, %%xmm1\n\t"
      "vpxor %%xmm2, %%xmm2, %%xmm2\n\t"
      "vpxor %%xmm3, %%xmm3, %%xmm3\n\t"
      "vpxor %%xmm4, %%xmm4, %%xmm4\n\t"
      "vpxor %%xmm5, %%xmm5, %%xmm5\n\t"
      OCTET_Q(0) OCTET_Q(1) OCTET_Q(2) OCTET_Q(3) OCTET_Q(4) OCTET_Q(5) OCTET_Q(6) OCTET_Q(7)
      OCTET_F(0, 6, 0) OCTET_F(1, 7, 1) OCTET_F(2, 8, 0) OCTET_F(3, 9, 1)
      OCTET_F(4, 10, 0) OCTET_F(5, 11, 1)
      "add $512, %[w]\n\t"
      "add $32, %[a]\n\t"
      "add $64, %[s]\n\t"
      "dec %[nb]\n\t"
      "jnz 1b\n\t"
      "4:\n\t"
      OCTET_ACC(OCTET_S)
      "vzeroupper\n\t"
      : [a] "+r"(a), [w] "+r"(w), [s] "+r"(s), [nb] "+r"(nb)
      : [lda] "r"(lda), [in] "r"(in), [out] "r"(out), [ones] "r"(ones)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
#undef OCTET_S
#undef OCTET_L
#undef OCTET_Z
#undef OCTET_ACC
#undef OCTET_F
#undef OCTET_ROW
#undef OCTET_Q
}

using TileFn = void (*)(const uint8_t*, int64_t, const int8_t*, const float*, int64_t,
                        const float*, float*);
constexpr std::array<TileFn, kR> kTiles = {&tile<1>, &tile<2>, &tile_3};

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

}  // namespace

void gemm_avx2(const Acts& a, const Q4View& w, const float* corr, const int8::Epilogue& ep,
               int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  if (m1 <= m0 || p1 <= p0) return;
  const int64_t blocks = w.k / kBlock;
  const int64_t nks = (blocks + kKb - 1) / kKb;  // K steps of equal size (± 1 block)
  const int64_t kb = (blocks + nks - 1) / nks;
  thread_local octet::detail::AlignedVector<int8_t> codes;
  thread_local octet::detail::AlignedVector<float> sc, part;
  const auto grow = [](auto& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  };
  grow(codes, kb * 512);
  grow(sc, kb * 16);
  if (nks > 1) grow(part, kMc * std::min(kPg, p1 - p0) * 16);
  alignas(32) float done[kR * 16];
  for (int64_t mc0 = m0; mc0 < m1; mc0 += kMc) {
    const int64_t mc1 = std::min(m1, mc0 + kMc);
    for (int64_t pg0 = p0; pg0 < p1; pg0 += kPg) {
      const int64_t pg1 = std::min(p1, pg0 + kPg), np = pg1 - pg0;
      for (int64_t ks = 0; ks < nks; ++ks) {
        const int64_t b0 = ks * kb, nb = std::min(blocks, b0 + kb) - b0;
        const bool first = ks == 0, last = ks == nks - 1;
        for (int64_t p = pg0; p < pg1; ++p) {
          repack(w, p, b0, nb, codes.data(), sc.data());
          for (int64_t i = mc0; i < mc1; i += kR) {
            const int64_t rows = std::min<int64_t>(kR, mc1 - i);
            float* slot = nks > 1 ? part.data() + (((i - mc0) / kR) * np + (p - pg0)) * kR * 16
                                  : nullptr;
            kTiles[rows - 1](a.data + i * a.ld + b0 * kBlock, a.ld, codes.data(), sc.data(), nb,
                             first ? nullptr : slot, last ? done : slot);
            if (last) store(done, rows, a, w, corr, ep, i, p);
          }
        }
      }
    }
  }
}

}  // namespace octet::kernels::q4
