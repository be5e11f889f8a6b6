// The shadow path's kernel (shadow_rows_* in kernels/int8_kernels.h), written once over a
// SIMD traits type T and instantiated by x86/int8_vnni.cpp (zmm, 16 lanes) and
// x86/int8_avx2.cpp (ymm, 8 lanes), each compiled with its own ISA flags. Include it inside
// the TU's anonymous namespace after <immintrin.h> (internal linkage: the instantiations of
// the two ISAs must never merge at link time).
//
// Traits: F (float vector of W lanes), I (int vector), kMaxNP (panels per block: the
// accumulators, 2 per vector, must fit the register file), kPairMaxNP (blocks this narrow
// run two rows in lockstep, for enough independent FMA chains), zero(), set1(f), loadf(p),
// loadi(p), storef(p, v), fmadd(a, b, c) = a·b + c, add(a, b), mul(a, b), top(v, ctrl) = the
// float value of each 32-bit lane of v after vpshufb with ctrl (a kByteToTop row: byte b of
// the lane moved to its top byte, i.e. q·2^24), loadn(p, n) / storen(p, v, n) (first n ≤ W
// lanes; the rest zero / untouched), prefetch_l1(p), prefetch_l2(p).

// kByteToTop: kernels/int8_kernels.h.

// Output panels p0 .. p0 + NP of the weights, as the shadow kernel reads them: each panel is
// 16 outputs, VP = 16 / W vectors.
template <class T, int NP>
struct ShadowCols {
  static constexpr int VP = 16 / T::W, NV = NP * VP;
  const int8_t* base[NP];  // panel j's first group
  int64_t step[NP];        // bytes per group in panel j's column block
  int64_t step0;           // the common step when all panels have the same (U below)
  typename T::F sw[NV];    // weight scales ·2^-24
  int64_t hot_off[NP];     // floats from a ShadowEntry's hot pointer to panel j
  int64_t n0;              // first output
  int tail;                // valid outputs of the last panel (1..16)
};

// U: all NP panels lie in column blocks of the same step (every block but a matrix's last,
// narrower one), so an entry's group offset is one multiply for all its panels.
// kCold false: every entry is hot and there are no int8 weights (WView::data null).
template <class T, int NP, bool U, bool kCold>
inline __attribute__((always_inline)) void shadow_add(const ShadowEntry& en,
                                                      const ShadowCols<T, NP>& w,
                                                      typename T::F (&h)[NP * (16 / T::W)],
                                                      typename T::F (&c)[NP * (16 / T::W)]) {
  constexpr int VP = 16 / T::W;
  const typename T::F a = T::set1(en.residual);
  if (!kCold || en.hot) {
    // Padded panels: lanes past N hold 0.
#pragma GCC unroll 16
    for (int v = 0; v < NP * VP; ++v)
      h[v] = T::fmadd(a, T::loadf(en.hot + w.hot_off[v / VP] + (v % VP) * T::W), h[v]);
  } else {
    // Byte col % 4 of each 32-bit lane moved to the top byte with one vpshufb and converted
    // as it is: q·2^24 (see shadow_rows_ref). A variable shift, then the sign shift back
    // made this loop bound by the vector shift ports (~3.7 cycles per panel and entry with
    // everything in L1).
    const uint32_t col = static_cast<uint32_t>(en.col);
    const typename T::I top = T::loadi(kByteToTop[col & 3]);
    const int64_t g = col >> 2, off = U ? g * w.step0 : 0;
#pragma GCC unroll 16
    for (int v = 0; v < NP * VP; ++v) {
      const int j = v / VP;
      const int8_t* p = w.base[j] + (U ? off : g * w.step[j]) + (v % VP) * T::W * 4;
      c[v] = T::fmadd(a, T::top(T::loadi(p), top), c[v]);
    }
  }
}

// An entry's int8 lines, a few entries ahead of use: the weights of a large-K linear are
// not in L2 (the down projection's 4.4 MB on the 0.5B shape), the entries' columns are
// random, and out-of-order execution alone kept too few of these misses in flight
// (isolated kernel, cold columns spread over K = 4864: 2.2-3.3 → 1.1-1.5 ns per entry and
// panel). Hot entries' lines are prefetched too (cheaper than a branch; harmless).
constexpr int kShadowAhead = 8;

