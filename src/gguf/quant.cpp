// Reference quantisers (ggml's quantize_row_*_ref): used by the writer for synthetic models
// and tests. Non-finite inputs give defined (if meaningless) codes instead of UB casts.
#include <cmath>
#include <cstring>

#include "octet/gguf_writer.h"
#include "octet/half.h"

namespace octet::gguf {

namespace {

void put_h(uint8_t* p, float f) {
  const uint16_t h = fp32_to_fp16(f);
  std::memcpy(p, &h, 2);
}

// Q8_0: d = max|x| / 127, q = round(x / d) (half away from zero, like roundf).
void quantize_q8_0(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32, y += 34) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    put_h(y, d);
    for (int j = 0; j < 32; ++j) {
      float v = std::round(x[j] * id);
      v = v > 127.0f ? 127.0f : (v < -128.0f ? -128.0f : v);  // NaN compares false: falls through
      y[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::isnan(v) ? 0.0f : v));
    }
  }
}

// Q4_0: d = (signed value of max magnitude) / -8, q = trunc(x / d + 8.5) clamped to 15.
void quantize_q4_0(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32, y += 18) {
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    put_h(y, d);
    auto code = [id](float v) {
      const float t = v * id + 8.5f;
      return t >= 15.0f ? 15 : (t > 0.0f ? static_cast<int>(t) : 0);  // NaN -> 0
    };
    for (int j = 0; j < 16; ++j) y[2 + j] = static_cast<uint8_t>(code(x[j]) | (code(x[16 + j]) << 4));
  }
}

}  // namespace

Status quantize(Type t, const float* src, void* dst, int64_t n) {
  const TypeInfo* ti = type_info(static_cast<uint32_t>(t));
  if (!ti) return Status::Error("gguf: cannot quantize to unknown type " + type_name(static_cast<uint32_t>(t)));
  if (n < 0 || n % ti->block_size != 0) {
    return Status::Error("gguf: " + std::to_string(n) + " elements is not a whole number of " + ti->name + " blocks");
  }
  if (n == 0) return Status::Ok();
  if (!src || !dst) return Status::Error("gguf: quantize given a null pointer");
  auto* y = static_cast<uint8_t*>(dst);
  switch (t) {
    case Type::F32: std::memcpy(y, src, static_cast<size_t>(n) * 4); break;
    case Type::F16:
      for (int64_t i = 0; i < n; ++i) put_h(y + 2 * i, src[i]);
      break;
    case Type::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t b = fp32_to_bf16(src[i]);
        std::memcpy(y + 2 * i, &b, 2);
      }
      break;
    case Type::Q8_0: quantize_q8_0(src, y, n / 32); break;
    case Type::Q4_0: quantize_q4_0(src, y, n / 32); break;
    default: return Status::Error(std::string("gguf: no quantizer for type ") + ti->name);
  }
  return Status::Ok();
}

}  // namespace octet::gguf
