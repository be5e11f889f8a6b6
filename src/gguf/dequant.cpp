// Scalar dequantisers for ggml block formats. Each one evaluates the same float expression,
// in the same order, as ggml's reference (dequantize_row_*), so results match it bit for bit.
// Block layouts are decoded from raw bytes (no packed structs, no alignment assumptions).
#include <cstring>

#include "gguf/dequant_impl.h"
#include "octet/gguf.h"
#include "octet/half.h"

namespace octet::gguf {

namespace {

constexpr int QK = 32;    // small-block formats
constexpr int QK_K = 256;  // k-quants super-block

constexpr int8_t kValuesIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                     1,    13,   25,  38,  53,  69,  89,  113};
constexpr int8_t kValuesMxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

void deq_q4_0(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 18, y += QK) {
    const float d = h2f(b);
    const uint8_t* qs = b + 2;
    for (int j = 0; j < QK / 2; ++j) {
      y[j] = static_cast<float>((qs[j] & 0x0f) - 8) * d;
      y[j + QK / 2] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
  }
}

void deq_q4_1(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 20, y += QK) {
    const float d = h2f(b), m = h2f(b + 2);
    const uint8_t* qs = b + 4;
    for (int j = 0; j < QK / 2; ++j) {
      y[j] = static_cast<float>(qs[j] & 0x0f) * d + m;
      y[j + QK / 2] = static_cast<float>(qs[j] >> 4) * d + m;
    }
  }
}

void deq_q5_0(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 22, y += QK) {
    const float d = h2f(b);
    uint32_t qh;
    std::memcpy(&qh, b + 2, 4);
    const uint8_t* qs = b + 6;
    for (int j = 0; j < QK / 2; ++j) {
      const int h0 = ((qh >> j) << 4) & 0x10;
      const int h1 = (qh >> (j + 12)) & 0x10;
      y[j] = static_cast<float>(((qs[j] & 0x0f) | h0) - 16) * d;
      y[j + QK / 2] = static_cast<float>(((qs[j] >> 4) | h1) - 16) * d;
    }
  }
}

void deq_q5_1(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 24, y += QK) {
    const float d = h2f(b), m = h2f(b + 2);
    uint32_t qh;
    std::memcpy(&qh, b + 4, 4);
    const uint8_t* qs = b + 8;
    for (int j = 0; j < QK / 2; ++j) {
      const int h0 = ((qh >> j) << 4) & 0x10;
      const int h1 = (qh >> (j + 12)) & 0x10;
      y[j] = static_cast<float>((qs[j] & 0x0f) | h0) * d + m;
      y[j + QK / 2] = static_cast<float>((qs[j] >> 4) | h1) * d + m;
    }
  }
}

void deq_q8_0(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 34, y += QK) {
    const float d = h2f(b);
    for (int j = 0; j < QK; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
  }
}

// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64] (2 bits), d, dmin.
void deq_q2_k(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 84) {
    const uint8_t* sc = b;
    const uint8_t* q = b + 16;
    const float d = h2f(b + 80), dmin = h2f(b + 82);
    int is = 0;
    for (int n = 0; n < QK_K; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half) {
          const uint8_t s = sc[is++];
          const float dl = d * static_cast<float>(s & 0x0f), ml = dmin * static_cast<float>(s >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * half] >> shift) & 3) - ml;
        }
      }
    }
  }
}

// Q3_K: hmask[32], qs[64], scales[12] (16 x 6-bit, biased by 32), d.
void deq_q3_k(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 110) {
    const uint8_t* hm = b;
    const uint8_t* q = b + 32;
    const uint8_t* s = b + 96;
    const float d = h2f(b + 108);
    int8_t scales[16];
    for (int k = 0; k < 16; ++k) {
      const int lo = (k < 8 ? s[k] : s[k - 8] >> 4) & 0x0f;
      const int hi = (s[8 + (k & 3)] >> (2 * (k >> 2))) & 3;
      scales[k] = static_cast<int8_t>((lo | (hi << 4)) - 32);
    }
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < QK_K; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
        for (int half = 0; half < 2; ++half) {
          const float dl = d * static_cast<float>(scales[is++]);
          for (int l = 16 * half; l < 16 * half + 16; ++l) {
            const int v = ((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
            *y++ = dl * static_cast<float>(v);
          }
        }
      }
    }
  }
}

