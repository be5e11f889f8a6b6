// Float kernels written once over a SIMD traits type S (S::V vector of S::W floats) and
// included by float_scalar.cpp (W=1), x86/float_avx2.cpp (W=8) and x86/float_avx512.cpp (W=16), each
// compiled with its own ISA flags. Everything here must sit in an anonymous namespace of the
// including TU (internal linkage), so the per-ISA instantiations never merge at link time;
// for the same reason no std:: templates that could be emitted out of line are used.
//
// Traits interface: V, W, zero(), set1(f), load(p), store(p, v), loadn(p, n), storen(p, v, n)
// (n < W lanes, rest zero / untouched), fmadd(a,b,c)=a·b+c, add, sub, mul, div, max, min,
// round (to nearest even), floor, pow2i (2^n for integer-valued n in [-126, 127]), hsum,
// hmax, iota() = [0, 1, .., W-1], sel_le(a, b, x, y) = a <= b ? x : y (per lane),
// and for W > 1: dup_pairs(p) = [p0,p0,p1,p1,..], swap_pairs(v) = [v1,v0,v3,v2,..],
// sign_pairs() = [-1,1,-1,1,..]. Loads and stores are unaligned-safe.

// ---- helpers
inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

// p·2^n for integer-valued n: one vscalefps where the ISA has it (one rounding), else two
// exact power-of-two factors 2^floor(n/2)·2^(n-floor(n/2)), so denormal results and overflow
// to +inf come out right (the same result).
template <class S>
inline typename S::V scale_pow2(typename S::V p, typename S::V n) {
  if constexpr (requires { S::scalef(p, n); }) {
    return S::scalef(p, n);
  } else {
    const typename S::V n1 = S::floor(S::mul(n, S::set1(0.5f)));
    return S::mul(S::mul(p, S::pow2i(n1)), S::pow2i(S::sub(n, n1)));
  }
}

// exp(x) to ~2 ulp over the whole float range: Cody–Waite reduction x = n·ln2 + r,
// |r| <= ln2/2, Taylor to degree 7 (truncation < 5e-9 relative), then ·2^n (scale_pow2:
// right down to the denormal range and up to overflow). Input clamped to [-104, 88.8]
// (beyond: 0 / inf). NaN propagates.
template <class S>
inline typename S::V vexp(typename S::V x) {
  using V = typename S::V;
  x = S::min(S::set1(88.8f), S::max(S::set1(-104.f), x));  // max(lo, NaN) = NaN
  const V n = S::round(S::mul(x, S::set1(1.44269504088896341f)));
  V r = S::fmadd(n, S::set1(-0.693145751953125f), x);  // ln2 hi (exact product)
  r = S::fmadd(n, S::set1(-1.42860682030941723e-6f), r);  // ln2 lo
  V p = S::set1(1.f / 5040.f);
  p = S::fmadd(p, r, S::set1(1.f / 720.f));
  p = S::fmadd(p, r, S::set1(1.f / 120.f));
  p = S::fmadd(p, r, S::set1(1.f / 24.f));
  p = S::fmadd(p, r, S::set1(1.f / 6.f));
  p = S::fmadd(p, r, S::set1(0.5f));
  p = S::fmadd(p, r, S::set1(1.f));
  p = S::fmadd(p, r, S::set1(1.f));
  return scale_pow2<S>(p, n);
}

// 1 / (1 + exp(-x)) from e = exp(-|x|), which never overflows: for x < 0 it is e / (1 + e),
// so x·sigmoid(x) keeps full relative accuracy far into the negative tail.
template <class S>
inline typename S::V vsigmoid(typename S::V x) {
  const typename S::V e = vexp<S>(S::min(x, S::sub(S::zero(), x)));
  const typename S::V s = S::div(S::set1(1.f), S::add(S::set1(1.f), e));
  return S::sel_le(S::zero(), x, s, S::mul(e, s));
}

// tanh(x) = 2·sigmoid(2x) - 1 (absolute error ~1e-7; used for the score softcap).
template <class S>
inline typename S::V vtanh(typename S::V x) {
  const typename S::V s = vsigmoid<S>(S::add(x, x));
  return S::sub(S::add(s, s), S::set1(1.f));
}

// ============================================================ GEMM
// Tile: MR rows × NP panels (NP·16 columns, NV vectors) over kc steps of K. KU > 1 splits
// the accumulators over k (for MR = 1, 2 the FMA latency chain would otherwise limit it).
template <class S, int MR, int NP>
void gemm_tile(const float* x, int64_t ldx, const float* w, int64_t ps, int64_t kc, float* y,
               int64_t ldy, int64_t ncol, bool acc_in) {
  using V = typename S::V;
  constexpr int W = S::W, VPP = 16 / W, NV = NP * VPP;
  constexpr int KU = MR == 1 ? 4 : MR == 2 ? 2 : 1;
  V acc[KU][MR][NV];
#pragma GCC unroll 64
  for (int u = 0; u < KU; ++u)
#pragma GCC unroll 64
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 64
      for (int v = 0; v < NV; ++v) acc[u][r][v] = S::zero();
  int64_t kk = 0;
  for (; kk + KU <= kc; kk += KU) {
#pragma GCC unroll 4
    for (int u = 0; u < KU; ++u) {
      V wv[NV];
#pragma GCC unroll 64
      for (int v = 0; v < NV; ++v) wv[v] = S::load(w + (v / VPP) * ps + (kk + u) * 16 + (v % VPP) * W);
#pragma GCC unroll 64
      for (int r = 0; r < MR; ++r) {
        const V b = S::set1(x[r * ldx + kk + u]);
#pragma GCC unroll 64
        for (int v = 0; v < NV; ++v) acc[u][r][v] = S::fmadd(b, wv[v], acc[u][r][v]);
      }
    }
  }
  for (; kk < kc; ++kk) {
#pragma GCC unroll 64
    for (int r = 0; r < MR; ++r) {
      const V b = S::set1(x[r * ldx + kk]);
#pragma GCC unroll 64
      for (int v = 0; v < NV; ++v)
        acc[0][r][v] = S::fmadd(b, S::load(w + (v / VPP) * ps + kk * 16 + (v % VPP) * W), acc[0][r][v]);
    }
  }
#pragma GCC unroll 4
  for (int u = 1; u < KU; ++u)
#pragma GCC unroll 64
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 64
      for (int v = 0; v < NV; ++v) acc[0][r][v] = S::add(acc[0][r][v], acc[u][r][v]);
#pragma GCC unroll 64
  for (int r = 0; r < MR; ++r) {
    float* yr = y + r * ldy;
#pragma GCC unroll 64
    for (int v = 0; v < NV; ++v) {
      const int64_t c = v * W;
      if (c + W <= ncol) {
        V o = acc[0][r][v];
        if (acc_in) o = S::add(o, S::load_u(yr + c));
        S::store_u(yr + c, o);
      } else if (c < ncol) {
        const int nn = static_cast<int>(ncol - c);
        V o = acc[0][r][v];
        if (acc_in) o = S::add(o, S::loadn(yr + c, nn));
        S::storen(yr + c, o, nn);
      }
    }
  }
}

