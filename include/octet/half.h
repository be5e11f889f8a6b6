// IEEE half (fp16) and bfloat16 conversions, bit-exact and rounding to nearest even
// (what ggml, numpy and the F16C instructions do), with no tables and no global state.
#pragma once
#include <bit>
#include <cstdint>

namespace octet {

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24 is exact in float.
    const float v = static_cast<float>(mant) * 0x1p-24f;
    return std::bit_cast<float>(std::bit_cast<uint32_t>(v) | sign);
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));  // inf/nan
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}

inline uint16_t fp32_to_fp16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  uint32_t a = x & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00u | static_cast<uint16_t>((a >> 13) & 0x3ffu);  // NaN stays NaN
  if (a >= 0x38800000u) {  // normal half range (or overflow to inf)
    a -= 0x38000000u;                   // rebias exponent 127 -> 15
    a += 0xfffu + ((a >> 13) & 1u);     // round to nearest, ties to even
    a >>= 13;
    return sign | static_cast<uint16_t>(a >= 0x7c00u ? 0x7c00u : a);
  }
  // Subnormal or zero: adding 0.5 aligns the float ulp with the half subnormal step (2^-24),
  // so the FPU does the ties-to-even rounding for us.
  const float r = std::bit_cast<float>(a) + 0.5f;
  return sign | static_cast<uint16_t>(std::bit_cast<uint32_t>(r) - 0x3f000000u);
}

inline float bf16_to_fp32(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

inline uint16_t fp32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace octet
