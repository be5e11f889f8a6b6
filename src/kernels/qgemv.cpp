// Decode GEMV: scalar reference kernels, activation quantisation, dispatch and threading.
// The reference defines the arithmetic: per block an exact int32 dot, then
// acc += (float)isum * (d_w * d_a) in block order (k-quants: scale and min terms per
// super-block). The SIMD kernels do the same int math and differ only in float summation order.
#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "kernels/qgemv_impl.h"
#include "octet/cpu.h"
#include "octet/half.h"

namespace octet::qgemv {

using gguf::Type;

namespace {

using gguf::h2f;

// ---- 32-element formats: w = d · (q - offset) ----

// Fills v[32] with the signed weight codes of one block.
inline void codes_q4_0(const uint8_t* b, int* v) {
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    v[j] = (qs[j] & 0x0f) - 8;
    v[j + 16] = (qs[j] >> 4) - 8;
  }
}
inline void codes_q5_0(const uint8_t* b, int* v) {
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    v[j] = ((qs[j] & 0x0f) | (((qh >> j) & 1) << 4)) - 16;
    v[j + 16] = ((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
  }
}
inline void codes_q8_0(const uint8_t* b, int* v) {
  for (int j = 0; j < 32; ++j) v[j] = static_cast<int8_t>(b[2 + j]);
}

template <int kBytes, void (*Codes)(const uint8_t*, int*)>
float dot_block32(const uint8_t* row, int64_t k, const int8_t* a, const float* da) {
  float acc = 0.f;
  int v[32];
  for (int64_t b = 0; b < k / 32; ++b, row += kBytes, a += 32) {
    Codes(row, v);
    int32_t isum = 0;
    for (int j = 0; j < 32; ++j) isum += v[j] * a[j];
    acc += static_cast<float>(isum) * (h2f(row) * da[b]);
  }
  return acc;
}

// ---- k-quants (256-element super-blocks) ----

// Q4_K / Q5_K: w = d·sc_j·q - dmin·m_j over 8 sub-blocks of 32; q 4 or 5 bits.
template <bool kFive>
float dot_q45_k(const uint8_t* b, int64_t k, const int8_t* a, const float* da,
                const int16_t* s16) {
  constexpr int kBytes = kFive ? 176 : 144;
  float acc = 0.f;
  for (int64_t sb = 0; sb < k / 256; ++sb, b += kBytes, a += 256, s16 += 16) {
    const float d = h2f(b), dmin = h2f(b + 2);
    const uint8_t* sc = b + 4;
    const uint8_t* qh = b + 16;
    const uint8_t* qs = kFive ? b + 48 : b + 16;
    int32_t isum = 0, imin = 0;
    for (int c = 0; c < 4; ++c) {
      for (int half = 0; half < 2; ++half) {
        const int j = 2 * c + half;
        int s, m;
        kquant_scale_min(j, sc, s, m);
        int32_t dot = 0;
        for (int l = 0; l < 32; ++l) {
          int q = half ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 0x0f;
          if (kFive) q |= ((qh[l] >> j) & 1) << 4;
          dot += q * a[32 * j + l];
        }
        isum += s * dot;
        imin += m * (s16[2 * j] + s16[2 * j + 1]);
      }
    }
    acc += (d * da[sb]) * static_cast<float>(isum) - (dmin * da[sb]) * static_cast<float>(imin);
  }
  return acc;
}

// Q6_K: w = d·sc_s·(q - 32) over 16 sub-blocks of 16; q 6 bits (4 in ql, 2 in qh).
float dot_q6_k(const uint8_t* b, int64_t k, const int8_t* a, const float* da,
               const int16_t* s16) {
  float acc = 0.f;
  for (int64_t sb = 0; sb < k / 256; ++sb, b += 210, a += 256, s16 += 16) {
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = h2f(b + 208);
    int q[256];
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = b + 64 * h;
      const uint8_t* qh = b + 128 + 32 * h;
      int* o = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        o[l] = (ql[l] & 0x0f) | ((qh[l] & 3) << 4);
        o[l + 32] = (ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4);
        o[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
        o[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
      }
    }
    int32_t isum = 0, ioff = 0;
    for (int s = 0; s < 16; ++s) {
      int32_t dot = 0;
      for (int l = 0; l < 16; ++l) dot += q[16 * s + l] * a[16 * s + l];
      isum += sc[s] * dot;
      ioff += sc[s] * s16[s];
    }
    isum -= 32 * ioff;
    acc += (d * da[sb]) * static_cast<float>(isum);
  }
  return acc;
}

// Float path: one dequantised row against unquantised x.
void rows_float(Type t, const uint8_t* w, size_t stride, int64_t k, int64_t n0, int64_t n1,
                const float* x, int64_t m, float* y, int64_t ldy) {
  thread_local std::vector<float> buf;
  buf.resize(static_cast<size_t>(k));
  for (int64_t r = n0; r < n1; ++r) {
    Status st = gguf::dequantize(t, w + r * stride, buf.data(), k);
    (void)st;  // type and k validated by the caller
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x + i * k;
      float acc = 0.f;
      for (int64_t j = 0; j < k; ++j) acc += buf[j] * xi[j];
      y[i * ldy + r] = acc;
    }
  }
}

void rows_ref(Type t, const uint8_t* w, size_t stride, int64_t k, int64_t n0, int64_t n1,
              const Acts& a, float* y, int64_t ldy) {
  for (int64_t r = n0; r < n1; ++r) {
    const uint8_t* row = w + r * stride;
    for (int64_t i = 0; i < a.m; ++i) {
      const int8_t* q = a.row(i);
      const float* d = a.scales(i);
      float v = 0.f;
      switch (t) {
        case Type::Q4_0: v = dot_block32<18, codes_q4_0>(row, k, q, d); break;
        case Type::Q5_0: v = dot_block32<22, codes_q5_0>(row, k, q, d); break;
        case Type::Q8_0: v = dot_block32<34, codes_q8_0>(row, k, q, d); break;
        case Type::Q4_K: v = dot_q45_k<false>(row, k, q, d, a.sums(i)); break;
        case Type::Q5_K: v = dot_q45_k<true>(row, k, q, d, a.sums(i)); break;
        case Type::Q6_K: v = dot_q6_k(row, k, q, d, a.sums(i)); break;
        default: break;
      }
      y[i * ldy + r] = v;
    }
  }
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Ref: return "ref";
    case Isa::Avx2: return "avx2";
    case Isa::Vnni: return "vnni";
  }
  return "?";
}