template <class S, int MR>
void gemm_tile_np(int np, const float* x, int64_t ldx, const float* w, int64_t ps, int64_t kc,
                  float* y, int64_t ldy, int64_t ncol, bool acc_in) {
  static_assert(S::kNP >= 1 && S::kNP <= 3);
  if constexpr (S::kNP >= 3)
    if (np == 3) return gemm_tile<S, MR, 3>(x, ldx, w, ps, kc, y, ldy, ncol, acc_in);
  if constexpr (S::kNP >= 2)
    if (np == 2) return gemm_tile<S, MR, 2>(x, ldx, w, ps, kc, y, ldy, ncol, acc_in);
  gemm_tile<S, MR, 1>(x, ldx, w, ps, kc, y, ldy, ncol, acc_in);
}

template <class S, int MR>
void gemm_tile_dispatch(int mr, int np, const float* x, int64_t ldx, const float* w, int64_t ps,
                        int64_t kc, float* y, int64_t ldy, int64_t ncol, bool acc_in) {
  if constexpr (MR > 1) {
    if (mr < MR) return gemm_tile_dispatch<S, MR - 1>(mr, np, x, ldx, w, ps, kc, y, ldy, ncol, acc_in);
  }
  gemm_tile_np<S, MR>(np, x, ldx, w, ps, kc, y, ldy, ncol, acc_in);
}

// Loop order: K blocks (the x block rows×kKC stays in L2) → panel groups (the W micro-panel
// kKC×NP·16 stays in L1/L2 while) → row tiles. With M <= 2 there is no reuse of W, so K is
// not blocked (the accumulators never round-trip through y).
template <class S>
void gemm_range(const float* x, int64_t ldx, int64_t m0, int64_t m1, const float* w, int64_t n,
                int64_t k, int64_t p0, int64_t p1, float* y, int64_t ldy) {
  constexpr int64_t NP = S::kNP, MR = S::kMR;
  const int64_t ps = k * 16;
  const int64_t kcm = m1 - m0 <= 2 ? k : S::kKC;
  if (k == 0) {
    for (int64_t i = m0; i < m1; ++i)
      for (int64_t j = p0 * 16; j < imin(n, p1 * 16); ++j) y[i * ldy + j] = 0.f;
    return;
  }
  for (int64_t k0 = 0; k0 < k; k0 += kcm) {
    const int64_t kc = imin(kcm, k - k0);
    for (int64_t p = p0; p < p1; p += NP) {
      const int np = static_cast<int>(imin(NP, p1 - p));
      const int64_t ncol = imin(np * 16, n - p * 16);
      for (int64_t i = m0; i < m1; i += MR) {
        const int mr = static_cast<int>(imin(MR, m1 - i));
        gemm_tile_dispatch<S, S::kMR>(mr, np, x + i * ldx + k0, ldx, w + p * ps + k0 * 16, ps, kc,
                                      y + i * ldy + p * 16, ldy, ncol, k0 > 0);
      }
    }
  }
}

// ============================================================ vector ops
// b as floats, or as IEEE halves converted in registers (then n must be a multiple of W): the
// same floats in the same order either way, so the same result.
template <class S>
inline typename S::V load_b(const float* p) { return S::load_u(p); }
template <class S>
inline typename S::V load_b(const uint16_t* p) { return S::load_h(p); }

template <class S, class T>
float dot(const float* a, const T* b, int64_t n) {
  using V = typename S::V;
  constexpr int W = S::W;
  V s0 = S::zero(), s1 = S::zero(), s2 = S::zero(), s3 = S::zero();
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    s0 = S::fmadd(S::load_u(a + i), load_b<S>(b + i), s0);
    s1 = S::fmadd(S::load_u(a + i + W), load_b<S>(b + i + W), s1);
    s2 = S::fmadd(S::load_u(a + i + 2 * W), load_b<S>(b + i + 2 * W), s2);
    s3 = S::fmadd(S::load_u(a + i + 3 * W), load_b<S>(b + i + 3 * W), s3);
  }
  for (; i + W <= n; i += W) s0 = S::fmadd(S::load_u(a + i), load_b<S>(b + i), s0);
  if constexpr (std::is_same_v<T, float>) {
    if (i < n) {
      const int r = static_cast<int>(n - i);
      s1 = S::fmadd(S::loadn(a + i, r), S::loadn(b + i, r), s1);
    }
  }
  return S::hsum(S::add(S::add(s0, s1), S::add(s2, s3)));
}

template <class S>
void axpy(float* y, float a, const float* x, int64_t n) {
  constexpr int W = S::W;
  const typename S::V av = S::set1(a);
  int64_t i = 0;
  for (; i + W <= n; i += W) S::store_u(y + i, S::fmadd(av, S::load_u(x + i), S::load_u(y + i)));
  if (i < n) {
    const int r = static_cast<int>(n - i);
    S::storen(y + i, S::fmadd(av, S::loadn(x + i, r), S::loadn(y + i, r)), r);
  }
}

template <class S>
void add(float* y, const float* x, int64_t n) {
  constexpr int W = S::W;
  int64_t i = 0;
  for (; i + W <= n; i += W) S::store_u(y + i, S::add(S::load_u(y + i), S::load_u(x + i)));
  if (i < n) {
    const int r = static_cast<int>(n - i);
    S::storen(y + i, S::add(S::loadn(y + i, r), S::loadn(x + i, r)), r);
  }
}

template <class S>
void scale(float* y, float a, int64_t n) {
  constexpr int W = S::W;
  const typename S::V av = S::set1(a);
  int64_t i = 0;
  for (; i + W <= n; i += W) S::store_u(y + i, S::mul(S::load_u(y + i), av));
  if (i < n) {
    const int r = static_cast<int>(n - i);
    S::storen(y + i, S::mul(S::loadn(y + i, r), av), r);
  }
}

