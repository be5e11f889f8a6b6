// GGUF writer: header, KVs, tensor infos, padding to the alignment, tensor data.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>
#include <unordered_set>

#include "octet/gguf_writer.h"

namespace octet::gguf {

namespace {

template <class T>
void put(std::vector<uint8_t>& out, T v) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.insert(out.end(), b, b + sizeof(T));
}

void put_str(std::vector<uint8_t>& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

template <class T>
std::vector<uint8_t> encode_array(ValueType elem, std::span<const T> v) {
  std::vector<uint8_t> e;
  e.reserve(12 + v.size() * sizeof(T));
  put<uint32_t>(e, static_cast<uint32_t>(elem));
  put<uint64_t>(e, v.size());
  for (const T& x : v) put<T>(e, x);
  return e;
}

template <class T>
std::vector<uint8_t> encode_scalar(T v) {
  std::vector<uint8_t> e;
  put<T>(e, v);
  return e;
}

struct VecSink {
  std::vector<uint8_t>& out;
  Status write(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
    return Status::Ok();
  }
};

struct FileSink {
  std::FILE* fp;
  const std::string& path;
  Status write(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, fp) != n) {
      return Status::Error("gguf: writing '" + path + "' failed: " + std::strerror(errno));
    }
    return Status::Ok();
  }
};

}  // namespace

void Writer::fail(std::string msg) {
  if (status_.ok()) status_ = Status::Error("gguf writer: " + std::move(msg));
}

void Writer::add_kv(std::string_view key, ValueType type, std::vector<uint8_t> encoded) {
  for (const auto& kv : kvs_) {
    if (kv.key == key) return fail("duplicate key '" + std::string(key) + "'");
  }
  kvs_.push_back({std::string(key), type, std::move(encoded)});
}

void Writer::add_u8(std::string_view k, uint8_t v) { add_kv(k, ValueType::UINT8, encode_scalar(v)); }
void Writer::add_i8(std::string_view k, int8_t v) { add_kv(k, ValueType::INT8, encode_scalar(v)); }
void Writer::add_u16(std::string_view k, uint16_t v) { add_kv(k, ValueType::UINT16, encode_scalar(v)); }
void Writer::add_i16(std::string_view k, int16_t v) { add_kv(k, ValueType::INT16, encode_scalar(v)); }
void Writer::add_u32(std::string_view k, uint32_t v) { add_kv(k, ValueType::UINT32, encode_scalar(v)); }
void Writer::add_i32(std::string_view k, int32_t v) { add_kv(k, ValueType::INT32, encode_scalar(v)); }
void Writer::add_u64(std::string_view k, uint64_t v) { add_kv(k, ValueType::UINT64, encode_scalar(v)); }
void Writer::add_i64(std::string_view k, int64_t v) { add_kv(k, ValueType::INT64, encode_scalar(v)); }
void Writer::add_f32(std::string_view k, float v) { add_kv(k, ValueType::FLOAT32, encode_scalar(v)); }
void Writer::add_f64(std::string_view k, double v) { add_kv(k, ValueType::FLOAT64, encode_scalar(v)); }
void Writer::add_bool(std::string_view k, bool v) { add_kv(k, ValueType::BOOL, encode_scalar<uint8_t>(v ? 1 : 0)); }

void Writer::add_string(std::string_view k, std::string_view v) {
  std::vector<uint8_t> e;
  put_str(e, v);
  add_kv(k, ValueType::STRING, std::move(e));
}

void Writer::add_array(std::string_view k, std::span<const uint8_t> v) {
  add_kv(k, ValueType::ARRAY, encode_array(ValueType::UINT8, v));
}
void Writer::add_array(std::string_view k, std::span<const int8_t> v) {
  add_kv(k, ValueType::ARRAY, encode_array(ValueType::INT8, v));
}
void Writer::add_array(std::string_view k, std::span<const uint16_t> v) {
  add_kv(k, ValueType::ARRAY, encode_array(ValueType::UINT16, v));
}
void Writer::add_array(std::string_view k, std::span<const int16_t> v) {
  add_kv(k, ValueType::ARRAY, encode_array(ValueType::INT16, v));
}
void Writer::add_array(std::string_view k, std::span<const uint32_t> v) {
  add_kv(k, ValueType::ARRAY, encode_array(ValueType::UINT32, v));
}
void Writer::add_array(std::string_view k, std::span<const int32_t> v) {
  add_kv(k, ValueType::ARRAY, encode_array(ValueType::INT32, v));
}
void Writer::add_array(std::string_view k, std::span<const uint64_t> v) {
  add_kv(k, ValueType::ARRAY, encode_array(ValueType::UINT64, v));
}
void Writer::add_array(std::string_view k, std::span<const int64_t> v) {
  add_kv(k, ValueType::ARRAY, encode_array(ValueType::INT64, v));
}
void Writer::add_array(std::string_view k, std::span<const float> v) {
  add_kv(k, ValueType::ARRAY, encode_array(ValueType::FLOAT32, v));
}
void Writer::add_array(std::string_view k, std::span<const double> v) {
  add_kv(k, ValueType::ARRAY, encode_array(ValueType::FLOAT64, v));
}