template <class T, int NP, bool U>
inline __attribute__((always_inline)) void shadow_prefetch(const ShadowEntry& en,
                                                           const ShadowCols<T, NP>& w) {
  const int64_t g = static_cast<uint32_t>(en.col) >> 2, off = U ? g * w.step0 : 0;
#pragma GCC unroll 8
  for (int j = 0; j < NP; ++j) T::prefetch_l1(w.base[j] + (U ? off : g * w.step[j]));
}

template <class T, int NP, bool kCold>
inline __attribute__((always_inline)) void shadow_store(float* yr, const ShadowCols<T, NP>& w,
                                                        const typename T::F (&h)[NP * (16 / T::W)],
                                                        const typename T::F (&c)[NP * (16 / T::W)]) {
  constexpr int VP = 16 / T::W;
#pragma GCC unroll 16
  for (int v = 0; v < NP * VP; ++v) {
    // Lanes of this vector inside N: all but in the last panel.
    const int off = (v % VP) * T::W;
    const int n = v / VP < NP - 1 ? T::W : std::min(T::W, std::max(0, w.tail - off));
    if (n == 0) continue;
    float* p = yr + 16 * (v / VP) + off;
    // No lambda here: one capturing h and c by reference kept GCC 12 from putting the
    // accumulator arrays in registers, so every FMA of the loops above went through the
    // stack (a store-forwarding chain per entry; the kernel ran 1.5-2x slower on zmm).
    typename T::F s = T::add(n == T::W ? T::loadf(p) : T::loadn(p, n), h[v]);
    if constexpr (kCold) s = T::fmadd(c[v], w.sw[v], s);
    if (n == T::W) {
      T::storef(p, s);
    } else {
      T::storen(p, s, n);
    }
  }
}

// NP ≤ T::kMaxNP panels of output: 2·NP·VP accumulators per row (float-column and
// int8-column sums). With NP ≤ T::kPairMaxNP, two rows go in lockstep (each in its own
// order) so that narrow blocks still have enough independent FMA chains to hide the FMA
// latency; all accumulators are named arrays with constant indices, so they stay in registers.
// y is the output's element (m0, 16·p0).
template <class T, int NP, bool U, bool kCold>
void shadow_block(const WView& wv, const ShadowEntry* e, const int32_t* row_begin, int64_t m0,
                  int64_t m1, int64_t p0, const float* hot_base, int64_t hot_stride, float* y,
                  int64_t ldy) {
  using F = typename T::F;
  constexpr int NV = NP * (16 / T::W);
  constexpr bool kPair = NP <= T::kPairMaxNP;
  ShadowCols<T, NP> w;
  w.n0 = p0 * 16;
  w.tail = static_cast<int>(std::min<int64_t>(16, wv.n - (p0 + NP - 1) * 16));
#pragma GCC unroll 8
  for (int j = 0; j < NP; ++j) {
    w.base[j] = kCold ? wv.panel(p0 + j) : nullptr;
    w.step[j] = kCold ? wv.step(p0 + j) : 0;
    w.hot_off[j] = (p0 + j) * hot_stride;
  }
  // Scales are padded to whole panels; 2^-24 undoes the cold path's byte-at-the-top.
  if constexpr (kCold) {
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v)
      w.sw[v] = T::mul(T::loadf(wv.scale + w.n0 + v * T::W), T::set1(1.0f / kShadowQScale));
  }
  w.step0 = w.step[0];
  // The block's hot weights are one contiguous range, touched in random order by the rows'
  // outliers: start fetching it into L2 now (the first touch of each line would stall).
  if (hot_base)
    for (int64_t off = 0; off < NP * hot_stride; off += 16)
      T::prefetch_l2(hot_base + p0 * hot_stride + off);
  auto next_row = [&](int64_t r) {
    while (r < m1 && row_begin[r] == row_begin[r + 1]) ++r;
    return r;
  };
  const int32_t last = row_begin[m1] - 1;  // prefetches stay inside this call's entries
  auto ahead = [&](int32_t t) {
    if constexpr (kCold) shadow_prefetch<T, NP, U>(e[std::min(t + kShadowAhead, last)], w);
  };
  for (int64_t r = next_row(m0); r < m1;) {
    F ha[NV], ca[NV];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) ha[v] = ca[v] = T::zero();
    int32_t ta = row_begin[r];
    const int32_t ea = row_begin[r + 1];
    const int64_t rb = kPair ? next_row(r + 1) : m1;
    if (kPair && rb < m1) {
      F hb[NV], cb[NV];
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) hb[v] = cb[v] = T::zero();
      int32_t tb = row_begin[rb];
      const int32_t eb = row_begin[rb + 1];
      for (; ta < ea && tb < eb; ++ta, ++tb) {
        ahead(ta);
        ahead(tb);
        shadow_add<T, NP, U, kCold>(e[ta], w, ha, ca);
        shadow_add<T, NP, U, kCold>(e[tb], w, hb, cb);
      }
      for (; tb < eb; ++tb) ahead(tb), shadow_add<T, NP, U, kCold>(e[tb], w, hb, cb);
      for (; ta < ea; ++ta) ahead(ta), shadow_add<T, NP, U, kCold>(e[ta], w, ha, ca);
      shadow_store<T, NP, kCold>(y + (r - m0) * ldy, w, ha, ca);
      shadow_store<T, NP, kCold>(y + (rb - m0) * ldy, w, hb, cb);
      r = next_row(rb + 1);
    } else {
      for (; ta < ea; ++ta) ahead(ta), shadow_add<T, NP, U, kCold>(e[ta], w, ha, ca);
      shadow_store<T, NP, kCold>(y + (r - m0) * ldy, w, ha, ca);
      r = next_row(r + 1);
    }
  }
}