template <class S>
void rmsnorm(const float* x, const float* w, float* out, int64_t n, float eps) {
  using V = typename S::V;
  constexpr int W = S::W;
  V s0 = S::zero(), s1 = S::zero();
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const V a = S::load_u(x + i), b = S::load_u(x + i + W);
    s0 = S::fmadd(a, a, s0);
    s1 = S::fmadd(b, b, s1);
  }
  for (; i + W <= n; i += W) {
    const V a = S::load_u(x + i);
    s0 = S::fmadd(a, a, s0);
  }
  if (i < n) {
    const V a = S::loadn(x + i, static_cast<int>(n - i));
    s1 = S::fmadd(a, a, s1);
  }
  const double ss = S::hsum(S::add(s0, s1));
  const float r = static_cast<float>(1.0 / __builtin_sqrt(ss / static_cast<double>(n) + eps));
  const V rv = S::set1(r);
  for (i = 0; i + W <= n; i += W) {
    V o = S::mul(S::load_u(x + i), rv);
    if (w) o = S::mul(o, S::load_u(w + i));
    S::store_u(out + i, o);
  }
  if (i < n) {
    const int rr = static_cast<int>(n - i);
    V o = S::mul(S::loadn(x + i, rr), rv);
    if (w) o = S::mul(o, S::loadn(w + i, rr));
    S::storen(out + i, o, rr);
  }
}

template <class S>
void softmax(float* x, int64_t n) {
  using V = typename S::V;
  constexpr int W = S::W;
  if (n <= 0) return;
  V mv = S::set1(x[0]);
  int64_t i = 0;
  for (; i + W <= n; i += W) mv = S::max(mv, S::load_u(x + i));
  float mx = S::hmax(mv);
  for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  const V m = S::set1(mx);
  V sum = S::zero();
  for (i = 0; i + W <= n; i += W) {
    const V e = vexp<S>(S::sub(S::load_u(x + i), m));
    S::store_u(x + i, e);
    sum = S::add(sum, e);
  }
  if (i < n) {
    const int r = static_cast<int>(n - i);
    const V e = vexp<S>(S::sub(S::loadn(x + i, r), m));
    S::storen(x + i, e, r);
    sum = S::add(sum, S::loadn(x + i, r));  // lanes past n are zero
  }
  scale<S>(x, 1.f / S::hsum(sum), n);
}

// x·sigmoid(x) for SwiGLU, ~4e-7 relative (vsigmoid: ~2 ulp), about a third fewer vector
// operations: exp(-|x|) needs only the lower clamp and a degree-5 polynomial (least maximum
// relative error on |r| <= ln2/2: 1.8e-7 with float Horner steps), and 1/(1 + e), e in
// (0, 1], takes an approximate reciprocal and one Newton step where the ISA has one instead
// of a division. (GELU keeps vsigmoid: Gemma's greedy outputs in the tests sit on ulps.)
template <class S>
inline typename S::V vsilu(typename S::V x) {
  using V = typename S::V;
  const V a = S::max(S::set1(-104.f), S::min(x, S::sub(S::zero(), x)));  // -|x|, NaN kept
  const V n = S::round(S::mul(a, S::set1(1.44269504088896341f)));
  V r = S::fmadd(n, S::set1(-0.693145751953125f), a);
  r = S::fmadd(n, S::set1(-1.42860682030941723e-6f), r);
  V p = S::set1(8.312527090e-03f);
  p = S::fmadd(p, r, S::set1(4.189011455e-02f));
  p = S::fmadd(p, r, S::set1(1.666711420e-01f));
  p = S::fmadd(p, r, S::set1(4.999923110e-01f));
  p = S::fmadd(p, r, S::set1(1.f));
  p = S::fmadd(p, r, S::set1(1.f));
  const V e = scale_pow2<S>(p, n);
  const V d = S::add(S::set1(1.f), e);
  V s;
  if constexpr (requires { S::recip(d); })
    s = S::recip(d);
  else
    s = S::div(S::set1(1.f), d);
  return S::mul(x, S::sel_le(S::zero(), x, s, S::mul(e, s)));
}

template <class S>
void silu_mul(const float* g, const float* u, float* out, int64_t n) {
  using V = typename S::V;
  constexpr int W = S::W;
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const V x = S::load_u(g + i);
    S::store_u(out + i, S::mul(vsilu<S>(x), S::load_u(u + i)));
  }
  if (i < n) {
    const int r = static_cast<int>(n - i);
    const V x = S::loadn(g + i, r);
    S::storen(out + i, S::mul(vsilu<S>(x), S::loadn(u + i, r)), r);
  }
}

// The same on panel-interleaved rows: gu holds 16 gate values, then their 16 up values, and
// so on (the paired gate/up GEMM's output); n a multiple of 16. Value for value the same
// operations as silu_mul / gelu_tanh_mul on the halves copied apart.
template <class S, class Act>
inline void act_mul_pairs(const float* gu, float* out, int64_t n, const Act& act) {
  constexpr int W = S::W;
  static_assert(16 % W == 0);
  for (int64_t i = 0; i < n; i += 16)
    for (int h = 0; h < 16; h += W)
      S::store_u(out + i + h,
                 S::mul(act(S::load_u(gu + 2 * i + h)), S::load_u(gu + 2 * i + 16 + h)));
}

template <class S>
void silu_mul_pairs(const float* gu, float* out, int64_t n) {
  act_mul_pairs<S>(gu, out, n, [](typename S::V x) { return vsilu<S>(x); });
}

// 0.5·g·(1 + tanh(t)) == g·sigmoid(2t): no cancellation where tanh(t) ≈ -1.
template <class S>
inline typename S::V gelu_tanh(typename S::V g) {
  const typename S::V g3 = S::mul(S::mul(g, g), g);
  const typename S::V t = S::mul(S::set1(2.f * 0.7978845608028654f),
                                 S::fmadd(S::set1(0.044715f), g3, g));
  return S::mul(g, vsigmoid<S>(t));
}

template <class S>
void gelu_tanh_mul_pairs(const float* gu, float* out, int64_t n) {
  act_mul_pairs<S>(gu, out, n, [](typename S::V x) { return gelu_tanh<S>(x); });
}