// Q4_K: d, dmin, scales[12], qs[128].
void deq_q4_k(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 144) {
    const float d = h2f(b), dmin = h2f(b + 2);
    const uint8_t* sc = b + 4;
    const uint8_t* q = b + 16;
    for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, q += 32) {
      uint8_t s, m;
      scale_min_k4(is, sc, s, m);
      const float d1 = d * static_cast<float>(s), m1 = dmin * static_cast<float>(m);
      scale_min_k4(is + 1, sc, s, m);
      const float d2 = d * static_cast<float>(s), m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0f) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

// Q5_K: d, dmin, scales[12], qh[32], qs[128].
void deq_q5_k(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 176) {
    const float d = h2f(b), dmin = h2f(b + 2);
    const uint8_t* sc = b + 4;
    const uint8_t* qh = b + 16;
    const uint8_t* ql = b + 48;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
      uint8_t s, m;
      scale_min_k4(is, sc, s, m);
      const float d1 = d * static_cast<float>(s), m1 = dmin * static_cast<float>(m);
      scale_min_k4(is + 1, sc, s, m);
      const float d2 = d * static_cast<float>(s), m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0x0f) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
  }
}

// Q6_K: ql[128], qh[64], scales[16] (int8), d.
void deq_q6_k(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 210) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = h2f(b + 208);
    for (int n = 0; n < QK_K; n += 128, ql += 64, qh += 32, sc += 8, y += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

// Q8_K: float32 d, qs[256] (int8), bsums[16] (int16, unused here).
void deq_q8_k(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 292, y += QK_K) {
    float d;
    std::memcpy(&d, b, 4);
    for (int j = 0; j < QK_K; ++j) y[j] = d * static_cast<float>(static_cast<int8_t>(b[4 + j]));
  }
}

void deq_iq4_nl(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 18, y += QK) {
    const float d = h2f(b);
    const uint8_t* qs = b + 2;
    for (int j = 0; j < QK / 2; ++j) {
      y[j] = d * static_cast<float>(kValuesIq4nl[qs[j] & 0x0f]);
      y[j + QK / 2] = d * static_cast<float>(kValuesIq4nl[qs[j] >> 4]);
    }
  }
}

// IQ4_XS: d, scales_h (u16), scales_l[4], qs[128]; 8 sub-blocks of 32 with 6-bit scales.
void deq_iq4_xs(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 136) {
    const float d = h2f(b);
    uint16_t sh;
    std::memcpy(&sh, b + 2, 2);
    const uint8_t* sl = b + 4;
    const uint8_t* qs = b + 8;
    for (int ib = 0; ib < 8; ++ib, qs += 16, y += 32) {
      const int ls = ((sl[ib / 2] >> (4 * (ib % 2))) & 0x0f) | (((sh >> (2 * ib)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kValuesIq4nl[qs[j] & 0x0f]);
        y[j + 16] = dl * static_cast<float>(kValuesIq4nl[qs[j] >> 4]);
      }
    }
  }
}

// E8M0 exponent to float, halved (ggml_e8m0_to_fp32_half): the kvalues are doubled e2m1.
inline float e8m0_half(uint8_t x) {
  const uint32_t bits = x < 2 ? 0x00200000u << x : static_cast<uint32_t>(x - 1) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

void deq_mxfp4(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 17, y += QK) {
    const float d = e8m0_half(b[0]);
    const uint8_t* qs = b + 1;
    for (int j = 0; j < QK / 2; ++j) {
      y[j] = static_cast<float>(kValuesMxfp4[qs[j] & 0x0f]) * d;
      y[j + QK / 2] = static_cast<float>(kValuesMxfp4[qs[j] >> 4]) * d;
    }
  }
}