using ShadowBlockFn = void (*)(const WView&, const ShadowEntry*, const int32_t*, int64_t,
                               int64_t, int64_t, const float*, int64_t, float*, int64_t);

template <class T, bool U, bool kCold, size_t... I>
constexpr std::array<ShadowBlockFn, sizeof...(I)> shadow_blocks(std::index_sequence<I...>) {
  return {&shadow_block<T, static_cast<int>(I) + 1, U, kCold>...};
}

// The whole call: blocks of ≤ T::kMaxNP panels of equal width (9 panels on zmm: 5 + 4, not
// 8 + 1: each block visits all its rows' outliers once). y is the output's element
// (m0, 16·p0), as for shadow_rows_ref.
template <class T>
void shadow_rows_impl(const WView& w, const ShadowEntry* e, const int32_t* row_begin, int64_t m0,
                      int64_t m1, int64_t p0, int64_t p1, const float* hot_base,
                      int64_t hot_stride, float* y, int64_t ldy) {
  constexpr int64_t kMax = T::kMaxNP;
  // [0]: int8 columns in blocks of unequal step, [1]: of one step, [2]: hot entries only
  // (no int8 weights: w.data null).
  static constexpr auto kBlock = std::array{
      shadow_blocks<T, false, true>(std::make_index_sequence<T::kMaxNP>()),
      shadow_blocks<T, true, true>(std::make_index_sequence<T::kMaxNP>()),
      shadow_blocks<T, true, false>(std::make_index_sequence<T::kMaxNP>())};
  const int64_t nblk = (p1 - p0 + kMax - 1) / kMax, width = nblk ? (p1 - p0 + nblk - 1) / nblk : kMax;
  for (int64_t p = p0; p < p1; p += width) {
    const int64_t np = std::min<int64_t>(width, p1 - p);
    if (p * 16 >= w.n) break;
    const int64_t used = std::min<int64_t>(np, (w.n - p * 16 + 15) / 16);
    const int kind = !w.data ? 2 : w.step(p) == w.step(p + used - 1) ? 1 : 0;
    kBlock[kind][used - 1](w, e, row_begin, m0, m1, p, hot_base, hot_stride, y + (p - p0) * 16,
                           ldy);
  }
}

// dequant_column_*: out[j] = s_w[n]·q_w[n, k] for the 16 outputs of each panel in [p0, p1).
template <class T>
void dequant_column_impl(const WView& w, int64_t k, int64_t p0, int64_t p1, float* out) {
  const typename T::I top = T::loadi(kByteToTop[k & 3]);
  const typename T::F unscale = T::set1(1.0f / kShadowQScale);  // exact: a power of two
  const int64_t g = k / 4;
  for (int64_t p = p0; p < p1; ++p)
    for (int v = 0; v < 16 / T::W; ++v) {
      const int64_t o = v * T::W;
      const typename T::F q = T::mul(T::top(T::loadi(w.panel(p) + g * w.step(p) + o * 4), top), unscale);
      T::storef(out + (p - p0) * 16 + o, T::mul(q, T::loadf(w.scale + p * 16 + o)));
    }
}