template <class S>
void gelu_tanh_mul(const float* g, const float* u, float* out, int64_t n) {
  constexpr int W = S::W;
  int64_t i = 0;
  for (; i + W <= n; i += W)
    S::store_u(out + i, S::mul(gelu_tanh<S>(S::load_u(g + i)), S::load_u(u + i)));
  if (i < n) {
    const int r = static_cast<int>(n - i);
    S::storen(out + i, S::mul(gelu_tanh<S>(S::loadn(g + i, r)), S::loadn(u + i, r)), r);
  }
}

template <class S>
void rope_table(float* x, int64_t n_rot, const float* cos, const float* sin, RopeMode mode) {
  using V = typename S::V;
  constexpr int W = S::W;
  const int64_t half = n_rot / 2;
  int64_t i = 0;  // pair index
  if (mode == RopeMode::kNeox) {
    for (; i + W <= half; i += W) {
      const V a = S::load_u(x + i), b = S::load_u(x + i + half);
      const V c = S::load_u(cos + i), s = S::load_u(sin + i);
      S::store_u(x + i, S::sub(S::mul(a, c), S::mul(b, s)));
      S::store_u(x + i + half, S::fmadd(a, s, S::mul(b, c)));
    }
  } else if constexpr (W > 1) {
    // W lanes hold W/2 pairs: x' = x·[c,c] + swap(x)·[-s,s].
    const V sign = S::sign_pairs();
    for (; i + W / 2 <= half; i += W / 2) {
      const V v = S::load_u(x + 2 * i);
      const V c = S::dup_pairs(cos + i), s = S::mul(S::dup_pairs(sin + i), sign);
      S::store_u(x + 2 * i, S::fmadd(S::swap_pairs(v), s, S::mul(v, c)));
    }
  }
  for (; i < half; ++i) {
    const int64_t i0 = mode == RopeMode::kNormal ? 2 * i : i;
    const int64_t i1 = mode == RopeMode::kNormal ? 2 * i + 1 : i + half;
    const float a = x[i0], b = x[i1];
    x[i0] = a * cos[i] - b * sin[i];
    x[i1] = a * sin[i] + b * cos[i];
  }
}

// ============================================================ attention
// Tiles: BQ = S::kBQ queries of one head × BK keys. Scores are computed transposed,
// S^T[key][query] = K[key]·Q^T[:, query], so queries run along the vector lanes: the K rows
// are broadcast straight from the cache (no per-tile transpose) and Q is transposed once per
// task. The per-query max / sum of the online softmax are then plain lane-wise max / add over
// key rows. O[query][d] += P[query][key]·V[key][d] broadcasts P and streams V rows.
// Queries with fewer than 3 rows (decode) take a dot-product path instead (lanes would idle).
// 64 keys per tile: half the online softmax's rescales of O and half the O loads and stores
// of P·V per key, against 32 (session 25: kbench-attn bf16 +3-6 % at 2048-4096 tokens on the
// 0.5B and Gemma shapes; the 0.5B prefill at 4096 tokens faster in 4 of 5 alternating runs).
// Session 13 had rejected 64 on Gemma 3's INT8 perplexity over 8 chunks (+0.78 → +0.91 %),
// a gap within that measure's noise (~0.26 %); over the 24 chunks the test now scores it
// reads +0.47 % and KL 0.00536 with 64 against +0.48 % and KL 0.00536 with 32.
constexpr int64_t kBK = 64;

inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// Floats at the end of a task's scratch for one converted K tile and one V tile (row path).
inline int64_t kv_tile_floats(int64_t D) { return 2 * kBK * round_up(D, 16); }
// Keys per super-tile of the block path: a multiple of kBK, about 128 KiB of floats per K
// or V buffer (512 keys at head dim 64, 128 at 256), at most kMaxSuperTiles tiles.
constexpr int64_t kMaxSuperTiles = 16;
inline int64_t kv_super_keys(int64_t D) {
  const int64_t n = 32768 / D / kBK * kBK;
  return n < kBK ? kBK : n > kMaxSuperTiles * kBK ? kMaxSuperTiles * kBK : n;
}


// Rows of positions [j0, j0+n) (n <= kBK) of one kv head as floats [n][D]: a pointer into
// the cache itself for F32 rows that do not wrap the ring, else converted into buf
// (F16: vcvtph2ps; INT8: widen, convert, · row scale).
template <class S>
const float* kv_rows(const KvHead& kv, int64_t D, int64_t j0, int64_t n, float* buf) {
  const int64_t s0 = kv.ring > 0 ? j0 % kv.ring : j0;
  if (kv.type == KvType::kF32 && (kv.ring == 0 || s0 + n <= kv.ring))
    return static_cast<const float*>(kv.p) + s0 * D;
  for (int64_t r = 0; r < n; ++r) {
    int64_t slot = s0 + r;
    if (kv.ring > 0 && slot >= kv.ring) slot -= kv.ring;
    float* dst = buf + r * D;
    switch (kv.type) {
      case KvType::kF32: {
        const float* src = static_cast<const float*>(kv.p) + slot * D;
        for (int64_t t = 0; t < D; ++t) dst[t] = src[t];
        break;
      }
      case KvType::kF16:
        S::cvt_f16(static_cast<const uint16_t*>(kv.p) + slot * D, dst, D);
        break;
      case KvType::kInt8:
        S::cvt_i8(static_cast<const int8_t*>(kv.p) + slot * D, kv.scale[slot], dst, D);
        break;
    }
  }
  return buf;
}

// S^T rows [r0, r0+MR) (keys) × NQ query vectors.
template <class S, int MR, int NQ>
void attn_scores(const float* k, int64_t D, const float* qt, int64_t bqp, float* st) {
  using V = typename S::V;
  V acc[MR][NQ];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NQ; ++v) acc[r][v] = S::zero();
  for (int64_t d = 0; d < D; ++d) {
    V qv[NQ];
#pragma GCC unroll 16
    for (int v = 0; v < NQ; ++v) qv[v] = S::load(qt + d * bqp + v * S::W);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const V b = S::set1(k[r * D + d]);
#pragma GCC unroll 16
      for (int v = 0; v < NQ; ++v) acc[r][v] = S::fmadd(b, qv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NQ; ++v) S::store(st + r * bqp + v * S::W, acc[r][v]);
}