bool isa_available(Isa isa) {
  const CpuFeatures& c = cpu_features();
  switch (isa) {
    case Isa::Ref: return true;
    case Isa::Avx2: return c.avx2 && c.fma && c.f16c;
    case Isa::Vnni: return c.avx2 && c.fma && c.f16c && c.has_avx512() && c.avx512vnni;
  }
  return false;
}

Isa best_isa() {
  static const Isa best = isa_available(Isa::Vnni)   ? Isa::Vnni
                          : isa_available(Isa::Avx2) ? Isa::Avx2
                                                     : Isa::Ref;
  return best;
}

int act_block(Type t) {
  switch (t) {
    case Type::Q4_0: case Type::Q5_0: case Type::Q8_0: return 32;
    case Type::Q4_K: case Type::Q5_K: case Type::Q6_K: return 256;
    default: return 0;
  }
}

bool supported(Type t) {
  return act_block(t) != 0 || t == Type::F32 || t == Type::F16 || t == Type::BF16;
}

void quantize_acts(const float* x, int64_t m, int64_t k, int block, Acts* a, Isa isa) {
  a->m = m;
  a->k = k;
  a->block = block;
  a->q.resize(static_cast<size_t>(m * k));
  a->d.resize(static_cast<size_t>(m * (k / block)));
  a->s16.resize(static_cast<size_t>(m * (k / 16)));
  // Decode runs this on one thread while the pool waits: the vector form is ~6x faster and
  // gives the same bytes (max, one division, round-to-nearest-even, clamp).
  if (isa != Isa::Ref && isa_available(Isa::Avx2)) {
    quantize_acts_avx2(x, m, k, block, a->q.data(), a->d.data(), a->s16.data());
    return;
  }
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * k;
    int8_t* q = a->q.data() + i * k;
    for (int64_t b = 0; b < k / block; ++b) {
      float amax = 0.f;
      for (int j = 0; j < block; ++j) amax = std::max(amax, std::fabs(xi[b * block + j]));
      const float d = amax / 127.f, id = d > 0.f ? 1.f / d : 0.f;
      a->d[i * (k / block) + b] = d;
      for (int j = 0; j < block; ++j) {
        const float v = std::nearbyint(xi[b * block + j] * id);
        q[b * block + j] = static_cast<int8_t>(std::clamp(v, -127.f, 127.f));
      }
    }
    for (int64_t g = 0; g < k / 16; ++g) {
      int s = 0;
      for (int j = 0; j < 16; ++j) s += q[g * 16 + j];
      a->s16[i * (k / 16) + g] = static_cast<int16_t>(s);
    }
  }
}

void gemv_rows(Isa isa, Type t, const uint8_t* w, size_t row_stride, int64_t k, int64_t n0,
               int64_t n1, const float* x, const Acts* a, float* y, int64_t ldy) {
  if (act_block(t) == 0) {
    // The float path only needs m; a quantised set (if given) carries it, else the caller's
    // y layout does: gemv() always passes acts with m set.
    rows_float(t, w, row_stride, k, n0, n1, x, a->m, y, ldy);
    return;
  }
  if (isa == Isa::Vnni && gemv_rows_vnni(t, w, row_stride, k, n0, n1, *a, y, ldy)) return;
  if (isa == Isa::Avx2 && gemv_rows_avx2(t, w, row_stride, k, n0, n1, *a, y, ldy)) return;
  rows_ref(t, w, row_stride, k, n0, n1, *a, y, ldy);
}

Status gemv(Type t, const uint8_t* w, int64_t n, int64_t k, const float* x, int64_t m, float* y,
            int64_t ldy, ThreadPool* pool, Acts* acts, Isa isa) {
  const gguf::TypeInfo* ti = gguf::type_info(static_cast<uint32_t>(t));
  if (!ti || !supported(t))
    return Status::Error("qgemv: no decode kernel for type " + gguf::type_name(static_cast<uint32_t>(t)));
  if (m < 1 || m > kMaxRows) return Status::Error(fmt::format("qgemv: m = {} outside 1..{}", m, kMaxRows));
  if (k <= 0 || k % ti->block_size != 0 || n < 0 || ldy < n)
    return Status::Error(fmt::format("qgemv: bad shape n={} k={} ldy={} for {}", n, k, ldy, ti->name));
  if (!isa_available(isa)) return Status::Error(std::string("qgemv: CPU cannot run ") + isa_name(isa));
  const int ab = act_block(t);
  if (ab) {
    quantize_acts(x, m, k, ab, acts, isa);
  } else {
    acts->m = m;
  }
  const size_t stride = gguf::row_bytes(t, k);
  parallel_for(pool, n, 16, [&](int64_t b, int64_t e, int) {
    gemv_rows(isa, t, w, stride, k, b, e, x, acts, y, ldy);
  });
  return Status::Ok();
}

}  // namespace octet::qgemv
