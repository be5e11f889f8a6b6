// Metadata value accessors and human-readable rendering.
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#include "octet/gguf.h"

namespace octet::gguf {

namespace {

bool is_signed_int(ValueType t) {
  return t == ValueType::INT8 || t == ValueType::INT16 || t == ValueType::INT32 || t == ValueType::INT64;
}
bool is_unsigned_int(ValueType t) {
  return t == ValueType::UINT8 || t == ValueType::UINT16 || t == ValueType::UINT32 || t == ValueType::UINT64;
}

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Shortest text that reads back to the same float/double.
std::string number(double x, bool single) {
  char buf[64];
  auto r = single ? std::to_chars(buf, buf + sizeof buf, static_cast<float>(x))
                  : std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

// Quoted, escaped, optionally truncated string (metadata strings may hold any bytes).
std::string quoted(const std::string& s, size_t max_chars) {
  std::string out = "\"";
  size_t n = 0;
  for (unsigned char ch : s) {
    if (max_chars && n++ >= max_chars) {
      out += "\"... (" + std::to_string(s.size()) + " bytes)";
      return out;
    }
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (ch < 0x20 || ch == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", ch);
          out += buf;
        } else {
          out += static_cast<char>(ch);  // UTF-8 passes through
        }
    }
  }
  return out + "\"";
}

}  // namespace

bool Value::is_integer() const { return is_signed_int(type) || is_unsigned_int(type); }

bool Value::is_float() const { return type == ValueType::FLOAT32 || type == ValueType::FLOAT64; }

std::optional<int64_t> Value::as_int() const {
  if (is_signed_int(type)) return i;
  if (is_unsigned_int(type) || type == ValueType::BOOL) {
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  return std::nullopt;
}

std::optional<double> Value::as_double() const {
  if (is_signed_int(type)) return static_cast<double>(i);
  if (is_unsigned_int(type) || type == ValueType::BOOL) return static_cast<double>(u);
  if (is_float()) return f;
  return std::nullopt;
}

double Value::array_number(uint64_t idx) const {
  if (type != ValueType::ARRAY || !raw || idx >= count) return 0;
  switch (elem_type) {
    case ValueType::UINT8: return raw[idx];
    case ValueType::BOOL: return raw[idx] != 0;
    case ValueType::INT8: return static_cast<int8_t>(raw[idx]);
    case ValueType::UINT16: return load<uint16_t>(raw + 2 * idx);
    case ValueType::INT16: return load<int16_t>(raw + 2 * idx);
    case ValueType::UINT32: return load<uint32_t>(raw + 4 * idx);
    case ValueType::INT32: return load<int32_t>(raw + 4 * idx);
    case ValueType::FLOAT32: return load<float>(raw + 4 * idx);
    case ValueType::UINT64: return static_cast<double>(load<uint64_t>(raw + 8 * idx));
    case ValueType::INT64: return static_cast<double>(load<int64_t>(raw + 8 * idx));
    case ValueType::FLOAT64: return load<double>(raw + 8 * idx);
    default: return 0;
  }
}

std::string Value::to_string(size_t max_elems, size_t max_chars) const {
  switch (type) {
    case ValueType::STRING: return quoted(s, max_chars);
    case ValueType::BOOL: return u ? "true" : "false";
    case ValueType::FLOAT32:
    case ValueType::FLOAT64: return number(f, type == ValueType::FLOAT32);
    case ValueType::ARRAY: {
      std::string out = std::string("[") + value_type_name(elem_type) + " x " + std::to_string(count) + "]";
      if (elem_type == ValueType::ARRAY) return out;
      const uint64_t n = count < max_elems ? count : max_elems;
      for (uint64_t k = 0; k < n; ++k) {
        out += k ? ", " : " ";
        if (elem_type == ValueType::STRING) {
          out += quoted(strings[k], max_chars ? max_chars : 64);
        } else if (elem_type == ValueType::BOOL) {
          out += raw[k] ? "true" : "false";
        } else if (elem_type == ValueType::UINT64) {
          out += std::to_string(load<uint64_t>(raw + 8 * k));
        } else if (elem_type == ValueType::INT64) {
          out += std::to_string(load<int64_t>(raw + 8 * k));
        } else {
          out += number(array_number(k), elem_type == ValueType::FLOAT32);
        }
      }
      if (n < count) out += ", ...";
      return out;
    }
    default:
      if (is_signed_int(type)) return std::to_string(i);
      return std::to_string(u);
  }
}

int64_t TensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) return 0;
  }
  return n;
}

}  // namespace octet::gguf