template <class S, int MR, int NQ>
void attn_scores_rows(int rows, const float* k, int64_t D, const float* qt, int64_t bqp,
                      float* st) {
  if constexpr (MR > 1) {
    if (rows < MR) return attn_scores_rows<S, MR - 1, NQ>(rows, k, D, qt, bqp, st);
  }
  attn_scores<S, MR, NQ>(k, D, qt, bqp, st);
}

template <class S, int NQ>
void attn_scores_tile(int64_t bk, int nq, const float* k, int64_t D, const float* qt, int64_t bqp,
                      float* st) {
  if constexpr (NQ > 1) {
    if (nq < NQ) return attn_scores_tile<S, NQ - 1>(bk, nq, k, D, qt, bqp, st);
  }
  for (int64_t r = 0; r < bk; r += S::kSMR) {
    const int rows = static_cast<int>(imin(S::kSMR, bk - r));
    attn_scores_rows<S, S::kSMR, NQ>(rows, k + r * D, D, qt, bqp, st + r * bqp);
  }
}

// O rows [q0, q0+RM) (stride dp), CV vectors from column c0: += Σ_j P^T[j][q]·V[j].
// FULL: all CV vectors lie inside D (no masked loads; the check stays out of the key loop).
template <class S, int RM, int CV, bool FULL>
void attn_pv_k(const float* pt, int64_t bqp, int64_t q0, const float* v, int64_t D, int64_t bk,
               int64_t c0, float* o, int64_t dp) {
  using V = typename S::V;
  constexpr int W = S::W;
  V acc[RM][CV];
#pragma GCC unroll 16
  for (int r = 0; r < RM; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < CV; ++c) acc[r][c] = S::load(o + (q0 + r) * dp + c0 + c * W);
  for (int64_t j = 0; j < bk; ++j) {
    V vv[CV];
#pragma GCC unroll 16
    for (int c = 0; c < CV; ++c) {
      const int64_t col = c0 + c * W;
      if constexpr (FULL)
        vv[c] = S::load_u(v + j * D + col);
      else
        vv[c] = col + W <= D ? S::load_u(v + j * D + col) : S::loadn(v + j * D + col, static_cast<int>(D - col));
    }
#pragma GCC unroll 16
    for (int r = 0; r < RM; ++r) {
      const V p = S::set1(pt[j * bqp + q0 + r]);
#pragma GCC unroll 16
      for (int c = 0; c < CV; ++c) acc[r][c] = S::fmadd(p, vv[c], acc[r][c]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < RM; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < CV; ++c) S::store(o + (q0 + r) * dp + c0 + c * W, acc[r][c]);
}

template <class S, int RM, int CV>
void attn_pv(const float* pt, int64_t bqp, int64_t q0, const float* v, int64_t D, int64_t bk,
             int64_t c0, float* o, int64_t dp) {
  if (c0 + CV * S::W <= D) attn_pv_k<S, RM, CV, true>(pt, bqp, q0, v, D, bk, c0, o, dp);
  else attn_pv_k<S, RM, CV, false>(pt, bqp, q0, v, D, bk, c0, o, dp);
}

template <class S, int RM>
void attn_pv_rows(int rm, const float* pt, int64_t bqp, int64_t q0, const float* v, int64_t D,
                  int64_t bk, float* o, int64_t dp) {
  if constexpr (RM > 1) {
    if (rm < RM) return attn_pv_rows<S, RM - 1>(rm, pt, bqp, q0, v, D, bk, o, dp);
  }
  constexpr int CV = S::kPVC;
  int64_t c0 = 0;
  for (; c0 + CV * S::W <= dp; c0 += CV * S::W) attn_pv<S, RM, CV>(pt, bqp, q0, v, D, bk, c0, o, dp);
  for (; c0 < dp; c0 += S::W) attn_pv<S, RM, 1>(pt, bqp, q0, v, D, bk, c0, o, dp);
}

// The arithmetic of the block path, as a policy P of attn_block (below): how Q, K and V are
// held and multiplied. F32Ops: everything in float (Qt [D][kBQ'], K and V rows as floats);
// the bf16 policy (x86/attn_bf16.cpp) holds them as bf16 pairs for vdpbf16ps. Interface:
//   q_rows(D): rows of Qt (each kBQ' 4-byte lanes); load_q(..) fills them, zero past nq.
//   kv_floats(D, n): floats (4-byte units) of a converted K or V super-tile of n keys;
//   stage_floats(D): a per-task staging area for the conversion.
//   k_tile / v_tile(kv, D, j0, bk, buf, stage): the tile of keys [j0, j0+bk) in P's layout.
//   scores(bk, nv, kt, D, qt, bqp, st): S^T[key][query] of nv query vectors.
//   probs_floats(): floats per key of the probabilities' second copy (0: none);
//   probs(st, bqp, bk, v_lo, v_hi, pb): after the softmax, P's copy of the probabilities.
//   pv(rm, st, pb, bqp, jb, je, i, vt, D, o, dp): O rows [i, i+rm) += Σ_{j in [jb, je)} p·V.
template <class S>
struct F32Ops {
  static int64_t q_rows(int64_t D) { return D; }
  // Qt = (Q·scale)^T, zero past nq: W×W block transposes where the ISA has one.
  static void load_q(const float* qh, int64_t ldq, int64_t nq, int64_t D, float scale_q,
                     float* qt, int64_t bqp) {
    constexpr int W = S::W;
    int64_t nqf = 0, Df = 0;
    if constexpr (requires { S::transpose(qh, ldq, qt, bqp); }) {
      nqf = nq / W * W;
      Df = D / W * W;
      for (int64_t dd = 0; dd < Df; dd += W)
        for (int64_t i = 0; i < nqf; i += W) S::transpose(qh + i * ldq + dd, ldq, qt + dd * bqp + i, bqp);
    }
    for (int64_t dd = 0; dd < D; ++dd)
      for (int64_t i = dd < Df ? nqf : 0; i < bqp; ++i)
        qt[dd * bqp + i] = i < nq ? qh[i * ldq + dd] : 0.f;
    const typename S::V sv = S::set1(scale_q);
    for (int64_t i = 0; i < D * bqp; i += W) S::store(qt + i, S::mul(S::load(qt + i), sv));
  }
  static int64_t kv_floats(int64_t D, int64_t n) { return n * D; }
  static int64_t stage_floats(int64_t) { return 0; }
  static const float* k_tile(const KvHead& kv, int64_t D, int64_t j0, int64_t bk, float* buf, float*) {
    return kv_rows<S>(kv, D, j0, bk, buf);
  }
  static const float* v_tile(const KvHead& kv, int64_t D, int64_t j0, int64_t bk, float* buf, float*) {
    return kv_rows<S>(kv, D, j0, bk, buf);
  }
  static void scores(int64_t bk, int nv, const float* kt, int64_t D, const float* qt, int64_t bqp,
                     float* st) {
    attn_scores_tile<S, S::kNQ>(bk, nv, kt, D, qt, bqp, st);
  }
  static int64_t probs_floats() { return 0; }
  static void probs(const float*, int64_t, int64_t, int, int, float*) {}
  static void pv(int rm, const float* st, const float*, int64_t bqp, int64_t jb, int64_t je,
                 int64_t i, const float* vt, int64_t D, float* o, int64_t dp) {
    attn_pv_rows<S, S::kPVR>(rm, st + jb * bqp, bqp, i, vt + jb * D, D, je - jb, o, dp);
  }
};

// exp of a score minus the running max (<= 0) for a probability: the policy's own where it
// has one (bf16 operands round p to 8 significant bits, so its exp need not be exact).
template <class S, class P>
inline typename S::V prob_exp(typename S::V x) {
  if constexpr (requires { P::prob_exp(x); })
    return P::prob_exp(x);
  else
    return vexp<S>(x);
}

// Per-head state of a block task: Qt [q_rows][kBQ'] (scaled, transposed), O [kBQ][dp], and
// the running max / sum / rescale factor of each query (kBQ' = kBQ rounded up to W).
template <class S, class P>
int64_t attn_head_floats(int64_t D) {
  const int64_t bqp = round_up(S::kBQ, S::W), dp = round_up(D, S::W);
  return P::q_rows(D) * bqp + S::kBQ * dp + 3 * bqp;
}

// Scratch of a block task: the score tile, P's probabilities copy, `heads` head states, the
// converted K and V super-tiles and P's staging area.
template <class S, class P>
int64_t attn_block_floats(int64_t D, int64_t heads) {
  const int64_t bqmax = round_up(S::kBQ, S::W), ns = kv_super_keys(D);
  return kBK * bqmax + P::probs_floats() * bqmax + heads * attn_head_floats<S, P>(D) +
         2 * P::kv_floats(D, ns) + P::stage_floats(D);
}

// Queries [i0, i1) of heads [h0, h1), which share one kv head (GQA): each K/V tile is
// converted once and used by all of them while it is in L1. The arithmetic of each
// (head, query) is the same as for a single head: grouping changes no result.
template <class S, class P>
void attn_block(const AttnTask& t, const AttnScratch& sc) {
  using V = typename S::V;
  constexpr int W = S::W;
  using KT = decltype(P::k_tile(t.k, 0, 0, 0, nullptr, nullptr));
  using VT = decltype(P::v_tile(t.v, 0, 0, 0, nullptr, nullptr));
  const AttentionDims& d = *t.d;
  const int64_t D = d.head_dim, nq = t.i1 - t.i0, G = t.h1 - t.h0;
  const int64_t bqp = round_up(nq, W), dp = round_up(D, W), bqmax = round_up(S::kBQ, W);
  const int nqv = static_cast<int>(bqp / W);
  const int64_t hf = attn_head_floats<S, P>(D), qr = P::q_rows(D);
  float* st = sc.buf;                      // [kBK][bqp] scores / probabilities of one head
  float* pb = st + kBK * bqmax;            // P's copy of the probabilities
  float* hbase = pb + P::probs_floats() * bqmax;  // G × head state
  for (int64_t g = 0; g < G; ++g) {
    float* qt = hbase + g * hf;            // [qr][bqp]
    float* o = qt + qr * bqmax;            // [nq][dp]
    float* mrow = o + S::kBQ * dp;
    float* lrow = mrow + bqmax;
    P::load_q(t.q + t.i0 * t.ldq + (t.h0 + g) * D, t.ldq, nq, D, d.scale, qt, bqp);
    for (int64_t i = 0; i < nq * dp; ++i) o[i] = 0.f;
    for (int64_t i = 0; i < bqp; ++i) {
      mrow[i] = -3.0e38f;  // finite: exp(m_old - m_new) stays defined for all-masked rows
      lrow[i] = 0.f;
    }
  }
  const int64_t p_lo = t.pos0 + t.i0, p_hi = t.pos0 + t.i1 - 1;  // query positions
  const int64_t jlo = d.window > 0 ? imax(0, p_lo - d.window + 1) : 0, jhi = p_hi + 1;
  const V ninf = S::set1(-__builtin_inff());
  // Keys go in super-tiles of ns keys, converted once (kbuf/vbuf, L2-sized); each head then
  // runs the super-tile's kBK-key tiles back to back, so its Qt and O stay in L1 while K/V
  // stream from L2 (heads outermost per tile would stream every head's Qt and O through L2
  // once per tile). Tiles and their order per head are the same as without super-tiles.
  const int64_t ns = kv_super_keys(D);
  float* kbuf = hbase + G * hf;
  float* vbuf = kbuf + P::kv_floats(D, ns);
  float* stage = vbuf + P::kv_floats(D, ns);
  KT kts[kMaxSuperTiles];
  VT vts[kMaxSuperTiles];
  for (int64_t J0 = jlo; J0 < jhi; J0 += ns) {
    const int64_t J1 = imin(jhi, J0 + ns);
    for (int64_t j0 = J0; j0 < J1; j0 += kBK) {
      const int64_t bk = imin(kBK, J1 - j0), ti = (j0 - J0) / kBK;
      kts[ti] = P::k_tile(t.k, D, j0, bk, kbuf + P::kv_floats(D, j0 - J0), stage);
      vts[ti] = P::v_tile(t.v, D, j0, bk, vbuf + P::kv_floats(D, j0 - J0), stage);
    }
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t j0 = J0; j0 < J1; j0 += kBK) {
        const int64_t bk = imin(kBK, J1 - j0);
        const KT kt = kts[(j0 - J0) / kBK];
        const VT vt = vts[(j0 - J0) / kBK];
        // Mask only where the tile can cross a query's causal edge or window edge.
        const bool need_mask = j0 + bk - 1 > p_lo || (d.window > 0 && j0 <= p_hi - d.window);
        // Query vectors [v_lo, v_hi) see some key of the tile (a vector whose last query
        // comes before j0, or whose first query's window ends after the tile, sees none: its
        // scores would all be masked, p = 0, max and sum unchanged), and of their rows those
        // in [r_lo, r_hi) are real queries. On the diagonal this skips up to half the tile.
        int v_lo = 0, v_hi = nqv;
        while (v_lo < nqv && p_lo + (v_lo + 1) * W - 1 < j0) ++v_lo;
        if (d.window > 0)
          while (v_hi > v_lo && j0 + bk - 1 <= p_lo + (v_hi - 1) * W - d.window) --v_hi;
        const int64_t r_lo = v_lo * W, r_hi = imin(nq, v_hi * W);
        if (r_lo >= r_hi) continue;
        float* qt = hbase + g * hf;
        float* o = qt + qr * bqmax;
        float* mrow = o + S::kBQ * dp;
        float* lrow = mrow + bqmax;
        float* corr = lrow + bqmax;
        // The score kernels take up to kNQ query vectors (their accumulators fill the
        // registers); the tile's K rows stay in L1 across the groups.
        for (int v0 = v_lo; v0 < v_hi; v0 += static_cast<int>(S::kNQ))
          P::scores(bk, static_cast<int>(imin(S::kNQ, v_hi - v0)), kt, D, qt + v0 * W, bqp,
                    st + v0 * W);
        for (int v = v_lo; v < v_hi; ++v) {
          const V pos = S::add(S::set1(static_cast<float>(p_lo + v * W)), S::iota());
          const V pw = S::sub(pos, S::set1(static_cast<float>(d.window)));
          const V mold = S::load(mrow + v * W);
          V mx = mold;
          if (!need_mask && !(d.softcap > 0.f)) {
            // Scores stay as they are: only the max, over two chains (max is exact, so the
            // order does not matter; one chain would be bound by its latency).
            V mx1 = mold;
            int64_t j = 0;
            for (; j + 2 <= bk; j += 2) {
              mx = S::max(mx, S::load(st + j * bqp + v * W));
              mx1 = S::max(mx1, S::load(st + (j + 1) * bqp + v * W));
            }
            if (j < bk) mx = S::max(mx, S::load(st + j * bqp + v * W));
            mx = S::max(mx, mx1);
          } else {
            for (int64_t j = 0; j < bk; ++j) {
              V s = S::load(st + j * bqp + v * W);
              if (d.softcap > 0.f)
                s = S::mul(S::set1(d.softcap), vtanh<S>(S::mul(s, S::set1(1.f / d.softcap))));
              if (need_mask) {
                const V jv = S::set1(static_cast<float>(j0 + j));
                s = S::sel_le(jv, pos, s, ninf);
                if (d.window > 0) s = S::sel_le(jv, pw, ninf, s);
              }
              S::store(st + j * bqp + v * W, s);
              mx = S::max(mx, s);
            }
          }
          const V c = vexp<S>(S::sub(mold, mx));
          V l = S::mul(S::load(lrow + v * W), c);
          for (int64_t j = 0; j < bk; ++j) {
            const V p = prob_exp<S, P>(S::sub(S::load(st + j * bqp + v * W), mx));
            S::store(st + j * bqp + v * W, p);
            l = S::add(l, p);
          }
          S::store(mrow + v * W, mx);
          S::store(lrow + v * W, l);
          S::store(corr + v * W, c);
        }
        P::probs(st, bqp, bk, v_lo, v_hi, pb);
        for (int64_t i = r_lo; i < r_hi; ++i)
          if (corr[i] != 1.f) scale<S>(o + i * dp, corr[i], dp);
        // Each row group only over the keys its queries can see (the rest have p = 0).
        for (int64_t i = r_lo; i < r_hi; i += S::kPVR) {
          const int rm = static_cast<int>(imin(S::kPVR, r_hi - i));
          const int64_t jb = d.window > 0 ? imax(0, p_lo + i - d.window + 1 - j0) : 0;
          const int64_t je = imin(bk, p_lo + i + rm - j0);
          if (jb < je) P::pv(rm, st, pb, bqp, jb, je, i, vt, D, o, dp);
        }
      }
    }
  }
  for (int64_t g = 0; g < G; ++g) {
    const float* o = hbase + g * hf + qr * bqmax;
    const float* lrow = o + S::kBQ * dp + bqmax;
    for (int64_t i = 0; i < nq; ++i) {
      const V inv = S::set1(1.f / lrow[i]);
      float* dst = t.out + (t.i0 + i) * t.ldo + (t.h0 + g) * D;
      int64_t dd = 0;
      for (; dd + W <= D; dd += W) S::store_u(dst + dd, S::mul(S::load(o + i * dp + dd), inv));
      if (dd < D) S::storen(dst + dd, S::mul(S::load(o + i * dp + dd), inv), static_cast<int>(D - dd));
    }
  }
}

