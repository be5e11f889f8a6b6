// Builds GGUF files (v3 by default; v2 for tests): metadata of every value type, tensors as
// raw bytes, as float data quantised on the way (F32/F16/BF16/Q8_0/Q4_0), or generated while
// writing (so a multi-GB synthetic model never sits in memory whole).
//
// Adders record the first misuse (duplicate key or tensor name, bad size, bad alignment) and
// to_bytes()/write() return it, so call sites stay short and errors still surface as values.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "octet/gguf.h"
#include "octet/status.h"

namespace octet::gguf {

class Writer {
 public:
  explicit Writer(uint32_t version = 3) : version_(version) {}

  // Scalars.
  void add_u8(std::string_view key, uint8_t v);
  void add_i8(std::string_view key, int8_t v);
  void add_u16(std::string_view key, uint16_t v);
  void add_i16(std::string_view key, int16_t v);
  void add_u32(std::string_view key, uint32_t v);
  void add_i32(std::string_view key, int32_t v);
  void add_u64(std::string_view key, uint64_t v);
  void add_i64(std::string_view key, int64_t v);
  void add_f32(std::string_view key, float v);
  void add_f64(std::string_view key, double v);
  void add_bool(std::string_view key, bool v);
  void add_string(std::string_view key, std::string_view v);
  // Arrays.
  void add_array(std::string_view key, std::span<const uint8_t> v);
  void add_array(std::string_view key, std::span<const int8_t> v);
  void add_array(std::string_view key, std::span<const uint16_t> v);
  void add_array(std::string_view key, std::span<const int16_t> v);
  void add_array(std::string_view key, std::span<const uint32_t> v);
  void add_array(std::string_view key, std::span<const int32_t> v);
  void add_array(std::string_view key, std::span<const uint64_t> v);
  void add_array(std::string_view key, std::span<const int64_t> v);
  void add_array(std::string_view key, std::span<const float> v);
  void add_array(std::string_view key, std::span<const double> v);
  void add_bool_array(std::string_view key, std::span<const bool> v);
  void add_string_array(std::string_view key, std::span<const std::string> v);
  // Any value, already encoded (type tag excluded): nested arrays, or odd files for tests.
  void add_raw(std::string_view key, ValueType type, std::vector<uint8_t> encoded);

  // general.alignment (a power of two); writes the key unless it is the default 32.
  void set_alignment(uint32_t alignment);
  uint32_t alignment() const { return alignment_; }

  // Tensors, written in the order added. dims are ne[0] first (row length first).
  void add_tensor(std::string_view name, Type type, std::vector<int64_t> dims, std::vector<uint8_t> bytes);
  void add_tensor(std::string_view name, Type type, std::vector<int64_t> dims, const void* data, size_t nbytes);
  // Quantises n_elements(dims) floats to type (F32, F16, BF16, Q8_0, Q4_0).
  void add_tensor_f32(std::string_view name, Type type, std::vector<int64_t> dims, const float* data);
  // fill(dst, nbytes) produces the tensor's bytes while writing.
  using Filler = std::function<Status(uint8_t* dst, size_t nbytes)>;
  void add_tensor_generated(std::string_view name, Type type, std::vector<int64_t> dims, Filler fill);

  size_t n_kvs() const { return kvs_.size(); }
  size_t n_tensors() const { return tensors_.size(); }
  const Status& status() const { return status_; }

  Expected<std::vector<uint8_t>> to_bytes() const;
  Status write(const std::string& path) const;

 private:
  struct PendingKV {
    std::string key;
    ValueType type;
    std::vector<uint8_t> encoded;
  };
  struct PendingTensor {
    std::string name;
    Type type;
    std::vector<int64_t> dims;
    uint64_t nbytes = 0;
    std::vector<uint8_t> bytes;  // empty when generated
    Filler fill;
  };
  void add_kv(std::string_view key, ValueType type, std::vector<uint8_t> encoded);
  bool check_tensor(std::string_view name, Type type, const std::vector<int64_t>& dims, uint64_t* nbytes);
  void fail(std::string msg);
  template <class Sink>
  Status emit(Sink& sink) const;

  uint32_t version_;
  uint32_t alignment_ = 32;
  std::vector<PendingKV> kvs_;
  std::vector<PendingTensor> tensors_;
  Status status_;
};

// Quantises n floats (a multiple of the block size) to t: F32, F16, BF16, Q8_0 or Q4_0,
// matching ggml's reference quantisers (quantize_row_*_ref) bit for bit.
Status quantize(Type t, const float* src, void* dst, int64_t n);

}  // namespace octet::gguf
