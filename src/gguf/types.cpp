// ggml type table: block geometry as in ggml's type traits (the authority for file layout).
#include <array>
#include <string>

#include "octet/gguf.h"

namespace octet::gguf {

namespace {

constexpr size_t kMaxType = 40;
// Indexed by type id; name == nullptr marks ids ggml has retired or never used.
constexpr std::array<TypeInfo, kMaxType> kTypes = [] {
  std::array<TypeInfo, kMaxType> t{};
  for (auto& e : t) e = {nullptr, 0, 0, false};
  t[0] = {"F32", 1, 4, true};
  t[1] = {"F16", 1, 2, true};
  t[2] = {"Q4_0", 32, 18, true};
  t[3] = {"Q4_1", 32, 20, true};
  t[6] = {"Q5_0", 32, 22, true};
  t[7] = {"Q5_1", 32, 24, true};
  t[8] = {"Q8_0", 32, 34, true};
  t[9] = {"Q8_1", 32, 36, false};  // ggml: fp16 d + fp16 s + 32 int8 (runtime-only type)
  t[10] = {"Q2_K", 256, 84, true};
  t[11] = {"Q3_K", 256, 110, true};
  t[12] = {"Q4_K", 256, 144, true};
  t[13] = {"Q5_K", 256, 176, true};
  t[14] = {"Q6_K", 256, 210, true};
  t[15] = {"Q8_K", 256, 292, true};
  t[16] = {"IQ2_XXS", 256, 66, false};
  t[17] = {"IQ2_XS", 256, 74, false};
  t[18] = {"IQ3_XXS", 256, 98, false};
  t[19] = {"IQ1_S", 256, 50, false};
  t[20] = {"IQ4_NL", 32, 18, true};
  t[21] = {"IQ3_S", 256, 110, false};
  t[22] = {"IQ2_S", 256, 82, false};
  t[23] = {"IQ4_XS", 256, 136, true};
  t[24] = {"I8", 1, 1, true};
  t[25] = {"I16", 1, 2, true};
  t[26] = {"I32", 1, 4, true};
  t[27] = {"I64", 1, 8, true};
  t[28] = {"F64", 1, 8, true};
  t[29] = {"IQ1_M", 256, 56, false};
  t[30] = {"BF16", 1, 2, true};
  t[34] = {"TQ1_0", 256, 54, false};
  t[35] = {"TQ2_0", 256, 66, false};
  t[39] = {"MXFP4", 32, 17, true};
  return t;
}();

}  // namespace

const TypeInfo* type_info(uint32_t type) {
  if (type >= kMaxType || kTypes[type].name == nullptr) return nullptr;
  return &kTypes[type];
}

std::string type_name(uint32_t type) {
  const TypeInfo* ti = type_info(type);
  return ti ? std::string(ti->name) : "type#" + std::to_string(type);
}

uint64_t row_bytes(Type t, int64_t n) {
  const TypeInfo* ti = type_info(static_cast<uint32_t>(t));
  if (!ti || n < 0) return 0;
  return static_cast<uint64_t>(n / ti->block_size) * static_cast<uint64_t>(ti->type_size);
}

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8: return "u8";
    case ValueType::INT8: return "i8";
    case ValueType::UINT16: return "u16";
    case ValueType::INT16: return "i16";
    case ValueType::UINT32: return "u32";
    case ValueType::INT32: return "i32";
    case ValueType::FLOAT32: return "f32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "str";
    case ValueType::ARRAY: return "arr";
    case ValueType::UINT64: return "u64";
    case ValueType::INT64: return "i64";
    case ValueType::FLOAT64: return "f64";
  }
  return "?";
}

}  // namespace octet::gguf