// Scratch of one task: the block path's (attn_block_floats), or the row path's scores and
// output row; then the converted K and V tiles.
template <class S>
int64_t attn_scratch_floats(int64_t D, int64_t n_keys, int64_t heads) {
  const int64_t blocked = attn_block_floats<S, F32Ops<S>>(D, heads);
  const int64_t rows = round_up(n_keys, 16) + round_up(D, S::W) + 16 + kv_tile_floats(D);
  return imax(blocked, rows);
}

// One query row against all its keys: scores into a buffer (K in tiles of kBK rows),
// softmax, then Σ p·V (V in tiles).
template <class S>
void attn_row(const AttnTask& t, int64_t i, const AttnScratch& sc) {
  using V = typename S::V;
  constexpr int W = S::W;
  const AttentionDims& d = *t.d;
  const int64_t D = d.head_dim, dp = round_up(D, W), p = t.pos0 + i;
  const int64_t jlo = d.window > 0 ? imax(0, p - d.window + 1) : 0, n = p + 1 - jlo;
  float* s = sc.buf;
  float* o = s + round_up(n, 16);
  float* ktile = sc.buf + sc.n - kv_tile_floats(D);
  float* vtile = ktile + kBK * round_up(D, 16);
  const float* q = t.q + i * t.ldq + t.h0 * D;
  // F16 rows are read in place and converted in registers (a decode step streams the whole
  // cache once: no store and reload through the tile buffer); same floats, same order.
  const bool h16 = t.k.type == KvType::kF16 && t.v.type == KvType::kF16 && D % W == 0;
  int64_t row_off[kBK];  // element offset of each key's row in the tile (ring-wrapped slots)
  auto tile_rows = [&](const KvHead& kv, int64_t j0, int64_t bk) {
    int64_t sl = kv.ring > 0 ? (jlo + j0) % kv.ring : jlo + j0;
    for (int64_t j = 0; j < bk; ++j, ++sl) {
      if (kv.ring > 0 && sl >= kv.ring) sl -= kv.ring;
      row_off[j] = sl * D;
    }
  };
  for (int64_t j0 = 0; j0 < n; j0 += kBK) {
    const int64_t bk = imin(kBK, n - j0);
    if (h16) {
      const uint16_t* kh = static_cast<const uint16_t*>(t.k.p);
      tile_rows(t.k, j0, bk);
      for (int64_t j = 0; j < bk; ++j) s[j0 + j] = dot<S>(q, kh + row_off[j], D) * d.scale;
      continue;
    }
    const float* k = kv_rows<S>(t.k, D, jlo + j0, bk, ktile);
    for (int64_t j = 0; j < bk; ++j) s[j0 + j] = dot<S>(q, k + j * D, D) * d.scale;
  }
  if (d.softcap > 0.f) {
    const float inv = 1.f / d.softcap;
    int64_t j = 0;
    for (; j + W <= n; j += W)
      S::store_u(s + j, S::mul(S::set1(d.softcap), vtanh<S>(S::mul(S::load_u(s + j), S::set1(inv)))));
    if (j < n) {
      const int r = static_cast<int>(n - j);
      S::storen(s + j, S::mul(S::set1(d.softcap), vtanh<S>(S::mul(S::loadn(s + j, r), S::set1(inv)))), r);
    }
  }
  softmax<S>(s, n);
  for (int64_t c = 0; c < dp; ++c) o[c] = 0.f;
  constexpr int CV = S::kPVC;
  for (int64_t j0 = 0; j0 < n; j0 += kBK) {
    const int64_t bk = imin(kBK, n - j0);
    if (h16) {
      // The float loop below over halves; one generic loop over both row kinds (a lambda
      // taking the row pointer) measured 1.5-2x slower here, so the two stay separate.
      const uint16_t* vh = static_cast<const uint16_t*>(t.v.p);
      tile_rows(t.v, j0, bk);
      for (int64_t c0 = 0; c0 < D; c0 += CV * W) {
        const int cv = static_cast<int>(imin(CV, (D - c0) / W));
        V acc[CV];
#pragma GCC unroll 16
        for (int c = 0; c < CV; ++c) acc[c] = c < cv ? S::load(o + c0 + c * W) : S::zero();
        for (int64_t j = 0; j < bk; ++j) {
          const V pj = S::set1(s[j0 + j]);
          const uint16_t* vr = vh + row_off[j] + c0;
#pragma GCC unroll 16
          for (int c = 0; c < CV; ++c) {
            if (c >= cv) break;
            acc[c] = S::fmadd(pj, S::load_h(vr + c * W), acc[c]);
          }
        }
        for (int c = 0; c < cv; ++c) S::store(o + c0 + c * W, acc[c]);
      }
      continue;
    }
    const float* v = kv_rows<S>(t.v, D, jlo + j0, bk, vtile);
    for (int64_t c0 = 0; c0 < dp; c0 += CV * W) {
      const int cv = static_cast<int>(imin(CV, (dp - c0) / W));
      V acc[CV];
#pragma GCC unroll 16
      for (int c = 0; c < CV; ++c) acc[c] = c < cv ? S::load(o + c0 + c * W) : S::zero();
      for (int64_t j = 0; j < bk; ++j) {
        const V pj = S::set1(s[j0 + j]);
#pragma GCC unroll 16
        for (int c = 0; c < CV; ++c) {
          if (c >= cv) break;
          const int64_t col = c0 + c * W;
          const V vv = col + W <= D ? S::load_u(v + j * D + col)
                                    : S::loadn(v + j * D + col, static_cast<int>(D - col));
          acc[c] = S::fmadd(pj, vv, acc[c]);
        }
      }
      for (int c = 0; c < cv; ++c) S::store(o + c0 + c * W, acc[c]);
    }
  }
  float* dst = t.out + i * t.ldo + t.h0 * D;
  for (int64_t dd = 0; dd < D; ++dd) dst[dd] = o[dd];
}

