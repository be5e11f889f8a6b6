// GGUF (v2, v3) reader over a memory map, ggml tensor types and dequantisation.
// Everything here validates untrusted input: a bad file yields an error Status, never a crash.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "octet/status.h"

namespace octet::gguf {

// ggml tensor types (values as in the GGUF spec).
enum class Type : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct TypeInfo {
  const char* name;
  int64_t block_size;   // elements per block
  int64_t type_size;    // bytes per block
  bool can_dequantize;  // octet has a dequantiser for it
};
// nullptr for a type id octet does not know.
const TypeInfo* type_info(uint32_t type);
std::string type_name(uint32_t type);  // "Q4_K", or "type#N" when unknown
// Bytes taken by n elements of a type (n must be a multiple of its block size).
uint64_t row_bytes(Type t, int64_t n);

// Dequantise n elements (a multiple of the block size) from src into dst.
Status dequantize(Type t, const void* src, float* dst, int64_t n);

// GGUF metadata value types.
enum class ValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* value_type_name(ValueType t);

// One metadata value. Scalars live in the fields that fit; arrays keep their element type
// and count, with the elements in `strings` (STRING) or `raw` (numeric/bool, little-endian,
// pointing into the mapped file). Nested arrays are accepted and skipped (count only).
struct Value {
  ValueType type = ValueType::UINT8;
  uint64_t u = 0;     // unsigned and bool scalars
  int64_t i = 0;      // signed scalars
  double f = 0;       // float scalars
  std::string s;      // STRING
  ValueType elem_type = ValueType::UINT8;  // ARRAY
  uint64_t count = 0;                      // ARRAY
  std::vector<std::string> strings;        // ARRAY of STRING
  const uint8_t* raw = nullptr;            // ARRAY of numbers/bools

  bool is_integer() const;  // any integer scalar type
  bool is_float() const;
  std::optional<int64_t> as_int() const;   // integer scalars (and bool)
  std::optional<double> as_double() const; // any numeric scalar
  // Numeric array element as double (index < count; elem type numeric).
  double array_number(uint64_t idx) const;
  // Short human form: scalars in full, arrays as "[type x count] first, elems, ...";
  // strings escaped and, when max_chars > 0, cut after max_chars bytes.
  std::string to_string(size_t max_elems = 8, size_t max_chars = 0) const;
};

struct KV {
  std::string key;
  Value value;
};

struct TensorInfo {
  std::string name;
  Type type = Type::F32;
  std::vector<int64_t> dims;  // ne[0] first (fastest varying): a matrix is {cols=K, rows=N}
  uint64_t offset = 0;        // relative to the tensor data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // into the mapping

  int64_t n_elements() const;
  int64_t ne(size_t i) const { return i < dims.size() ? dims[i] : 1; }
  int64_t row_len() const { return ne(0); }
  int64_t n_rows() const { return n_elements() / (ne(0) ? ne(0) : 1); }
};

class File {
 public:
  // Maps and parses a file.
  static Expected<std::unique_ptr<File>> open(const std::string& path);
  // Parses a buffer the caller keeps alive (used by tests and the fuzzer).
  static Expected<std::unique_ptr<File>> from_memory(const uint8_t* data, size_t size);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  size_t size() const { return size_; }
  const uint8_t* base() const { return base_; }
  // True when the bytes are our own read-only file mapping (not a caller's buffer).
  bool is_mapped() const { return mapping_ != nullptr; }

  const std::vector<KV>& kvs() const { return kvs_; }
  const Value* find(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;    // any integer type
  std::optional<double> get_float(std::string_view key) const;   // any numeric type
  std::optional<bool> get_bool(std::string_view key) const;
  // Arrays: nullptr/empty optional when missing or of another element type.
  const std::vector<std::string>* get_strings(std::string_view key) const;
  std::optional<std::vector<float>> get_f32_array(std::string_view key) const;   // numeric elems
  std::optional<std::vector<int32_t>> get_i32_array(std::string_view key) const; // integer elems

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* tensor(std::string_view name) const;

  // Dequantise rows [row0, row0+nrows) of a tensor into dst (nrows * row_len floats).
  Status dequantize_rows(const TensorInfo& t, int64_t row0, int64_t nrows, float* dst) const;
  // The same, but a mapped file's bytes are read with pread(2): the mapping is never touched,
  // so scattered rows (token embeddings) do not fault pages into this process's RSS — each
  // fault would map 64 KiB of neighbours too (kernel fault-around; MADV_RANDOM does not stop
  // it). Buffers and unmapped files: as dequantize_rows.
  Status read_rows(const TensorInfo& t, int64_t row0, int64_t nrows, float* dst) const;
  // Whole tensor to float.
  Expected<std::vector<float>> to_float(const TensorInfo& t) const;

 private:
  File() = default;
  Status parse();
  // Checks that rows [row0, row0+nrows) lie inside t and t inside this file; their byte
  // offset from t.data and length.
  Status row_span(const TensorInfo& t, int64_t row0, int64_t nrows, uint64_t* off,
                  uint64_t* len) const;
  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  void* mapping_ = nullptr;  // non-null when we own an mmap
  int fd_ = -1;              // the mapped file, open for read_rows (-1: none)
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<KV> kvs_;
  std::vector<TensorInfo> tensors_;
  // Views into the mapped bytes (stable for the File's lifetime) -> index.
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace octet::gguf