void Writer::add_bool_array(std::string_view k, std::span<const bool> v) {
  std::vector<uint8_t> e;
  put<uint32_t>(e, static_cast<uint32_t>(ValueType::BOOL));
  put<uint64_t>(e, v.size());
  for (bool b : v) e.push_back(b ? 1 : 0);
  add_kv(k, ValueType::ARRAY, std::move(e));
}

void Writer::add_string_array(std::string_view k, std::span<const std::string> v) {
  std::vector<uint8_t> e;
  put<uint32_t>(e, static_cast<uint32_t>(ValueType::STRING));
  put<uint64_t>(e, v.size());
  for (const auto& s : v) put_str(e, s);
  add_kv(k, ValueType::ARRAY, std::move(e));
}

void Writer::add_raw(std::string_view k, ValueType type, std::vector<uint8_t> encoded) {
  add_kv(k, type, std::move(encoded));
}

void Writer::set_alignment(uint32_t a) {
  if (a == 0 || (a & (a - 1)) != 0) return fail("alignment " + std::to_string(a) + " is not a power of two");
  alignment_ = a;
}

bool Writer::check_tensor(std::string_view name, Type type, const std::vector<int64_t>& dims, uint64_t* nbytes) {
  const std::string what = "tensor '" + std::string(name) + "'";
  for (const auto& t : tensors_) {
    if (t.name == name) {
      fail("duplicate " + what);
      return false;
    }
  }
  const TypeInfo* ti = type_info(static_cast<uint32_t>(type));
  if (!ti) {
    fail(what + " has unknown type " + std::to_string(static_cast<uint32_t>(type)));
    return false;
  }
  if (dims.size() > 4) {
    fail(what + " has more than 4 dims");
    return false;
  }
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d <= 0 || __builtin_mul_overflow(n, d, &n)) {
      fail(what + " has a bad shape");
      return false;
    }
  }
  if ((dims.empty() ? 1 : dims[0]) % ti->block_size != 0) {
    fail(what + " row length is not a multiple of the " + ti->name + " block size");
    return false;
  }
  *nbytes = static_cast<uint64_t>(n / ti->block_size) * static_cast<uint64_t>(ti->type_size);
  return true;
}

void Writer::add_tensor(std::string_view name, Type type, std::vector<int64_t> dims, std::vector<uint8_t> bytes) {
  uint64_t nb;
  if (!check_tensor(name, type, dims, &nb)) return;
  if (bytes.size() != nb) {
    return fail("tensor '" + std::string(name) + "' has " + std::to_string(bytes.size()) + " bytes, expected " +
                std::to_string(nb));
  }
  tensors_.push_back({std::string(name), type, std::move(dims), nb, std::move(bytes), nullptr});
}

void Writer::add_tensor(std::string_view name, Type type, std::vector<int64_t> dims, const void* data,
                        size_t nbytes) {
  const auto* p = static_cast<const uint8_t*>(data);
  add_tensor(name, type, std::move(dims), std::vector<uint8_t>(p, p + nbytes));
}

void Writer::add_tensor_f32(std::string_view name, Type type, std::vector<int64_t> dims, const float* data) {
  uint64_t nb;
  if (!check_tensor(name, type, dims, &nb)) return;
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<uint8_t> bytes(nb);
  Status st = quantize(type, data, bytes.data(), n);
  if (!st.ok()) return fail("tensor '" + std::string(name) + "': " + st.message());
  tensors_.push_back({std::string(name), type, std::move(dims), nb, std::move(bytes), nullptr});
}