template <class S>
void attn(const AttnTask& t, const AttnScratch& sc) {
  if (t.i1 - t.i0 < 3) {
    for (int64_t h = t.h0; h < t.h1; ++h) {
      AttnTask th = t;
      th.h0 = h;
      th.h1 = h + 1;
      for (int64_t i = t.i0; i < t.i1; ++i) attn_row<S>(th, i, sc);
    }
  } else {
    attn_block<S, F32Ops<S>>(t, sc);
  }
}

// 16 independent FMA chains (2 ports × 4-cycle latency needs 8): throughput-bound.
template <class S>
double fma_loop(int64_t iters) {
  using V = typename S::V;
  V acc[16];
  const V a = S::set1(0.999999f), b = S::set1(1e-7f);
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) acc[i] = S::set1(static_cast<float>(i));
  for (int64_t t = 0; t < iters; ++t) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = S::fmadd(acc[i], a, b);
    __asm__ volatile("" ::: "memory");
  }
  V s = acc[0];
#pragma GCC unroll 16
  for (int i = 1; i < 16; ++i) s = S::add(s, acc[i]);
  volatile float sink = S::hsum(s);
  (void)sink;
  return static_cast<double>(iters) * 16 * S::W * 2;
}

template <class S>
FloatKernels make_table(FloatIsa isa) {
  FloatKernels f{};
  f.isa = isa;
  f.gemm = gemm_range<S>;
  f.gemm_np = S::kNP;
  f.gemm_mr = S::kMR;
  f.dot = dot<S>;
  f.axpy = axpy<S>;
  f.add = add<S>;
  f.scale = scale<S>;
  f.rmsnorm = rmsnorm<S>;
  f.softmax = softmax<S>;
  f.silu_mul = silu_mul<S>;
  f.to_f16 = S::to_f16;
  f.gelu_tanh_mul = gelu_tanh_mul<S>;
  f.silu_mul_pairs = silu_mul_pairs<S>;
  f.gelu_tanh_mul_pairs = gelu_tanh_mul_pairs<S>;
  f.rope_table = rope_table<S>;
  f.attn = attn<S>;
  f.attn_bq = S::kBQ;
  f.attn_scratch_floats = attn_scratch_floats<S>;
  f.fma_loop = fma_loop<S>;
  return f;
}