template <class T>
void deq_cast(const uint8_t* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, b + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
    y[i] = static_cast<float>(v);
  }
}

void deq_f16(const uint8_t* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = h2f(b + 2 * i);
}

void deq_bf16(const uint8_t* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, b + 2 * i, 2);
    y[i] = bf16_to_fp32(h);
  }
}

const DequantKernels kRef = {deq_f16, deq_bf16, deq_q4_0, deq_q8_0, deq_q4_k, deq_q6_k, deq_q5_0};

}  // namespace

Status dequantize_with(DequantIsa isa, Type t, const void* src, float* dst, int64_t n) {
  const TypeInfo* ti = type_info(static_cast<uint32_t>(t));
  if (!ti) return Status::Error("gguf: cannot dequantize unknown type " + type_name(static_cast<uint32_t>(t)));
  if (!ti->can_dequantize) return Status::Error(std::string("gguf: no dequantizer for type ") + ti->name);
  if (n < 0 || n % ti->block_size != 0) {
    return Status::Error("gguf: " + std::to_string(n) + " elements is not a whole number of " + ti->name +
                         " blocks of " + std::to_string(ti->block_size));
  }
  if (!dequant_isa_available(isa)) {
    return Status::Error(std::string("gguf: this CPU cannot run the ") + dequant_isa_name(isa) + " dequantizers");
  }
  if (n == 0) return Status::Ok();
  if (!src || !dst) return Status::Error("gguf: dequantize given a null pointer");
  const DequantKernels& k = isa == DequantIsa::Avx512 ? dequant_kernels_avx512()
                            : isa == DequantIsa::Avx2 ? dequant_kernels_avx2()
                                                      : kRef;
  auto pick = [](DequantFn simd, DequantFn ref) { return simd ? simd : ref; };
  const auto* b = static_cast<const uint8_t*>(src);
  const int64_t nb = n / ti->block_size;
  switch (t) {
    case Type::F32: std::memcpy(dst, b, static_cast<size_t>(n) * 4); break;
    case Type::F16: pick(k.f16, deq_f16)(b, dst, n); break;
    case Type::BF16: pick(k.bf16, deq_bf16)(b, dst, n); break;
    case Type::Q4_0: pick(k.q4_0, deq_q4_0)(b, dst, nb); break;
    case Type::Q4_1: deq_q4_1(b, dst, nb); break;
    case Type::Q5_0: pick(k.q5_0, deq_q5_0)(b, dst, nb); break;
    case Type::Q5_1: deq_q5_1(b, dst, nb); break;
    case Type::Q8_0: pick(k.q8_0, deq_q8_0)(b, dst, nb); break;
    case Type::Q2_K: deq_q2_k(b, dst, nb); break;
    case Type::Q3_K: deq_q3_k(b, dst, nb); break;
    case Type::Q4_K: pick(k.q4_k, deq_q4_k)(b, dst, nb); break;
    case Type::Q5_K: deq_q5_k(b, dst, nb); break;
    case Type::Q6_K: pick(k.q6_k, deq_q6_k)(b, dst, nb); break;
    case Type::Q8_K: deq_q8_k(b, dst, nb); break;
    case Type::IQ4_NL: deq_iq4_nl(b, dst, nb); break;
    case Type::IQ4_XS: deq_iq4_xs(b, dst, nb); break;
    case Type::MXFP4: deq_mxfp4(b, dst, nb); break;
    case Type::I8: deq_cast<int8_t>(b, dst, n); break;
    case Type::I16: deq_cast<int16_t>(b, dst, n); break;
    case Type::I32: deq_cast<int32_t>(b, dst, n); break;
    case Type::I64: deq_cast<int64_t>(b, dst, n); break;
    case Type::F64: deq_cast<double>(b, dst, n); break;
    default: return Status::Error(std::string("gguf: no dequantizer for type ") + ti->name);
  }
  return Status::Ok();
}

}  // namespace octet::gguf