void Writer::add_tensor_generated(std::string_view name, Type type, std::vector<int64_t> dims, Filler fill) {
  uint64_t nb;
  if (!check_tensor(name, type, dims, &nb)) return;
  if (!fill) return fail("tensor '" + std::string(name) + "' has no filler");
  tensors_.push_back({std::string(name), type, std::move(dims), nb, {}, std::move(fill)});
}

template <class Sink>
Status Writer::emit(Sink& sink) const {
  OCTET_RETURN_IF_ERROR(status_);
  if (version_ != 2 && version_ != 3) return Status::Error("gguf writer: can only write v2 or v3");
  std::vector<uint8_t> h;
  h.insert(h.end(), {'G', 'G', 'U', 'F'});
  put<uint32_t>(h, version_);
  put<uint64_t>(h, tensors_.size());
  const bool align_kv = alignment_ != 32;
  bool has_align_key = false;
  for (const auto& kv : kvs_) has_align_key |= kv.key == "general.alignment";
  if (align_kv && has_align_key) {
    return Status::Error("gguf writer: set_alignment() and an explicit general.alignment key conflict");
  }
  put<uint64_t>(h, kvs_.size() + (align_kv ? 1 : 0));
  for (const auto& kv : kvs_) {
    put_str(h, kv.key);
    put<uint32_t>(h, static_cast<uint32_t>(kv.type));
    h.insert(h.end(), kv.encoded.begin(), kv.encoded.end());
  }
  if (align_kv) {
    put_str(h, "general.alignment");
    put<uint32_t>(h, static_cast<uint32_t>(ValueType::UINT32));
    put<uint32_t>(h, alignment_);
  }
  auto pad_to = [&](uint64_t x) { return (x + alignment_ - 1) / alignment_ * alignment_; };
  uint64_t off = 0;
  for (const auto& t : tensors_) {
    put_str(h, t.name);
    put<uint32_t>(h, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) put<uint64_t>(h, static_cast<uint64_t>(d));
    put<uint32_t>(h, static_cast<uint32_t>(t.type));
    put<uint64_t>(h, off);
    off = pad_to(off + t.nbytes);
  }
  h.resize(pad_to(h.size()), 0);
  OCTET_RETURN_IF_ERROR(sink.write(h.data(), h.size()));

  static const uint8_t zeros[256] = {};
  std::vector<uint8_t> scratch;
  for (const auto& t : tensors_) {
    if (t.fill) {
      scratch.assign(t.nbytes, 0);
      Status st = t.fill(scratch.data(), scratch.size());
      if (!st.ok()) return Status::Error("gguf writer: tensor '" + t.name + "': " + st.message());
      OCTET_RETURN_IF_ERROR(sink.write(scratch.data(), scratch.size()));
    } else {
      OCTET_RETURN_IF_ERROR(sink.write(t.bytes.data(), t.bytes.size()));
    }
    for (uint64_t pad = pad_to(t.nbytes) - t.nbytes; pad;) {
      const size_t k = pad < sizeof zeros ? static_cast<size_t>(pad) : sizeof zeros;
      OCTET_RETURN_IF_ERROR(sink.write(zeros, k));
      pad -= k;
    }
  }
  return Status::Ok();
}

Expected<std::vector<uint8_t>> Writer::to_bytes() const {
  try {
    std::vector<uint8_t> out;
    VecSink sink{out};
    OCTET_RETURN_IF_ERROR(emit(sink));
    return out;
  } catch (const std::bad_alloc&) {
    return Status::Error("gguf writer: out of memory");
  }
}

Status Writer::write(const std::string& path) const {
  OCTET_RETURN_IF_ERROR(status_);
  std::FILE* fp = std::fopen(path.c_str(), "wb");
  if (!fp) return Status::Error("gguf writer: cannot create '" + path + "': " + std::strerror(errno));
  FileSink sink{fp, path};
  Status st;
  try {
    st = emit(sink);
  } catch (const std::bad_alloc&) {
    st = Status::Error("gguf writer: out of memory");
  }
  if (std::fclose(fp) != 0 && st.ok()) {
    st = Status::Error("gguf writer: closing '" + path + "' failed: " + std::strerror(errno));
  }
  if (!st.ok()) std::remove(path.c_str());
  return st;
}

}  // namespace octet::gguf
